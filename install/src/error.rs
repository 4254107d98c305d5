//! Errors of the dependency install, with hints for the ones a user can act on.

use std::path::PathBuf;

use pyslip_sandbox::{ExitStatus, SandboxError};

/// Why an installer run failed, as far as its output tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The package index's TLS certificate was not trusted (corporate TLS interception).
    Certificate,
    /// A package needed a C compiler to build from source.
    Compiler,
    /// No distribution matched the requirement.
    NotFound,
    /// A downloaded file did not match a locked hash.
    HashMismatch,
    /// Anything else.
    Other,
}

/// What the package index says about the wheels of a package that failed to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelAdvice {
    /// PEP 503 name.
    pub name: String,
    /// The pinned version.
    pub version: String,
    /// The newest supported Python (`3.12`) that version has a wheel for on this platform;
    /// `None` when it has none for any.
    pub newest_python: Option<String>,
}

/// More about a failed install.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureContext {
    /// The whole install log (every step), written to the cache; `None` if it could not be.
    pub log_path: Option<PathBuf>,
    /// What the package index says about the failing package's wheels, added by the caller
    /// (the install itself makes no network requests).
    pub wheels: Option<WheelAdvice>,
}

/// Everything that can go wrong while making the dependency layer.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The plan has no dependency install.
    #[error("the build plan has no dependency install")]
    NoInstall,
    /// An install run offline after the host's resolution failed, or installed a package at
    /// another version than that resolution named (or one it did not name):
    /// [`crate::dependency_layer_prefetched`] runs it online instead, so callers never see this.
    #[error("the offline install did not match the resolution made on this host")]
    OfflineMismatch,
    /// A cache directory or file operation failed.
    #[error("dependency cache operation failed")]
    Cache(#[source] std::io::Error),
    /// The cache refused or failed an operation (an unusable cache directory, a bad key).
    #[error(transparent)]
    Store(pyslip_cache::CacheError),
    /// A project file the install reads could not be read.
    #[error("cannot read project file {}", path.display())]
    ReadInput {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A lock or manifest file is malformed or uses something pyslip cannot install.
    #[error("{file}: {reason}")]
    InvalidInput {
        /// Project-relative file name.
        file: String,
        /// What is wrong, e.g. `package "x" has no version`.
        reason: String,
    },
    /// A lock or manifest file could not be parsed (the plan crate's parser, shared with detection).
    #[error(transparent)]
    Input(#[from] pyslip_plan::PlanError),
    /// A lock file is out of date with its manifest (what `--deploy` / `--locked` refuse).
    #[error("{lock} is out of date with {manifest}")]
    StaleLock {
        /// The lock file.
        lock: &'static str,
        /// The manifest it was made from.
        manifest: &'static str,
        /// The command that refreshes the lock.
        refresh: &'static str,
    },
    /// Downloading the pinned uv failed.
    #[error("cannot download uv {version} from {url}")]
    UvDownload {
        /// uv's version.
        version: &'static str,
        /// The wheel's URL.
        url: &'static str,
        /// The download's error (HTTP, proxy, TLS, digest).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The uv wheel could not be unpacked.
    #[error("cannot extract the uv binary from its wheel")]
    UvWheel(#[source] zip::result::ZipError),
    /// pyslip pins uv only for some architectures.
    #[error("no pinned uv for platform {0}")]
    UvPlatform(String),
    /// The sandbox could not run the installer.
    #[error("cannot run the installer in the sandbox")]
    Sandbox(#[source] SandboxError),
    /// The installer ran and failed. Its output is not part of the message (one line): the
    /// binary prints [`InstallError::log`] above it.
    #[error("{}: {step} {}", what_failed(package.as_deref()), describe(*status))]
    Failed {
        /// What ran, e.g. `uv pip install -r requirements.txt`.
        step: String,
        /// How it ended.
        status: ExitStatus,
        /// The failing package, when the output names one (`numpy==1.26.4` or `numpy`).
        package: Option<String>,
        /// The last lines of the failing step's output (credentials redacted).
        output: String,
        /// What the output says went wrong.
        kind: FailureKind,
        /// The image's Python, for the hints (`3.11`).
        python: String,
        /// Where the whole log is, and what the index says (boxed: errors stay small).
        context: Box<FailureContext>,
    },
    /// Turning the install into a layer failed.
    #[error("cannot write the dependency layer")]
    Layer(#[source] layers::LayerError),
    /// A cached layer could not be unpacked as a lower dir of a later sandbox.
    #[error("cannot unpack a cached layer for the sandbox")]
    Unpack(#[source] layers::UnpackError),
    /// The base image's interpreter cannot be run for its root from the host (the
    /// namespace-free install).
    #[error("cannot use the python of the base root {} without namespaces: {reason}", root.display())]
    Interpreter {
        /// The unpacked root.
        root: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The layer cannot be installed for the requested platform.
    #[error("cannot install for {platform}: {reason}")]
    ForeignPlatform {
        /// The target platform.
        platform: String,
        /// Why not.
        reason: String,
    },
    /// A layer installed for another platform holds a program for the host's CPU (a package
    /// built from source on the host).
    #[error("{} for {platform} holds {file}, built for {found}", package.as_deref().map(|p| format!("package {p}")).unwrap_or_else(|| "the dependency layer".into()))]
    ForeignElf {
        /// The distribution the file belongs to, when its RECORD names it.
        package: Option<String>,
        /// The file (image path).
        file: String,
        /// The target platform.
        platform: String,
        /// The machine the file is for.
        found: String,
    },
    /// A package has no wheel for the target platform and must be compiled, which pyslip does
    /// not do for another platform.
    #[error("{} has no wheel for {platform} and would have to be compiled from its sdist", package.as_deref().unwrap_or("a dependency"))]
    ForeignNeedsWheel {
        /// The package, when the installer's output names it.
        package: Option<String>,
        /// The target platform.
        platform: String,
        /// The installer's own message.
        output: String,
    },
    /// The runtime user is not `root`, `UID` or `UID:GID`.
    #[error("user {0:?} is not root, UID or UID:GID")]
    User(String),
    /// Django's `collectstatic` ran and failed.
    #[error("django collectstatic failed: {step} {}\n{output}", describe(*status))]
    Collectstatic {
        /// What ran, e.g. `python manage.py collectstatic --noinput`.
        step: String,
        /// How it ended.
        status: ExitStatus,
        /// Django's own message (tail of its output).
        output: String,
    },
    /// `STATIC_ROOT` as Django resolved it cannot hold the collected files.
    #[error("django STATIC_ROOT {root:?} {reason}")]
    StaticRoot {
        /// The value Django reported.
        root: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn what_failed(package: Option<&str>) -> String {
    match package {
        Some(p) => format!("installing {p} failed"),
        None => "dependency install failed".to_owned(),
    }
}

fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(code) => format!("exited with status {code}"),
        ExitStatus::Signal(sig) => format!("was killed by signal {sig}"),
    }
}

/// The hint for a package that needed a compiler: with index data, the Python its pinned
/// version has wheels for and both ways out.
fn compiler_hint(package: Option<&str>, python: &str, wheels: Option<&WheelAdvice>) -> String {
    let slim = format!("python:{python}-slim has no C compiler");
    match wheels {
        Some(WheelAdvice {
            name,
            version,
            newest_python: Some(newest),
        }) => format!(
            "{name} {version} has no wheel for Python {python} on this platform and {slim} to build it from source: build with --python {newest} (the newest Python {name} {version} has wheels for), or pin a newer release of {name} that has wheels for {python}"
        ),
        Some(WheelAdvice {
            name,
            version,
            newest_python: None,
        }) => format!(
            "{name} {version} has no wheel for this platform on any supported Python and {slim} to build it from source: pin a release of {name} that has wheels for Python {python}, or build on a --base image that has the compiler and headers"
        ),
        None => format!(
            "{} needs system libraries or a C compiler to build from source, and {slim}: pin a version that has a binary wheel for this platform, or build on a --base image that has the compiler and headers",
            package.unwrap_or("a package")
        ),
    }
}

impl From<pyslip_cache::CacheError> for InstallError {
    /// The cache's I/O and layer errors become the variants of this crate's own I/O and layer
    /// errors (the binary's hints look for those).
    fn from(err: pyslip_cache::CacheError) -> Self {
        match err {
            pyslip_cache::CacheError::Io(e) => InstallError::Cache(e),
            pyslip_cache::CacheError::Layer(e) => InstallError::Layer(e),
            other => InstallError::Store(other),
        }
    }
}

impl InstallError {
    /// For a failed install: the last lines of the installer's output and the file holding
    /// the whole log, for the binary to print above the one-line error.
    pub fn log(&self) -> Option<(&str, Option<&std::path::Path>)> {
        match self {
            InstallError::Failed {
                output, context, ..
            } => Some((output.as_str(), context.log_path.as_deref())),
            _ => None,
        }
    }

    /// For a failed build of `package` that needed a compiler: the package's name and pinned
    /// version as the output names them (`numpy==1.26.4`), so the caller can ask the index.
    pub fn missing_wheel(&self) -> Option<(String, Option<String>)> {
        match self {
            InstallError::Failed {
                kind: FailureKind::Compiler,
                package: Some(package),
                ..
            } => {
                let (name, version) = match package.split_once("==") {
                    Some((n, v)) => (n.trim(), Some(v.trim().to_owned())),
                    None => (package.trim(), None),
                };
                Some((name.to_owned(), version))
            }
            _ => None,
        }
    }

    /// Adds what the package index says about the failing package (see [`missing_wheel`]).
    ///
    /// [`missing_wheel`]: InstallError::missing_wheel
    pub fn set_wheel_advice(&mut self, advice: WheelAdvice) {
        if let InstallError::Failed { context, .. } = self {
            context.wheels = Some(advice);
        }
    }

    /// An actionable hint for the user, printed by the binary as a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            InstallError::StaleLock { refresh, .. } => Some(format!(
                "run `{refresh}` and commit the updated lock file"
            )),
            InstallError::Sandbox(e) => e.hint(),
            InstallError::Input(e) => e.hint(),
            InstallError::Layer(e) => e.hint(),
            InstallError::Store(e) => e.hint(),
            InstallError::Unpack(e) => e.hint(),
            InstallError::User(_) => Some(
                "set --user (or user = in [tool.pyslip]) to root or numeric ids such as 1000:1000".to_owned(),
            ),
            InstallError::Collectstatic { .. } | InstallError::StaticRoot { .. } => Some(
                "fix the settings so that `python manage.py collectstatic --noinput` works without a database or secrets, or skip it: set `collectstatic = false` in [tool.pyslip] or DISABLE_COLLECTSTATIC=1".to_owned(),
            ),
            InstallError::UvDownload { .. } => Some(
                "pyslip downloads a pinned uv from files.pythonhosted.org: check network/proxy settings (HTTPS_PROXY, SSL_CERT_FILE), or pass --uv PATH".to_owned(),
            ),
            InstallError::ForeignPlatform { .. } => Some(
                "build that platform on a host of its own architecture, or use uv (the default installer) for linux/amd64 and linux/arm64".to_owned(),
            ),
            InstallError::ForeignElf { package, .. } | InstallError::ForeignNeedsWheel { package, .. } => Some(format!(
                "pyslip installs for another platform without emulation, from wheels: pin a version of {} that has a manylinux wheel for the platform, or build that platform on a host of its architecture",
                package.as_deref().unwrap_or("the package")
            )),
            InstallError::Interpreter { .. } => Some(
                "run with --sandbox namespaces where unprivileged user namespaces work, or use a python:X.Y-slim base".to_owned(),
            ),
            InstallError::UvPlatform(_) => Some("pass --uv PATH to a static uv binary for the target platform".to_owned()),
            InstallError::Failed {
                kind,
                package,
                python,
                context,
                ..
            } => match kind {
                FailureKind::Certificate => Some(
                    "the package index's TLS certificate is not trusted: point SSL_CERT_FILE at your CA bundle (pyslip mounts it into the sandbox for pip and uv)".to_owned(),
                ),
                FailureKind::Compiler => Some(compiler_hint(package.as_deref(), python, context.wheels.as_ref())),
                FailureKind::NotFound => Some(
                    "check the package name and version, and the index settings (PIP_INDEX_URL, UV_INDEX_URL)".to_owned(),
                ),
                FailureKind::HashMismatch => Some(
                    "a downloaded file does not match the hash in the lock: refresh the lock, or check that the index serves the locked files".to_owned(),
                ),
                FailureKind::Other => None,
            },
            _ => None,
        }
    }
}
