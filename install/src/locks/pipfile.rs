//! Pipfile / Pipfile.lock: `pipenv install --deploy --system` semantics without pipenv.

use sha2::{Digest as _, Sha256};

use super::pyjson::table_to;
use super::{check_token, invalid, parse_toml, pinned_line};
use crate::error::InstallError;

const PIPFILE: &str = "Pipfile";
const LOCK: &str = "Pipfile.lock";

/// Top-level Pipfile tables that are not package categories (plette's `PIPFILE_SECTIONS`).
const SECTIONS: &[&str] = &[
    "source",
    "packages",
    "dev-packages",
    "requires",
    "scripts",
    "pipfile",
    "pipenv",
    "default",
    "develop",
];

/// The source plette adds when a Pipfile has none.
const DEFAULT_SOURCE: &str =
    "[[source]]\nname = \"pypi\"\nurl = \"https://pypi.org/simple\"\nverify_ssl = true\n";

/// PEP 503 normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The hashes pipenv may have written into `_meta.hash.sha256` for this Pipfile: plette's
/// `Pipfile.get_hash()` (sha256 of `json.dumps({"_meta": {"sources", "requires"}, "default":
/// packages, "develop": dev-packages, <other categories>}, sort_keys=True, separators=(",",
/// ":"))`), and the variant of pipenv ≥ 2025 that PEP 503-normalises package names first.
pub fn pipfile_hash(pipfile: &str) -> Result<Vec<String>, InstallError> {
    let mut table = parse_toml(PIPFILE, pipfile)?;
    if !table.contains_key("source") {
        table = parse_toml(PIPFILE, &format!("{DEFAULT_SOURCE}\n{pipfile}"))?;
    }
    let empty = toml::Value::Table(toml::Table::new());
    let get = |k: &str| table.get(k).cloned().unwrap_or_else(|| empty.clone());
    let mut hashes = Vec::new();
    for normalise in [false, true] {
        let section = |v: toml::Value| match (normalise, v) {
            (true, toml::Value::Table(t)) => {
                toml::Value::Table(t.into_iter().map(|(k, v)| (canonical(&k), v)).collect())
            }
            (_, v) => v,
        };
        let mut meta = toml::Table::new();
        meta.insert("sources".into(), get("source"));
        meta.insert("requires".into(), get("requires"));
        let mut data = toml::Table::new();
        data.insert("_meta".into(), toml::Value::Table(meta));
        data.insert("default".into(), section(get("packages")));
        data.insert("develop".into(), section(get("dev-packages")));
        for (k, v) in &table {
            if !SECTIONS.contains(&k.as_str()) {
                data.insert(k.clone(), section(v.clone()));
            }
        }
        let mut json = String::new();
        table_to(data.iter(), &mut json).map_err(|e| invalid(PIPFILE, e))?;
        let digest = Sha256::digest(json.as_bytes());
        hashes.push(digest.iter().map(|b| format!("{b:02x}")).collect());
    }
    Ok(hashes)
}

