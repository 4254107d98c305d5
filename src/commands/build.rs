//! `pyslip build`: plan → base → layers → config → outputs, for one platform or several (one
//! image each under an index).

use std::path::Path;

use anyhow::{Context, Result};
use layers::{LayerOptions, WrittenLayer};
use pyslip_image::{Artifact, BlobRef, Image, LayerOrigin, NewLayer};
use pyslip_install::{DepsLayer, LayerKind, StaticLayer};
use pyslip_plan::BuildPlan;
use pyslip_registry::{Client, ClientConfig, Platform, PulledImage, Reference};

use crate::cache::Cache;
use crate::cli::{BuildArgs, SandboxMode};
use crate::commands::cache_repo::{self, CacheRepo, Reuse};
use crate::commands::deps::{Installed, IsolationChoice};
use crate::commands::outputs::Requested;
use crate::commands::platforms::{Bases, PlatformSpec, Target};
use crate::commands::report::Printer;
use crate::commands::{
    UserError, app_layer, check, deps, layer_inputs, outputs, plan_overrides, platforms,
    python_choice, report, sbom,
};

/// Run `pyslip build`.
pub fn run(args: BuildArgs) -> Result<()> {
    let requested = Requested::from_args(&args)?;
    let spec = PlatformSpec::parse(args.platform.as_deref())?;
    let sbom_request = sbom::SbomRequest::from_args(&args)?;
    if sbom_request.is_some() && spec.may_be_several() {
        return Err(UserError::new(
            "--sbom describes one image; this build makes one per platform",
            "build with a single --platform to write an SBOM",
        )
        .into());
    }
    let mut output_paths = requested.paths();
    output_paths.extend(sbom_request.as_ref().map(|s| s.path.clone()));
    let overrides = plan_overrides(&args.plan, output_paths)?;
    let dir = args.plan.dir.clone();
    let plan = pyslip_plan::plan(&dir, &overrides)?;
    let check_settings = check::CheckSettings::from_args(&args, &plan)?;
    let printer = report::Printer::new(args.json);
    for warning in &plan.warnings {
        printer.warn(warning);
    }
    let cache = Cache::open_default()?;
    // Leftovers of killed builds go while this one runs; waited for when `run` returns.
    let _sweep = cache.sweep_in_background();
    let isolation = IsolationChoice::new(SandboxMode::of(&args, &plan));
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let created = pyslip_image::created_timestamp(epoch.as_deref())?;
    let mtime = epoch
        .as_deref()
        .and_then(|e| e.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let client_config = ClientConfig {
        insecure_registries: args.insecure_registries.clone(),
        blob_cache: Some(cache.blobs_dir()),
        ..ClientConfig::default()
    };
    let client = Client::new(client_config.clone())?;
    let cache_repo = CacheRepo::from_settings(
        args.cache_repo.as_deref(),
        plan.cache_repo.as_ref(),
        args.cache_repo_readonly,
        client_config,
    )?;
    let needs_bytes = requested.tar.is_some()
        || requested.layout.is_some()
        || sbom_request.is_some()
        || check_settings.is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // A Python the pins can install (the plan may be refined from package-index data).
        let (refined, notes) = python_choice::refine(
            &client,
            &cache,
            &dir,
            &overrides,
            plan,
            &spec.first_or_host(),
        )
        .await?;
        notes.iter().for_each(|note| printer.warn(note));
        refined.changed.iter().for_each(|line| printer.note(line));
        let plan = refined.plan;
        let base_ref = Reference::parse(&plan.base.value)
            .with_context(|| format!("base image {}", plan.base.value))?;
        let bases = platforms::resolve(&client, &base_ref, &spec, &printer).await?;
        if sbom_request.is_some() && bases.targets.len() > 1 {
            return Err(UserError::new(
                "--sbom describes one image; --platform all found several in the base index",
                "build with a single --platform to write an SBOM",
            )
            .into());
        }
        if check_settings.is_some() && bases.host_target().is_none() {
            return Err(UserError::new(
                format!(
                    "--check starts the image on this machine, and the build makes no {} image",
                    Platform::host()
                ),
                "add this machine's platform to --platform, or leave out --check",
            )
            .into());
        }
        let ctx = Ctx {
            client: &client,
            cache: &cache,
            plan: &plan,
            dir: &dir,
            args: &args,
            printer: &printer,
            isolation: &isolation,
            mtime,
            cache_repo: cache_repo.as_ref(),
            needs_bytes,
        };

        // The app layer is written while the dependency layers are made (or looked up).
        let app_task = {
            let (cache, plan, dir) = (cache.clone(), plan.clone(), dir.clone());
            tokio::task::spawn_blocking(move || {
                app_layer::write(&cache, &dir, &plan, &LayerOptions { mtime })
            })
        };
        let mut installed = Vec::new();
        for target in &bases.targets {
            installed.push(
                ctx.install(bases.install_base(target), &target.platform)
                    .await?,
            );
        }
        let statics = ctx.statics(&bases, &mut installed).await?;
        let app = app_task.await.context("app layer task failed")??;
        let shared = Shared {
            base_ref: &base_ref,
            statics: statics.as_ref().map(|(s, r)| (s, *r)),
            app: &app,
            created: &created,
        };
        let mut images = Vec::new();
        let mut made_layers = Vec::new();
        for (target, installed) in bases.targets.iter().zip(&installed) {
            let (image, new_layers) = ctx.image(target, installed.as_ref(), &shared)?;
            cache.write_blob(&image.config)?;
            cache.write_blob(&image.manifest)?;
            images.push(image);
            made_layers.push(new_layers);
        }
        if let (Some(settings), Some(at)) = (&check_settings, bases.host_target()) {
            let mut sandbox_layers: Vec<DepsLayer> = installed[at]
                .iter()
                .flat_map(|i| std::iter::once(&i.deps).chain(i.project.as_ref()))
                .cloned()
                .collect();
            sandbox_layers.extend(statics.as_ref().map(|(s, _)| s.clone()));
            let checked = check::CheckedImage {
                base: &bases.targets[at].base,
                layers: &sandbox_layers,
                app: &app,
                image: &images[at],
                plan: &plan,
            };
            check::run(&client, &cache, settings, &checked, &printer, args.json).await?;
        }

        let made_sbom = match &sbom_request {
            Some(request) => {
                printer.step("writing the SBOM");
                let ctx = sbom::SbomContext {
                    dir: &dir,
                    plan: &plan,
                    image: &images[0],
                    new_layers: &made_layers[0],
                    base: &bases.targets[0].base,
                    platform: bases.targets[0].platform.to_string(),
                    created: &created,
                };
                Some(sbom::make(&client, &cache, &ctx, request).await?)
            }
            None => None,
        };
        printer.step("writing outputs");
        let artifact = match images.len() {
            1 => Artifact::Image(images.remove(0)),
            _ => Artifact::Index(pyslip_image::index(images)?),
        };
        let target_bases: Vec<&PulledImage> = bases.targets.iter().map(|t| &t.base).collect();
        // pyslip's layers of every platform, for the cache repository.
        let mut made: Vec<(LayerKind, DepsLayer, Reuse)> = Vec::new();
        for i in installed.iter().flatten() {
            made.push((LayerKind::Deps, i.deps.clone(), i.deps_reuse));
            if let Some(project) = &i.project {
                made.push((LayerKind::Project, project.clone(), i.project_reuse));
            }
        }
        if let Some((statics, reuse)) = &statics {
            made.push((LayerKind::Static, statics.clone(), *reuse));
        }
        // Each cache key once. Not by digest: a pure-Python layer has the same digest on every
        // platform but a key per platform, and a runner of each platform looks up its own key.
        let mut seen = std::collections::HashSet::new();
        made.retain(|(_, layer, _)| seen.insert(layer.key.clone()));
        let from_cache_repo: Vec<_> = cache_repo
            .iter()
            .flat_map(|repo| {
                made.iter()
                    .filter(|(_, _, r)| *r == Reuse::CacheRepo)
                    .map(|(_, l, _)| (l.layer.digest.clone(), repo.repo().clone()))
            })
            .collect();
        let made: Vec<_> = made
            .iter()
            .map(|(kind, layer, reuse)| cache_repo::Made {
                kind: *kind,
                layer,
                reuse: *reuse,
            })
            .collect();
        let all_new_layers: Vec<NewLayer> = made_layers.iter().flatten().cloned().collect();
        let (written, ()) = tokio::join!(
            outputs::write_all(
                &client,
                &cache,
                &requested,
                &artifact,
                &target_bases,
                &from_cache_repo,
                &printer,
            ),
            cache_repo::publish_all(cache_repo.as_ref(), &made, &all_new_layers, &printer),
        );
        let mut written = written?;
        written.pull = cache_repo::received(&client, cache_repo.as_ref(), &written.pushes);
        if let (Some(made), Artifact::Image(image)) = (&made_sbom, &artifact) {
            written.sbom = Some(sbom::attach(&client, made, image, &written, &printer).await?);
        }
        printer.finish(&artifact, &written)
    })
}

