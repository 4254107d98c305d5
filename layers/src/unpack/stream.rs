//! Bounded reading of an untrusted layer stream: a byte budget on the decompressed stream, and
//! tar metadata records (GNU long names, PAX headers) read by us with a size cap.
//!
//! The `tar` crate's default entry iterator reads long-name and PAX records into memory with no
//! cap of its own, so we iterate raw headers (`Entries::raw`) and assemble names ourselves.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::error::UnpackError;

/// Shared view of how a [`Budget`] reader is doing, for classifying errors after the fact.
#[derive(Clone, Default)]
pub(crate) struct StreamState {
    used: Rc<Cell<u64>>,
    exceeded: Rc<Cell<bool>>,
    failed: Rc<Cell<bool>>,
}

impl StreamState {
    /// Decompressed bytes read so far.
    pub(crate) fn used(&self) -> u64 {
        self.used.get()
    }

    /// Turn an I/O error seen while reading the archive into the right [`UnpackError`].
    pub(crate) fn classify(&self, error: io::Error, limit: u64) -> UnpackError {
        if self.exceeded.get() {
            UnpackError::TooLarge { limit }
        } else if self.failed.get() {
            UnpackError::Stream(error)
        } else {
            UnpackError::Tar(error)
        }
    }
}

/// Reads at most `limit` decompressed bytes; one byte more is an error (a gzip bomb stops here).
pub(crate) struct Budget<R> {
    inner: R,
    limit: u64,
    state: StreamState,
}

impl<R: Read> Budget<R> {
    pub(crate) fn new(inner: R, limit: u64, state: StreamState) -> Self {
        Self {
            inner,
            limit,
            state,
        }
    }
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let used = self.state.used.get();
        let left = self.limit.saturating_sub(used);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let result = if want == 0 && !buf.is_empty() {
            // Budget spent: only a clean end of stream is acceptable.
            let mut probe = [0u8; 1];
            match self.inner.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => {
                    self.state.exceeded.set(true);
                    return Err(io::Error::other("uncompressed size limit exceeded"));
                }
                Err(e) => Err(e),
            }
        } else {
            let (head, _) = buf.split_at_mut(want);
            self.inner.read(head)
        };
        match result {
            Ok(n) => {
                self.state.used.set(used + n as u64);
                Ok(n)
            }
            Err(e) => {
                self.state.failed.set(true);
                Err(e)
            }
        }
    }
}

/// Extension records that describe the next real entry.
#[derive(Default)]
pub(crate) struct Pending {
    pub long_name: Option<Vec<u8>>,
    pub long_link: Option<Vec<u8>>,
    pub pax: Option<Vec<u8>>,
}

/// Name, link target and PAX size override of a real entry, after applying pending records.
pub(crate) struct EntryNames {
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub pax_size: Option<u64>,
}

impl Pending {
    /// Combine the pending records with `entry`'s own header (PAX wins over GNU over ustar).
    pub(crate) fn resolve<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
    ) -> Result<EntryNames, UnpackError> {
        let mut names = EntryNames {
            path: self
                .long_name
                .take()
                .unwrap_or_else(|| entry.path_bytes().into_owned()),
            link: self
                .long_link
                .take()
                .or_else(|| entry.link_name_bytes().map(|l| l.into_owned())),
            pax_size: None,
        };
        if let Some(pax) = self.pax.take() {
            for ext in tar::PaxExtensions::new(&pax) {
                let ext = ext.map_err(UnpackError::Tar)?;
                match ext.key_bytes() {
                    b"path" => names.path = ext.value_bytes().to_vec(),
                    b"linkpath" => names.link = Some(ext.value_bytes().to_vec()),
                    b"size" => {
                        let size = ext
                            .value()
                            .ok()
                            .and_then(|v| v.parse::<u64>().ok())
                            .ok_or_else(|| {
                                UnpackError::Tar(io::Error::other("malformed pax size record"))
                            })?;
                        names.pax_size = Some(size);
                    }
                    // uid/gid/mtime/xattrs: ownership is not applied, xattrs are ignored.
                    _ => {}
                }
            }
        }
        Ok(names)
    }
}

/// Read a metadata record's data (long name, PAX header), refusing oversized ones before
/// allocating anything.
pub(crate) fn read_record<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    limit: u64,
    state: &StreamState,
    budget: u64,
) -> Result<Vec<u8>, UnpackError> {
    let size = entry.size();
    if size > limit {
        return Err(UnpackError::MetadataTooLarge { size, limit });
    }
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    entry
        .read_to_end(&mut data)
        .map_err(|e| state.classify(e, budget))?;
    if (data.len() as u64) < size {
        return Err(UnpackError::Truncated {
            path: "<tar metadata record>".to_owned(),
        });
    }
    // GNU long names carry a trailing NUL.
    while data.last() == Some(&0) {
        data.pop();
    }
    Ok(data)
}

/// Decompressed chunks buffered ahead of the applier (at most this many MiB in memory).
const AHEAD_CHUNKS: usize = 8;
const CHUNK: usize = 1024 * 1024;

/// Inflates `compressed` into `tx` in chunks until the end, an error (sent on), or the reader
/// side hanging up. Runs on a thread of its own so that inflating a layer and writing its files
/// overlap (a base layer is mostly one gzip stream, which cannot be inflated in parallel).
pub(crate) fn inflate_into<R: Read>(compressed: R, tx: SyncSender<io::Result<Vec<u8>>>) {
    let mut decoder =
        flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(256 * 1024, compressed));
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        match decoder.by_ref().take(CHUNK as u64).read_to_end(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {
                if tx.send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}

/// The reading end of [`inflate_into`]: the decompressed stream, in order. The end of the
/// channel is the end of the stream.
pub(crate) struct Inflated {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

/// A channel for [`inflate_into`] and its reader.
pub(crate) fn inflate_channel() -> (SyncSender<io::Result<Vec<u8>>>, Inflated) {
    let (tx, rx) = sync_channel(AHEAD_CHUNKS);
    (
        tx,
        Inflated {
            rx,
            chunk: Vec::new(),
            at: 0,
        },
    )
}

impl Read for Inflated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.chunk = next?;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let rest = self.chunk.get(self.at..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}
