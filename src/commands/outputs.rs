//! Sending the finished image to every requested output: registries, tarball, OCI layout.
//! The writing itself is the image crate's sinks; here: which outputs, from which flags, and
//! progress lines as each one is done.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use layers::Digest;
use pyslip_image::sink::{layout, remote, tarball};
use pyslip_image::{Artifact, LocalBlobs};
use pyslip_registry::{Client, Platform, PulledImage, Reference, RepoRef};

use crate::cache::Cache;
use crate::cli::BuildArgs;
use crate::commands::UserError;
use crate::commands::report::{Printer, Written};

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
    pub fn from_args(args: &BuildArgs) -> Result<Self> {
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
    pub fn paths(&self) -> Vec<PathBuf> {
        self.tar.iter().chain(self.layout.iter()).cloned().collect()
    }
}

/// Write every requested output; an error in any of them fails the build. `bases` are the
/// base images of the artifact's images (one per platform, all from one repository); `remote`
/// names layers the local store may lack and the repository that has each (a push mounts them).
pub async fn write_all(
    client: &Client,
    cache: &Cache,
    requested: &Requested,
    artifact: &Artifact,
    bases: &[&PulledImage],
    remote: &[(Digest, RepoRef)],
    printer: &Printer,
) -> Result<Written> {
    let base_repo = &bases.first().context("an image without a base")?.repo;
    let mut written = Written::default();
    let refs: Vec<String> = requested.tags.iter().map(ToString::to_string).collect();
    let mut local = LocalBlobs::new(cache.blobs_dir());
    for (digest, repo) in remote {
        local.add_remote(digest.clone(), repo.clone());
    }
    if requested.push {
        for (first, rest) in remote::group_by_repository(&requested.tags) {
            let _step = pyslip_lifecycle::interrupt::enter_step(&format!("pushing {first}"));
            let pushed = remote::push(client, artifact, &local, base_repo, &first, &rest)
                .await
                .with_context(|| format!("pushing to {first}"))?;
            printer.pushed(&pushed);
            written.pushes.push(pushed);
        }
    }
    if requested.tar.is_some() || requested.layout.is_some() {
        for base in bases {
            super::base::fetch_layers(client, cache, base).await?;
        }
    }
    if let Some(dest) = &requested.tar {
        let (dest, artifact, local, refs) =
            (dest.clone(), artifact.clone(), local.clone(), refs.clone());
        let path = dest.clone();
        tokio::task::spawn_blocking(move || {
            tarball::write(&dest, &artifact, &local, &refs, &Platform::host())
        })
        .await
        .context("tarball task failed")?
        .with_context(|| format!("writing --tar {}", path.display()))?;
        printer.wrote("tarball", &path);
        written.tar = Some(path);
    }
    if let Some(dir) = &requested.layout {
        let (dir, artifact, local, refs) =
            (dir.clone(), artifact.clone(), local.clone(), refs.clone());
        let path = dir.clone();
        tokio::task::spawn_blocking(move || layout::write(&dir, &artifact, &local, &refs))
            .await
            .context("OCI layout task failed")?
            .with_context(|| format!("writing --oci-layout {}", path.display()))?;
        printer.wrote("OCI layout", &path);
        written.layout = Some(path);
    }
    Ok(written)
}
