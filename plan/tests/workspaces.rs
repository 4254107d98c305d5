//! uv workspaces and path dependencies.

mod common;

use common::{defaults, project, write};
use pyslip_plan::{Overrides, PackageManager, PlanError, plan};

/// The start command is given: these tests are about the install.
fn given_cmd() -> Overrides {
    Overrides {
        cmd: Some("python main.py".to_owned()),
        ..defaults()
    }
}

const API_LOCK: &str = r#"version = 1
requires-python = ">=3.11"

[manifest]
members = ["api", "shared"]

[[package]]
name = "api"
version = "0.1.0"
source = { editable = "apps/api" }
dependencies = [{ name = "fastapi" }, { name = "shared" }]

[[package]]
name = "shared"
version = "0.1.0"
source = { editable = "libs/shared" }

[[package]]
name = "fastapi"
version = "0.115.0"
source = { registry = "https://pypi.org/simple" }
"#;

const MEMBER: &str = "[project]\nname = \"api\"\nversion = \"0.1\"\ndependencies = [\"fastapi\", \"shared\"]\n\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n";

fn workspace(members: &str) -> tempfile::TempDir {
    project(&[
        (
            "pyproject.toml",
            &format!("[tool.uv.workspace]\nmembers = {members}\n"),
        ),
        ("uv.lock", API_LOCK),
        ("apps/api/pyproject.toml", MEMBER),
        (
            "apps/api/main.py",
            "from fastapi import FastAPI\napp = FastAPI()\n",
        ),
        (
            "libs/shared/pyproject.toml",
            "[project]\nname = \"shared\"\n",
        ),
        ("libs/shared/shared/__init__.py", ""),
        ("libs/shared/.venv/lib/junk.py", ""),
    ])
}

#[test]
fn a_member_is_installed_from_the_root_lock_with_its_path_dependencies() {
    let dir = workspace("[\"apps/*\", \"libs/*\"]");
    let plan = plan(&dir.path().join("apps/api"), &given_cmd()).expect("plan");
    let install = plan.install.expect("install");
    assert_eq!(install.manager, PackageManager::UvLock);
    assert!(
        install.inputs.contains(&"../../uv.lock".to_owned()),
        "{:?}",
        install.inputs
    );
    let ws = install.workspace.expect("workspace");
    assert_eq!(
        (ws.root.as_str(), ws.member.as_str(), ws.member_dir.as_str()),
        ("../..", "api", "apps/api")
    );
    assert_eq!(install.local.len(), 1);
    let shared = &install.local[0];
    assert_eq!(
        (shared.name.as_str(), shared.path.as_str()),
        ("shared", "../../libs/shared")
    );
    let files: Vec<&str> = shared
        .files
        .entries
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        files,
        vec!["pyproject.toml", "shared", "shared/__init__.py"]
    );
    assert!(install.dependencies.contains(&"fastapi".to_owned()));
}

#[test]
fn a_folder_the_workspace_does_not_list_is_not_a_member() {
    let dir = workspace("[\"libs/*\"]");
    let plan = plan(&dir.path().join("apps/api"), &given_cmd()).expect("plan");
    let install = plan.install.expect("install");
    assert_eq!(install.manager, PackageManager::Pep621);
    assert!(install.workspace.is_none());
}

#[test]
fn poetry_path_dependencies_inside_the_project_are_installed_outside_refused() {
    let lock = |path: &str| {
        format!(
            "[[package]]\nname = \"fastapi\"\nversion = \"0.115.0\"\nfiles = [{{file = \"f.whl\", hash = \"sha256:aa\"}}]\n\n[[package]]\nname = \"mylib\"\nversion = \"0.1.0\"\ndevelop = true\n[package.source]\ntype = \"directory\"\nurl = \"{path}\"\n"
        )
    };
    let pyproject = "[tool.poetry]\nname = \"app\"\nversion = \"0.1\"\npackage-mode = false\n[tool.poetry.dependencies]\npython = \"^3.11\"\nfastapi = \"*\"\nmylib = {path = \"libs/mylib\", develop = true}\n";
    let dir = project(&[
        ("pyproject.toml", pyproject),
        ("poetry.lock", &lock("libs/mylib")),
        ("libs/mylib/setup.py", ""),
        ("main.py", "from fastapi import FastAPI\napp = FastAPI()\n"),
    ]);
    let plan = plan(dir.path(), &given_cmd()).expect("plan");
    let install = plan.install.expect("install");
    assert_eq!(install.local.len(), 1, "{install:?}");
    assert_eq!(install.local[0].path, "libs/mylib");

    let outside = dir.path().join("app");
    fs_err::create_dir_all(&outside).expect("mkdir");
    write(
        &outside,
        "pyproject.toml",
        &pyproject.replace("libs/mylib", "../libs/mylib"),
    );
    write(&outside, "poetry.lock", &lock("../libs/mylib"));
    write(
        &outside,
        "main.py",
        "from fastapi import FastAPI\napp = FastAPI()\n",
    );
    let err = pyslip_plan::plan(&outside, &given_cmd()).expect_err("outside");
    assert!(matches!(err, PlanError::PathDependency { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("poetry.lock: mylib is a path dependency at \"../libs/mylib\""),
        "{err}"
    );
    assert!(err.hint().is_some_and(|h| h.contains("uv workspace")));
}
