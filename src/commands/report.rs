//! What the user sees: plain progress lines on stderr (or nothing with `--json`), and the final
//! line naming the digest; with `--json`, one JSON object on stdout.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::Path;

use layers::Digest;
use pyslip_image::sink::remote::Pushed;
use pyslip_image::{Artifact, Image, LayerOrigin};
use pyslip_registry::{BlobOutcome, Reference};
use serde_json::{Value, json};

use crate::commands::cache_repo::Reuse;

/// What a build wrote, for the final report.
#[derive(Debug, Default)]
pub struct Written {
    /// One push per target repository.
    pub pushes: Vec<Pushed>,
    /// The tarball written.
    pub tar: Option<std::path::PathBuf>,
    /// The OCI layout written.
    pub layout: Option<std::path::PathBuf>,
    /// The `sbom` object of `--json` (file, format, referrers), when `--sbom` was given.
    pub sbom: Option<serde_json::Value>,
    /// Layer blobs this build received: `(count, bytes)`, downloads and streamed copies.
    pub pull: (u64, u64),
}

/// Prints progress and the result.
pub struct Printer {
    json: bool,
    /// On a terminal: a spinner naming the step in progress, above which finished lines print.
    spinner: Option<indicatif::ProgressBar>,
    /// The boot check's `--json` object, once it ran.
    check: std::sync::Mutex<Option<Value>>,
    /// Where each of pyslip's layers came from, by blob digest.
    reuse: std::sync::Mutex<std::collections::BTreeMap<Digest, Reuse>>,
}

