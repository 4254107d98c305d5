//! The plan's data types: what `plan()` returns and what `pyslip plan --json` prints.
//!
//! The serde serialization of [`BuildPlan`] *is* the `--json` output, so field names and enum
//! spellings here are a stable interface: add fields, do not rename them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Version of the JSON shape; bumped only on an incompatible change.
pub const PLAN_JSON_VERSION: u32 = 1;

/// Command-line values that override everything the project says.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--python X.Y[.Z]`.
    pub python: Option<String>,
    /// `--base REF`: the exact base image.
    pub base: Option<String>,
    /// `--base-repo REPO`: where `<X.Y>-slim` is taken from (empty means the default).
    pub base_repo: String,
    /// `--cmd STRING`: start command, run as `/bin/sh -c 'exec <cmd>'`.
    pub cmd: Option<String>,
    /// `--port N`.
    pub port: Option<u16>,
    /// `--env K=V`, in order.
    pub env: Vec<(String, String)>,
    /// `--workload web|worker`.
    pub workload: Option<Workload>,
    /// `--installer uv|pip`.
    pub installer: Option<Installer>,
    /// `--user USER`.
    pub user: Option<String>,
    /// Output paths of this build (`--tar` file, `--oci-layout` dir), excluded when inside the project.
    pub exclude_outputs: Vec<PathBuf>,
    /// A Python the build chose from package-index data (one of a previous plan's
    /// `python_candidates`); it replaces the default or `requires-python` choice, never a pin.
    pub python_refined: Option<Decision<String>>,
}

/// The repository `<X.Y>-slim` is taken from when `--base-repo` is empty.
pub const DEFAULT_BASE_REPO: &str = "docker.io/library/python";

/// Which kind of process the image runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// An HTTP server listening on `$PORT`.
    Web,
    /// A background process: no port, no EXPOSE.
    Worker,
}

/// Which installer puts the dependencies into the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Installer {
    /// uv.
    Uv,
    /// The base image's pip.
    Pip,
}

/// Where a decision came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A command-line flag, e.g. `--python`.
    Flag {
        /// The flag as typed, e.g. `--python`.
        flag: String,
    },
    /// A key of the pyslip configuration.
    Config {
        /// `pyproject.toml` or `pyslip.toml`.
        file: String,
        /// The full key, e.g. `tool.pyslip.python`.
        key: String,
    },
    /// A value read from a project file.
    File {
        /// Path relative to the project.
        path: String,
        /// 1-based line, where known.
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<usize>,
    },
    /// A line of the `Procfile`.
    Procfile {
        /// 1-based line.
        line: usize,
    },
    /// Inferred from the project's files.
    Detected {
        /// The file that decided it, relative to the project.
        file: String,
        /// Why, in a few words.
        detail: String,
    },
    /// Computed from another decision.
    Derived {
        /// What it was computed from, in a few words.
        from: String,
    },
    /// pyslip's default.
    Default,
    /// Decided from the package index's data about a pinned package (the build's wheel lookup).
    Index {
        /// The file that pins the package, relative to the project.
        file: String,
        /// 1-based line of the pin, where known.
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<usize>,
        /// Why, e.g. `numpy==2.2.6 has no wheels for 3.14`.
        detail: String,
    },
}

impl Source {
    /// A command-line flag.
    pub fn flag(flag: &str) -> Self {
        Source::Flag {
            flag: flag.to_owned(),
        }
    }

    /// A file and line.
    pub fn file(path: &str, line: Option<usize>) -> Self {
        Source::File {
            path: path.to_owned(),
            line,
        }
    }

    /// A detection from `file`.
    pub fn detected(file: &str, detail: impl Into<String>) -> Self {
        Source::Detected {
            file: file.to_owned(),
            detail: detail.into(),
        }
    }
}

/// A decided value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

impl<T> Decision<T> {
    /// A decision.
    pub fn new(value: T, source: Source) -> Self {
        Decision { value, source }
    }
}

/// Something the plan saw and did not use, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// What was ignored, e.g. `pyproject.toml [project] dependencies`.
    pub what: String,
    /// Why, e.g. `requirements.txt wins`.
    pub reason: String,
}

