//! gzip of layer bytes on every core, with output that depends only on the input.
//!
//! The stream is cut into fixed [`BLOCK`]-byte blocks, each compressed on its own (raw deflate
//! at [`GZIP_LEVEL`], ended with a sync flush, the last one with the final bit) and concatenated
//! behind one gzip header, as pigz does. Block boundaries depend only on the byte offset, never on
//! the thread count or on how the caller's writes were sized, so the bytes (and the layer digest)
//! are the same on a 2-core CI runner and a 64-core workstation. `flush` is ignored for the same
//! reason: a flush would end a block early.
//!
//! gzp does the block pipeline. Its `Drop` unwraps the result of finishing the stream, and
//! finishing after a failed write panics; [`ParGzip`] finishes a live stream itself on drop and
//! never touches one whose write failed, so an I/O error (disk full) stays an error.

use std::io::{self, Write};
use std::thread::Scope;

use flate2::Compression;
use gzp::ZWriter;
use gzp::deflate::Gzip;
use gzp::par::compress::{ParCompress, ParCompressBuilder};

/// gzip level of every layer pyslip writes.
///
/// Pinned together with the zlib-rs backend and [`BLOCK`] (see `Cargo.toml`): changing any of
/// them changes the compressed bytes, hence every layer digest, and defeats registry/cache reuse.
pub const GZIP_LEVEL: u32 = 6;

/// Uncompressed bytes per independently compressed block. Pinned: it shapes the output.
pub const BLOCK: usize = 1 << 20;

/// What the compressed bytes depend on besides the input; part of every layer cache key, so a
/// change here can never pair a cached layer with a freshly built one of other bytes.
pub const LAYER_FORMAT: &str = "tar-gnu+gzip-6-zlib-rs-1MiB-blocks";

/// Compression threads per stream (the CPUs this process may use, at most 8).
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 8))
}

/// A gzip writer compressing on worker threads of `scope`.
pub struct ParGzip<'scope, W: Write + Send + 'scope> {
    inner: Option<ParCompress<'scope, Gzip, W>>,
}

impl<'scope, W: Write + Send + 'scope> ParGzip<'scope, W> {
    /// Starts a stream into `out`; its threads live in `scope`.
    pub fn new<'env>(out: W, scope: &'scope Scope<'scope, 'env>) -> io::Result<Self> {
        Self::with_threads(out, scope, threads())
    }

    fn with_threads<'env>(
        out: W,
        scope: &'scope Scope<'scope, 'env>,
        threads: usize,
    ) -> io::Result<Self> {
        let inner = ParCompressBuilder::<Gzip>::new()
            .num_threads(threads)
            .and_then(|b| b.buffer_size(BLOCK))
            .map_err(io::Error::other)?
            .compression_level(Compression::new(GZIP_LEVEL))
            .from_borrowed_writer(out, scope);
        Ok(ParGzip { inner: Some(inner) })
    }

    /// Writes the last block and the trailer; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let mut inner = self.inner.take().ok_or_else(finished)?;
        inner.finish().map_err(gzp_error)
    }
}

fn finished() -> io::Error {
    io::Error::other("gzip stream already finished or failed")
}

fn gzp_error(e: gzp::GzpError) -> io::Error {
    match e {
        gzp::GzpError::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl<'scope, W: Write + Send + 'scope> Write for ParGzip<'scope, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = self.inner.as_mut().ok_or_else(finished)?;
        inner.write(buf).inspect_err(|_| {
            // gzp has shut the pipeline down and joined its threads; finishing it now would
            // panic, so drop it (its own `Drop` has nothing left to do).
            self.inner = None;
        })
    }

    /// Does nothing: see the module docs.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'scope, W: Write + Send + 'scope> Drop for ParGzip<'scope, W> {
    /// A stream abandoned on an error path is still finished (its threads joined), with any
    /// error ignored: the caller is already returning one.
    fn drop(&mut self) {
        if let Some(mut inner) = self.inner.take() {
            let _ = inner.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// 3.5 blocks of text-like bytes that compress, with some variety.
    fn input() -> Vec<u8> {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let words = [
            "import ", "def ", "return ", "self", ".value", "\n", "    ", "x = 1",
        ];
        let mut out = Vec::new();
        while out.len() < BLOCK * 7 / 2 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            out.extend_from_slice(words[(seed % 8) as usize].as_bytes());
            out.push((seed >> 32) as u8);
        }
        out
    }

    fn compress(data: &[u8], threads: usize, chunk: usize, flush_often: bool) -> Vec<u8> {
        let mut out = Vec::new();
        std::thread::scope(|scope| {
            let mut gz = ParGzip::with_threads(&mut out, scope, threads).unwrap();
            for piece in data.chunks(chunk) {
                gz.write_all(piece).unwrap();
                if flush_often {
                    gz.flush().unwrap();
                }
            }
            gz.finish().unwrap();
        });
        out
    }

    #[test]
    fn output_does_not_depend_on_threads_write_sizes_or_flushes() {
        let data = input();
        let reference = compress(&data, 1, 64 * 1024, false);
        for (threads, chunk, flush) in [(2, 1000, false), (3, 7, false), (8, BLOCK + 1, true)] {
            let got = compress(&data, threads, chunk, flush);
            assert!(
                got == reference,
                "{threads} threads, {chunk}-byte writes, flush {flush} gave other bytes"
            );
        }
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&reference[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data, "the stream does not decompress to its input");
        assert!(reference.len() < data.len() / 2, "it did not compress");
    }

    #[test]
    fn empty_input_is_a_valid_empty_stream() {
        let out = compress(b"", 2, 1, false);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }

    #[test]
    fn a_dropped_unfinished_stream_does_not_panic_even_when_its_writer_fails() {
        struct Failing;
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        std::thread::scope(|scope| {
            let mut gz = ParGzip::with_threads(Failing, scope, 2).unwrap();
            // The error may surface here or only at the end; either way, no panic.
            let _ = gz.write_all(&input());
            drop(gz);
        });
        std::thread::scope(|scope| {
            let mut gz = ParGzip::with_threads(Failing, scope, 2).unwrap();
            let _ = gz.write_all(b"small");
            assert!(
                gz.finish().is_err(),
                "finish must report the writer's error"
            );
        });
    }
}
