//! Deterministic layer writer: tar → gzip → sha256 in one streaming pass.
//!
//! ```text
//! entries ─ tar::Builder ─ BufWriter ─ HashingWriter (diff_id) ─ ParGzip ─ HashingWriter (digest, size) ─ sink
//!                                                                  └ blocks compressed on worker threads
//! ```

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::Digest;
use crate::entry::{EntryKind, FileSource, LayerEntry, Prepared, prepare};
use crate::error::LayerError;
use crate::gzip::ParGzip;
use crate::hashing::HashingWriter;

/// Buffer between the tar builder and the hashers/compressor, so they see large writes.
const TAR_BUFFER: usize = 256 * 1024;

/// Settings that apply to every entry of a layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// Modification time of every entry, in seconds since the epoch (`SOURCE_DATE_EPOCH` or 0).
    pub mtime: u64,
}

/// What a written layer is, as the image manifest and config need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenLayer {
    /// sha256 of the gzip stream (the blob digest in the manifest).
    pub digest: Digest,
    /// sha256 of the uncompressed tar (the `rootfs.diff_ids` entry in the config).
    pub diff_id: Digest,
    /// Size of the gzip stream in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
}

/// Write `entries` as a gzip'd tar layer into `out`, hashing as it goes.
///
/// The output depends only on the entries and `opts`: entries are sorted by path (parents first),
/// missing parent directories are added with mode 0755 and owner 0:0, every mtime is
/// `opts.mtime`, ownership is numeric only, modes keep only permission bits, and the gzip header
/// has no name, no mtime and a fixed OS byte, and the compressed bytes do not depend on the
/// number of CPUs (see [`crate::gzip`]). On error `out` holds a partial stream; discard it.
pub fn write_layer<W: Write + Send>(
    entries: Vec<LayerEntry>,
    opts: &LayerOptions,
    out: W,
) -> Result<WrittenLayer, LayerError> {
    let prepared = prepare(entries)?;

    std::thread::scope(|scope| {
        let compressed = HashingWriter::new(out);
        let gz = ParGzip::new(compressed, scope).map_err(LayerError::Write)?;
        let tar_bytes = HashingWriter::new(gz);
        let mut builder = tar::Builder::new(BufWriter::with_capacity(TAR_BUFFER, tar_bytes));

        for item in &prepared {
            append(&mut builder, item, opts)?;
        }

        let buffered = builder.into_inner().map_err(LayerError::Write)?;
        let tar_bytes = buffered
            .into_inner()
            .map_err(|e| LayerError::Write(e.into_error()))?;
        let (gz, diff_id, uncompressed_size) = tar_bytes.finish();
        let compressed = gz.finish().map_err(LayerError::Write)?;
        let (mut out, digest, size) = compressed.finish();
        out.flush().map_err(LayerError::Write)?;
        Ok(WrittenLayer {
            digest,
            diff_id,
            size,
            uncompressed_size,
        })
    })
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    item: &Prepared,
    opts: &LayerOptions,
) -> Result<(), LayerError> {
    let entry = &item.entry;
    let mut header = Header::new_gnu();
    header.set_mode(entry.mode & 0o7777);
    header.set_uid(u64::from(entry.uid));
    header.set_gid(u64::from(entry.gid));
    header.set_mtime(opts.mtime);
    header.set_size(0);
    match &entry.kind {
        EntryKind::Dir => {
            header.set_entry_type(EntryType::Directory);
            builder
                .append_data(&mut header, format!("{}/", item.name), io::empty())
                .map_err(LayerError::Write)
        }
        EntryKind::Whiteout | EntryKind::OpaqueWhiteout => {
            header.set_entry_type(EntryType::Regular);
            builder
                .append_data(&mut header, &item.name, io::empty())
                .map_err(LayerError::Write)
        }
        EntryKind::Symlink(target) | EntryKind::Hardlink(target) => {
            if target.is_empty() || target.contains('\0') {
                return Err(LayerError::InvalidPath {
                    path: entry.path.clone(),
                    reason: "link target is empty or contains a NUL byte",
                });
            }
            let kind = if matches!(entry.kind, EntryKind::Symlink(_)) {
                EntryType::Symlink
            } else {
                EntryType::Link
            };
            header.set_entry_type(kind);
            builder
                .append_link(&mut header, &item.name, target)
                .map_err(LayerError::Write)
        }
        EntryKind::File(FileSource::Bytes(bytes)) => {
            header.set_entry_type(EntryType::Regular);
            header.set_size(bytes.len() as u64);
            builder
                .append_data(&mut header, &item.name, bytes.as_slice())
                .map_err(LayerError::Write)
        }
        EntryKind::File(FileSource::Path(path)) => {
            let file = fs_err::File::open(path).map_err(LayerError::Read)?;
            let size = file.metadata().map_err(LayerError::Read)?.len();
            header.set_entry_type(EntryType::Regular);
            header.set_size(size);
            let reader = ExactReader {
                inner: file,
                remaining: size,
            };
            builder
                .append_data(&mut header, &item.name, reader)
                .map_err(|e| classify_read_error(e, path))
        }
    }
}

