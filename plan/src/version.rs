//! Python version: parsing pins and specifiers, and choosing the version (first match wins).

use std::fmt;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};

use crate::error::PlanError;
use crate::model::{Decision, Ignored, Source};

/// Oldest supported minor of Python 3.
pub const OLDEST_MINOR: u64 = 9;
/// Newest supported minor of Python 3 (also the default).
pub const NEWEST_MINOR: u64 = 14;

/// "3.9–3.14", for messages.
pub fn supported_range() -> String {
    format!("3.{OLDEST_MINOR}–3.{NEWEST_MINOR}")
}

/// A CPython version as written in a pin: `X.Y` or `X.Y.Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyVersion {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch, when pinned.
    pub patch: Option<u64>,
}

impl fmt::Display for PyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(patch) => write!(f, "{}.{}.{}", self.major, self.minor, patch),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

impl PyVersion {
    /// Parses exactly `X.Y` or `X.Y.Z` (digits only).
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<&str> = text.split('.').collect();
        let number = |s: &str| -> Option<u64> {
            if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        match parts.as_slice() {
            [major, minor] => Some(PyVersion {
                major: number(major)?,
                minor: number(minor)?,
                patch: None,
            }),
            [major, minor, patch] => Some(PyVersion {
                major: number(major)?,
                minor: number(minor)?,
                patch: Some(number(patch)?),
            }),
            _ => None,
        }
    }

    /// Whether pyslip builds this version.
    pub fn is_supported(&self) -> bool {
        self.major == 3 && (OLDEST_MINOR..=NEWEST_MINOR).contains(&self.minor)
    }

    /// Whether two pins name the same interpreter line (equal minor; equal patch when both have one).
    pub fn agrees_with(&self, other: &PyVersion) -> bool {
        self.major == other.major
            && self.minor == other.minor
            && (self.patch.is_none() || other.patch.is_none() || self.patch == other.patch)
    }

    fn to_pep440(self, default_patch: u64) -> Version {
        Version::new([self.major, self.minor, self.patch.unwrap_or(default_patch)])
    }
}

/// What a project file says about the Python version.
#[derive(Debug, Clone)]
pub enum PinValue {
    /// An exact `X.Y[.Z]`.
    Exact(PyVersion),
    /// A specifier; satisfied when any of the alternatives is (poetry's `||`).
    Specifier {
        /// As written.
        text: String,
        /// Alternatives.
        any_of: Vec<VersionSpecifiers>,
    },
}

/// One Python pin found in the project.
#[derive(Debug, Clone)]
pub struct Pin {
    /// The value.
    pub value: PinValue,
    /// File and line.
    pub source: Source,
    /// Human label, e.g. `runtime.txt python-3.11`.
    pub label: String,
}

/// Reads `.python-version`: first non-empty, non-`#` line.
pub fn parse_python_version_file(file: &str, text: &str) -> Result<Option<Pin>, PlanError> {
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let version = PyVersion::parse(line).ok_or_else(|| {
            PlanError::malformed(
                file,
                Some(index + 1),
                format!("{line:?} is not a CPython version"),
                Some("write X.Y or X.Y.Z (e.g. 3.13); interpreter names such as pypy3.10 or virtualenv names are not accepted"),
            )
        })?;
        return Ok(Some(Pin {
            value: PinValue::Exact(version),
            source: Source::file(file, Some(index + 1)),
            label: format!("{file} {version}"),
        }));
    }
    Ok(None)
}

/// Reads `runtime.txt`: `python-X.Y[.Z]` on its first non-empty line.
pub fn parse_runtime_txt(file: &str, text: &str) -> Result<Option<Pin>, PlanError> {
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let version = line
            .strip_prefix("python-")
            .and_then(PyVersion::parse)
            .ok_or_else(|| {
                PlanError::malformed(
                    file,
                    Some(index + 1),
                    format!("{line:?} is not a python version"),
                    Some("write python-X.Y or python-X.Y.Z, e.g. python-3.13"),
                )
            })?;
        return Ok(Some(Pin {
            value: PinValue::Exact(version),
            source: Source::file(file, Some(index + 1)),
            label: format!("{file} python-{version}"),
        }));
    }
    Ok(None)
}

