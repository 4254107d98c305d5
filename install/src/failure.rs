//! Reading an installer's failure output: what went wrong and which package, for the message
//! and the hint.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use pyslip_sandbox::ExitStatus;

use crate::error::{FailureContext, FailureKind, InstallError};

/// Lines of the failing step's output kept for the message.
pub(crate) const SHOWN_LINES: usize = 40;
/// Folder of install logs under the cache root.
use pyslip_lifecycle::folders::LOGS;

/// The error for a failed step: what failed, the last lines of its output, and the whole
/// install log (`log`, every step so far) written to `<cache>/logs/` for the user to read.
pub(crate) fn failed(
    step: String,
    status: ExitStatus,
    output: &str,
    log: &str,
    cache_dir: &Path,
    python: &str,
) -> InstallError {
    InstallError::Failed {
        step,
        status,
        package: package(output),
        output: tail(output, SHOWN_LINES),
        kind: kind(output),
        python: python.to_owned(),
        context: Box::new(FailureContext {
            log_path: write_log(cache_dir, log).ok(),
            wheels: None,
        }),
    }
}

/// Writes `log` to a new file `<cache>/logs/install-<time>-<n>.log` (temp file, fsync, rename).
fn write_log(cache_dir: &Path, log: &str) -> std::io::Result<PathBuf> {
    let dir = cache_dir.join(LOGS);
    fs_err::create_dir_all(&dir)?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut file = tempfile::Builder::new()
        .prefix(".install-")
        .tempfile_in(&dir)?;
    file.write_all(log.as_bytes())?;
    file.as_file().sync_all()?;
    let name = format!("install-{secs}-{}.log", std::process::id());
    let mut path = dir.join(&name);
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{}-{n}.log", name.trim_end_matches(".log")));
        n += 1;
    }
    file.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}

/// Needles that mark an untrusted TLS certificate (pip/requests, uv/rustls).
const CERT: &[&str] = &[
    "CERTIFICATE_VERIFY_FAILED",
    "invalid peer certificate",
    "UnknownIssuer",
    "certificate verify failed",
];
/// Needles that mark a missing compiler or C headers.
const COMPILER: &[&str] = &[
    "command 'gcc' failed",
    "command 'cc' failed",
    "command 'x86_64-linux-gnu-gcc' failed",
    "command 'aarch64-linux-gnu-gcc' failed",
    "unable to execute 'gcc'",
    "gcc: not found",
    "error: could not find a C compiler",
    "No such file or directory: 'gcc'",
    "No such file or directory: 'cc'",
    "-linux-gnu-gcc'",
    "Unknown compiler(s)",
    "fatal error: Python.h",
    "can't find Rust compiler",
];
const NOT_FOUND: &[&str] = &[
    "No matching distribution found",
    "was not found in the package registry",
    "not found in the provided package locations",
    "Could not find a version that satisfies",
];
const HASH: &[&str] = &["DO NOT MATCH THE HASHES", "Hash mismatch", "hash mismatch"];

/// Classifies the combined output of a failed installer run.
pub(crate) fn kind(output: &str) -> FailureKind {
    let has = |needles: &[&str]| needles.iter().any(|n| output.contains(n));
    if has(CERT) {
        FailureKind::Certificate
    } else if has(COMPILER) {
        FailureKind::Compiler
    } else if has(HASH) {
        FailureKind::HashMismatch
    } else if has(NOT_FOUND) {
        FailureKind::NotFound
    } else {
        FailureKind::Other
    }
}

/// The first package name the output blames, e.g. uv's ``Failed to build `lxml==4.9.0` `` or
/// pip's `Failed building wheel for lxml` / `No matching distribution found for flask==99`.
pub(crate) fn package(output: &str) -> Option<String> {
    const BACKTICKED: &[&str] = &[
        "Failed to build `",
        "Failed to download `",
        "Failed to download and build `",
        "Failed to fetch: `",
        "Failed to prepare distributions` for `",
        "Because `",
    ];
    const PLAIN: &[&str] = &[
        "Failed building wheel for ",
        "Failed to build ",
        "No matching distribution found for ",
        "Could not find a version that satisfies the requirement ",
        "Running setup.py install for ",
        "Building wheel for ",
    ];
    for line in output.lines() {
        for needle in BACKTICKED {
            if let Some((_, rest)) = line.split_once(needle)
                && let Some((name, _)) = rest.split_once('`')
            {
                return Some(clean(name));
            }
        }
    }
    for line in output.lines() {
        let line = line.trim_start_matches(['×', ' ', '│', '╰', '─', '>']);
        for needle in PLAIN {
            if let Some((_, rest)) = line.split_once(needle) {
                let name: String = rest
                    .split([' ', ',', '\''])
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if !name.is_empty() && !name.starts_with('`') {
                    return Some(clean(&name));
                }
            }
        }
    }
    // uv: "Because foo was not found in the package registry".
    output.lines().find_map(|l| {
        let (_, rest) = l.split_once("Because ")?;
        let (name, _) = rest.split_once(" was not found")?;
        Some(clean(name))
    })
}

