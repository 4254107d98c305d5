//! poetry.lock: `poetry install --no-root --only main` semantics without poetry.

use super::{check_token, invalid, parse_toml, pinned_line};
use crate::error::InstallError;

const LOCK: &str = "poetry.lock";

fn is_pypi(url: &str) -> bool {
    url.trim_end_matches('/') == "https://pypi.org/simple"
}

/// The requirements file installing exactly the lock's main-group packages at their locked
/// versions with their hashes (to be installed with `--require-hashes --no-deps`).
///
/// Main group: `groups` contains `main` (lock format 2.x), or `category = "main"` (1.x), or
/// neither key. Optional packages (extras) are left out, as `poetry install` does without
/// `--extras`. Markers are the package's (2.x: its `main` entry when they are per group).
pub(crate) fn poetry_lock_requirements(lock: &str) -> Result<String, InstallError> {
    let table = parse_toml(LOCK, lock)?;
    let packages = match table.get("package") {
        Some(toml::Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(invalid(LOCK, "\"package\" must be an array of tables")),
        None => &[],
    };
    // Lock 1.x keeps the files in `[metadata.files]`.
    let legacy_files = table
        .get("metadata")
        .and_then(|m| m.get("files"))
        .and_then(|f| f.as_table());
    let mut indexes: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for pkg in packages {
        let name = pkg
            .get("name")
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid(LOCK, "a [[package]] has no name"))?;
        let version = pkg
            .get("version")
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid(LOCK, format!("package {name:?} has no version")))?;
        let main = match (pkg.get("groups"), pkg.get("category")) {
            (Some(toml::Value::Array(groups)), _) => {
                groups.iter().any(|g| g.as_str() == Some("main"))
            }
            (_, Some(toml::Value::String(c))) => c == "main",
            _ => true,
        };
        let optional = pkg
            .get("optional")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if !main || optional {
            continue;
        }
        if let Some(source) = pkg.get("source") {
            let kind = source.get("type").and_then(|v| v.as_str()).unwrap_or("");
            match kind {
                "legacy" => {
                    if let Some(url) = source.get("url").and_then(|u| u.as_str())
                        && !is_pypi(url)
                        && !indexes.iter().any(|i| i == url)
                    {
                        check_token(LOCK, "source url", url)?;
                        indexes.push(url.to_owned());
                    }
                }
                other => {
                    return Err(invalid(
                        LOCK,
                        format!(
                            "package {name:?} comes from a {other} source, which pyslip cannot install from a lock yet"
                        ),
                    ));
                }
            }
        }
        let files = pkg.get("files").and_then(|f| f.as_array()).or_else(|| {
            legacy_files
                .and_then(|t| t.get(name))
                .and_then(|f| f.as_array())
        });
        let hashes: Vec<String> = files
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.get("hash").and_then(|h| h.as_str()).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if hashes.is_empty() {
            return Err(invalid(
                LOCK,
                format!("package {name:?} has no file hashes"),
            ));
        }
        let markers = match pkg.get("markers") {
            Some(toml::Value::String(m)) => Some(m.as_str()),
            Some(toml::Value::Table(t)) => t.get("main").and_then(|m| m.as_str()),
            _ => None,
        };
        for value in [name, version]
            .into_iter()
            .chain(markers)
            .chain(hashes.iter().map(String::as_str))
        {
            check_token(LOCK, "value", value)?;
        }
        lines.push(pinned_line(name, &[], version, markers, &hashes));
    }
    let mut out: Vec<String> = indexes
        .iter()
        .map(|u| format!("--extra-index-url {u}"))
        .collect();
    out.extend(lines);
    Ok(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_lock_gives_main_packages_only() {
        let lock = fs_err::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/apps/fastapi-poetry/poetry.lock"
        ))
        .unwrap();
        let reqs = poetry_lock_requirements(&lock).unwrap();
        assert!(reqs.contains("\nfastapi=="), "{reqs}");
        assert!(
            reqs.contains("anyio==4.16.0 --hash=sha256:c66ae634"),
            "{reqs}"
        );
        assert!(
            !reqs.contains("pytest=="),
            "dev group is not installed: {reqs}"
        );
        assert!(
            !reqs.contains("index-url"),
            "PyPI is left to the environment: {reqs}"
        );
    }

    #[test]
    fn lock_1x_categories_and_metadata_files() {
        let lock = r#"
[[package]]
name = "a"
version = "1.0"
category = "main"
optional = false

[[package]]
name = "b"
version = "2.0"
category = "dev"
optional = false

[[package]]
name = "c"
version = "3.0"
category = "main"
optional = true

[metadata.files]
a = [{file = "a-1.0.tar.gz", hash = "sha256:aa"}]
b = [{file = "b-2.0.tar.gz", hash = "sha256:bb"}]
c = [{file = "c-3.0.tar.gz", hash = "sha256:cc"}]
"#;
        assert_eq!(
            poetry_lock_requirements(lock).unwrap(),
            "a==1.0 --hash=sha256:aa\n"
        );
    }

    #[test]
    fn injected_option_in_a_lock_is_refused() {
        let lock = "[[package]]\nname = \"a\"\nversion = \"1.0\\n--index-url http://evil\"\nfiles = [{file=\"x\", hash=\"sha256:aa\"}]\n";
        assert!(poetry_lock_requirements(lock).is_err());
    }
}
