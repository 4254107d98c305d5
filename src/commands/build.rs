//! `pyslip build`: plan → base → layers → config → outputs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use layers::{LayerOptions, WrittenLayer};
use pyslip_registry::{Client, ClientConfig, Platform, Reference};

use crate::cache::Cache;
use crate::cli::BuildArgs;
use crate::commands::{
    UserError, app_layer, check, deps, layer_inputs, outputs, plan_overrides, python_choice,
    report, sbom,
};
use crate::image::{self, BlobRef, LayerOrigin, NewLayer};

/// What the user asked to be written.
pub struct Requested {
    /// Every `-t` reference, parsed.
    pub tags: Vec<Reference>,
    /// `--push`.
    pub push: bool,
    /// `--tar FILE`.
    pub tar: Option<PathBuf>,
    /// `--oci-layout DIR`.
    pub layout: Option<PathBuf>,
}

impl Requested {
    /// Validate the output flags before any work is done.
    fn from_args(args: &BuildArgs) -> Result<Self> {
        if !args.push && args.tar.is_none() && args.oci_layout.is_none() {
            return Err(UserError::new(
                "no output requested: the image would be built and thrown away",
                "add --push (with -t REF), --tar FILE or --oci-layout DIR; several may be combined",
            )
            .into());
        }
        let tags = args
            .tags
            .iter()
            .map(|t| Reference::parse(t).with_context(|| format!("-t {t}")))
            .collect::<Result<Vec<_>>>()?;
        if args.push && tags.is_empty() {
            return Err(UserError::new(
                "--push needs a reference to push to",
                "add -t REGISTRY/REPOSITORY:TAG (repeatable)",
            )
            .into());
        }
        if let Some(tagged) = tags.iter().find(|t| t.digest().is_some()) {
            return Err(UserError::new(
                format!("-t {tagged}: a tag cannot name a digest"),
                "give -t REGISTRY/REPOSITORY:TAG; the digest is computed by the build",
            )
            .into());
        }
        if let Some(tar) = &args.tar {
            let parent = tar
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(UserError::new(
                    format!(
                        "--tar {}: the directory {} does not exist",
                        tar.display(),
                        parent.display()
                    ),
                    "create the directory first, or write the tarball somewhere else",
                )
                .into());
            }
            if tar.is_dir() {
                return Err(UserError::new(
                    format!("--tar {} is a directory", tar.display()),
                    "give a file name, e.g. --tar image.tar (for a directory use --oci-layout DIR)",
                )
                .into());
            }
        }
        Ok(Self {
            tags,
            push: args.push,
            tar: args.tar.clone(),
            layout: args.oci_layout.clone(),
        })
    }

    /// The output paths of this build, so the app layer never ships them.
    fn paths(&self) -> Vec<PathBuf> {
        self.tar.iter().chain(self.layout.iter()).cloned().collect()
    }
}

