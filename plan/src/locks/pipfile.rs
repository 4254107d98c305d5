//! Pipfile and Pipfile.lock: `pipenv install --deploy --system` semantics. The plan takes the
//! lock's `default` packages whose markers hold; the install writes those from the same records.

use std::collections::{BTreeMap, BTreeSet};

use pep508_rs::MarkerEnvironment;
use serde::Deserialize;
use toml::Spanned;

use super::{LockedPackage, PackageSource, marker_holds};
use crate::deps;
use crate::error::{self, PlanError};
use crate::model::Source;
use crate::version::{Pin, PinValue, PyVersion};

/// `Pipfile`.
pub const PIPFILE: &str = "Pipfile";
/// `Pipfile.lock`.
pub const PIPFILE_LOCK: &str = "Pipfile.lock";

const EXPECTED_PIPFILE: &str =
    "a TOML Pipfile with [packages] and optional [requires] python_version = \"X.Y\"";

#[derive(Debug, Default, Deserialize)]
struct PipfileToml {
    #[serde(default)]
    source: Vec<toml::Table>,
    packages: Option<toml::Table>,
    requires: Option<Requires>,
}

#[derive(Debug, Default, Deserialize)]
struct Requires {
    python_version: Option<Spanned<String>>,
    python_full_version: Option<Spanned<String>>,
}

/// One `[packages]` entry of a Pipfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipfileRequirement {
    /// The name as written.
    pub name: String,
    /// PEP 503-normalised name.
    pub key: String,
    /// The version specifier as written (`*` for any).
    pub version: String,
    /// Extras.
    pub extras: Vec<String>,
    /// Environment markers.
    pub markers: Option<String>,
    /// A path, file, git or editable entry: where it comes from.
    pub source: PackageSource,
}

/// What a Pipfile says.
#[derive(Debug, Default)]
pub struct Pipfile {
    /// `[packages]`, in file order.
    pub requirements: Vec<PipfileRequirement>,
    /// `[[source]]` URLs, in order.
    pub sources: Vec<String>,
    /// `[packages]` names (normalised), with what their extras imply.
    pub(crate) packages: BTreeSet<String>,
    /// `[requires]` python pin.
    pub(crate) python: Option<Pin>,
}

/// Where a Pipfile or Pipfile.lock entry comes from (`path`, `file`, `git`, … keys).
fn entry_source(get: impl Fn(&str) -> Option<String>, editable: bool) -> PackageSource {
    if let Some(path) = get("path") {
        return PackageSource::Directory { path, editable };
    }
    if let Some(file) = get("file") {
        return if file.contains("://") && !file.starts_with("file:") {
            PackageSource::Url { url: file }
        } else {
            PackageSource::File { path: file }
        };
    }
    for vcs in ["git", "hg", "svn", "bzr"] {
        if let Some(url) = get(vcs) {
            return PackageSource::Git { url };
        }
    }
    PackageSource::Registry(None)
}

