//! Safe extraction of untrusted layers into a root directory, rootless.
//!
//! A layer is applied on top of what is already in the root, with OCI whiteout semantics. Nothing
//! is ever written outside the root (see [`fsops`] for how paths are resolved), no ownership is
//! applied (we are unprivileged), device nodes and fifos are skipped, xattrs are ignored.
//!
//! **A root is only trusted after its final layer was applied successfully.** After any error
//! the root may hold part of a layer: discard it. [`unpack_layers_into`] does that for you by
//! unpacking into a temporary directory next to the destination and renaming it at the end; that
//! directory is locked while in use, so a build killed mid-unpack leaves a `.tmp-root-*` that the
//! next build's sweep removes (see `pyslip_lifecycle::sweep`).

mod apply;
mod error;
mod fsops;
mod stream;

use std::io::{self, Read};
use std::path::Path;

use pyslip_lifecycle::scratch::ScratchDir;

pub use error::UnpackError;

use apply::Applier;
use fsops::RootFs;
use stream::{Budget, Pending, StreamState, inflate_channel, inflate_into, read_record};

/// Bounds on what one layer may make the unpacker do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most decompressed bytes (tar headers and data) one layer may expand to.
    pub max_uncompressed: u64,
    /// Largest GNU long name/link or PAX header record, in bytes.
    pub max_metadata: u64,
    /// Most tar headers (including extension records) in one layer.
    pub max_entries: u64,
}

impl Default for UnpackLimits {
    /// 8 GiB per layer, 1 MiB metadata records, one million entries: far above any real base
    /// image layer (python:3.x-slim layers expand to well under 200 MB).
    fn default() -> Self {
        Self {
            max_uncompressed: 8 << 30,
            max_metadata: 1 << 20,
            max_entries: 1_000_000,
        }
    }
}

/// Ownership an entry asked for, which a rootless unpack cannot apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRecord {
    /// Root-relative path, `/`-prefixed.
    pub path: String,
    /// Owner from the tar header.
    pub uid: u64,
    /// Group from the tar header.
    pub gid: u64,
}

/// What applying a layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Regular files written.
    pub files: u64,
    /// Directory entries applied.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hardlinks created.
    pub hardlinks: u64,
    /// Whiteouts (including opaque markers) applied.
    pub whiteouts: u64,
    /// Entries skipped: device nodes, fifos, aufs `.wh..wh.*` metadata.
    pub skipped: u64,
    /// Bytes of regular file content written.
    pub file_bytes: u64,
    /// Decompressed bytes of the layer (the tar stream).
    pub uncompressed_bytes: u64,
    /// Entries owned by someone other than 0:0 (not applied; recorded for the caller).
    pub owners: Vec<OwnerRecord>,
}

/// Apply one gzip'd tar layer on top of the content of `root`, an existing directory.
///
/// On error the root is in an undefined (but still confined) state and must be discarded.
///
/// The layer is inflated on a second thread, a few MiB ahead of the files being written.
pub fn unpack_layer<R: Read + Send>(
    root: &Path,
    gzipped_tar: R,
    limits: &UnpackLimits,
) -> Result<UnpackStats, UnpackError> {
    let rootfs = RootFs::open(root)?;
    std::thread::scope(|scope| {
        let (tx, inflated) = inflate_channel();
        scope.spawn(move || inflate_into(gzipped_tar, tx));
        // Returning drops the reader, which stops the inflating thread.
        apply_stream(&rootfs, inflated, limits)
    })
}

/// Applies the decompressed tar stream `tar` to `rootfs`.
fn apply_stream(
    rootfs: &RootFs,
    tar: impl Read,
    limits: &UnpackLimits,
) -> Result<UnpackStats, UnpackError> {
    let state = StreamState::default();
    let mut archive = tar::Archive::new(Budget::new(tar, limits.max_uncompressed, state.clone()));
    let budget = limits.max_uncompressed;
    let mut applier = Applier::new(rootfs);
    {
        let entries = archive
            .entries()
            .map_err(|e| state.classify(e, budget))?
            .raw(true);
        let mut pending = Pending::default();
        let mut count = 0u64;
        for entry in entries {
            let mut entry = entry.map_err(|e| state.classify(e, budget))?;
            count += 1;
            if count > limits.max_entries {
                return Err(UnpackError::TooManyEntries {
                    limit: limits.max_entries,
                });
            }
            let kind = entry.header().entry_type();
            if kind.is_gnu_longname() {
                pending.long_name = Some(read_record(
                    &mut entry,
                    limits.max_metadata,
                    &state,
                    budget,
                )?);
            } else if kind.is_gnu_longlink() {
                pending.long_link = Some(read_record(
                    &mut entry,
                    limits.max_metadata,
                    &state,
                    budget,
                )?);
            } else if kind.is_pax_local_extensions() {
                pending.pax = Some(read_record(
                    &mut entry,
                    limits.max_metadata,
                    &state,
                    budget,
                )?);
            } else if kind.is_pax_global_extensions() {
                read_record(&mut entry, limits.max_metadata, &state, budget)?;
            } else {
                let names = pending.resolve(&entry)?;
                let left = budget.saturating_sub(state.used());
                if entry.size() > left {
                    return Err(UnpackError::TooLarge { limit: budget });
                }
                applier.apply(&mut entry, names, &state, budget)?;
            }
        }
    }
    // Read to the end of the gzip stream so its length and CRC are checked: a truncated or
    // corrupted layer must fail even when the tar part ended cleanly.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| state.classify(e, budget))?;
    let mut stats = applier.finish()?;
    stats.uncompressed_bytes = state.used();
    Ok(stats)
}

/// Unpack `layers` (in order, lowest first) into a new root at `dest`, atomically: into a
/// temporary directory beside `dest`, renamed to `dest` only after every layer succeeded. On error
/// the temporary directory is removed and `dest` is untouched. Returns the stats of each layer.
pub fn unpack_layers_into<R: Read + Send>(
    dest: &Path,
    layers: impl IntoIterator<Item = R>,
    limits: &UnpackLimits,
) -> Result<Vec<UnpackStats>, UnpackError> {
    let root_error = |source| UnpackError::Root {
        path: dest.display().to_string(),
        source,
    };
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    // Locked while in use: a later build sweeps it only after this process is gone.
    let temp = ScratchDir::new_in(parent, ".tmp-root-").map_err(root_error)?;
    fs_err::set_permissions(
        temp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(root_error)?;
    let mut all = Vec::new();
    for layer in layers {
        all.push(unpack_layer(temp.path(), layer, limits)?);
    }
    // On error the scratch dir is removed when dropped.
    temp.persist(dest).map_err(root_error)?;
    Ok(all)
}