/// The web framework (or its absence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    /// Django (`manage.py` + `django`).
    Django,
    /// FastAPI.
    Fastapi,
    /// Flask.
    Flask,
    /// Tornado.
    Tornado,
    /// Starlette.
    Starlette,
    /// Litestar.
    Litestar,
    /// Quart.
    Quart,
    /// Sanic.
    Sanic,
    /// aiohttp's web server.
    Aiohttp,
    /// Falcon (WSGI `falcon.App` or ASGI `falcon.asgi.App`).
    Falcon,
    /// Bottle.
    Bottle,
    /// Streamlit.
    Streamlit,
    /// A plain `main.py`/`app.py`/`application.py`.
    Generic,
    /// Nothing recognised; the start command came from the user.
    None,
}

/// The program the start command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Server {
    /// gunicorn (WSGI).
    Gunicorn,
    /// uvicorn (ASGI).
    Uvicorn,
    /// `fastapi run` (fastapi-cli).
    FastapiCli,
    /// hypercorn (ASGI).
    Hypercorn,
    /// daphne (ASGI).
    Daphne,
    /// uWSGI.
    Uwsgi,
    /// waitress (WSGI).
    Waitress,
    /// `flask run` (development server).
    FlaskRun,
    /// `manage.py runserver` (development server).
    DjangoRunserver,
    /// Sanic's own server (`sanic module:app`).
    Sanic,
    /// `streamlit run <file>`.
    Streamlit,
    /// aiohttp's own server (`web.run_app`).
    Aiohttp,
    /// `python -m bottle` (Bottle's development server).
    BottleRun,
    /// `python <file>`.
    Python,
}

/// The module and variable the server imports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppTarget {
    /// The app file, relative to the project.
    pub file: String,
    /// Its module path, e.g. `app.main`.
    pub module: String,
    /// The application variable, e.g. `app`; an app factory ends in `()` (`create_app()`).
    pub variable: String,
    /// 1-based line of the assignment or factory definition, when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Directory to put on `sys.path` for the import (e.g. `src`), relative to the project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_dir: Option<String>,
}

/// How dependencies are declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PackageManager {
    /// `requirements.txt`: `pip install -r`.
    Requirements,
    /// Pipfile / Pipfile.lock: `pipenv install --deploy --system` semantics.
    Pipenv {
        /// A Pipfile.lock exists (hashes enforced, out-of-date lock fails).
        locked: bool,
    },
    /// poetry.lock / `[tool.poetry]`: `poetry install --only main` semantics.
    Poetry {
        /// A poetry.lock exists.
        locked: bool,
    },
    /// uv.lock: `uv sync --locked --no-dev`.
    UvLock,
    /// `[project] dependencies` without a lock.
    Pep621,
    /// setup.py / setup.cfg: `pip install .`.
    SetupPy,
}

/// The dependency layer's install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallPlan {
    /// How dependencies are declared.
    pub manager: PackageManager,
    /// Which file decided the manager.
    pub source: Source,
    /// The installer program.
    pub installer: Installer,
    /// Where the installer choice came from.
    pub installer_source: Source,
    /// Every project file the install reads, relative and sorted; the dependency cache key hashes these.
    pub inputs: Vec<String>,
    /// PEP 503-normalised names that will be installed (what detection can see), sorted.
    pub dependencies: Vec<String>,
    /// Whether the project itself is installed as a package.
    pub install_project: bool,
    /// The uv workspace the project is a member of, when it is installed from the workspace's lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Workspace>,
    /// Path dependencies (workspace members, `{ path = "../lib" }`, `file:` entries) installed from
    /// copies of their files, without their dependencies (those are in `dependencies`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local: Vec<LocalPackage>,
}

/// A uv workspace member installed from the workspace root's lock
/// (`uv sync --locked --package <member> --no-dev` semantics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workspace {
    /// The workspace root (it holds `uv.lock`), relative to the project: `..`, `../..`.
    pub root: String,
    /// The member's package name.
    pub member: String,
    /// The member's folder relative to the workspace root, `/`-separated: `apps/api`.
    pub member_dir: String,
}

impl Workspace {
    /// The folder the install must see: the workspace root.
    pub fn root_dir(&self, project_dir: &std::path::Path) -> std::path::PathBuf {
        project_dir.join(&self.root)
    }
}

