//! Bytecode compilation of what an install added, by the image's own interpreter, so the image
//! starts fast with `PYTHONDONTWRITEBYTECODE=1`.
//!
//! pyslip compiles instead of the installer (`uv --compile-bytecode`, pip's default) so that
//! both install paths give the same bytes: in the sandbox the files are compiled where they
//! lie; in the namespace-free path they lie under a staging tree and are compiled with the
//! image path as the name recorded in the `.pyc` (`compileall`'s `ddir`), which is exactly what
//! the sandbox writes. Only `.py` files the install added or changed below a `site-packages` or
//! `dist-packages` directory are compiled (what the installers compile), in checked-hash mode
//! (`SOURCE_DATE_EPOCH` is set), split over one process per core. Files that do not compile
//! (templates named `.py`, Python 2 leftovers) are skipped, as installers skip them.

use layers::{EntryKind, LayerEntry};

/// The compile script: argv[1] is a file of `source<TAB>name-in-image` lines, argv[2] the
/// number of processes. Prints the interpreter's cache tag (`cpython-313`, for the bytecode
/// cache), then forks (no multiprocessing: the sandbox has no /dev/shm), each child compiling
/// every n-th file; the exit status is 0 whatever failed to compile.
pub(crate) const SCRIPT: &str = r#"import compileall, os, py_compile, sys
print(sys.implementation.cache_tag or "", flush=True)
pairs = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
n = max(1, min(int(sys.argv[2]), len(pairs)))
mode = py_compile.PycInvalidationMode.CHECKED_HASH
def run(part):
    for src, name in part:
        compileall.compile_file(src, ddir=os.path.dirname(name), force=True, quiet=2, invalidation_mode=mode)
pids = []
for i in range(1, n):
    pid = os.fork()
    if pid == 0:
        try:
            run(pairs[i::n])
        finally:
            os._exit(0)
    pids.append(pid)
run(pairs[0::n])
for pid in pids:
    os.waitpid(pid, 0)
"#;

/// Whether `path` (relative to the root) is a module an installer would byte-compile.
fn compilable(path: &str) -> bool {
    path.ends_with(".py")
        && path
            .split('/')
            .any(|c| c == "site-packages" || c == "dist-packages")
}

/// Whether `entries` replace the interpreter itself (a `python…` program in a `bin` directory
/// or a `libpython` library): then what it compiles is not what the base's interpreter would.
pub(crate) fn touches_interpreter(entries: &[LayerEntry]) -> bool {
    entries.iter().any(|e| {
        let (dir, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
        name.starts_with("libpython")
            || (dir.ends_with("bin")
                && name
                    .strip_prefix("python")
                    .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.')))
    })
}

/// The image paths (`/usr/local/lib/...`) of the `.py` files in `entries` to compile, sorted.
pub(crate) fn targets(entries: &[LayerEntry]) -> Vec<String> {
    let mut out: Vec<String> = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File(_)) && compilable(&e.path))
        .map(|e| format!("/{}", e.path))
        .collect();
    out.sort();
    out
}

/// The list file's content: `source<TAB>image path` per file, where `source` is the image path
/// prefixed with `prefix` (empty in the sandbox, the staging root outside it).
pub(crate) fn list(targets: &[String], prefix: &str) -> String {
    let mut out = String::new();
    for t in targets {
        out.push_str(prefix);
        out.push_str(t);
        out.push('\t');
        out.push_str(t);
        out.push('\n');
    }
    out
}

/// How many compile processes to run: one per available core, at most 8.
pub(crate) fn processes() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use layers::FileSource;

    fn file(path: &str) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::File(FileSource::Bytes(Vec::new())),
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn a_new_interpreter_is_noticed() {
        assert!(touches_interpreter(&[file("usr/local/bin/python3.13")]));
        assert!(touches_interpreter(&[file(
            "usr/local/lib/libpython3.13.so.1.0"
        )]));
        assert!(!touches_interpreter(&[
            file("usr/local/bin/python-dotenv"),
            file("usr/local/bin/fastapi"),
            file("usr/local/lib/python3.13/site-packages/python3/x.py"),
        ]));
    }

    #[test]
    fn only_site_modules_are_compiled() {
        let entries = vec![
            file("usr/local/lib/python3.13/site-packages/flask/app.py"),
            file("usr/local/lib/python3.13/dist-packages/x.py"),
            file("usr/local/bin/flask"),
            file("usr/local/share/doc/example.py"),
            file("usr/local/lib/python3.13/site-packages/flask/py.typed"),
        ];
        assert_eq!(
            targets(&entries),
            [
                "/usr/local/lib/python3.13/dist-packages/x.py",
                "/usr/local/lib/python3.13/site-packages/flask/app.py"
            ]
        );
        assert_eq!(
            list(&targets(&entries)[..1], "/stage"),
            "/stage/usr/local/lib/python3.13/dist-packages/x.py\t/usr/local/lib/python3.13/dist-packages/x.py\n"
        );
    }
}
