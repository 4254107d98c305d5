//! pyslip's configuration: `[tool.pyslip]` in pyproject.toml, or the same keys in pyslip.toml.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{self, PlanError};
use crate::model::{Installer, Source, Workload};

/// Every key the configuration accepts.
pub const KNOWN_KEYS: &[&str] = &[
    "python",
    "base",
    "installer",
    "cmd",
    "port",
    "env",
    "workload",
    "user",
    "exclude",
    "collectstatic",
    "labels",
    "check",
    "check-path",
    "cache-repo",
    "sandbox",
];

/// A start command: a string runs through `/bin/sh -c 'exec …'`, a list is exec form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CmdValue {
    /// Shell form.
    Shell(String),
    /// Exec form.
    Exec(Vec<String>),
}

/// The configuration keys (all optional; unknown keys are an error listing the known ones).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Python version.
    pub python: Option<Spanned<String>>,
    /// Exact base image.
    pub base: Option<Spanned<String>>,
    /// Installer.
    pub installer: Option<Spanned<Installer>>,
    /// Start command.
    pub cmd: Option<Spanned<CmdValue>>,
    /// Port.
    pub port: Option<Spanned<u16>>,
    /// Extra Env, in file order.
    pub env: Option<Spanned<toml::Table>>,
    /// Web or worker.
    pub workload: Option<Spanned<Workload>>,
    /// Runtime user.
    pub user: Option<Spanned<String>>,
    /// Extra exclusion patterns (Docker syntax; `!` re-includes, e.g. `!.env`).
    pub exclude: Option<Spanned<Vec<String>>>,
    /// Run Django's collectstatic.
    pub collectstatic: Option<Spanned<bool>>,
    /// Image labels.
    pub labels: Option<Spanned<BTreeMap<String, String>>>,
    /// Run the boot check on every build (`pyslip build --check`).
    pub check: Option<Spanned<bool>>,
    /// The path the boot check requests (`--check-path`).
    #[serde(rename = "check-path")]
    pub check_path: Option<Spanned<String>>,
    /// The registry-backed layer cache (`--cache-repo`).
    #[serde(rename = "cache-repo")]
    pub cache_repo: Option<Spanned<String>>,
    /// Where build steps run (`--sandbox`): `auto`, `namespaces` or `none`.
    pub sandbox: Option<Spanned<String>>,
}

/// A configuration and where it lives.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfig {
    /// The keys.
    pub config: Config,
    /// `pyproject.toml` or `pyslip.toml`; empty when there is none.
    pub file: String,
    /// `tool.pyslip.` for pyproject.toml, empty for pyslip.toml.
    pub prefix: &'static str,
    /// The file's text, for line numbers.
    pub text: String,
}

impl LoadedConfig {
    /// The source of `key`.
    pub fn source(&self, key: &str) -> Source {
        Source::Config {
            file: self.file.clone(),
            key: format!("{}{key}", self.prefix),
        }
    }

    /// 1-based line of a span.
    pub fn line(&self, span: std::ops::Range<usize>) -> usize {
        error::line_of(&self.text, span.start)
    }

    /// A config value error at `span`.
    pub fn invalid(&self, span: std::ops::Range<usize>, key: &str, reason: &str) -> PlanError {
        PlanError::malformed(
            &self.file,
            Some(self.line(span)),
            format!("{}{key}: {reason}", self.prefix),
            None,
        )
    }

    /// The env table as ordered pairs; values must be strings, numbers or booleans.
    pub fn env(&self) -> Result<Vec<(String, String)>, PlanError> {
        let Some(env) = &self.config.env else {
            return Ok(Vec::new());
        };
        let mut pairs = Vec::new();
        for (key, value) in env.get_ref() {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(self.invalid(
                        env.span(),
                        "env",
                        &format!("value of {key} must be a string, number or boolean"),
                    ));
                }
            };
            if key.is_empty() || key.contains('=') {
                return Err(self.invalid(
                    env.span(),
                    "env",
                    &format!("{key:?} is not a variable name"),
                ));
            }
            pairs.push((key.clone(), text));
        }
        Ok(pairs)
    }
}

/// Hint for configuration errors.
pub fn config_hint() -> String {
    format!("known keys: {}", KNOWN_KEYS.join(", "))
}

/// Parses `pyslip.toml` (keys at the top level).
pub fn parse_pyslip_toml(text: &str) -> Result<LoadedConfig, PlanError> {
    let config: Config = toml::from_str(text)
        .map_err(|err| error::toml_error("pyslip.toml", text, &err, &config_hint()))?;
    Ok(LoadedConfig {
        config,
        file: "pyslip.toml".to_owned(),
        prefix: "",
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_list_the_known_ones() {
        let err =
            parse_pyslip_toml("python = \"3.12\"\npyton = \"3.11\"\n").expect_err("unknown key");
        let text = err.to_string();
        assert!(text.starts_with("pyslip.toml:2:"), "{text}");
        assert!(text.contains("pyton"), "{text}");
        assert!(err.hint().is_some_and(|h| h.contains("collectstatic")));
    }

    #[test]
    fn cmd_is_a_string_or_a_list() {
        let shell = parse_pyslip_toml("cmd = \"gunicorn app:app\"").expect("string");
        let exec = parse_pyslip_toml("cmd = [\"python\", \"-m\", \"app\"]").expect("list");
        assert!(matches!(
            shell.config.cmd.map(|c| c.into_inner()),
            Some(CmdValue::Shell(_))
        ));
        assert!(
            matches!(exec.config.cmd.map(|c| c.into_inner()), Some(CmdValue::Exec(v)) if v.len() == 3)
        );
        assert!(parse_pyslip_toml("cmd = 3").is_err());
    }

    #[test]
    fn wrong_types_name_the_line() {
        let err = parse_pyslip_toml("\n\nport = \"eighty\"\n").expect_err("bad port");
        assert!(err.to_string().starts_with("pyslip.toml:3:"), "{err}");
        assert!(parse_pyslip_toml("port = 70000").is_err());
        assert!(parse_pyslip_toml("workload = \"cron\"").is_err());
        assert!(parse_pyslip_toml("installer = \"uv\"\nworkload = \"worker\"").is_ok());
    }

    #[test]
    fn boot_check_keys() {
        let config = parse_pyslip_toml("check = true\ncheck-path = \"/healthz\"").expect("keys");
        assert_eq!(config.config.check.map(|c| c.into_inner()), Some(true));
        assert_eq!(
            config.config.check_path.map(|c| c.into_inner()).as_deref(),
            Some("/healthz")
        );
        assert!(parse_pyslip_toml("check = \"yes\"").is_err());
        assert!(parse_pyslip_toml("check_path = \"/\"").is_err());
    }
}
