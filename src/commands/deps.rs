//! The dependency layer: reused from the cache by key, or installed in the rootless sandbox over
//! the unpacked base root (see the `pyslip-install` crate).

use std::path::Path;

use anyhow::{Context, Result};
use pyslip_install::{DepsLayer, DepsRequest, Isolation, LayerKind, StaticLayer, StaticRequest};
use pyslip_plan::BuildPlan;
use pyslip_registry::{Client, Platform, PulledImage};

use crate::cache::Cache;
use crate::cli::SandboxMode;
use crate::commands::base;
use crate::commands::cache_repo::{CacheRepo, Reuse};
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
    /// The registry-backed second tier of the cache (`--cache-repo`), if any.
    pub cache_repo: Option<&'a CacheRepo>,
    /// A local output, the SBOM or the boot check reads every layer's bytes: cache-repo hits
    /// are downloaded (and verified) at once, and one that does not verify is rebuilt.
    pub needs_bytes: bool,
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
    /// Where `deps` came from.
    pub deps_reuse: Reuse,
    /// The project's own package, when the plan installs it.
    pub project: Option<DepsLayer>,
    /// Where `project` came from.
    pub project_reuse: Reuse,
}

/// The layer recorded under `key` in the local cache, else in the cache repository.
async fn lookup_tiers(
    local: Option<DepsLayer>,
    kind: LayerKind,
    key: impl FnOnce() -> Result<String, pyslip_install::InstallError>,
    cache: &Cache,
    settings: &DepsSettings<'_>,
    printer: &Printer,
) -> Result<Option<(DepsLayer, Reuse)>> {
    if let Some(hit) = local {
        return Ok(Some((hit, Reuse::Local)));
    }
    let Some(repo) = settings.cache_repo else {
        return Ok(None);
    };
    let key = key()?;
    let Some(hit) = repo.lookup(kind, &key, cache, printer).await else {
        return Ok(None);
    };
    if settings.needs_bytes
        && let Err(err) = repo.download(kind, &hit, cache).await
    {
        printer.warn(&format!("{err:#}; not using it"));
        return Ok(None);
    }
    Ok(Some((hit, Reuse::CacheRepo)))
}

/// Make sure a layer a build step stacks (or a local output writes) is in the local store:
/// a cache-repo hit is downloaded and its diff_id verified. `Err` means it must not be used.
pub async fn ensure_local(
    layer: &DepsLayer,
    kind: LayerKind,
    reuse: Reuse,
    cache: &Cache,
    settings_repo: Option<&CacheRepo>,
) -> Result<()> {
    match (reuse, settings_repo) {
        (Reuse::CacheRepo, Some(repo)) => repo.download(kind, layer, cache).await,
        _ => Ok(()),
    }
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
    let mut deps = match settings.no_cache {
        true => None,
        false => {
            let local = pyslip_install::lookup(&req)?;
            lookup_tiers(
                local,
                LayerKind::Deps,
                || pyslip_install::cache_key(&req),
                cache,
                settings,
                printer,
            )
            .await?
        }
    };
    let mut project = None;
    if let Some((hit, _)) = &deps
        && wants_project
    {
        let local = pyslip_install::lookup_project(&req, hit)?;
        project = lookup_tiers(
            local,
            LayerKind::Project,
            || pyslip_install::project_key(&req, hit),
            cache,
            settings,
            printer,
        )
        .await?;
    }
    if let Some((deps, deps_reuse)) = &deps
        && (!wants_project || project.is_some())
    {
        let (project, project_reuse) = project.unzip();
        return Ok(Installed {
            deps: deps.clone(),
            deps_reuse: *deps_reuse,
            project,
            project_reuse: project_reuse.unwrap_or(Reuse::Built),
        });
    }
    // The project layer is installed over the dependency layer: it needs its bytes.
    if let Some((hit, reuse)) = &deps
        && let Err(err) =
            ensure_local(hit, LayerKind::Deps, *reuse, cache, settings.cache_repo).await
    {
        printer.warn(&format!("{err:#}; installing the dependencies here"));
        deps = None;
    }
    req.isolation = settings.isolation.get(cache, printer);
    // Without namespaces, an unpinned install is resolved on this host while the base is
    // downloaded and unpacked (see `pyslip_install::prefetch`); the install then runs offline.
    let resolve_here = match super::platforms::python_version(base) {
        Some(version)
            if deps.is_none()
                && pyslip_install::prefetch_applies(&req)
                && !base::root_path(cache, base)?.is_dir() =>
        {
            Some(version)
        }
        _ => None,
    };
    let (root, prefetched) = match resolve_here {
        Some(version) => {
            let unpack = {
                let (client, cache, base) = (client.clone(), cache.clone(), base.clone());
                tokio::spawn(async move { base::root(&client, &cache, &base).await })
            };
            let prefetched =
                tokio::task::block_in_place(|| pyslip_install::prefetch(&req, &version));
            // A signal stops the host resolution (which then just reports no result): stop.
            pyslip_lifecycle::interrupt::check()?;
            (unpack.await.context("unpack task failed")??, prefetched)
        }
        None => (base::root(client, cache, base).await?, None),
    };
    req.base_root = &root;
    // The installs are synchronous (sandbox code has no async); keep the runtime's other
    // workers free.
    tokio::task::block_in_place(|| {
        let (deps, deps_reuse) = match deps {
            Some(hit) => hit,
            None => {
                let made = pyslip_install::dependency_layer_prefetched(&req, prefetched.as_ref())?;
                let reuse = Reuse::local(made.reused);
                (made, reuse)
            }
        };
        let project = match wants_project {
            true => pyslip_install::project_layer(&req, &deps)?,
            false => None,
        };
        let project_reuse = Reuse::local(project.as_ref().is_some_and(|p| p.reused));
        Ok::<_, pyslip_install::InstallError>(Installed {
            deps,
            deps_reuse,
            project,
            project_reuse,
        })
    })
    .context("building the dependency layer")
}

