//! Lock and manifest files turned into the requirements files the installer is given.
//!
//! pipenv and poetry are not run: their install semantics (`pipenv install --deploy --system`,
//! `poetry install --only main`) are reproduced from the plan: the plan crate parses the lock
//! (one parser per format, shared with detection) and decides which packages are installed; here
//! exactly those packages become a fully pinned, hash-checked requirements file installed with
//! `--no-deps`.

mod pipfile;
mod poetry;
mod pyjson;
mod pyproject;

pub use pipfile::pipfile_hash;
pub(crate) use pipfile::{pipfile_lock_requirements, pipfile_requirements};
pub(crate) use poetry::poetry_lock_requirements;
pub(crate) use pyproject::{pep621_dynamic_dependencies, pep621_requirements};

use pyslip_plan::InstallPlan;
use pyslip_plan::locks::{LockedPackage, PackageSource};

use crate::error::InstallError;

/// An input file error.
pub(crate) fn invalid(file: &str, reason: impl Into<String>) -> InstallError {
    InstallError::InvalidInput {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

/// Parses a TOML file, naming the file and line on error.
pub(crate) fn parse_toml(file: &str, text: &str) -> Result<toml::Table, InstallError> {
    text.parse::<toml::Table>().map_err(|e| {
        let line = e.span().map(|s| {
            text.get(..s.start)
                .unwrap_or_default()
                .lines()
                .count()
                .max(1)
        });
        let msg = e.message().to_owned();
        invalid(
            file,
            match line {
                Some(l) => format!("line {l}: {msg}"),
                None => msg,
            },
        )
    })
}

/// One pinned requirement line with its hashes: `name[extras]==version ; markers --hash=...`.
pub(crate) fn pinned_line(
    name: &str,
    extras: &[String],
    version: &str,
    markers: Option<&str>,
    hashes: &[String],
) -> String {
    let mut line = name.to_owned();
    if !extras.is_empty() {
        line.push('[');
        line.push_str(&extras.join(","));
        line.push(']');
    }
    line.push_str("==");
    line.push_str(version);
    if let Some(m) = markers.filter(|m| !m.trim().is_empty()) {
        line.push_str(" ; ");
        line.push_str(m);
    }
    for h in hashes {
        line.push_str(" --hash=");
        line.push_str(h);
    }
    line
}

/// Rejects values that would break out of one requirements-file line (or smuggle an option).
pub(crate) fn check_token(file: &str, what: &str, value: &str) -> Result<(), InstallError> {
    if value.contains(['\n', '\r', '\0'])
        || value.contains(" #")
        || value.trim_start().starts_with('-')
    {
        return Err(invalid(
            file,
            format!("{what} {value:?} is not a valid value"),
        ));
    }
    Ok(())
}

/// The pinned, hash-checked lines of the lock's packages that the plan installs from an index
/// (its `dependencies` minus its local packages, which the project layer installs). Every such
/// name must be in the lock (else the lock is out of date with its manifest); index URLs of the
/// packages' sources are added to `indexes`.
pub(crate) fn locked_lines(
    file: &'static str,
    packages: &[LockedPackage],
    install: &InstallPlan,
    indexes: &mut Vec<String>,
) -> Result<Vec<String>, InstallError> {
    let mut lines = Vec::new();
    let local = |key: &String| install.local.iter().any(|l| &l.name == key);
    for key in install.dependencies.iter().filter(|k| !local(k)) {
        let mut found = false;
        for pkg in packages.iter().filter(|p| &p.key == key) {
            found = true;
            lines.push(locked_line(file, pkg, indexes)?);
        }
        if !found {
            return Err(invalid(
                file,
                format!("{key} is a dependency but is not in the lock: the lock is out of date"),
            ));
        }
    }
    Ok(lines)
}

fn locked_line(
    file: &'static str,
    pkg: &LockedPackage,
    indexes: &mut Vec<String>,
) -> Result<String, InstallError> {
    let name = &pkg.name;
    match &pkg.source {
        PackageSource::Registry(url) => {
            if let Some(url) = url
                && !indexes.contains(url)
            {
                check_token(file, "source url", url)?;
                indexes.push(url.clone());
            }
        }
        other => {
            return Err(invalid(
                file,
                format!(
                    "package {name:?} comes from a {} source, which pyslip cannot install from a lock yet",
                    other.kind()
                ),
            ));
        }
    }
    let version = pkg
        .version
        .as_deref()
        .ok_or_else(|| invalid(file, format!("package {name:?} has no version")))?;
    if pkg.hashes.is_empty() {
        return Err(invalid(
            file,
            format!("package {name:?} has no file hashes"),
        ));
    }
    for value in [name.as_str(), version]
        .into_iter()
        .chain(pkg.markers.as_deref())
        .chain(pkg.extras.iter().map(String::as_str))
        .chain(pkg.hashes.iter().map(String::as_str))
    {
        check_token(file, "value", value)?;
    }
    Ok(pinned_line(
        name,
        &pkg.extras,
        version,
        pkg.markers.as_deref(),
        &pkg.hashes,
    ))
}
