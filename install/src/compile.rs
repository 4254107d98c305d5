//! Bytecode compilation of what an install added, by the image's own interpreter, so the image
//! starts fast with `PYTHONDONTWRITEBYTECODE=1`.
//!
//! pyslip compiles instead of the installer (`uv --compile-bytecode`, pip's default) so that
//! both install paths give the same bytes: in the sandbox the files are compiled where they
//! lie; in the namespace-free path they lie under a staging tree and are compiled with the
//! image path as the name recorded in the `.pyc` (`compileall`'s `ddir`), which is exactly what
//! the sandbox writes. Only `.py` files the install added or changed below a `site-packages` or
//! `dist-packages` directory are compiled (what the installers compile), in checked-hash mode
//! (`SOURCE_DATE_EPOCH` is set). Files that do not compile (templates named `.py`, Python 2
//! leftovers) are skipped, as installers skip them.
//!
//! What the compiler writes depends on what the same process compiled before (CPython's
//! marshal refers back to objects it has seen, such as strings interned by an earlier module),
//! so the files are compiled in groups — a top-level package or module of a site directory —
//! each group in a process forked for it from one that has compiled nothing. A group's `.pyc`
//! files then depend on the group's sources alone, whichever other groups an install has: the
//! bytecode cache ([`crate::pyc`]) keeps them per group, and one core per running group.

use layers::{EntryKind, LayerEntry};

/// The compile script: argv[1] is a file of `group<TAB>source<TAB>name-in-image` lines, argv[2]
/// the number of groups compiled at once. Prints the interpreter's cache tag (`cpython-313`,
/// for the bytecode cache), then forks one child per group (no multiprocessing: the sandbox has
/// no /dev/shm) from this process, which compiles nothing itself; the exit status is 0 whatever
/// failed to compile.
pub(crate) const SCRIPT: &str = r#"import compileall, os, py_compile, sys
print(sys.implementation.cache_tag or "", flush=True)
groups = {}
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        group, src, name = line.rstrip("\n").split("\t")
        groups.setdefault(group, []).append((src, name))
n = max(1, int(sys.argv[2]))
mode = py_compile.PycInvalidationMode.CHECKED_HASH
running = 0
for group in groups.values():
    if running == n:
        os.wait()
        running -= 1
    if os.fork() == 0:
        try:
            for src, name in group:
                compileall.compile_file(src, ddir=os.path.dirname(name), force=True, quiet=2, invalidation_mode=mode)
        finally:
            os._exit(0)
    running += 1
while running:
    os.wait()
    running -= 1
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

/// The group of an image path: its site directory's top-level package or module
/// (`/usr/local/lib/python3.13/site-packages/flask` for `.../flask/app.py`).
pub(crate) fn group_of(path: &str) -> &str {
    let mut at = 0;
    let mut after_site = false;
    for (i, part) in path.split('/').enumerate() {
        if i > 0 {
            at += 1;
        }
        at += part.len();
        if after_site {
            return path.get(..at).unwrap_or(path);
        }
        after_site = part == "site-packages" || part == "dist-packages";
    }
    path
}

/// The targets in groups ([`group_of`]), groups and files sorted.
pub(crate) fn groups(targets: &[String]) -> Vec<Vec<String>> {
    let mut by_group: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for t in targets {
        by_group.entry(group_of(t)).or_default().push(t.clone());
    }
    by_group
        .into_values()
        .map(|mut files| {
            files.sort();
            files
        })
        .collect()
}

/// The list file's content: `group<TAB>source<TAB>image path` per file, where `source` is the
/// image path prefixed with `prefix` (empty in the sandbox, the staging root outside it).
pub(crate) fn list(groups: &[Vec<String>], prefix: &str) -> String {
    let mut out = String::new();
    for (i, group) in groups.iter().enumerate() {
        for t in group {
            out.push_str(&format!("{i}\t{prefix}{t}\t{t}\n"));
        }
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
            list(&groups(&targets(&entries)[..1]), "/stage"),
            "0\t/stage/usr/local/lib/python3.13/dist-packages/x.py\t/usr/local/lib/python3.13/dist-packages/x.py\n"
        );
    }

    #[test]
    fn files_are_grouped_by_top_level_package() {
        let site = "/usr/local/lib/python3.13/site-packages";
        assert_eq!(
            group_of(&format!("{site}/flask/json/tag.py")),
            format!("{site}/flask")
        );
        assert_eq!(
            group_of(&format!("{site}/six.py")),
            format!("{site}/six.py")
        );
        let targets = [
            format!("{site}/flask/app.py"),
            format!("{site}/six.py"),
            format!("{site}/flask/__init__.py"),
        ];
        assert_eq!(
            groups(&targets),
            [
                vec![
                    format!("{site}/flask/__init__.py"),
                    format!("{site}/flask/app.py")
                ],
                vec![format!("{site}/six.py")],
            ]
        );
    }
}
