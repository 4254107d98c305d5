//! A hostile build step: a package whose `setup.py` plants setuid-root and world-writable files
//! where the install runs. No layer pyslip writes carries those bits, with or without
//! namespaces, and the paths are reported for a warning. Run as the unprivileged test user.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{Build, listing, tempdir};
use pyslip_install::Isolation;

/// An sdist whose setup.py, while it is built (in uv's isolated build environment, so it
/// targets the base interpreter's prefix), writes `evil` (setuid+setgid, as root in the sandbox)
/// to the interpreter's scripts dir and a world-writable `evil-data` beside it.
const SETUP_PY: &str = r##"import os, sys
from setuptools import setup
scripts = os.path.join(sys.base_prefix, "local", "bin")
if not os.path.isdir(scripts):
    scripts = os.path.join(sys.base_prefix, "bin")
with open(os.path.join(scripts, "evil"), "w") as f:
    f.write("#!/bin/sh\nid\n")
os.chmod(os.path.join(scripts, "evil"), 0o6755)
data = os.path.join(scripts, "..", "lib", "evil-data")
with open(data, "w") as f:
    f.write("anyone may write me\n")
os.chmod(data, 0o666)
setup(name="evil", version="1.0", py_modules=["evil"])
"##;

/// A project whose requirements name the hostile sdist by path.
fn hostile_project(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("evil-1.0");
    fs_err::create_dir_all(&src).unwrap();
    fs_err::write(src.join("setup.py"), SETUP_PY).unwrap();
    fs_err::write(src.join("evil.py"), "X = 1\n").unwrap();
    fs_err::write(
        src.join("PKG-INFO"),
        "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
    )
    .unwrap();
    let project = dir.join("app");
    fs_err::create_dir_all(&project).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-czf")
        .arg(project.join("evil-1.0.tar.gz"))
        .arg("-C")
        .arg(dir)
        .arg("evil-1.0")
        .status()
        .unwrap();
    assert!(tar.success());
    fs_err::write(project.join("requirements.txt"), "./evil-1.0.tar.gz\n").unwrap();
    fs_err::write(project.join("main.py"), "import evil\n").unwrap();
    project
}

fn no_special_bits(isolation: Isolation) {
    let dir = tempdir();
    let project = hostile_project(dir.path());
    let mut build = Build::on_base(&project, &dir.path().join("cache"), "3.13");
    build.isolation = isolation;
    let layer = build.run().unwrap();
    let list = listing(&layer.blob_path);
    let evil = list
        .lines()
        .find(|l| l.ends_with("/bin/evil"))
        .unwrap_or_else(|| panic!("the planted file is in the layer (as a plain file):\n{list}"));
    assert!(evil.starts_with("-rwxr-xr-x 0/0"), "{evil}");
    let data = list.lines().find(|l| l.ends_with("/evil-data")).unwrap();
    assert!(data.starts_with("-rw-r--r-- 0/0"), "{data}");
    for line in list.lines() {
        let mode = line.split_whitespace().next().unwrap();
        assert!(
            !mode.contains('s') && !mode.contains('S') && !mode.contains('t'),
            "special bit in the layer: {line}"
        );
        assert!(
            line.starts_with('l') || mode.chars().nth(8) != Some('w'),
            "world-writable entry in the layer: {line}"
        );
    }
    let mut reported = layer.special_bits.clone();
    reported.sort();
    assert!(
        reported.iter().any(|p| p.ends_with("/bin/evil"))
            && reported.iter().any(|p| p.ends_with("/evil-data")),
        "the stripped paths are reported: {reported:?}"
    );
}

rootless_test! {
    fn a_planted_setuid_file_loses_its_bits_in_the_sandbox() {
        no_special_bits(Isolation::Namespaces);
    }
}

rootless_test! {
    fn a_planted_setuid_file_loses_its_bits_without_namespaces() {
        no_special_bits(Isolation::None);
    }
}
