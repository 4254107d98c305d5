//! `requirements.txt` as pip reads it: nested `-r`/`-c`, options, hashes, editables, URLs, paths.
//!
//! pip's requirements-file format has no Rust implementation that follows includes and options,
//! so the line handling is written here; each requirement itself goes through `pep508_rs`.

use std::collections::BTreeSet;

use pep508_rs::MarkerEnvironment;

use crate::deps::{self, Req};
use crate::error::PlanError;
use crate::project::Project;

/// Deepest `-r` nesting followed (pip has no limit; this only stops cycles of new names).
const MAX_DEPTH: usize = 16;

/// What a requirements file (and its includes) says.
#[derive(Debug, Default)]
pub struct Requirements {
    /// Every file read (the top file, `-r` and `-c` includes, local wheels/sdists), relative.
    pub inputs: BTreeSet<String>,
    /// Names that will be installed (markers applied).
    pub names: BTreeSet<String>,
    /// Things detection cannot see (local projects, unnamed URLs).
    pub warnings: Vec<String>,
    /// Requirements pinned to one version (`name==1.2.3`): (name, version, file, line).
    pub pins: Vec<(String, String, String, usize)>,
}

/// Options that take a value (`-x value`, `-xvalue`, `--opt=value`, `--opt value`).
const VALUE_OPTIONS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "--no-binary",
    "--only-binary",
    "--hash",
    "--config-settings",
    "--global-option",
    "--use-feature",
    "--progress-bar",
];

/// Options without a value.
const FLAG_OPTIONS: &[&str] = &["--pre", "--no-index", "--prefer-binary", "--require-hashes"];

/// Reads `rel` and everything it includes.
pub fn read(
    project: &Project,
    rel: &str,
    env: Option<&MarkerEnvironment>,
) -> Result<Requirements, PlanError> {
    let mut out = Requirements::default();
    read_into(project, rel, env, true, 0, &mut out)?;
    Ok(out)
}

fn read_into(
    project: &Project,
    rel: &str,
    env: Option<&MarkerEnvironment>,
    installs: bool,
    depth: usize,
    out: &mut Requirements,
) -> Result<(), PlanError> {
    if !out.inputs.insert(rel.to_owned()) {
        return Ok(());
    }
    let Some(text) = project.read(rel)? else {
        return Err(PlanError::malformed(
            rel,
            None,
            "file does not exist",
            Some("create it or fix the -r/-c line that names it"),
        ));
    };
    for (line_no, line) in logical_lines(&text) {
        parse_line(project, rel, line_no, &line, env, installs, depth, out)?;
    }
    Ok(())
}

/// Joins `\` continuations and strips comments; yields (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = index + 1;
        }
        match raw.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(raw);
                lines.push((start, strip_comment(&current).trim().to_owned()));
                current.clear();
            }
        }
    }
    if !current.is_empty() {
        lines.push((start, strip_comment(&current).trim().to_owned()));
    }
    lines.retain(|(_, l)| !l.is_empty());
    lines
}

/// pip: a comment starts at `#` at the line start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes.get(i - 1).is_some_and(u8::is_ascii_whitespace)) {
            return line.get(..i).unwrap_or(line);
        }
    }
    line
}

/// Splits `-rfile`, `-r file`, `--requirement=file`, `--requirement file` into (option, value).
fn split_option<'a>(line: &'a str, short: &str, long: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix(long) {
        if let Some(value) = rest.strip_prefix('=') {
            return Some(value.trim());
        }
        return (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim());
    }
    if line.starts_with("--") {
        return None;
    }
    line.strip_prefix(short).map(str::trim)
}

#[allow(clippy::too_many_arguments)]
fn parse_line(
    project: &Project,
    rel: &str,
    line_no: usize,
    line: &str,
    env: Option<&MarkerEnvironment>,
    installs: bool,
    depth: usize,
    out: &mut Requirements,
) -> Result<(), PlanError> {
    let expected = "a PEP 508 requirement (name[extras] specifier ; marker), a URL or path, or a pip option such as -r FILE";
    let include = |value: &str, installs: bool, out: &mut Requirements| -> Result<(), PlanError> {
        if value.is_empty() {
            return Err(PlanError::malformed(
                rel,
                Some(line_no),
                "option needs a file name",
                Some(expected),
            ));
        }
        if depth >= MAX_DEPTH {
            return Err(PlanError::malformed(
                rel,
                Some(line_no),
                "requirements files nest too deeply",
                None,
            ));
        }
        if value.contains("://") {
            out.warnings.push(format!(
                "{rel}:{line_no}: remote requirements file {value} is not followed by detection"
            ));
            return Ok(());
        }
        let target = join_relative(rel, value);
        read_into(project, &target, env, installs, depth + 1, out)
    };
    if line.starts_with('-') {
        if let Some(value) = split_option(line, "-r", "--requirement") {
            return include(value, installs, out);
        }
        if let Some(value) = split_option(line, "-c", "--constraint") {
            return include(value, false, out);
        }
        if let Some(value) = split_option(line, "-e", "--editable") {
            return requirement(project, rel, line_no, value, env, installs, out, expected);
        }
        let option = line
            .split(|c: char| c.is_whitespace() || c == '=')
            .next()
            .unwrap_or(line);
        if VALUE_OPTIONS.contains(&option) || FLAG_OPTIONS.contains(&option) {
            return Ok(());
        }
        return Err(PlanError::malformed(
            rel,
            Some(line_no),
            format!("unknown option {option}"),
            Some(expected),
        ));
    }
    // Per-requirement options (`--hash=...`) follow the requirement.
    let spec = match line.find(" --").or_else(|| line.find("\t--")) {
        Some(index) => line.get(..index).unwrap_or(line),
        None => line,
    };
    requirement(
        project,
        rel,
        line_no,
        spec.trim(),
        env,
        installs,
        out,
        expected,
    )
}

