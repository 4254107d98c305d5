//! `pyproject.toml`: the parts detection reads (`[project]`, `[tool.poetry]`, `[tool.pyslip]`,
//! `[build-system]`); everything else is accepted as is.

use serde::Deserialize;
use toml::Spanned;

use crate::config::{self, Config, LoadedConfig};
use crate::error::{self, PlanError};

/// The file name.
pub const FILE: &str = "pyproject.toml";

/// The parts of pyproject.toml detection needs.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PyProject {
    /// PEP 621 metadata.
    pub project: Option<ProjectTable>,
    /// `[build-system]`: present means the project is a package.
    #[serde(rename = "build-system")]
    pub build_system: Option<toml::Table>,
    /// `[tool]`.
    pub tool: Option<Tool>,
}

/// `[project]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectTable {
    /// Name.
    pub name: Option<String>,
    /// `requires-python`.
    #[serde(rename = "requires-python")]
    pub requires_python: Option<Spanned<String>>,
    /// `dependencies`.
    pub dependencies: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[tool]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tool {
    /// `[tool.poetry]`.
    pub poetry: Option<Poetry>,
    /// `[tool.pyslip]`.
    pub pyslip: Option<Config>,
}

/// `[tool.poetry]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Poetry {
    /// `[tool.poetry.dependencies]` (the main group), in file order.
    pub dependencies: Option<Spanned<toml::Table>>,
    /// `package-mode`.
    #[serde(rename = "package-mode")]
    pub package_mode: Option<bool>,
}

/// A parsed pyproject.toml and its text.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The data.
    pub data: PyProject,
    /// The text, for line numbers.
    pub text: String,
}

/// Parses pyproject.toml; errors name the line and, for `[tool.pyslip]`, the known keys.
pub fn parse(text: &str) -> Result<Parsed, PlanError> {
    let data: PyProject = toml::from_str(text).map_err(|err| {
        let hint = if err.message().contains("unknown field") {
            format!("[tool.pyslip] {}", config::config_hint())
        } else {
            "valid TOML with a PEP 621 [project] table (https://packaging.python.org/en/latest/specifications/pyproject-toml/)".to_owned()
        };
        error::toml_error(FILE, text, &err, &hint)
    })?;
    Ok(Parsed {
        data,
        text: text.to_owned(),
    })
}

impl Parsed {
    /// 1-based line of a byte span.
    pub fn line(&self, span: &std::ops::Range<usize>) -> usize {
        error::line_of(&self.text, span.start)
    }

    /// `[tool.pyslip]`, when present.
    pub fn config(&self) -> Option<LoadedConfig> {
        let config = self.data.tool.as_ref()?.pyslip.clone()?;
        Some(LoadedConfig {
            config,
            file: FILE.to_owned(),
            prefix: "tool.pyslip.",
            text: self.text.clone(),
        })
    }

    /// `[tool.poetry]`, when present.
    pub fn poetry(&self) -> Option<&Poetry> {
        self.data.tool.as_ref()?.poetry.as_ref()
    }

    /// Whether the project builds as a package (has a `[build-system]`).
    pub fn is_package(&self) -> bool {
        self.data.build_system.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parts_detection_needs() {
        let parsed = parse(
            "[project]\nname = \"x\"\nrequires-python = \">=3.11\"\ndependencies = [\"fastapi\"]\n\n[tool.ruff]\nline-length = 100\n[tool.pyslip]\nport = 9000\n",
        )
        .expect("valid");
        assert_eq!(
            parsed
                .data
                .project
                .as_ref()
                .and_then(|p| p.requires_python.as_ref())
                .map(|s| s.get_ref().as_str()),
            Some(">=3.11")
        );
        let config = parsed.config().expect("tool.pyslip");
        assert_eq!(config.config.port.map(|p| p.into_inner()), Some(9000));
        assert!(!parsed.is_package());
    }

    #[test]
    fn errors_carry_the_line() {
        let err =
            parse("[project]\nname = \"x\"\ndependencies = \"fastapi\"\n").expect_err("wrong type");
        assert!(err.to_string().starts_with("pyproject.toml:3:"), "{err}");
        let err = parse("[tool.pyslip]\npython = \"3.12\"\nfoo = 1\n").expect_err("unknown key");
        assert!(err.to_string().starts_with("pyproject.toml:3:"), "{err}");
        assert!(err.hint().is_some_and(|h| h.contains("workload")));
        let err = parse("[project\n").expect_err("syntax");
        assert!(err.to_string().starts_with("pyproject.toml:1:"), "{err}");
    }
}
