//! Throughput of `write_layer` on a generated ~32 MB mixed tree (text-like and binary-like files).
//!
//! `cargo run --release -p layers --example write_bench [DIR]` — with DIR, up to 32 MB of the
//! regular files under DIR are used instead of generated ones.

use std::time::Instant;

use layers::{EntryKind, FileSource, LayerEntry, LayerOptions, write_layer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut entries = Vec::new();
    let mut total = 0u64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut i = 0;
    if let Some(root) = std::env::args().nth(1) {
        let mut stack = vec![std::path::PathBuf::from(root)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)? {
                let e = e?;
                let ft = e.file_type()?;
                if ft.is_dir() {
                    stack.push(e.path());
                } else if ft.is_file() && total < 32 << 20 {
                    total += e.metadata()?.len();
                    entries.push(LayerEntry {
                        path: format!("tree/f{i}"),
                        kind: EntryKind::File(FileSource::Path(e.path())),
                        mode: 0o644,
                        uid: 0,
                        gid: 0,
                    });
                    i += 1;
                }
            }
        }
    }
    while total < 32 << 20 {
        // Mostly python-like text, every fifth file pseudo-random (like .so/.whl content).
        let size = 2_000 + (i * 7919) % 200_000;
        let content: Vec<u8> = if i % 5 == 0 {
            (0..size)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect()
        } else {
            format!("def function_{i}(arg, other=None):\n    return arg * {i} + len(str(other))\n")
                .into_bytes()
                .into_iter()
                .cycle()
                .take(size)
                .collect()
        };
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, &content)?;
        total += size as u64;
        entries.push(LayerEntry {
            path: format!("site-packages/pkg{}/mod{i}.py", i % 40),
            kind: EntryKind::File(FileSource::Path(path)),
            mode: 0o644,
            uid: 0,
            gid: 0,
        });
        i += 1;
    }
    let start = Instant::now();
    let layer = write_layer(entries, &LayerOptions::default(), std::io::sink())?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{i} files, {:.1} MB tar -> {:.1} MB gzip in {secs:.3} s: {:.1} MB/s (uncompressed)",
        layer.uncompressed_size as f64 / 1e6,
        layer.size as f64 / 1e6,
        layer.uncompressed_size as f64 / 1e6 / secs
    );
    Ok(())
}