fn clean(name: &str) -> String {
    name.trim().trim_end_matches(['.', ':', ')']).to_owned()
}

/// The last `max_lines` non-empty lines of `text`.
pub(crate) fn tail(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(max_lines);
    lines.get(start..).unwrap_or_default().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uv_build_failure_names_the_package_and_the_compiler() {
        let out = "  × Failed to build `lxml==4.9.0`\n  ├─▶ The build backend returned an error\n      error: command 'gcc' failed: No such file or directory\n";
        assert_eq!(package(out).as_deref(), Some("lxml==4.9.0"));
        assert_eq!(kind(out), FailureKind::Compiler);
    }

    #[test]
    fn pip_failures_name_the_package() {
        let out = "ERROR: Could not find a version that satisfies the requirement flask==99 (from versions: 1.0)\nERROR: No matching distribution found for flask==99\n";
        assert_eq!(package(out).as_deref(), Some("flask==99"));
        assert_eq!(kind(out), FailureKind::NotFound);
        let out = "  error: subprocess-exited-with-error\n  × Building wheel for psycopg2 (pyproject.toml) did not run successfully.\n  ERROR: Failed building wheel for psycopg2\n";
        assert_eq!(package(out).as_deref(), Some("psycopg2"));
        let out = "  × No solution found when resolving dependencies:\n  ╰─▶ Because nosuchpkg-xyz was not found in the package registry and you require nosuchpkg-xyz, we can conclude that your requirements are unsatisfiable.\n";
        assert_eq!(package(out).as_deref(), Some("nosuchpkg-xyz"));
    }

    #[test]
    fn a_failure_keeps_the_tail_and_writes_the_whole_log() {
        let cache = tempfile::tempdir().unwrap();
        let output: String = (1..=100).map(|i| format!("line {i}\n")).collect::<String>()
            + "  × Failed to build `numpy==1.26.4`\n      ../meson.build:1:0: ERROR: Unknown compiler(s): [['cc'], ['gcc']]\n";
        let log = format!("$ uv pip install -r requirements.txt\n{output}");
        let err = failed(
            "uv pip install -r requirements.txt".into(),
            ExitStatus::Code(1),
            &output,
            &log,
            cache.path(),
            "3.13",
        );
        assert_eq!(
            err.to_string(),
            "installing numpy==1.26.4 failed: uv pip install -r requirements.txt exited with status 1"
        );
        let (shown, path) = err.log().unwrap();
        assert_eq!(shown.lines().count(), SHOWN_LINES);
        assert!(
            shown.ends_with("Unknown compiler(s): [['cc'], ['gcc']]"),
            "{shown}"
        );
        assert_eq!(fs_err::read_to_string(path.unwrap()).unwrap(), log);
        assert_eq!(
            err.missing_wheel(),
            Some(("numpy".to_owned(), Some("1.26.4".to_owned())))
        );
    }

    #[test]
    fn the_hint_names_the_python_with_wheels_and_both_fixes() {
        let cache = tempfile::tempdir().unwrap();
        let mut err = failed(
            "uv pip install".into(),
            ExitStatus::Code(1),
            "  × Failed to build `numpy==1.26.4`\n  error: command 'gcc' failed\n",
            "",
            cache.path(),
            "3.13",
        );
        assert!(
            err.hint()
                .unwrap()
                .contains("numpy==1.26.4 needs system libraries")
        );
        err.set_wheel_advice(crate::WheelAdvice {
            name: "numpy".into(),
            version: "1.26.4".into(),
            newest_python: Some("3.12".into()),
        });
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("numpy 1.26.4 has no wheel for Python 3.13"),
            "{hint}"
        );
        assert!(hint.contains("--python 3.12"), "{hint}");
        assert!(hint.contains("pin a newer release of numpy"), "{hint}");
    }

    #[test]
    fn certificate_errors_are_recognised() {
        assert_eq!(
            kind("SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] ...'))"),
            FailureKind::Certificate
        );
        assert_eq!(
            kind("invalid peer certificate: UnknownIssuer"),
            FailureKind::Certificate
        );
    }
}