/// A path dependency, installed from a copy of its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalPackage {
    /// PEP 503-normalised name.
    pub name: String,
    /// Its folder (or wheel/sdist file), relative to the project, `/`-separated: `../libs/shared`.
    /// Always inside the project or its workspace root.
    pub path: String,
    /// Its files, relative to `path`, chosen like the app layer's (its own `.dockerignore`,
    /// `.git/`, `.venv/`, caches excluded); a single entry for a file.
    pub files: ShippedFiles,
}

/// Django's `collectstatic` step at build time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collectstatic {
    /// Whether it runs.
    pub run: bool,
    /// `manage.py`, relative to the project.
    pub manage_py: String,
    /// The settings module, when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    /// `STATIC_ROOT` as written in the settings, when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_root: Option<String>,
    /// The command run in the sandbox with the working directory at `manage.py`'s folder.
    pub command: Vec<String>,
}

/// What a shipped entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link, kept as a link.
    Symlink {
        /// The link target as stored.
        target: String,
    },
}

/// One entry of the app layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippedFile {
    /// Path relative to the project, `/`-separated.
    pub path: String,
    /// File, directory or symlink.
    #[serde(flatten)]
    pub kind: FileKind,
    /// Size in bytes (0 for directories and symlinks).
    pub size: u64,
    /// Any execute bit set.
    pub executable: bool,
}

/// The files of the app layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ShippedFiles {
    /// Sorted by path.
    pub entries: Vec<ShippedFile>,
    /// Number of entries.
    pub count: usize,
    /// Sum of the regular files' sizes.
    pub total_size: u64,
}

/// Everything a build does, decided from the project directory and the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildPlan {
    /// Version of this JSON shape ([`PLAN_JSON_VERSION`]).
    pub plan_version: u32,
    /// `X.Y` or `X.Y.Z`; the base tag is `<that>-slim`.
    pub python: Decision<String>,
    /// Pythons the build may choose instead, newest first (`python` among them), when the
    /// project does not pin one: exactly pinned or locked packages without wheels for `python`
    /// make the build pick the newest of these they all have wheels for. Empty when pinned.
    pub python_candidates: Vec<String>,
    /// Full base image reference.
    pub base: Decision<String>,
    /// The dependency install; `None` means no dependency layer.
    pub install: Option<InstallPlan>,
    /// The framework.
    pub framework: Decision<Framework>,
    /// The app the server imports, when one was found.
    pub app: Option<AppTarget>,
    /// The server the start command runs, when pyslip chose it.
    pub server: Option<Decision<Server>>,
    /// Exactly the image config `Cmd` (exec form).
    pub cmd: Decision<Vec<String>>,
    /// Listening port; `None` for workers.
    pub port: Option<Decision<u16>>,
    /// The Env pyslip adds, in order (later entries of the same key replaced earlier ones).
    pub env: Vec<(String, String)>,
    /// Web or worker.
    pub workload: Decision<Workload>,
    /// The user the container runs as.
    pub user: Decision<String>,
    /// The working directory, `/app`.
    pub workdir: String,
    /// Django's collectstatic; `None` for other frameworks.
    pub collectstatic: Option<Decision<Collectstatic>>,
    /// `release:` command of the Procfile, reported and not run.
    pub release: Option<Decision<String>>,
    /// Labels from the configuration.
    pub labels: BTreeMap<String, String>,
    /// `check` of the configuration: run the boot check on every build (absent when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Decision<bool>>,
    /// `check-path` of the configuration: the path the boot check requests (absent when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_path: Option<Decision<String>>,
    /// `cache-repo` of the configuration: the registry-backed layer cache (absent when unset;
    /// `--cache-repo` and `PYSLIP_CACHE_REPO` take precedence at build time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_repo: Option<Decision<String>>,
    /// `sandbox` of the configuration: `auto`, `namespaces` or `none` (absent when unset;
    /// `--sandbox` and `PYSLIP_SANDBOX` take precedence at build time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Decision<String>>,
    /// The app layer's files.
    pub files: ShippedFiles,
    /// Things the user should know.
    pub warnings: Vec<String>,
    /// What was seen and not used, and why.
    pub ignored: Vec<Ignored>,
}
