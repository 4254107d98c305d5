//! Pipfile and Pipfile.lock: the `default` packages and the `[requires]` python pin.

use std::collections::{BTreeMap, BTreeSet};

use pep508_rs::MarkerEnvironment;
use serde::Deserialize;
use toml::Spanned;

use crate::deps;
use crate::error::{self, PlanError};
use crate::model::Source;
use crate::version::{Pin, PinValue, PyVersion};

/// `Pipfile`.
pub const PIPFILE: &str = "Pipfile";
/// `Pipfile.lock`.
pub const PIPFILE_LOCK: &str = "Pipfile.lock";

#[derive(Debug, Default, Deserialize)]
struct PipfileToml {
    packages: Option<toml::Table>,
    requires: Option<Requires>,
}

#[derive(Debug, Default, Deserialize)]
struct Requires {
    python_version: Option<Spanned<String>>,
    python_full_version: Option<Spanned<String>>,
}

/// What a Pipfile says.
#[derive(Debug, Default)]
pub struct Pipfile {
    /// `[packages]` names (normalised), with what their extras imply.
    pub packages: BTreeSet<String>,
    /// `[requires]` python pin.
    pub python: Option<Pin>,
}

/// Parses a Pipfile.
pub fn parse_pipfile(text: &str) -> Result<Pipfile, PlanError> {
    let expected =
        "a TOML Pipfile with [packages] and optional [requires] python_version = \"X.Y\"";
    let parsed: PipfileToml =
        toml::from_str(text).map_err(|err| error::toml_error(PIPFILE, text, &err, expected))?;
    let mut packages = BTreeSet::new();
    for (name, spec) in parsed.packages.iter().flatten() {
        let Some(normalised) = deps::normalize(name) else {
            return Err(PlanError::malformed(
                PIPFILE,
                None,
                format!("{name:?} is not a package name"),
                Some(expected),
            ));
        };
        let extras: Vec<String> = spec
            .get("extras")
            .and_then(toml::Value::as_array)
            .map(|extras| {
                extras
                    .iter()
                    .filter_map(|e| e.as_str().and_then(deps::normalize))
                    .collect()
            })
            .unwrap_or_default();
        deps::collect(
            &deps::Req {
                name: normalised,
                extras,
                applies: true,
            },
            &mut packages,
        );
    }
    let mut python = None;
    if let Some(requires) = parsed.requires {
        let chosen = requires.python_full_version.or(requires.python_version);
        if let Some(value) = chosen {
            let line = error::line_of(text, value.span().start);
            let version = PyVersion::parse(value.get_ref().trim()).ok_or_else(|| {
                PlanError::malformed(
                    PIPFILE,
                    Some(line),
                    format!(
                        "[requires] python version {:?} is not X.Y or X.Y.Z",
                        value.get_ref()
                    ),
                    Some("python_version = \"3.12\" or python_full_version = \"3.12.7\""),
                )
            })?;
            python = Some(Pin {
                value: PinValue::Exact(version),
                source: Source::file(PIPFILE, Some(line)),
                label: format!("{PIPFILE} [requires] python {version}"),
            });
        }
    }
    Ok(Pipfile { packages, python })
}

#[derive(Debug, Deserialize)]
struct LockJson {
    #[serde(rename = "_meta")]
    meta: LockMeta,
    default: BTreeMap<String, LockEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct LockMeta {
    #[serde(default)]
    requires: LockRequires,
}

#[derive(Debug, Default, Deserialize)]
struct LockRequires {
    python_version: Option<String>,
    python_full_version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LockEntry {
    markers: Option<String>,
}

/// What a Pipfile.lock says.
#[derive(Debug, Default)]
pub struct PipfileLock {
    /// `default` names (normalised) whose markers hold.
    pub packages: BTreeSet<String>,
    /// `_meta.requires` python pin.
    pub python: Option<Pin>,
}

/// Parses a Pipfile.lock (JSON).
pub fn parse_lock(text: &str, env: Option<&MarkerEnvironment>) -> Result<PipfileLock, PlanError> {
    let expected =
        "a Pipfile.lock written by `pipenv lock`: a JSON object with \"_meta\" and \"default\"";
    let lock: LockJson = serde_json::from_str(text).map_err(|err| {
        let line = (err.line() > 0).then_some(err.line());
        PlanError::malformed(
            PIPFILE_LOCK,
            line,
            err.to_string()
                .split(" at line")
                .next()
                .unwrap_or("invalid JSON")
                .to_owned(),
            Some(expected),
        )
    })?;
    let mut packages = BTreeSet::new();
    for (name, entry) in &lock.default {
        let requirement = match &entry.markers {
            Some(markers) => format!("{name}; {markers}"),
            None => name.clone(),
        };
        let req = deps::parse_requirement(&requirement, env).map_err(|reason| {
            PlanError::malformed(
                PIPFILE_LOCK,
                None,
                format!("default.{name}: {reason}"),
                Some(expected),
            )
        })?;
        deps::collect(&req, &mut packages);
    }
    let requires = lock.meta.requires;
    let python = match requires.python_full_version.or(requires.python_version) {
        Some(text) => {
            let version = PyVersion::parse(text.trim()).ok_or_else(|| {
                PlanError::malformed(
                    PIPFILE_LOCK,
                    None,
                    format!("_meta.requires python version {text:?} is not X.Y or X.Y.Z"),
                    Some(expected),
                )
            })?;
            Some(Pin {
                value: PinValue::Exact(version),
                source: Source::file(PIPFILE_LOCK, None),
                label: format!("{PIPFILE_LOCK} _meta.requires python {version}"),
            })
        }
        None => None,
    };
    Ok(PipfileLock { packages, python })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipfile_packages_and_python() {
        let pipfile = parse_pipfile(
            "[packages]\nFlask = \"*\"\ngunicorn = {version = \"*\"}\n\n[dev-packages]\npytest = \"*\"\n\n[requires]\npython_version = \"3.11\"\n",
        )
        .expect("valid");
        assert_eq!(
            pipfile.packages.iter().cloned().collect::<Vec<_>>(),
            vec!["flask", "gunicorn"]
        );
        let pin = pipfile.python.expect("pin");
        assert_eq!(pin.source, Source::file("Pipfile", Some(9)));
    }

    #[test]
    fn lock_default_section_only() {
        let lock = parse_lock(
            r#"{"_meta": {"requires": {"python_version": "3.12"}}, "default": {"flask": {"version": "==3.0.3"}, "pywin32": {"markers": "sys_platform == 'win32'"}}, "develop": {"pytest": {}}}"#,
            None,
        )
        .expect("valid");
        assert!(lock.packages.contains("flask") && lock.packages.contains("pywin32"));
        assert!(!lock.packages.contains("pytest"));
        assert!(lock.python.is_some());
    }

    #[test]
    fn malformed_lock_names_the_line() {
        match parse_lock("{\n\"_meta\": {},\n\"default\": [1]\n}", None) {
            Err(PlanError::Malformed { file, line, .. }) => {
                assert_eq!(file, "Pipfile.lock");
                assert_eq!(line, Some(3));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