/// Parses a PEP 440 `requires-python` specifier.
pub fn parse_pep440_specifier(text: &str) -> Result<Vec<VersionSpecifiers>, String> {
    VersionSpecifiers::from_str(text.trim())
        .map(|spec| vec![spec])
        .map_err(|err| err.to_string())
}

/// Parses a poetry version constraint (`^3.11`, `~3.11`, `>=3.9,<4`, `3.11.*`, `a || b`) into
/// PEP 440 alternatives. Hand-written: no maintained Rust crate implements poetry's syntax.
pub fn parse_poetry_constraint(text: &str) -> Result<Vec<VersionSpecifiers>, String> {
    let mut alternatives = Vec::new();
    for alternative in text.split("||") {
        let mut clauses = Vec::new();
        for clause in alternative.split(',').flat_map(split_poetry_spaces) {
            clauses.push(poetry_clause(&clause)?);
        }
        let joined = clauses
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        alternatives.push(VersionSpecifiers::from_str(&joined).map_err(|err| err.to_string())?);
    }
    Ok(alternatives)
}

/// Poetry allows `>=3.9 <4.0` (space as "and"); an operator followed by a space stays joined.
fn split_poetry_spaces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for token in text.split_whitespace() {
        match out.last_mut() {
            Some(last) if last.chars().all(|c| "<>=!~^".contains(c)) => last.push_str(token),
            _ => out.push(token.to_owned()),
        }
    }
    out
}

fn poetry_clause(clause: &str) -> Result<String, String> {
    let clause = clause.trim();
    if clause.is_empty() || clause == "*" {
        return Ok(String::new());
    }
    let bad = || format!("{clause:?} is not a version constraint");
    if let Some(rest) = clause.strip_prefix('^') {
        let parts = release_parts(rest).ok_or_else(bad)?;
        // ^X.Y.Z: < next version bumping the first non-zero part.
        let pivot = parts
            .iter()
            .position(|&p| p != 0)
            .unwrap_or(parts.len() - 1);
        let mut upper: Vec<u64> = parts.iter().take(pivot + 1).copied().collect();
        if let Some(last) = upper.last_mut() {
            *last += 1;
        }
        return Ok(format!(">={},<{}", join(&parts), join(&upper)));
    }
    if let Some(rest) = clause.strip_prefix('~').filter(|r| !r.starts_with('=')) {
        let parts = release_parts(rest).ok_or_else(bad)?;
        let mut upper: Vec<u64> = parts.iter().take(2.min(parts.len())).copied().collect();
        if upper.len() == 1 {
            upper[0] += 1;
        } else if let Some(last) = upper.last_mut() {
            *last += 1;
        }
        return Ok(format!(">={},<{}", join(&parts), join(&upper)));
    }
    if clause.starts_with(|c: char| c.is_ascii_digit()) {
        // A bare version: poetry treats `3.11` as that release line.
        return Ok(if clause.ends_with(".*") {
            format!("=={clause}")
        } else {
            format!("=={clause}.*")
        });
    }
    Ok(clause.to_owned())
}

fn release_parts(text: &str) -> Option<Vec<u64>> {
    let parts: Option<Vec<u64>> = text.trim().split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| !p.is_empty() && p.len() <= 4)
}

