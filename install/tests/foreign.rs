//! Installing for linux/arm64 on this amd64 host without emulation: the host-platform base root
//! runs the installer, which selects arm64 wheels; every ELF file of the layer is for aarch64;
//! the sandbox and the namespace-free path give the same bytes; an sdist that would have to be
//! compiled fails naming the package. Run as the unprivileged test user.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{Build, listing, tempdir};
use pyslip_install::{InstallError, Isolation};

fn project(dir: &Path, requirements: &str) -> std::path::PathBuf {
    let project = dir.join("app");
    fs_err::create_dir_all(&project).unwrap();
    fs_err::write(project.join("requirements.txt"), requirements).unwrap();
    fs_err::write(project.join("main.py"), "import fastapi\n").unwrap();
    project
}

fn install_for_arm64(
    project: &Path,
    cache: &Path,
    isolation: Isolation,
) -> Result<pyslip_install::DepsLayer, InstallError> {
    let mut build = Build::on_base(project, cache, "3.13");
    build.isolation = isolation;
    build.no_cache = true;
    build.platform = "linux/arm64".into();
    build.run()
}

/// `(path, e_machine)` of every ELF file in the layer blob.
fn elf_machines(blob: &Path, scratch: &Path) -> Vec<(String, u16)> {
    let dir = scratch.join("unpacked");
    fs_err::create_dir_all(&dir).unwrap();
    let ok = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(blob)
        .arg("-C")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut out = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in fs_err::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let bytes = fs_err::read(&p).unwrap();
                if bytes.starts_with(b"\x7fELF") {
                    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
                    out.push((p.strip_prefix(&dir).unwrap().display().to_string(), machine));
                }
            }
        }
    }
    out
}

rootless_test! {
    /// FastAPI with compiled dependencies (pydantic-core, uvloop, httptools, watchfiles) for
    /// linux/arm64: only aarch64 extensions, the same layer both ways.
    fn compiled_dependencies_install_for_arm64_without_emulation() {
        let dir = tempdir();
        let project = project(
            dir.path(),
            "fastapi==0.121.1\nuvicorn[standard]==0.38.0\n",
        );
        let cache = dir.path().join("cache");
        let ns = install_for_arm64(&project, &cache, Isolation::Namespaces).unwrap();
        let machines = elf_machines(&ns.blob_path, dir.path());
        let names: Vec<&str> = machines.iter().map(|(p, _)| p.as_str()).collect();
        for needle in ["pydantic_core", "uvloop", "httptools", "watchfiles"] {
            assert!(names.iter().any(|p| p.contains(needle)), "no {needle} extension: {names:?}");
        }
        for (path, machine) in &machines {
            assert_eq!(*machine, 183, "{path} is not aarch64 (EM_AARCH64 = 183)");
        }
        assert!(listing(&ns.blob_path).contains(".cpython-313.pyc"), "compiled by the host's 3.13");
        let none = install_for_arm64(&project, &cache, Isolation::None).unwrap();
        assert_eq!(none.layer, ns.layer, "the namespace-free arm64 layer differs");
    }
}

rootless_test! {
    /// A package with only a C-extension sdist cannot be installed for arm64: the error names it.
    fn an_sdist_with_a_c_extension_fails_for_arm64_naming_the_package() {
        let dir = tempdir();
        let project = project(dir.path(), "ujson==1.35\n");
        for isolation in [Isolation::Namespaces, Isolation::None] {
            let err = install_for_arm64(&project, &dir.path().join("cache"), isolation).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, InstallError::ForeignNeedsWheel { .. } | InstallError::ForeignElf { .. }),
                "{isolation:?}: {err:?}"
            );
            assert!(text.contains("ujson") && text.contains("linux/arm64"), "{text}");
            assert!(err.hint().unwrap_or_default().contains("wheel"), "{:?}", err.hint());
        }
    }
}
