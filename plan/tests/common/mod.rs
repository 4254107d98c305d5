//! Helpers: build a throwaway project directory and plan it.

#![allow(dead_code)]

use std::path::Path;

use pyslip_plan::{BuildPlan, Overrides, PlanError, plan};
use tempfile::TempDir;

/// A project with `files` (path, content); parents are created.
pub fn project(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, content) in files {
        write(dir.path(), path, content);
    }
    dir
}

/// Writes one file below `root`.
pub fn write(root: &Path, path: &str, content: &str) {
    let full = root.join(path);
    if let Some(parent) = full.parent() {
        fs_err::create_dir_all(parent).expect("mkdir");
    }
    fs_err::write(full, content).expect("write");
}

/// Default overrides, as `pyslip plan` passes them.
pub fn defaults() -> Overrides {
    Overrides {
        base_repo: "docker.io/library/python".to_owned(),
        ..Overrides::default()
    }
}

/// Plans `files` with `overrides`.
pub fn try_plan(files: &[(&str, &str)], overrides: &Overrides) -> Result<BuildPlan, PlanError> {
    let dir = project(files);
    plan(dir.path(), overrides)
}

/// Plans `files` with `overrides`, panicking with the error and hint on failure.
pub fn plan_of(files: &[(&str, &str)], overrides: &Overrides) -> BuildPlan {
    match try_plan(files, overrides) {
        Ok(plan) => plan,
        Err(err) => panic!("{err} (hint: {:?})", err.hint()),
    }
}

/// The shell script of a `/bin/sh -c` Cmd (or the joined argv).
pub fn script(plan: &BuildPlan) -> String {
    match plan.cmd.value.as_slice() {
        [sh, c, script] if sh == "/bin/sh" && c == "-c" => script.clone(),
        other => other.join(" "),
    }
}

/// Whether any ignored entry mentions both `what` and `reason`.
pub fn ignored(plan: &BuildPlan, what: &str, reason: &str) -> bool {
    plan.ignored
        .iter()
        .any(|i| i.what.contains(what) && i.reason.contains(reason))
}

/// Whether any warning contains `text`.
pub fn warned(plan: &BuildPlan, text: &str) -> bool {
    plan.warnings.iter().any(|w| w.contains(text))
}
