//! setup.cfg / setup.py: the `install_requires` names, read without running any Python.
//!
//! setup.py is a program; pyslip never executes project code while planning, so the literal
//! `install_requires=[...]` list is scanned for quoted strings (a best effort documented as such).
//! setup.cfg's `[options] install_requires` is read as INI continuation lines; no maintained crate
//! reads setuptools' dangling-list INI dialect.

use std::collections::BTreeSet;

use pep508_rs::MarkerEnvironment;

use crate::deps;
use crate::error::PlanError;
use crate::project::Project;

/// Names and files.
#[derive(Debug, Default)]
pub struct SetupDeps {
    /// Names from `install_requires`.
    pub names: BTreeSet<String>,
    /// setup.py and/or setup.cfg.
    pub inputs: Vec<String>,
}

/// Reads setup.cfg and setup.py.
pub fn read(project: &Project, env: Option<&MarkerEnvironment>) -> Result<SetupDeps, PlanError> {
    let mut out = SetupDeps::default();
    if let Some(text) = project.read("setup.cfg")? {
        out.inputs.push("setup.cfg".to_owned());
        for requirement in setup_cfg_requires(&text) {
            if let Ok(req) = deps::parse_requirement(&requirement, env) {
                deps::collect(&req, &mut out.names);
            }
        }
    }
    if let Some(text) = project.read("setup.py")? {
        out.inputs.push("setup.py".to_owned());
        for requirement in setup_py_requires(&text) {
            if let Ok(req) = deps::parse_requirement(&requirement, env) {
                deps::collect(&req, &mut out.names);
            }
        }
    }
    Ok(out)
}

/// `[options]` → `install_requires =` value and its indented continuation lines.
pub fn setup_cfg_requires(text: &str) -> Vec<String> {
    let mut in_options = false;
    let mut in_key = false;
    let mut out = Vec::new();
    for raw in text.lines() {
        let trimmed = raw.trim();
        if trimmed.starts_with('[') {
            in_options = trimmed == "[options]";
            in_key = false;
            continue;
        }
        if !in_options || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let continuation = raw.starts_with([' ', '\t']);
        if in_key && continuation {
            if !trimmed.is_empty() {
                out.push(trimmed.to_owned());
            }
            continue;
        }
        in_key = false;
        if let Some((key, value)) = trimmed.split_once('=')
            && key.trim() == "install_requires"
        {
            in_key = true;
            out.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    out
}

/// Quoted strings inside the first `install_requires = [ ... ]` of setup.py.
pub fn setup_py_requires(text: &str) -> Vec<String> {
    let Some(start) = text.find("install_requires") else {
        return Vec::new();
    };
    let rest = text.get(start..).unwrap_or_default();
    let Some(open) = rest.find('[') else {
        return Vec::new();
    };
    let body = rest.get(open + 1..).unwrap_or_default();
    let body = body
        .get(..body.find(']').unwrap_or(body.len()))
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            let value: String = chars.by_ref().take_while(|&d| d != c).collect();
            out.push(value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_setup_cfg_lists() {
        let text = "[metadata]\nname = x\n[options]\npackages = find:\ninstall_requires =\n    flask>=3\n    gunicorn\nzip_safe = False\n";
        assert_eq!(setup_cfg_requires(text), vec!["flask>=3", "gunicorn"]);
    }

    #[test]
    fn reads_literal_setup_py_lists() {
        let text = "from setuptools import setup\nsetup(name='x', install_requires=['Flask>=3', \"waitress\"], extras_require={'dev': ['pytest']})\n";
        assert_eq!(setup_py_requires(text), vec!["Flask>=3", "waitress"]);
    }
}