/// Parses a Pipfile.
pub fn parse_pipfile(text: &str) -> Result<Pipfile, PlanError> {
    let parsed: PipfileToml = toml::from_str(text)
        .map_err(|err| error::toml_error(PIPFILE, text, &err, EXPECTED_PIPFILE))?;
    let mut out = Pipfile {
        sources: parsed
            .source
            .iter()
            .filter_map(|s| {
                s.get("url")
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned)
            })
            .collect(),
        ..Pipfile::default()
    };
    for (name, spec) in parsed.packages.iter().flatten() {
        let Some(key) = deps::normalize(name) else {
            return Err(PlanError::malformed(
                PIPFILE,
                None,
                format!("{name:?} is not a package name"),
                Some(EXPECTED_PIPFILE),
            ));
        };
        let requirement = match spec {
            toml::Value::String(version) => PipfileRequirement {
                name: name.clone(),
                key,
                version: version.clone(),
                extras: Vec::new(),
                markers: None,
                source: PackageSource::Registry(None),
            },
            toml::Value::Table(t) => {
                let get = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_owned);
                let editable = t.get("editable").and_then(toml::Value::as_bool) == Some(true);
                PipfileRequirement {
                    name: name.clone(),
                    key,
                    version: get("version").unwrap_or_else(|| "*".to_owned()),
                    extras: super::toml_strings(t.get("extras")),
                    markers: get("markers"),
                    source: entry_source(get, editable),
                }
            }
            _ => {
                return Err(PlanError::malformed(
                    PIPFILE,
                    None,
                    format!("[packages] {name}: expected a version string or a table"),
                    Some(EXPECTED_PIPFILE),
                ));
            }
        };
        deps::collect(
            &deps::Req {
                name: requirement.key.clone(),
                extras: requirement
                    .extras
                    .iter()
                    .filter_map(|e| deps::normalize(e))
                    .collect(),
                applies: true,
            },
            &mut out.packages,
        );
        out.requirements.push(requirement);
    }
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
            out.python = Some(Pin {
                value: PinValue::Exact(version),
                source: Source::file(PIPFILE, Some(line)),
                label: format!("{PIPFILE} [requires] python {version}"),
            });
        }
    }
    Ok(out)
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
    hash: BTreeMap<String, String>,
    #[serde(default)]
    requires: LockRequires,
    #[serde(default)]
    sources: Vec<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct LockRequires {
    python_version: Option<String>,
    python_full_version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LockEntry {
    version: Option<String>,
    #[serde(default)]
    hashes: Vec<String>,
    #[serde(default)]
    extras: Vec<String>,
    markers: Option<String>,
    #[serde(flatten)]
    rest: BTreeMap<String, serde_json::Value>,
}

/// What a Pipfile.lock says.
#[derive(Debug, Default)]
pub struct PipfileLock {
    /// `_meta.hash.sha256`: the hash of the Pipfile the lock was made from.
    pub pipfile_hash: Option<String>,
    /// `_meta.sources` URLs, in order.
    pub sources: Vec<String>,
    /// The `default` packages, sorted by name.
    pub packages: Vec<LockedPackage>,
    /// `_meta.requires` python pin.
    pub(crate) python: Option<Pin>,
}

const EXPECTED_LOCK: &str =
    "a Pipfile.lock written by `pipenv lock`: a JSON object with \"_meta\" and \"default\"";

/// Parses a Pipfile.lock (JSON).
pub fn parse_lock(text: &str) -> Result<PipfileLock, PlanError> {
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
            Some(EXPECTED_LOCK),
        )
    })?;
    let mut packages = Vec::new();
    for (name, entry) in &lock.default {
        let key = deps::normalize(name).ok_or_else(|| {
            PlanError::malformed(
                PIPFILE_LOCK,
                None,
                format!("default.{name}: not a package name"),
                Some(EXPECTED_LOCK),
            )
        })?;
        if let Some(markers) = &entry.markers {
            deps::parse_requirement(&format!("{name}; {markers}"), None).map_err(|reason| {
                PlanError::malformed(
                    PIPFILE_LOCK,
                    None,
                    format!("default.{name}: {reason}"),
                    Some(EXPECTED_LOCK),
                )
            })?;
        }
        let get = |k: &str| {
            entry
                .rest
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let editable = entry
            .rest
            .get("editable")
            .and_then(serde_json::Value::as_bool)
            == Some(true);
        packages.push(LockedPackage {
            name: name.clone(),
            key,
            version: entry
                .version
                .as_deref()
                .map(|v| v.strip_prefix("==").unwrap_or(v).to_owned()),
            extras: entry.extras.clone(),
            hashes: entry.hashes.clone(),
            markers: entry.markers.clone(),
            source: entry_source(get, editable),
        });
    }
    let requires = lock.meta.requires;
    let python = match requires.python_full_version.or(requires.python_version) {
        Some(text) => {
            let version = PyVersion::parse(text.trim()).ok_or_else(|| {
                PlanError::malformed(
                    PIPFILE_LOCK,
                    None,
                    format!("_meta.requires python version {text:?} is not X.Y or X.Y.Z"),
                    Some(EXPECTED_LOCK),
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
    Ok(PipfileLock {
        pipfile_hash: lock.meta.hash.get("sha256").cloned(),
        sources: lock
            .meta
            .sources
            .iter()
            .filter_map(|s| s.get("url").and_then(|u| u.as_str()).map(str::to_owned))
            .collect(),
        packages,
        python,
    })
}

impl PipfileLock {
    /// What `pipenv install --deploy` installs: the `default` packages whose markers hold in `env`.
    pub(crate) fn installed(&self, env: Option<&MarkerEnvironment>) -> BTreeSet<String> {
        self.packages
            .iter()
            .filter(|p| marker_holds(&p.key, p.markers.as_deref(), env))
            .map(|p| p.key.clone())
            .collect()
    }
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
        assert_eq!(pipfile.requirements[1].version, "*");
        let pin = pipfile.python.expect("pin");
        assert_eq!(pin.source, Source::file("Pipfile", Some(9)));
    }

    #[test]
    fn lock_default_section_only() {
        let lock = parse_lock(
            r#"{"_meta": {"requires": {"python_version": "3.12"}}, "default": {"flask": {"version": "==3.0.3"}, "pywin32": {"markers": "sys_platform == 'win32'"}}, "develop": {"pytest": {}}}"#,
        )
        .expect("valid");
        let all = lock.installed(None);
        assert!(all.contains("flask") && all.contains("pywin32"));
        assert!(!all.contains("pytest"));
        assert!(lock.python.is_some());
        assert_eq!(lock.packages[0].version.as_deref(), Some("3.0.3"));
        let env = deps::marker_env(&PyVersion {
            major: 3,
            minor: 12,
            patch: None,
        });
        assert!(!lock.installed(env.as_ref()).contains("pywin32"));
    }

    #[test]
    fn malformed_lock_names_the_line() {
        match parse_lock("{\n\"_meta\": {},\n\"default\": [1]\n}") {
            Err(PlanError::Malformed { file, line, .. }) => {
                assert_eq!(file, "Pipfile.lock");
                assert_eq!(line, Some(3));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
