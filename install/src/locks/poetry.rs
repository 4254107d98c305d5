//! poetry.lock: `poetry install --no-root --only main` semantics without poetry.

use pyslip_plan::InstallPlan;

use super::locked_lines;
use crate::error::InstallError;

const LOCK: &str = "poetry.lock";

/// The requirements file installing exactly the lock's packages that the plan installs (the
/// main group's dependency closure, which the plan computed from the same parsed lock) at
/// their locked versions with their hashes (to be installed with `--require-hashes --no-deps`).
/// Index URLs other than PyPI become `--extra-index-url` lines; PyPI is left to the environment.
pub(crate) fn poetry_lock_requirements(
    lock: &str,
    install: &InstallPlan,
) -> Result<String, InstallError> {
    let parsed = pyslip_plan::locks::poetry::parse(lock)?;
    let mut indexes = Vec::new();
    let lines = locked_lines(LOCK, &parsed.packages, install, &mut indexes)?;
    let mut out: Vec<String> = indexes
        .iter()
        .map(|u| format!("--extra-index-url {u}"))
        .collect();
    out.extend(lines);
    Ok(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_plan() -> pyslip_plan::BuildPlan {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/apps/fastapi-poetry");
        pyslip_plan::plan(&dir, &pyslip_plan::Overrides::default()).unwrap()
    }

    #[test]
    fn fixture_lock_gives_what_the_plan_installs() {
        let plan = fixture_plan();
        let install = plan.install.as_ref().unwrap();
        let lock = fs_err::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/apps/fastapi-poetry/poetry.lock"
        ))
        .unwrap();
        let reqs = poetry_lock_requirements(&lock, install).unwrap();
        assert!(
            reqs.contains("\nanyio==4.16.0 --hash=sha256:c66ae634"),
            "{reqs}"
        );
        assert!(reqs.contains("\nfastapi=="), "{reqs}");
        assert!(
            !reqs.contains("pytest=="),
            "dev group is not installed: {reqs}"
        );
        assert!(
            !reqs.contains("index-url"),
            "PyPI is left to the environment: {reqs}"
        );
        // One line per package the plan lists: the plan shows what is installed.
        let names: Vec<&str> = reqs
            .lines()
            .map(|l| l.split("==").next().unwrap())
            .collect();
        assert_eq!(names.len(), install.dependencies.len(), "{reqs}");
        // The graph walk from the main dependencies agrees with the lock's own group labels.
        let table: toml::Table = lock.parse().unwrap();
        let mut main: Vec<&str> = table["package"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                p["groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|g| g.as_str() == Some("main"))
            })
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        main.sort();
        assert_eq!(names, main);
    }

    #[test]
    fn a_dependency_missing_from_the_lock_is_refused() {
        let mut plan = fixture_plan();
        let install = plan.install.as_mut().unwrap();
        install.dependencies.push("not-in-the-lock".into());
        let lock = fs_err::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/apps/fastapi-poetry/poetry.lock"
        ))
        .unwrap();
        let err = poetry_lock_requirements(&lock, install).unwrap_err();
        assert!(err.to_string().contains("not-in-the-lock"), "{err}");
    }

    #[test]
    fn injected_option_in_a_lock_is_refused() {
        let lock = "[[package]]\nname = \"a\"\nversion = \"1.0\\n--index-url http://evil\"\nfiles = [{file=\"x\", hash=\"sha256:aa\"}]\n";
        let mut plan = fixture_plan();
        let install = plan.install.as_mut().unwrap();
        install.dependencies = vec!["a".into()];
        assert!(poetry_lock_requirements(lock, install).is_err());
    }
}