#[allow(clippy::too_many_arguments)]
fn requirement(
    project: &Project,
    rel: &str,
    line_no: usize,
    spec: &str,
    env: Option<&MarkerEnvironment>,
    installs: bool,
    out: &mut Requirements,
    expected: &str,
) -> Result<(), PlanError> {
    match deps::parse_requirement(spec, env) {
        Ok(req) => {
            if installs {
                deps::collect(&req, &mut out.names);
                if let (true, Some(version)) = (req.applies, deps::exact_version(spec)) {
                    out.pins
                        .push((req.name.clone(), version, rel.to_owned(), line_no));
                }
            }
            Ok(())
        }
        Err(message) => {
            if let Some(name) = egg_name(spec) {
                if installs {
                    deps::collect(
                        &Req {
                            name,
                            extras: Vec::new(),
                            applies: true,
                        },
                        &mut out.names,
                    );
                }
                return Ok(());
            }
            let path_like = spec.starts_with('.')
                || spec.starts_with('/')
                || spec.contains("://")
                || spec.ends_with(".whl")
                || spec.ends_with(".tar.gz")
                || spec.ends_with(".zip");
            if !path_like {
                return Err(PlanError::malformed(
                    rel,
                    Some(line_no),
                    message,
                    Some(expected),
                ));
            }
            if let Some(name) = wheel_name(spec)
                && installs
            {
                out.names.insert(name);
            }
            if !spec.contains("://") {
                let local = join_relative(rel, spec.split(';').next().unwrap_or(spec).trim());
                if local.starts_with("../") || local == ".." || local.starts_with('/') {
                    return Err(PlanError::PathDependency {
                        file: format!("{rel}:{line_no}"),
                        name: spec.to_owned(),
                        path: local,
                        reason: "outside the project directory, which is all the install sees"
                            .to_owned(),
                    });
                }
                if project.is_file(&local) {
                    out.inputs.insert(local);
                } else if project.is_dir(&local) {
                    out.warnings.push(format!(
                        "{rel}:{line_no}: local project {spec} is installed; detection cannot see its dependencies"
                    ));
                }
            }
            Ok(())
        }
    }
}

/// `git+https://…#egg=Name` → `name`.
fn egg_name(spec: &str) -> Option<String> {
    let fragment = spec.split_once('#')?.1;
    fragment
        .split('&')
        .find_map(|kv| kv.strip_prefix("egg="))
        .and_then(|name| deps::normalize(name.split('[').next().unwrap_or(name)))
}

/// `dist/My_Pkg-1.0-py3-none-any.whl` → `my-pkg`.
fn wheel_name(spec: &str) -> Option<String> {
    let file = spec.rsplit('/').next()?;
    let stem = file.strip_suffix(".whl")?;
    deps::normalize(stem.split('-').next()?)
}

/// Resolves `value` relative to the directory of `rel`, lexically, staying `/`-separated.
pub fn join_relative(rel: &str, value: &str) -> String {
    let value = value.strip_prefix("file:").unwrap_or(value);
    let mut parts: Vec<&str> = if value.starts_with('/') {
        Vec::new()
    } else {
        rel.rsplit_once('/')
            .map(|(dir, _)| dir.split('/').collect())
            .unwrap_or_default()
    };
    for part in value.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_continuations() {
        let lines = logical_lines("# top\nflask==3.0 \\\n  --hash=sha256:abc # pin\n\nurl#frag\n");
        assert_eq!(
            lines,
            vec![
                (2, "flask==3.0   --hash=sha256:abc".to_owned()),
                (5, "url#frag".to_owned())
            ]
        );
    }

    #[test]
    fn names_from_urls_and_wheels() {
        assert_eq!(
            egg_name("git+https://x/y.git#egg=My_Pkg").as_deref(),
            Some("my-pkg")
        );
        assert_eq!(
            wheel_name("./dist/My_Pkg-1.0-py3-none-any.whl").as_deref(),
            Some("my-pkg")
        );
    }

    #[test]
    fn relative_includes() {
        assert_eq!(join_relative("requirements.txt", "base.txt"), "base.txt");
        assert_eq!(join_relative("reqs/prod.txt", "base.txt"), "reqs/base.txt");
        assert_eq!(
            join_relative("reqs/prod.txt", "../constraints.txt"),
            "constraints.txt"
        );
    }

    #[test]
    fn option_forms() {
        assert_eq!(
            split_option("-r base.txt", "-r", "--requirement"),
            Some("base.txt")
        );
        assert_eq!(
            split_option("-rbase.txt", "-r", "--requirement"),
            Some("base.txt")
        );
        assert_eq!(
            split_option("--requirement=base.txt", "-r", "--requirement"),
            Some("base.txt")
        );
        assert_eq!(
            split_option("--requirement base.txt", "-r", "--requirement"),
            Some("base.txt")
        );
    }
}
