//! Everything that can change what the installer writes is in the dependency layer's cache key:
//! the project's uv configuration (`uv.toml`, `[tool.uv]`) and constraint/override files by
//! content. Settings pyslip decides itself and credentials are not.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use layers::Digest;
use pyslip_install::{DepsRequest, Isolation, cache_key};

fn key(project: &Path, env: &[(&str, &str)]) -> String {
    let plan = pyslip_plan::plan(project, &pyslip_plan::Overrides::default()).unwrap();
    let digest = Digest::of(b"base");
    let req = DepsRequest {
        project_dir: project,
        plan: &plan,
        base_root: Path::new("/nonexistent"),
        base_digest: &digest,
        platform: "linux/amd64",
        cache_dir: Path::new("/nonexistent"),
        uv_override: None,
        no_cache: false,
        mtime: 0,
        host_env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        fetch: &NoFetch,
        isolation: Isolation::Namespaces,
    };
    cache_key(&req).unwrap()
}

#[test]
fn uv_configuration_of_the_project_is_keyed() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    std::fs::write(project.join("requirements.txt"), "flask==3.1.3\n").unwrap();
    std::fs::write(project.join("app.py"), "import flask\n").unwrap();
    let plain = key(project, &[]);

    std::fs::write(
        project.join("pyproject.toml"),
        "[tool.uv]\nindex-strategy = \"unsafe-best-match\"\n",
    )
    .unwrap();
    let tool_uv = key(project, &[]);
    assert_ne!(plain, tool_uv, "[tool.uv] changes the key");
    std::fs::write(
        project.join("pyproject.toml"),
        "[tool.uv]\nindex-strategy = \"first-index\"\n",
    )
    .unwrap();
    assert_ne!(tool_uv, key(project, &[]), "its content is keyed");

    // Settings pyslip decides itself do not reach the install, so they do not change the key.
    std::fs::write(
        project.join("pyproject.toml"),
        "[tool.uv]\nindex-strategy = \"first-index\"\ncompile-bytecode = true\nlink-mode = \"hardlink\"\n",
    )
    .unwrap();
    let with_own = key(project, &[]);
    std::fs::write(
        project.join("pyproject.toml"),
        "[tool.uv]\nindex-strategy = \"first-index\"\n",
    )
    .unwrap();
    assert_eq!(with_own, key(project, &[]));

    // uv.toml wins over [tool.uv], as uv reads them.
    std::fs::write(
        project.join("uv.toml"),
        "[pip]\nextra-index-url = [\"https://example.invalid/simple\"]\n",
    )
    .unwrap();
    let uv_toml = key(project, &[]);
    assert_ne!(with_own, uv_toml);
    std::fs::write(project.join("uv.toml"), "[pip]\nno-binary = [\"six\"]\n").unwrap();
    assert_ne!(uv_toml, key(project, &[]));
}

#[test]
fn constraint_and_override_files_are_keyed_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("requirements.txt"), "flask\n").unwrap();
    std::fs::write(project.join("app.py"), "import flask\n").unwrap();
    let constraints = dir.path().join("constraints.txt");
    let path = constraints.to_str().unwrap();
    let none = key(&project, &[]);
    for var in [
        "PIP_CONSTRAINT",
        "UV_CONSTRAINT",
        "UV_OVERRIDE",
        "UV_BUILD_CONSTRAINT",
    ] {
        std::fs::write(&constraints, "flask==3.1.2\n").unwrap();
        let first = key(&project, &[(var, path)]);
        assert_ne!(none, first, "{var} is keyed");
        std::fs::write(&constraints, "flask==3.1.3\n").unwrap();
        let second = key(&project, &[(var, path)]);
        assert_ne!(
            first, second,
            "{var}: the file's content is keyed, not its path"
        );
        // Same content elsewhere: same key.
        let moved = dir.path().join("moved.txt");
        std::fs::write(&moved, "flask==3.1.3\n").unwrap();
        assert_eq!(
            second,
            key(&project, &[(var, moved.to_str().unwrap())]),
            "{var}"
        );
    }
}

#[test]
fn credentials_and_pip_configuration_files_are_not_keyed() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    std::fs::write(project.join("requirements.txt"), "flask\n").unwrap();
    std::fs::write(project.join("app.py"), "import flask\n").unwrap();
    let a = key(
        project,
        &[("PIP_INDEX_URL", "https://user:one@idx.example/simple")],
    );
    let b = key(
        project,
        &[("PIP_INDEX_URL", "https://user:two@idx.example/simple")],
    );
    assert_eq!(a, b, "credentials are not keyed");
    // pip runs with PIP_CONFIG_FILE=/dev/null: a config file cannot change the install.
    assert_eq!(
        a,
        key(
            project,
            &[
                ("PIP_INDEX_URL", "https://user:one@idx.example/simple"),
                ("PIP_CONFIG_FILE", "/etc/pip.conf")
            ]
        )
    );
}

/// The key never downloads anything.
#[derive(Debug)]
struct NoFetch;

impl pyslip_install::Fetch for NoFetch {
    fn fetch(
        &self,
        url: &str,
        _: &Path,
        _: &str,
        _: u64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("the cache key must not download {url}").into())
    }
}
