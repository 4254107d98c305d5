//! `--sbom FILE`: the image's SBOM (see the `pyslip-sbom` crate), written to a file and attached
//! to the pushed image and the OCI layout as an OCI 1.1 referrer.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bytes::Bytes;
use pyslip_plan::{BuildPlan, PackageManager};
use pyslip_registry::{
    BlobSource, Client, ManifestToPush, PulledImage, PushBlob, Reference, ReferrerDescriptor,
    ReferrersVia,
};
use pyslip_sbom::{Artifact, Format, ImageContents, ImageSubject, LayerInfo, LockSource};
use serde_json::{Value, json};

use crate::cache::Cache;
use crate::cli::{BuildArgs, SbomFormat};
use crate::commands::UserError;
use crate::commands::report::Printer;
use crate::commands::report::Written;
use pyslip_image::{Image, NewLayer};
use pyslip_registry::media_types::OCI_MANIFEST;

/// What `--sbom` and `--sbom-format` ask for.
#[derive(Debug, Clone)]
pub struct SbomRequest {
    /// Where the document goes.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
}

impl SbomRequest {
    /// Validate `--sbom` before any work is done.
    pub fn from_args(args: &BuildArgs) -> Result<Option<Self>> {
        let Some(path) = &args.sbom else {
            return Ok(None);
        };
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() || path.is_dir() {
            return Err(UserError::new(
                format!(
                    "--sbom {}: expected a file in an existing directory",
                    path.display()
                ),
                "give a file name such as --sbom sbom.spdx.json (create its directory first)",
            )
            .into());
        }
        let format = match args.sbom_format {
            SbomFormat::Spdx => Format::Spdx,
            SbomFormat::Cyclonedx => Format::CycloneDx,
        };
        Ok(Some(Self {
            path: path.clone(),
            format,
        }))
    }
}

/// The document made for this build.
pub struct Sbom {
    /// The request.
    pub request: SbomRequest,
    /// Python and Debian packages listed.
    pub packages: usize,
    /// The document as a referrer of the image.
    pub artifact: Artifact,
}

/// The lock the install read, for file hashes.
fn lock_source(plan: &BuildPlan, dir: &Path) -> Option<LockSource> {
    let install = plan.install.as_ref()?;
    Some(match install.manager {
        PackageManager::UvLock => LockSource::UvLock(dir.join("uv.lock")),
        PackageManager::Poetry { locked: true } => LockSource::PoetryLock(dir.join("poetry.lock")),
        PackageManager::Pipenv { locked: true } => {
            LockSource::PipfileLock(dir.join("Pipfile.lock"))
        }
        PackageManager::Requirements => LockSource::Requirements(
            install
                .inputs
                .iter()
                .filter(|i| !i.ends_with(".whl") && !i.ends_with(".tar.gz") && !i.ends_with(".zip"))
                .map(|i| dir.join(i))
                .collect(),
        ),
        _ => return None,
    })
}

/// Everything the document is made from.
pub struct SbomContext<'a> {
    /// The project directory.
    pub dir: &'a Path,
    /// The plan.
    pub plan: &'a BuildPlan,
    /// The finished image.
    pub image: &'a Image,
    /// pyslip's layers (for their history lines).
    pub new_layers: &'a [NewLayer],
    /// The base image.
    pub base: &'a PulledImage,
    /// `linux/amd64`.
    pub platform: String,
    /// `created` of the document (RFC 3339).
    pub created: &'a str,
}

/// Make the document: read every layer blob (downloading base layers the cache lacks, only
/// then), the lock's file hashes, and render.
pub async fn make(
    client: &Client,
    cache: &Cache,
    ctx: &SbomContext<'_>,
    request: &SbomRequest,
) -> Result<Sbom> {
    super::base::fetch_layers(client, cache, ctx.base).await?;
    let base_count = ctx.base.layers.len();
    let layers: Vec<(LayerInfo, PathBuf)> = ctx
        .image
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let created_by = i
                .checked_sub(base_count)
                .and_then(|n| ctx.new_layers.get(n))
                .map(|n| n.created_by.clone());
            let info = LayerInfo {
                digest: l.blob.digest.clone(),
                media_type: l.blob.media_type.clone(),
                size: l.blob.size,
                origin: l.origin.name().to_owned(),
                created_by,
            };
            (info, cache.blob_path(&l.blob.digest))
        })
        .collect();
    let locks = lock_source(ctx.plan, ctx.dir);
    let project = pyslip_sbom::project_info(ctx.dir);
    let subject = ImageSubject {
        digest: ctx.image.manifest_digest.clone(),
        size: ctx.image.manifest.len() as u64,
        media_type: OCI_MANIFEST.to_owned(),
        platform: ctx.platform.clone(),
    };
    let created = ctx.created.to_owned();
    let request = request.clone();
    tokio::task::spawn_blocking(move || -> Result<Sbom> {
        let contents = ImageContents::read(layers).context("reading the image's layers")?;
        let locked = match &locks {
            Some(source) => pyslip_sbom::LockedFiles::read(source)?,
            None => pyslip_sbom::LockedFiles::default(),
        };
        let inventory = pyslip_sbom::Inventory::new(pyslip_sbom::SbomInput {
            image: &subject,
            project: &project,
            contents: &contents,
            locked: &locked,
            created: &created,
            tool: concat!("pyslip-", env!("CARGO_PKG_VERSION")),
        });
        let document = pyslip_sbom::render(&inventory, request.format);
        let artifact = Artifact::new(
            &subject,
            request.format.media_type(),
            document,
            request.format.file_name(),
            &created,
        );
        write_file_atomic(&request.path, &artifact.document)
            .with_context(|| format!("writing --sbom {}", request.path.display()))?;
        Ok(Sbom {
            packages: inventory.packages.len(),
            request,
            artifact,
        })
    })
    .await
    .context("sbom task failed")?
}