/// A layer collectstatic runs over came from the cache repository and does not verify: the
/// caller installs the layers here instead and runs collectstatic again.
#[derive(Debug, thiserror::Error)]
#[error("a layer collectstatic runs over cannot be used: {0}")]
pub struct BelowUnusable(String);

/// Run (or reuse) Django's collectstatic over the dependency layer; `None` when the plan does
/// not run it. Like the dependency layer, a cache hit needs no base root and no sandbox.
pub async fn static_layer(
    client: &Client,
    cache: &Cache,
    base: &PulledImage,
    plan: &BuildPlan,
    below_reuse: &[(&DepsLayer, LayerKind, Reuse)],
    settings: &DepsSettings<'_>,
    printer: &Printer,
) -> Result<Option<(StaticLayer, Reuse)>> {
    let below: Vec<&DepsLayer> = below_reuse.iter().map(|(l, _, _)| *l).collect();
    if !pyslip_install::runs_collectstatic(plan) {
        return Ok(None);
    }
    let platform = settings.platform.to_string();
    let expected_root = base::root_path(cache, base)?;
    let mut req = StaticRequest {
        project_dir: settings.project_dir,
        plan,
        layers: &below,
        base_root: &expected_root,
        base_digest: &base.digest,
        platform: &platform,
        cache_dir: cache.root(),
        no_cache: settings.no_cache,
        mtime: settings.mtime,
        isolation: Isolation::Namespaces,
    };
    if !settings.no_cache {
        let local = pyslip_install::lookup_static(&req)?;
        let hit = lookup_tiers(
            local,
            LayerKind::Static,
            || pyslip_install::static_key(&req),
            cache,
            settings,
            printer,
        )
        .await?;
        if hit.is_some() {
            return Ok(hit);
        }
    }
    // collectstatic runs over the layers below: they must be here.
    for (layer, kind, reuse) in below_reuse {
        if let Err(err) = ensure_local(layer, *kind, *reuse, cache, settings.cache_repo).await {
            return Err(BelowUnusable(format!("{err:#}")).into());
        }
    }
    req.isolation = settings.isolation.get(cache, printer);
    let root = base::root(client, cache, base).await?;
    req.base_root = &root;
    let made = tokio::task::block_in_place(|| pyslip_install::collectstatic_layer(&req))
        .context("running Django's collectstatic")?;
    Ok(made.map(|l| {
        let reuse = Reuse::local(l.reused);
        (l, reuse)
    }))
}
