//! `pyslip build --check`: glue between the build and the `pyslip-check` crate — the settings
//! (flags over config), the result cached by image config digest, the sandbox's layer roots,
//! and what the user sees.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use layers::{Digest, WrittenLayer};
use pyslip_check::{CheckError, CheckRequest, Passed, Workload};
use pyslip_install::DepsLayer;
use pyslip_lifecycle::scratch::{ScratchDir, TRASH};
use pyslip_plan::BuildPlan;
use pyslip_registry::{Client, PulledImage};
use serde::{Deserialize, Serialize};

use crate::cache::{Cache, write_atomic_in};
use crate::cli::{BuildArgs, SandboxMode};
use crate::commands::{UserError, base, report::Printer};
use pyslip_image::Image;

/// Versioned folder of cached check results: `<key>.json`.
use pyslip_lifecycle::folders::CHECKS as RESULTS_DIR;
/// Version of the result record and of what a pass means; bump it when the check changes.
const SCHEME: &str = "pyslip-check-v1";
/// The default `--check-timeout`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// How the check runs for this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSettings {
    /// The path a web app is asked for.
    pub path: String,
    /// How long a web app gets.
    pub timeout: Duration,
    /// A 5xx answer fails.
    pub strict: bool,
}

impl CheckSettings {
    /// The settings from the flags and the plan's config (flags win); `None` when the check is
    /// off. Any `--check-*` flag turns it on; `--no-check` turns it off whatever the config says.
    pub fn from_args(args: &BuildArgs, plan: &BuildPlan) -> Result<Option<CheckSettings>> {
        let by_flags = args.check
            || args.check_strict
            || args.check_path.is_some()
            || args.check_timeout.is_some();
        let by_config = plan.check.as_ref().is_some_and(|c| c.value);
        if args.no_check || !(by_flags || by_config) {
            return Ok(None);
        }
        if SandboxMode::of(args, plan) == SandboxMode::None {
            return Err(UserError::new(
                "the boot check needs the rootless namespace sandbox (a private network and PID namespace for the app), and --sandbox none runs without namespaces",
                "build without --check (--no-check overrides `check = true` in the config), or use --sandbox auto where unprivileged user namespaces are allowed",
            )
            .into());
        }
        let path = match (&args.check_path, &plan.check_path) {
            (Some(path), _) => path.clone(),
            (None, Some(path)) => path.value.clone(),
            (None, None) => "/".to_owned(),
        };
        if !path.starts_with('/') || path.contains(char::is_whitespace) {
            return Err(UserError::new(
                format!("--check-path {path:?} is not a URL path"),
                "give a path that starts with / and has no spaces, e.g. --check-path /healthz",
            )
            .into());
        }
        let secs = args.check_timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if secs == 0 {
            return Err(UserError::new(
                "--check-timeout 0: the app would get no time to start",
                format!("give whole seconds, at least 1 (default {DEFAULT_TIMEOUT_SECS})"),
            )
            .into());
        }
        Ok(Some(CheckSettings {
            path,
            timeout: Duration::from_secs(secs),
            strict: args.check_strict,
        }))
    }
}

/// The built image the check starts.
pub struct CheckedImage<'a> {
    /// The base image (its unpacked root is the lowest layer).
    pub base: &'a PulledImage,
    /// pyslip's layers between the base and the app layer, lowest first.
    pub layers: &'a [DepsLayer],
    /// The app layer (in the blob store).
    pub app: &'a WrittenLayer,
    /// Config and manifest.
    pub image: &'a Image,
    /// The plan (for the workload).
    pub plan: &'a BuildPlan,
}

/// The cache record of a passed check.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    scheme: String,
    config: String,
    path: String,
    passed: Passed,
}

/// Runs the check (or reuses the result cached for this image config and path) and hands the
/// `check` object of `--json` to the printer. A failure prints the app's output and is returned
/// as an error with a hint; with `json`, stdout gets `{"check": {…}}` first.
pub async fn run(
    client: &Client,
    cache: &Cache,
    settings: &CheckSettings,
    image: &CheckedImage<'_>,
    printer: &Printer,
    json: bool,
) -> Result<()> {
    let config = &image.image.config_blob.digest;
    let record_path = cache
        .dir(RESULTS_DIR)?
        .join(format!("{}.json", record_key(config, &settings.path)));
    if let Some(passed) = cached(&record_path, config, settings) {
        printer.labeled(
            "check",
            &format!(
                "passed (cached: this image config passed before, not run again) {}",
                summary(&passed)
            ),
        );
        printer.set_check(passed.json(true));
        return Ok(());
    }
    printer.step("boot check: starting the image");
    let base_root = base::root(client, cache, image.base).await?;
    let workload = match image.plan.workload.value {
        pyslip_plan::Workload::Web => Workload::Web,
        pyslip_plan::Workload::Worker => Workload::Worker,
    };
    let outcome = tokio::task::block_in_place(|| -> Result<_> {
        let mut lower: Vec<PathBuf> = Vec::new();
        for layer in image.layers.iter().rev() {
            lower.push(pyslip_install::layer_root(cache.root(), layer)?);
        }
        lower.push(base_root);
        // Locked while in use, so no concurrent build's sweep removes it; removed in the
        // background afterwards (a killed build's is swept by the next build).
        let scratch = ScratchDir::new_in(&cache.tmp_dir(), "check-")
            .context("creating the boot check's scratch directory")?;
        let outcome = pyslip_check::run(&CheckRequest {
            config: &image.image.config,
            lower: &lower,
            app_layer: &cache.blob_path(&image.app.digest),
            scratch: &scratch,
            workload,
            path: &settings.path,
            timeout: settings.timeout,
            strict: settings.strict,
        });
        scratch.discard_in_background(&cache.tmp_dir().join(TRASH));
        Ok(outcome)
    })?;
    match outcome {
        Ok(passed) => {
            printer.labeled("check", &format!("passed {}", summary(&passed)));
            if let Some(head) = &passed.warning {
                printer.warn(&format!(
                    "boot check: GET {} answered {} (the page may need a database or secret the check cannot provide; --check-strict makes this a failure)",
                    settings.path,
                    head.join(" | ")
                ));
            }
            let record = Record {
                scheme: SCHEME.to_owned(),
                config: config.to_string(),
                path: settings.path.clone(),
                passed: passed.clone(),
            };
            write_atomic_in(
                &cache.tmp_dir(),
                &record_path,
                &serde_json::to_vec(&record)?,
            )?;
            printer.set_check(passed.json(false));
            Ok(())
        }
        Err(err) => Err(failed(err, printer, json)),
    }
}

