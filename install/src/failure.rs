//! Reading an installer's failure output: what went wrong and which package, for the message
//! and the hint.

use crate::error::FailureKind;

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
