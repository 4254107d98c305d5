//! Errors of planning: each names the file, the line where known, and what was expected.

use std::path::PathBuf;

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The project directory is missing or not a directory.
    #[error("project directory {} is not a directory", path.display())]
    NotADirectory {
        /// The directory given.
        path: PathBuf,
    },
    /// A project file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A project or configuration file is malformed.
    #[error("{}: {reason}", location(file, *line))]
    Malformed {
        /// The file, relative to the project.
        file: String,
        /// 1-based line, where known.
        line: Option<usize>,
        /// What is wrong and what was expected.
        reason: String,
        /// Accepted forms, shown as the hint.
        expected: Option<String>,
    },
    /// A Python version pyslip does not build.
    #[error("unsupported python version {version:?} from {from}")]
    UnsupportedPython {
        /// The version as written.
        version: String,
        /// Where it came from (flag, file and line).
        from: String,
    },
    /// A command-line value is malformed.
    #[error("invalid {flag} value {value:?}: {reason}")]
    InvalidFlag {
        /// The flag.
        flag: String,
        /// The value.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// No way to start the app was found.
    #[error("nothing to run: no start command could be detected")]
    NothingDetected {
        /// What was looked for.
        looked_for: Vec<String>,
    },
    /// A framework was found but none of its servers is installed.
    #[error("{framework} app found but no server for it is in the dependencies (looked for {})", servers.join(", "))]
    NoServer {
        /// The framework.
        framework: String,
        /// Servers looked for.
        servers: Vec<String>,
    },
    /// A path dependency pyslip cannot install.
    #[error("{file}: {name} is a path dependency at {path:?}, {reason}")]
    PathDependency {
        /// The file that declares it.
        file: String,
        /// Its name.
        name: String,
        /// The path as written.
        path: String,
        /// Why it cannot be installed.
        reason: String,
    },
    /// Walking the project failed.
    #[error("cannot list the project files under {}", path.display())]
    Walk {
        /// Where.
        path: PathBuf,
        /// The error.
        #[source]
        source: walkdir::Error,
    },
}

fn location(file: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    }
}

impl PlanError {
    /// A malformed-file error.
    pub(crate) fn malformed(
        file: &str,
        line: Option<usize>,
        reason: impl Into<String>,
        expected: Option<&str>,
    ) -> Self {
        PlanError::Malformed {
            file: file.to_owned(),
            line,
            reason: reason.into(),
            expected: expected.map(str::to_owned),
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            PlanError::Malformed { expected, .. } => expected.clone(),
            PlanError::UnsupportedPython { .. } => Some(format!(
                "pyslip builds Python {}; write X.Y or X.Y.Z (e.g. 3.13 or 3.12.7)",
                crate::version::supported_range()
            )),
            PlanError::InvalidFlag { .. } => None,
            PlanError::NothingDetected { looked_for } => Some(format!(
                "looked for {}; set the start command with --cmd \"...\", `cmd = \"...\"` under [tool.pyslip] in pyproject.toml (or in pyslip.toml), or a Procfile `web:` line",
                looked_for.join(", ")
            )),
            PlanError::NoServer { servers, .. } => Some(format!(
                "add one of {} to the dependencies, or set `cmd` in [tool.pyslip]",
                servers.join(", ")
            )),
            PlanError::PathDependency { name, .. } => Some(format!(
                "pyslip installs path dependencies that are folders inside the project (or inside the uv workspace it is a member of): move {name} there, make both members of one uv workspace, or publish {name} to a package index"
            )),
            PlanError::NotADirectory { .. } | PlanError::Read { .. } | PlanError::Walk { .. } => {
                None
            }
        }
    }
}

/// Converts a byte offset into a 1-based line number.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |head| head.iter().filter(|&&b| b == b'\n').count())
        + 1
}

/// Turns a `toml` error into a [`PlanError::Malformed`] naming the file and line.
pub(crate) fn toml_error(
    file: &str,
    text: &str,
    err: &toml::de::Error,
    expected: &str,
) -> PlanError {
    let line = err.span().map(|span| line_of(text, span.start));
    let message = err.message().trim().trim_end_matches('.').to_owned();
    PlanError::malformed(file, line, message, Some(expected))
}