/// Run `pyslip build`.
pub fn run(args: BuildArgs) -> Result<()> {
    let requested = Requested::from_args(&args)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p).with_context(|| format!("--platform {p}"))?,
        None => Platform::host(),
    };
    let sbom_request = sbom::SbomRequest::from_args(&args)?;
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
    let isolation = deps::IsolationChoice::new(args.sandbox);
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let created = image::created_timestamp(epoch.as_deref())?;
    let mtime = epoch
        .as_deref()
        .and_then(|e| e.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let client = Client::new(ClientConfig {
        insecure_registries: args.insecure_registries.clone(),
        blob_cache: Some(cache.blobs_dir()),
        ..ClientConfig::default()
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // A Python the pins can install (the plan may be refined from package-index data).
        let (refined, notes) =
            python_choice::refine(&client, &cache, &dir, &overrides, plan, &platform).await?;
        notes.iter().for_each(|note| printer.warn(note));
        refined.changed.iter().for_each(|line| printer.note(line));
        let plan = refined.plan;
        let base_ref = Reference::parse(&plan.base.value)
            .with_context(|| format!("base image {}", plan.base.value))?;
        printer.step(&format!("resolving {base_ref}"));
        let pulled = client
            .pull_image(&base_ref, &platform)
            .await
            .with_context(|| format!("resolving base image {base_ref}"))?;
        printer.base(&base_ref, &pulled.digest, pulled.layers.len());

        // The app layer is written while the dependency layer is made (or looked up).
        let app_task = {
            let cache = cache.clone();
            let plan = plan.clone();
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || {
                app_layer::write(&cache, &dir, &plan, &LayerOptions { mtime })
            })
        };
        let mut new_layers = Vec::new();
        // pyslip's layers below the app layer, lowest first (the boot check stacks them).
        let mut sandbox_layers = Vec::new();
        if plan.install.is_some() {
            let settings = deps::DepsSettings {
                project_dir: &dir,
                platform: &platform,
                uv: args.uv.as_deref(),
                no_cache: args.no_cache,
                mtime,
                isolation: &isolation,
            };
            printer.step("making the dependency layer");
            let installed =
                match deps::layers(&client, &cache, &pulled, &plan, &settings, &printer).await {
                    Ok(installed) => installed,
                    Err(err) => {
                        return Err(python_choice::explain_failure(
                            &client, &dir, &plan, &platform, err,
                        )
                        .await);
                    }
                };
            let mut below = vec![&installed.deps];
            for (layer, origin) in [
                (Some(&installed.deps), LayerOrigin::Deps),
                (installed.project.as_ref(), LayerOrigin::Project),
            ] {
                let Some(layer) = layer else { continue };
                printer.layer(origin, &layer.layer.digest, layer.layer.size, layer.reused);
                if !layer.special_bits.is_empty() {
                    printer.warn(&format!(
                        "the install set setuid, setgid, sticky or world-write bits on {}; no layer pyslip writes carries them (they were dropped)",
                        layer.special_bits.join(", ")
                    ));
                }
                new_layers.push(new_layer(
                    &layer.layer,
                    origin,
                    layer.created_by.clone(),
                    layer.reused,
                ));
            }
            below.extend(installed.project.as_ref());
            sandbox_layers.extend(below.iter().map(|l| (*l).clone()));
            printer.step("running collectstatic");
            if let Some(statics) =
                deps::static_layer(&client, &cache, &pulled, &plan, &below, &settings, &printer)
                    .await?
            {
                printer.layer(
                    LayerOrigin::Static,
                    &statics.layer.digest,
                    statics.layer.size,
                    statics.reused,
                );
                new_layers.push(new_layer(
                    &statics.layer,
                    LayerOrigin::Static,
                    statics.created_by.clone(),
                    statics.reused,
                ));
                sandbox_layers.push(statics);
            }
        }
        let app = app_task.await.context("app layer task failed")??;
        printer.layer(LayerOrigin::App, &app.digest, app.size, false);
        new_layers.push(new_layer(
            &app,
            LayerOrigin::App,
            app_layer::HISTORY.to_owned(),
            false,
        ));
        let shipped = app.diff_id.clone();
        layer_inputs::annotate(
            &mut new_layers,
            &plan,
            &dir,
            &pulled.digest,
            &platform,
            args.uv.is_some(),
            &shipped,
        )?;
        let base_layers: Vec<BlobRef> = pulled
            .layers
            .iter()
            .map(|d| BlobRef {
                media_type: d.media_type.clone(),
                digest: d.digest.clone(),
                size: d.size,
            })
            .collect();
        let settings = app_layer::settings(&plan, created.clone())?;
        let annotations = [
            (
                "org.opencontainers.image.base.name".to_owned(),
                base_ref.to_string(),
            ),
            (
                "org.opencontainers.image.base.digest".to_owned(),
                pulled.digest.to_string(),
            ),
        ]
        .into();
        let parts = image::assemble(
            &pulled.config_bytes,
            &base_layers,
            &new_layers,
            &settings,
            annotations,
        )?;
        if let Some(settings) = &check_settings {
            let image = check::CheckedImage {
                base: &pulled,
                layers: &sandbox_layers,
                app: &app,
                parts: &parts,
                plan: &plan,
            };
            check::run(&client, &cache, settings, &image, &printer, args.json).await?;
        }
        cache.write_blob(&parts.config)?;
        cache.write_blob(&parts.manifest)?;

        let made_sbom = match &sbom_request {
            Some(request) => {
                printer.step("writing the SBOM");
                let ctx = sbom::SbomContext {
                    dir: &dir,
                    plan: &plan,
                    image: &parts,
                    new_layers: &new_layers,
                    base: &pulled,
                    platform: platform.to_string(),
                    created: &created,
                };
                Some(sbom::make(&client, &cache, &ctx, request).await?)
            }
            None => None,
        };
        printer.step("writing outputs");
        let mut written =
            outputs::write_all(&client, &cache, &requested, &parts, &pulled, &printer).await?;
        if let Some(made) = &made_sbom {
            written.sbom = Some(sbom::attach(&client, made, &parts, &written, &printer).await?);
        }
        printer.finish(&parts, &written)
    })
}

fn new_layer(
    layer: &WrittenLayer,
    origin: LayerOrigin,
    created_by: String,
    reused: bool,
) -> NewLayer {
    NewLayer {
        blob: BlobRef {
            media_type: image::OCI_LAYER_GZIP.to_owned(),
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