/// The error of a check that did not pass, after showing the app's output.
fn failed(err: CheckError, printer: &Printer, json: bool) -> anyhow::Error {
    let check = match err.failure() {
        Some(failure) => failure.json(),
        None => serde_json::json!({"passed": false, "kind": "not_run", "message": err.to_string()}),
    };
    if let Some(output) = err.failure().and_then(|f| f.output()) {
        printer.output("the app's output (last lines):", output);
    }
    if json {
        let _ = super::print_stdout(&format!("{}\n", serde_json::json!({ "check": check })));
    }
    let hint = err
        .hint()
        .unwrap_or_else(|| "build without --check to skip the boot check on this host".to_owned());
    let mut message = err.to_string();
    if let Some(source) = std::error::Error::source(&err) {
        message = format!("{message}: {source}");
        if let Some(cause) = source.source() {
            message = format!("{message}: {cause}");
        }
    }
    UserError::new(message, hint).into()
}

/// A cached pass for this config and path, if one that still holds exists.
fn cached(path: &std::path::Path, config: &Digest, settings: &CheckSettings) -> Option<Passed> {
    let bytes = fs_err::read(path).ok()?;
    let record: Record = serde_json::from_slice(&bytes).ok()?;
    let matches = record.scheme == SCHEME
        && record.config == config.to_string()
        && record.path == settings.path;
    // A pass with a 5xx warning does not hold in strict mode: run again.
    let holds = !(settings.strict && record.passed.warning.is_some());
    (matches && holds).then_some(record.passed)
}

/// The record's file name: the config digest and the path (hex sha256).
fn record_key(config: &Digest, path: &str) -> String {
    Digest::of(format!("{SCHEME}\0{config}\0{path}").as_bytes())
        .hex()
        .to_owned()
}

/// `GET / → 200 in 0.84 s on 0.0.0.0:38017`, or `worker still running after 3.0 s`.
fn summary(passed: &Passed) -> String {
    let seconds = passed.milliseconds as f64 / 1000.0;
    match passed.workload {
        Workload::Web => format!(
            "GET {} → {} in {seconds:.2} s (listening on {}:{})",
            passed.path.as_deref().unwrap_or("/"),
            passed.status.unwrap_or_default(),
            passed.address.as_deref().unwrap_or("?"),
            passed.port.unwrap_or_default()
        ),
        Workload::Worker => format!("worker still running after {seconds:.1} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(warning: bool) -> Passed {
        Passed {
            workload: Workload::Web,
            port: Some(38017),
            address: Some("0.0.0.0".into()),
            path: Some("/".into()),
            status: Some(if warning { 500 } else { 200 }),
            milliseconds: 840,
            warning: warning.then(|| vec!["HTTP 500 Internal Server Error".to_owned()]),
        }
    }

    #[test]
    fn cached_results_hold_for_the_same_config_and_path_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Digest::of(b"config");
        let settings = CheckSettings {
            path: "/".into(),
            timeout: Duration::from_secs(30),
            strict: false,
        };
        let path = dir
            .path()
            .join(format!("{}.json", record_key(&config, "/")));
        assert!(cached(&path, &config, &settings).is_none());
        for warning in [false, true] {
            let record = Record {
                scheme: SCHEME.into(),
                config: config.to_string(),
                path: "/".into(),
                passed: passed(warning),
            };
            fs_err::write(&path, serde_json::to_vec(&record).expect("json")).expect("write");
            assert_eq!(cached(&path, &config, &settings), Some(passed(warning)));
            let strict = CheckSettings {
                strict: true,
                ..settings.clone()
            };
            assert_eq!(cached(&path, &config, &strict).is_some(), !warning);
            assert!(cached(&path, &Digest::of(b"other"), &settings).is_none());
        }
        assert_ne!(record_key(&config, "/"), record_key(&config, "/healthz"));
        fs_err::write(&path, b"{not json").expect("write");
        assert!(cached(&path, &config, &settings).is_none());
    }

    #[test]
    fn summaries_name_status_time_and_address() {
        assert_eq!(
            summary(&passed(false)),
            "GET / → 200 in 0.84 s (listening on 0.0.0.0:38017)"
        );
    }
}
