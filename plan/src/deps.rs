//! Dependency names: PEP 503 normalisation, PEP 508 requirement parsing and marker evaluation.

use std::collections::BTreeSet;
use std::str::FromStr;

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder, PackageName, Requirement};

use crate::version::PyVersion;

/// PEP 503-normalises a distribution name (`Flask_Cors` → `flask-cors`); `None` when invalid.
pub fn normalize(name: &str) -> Option<String> {
    PackageName::from_str(name.trim())
        .ok()
        .map(|n| n.to_string())
}

/// The target environment markers are evaluated against: CPython on linux/x86_64.
pub fn marker_env(python: &PyVersion) -> Option<MarkerEnvironment> {
    let python_version = format!("{}.{}", python.major, python.minor);
    // The latest patch stands in when only X.Y is known.
    let full = format!(
        "{}.{}.{}",
        python.major,
        python.minor,
        python.patch.unwrap_or(99)
    );
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: &full,
        os_name: "posix",
        platform_machine: "x86_64",
        platform_python_implementation: "CPython",
        platform_release: "",
        platform_system: "Linux",
        platform_version: "",
        python_full_version: &full,
        python_version: &python_version,
        sys_platform: "linux",
    })
    .ok()
}

/// A parsed PEP 508 requirement reduced to what detection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Req {
    /// Normalised name.
    pub name: String,
    /// Normalised extras.
    pub extras: Vec<String>,
    /// Whether its markers hold in the target environment.
    pub applies: bool,
}

/// Parses a PEP 508 requirement line; `Err` carries the parser's message (never its `Display`,
/// which underlines the input and can assert on odd spans).
pub fn parse_requirement(text: &str, env: Option<&MarkerEnvironment>) -> Result<Req, String> {
    // pep508_rs 0.9.2 panics (an `expect`) when the leading name ends in `.`, `-` or `_` and is
    // followed by more text (`D. x`); reject such names before handing the line over.
    let name: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    if !name.is_empty() && PackageName::from_str(&name).is_err() {
        return Err(format!("{name:?} is not a valid package name"));
    }
    let requirement: Requirement = Requirement::from_str(text.trim()).map_err(|err| {
        let message = err.message.to_string();
        message
            .lines()
            .next()
            .unwrap_or("invalid requirement")
            .to_owned()
    })?;
    let applies = env.is_none_or(|env| requirement.evaluate_markers(env, &[]));
    Ok(Req {
        name: requirement.name.to_string(),
        extras: requirement.extras.iter().map(|e| e.to_string()).collect(),
        applies,
    })
}

/// The version of a requirement pinned to exactly one release (`numpy==1.26.4`, not
/// `==1.26.*` or a range); `None` otherwise.
pub fn exact_version(text: &str) -> Option<String> {
    let requirement = Requirement::<pep508_rs::VerbatimUrl>::from_str(text.trim()).ok()?;
    let Some(pep508_rs::VersionOrUrl::VersionSpecifier(specifiers)) = requirement.version_or_url
    else {
        return None;
    };
    let [only] = specifiers.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    (*only.operator() == pep440_rs::Operator::Equal).then(|| only.version().to_string())
}

/// Servers that a known extra is documented to pull in, for sources without a lock (the
/// requirements/PEP 621 case), so that server detection sees e.g. uvicorn behind `fastapi[standard]`.
pub fn implied_by_extra(name: &str, extra: &str) -> &'static [&'static str] {
    match (name, extra) {
        ("fastapi", "standard" | "all" | "standard-no-fastapi-cloud-cli") => {
            &["uvicorn", "fastapi-cli"]
        }
        ("litestar", "standard" | "full") => &["uvicorn"],
        _ => &[],
    }
}

/// Servers a framework always depends on (Quart runs on hypercorn), for sources without a lock.
pub fn implied_by_package(name: &str) -> &'static [&'static str] {
    match name {
        "quart" => &["hypercorn"],
        _ => &[],
    }
}

/// Adds `req` (and what its extras imply) to `names` when it applies.
pub fn collect(req: &Req, names: &mut BTreeSet<String>) {
    if !req.applies {
        return;
    }
    names.insert(req.name.clone());
    for implied in implied_by_package(&req.name) {
        names.insert((*implied).to_owned());
    }
    for extra in &req.extras {
        for implied in implied_by_extra(&req.name, extra) {
            names.insert((*implied).to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_pep503_normalised() {
        assert_eq!(normalize("Flask_Cors").as_deref(), Some("flask-cors"));
        assert_eq!(
            normalize("zope.interface").as_deref(),
            Some("zope-interface")
        );
        assert_eq!(normalize("uWSGI").as_deref(), Some("uwsgi"));
        assert_eq!(normalize("not a name"), None);
    }

    #[test]
    fn markers_are_evaluated_for_the_target() {
        let env = marker_env(&PyVersion {
            major: 3,
            minor: 11,
            patch: None,
        });
        let on = parse_requirement("gunicorn>=21; sys_platform == 'linux'", env.as_ref());
        let off = parse_requirement("waitress; sys_platform == 'win32'", env.as_ref());
        let old = parse_requirement("tomli; python_version < '3.11'", env.as_ref());
        assert_eq!(on.map(|r| r.applies), Ok(true));
        assert_eq!(off.map(|r| r.applies), Ok(false));
        assert_eq!(old.map(|r| r.applies), Ok(false));
    }

    #[test]
    fn names_ending_in_punctuation_are_errors_not_panics() {
        // Regression: pep508_rs 0.9.2 panics on these; found by the property test.
        for text in ["D. x", "a- ;", "b_[x]"] {
            assert!(parse_requirement(text, None).is_err(), "{text}");
        }
    }

    #[test]
    fn exact_versions_are_single_equals_pins() {
        assert_eq!(exact_version("numpy==1.26.4").as_deref(), Some("1.26.4"));
        assert_eq!(
            exact_version("NumPy[x] == 2.2.6 ; python_version >= '3.10'").as_deref(),
            Some("2.2.6")
        );
        assert_eq!(exact_version("numpy==1.26.*"), None);
        assert_eq!(exact_version("numpy>=1,<2"), None);
        assert_eq!(exact_version("numpy"), None);
    }

    #[test]
    fn extras_imply_servers() {
        let req = parse_requirement("FastAPI[standard]>=0.115", None).expect("valid");
        let mut names = BTreeSet::new();
        collect(&req, &mut names);
        assert!(
            names.contains("fastapi") && names.contains("uvicorn") && names.contains("fastapi-cli")
        );
    }
}