/// Checks that Pipfile.lock was made from this Pipfile (what `--deploy` enforces) and returns
/// the requirements file installing exactly its `default` packages at their locked versions,
/// with their hashes (to be installed with `--require-hashes --no-deps`).
pub(crate) fn pipfile_lock_requirements(pipfile: &str, lock: &str) -> Result<String, InstallError> {
    let lock: serde_json::Value =
        serde_json::from_str(lock).map_err(|e| invalid(LOCK, format!("line {}: {e}", e.line())))?;
    let locked_hash = lock
        .pointer("/_meta/hash/sha256")
        .and_then(|v| v.as_str())
        .ok_or_else(|| invalid(LOCK, "missing _meta.hash.sha256"))?;
    if !pipfile_hash(pipfile)?.iter().any(|h| h == locked_hash) {
        return Err(InstallError::StaleLock {
            lock: LOCK,
            manifest: PIPFILE,
            refresh: "pipenv lock",
        });
    }
    let mut lines = Vec::new();
    if let Some(sources) = lock.pointer("/_meta/sources").and_then(|v| v.as_array()) {
        let urls: Vec<&str> = sources
            .iter()
            .filter_map(|s| s.get("url").and_then(|u| u.as_str()))
            .collect();
        // The default PyPI source is left to the environment (PIP_INDEX_URL / UV_INDEX_URL).
        if urls
            .iter()
            .any(|u| !u.starts_with("https://pypi.org/simple"))
        {
            for (i, url) in urls.iter().enumerate() {
                check_token(LOCK, "source url", url)?;
                let opt = if i == 0 {
                    "--index-url"
                } else {
                    "--extra-index-url"
                };
                lines.push(format!("{opt} {url}"));
            }
        }
    }
    let default = lock
        .get("default")
        .and_then(|v| v.as_object())
        .ok_or_else(|| invalid(LOCK, "missing the \"default\" section"))?;
    let mut names: Vec<&String> = default.keys().collect();
    names.sort();
    for name in names {
        let Some(entry) = default.get(name).and_then(|v| v.as_object()) else {
            return Err(invalid(LOCK, format!("package {name:?} is not a table")));
        };
        for unsupported in ["git", "path", "file", "editable", "hg", "svn", "bzr"] {
            if entry.contains_key(unsupported) {
                return Err(invalid(
                    LOCK,
                    format!(
                        "package {name:?} is a {unsupported} dependency, which pyslip cannot install from a lock yet"
                    ),
                ));
            }
        }
        check_token(LOCK, "package name", name)?;
        let version = entry
            .get("version")
            .and_then(|v| v.as_str())
            .and_then(|v| v.strip_prefix("=="))
            .ok_or_else(|| invalid(LOCK, format!("package {name:?} has no \"==\" version")))?;
        check_token(LOCK, "version", version)?;
        let strings = |key: &str| -> Vec<String> {
            entry
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let extras = strings("extras");
        let hashes = strings("hashes");
        if hashes.is_empty() {
            return Err(invalid(LOCK, format!("package {name:?} has no hashes")));
        }
        for h in extras.iter().chain(&hashes) {
            check_token(LOCK, "value", h)?;
        }
        let markers = entry.get("markers").and_then(|v| v.as_str());
        if let Some(m) = markers {
            check_token(LOCK, "markers", m)?;
        }
        lines.push(pinned_line(name, &extras, version, markers, &hashes));
    }
    Ok(lines.join("\n") + "\n")
}

/// A Pipfile without a lock: its `[packages]` as plain requirements, resolved normally.
pub(crate) fn pipfile_requirements(pipfile: &str) -> Result<String, InstallError> {
    let table = parse_toml(PIPFILE, pipfile)?;
    let mut lines = Vec::new();
    if let Some(toml::Value::Array(sources)) = table.get("source") {
        let urls: Vec<&str> = sources
            .iter()
            .filter_map(|s| s.get("url").and_then(|u| u.as_str()))
            .collect();
        if urls
            .iter()
            .any(|u| !u.starts_with("https://pypi.org/simple"))
        {
            for (i, url) in urls.iter().enumerate() {
                check_token(PIPFILE, "source url", url)?;
                let opt = if i == 0 {
                    "--index-url"
                } else {
                    "--extra-index-url"
                };
                lines.push(format!("{opt} {url}"));
            }
        }
    }
    let Some(packages) = table.get("packages").and_then(|p| p.as_table()) else {
        return Ok(lines.join("\n") + "\n");
    };
    for (name, spec) in packages {
        check_token(PIPFILE, "package name", name)?;
        let (version, extras, markers) = match spec {
            toml::Value::String(v) => (v.clone(), Vec::new(), None),
            toml::Value::Table(t) => {
                if let Some(kind) = ["git", "path", "file", "editable"]
                    .iter()
                    .find(|k| t.contains_key(**k))
                {
                    return Err(invalid(
                        PIPFILE,
                        format!(
                            "package {name:?} is a {kind} dependency, which pyslip cannot install yet"
                        ),
                    ));
                }
                let version = t
                    .get("version")
                    .and_then(|v| v.as_str())
                    .unwrap_or("*")
                    .to_owned();
                let extras = t
                    .get("extras")
                    .and_then(|e| e.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let markers = t.get("markers").and_then(|m| m.as_str()).map(str::to_owned);
                (version, extras, markers)
            }
            _ => {
                return Err(invalid(
                    PIPFILE,
                    format!("package {name:?}: expected a version string or a table"),
                ));
            }
        };
        let mut line = name.clone();
        if !extras.is_empty() {
            line.push_str(&format!("[{}]", extras.join(",")));
        }
        if version.trim() != "*" {
            line.push_str(version.trim());
        }
        if let Some(m) = &markers {
            line.push_str(" ; ");
            line.push_str(m);
        }
        check_token(PIPFILE, "requirement", &line)?;
        lines.push(line);
    }
    Ok(lines.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(file: &str) -> String {
        fs_err::read_to_string(format!(
            "{}/../testdata/apps/flask-pipenv/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn fixture_lock_hash_matches_pipfile() {
        // Computed by pipenv's vendored plette for this Pipfile (see the report); the lock agrees.
        let hashes = pipfile_hash(&app("Pipfile")).unwrap();
        assert_eq!(
            hashes[0],
            "b895050392250c006abc3fa7f178e78f447293e9647b136ba7f7391320149a0d"
        );
        let reqs = pipfile_lock_requirements(&app("Pipfile"), &app("Pipfile.lock")).unwrap();
        assert!(
            reqs.contains("flask==3.1.3 ; python_version >= '3.9' --hash=sha256:"),
            "{reqs}"
        );
        assert!(
            reqs.contains("blinker==1.9.0 ; python_version >= '3.9' --hash=sha256:"),
            "{reqs}"
        );
        assert!(
            !reqs.contains("pytest"),
            "dev packages are not installed: {reqs}"
        );
    }

    #[test]
    fn stale_lock_is_refused_with_the_refresh_command() {
        let pipfile = app("Pipfile").replace("waitress = \"==3.0.2\"", "waitress = \"==3.0.1\"");
        let err = pipfile_lock_requirements(&pipfile, &app("Pipfile.lock")).unwrap_err();
        assert!(matches!(err, InstallError::StaleLock { .. }), "{err}");
        assert!(err.hint().unwrap().contains("pipenv lock"));
    }

    #[test]
    fn missing_source_gets_plettes_default_and_names_are_normalised_in_the_variant() {
        let a = pipfile_hash("[packages]\nFlask_Cors = \"*\"\n").unwrap();
        let b = pipfile_hash(&format!(
            "{DEFAULT_SOURCE}\n[packages]\nFlask_Cors = \"*\"\n"
        ))
        .unwrap();
        assert_eq!(a, b);
        let c = pipfile_hash("[packages]\nflask-cors = \"*\"\n").unwrap();
        // Values printed by pipenv's vendored plette `Pipfile.get_hash()` for these two files.
        assert_eq!(
            a[0],
            "e3f8faeaad41ce89fdb21965c37992761c14b95b6ab8f012aa09a4c39193f4d7"
        );
        assert_eq!(
            c[0],
            "cabb3c50ea7713ba3281d208ccd530abf320e2e34686b2e601de42099d5e6cf7"
        );
        assert_ne!(a[0], c[0]);
        assert_eq!(a[1], c[1]);
    }

    #[test]
    fn unlocked_pipfile_becomes_requirements() {
        let reqs = pipfile_requirements(
            "[packages]\nflask = \"*\"\nrequests = {version = \">=2\", extras = [\"socks\"], markers = \"python_version >= '3.8'\"}\n",
        )
        .unwrap();
        assert_eq!(
            reqs,
            "flask\nrequests[socks]>=2 ; python_version >= '3.8'\n"
        );
    }
}
