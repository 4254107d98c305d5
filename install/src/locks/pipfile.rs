//! Pipfile / Pipfile.lock: `pipenv install --deploy --system` semantics without pipenv.

use sha2::{Digest as _, Sha256};

use pyslip_plan::InstallPlan;
use pyslip_plan::locks::PackageSource;

use super::pyjson::table_to;
use super::{check_token, invalid, locked_lines, parse_toml};
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
        hashes.push(format!("{digest:x}"));
    }
    Ok(hashes)
}

/// `--index-url` / `--extra-index-url` lines for a Pipfile's or lock's sources; none when they
/// are only PyPI (left to the environment: PIP_INDEX_URL / UV_INDEX_URL).
fn index_lines(file: &str, urls: &[String]) -> Result<Vec<String>, InstallError> {
    if urls
        .iter()
        .all(|u| u.starts_with("https://pypi.org/simple"))
    {
        return Ok(Vec::new());
    }
    let mut lines = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        check_token(file, "source url", url)?;
        let opt = if i == 0 {
            "--index-url"
        } else {
            "--extra-index-url"
        };
        lines.push(format!("{opt} {url}"));
    }
    Ok(lines)
}

/// Checks that Pipfile.lock was made from this Pipfile (what `--deploy` enforces) and returns
/// the requirements file installing exactly the `default` packages the plan installs (those
/// whose markers hold, decided by the plan from the same parsed lock) at their locked versions,
/// with their hashes (to be installed with `--require-hashes --no-deps`).
pub(crate) fn pipfile_lock_requirements(
    pipfile: &str,
    lock: &str,
    install: &InstallPlan,
) -> Result<String, InstallError> {
    let lock = pyslip_plan::locks::pipfile::parse_lock(lock)?;
    let locked_hash = lock
        .pipfile_hash
        .as_deref()
        .ok_or_else(|| invalid(LOCK, "missing _meta.hash.sha256"))?;
    if !pipfile_hash(pipfile)?.iter().any(|h| h == locked_hash) {
        return Err(InstallError::StaleLock {
            lock: LOCK,
            manifest: PIPFILE,
            refresh: "pipenv lock",
        });
    }
    let mut lines = index_lines(LOCK, &lock.sources)?;
    let mut extra = Vec::new();
    lines.extend(locked_lines(LOCK, &lock.packages, install, &mut extra)?);
    Ok(lines.join("\n") + "\n")
}

/// A Pipfile without a lock: its `[packages]` as plain requirements, resolved normally.
pub(crate) fn pipfile_requirements(pipfile: &str) -> Result<String, InstallError> {
    let parsed = pyslip_plan::locks::pipfile::parse_pipfile(pipfile)?;
    let mut lines = index_lines(PIPFILE, &parsed.sources)?;
    for req in &parsed.requirements {
        let name = &req.name;
        check_token(PIPFILE, "package name", name)?;
        if req.source != PackageSource::Registry(None) {
            return Err(invalid(
                PIPFILE,
                format!(
                    "package {name:?} is a {} dependency, which pyslip cannot install yet",
                    req.source.kind()
                ),
            ));
        }
        let mut line = name.clone();
        if !req.extras.is_empty() {
            line.push_str(&format!("[{}]", req.extras.join(",")));
        }
        if req.version.trim() != "*" {
            line.push_str(req.version.trim());
        }
        if let Some(m) = &req.markers {
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

    fn fixture_install() -> InstallPlan {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/apps/flask-pipenv");
        pyslip_plan::plan(&dir, &pyslip_plan::Overrides::default())
            .unwrap()
            .install
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
        let reqs =
            pipfile_lock_requirements(&app("Pipfile"), &app("Pipfile.lock"), &fixture_install())
                .unwrap();
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
        let err = pipfile_lock_requirements(&pipfile, &app("Pipfile.lock"), &fixture_install())
            .unwrap_err();
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