fn join(parts: &[u64]) -> String {
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn satisfies(any_of: &[VersionSpecifiers], version: &Version) -> bool {
    any_of.iter().any(|spec| spec.contains(version))
}

/// The newest supported minor whose latest release satisfies the specifier (`X.Y`); failing that,
/// the newest exact supported release that does (`X.Y.Z`, for `==3.11.4`-style pins).
pub fn newest_satisfying(any_of: &[VersionSpecifiers]) -> Option<PyVersion> {
    // Patch releases never go this high; "3.Y.99" stands for "the latest 3.Y".
    const LATEST_PATCH: u64 = 99;
    for minor in (OLDEST_MINOR..=NEWEST_MINOR).rev() {
        let line = PyVersion {
            major: 3,
            minor,
            patch: None,
        };
        if satisfies(any_of, &line.to_pep440(LATEST_PATCH)) {
            return Some(line);
        }
    }
    for minor in (OLDEST_MINOR..=NEWEST_MINOR).rev() {
        for patch in (0..LATEST_PATCH).rev() {
            let exact = PyVersion {
                major: 3,
                minor,
                patch: Some(patch),
            };
            if satisfies(any_of, &exact.to_pep440(patch)) {
                return Some(exact);
            }
        }
    }
    None
}

/// The chosen version plus what was ignored and warned about.
#[derive(Debug)]
pub struct VersionChoice {
    /// The decision.
    pub decision: Decision<String>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Ignored pins.
    pub ignored: Vec<Ignored>,
    /// Versions the build may choose instead (newest first), when nothing pins one.
    pub candidates: Vec<String>,
}

/// Chooses the version: `explicit` (flag, then config) wins, then `pins` in priority order, then 3.14.
pub fn choose(
    explicit: Option<(String, Source)>,
    pins: &[Pin],
) -> Result<VersionChoice, PlanError> {
    let mut warnings = Vec::new();
    let mut ignored = Vec::new();
    if let Some((text, source)) = explicit {
        let version =
            PyVersion::parse(text.trim()).ok_or_else(|| PlanError::UnsupportedPython {
                version: text.clone(),
                from: describe(&source),
            })?;
        if !version.is_supported() {
            return Err(PlanError::UnsupportedPython {
                version: text,
                from: describe(&source),
            });
        }
        for pin in pins {
            let agrees = match &pin.value {
                PinValue::Exact(pinned) => version.agrees_with(pinned),
                PinValue::Specifier { any_of, .. } => {
                    satisfies(any_of, &version.to_pep440(0))
                        || satisfies(any_of, &version.to_pep440(99))
                }
            };
            if !agrees {
                warnings.push(format!(
                    "python {version} from {} contradicts {} ({}); {} wins",
                    describe(&source),
                    pin.label,
                    describe(&pin.source),
                    describe(&source)
                ));
            }
            ignored.push(Ignored {
                what: pin.label.clone(),
                reason: format!("{} wins", describe(&source)),
            });
        }
        return Ok(VersionChoice {
            decision: Decision::new(version.to_string(), source),
            warnings,
            ignored,
            candidates: Vec::new(),
        });
    }
    let Some((first, rest)) = pins.split_first() else {
        return Ok(VersionChoice {
            decision: Decision::new(format!("3.{NEWEST_MINOR}"), Source::Default),
            warnings,
            ignored,
            candidates: candidates(&[]),
        });
    };
    let version = match &first.value {
        PinValue::Exact(version) => {
            if !version.is_supported() {
                return Err(PlanError::UnsupportedPython {
                    version: version.to_string(),
                    from: describe(&first.source),
                });
            }
            *version
        }
        PinValue::Specifier { text, any_of } => {
            newest_satisfying(any_of).ok_or_else(|| PlanError::UnsupportedPython {
                version: text.clone(),
                from: describe(&first.source),
            })?
        }
    };
    for pin in rest {
        ignored.push(Ignored {
            what: pin.label.clone(),
            reason: format!("{} wins", first.label),
        });
    }
    let source = match (&first.value, &first.source) {
        (PinValue::Specifier { text, .. }, Source::File { path, .. }) => {
            Source::detected(path, format!("newest supported minor satisfying {text:?}"))
        }
        (_, source) => source.clone(),
    };
    // A specifier whose newest match is the default did not decide the version (no upper
    // bound): the build may still pick an older allowed minor.
    let candidates = match &first.value {
        PinValue::Specifier { any_of, .. }
            if version.minor == NEWEST_MINOR && version.patch.is_none() =>
        {
            candidates(any_of)
        }
        _ => Vec::new(),
    };
    Ok(VersionChoice {
        decision: Decision::new(version.to_string(), source),
        warnings,
        ignored,
        candidates,
    })
}

/// Supported minors (newest first) that `any_of` allows (all of them for no specifier).
fn candidates(any_of: &[VersionSpecifiers]) -> Vec<String> {
    (OLDEST_MINOR..=NEWEST_MINOR)
        .rev()
        .map(|minor| PyVersion {
            major: 3,
            minor,
            patch: None,
        })
        .filter(|v| any_of.is_empty() || satisfies(any_of, &v.to_pep440(99)))
        .map(|v| v.to_string())
        .collect()
}

/// A short description of a source for messages: `--python`, `.python-version:1`, ….
pub fn describe(source: &Source) -> String {
    match source {
        Source::Flag { flag } => flag.clone(),
        Source::Config { file, key } => format!("{file} {key}"),
        Source::File {
            path,
            line: Some(line),
        } => format!("{path}:{line}"),
        Source::File { path, line: None } => path.clone(),
        Source::Procfile { line } => format!("Procfile:{line}"),
        Source::Detected { file, .. } => file.clone(),
        Source::Derived { from } => format!("derived from {from}"),
        Source::Default => "default".to_owned(),
        Source::Index {
            file,
            line: Some(line),
            ..
        } => format!("{file}:{line}"),
        Source::Index { file, .. } => file.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Option<String> {
        newest_satisfying(&parse_pep440_specifier(text).ok()?).map(|v| v.to_string())
    }

    fn poetry(text: &str) -> Option<String> {
        newest_satisfying(&parse_poetry_constraint(text).ok()?).map(|v| v.to_string())
    }

    #[test]
    fn specifiers_pick_the_newest_supported_minor() {
        assert_eq!(spec(">=3.10").as_deref(), Some("3.14"));
        assert_eq!(spec(">=3.10,<3.13").as_deref(), Some("3.12"));
        assert_eq!(spec("~=3.11.0").as_deref(), Some("3.11"));
        assert_eq!(spec("==3.11.*").as_deref(), Some("3.11"));
        assert_eq!(spec(">=3.11.4,<3.12").as_deref(), Some("3.11"));
        assert_eq!(spec("==3.11.4").as_deref(), Some("3.11.4"));
        assert_eq!(spec("<3.9"), None);
        assert_eq!(spec(">=4"), None);
    }

    #[test]
    fn poetry_constraints_translate() {
        assert_eq!(poetry("^3.11").as_deref(), Some("3.14"));
        assert_eq!(poetry("~3.11").as_deref(), Some("3.11"));
        assert_eq!(poetry(">=3.9 <3.12").as_deref(), Some("3.11"));
        assert_eq!(poetry(">=3.9,<3.11 || ^3.13").as_deref(), Some("3.14"));
        assert_eq!(poetry("3.10").as_deref(), Some("3.10"));
        assert_eq!(poetry("3.10.*").as_deref(), Some("3.10"));
        assert_eq!(poetry("*").as_deref(), Some("3.14"));
        assert!(parse_poetry_constraint("^banana").is_err());
    }

    #[test]
    fn pins_parse_strictly() {
        assert_eq!(
            PyVersion::parse("3.12").map(|v| v.to_string()).as_deref(),
            Some("3.12")
        );
        assert_eq!(
            PyVersion::parse("3.12.7").map(|v| v.to_string()).as_deref(),
            Some("3.12.7")
        );
        for bad in [
            "3", "pypy3.10", "3.12-dev", "3.13t", "myenv", "3..1", "3.1.2.3", "",
        ] {
            assert_eq!(PyVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn python_version_file_errors_name_the_line() {
        let err = parse_python_version_file(".python-version", "# comment\n\npypy3.10\n");
        match err {
            Err(PlanError::Malformed { file, line, .. }) => {
                assert_eq!(file, ".python-version");
                assert_eq!(line, Some(3));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn runtime_txt_needs_the_python_prefix() {
        assert!(parse_runtime_txt("runtime.txt", "3.11\n").is_err());
        let pin = parse_runtime_txt("runtime.txt", "python-3.11.9\n")
            .ok()
            .flatten();
        assert!(matches!(pin.map(|p| p.value), Some(PinValue::Exact(v)) if v.patch == Some(9)));
    }
}
