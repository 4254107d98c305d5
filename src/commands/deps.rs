//! The dependency layer: reused from the cache by key, or installed in the rootless sandbox over
//! the unpacked base root (see the `pyslip-install` crate).

use std::path::Path;

use anyhow::{Context, Result};
use pyslip_install::{DepsLayer, DepsRequest, Isolation, StaticLayer, StaticRequest};
use pyslip_plan::BuildPlan;
use pyslip_registry::{Client, Platform, PulledImage};

use crate::cache::Cache;
use crate::cli::SandboxMode;
use crate::commands::base;
use crate::commands::report::Printer;

/// Settings of one build that the dependency layer depends on.
pub struct DepsSettings<'a> {
    /// The project directory.
    pub project_dir: &'a Path,
    /// The target platform.
    pub platform: &'a Platform,
    /// `--uv PATH`.
    pub uv: Option<&'a Path>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// Entry mtimes and `SOURCE_DATE_EPOCH`.
    pub mtime: u64,
    /// Where build steps run (decided on the first cache miss).
    pub isolation: &'a IsolationChoice,
}

/// `--sandbox`, resolved once per build, and only when a step must run: a build whose layers
/// are all cached never probes.
pub struct IsolationChoice {
    mode: SandboxMode,
    decided: std::sync::OnceLock<Isolation>,
}

impl IsolationChoice {
    /// The choice `mode` asks for.
    pub fn new(mode: SandboxMode) -> Self {
        Self {
            mode,
            decided: std::sync::OnceLock::new(),
        }
    }

    /// Where steps run; with `auto`, probes the namespace sandbox (with its scratch in the
    /// cache, where installs keep theirs) and says which was chosen, and why, in one line.
    pub fn get(&self, cache: &Cache, printer: &Printer) -> Isolation {
        *self.decided.get_or_init(|| match self.mode {
            SandboxMode::Namespaces => Isolation::Namespaces,
            SandboxMode::None => {
                printer.note("sandbox none (--sandbox none): build steps run on this host, isolated only by the job's own container");
                Isolation::None
            }
            SandboxMode::Auto => match pyslip_sandbox::probe_sandbox(&cache.tmp_dir()) {
                Ok(()) => {
                    printer.note("sandbox namespaces: build steps run in the rootless sandbox (user namespaces and overlayfs work here)");
                    Isolation::Namespaces
                }
                Err(err) => {
                    let why = match err.remedy() {
                        Some(hint) => format!("{err}; to use it: {hint}"),
                        None => err.to_string(),
                    };
                    printer.note(&format!(
                        "sandbox none: the namespace sandbox cannot run here ({why}); installing for the base root from this host"
                    ));
                    Isolation::None
                }
            },
        })
    }
}

/// The layers the install makes: third-party dependencies, and the project's own package when
/// it is installed as one (a layer of its own, so app code changes leave the first untouched).
pub struct Installed {
    /// Third-party dependencies.
    pub deps: DepsLayer,
    /// The project's own package, when the plan installs it.
    pub project: Option<DepsLayer>,
}

/// The install crate's downloads (the pinned uv) go through the registry client: one HTTP stack
/// with its proxies (`NO_PROXY` included), CA roots, retries and digest check.
struct ClientFetch<'a> {
    client: &'a Client,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for ClientFetch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientFetch")
    }
}

impl pyslip_install::Fetch for ClientFetch<'_> {
    fn fetch(
        &self,
        url: &str,
        dest: &Path,
        sha256: &str,
        max_bytes: u64,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let url = pyslip_registry::Url::parse(url)?;
        let digest = layers::Digest::parse(&format!("sha256:{sha256}"))?;
        // Called from the install's blocking section (`block_in_place`), so blocking on the
        // runtime here is allowed.
        self.runtime.block_on(
            self.client
                .fetch_url_verified(&url, dest, &digest, max_bytes),
        )?;
        Ok(())
    }
}

/// Make or reuse the dependency (and project) layers for `plan`.
///
/// Cache hits need neither the base layers nor the sandbox; only a miss downloads and unpacks
/// the base root (itself cached per base digest).
pub async fn layers(
    client: &Client,
    cache: &Cache,
    base: &PulledImage,
    plan: &BuildPlan,
    settings: &DepsSettings<'_>,
    printer: &Printer,
) -> Result<Installed> {
    let platform = settings.platform.to_string();
    let expected_root = base::root_path(cache, base)?;
    let fetch = ClientFetch {
        client,
        runtime: tokio::runtime::Handle::current(),
    };
    let mut req = DepsRequest {
        project_dir: settings.project_dir,
        plan,
        base_root: &expected_root,
        base_digest: &base.digest,
        platform: &platform,
        cache_dir: cache.root(),
        uv_override: settings.uv,
        no_cache: settings.no_cache,
        mtime: settings.mtime,
        host_env: std::env::vars().collect(),
        fetch: &fetch,
        isolation: Isolation::Namespaces,
    };
    let wants_project = pyslip_install::has_project_layer(&req)?;
    let cached_deps = if settings.no_cache {
        None
    } else {
        pyslip_install::lookup(&req)?
    };
    if let Some(deps) = &cached_deps {
        let project = match wants_project {
            true => pyslip_install::lookup_project(&req, deps)?,
            false => None,
        };
        if !wants_project || project.is_some() {
            return Ok(Installed {
                deps: deps.clone(),
                project,
            });
        }
    }
    req.isolation = settings.isolation.get(cache, printer);
    let root = base::root(client, cache, base).await?;
    req.base_root = &root;
    // The installs are synchronous (sandbox code has no async); keep the runtime's other
    // workers free.
    tokio::task::block_in_place(|| {
        let deps = match cached_deps {
            Some(deps) => deps,
            None => pyslip_install::dependency_layer(&req)?,
        };
        let project = match wants_project {
            true => pyslip_install::project_layer(&req, &deps)?,
            false => None,
        };
        Ok::<_, pyslip_install::InstallError>(Installed { deps, project })
    })
    .context("building the dependency layer")
}

/// Run (or reuse) Django's collectstatic over the dependency layer; `None` when the plan does
/// not run it. Like the dependency layer, a cache hit needs no base root and no sandbox.
pub async fn static_layer(
    client: &Client,
    cache: &Cache,
    base: &PulledImage,
    plan: &BuildPlan,
    below: &[&DepsLayer],
    settings: &DepsSettings<'_>,
    printer: &Printer,
) -> Result<Option<StaticLayer>> {
    if !pyslip_install::runs_collectstatic(plan) {
        return Ok(None);
    }
    let platform = settings.platform.to_string();
    let expected_root = base::root_path(cache, base)?;
    let mut req = StaticRequest {
        project_dir: settings.project_dir,
        plan,
        layers: below,
        base_root: &expected_root,
        base_digest: &base.digest,
        platform: &platform,
        cache_dir: cache.root(),
        no_cache: settings.no_cache,
        mtime: settings.mtime,
        isolation: Isolation::Namespaces,
    };
    if !settings.no_cache
        && let Some(hit) = pyslip_install::lookup_static(&req)?
    {
        return Ok(Some(hit));
    }
    req.isolation = settings.isolation.get(cache, printer);
    let root = base::root(client, cache, base).await?;
    req.base_root = &root;
    tokio::task::block_in_place(|| pyslip_install::collectstatic_layer(&req))
        .context("running Django's collectstatic")
}
