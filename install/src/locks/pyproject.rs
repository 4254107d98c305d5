//! `[project] dependencies` of pyproject.toml as a requirements file (PEP 621, no lock).

use super::{check_token, invalid, parse_toml};
use crate::error::InstallError;

const FILE: &str = "pyproject.toml";

/// The declared `[project] dependencies`, one PEP 508 line each.
pub(crate) fn pep621_requirements(pyproject: &str) -> Result<String, InstallError> {
    let table = parse_toml(FILE, pyproject)?;
    let deps = table
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .map(|d| {
            d.as_array()
                .ok_or_else(|| invalid(FILE, "[project] dependencies must be an array of strings"))
        })
        .transpose()?
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut lines = Vec::new();
    for dep in deps {
        let dep = dep
            .as_str()
            .ok_or_else(|| invalid(FILE, "[project] dependencies must be an array of strings"))?;
        check_token(FILE, "dependency", dep)?;
        lines.push(dep.trim().to_owned());
    }
    Ok(lines.join("\n") + "\n")
}

/// Whether `[project] dynamic` lists `dependencies` (the build backend computes them).
pub(crate) fn pep621_dynamic_dependencies(pyproject: &str) -> Result<bool, InstallError> {
    let table = parse_toml(FILE, pyproject)?;
    Ok(table
        .get("project")
        .and_then(|p| p.get("dynamic"))
        .and_then(|d| d.as_array())
        .is_some_and(|d| d.iter().any(|v| v.as_str() == Some("dependencies"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_dependencies_become_lines() {
        let text = "[project]\nname = \"x\"\ndependencies = [\"fastapi>=0.115\", \"uvicorn[standard]; python_version >= '3.8'\"]\n";
        assert_eq!(
            pep621_requirements(text).unwrap(),
            "fastapi>=0.115\nuvicorn[standard]; python_version >= '3.8'\n"
        );
        assert!(pep621_requirements("[project]\ndependencies = \"x\"\n").is_err());
        assert!(!pep621_dynamic_dependencies(text).unwrap());
        assert!(
            pep621_dynamic_dependencies(
                "[project]\nname = \"x\"\ndynamic = [\"version\", \"dependencies\"]\n"
            )
            .unwrap()
        );
    }
}
