//! A writer that hashes (SHA-256) and counts every byte it passes on.

use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

use crate::Digest;

/// Passes bytes through to `inner` while computing their SHA-256 and count.
///
/// Only the bytes the inner writer accepted are hashed, so the digest always matches what was
/// written, even after a short write.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Stop hashing; returns the inner writer (not flushed), the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let hash: [u8; 32] = self.hasher.finalize().into();
        (self.inner, Digest::from_sha256(hash), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or(buf);
        self.hasher.update(written);
        self.count += written.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The diff_id of a gzip'd layer (the SHA-256 of its uncompressed tar) and the uncompressed
/// size: checks a layer whose compressed bytes came from elsewhere against its stated diff_id.
pub fn diff_id_of(gzipped: impl io::Read) -> io::Result<(Digest, u64)> {
    let mut decoder =
        flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(256 * 1024, gzipped));
    let mut hashing = HashingWriter::new(io::sink());
    io::copy(&mut decoder, &mut hashing)?;
    let (_, digest, count) = hashing.finish();
    Ok((digest, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_id_of_a_gzip_stream_is_the_hash_of_its_content() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, b"tar bytes").unwrap();
        let bytes = gz.finish().unwrap();
        let (diff_id, size) = diff_id_of(&bytes[..]).unwrap();
        assert_eq!(diff_id, Digest::of(b"tar bytes"));
        assert_eq!(size, 9);
        assert!(diff_id_of(&b"not gzip"[..]).is_err());
    }

    #[test]
    fn hashes_and_counts_what_was_written() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, digest, count) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(count, 11);
        assert_eq!(digest, Digest::of(b"hello world"));
    }
}
