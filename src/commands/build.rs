//! `pyslip build`: plan → base → layers → config → outputs.

use anyhow::{Context, Result};
use layers::{LayerOptions, WrittenLayer};
use pyslip_registry::{Client, ClientConfig, Platform, Reference};

use crate::cache::Cache;
use crate::cli::BuildArgs;
use crate::commands::cache_repo::Reuse;
use crate::commands::outputs::Requested;
use crate::commands::{
    app_layer, cache_repo, check, deps, layer_inputs, outputs, plan_overrides, python_choice,
    report, sbom,
};
use pyslip_image::{Artifact, BlobRef, LayerOrigin, NewLayer};
use pyslip_install::LayerKind;

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
    let cache_repo = cache_repo::CacheRepo::from_settings(
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
        // pyslip's cached layers, for the cache repository.
        let mut made = Vec::new();
        if plan.install.is_some() {
            let settings = deps::DepsSettings {
                project_dir: &dir,
                platform: &platform,
                uv: args.uv.as_deref(),
                no_cache: args.no_cache,
                mtime,
                isolation: &isolation,
                cache_repo: cache_repo.as_ref(),
                needs_bytes,
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
            let mut below = Vec::new();
            for (layer, origin, kind, reuse) in [
                (
                    Some(&installed.deps),
                    LayerOrigin::Deps,
                    LayerKind::Deps,
                    installed.deps_reuse,
                ),
                (
                    installed.project.as_ref(),
                    LayerOrigin::Project,
                    LayerKind::Project,
                    installed.project_reuse,
                ),
            ] {
                let Some(layer) = layer else { continue };
                printer.layer(origin, &layer.layer.digest, layer.layer.size, reuse);
                below.push((layer, kind, reuse));
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
                    reuse != Reuse::Built,
                ));
            }
            sandbox_layers.extend(below.iter().map(|(l, _, _)| (*l).clone()));
            printer.step("running collectstatic");
            if let Some((statics, reuse)) =
                deps::static_layer(&client, &cache, &pulled, &plan, &below, &settings, &printer)
                    .await?
            {
                printer.layer(
                    LayerOrigin::Static,
                    &statics.layer.digest,
                    statics.layer.size,
                    reuse,
                );
                new_layers.push(new_layer(
                    &statics.layer,
                    LayerOrigin::Static,
                    statics.created_by.clone(),
                    reuse != Reuse::Built,
                ));
                made.push((LayerKind::Static, statics.clone(), reuse));
                sandbox_layers.push(statics);
            }
            made.extend(below.into_iter().map(|(l, k, r)| (k, l.clone(), r)));
        }
        let app = app_task.await.context("app layer task failed")??;
        printer.layer(LayerOrigin::App, &app.digest, app.size, Reuse::Built);
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
        let image = pyslip_image::assemble(
            &pulled.config_bytes,
            &base_layers,
            &new_layers,
            &settings,
            annotations,
        )?;
        if let Some(settings) = &check_settings {
            let checked = check::CheckedImage {
                base: &pulled,
                layers: &sandbox_layers,
                app: &app,
                image: &image,
                plan: &plan,
            };
            check::run(&client, &cache, settings, &checked, &printer, args.json).await?;
        }
        cache.write_blob(&image.config)?;
        cache.write_blob(&image.manifest)?;

        let made_sbom = match &sbom_request {
            Some(request) => {
                printer.step("writing the SBOM");
                let ctx = sbom::SbomContext {
                    dir: &dir,
                    plan: &plan,
                    image: &image,
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
        let artifact = Artifact::Image(image.clone());
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
        let (written, ()) = tokio::join!(
            outputs::write_all(
                &client,
                &cache,
                &requested,
                &artifact,
                &pulled,
                &from_cache_repo,
                &printer
            ),
            cache_repo::publish_all(cache_repo.as_ref(), &made, &new_layers, &printer),
        );
        let mut written = written?;
        written.pull = cache_repo::received(&client, cache_repo.as_ref(), &written.pushes);
        if let Some(made) = &made_sbom {
            written.sbom = Some(sbom::attach(&client, made, &image, &written, &printer).await?);
        }
        printer.finish(&artifact, &written)
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