/// Write `bytes` to `dest` through a temp file beside it, fsynced and renamed into place.
fn write_file_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::cache::write_atomic_in(parent, dest, bytes)?;
    Ok(())
}

fn referrer_descriptor(artifact: &Artifact) -> ReferrerDescriptor {
    let d = &artifact.descriptor;
    ReferrerDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
        artifact_type: d.artifact_type.clone(),
        annotations: d.annotations.clone(),
    }
}

/// Attach the document to every repository the image was pushed to, and to the layout.
/// Returns the `sbom` object of `--json`.
pub async fn attach(
    client: &Client,
    sbom: &Sbom,
    image: &Image,
    written: &Written,
    printer: &Printer,
) -> Result<Value> {
    let artifact = &sbom.artifact;
    printer.labeled(
        "sbom",
        &format!(
            "wrote {} ({} packages)",
            sbom.request.path.display(),
            sbom.packages
        ),
    );
    let mut referrers = Vec::new();
    for pushed in &written.pushes {
        let refs = pushed.refs();
        let Some(first) = refs.first() else { continue };
        let repo = Reference::parse(first)?.repo().clone();
        let blobs = artifact
            .blobs()
            .into_iter()
            .map(|(d, bytes)| PushBlob {
                digest: d.digest.clone(),
                size: d.size,
                media_type: d.media_type.clone(),
                source: BlobSource::Bytes(Bytes::copy_from_slice(bytes)),
            })
            .collect();
        let manifest = ManifestToPush {
            media_type: artifact.descriptor.media_type.clone(),
            bytes: Bytes::from(artifact.manifest.clone()),
        };
        let report = client
            .attach_referrer(
                &repo,
                &image.manifest_digest,
                blobs,
                manifest,
                referrer_descriptor(artifact),
            )
            .await
            .with_context(|| format!("attaching the SBOM to {repo}"))?;
        let via = match report.via {
            ReferrersVia::Api => "referrers-api",
            ReferrersVia::TagSchema => "fallback-tag",
        };
        printer.labeled(
            "sbom",
            &format!("attached to {repo}@{} ({via})", image.manifest_digest),
        );
        referrers.push(json!({"repository": repo.to_string(), "via": via}));
    }
    if let Some(dir) = &written.layout {
        let (dir, artifact) = (dir.clone(), artifact.clone());
        tokio::task::spawn_blocking(move || add_to_layout(&dir, &artifact))
            .await
            .context("OCI layout task failed")??;
        printer.labeled(
            "sbom",
            &format!(
                "attached in the OCI layout {}",
                written
                    .layout
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        );
        referrers.push(json!({"oci_layout": written.layout}));
    }
    Ok(json!({
        "file": sbom.request.path,
        "format": match sbom.request.format {
            Format::Spdx => "spdx-2.3",
            Format::CycloneDx => "cyclonedx-1.6",
        },
        "packages": sbom.packages,
        "digest": artifact.descriptor.digest.to_string(),
        "referrers": referrers,
    }))
}

/// Store the artifact's blobs in the layout and list its manifest in `index.json`.
fn add_to_layout(dir: &Path, artifact: &Artifact) -> Result<()> {
    let blobs = dir.join("blobs").join("sha256");
    let manifest = (&artifact.descriptor, artifact.manifest.as_slice());
    for (descriptor, bytes) in artifact.blobs().into_iter().chain([manifest]) {
        let dest = blobs.join(descriptor.digest.hex());
        if !dest.exists() {
            write_file_atomic(&dest, bytes)?;
        }
    }
    // Under the layout's lock, like every change of its index.json.
    pyslip_image::sink::layout::locked(dir, || -> Result<()> {
        let index_path = dir.join("index.json");
        let index = fs_err::read(&index_path)?;
        if let Some(updated) = pyslip_sbom::referrer::add_to_layout_index(&index, artifact)
            .with_context(|| format!("adding the SBOM to {}", index_path.display()))?
        {
            write_file_atomic(&index_path, &updated)?;
        }
        Ok(())
    })?
}
