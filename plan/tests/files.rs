//! The app layer's file list: .dockerignore semantics, always-excluded paths, .env, outputs, symlinks.

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};

use common::{defaults, project, warned};
use pyslip_plan::{FileKind, plan};

#[test]
fn walk_applies_every_exclusion_rule() {
    let dir = project(&[
        ("main.py", "print(1)\n"),
        ("pkg/mod.py", "x = 1\n"),
        ("pkg/__pycache__/mod.cpython-313.pyc", "junk"),
        ("pkg/old.pyc", "junk"),
        (".git/HEAD", "ref"),
        (".venv/bin/python", ""),
        ("venv/lib/x.py", ""),
        (".env", "SECRET=1"),
        (".env.production", "SECRET=2"),
        ("docs/guide.md", "# guide"),
        ("docs/keep.md", "# keep"),
        ("notes.md", "n"),
        ("sub/notes.md", "n"),
        ("out/image.tar", "tar"),
        (
            ".dockerignore",
            "# docs are not shipped\ndocs\n!docs/keep.md\n*.md\n",
        ),
        (
            "pyslip.toml",
            "exclude = [\"pkg/*.txt\", \"!.env.production\"]\n",
        ),
        ("pkg/data.txt", "d"),
    ]);
    fs_err::set_permissions(
        dir.path().join("main.py"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    symlink("pkg/mod.py", dir.path().join("link.py")).expect("symlink");
    symlink("/etc/passwd", dir.path().join("passwd")).expect("symlink");
    let mut overrides = defaults();
    overrides.exclude_outputs = vec![dir.path().join("out/image.tar")];
    let plan = plan(dir.path(), &overrides).expect("plan");
    let paths: Vec<&str> = plan.files.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            ".dockerignore",
            ".env.production",
            "docs",
            "docs/keep.md",
            "link.py",
            "main.py",
            "out",
            "passwd",
            "pkg",
            "pkg/mod.py",
            "pyslip.toml",
            "sub",
            "sub/notes.md"
        ],
    );
    let entry = |p: &str| {
        plan.files
            .entries
            .iter()
            .find(|e| e.path == p)
            .cloned()
            .expect(p)
    };
    assert!(entry("main.py").executable);
    assert_eq!(entry("main.py").size, 9);
    assert_eq!(
        entry("link.py").kind,
        FileKind::Symlink {
            target: "pkg/mod.py".to_owned()
        }
    );
    assert_eq!(entry("docs").kind, FileKind::Dir);
    assert!(
        warned(&plan, "symlink passwd points outside the project"),
        "{:?}",
        plan.warnings
    );
    assert!(warned(&plan, "not shipping .env"), "{:?}", plan.warnings);
    assert_eq!(plan.files.count, paths.len());
    let total: u64 = plan.files.entries.iter().map(|e| e.size).sum();
    assert_eq!(plan.files.total_size, total);
}

#[test]
fn excluded_directories_are_pruned_without_negations() {
    let dir = project(&[
        ("main.py", ""),
        ("node_modules/a/b.js", ""),
        (".dockerignore", "node_modules\n"),
    ]);
    let plan = plan(dir.path(), &defaults()).expect("plan");
    assert!(
        plan.files
            .entries
            .iter()
            .all(|e| !e.path.starts_with("node_modules"))
    );
}