/// What every platform's build shares.
struct Ctx<'a> {
    client: &'a Client,
    cache: &'a Cache,
    plan: &'a BuildPlan,
    dir: &'a Path,
    args: &'a BuildArgs,
    printer: &'a Printer,
    isolation: &'a IsolationChoice,
    mtime: u64,
    cache_repo: Option<&'a CacheRepo>,
    needs_bytes: bool,
}

/// The platform-independent parts of every image.
struct Shared<'a> {
    base_ref: &'a Reference,
    statics: Option<(&'a StaticLayer, Reuse)>,
    app: &'a WrittenLayer,
    created: &'a str,
}

impl Ctx<'_> {
    fn settings<'b>(&'b self, platform: &'b Platform) -> deps::DepsSettings<'b> {
        deps::DepsSettings {
            project_dir: self.dir,
            platform,
            uv: self.args.uv.as_deref(),
            no_cache: self.args.no_cache,
            mtime: self.mtime,
            isolation: self.isolation,
            cache_repo: self.cache_repo,
            needs_bytes: self.needs_bytes,
        }
    }

    /// The dependency (and project) layers for `platform`, installed over `root`'s base root
    /// (this machine's platform; the installer selects `platform`'s wheels); `None` when the
    /// plan installs nothing.
    async fn install(&self, root: &PulledImage, platform: &Platform) -> Result<Option<Installed>> {
        if self.plan.install.is_none() {
            return Ok(None);
        }
        self.printer
            .step(&format!("making the dependency layer for {platform}"));
        let settings = self.settings(platform);
        match deps::layers(
            self.client,
            self.cache,
            root,
            self.plan,
            &settings,
            self.printer,
        )
        .await
        {
            Ok(installed) => Ok(Some(installed)),
            Err(err) => {
                Err(
                    python_choice::explain_failure(self.client, self.dir, self.plan, platform, err)
                        .await,
                )
            }
        }
    }

    /// Django's collected static files, made once over this machine's platform (its
    /// dependency layers installed for it when the build makes no image for it): the same
    /// blob goes into every platform's image. When a layer below came from the cache
    /// repository and does not verify, the host's layers are installed here (replacing them in
    /// `installed`) and collectstatic runs over those.
    async fn statics(
        &self,
        bases: &Bases,
        installed: &mut [Option<Installed>],
    ) -> Result<Option<(StaticLayer, Reuse)>> {
        if self.plan.install.is_none() || !pyslip_install::runs_collectstatic(self.plan) {
            return Ok(None);
        }
        let host = Platform::host();
        let at = bases.host_target();
        let root = match at {
            Some(at) => &bases.targets[at].base,
            None => bases
                .host
                .as_ref()
                .context("no base image for this machine")?,
        };
        let mut made_for_host = match at {
            Some(_) => None,
            None => self.install(root, &host).await?,
        };
        self.printer.step("running collectstatic");
        let first = match at.map_or(made_for_host.as_ref(), |at| installed[at].as_ref()) {
            Some(layers) => self.collectstatic(root, layers).await,
            None => return Ok(None),
        };
        match first {
            Err(err) if err.is::<deps::BelowUnusable>() => {
                self.printer
                    .warn(&format!("{err:#}; installing the dependencies here"));
                let local = Ctx {
                    cache_repo: None,
                    ..*self
                };
                let rebuilt = local.install(root, &host).await?;
                match at {
                    Some(at) => installed[at] = rebuilt,
                    None => made_for_host = rebuilt,
                }
                match at.map_or(made_for_host.as_ref(), |at| installed[at].as_ref()) {
                    Some(layers) => self.collectstatic(root, layers).await,
                    None => Ok(None),
                }
            }
            other => other,
        }
    }

    /// collectstatic over the host's `layers`.
    async fn collectstatic(
        &self,
        root: &PulledImage,
        layers: &Installed,
    ) -> Result<Option<(StaticLayer, Reuse)>> {
        let mut below = vec![(&layers.deps, LayerKind::Deps, layers.deps_reuse)];
        if let Some(project) = &layers.project {
            below.push((project, LayerKind::Project, layers.project_reuse));
        }
        let host = Platform::host();
        let settings = self.settings(&host);
        deps::static_layer(
            self.client,
            self.cache,
            root,
            self.plan,
            &below,
            &settings,
            self.printer,
        )
        .await
    }

    /// One platform's image: its base's layers and config, its dependency layers, and the
    /// shared static and app layers.
    fn image(
        &self,
        target: &Target,
        installed: Option<&Installed>,
        shared: &Shared<'_>,
    ) -> Result<(Image, Vec<NewLayer>)> {
        let mut new_layers = Vec::new();
        let mut reuses = Vec::new();
        let deps = installed.into_iter().flat_map(|i| {
            [
                (Some(&i.deps), LayerOrigin::Deps, i.deps_reuse),
                (i.project.as_ref(), LayerOrigin::Project, i.project_reuse),
            ]
        });
        let statics = shared
            .statics
            .map(|(s, reuse)| (Some(s), LayerOrigin::Static, reuse));
        for (layer, origin, reuse) in deps.chain(statics) {
            let Some(layer) = layer else { continue };
            if !layer.special_bits.is_empty() {
                self.printer.warn(&format!(
                    "the install set setuid, setgid, sticky or world-write bits on {}; no layer pyslip writes carries them (they were dropped)",
                    layer.special_bits.join(", ")
                ));
            }
            new_layers.push(new_layer(
                &layer.layer,
                origin,
                layer.created_by.clone(),
                reuse != Reuse::Built,
            ));
            reuses.push(reuse);
        }
        new_layers.push(new_layer(
            shared.app,
            LayerOrigin::App,
            app_layer::HISTORY.to_owned(),
            false,
        ));
        reuses.push(Reuse::Built);
        for (layer, reuse) in new_layers.iter().zip(&reuses) {
            self.printer
                .layer(layer.origin, &layer.blob.digest, layer.blob.size, *reuse);
        }
        layer_inputs::annotate(
            &mut new_layers,
            self.plan,
            self.dir,
            &target.base.digest,
            &target.platform,
            self.args.uv.is_some(),
            &shared.app.diff_id,
        )?;
        let base = &target.base;
        let base_layers: Vec<BlobRef> = base
            .layers
            .iter()
            .map(|d| BlobRef {
                media_type: d.media_type.clone(),
                digest: d.digest.clone(),
                size: d.size,
            })
            .collect();
        let settings = app_layer::settings(self.plan, shared.created.to_owned())?;
        let annotations = [
            (
                "org.opencontainers.image.base.name".to_owned(),
                shared.base_ref.to_string(),
            ),
            (
                "org.opencontainers.image.base.digest".to_owned(),
                base.digest.to_string(),
            ),
        ]
        .into();
        let image = pyslip_image::assemble(
            &base.config_bytes,
            &base_layers,
            &new_layers,
            &settings,
            annotations,
        )?;
        Ok((image, new_layers))
    }
}

fn new_layer(
    layer: &WrittenLayer,
    origin: LayerOrigin,
    created_by: String,
    reused: bool,
) -> NewLayer {
    NewLayer {
        blob: BlobRef {
            media_type: pyslip_registry::media_types::OCI_LAYER_GZIP.to_owned(),
            digest: layer.digest.clone(),
            size: layer.size,
        },
        diff_id: layer.diff_id.clone(),
        created_by,
        origin,
        reused,
        annotations: Default::default(),
    }
}