/// Marker error: the file did not have the size `stat` reported.
#[derive(Debug, thiserror::Error)]
#[error("file size changed while reading")]
struct SizeChanged;

/// Marker error: reading the source file failed (as opposed to writing the archive).
#[derive(Debug, thiserror::Error)]
#[error("could not read the source file")]
struct SourceRead(#[source] io::Error);

fn classify_read_error(error: io::Error, path: &Path) -> LayerError {
    if error.get_ref().is_some_and(|e| e.is::<SizeChanged>()) {
        LayerError::FileChanged {
            path: path.to_owned(),
        }
    } else if error.get_ref().is_some_and(|e| e.is::<SourceRead>()) {
        let inner = error
            .into_inner()
            .and_then(|e| e.downcast::<SourceRead>().ok())
            .map_or_else(|| io::Error::other("read failed"), |e| e.0);
        LayerError::Read(inner)
    } else {
        LayerError::Write(error)
    }
}

/// Yields exactly `remaining` bytes of `inner`, or an error if it has fewer or more.
///
/// The tar header (written before the data) already holds the size, so a file that grows or
/// shrinks mid-read must fail the layer rather than produce a corrupt archive.
struct ExactReader {
    inner: fs_err::File,
    remaining: u64,
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe) {
                Err(e) => Err(io::Error::other(SourceRead(e))),
                Ok(0) => Ok(0),
                _ => Err(io::Error::other(SizeChanged)),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let (head, _) = buf.split_at_mut(want);
        let n = self
            .inner
            .read(head)
            .map_err(|e| io::Error::other(SourceRead(e)))?;
        if n == 0 && want > 0 {
            return Err(io::Error::other(SizeChanged));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Write a layer into `dir` as a file named by the hex of its digest, atomically: a temp file in
/// the same directory, fsync, rename. Returns the layer and the final path.
///
/// A crash leaves at most a stray temp file, never a blob whose name does not match its content.
pub fn write_layer_to_dir(
    entries: Vec<LayerEntry>,
    opts: &LayerOptions,
    dir: &Path,
) -> Result<(WrittenLayer, PathBuf), LayerError> {
    let store = |source| LayerError::Store {
        dir: dir.to_owned(),
        source,
    };
    let temp = pyslip_lifecycle::scratch::temp_file_in(dir, ".tmp-layer-").map_err(store)?;
    let mut out = BufWriter::with_capacity(TAR_BUFFER, temp.as_file());
    let layer = write_layer(entries, opts, &mut out)?;
    drop(out);
    temp.as_file().sync_all().map_err(store)?;
    let dest = dir.join(layer.digest.hex());
    temp.persist(&dest).map_err(|e| store(e.error))?;
    Ok((layer, dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(content: &[u8], claimed: u64) -> io::Result<Vec<u8>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        fs_err::write(&path, content)?;
        let mut reader = ExactReader {
            inner: fs_err::File::open(&path)?,
            remaining: claimed,
        };
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn exact_reader_rejects_shrunk_and_grown_files() {
        assert_eq!(exact(b"hello", 5).unwrap(), b"hello");
        for claimed in [9, 3] {
            let err = exact(b"hello", claimed).unwrap_err();
            assert!(
                err.get_ref().is_some_and(|e| e.is::<SizeChanged>()),
                "claimed {claimed}: {err}"
            );
        }
    }
}