impl Printer {
    /// A printer for `--json` or human output.
    pub fn new(json: bool) -> Self {
        let spinner = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
            bar
        });
        crate::signals::set_spinner(spinner.clone());
        Self {
            json,
            spinner,
            check: std::sync::Mutex::new(None),
            reuse: std::sync::Mutex::default(),
        }
    }

    fn line(&self, text: &str) {
        // Once interrupted, the only line left to print is the signal thread's.
        if self.json || pyslip_lifecycle::interrupt::interrupted().is_some() {
            return;
        }
        match &self.spinner {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Name the step now running (shown only on a terminal; named if a signal stops the build).
    pub fn step(&self, text: &str) {
        pyslip_lifecycle::interrupt::set_step(text);
        if let Some(bar) = &self.spinner {
            bar.set_message(text.to_owned());
        }
    }

    /// A line of information that matters also to machines reading `--json` (on stderr).
    pub fn note(&self, text: &str) {
        match &self.spinner {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// A warning (always shown, also with `--json`, on stderr).
    pub fn warn(&self, text: &str) {
        match &self.spinner {
            Some(bar) => bar.println(format!("warning: {text}")),
            None => eprintln!("warning: {text}"),
        }
    }

    /// The base image was resolved.
    pub fn base(&self, reference: &Reference, digest: &Digest, layers: usize) {
        self.line(&format!("base    {reference}@{digest} ({layers} layers)"));
    }

    /// A layer was made (or reused).
    pub fn layer(&self, origin: LayerOrigin, digest: &Digest, size: u64, reuse: Reuse) {
        let what = match reuse {
            Reuse::Built => "new",
            Reuse::Local => "reused",
            Reuse::CacheRepo => "cached (registry)",
        };
        self.reuse
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.clone(), reuse);
        self.line(&format!(
            "layer   {:<5} {} {:>10}  {what}",
            origin.name(),
            short(digest),
            human_size(size)
        ));
    }

    /// A push finished.
    pub fn pushed(&self, pushed: &Pushed) {
        for blob in pushed.blobs() {
            self.line(&format!(
                "push    {} {}",
                short(&blob.digest),
                outcome_name(blob.outcome)
            ));
        }
        let counts = counts(pushed);
        self.line(&format!(
            "pushed  {} ({} uploaded, {} mounted, {} copied, {} present; {} sent)",
            pushed.refs().join(", "),
            counts.uploaded,
            counts.mounted,
            counts.copied,
            counts.present,
            human_size(counts.bytes_sent)
        ));
    }

    /// The boot check's `check` object for the JSON report.
    pub fn set_check(&self, value: Value) {
        *self.check.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    /// A program's output under a title, indented (always shown on stderr, also with `--json`:
    /// it explains the error that follows).
    pub fn output(&self, title: &str, text: &str) {
        let mut block = format!("{title}\n");
        for line in text.lines() {
            block.push_str(&format!("  | {line}\n"));
        }
        self.note(block.trim_end());
    }

    /// A labelled line of human output (`sbom    wrote …`); nothing with `--json`.
    pub fn labeled(&self, what: &str, text: &str) {
        self.line(&format!("{what:<7} {text}"));
    }

    /// A local output was written.
    pub fn wrote(&self, what: &str, path: &Path) {
        self.line(&format!("wrote   {what} {}", path.display()));
    }

    /// The final report: a line naming the digest, or the JSON object.
    pub fn finish(&self, artifact: &Artifact, written: &Written) -> anyhow::Result<()> {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
        if self.json {
            let check = self.check.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let reuse = self.reuse.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let report = json_report(artifact, written, check, &reuse);
            return super::print_stdout(&format!("{report}\n"));
        }
        let mut targets: Vec<String> = written.pushes.iter().flat_map(Pushed::refs).collect();
        targets.extend(written.tar.iter().map(|p| p.display().to_string()));
        targets.extend(written.layout.iter().map(|p| p.display().to_string()));
        super::print_stdout(&format!("{} {}\n", artifact.digest(), targets.join(" ")))
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        // On an error the spinner must not be left on the line the error is printed after.
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

#[derive(Default)]
struct Counts {
    uploaded: u64,
    mounted: u64,
    copied: u64,
    present: u64,
    bytes_sent: u64,
}

fn counts(pushed: &Pushed) -> Counts {
    let mut c = Counts::default();
    for blob in pushed.blobs() {
        c.bytes_sent += blob.bytes_sent;
        match blob.outcome {
            BlobOutcome::Uploaded => c.uploaded += 1,
            BlobOutcome::Mounted => c.mounted += 1,
            BlobOutcome::CopiedFromRegistry => c.copied += 1,
            BlobOutcome::AlreadyPresent => c.present += 1,
        }
    }
    c
}

/// The `--json` object. One platform: the image's digest, config and layers. Several: the
/// index's digest, the first image's config and layers, and `platforms` with each image's.
fn json_report(
    artifact: &Artifact,
    written: &Written,
    check: Option<Value>,
    reuse: &BTreeMap<Digest, Reuse>,
) -> Value {
    let first_push = written.pushes.first();
    let images = artifact.images();
    let refs: Vec<String> = written.pushes.iter().flat_map(Pushed::refs).collect();
    let push = (!written.pushes.is_empty()).then(|| {
        let mut total = Counts::default();
        for pushed in &written.pushes {
            let c = counts(pushed);
            total.uploaded += c.uploaded;
            total.mounted += c.mounted;
            total.copied += c.copied;
            total.present += c.present;
            total.bytes_sent += c.bytes_sent;
        }
        json!({
            "uploaded": total.uploaded,
            "mounted": total.mounted,
            "copied": total.copied,
            "present": total.present,
            "blob_bytes_sent": total.bytes_sent,
        })
    });
    let mut report = json!({
        "digest": artifact.digest().to_string(),
        "refs": refs,
        "config": images[0].config_blob.digest.to_string(),
        "layers": json_layers(&images[0], first_push, reuse),
        "push": push,
        "pull": {
            "blobs_fetched": written.pull.0,
            "blob_bytes_received": written.pull.1,
        },
        "tar": written.tar.as_ref().map(|p| p.display().to_string()),
        "oci_layout": written.layout.as_ref().map(|p| p.display().to_string()),
        "sbom": written.sbom,
        "check": check,
    });
    if let Artifact::Index(_) = artifact {
        report["platforms"] = images
            .iter()
            .map(|image| {
                json!({
                    "platform": image.platform.to_string(),
                    "digest": image.manifest_digest.to_string(),
                    "config": image.config_blob.digest.to_string(),
                    "layers": json_layers(image, first_push, reuse),
                })
            })
            .collect();
    }
    report
}

/// `reused` of a layer: `false`, `"local"` or `"cache-repo"` for pyslip's layers; base layers
/// keep `true` (they are the base image's).
fn reuse_value(reuse: Option<&Reuse>, reused: bool) -> Value {
    match reuse {
        Some(Reuse::Built) => json!(false),
        Some(Reuse::Local) => json!("local"),
        Some(Reuse::CacheRepo) => json!("cache-repo"),
        None => json!(reused),
    }
}

fn json_layers(
    image: &Image,
    first_push: Option<&Pushed>,
    reuse: &BTreeMap<Digest, Reuse>,
) -> Vec<Value> {
    image
        .layers
        .iter()
        .map(|l| {
            let blob = &l.blob;
            let pushed = first_push.and_then(|p| {
                p.blobs()
                    .into_iter()
                    .find(|b| b.digest == blob.digest)
                    .map(|b| outcome_name(b.outcome))
            });
            let mut layer = json!({
                "digest": blob.digest.to_string(),
                "size": blob.size,
                "origin": l.origin.name(),
                "reused": reuse_value(reuse.get(&blob.digest), l.reused),
            });
            if let Some(p) = pushed {
                layer["pushed"] = json!(p);
            }
            layer
        })
        .collect()
}

fn outcome_name(outcome: BlobOutcome) -> &'static str {
    match outcome {
        BlobOutcome::Uploaded => "uploaded",
        BlobOutcome::Mounted => "mounted",
        BlobOutcome::CopiedFromRegistry => "copied",
        BlobOutcome::AlreadyPresent => "present",
    }
}

fn short(digest: &Digest) -> String {
    format!("sha256:{}", &digest.hex()[..12])
}

/// `1536` → `1.5 KiB` (the plan's formatter: one for the whole program).
pub use pyslip_plan::human_size;
