//! Resolving on this host while the base image is downloaded and unpacked, on the path without
//! namespaces (where build steps run on the host anyway).
//!
//! An unpinned install (requirements ranges, PEP 621 dependencies, an unlocked Pipfile) spends
//! most of a cold build asking the index what is current; the install cannot start before the
//! base root is unpacked. [`prefetch`] runs `uv pip compile` for the image's Python
//! (`--python-version` from the base's `PYTHON_VERSION`) at the same time, with the same package
//! cache, index settings and credentials: uv fetches every index page, metadata file and source
//! distribution the resolution reads. The install that follows runs `--offline` and resolves
//! from what was fetched a moment before, i.e. from the index as it is now.
//!
//! Never at the cost of a different result. The host resolution targets
//! `<arch>-manylinux_2_40`, so it considers every wheel the base's glibc can load (and
//! possibly more); an offline install that could not see a version the online one would pick
//! (its data was never fetched) therefore installs something other than that resolution named,
//! and the offline install is kept only when every package it installed has exactly the version
//! the host resolution named. Otherwise, and when the host resolution fails (no interpreter
//! on this host for uv to run, an index error), the install runs online as it would without
//! this. In the namespace sandbox there is no host resolution: it may build source
//! distributions to read their metadata, and build code does not run outside the sandbox (with
//! `--no-build` uv would quietly pass over a newer version that has only a source distribution).

use std::collections::BTreeMap;

use pyslip_plan::Installer;
use pyslip_sandbox::{HostCommand, Stdio};

use crate::env::{EnvPaths, NO_COMPILER, PassThrough};
use crate::fsutil::Scratch;
use crate::platform;
use crate::request::DepsRequest;
use crate::runner::Isolation;
use crate::steps::{self, UV, UV_CONFIG, WORK};
use crate::uv::uv_for;

/// What the host's resolution named: package → version.
#[derive(Debug, Clone)]
pub struct Prefetched {
    pins: BTreeMap<String, String>,
}

impl Prefetched {
    /// A resolution made elsewhere: `name==version` lines (any spelling of each name).
    pub fn from_pins<'a>(lines: impl IntoIterator<Item = &'a str>) -> Self {
        Prefetched {
            pins: lines.into_iter().filter_map(pin).collect(),
        }
    }

    /// Whether every package the offline install reported installing (uv's ` + name==version`
    /// lines in `output`) has the version the host's resolution named.
    pub(crate) fn covers(&self, output: &str) -> bool {
        output
            .lines()
            .filter_map(|line| line.trim_start().strip_prefix("+ "))
            .all(|p| pin(p).is_some_and(|(name, v)| self.pins.get(&name) == Some(&v)))
    }
}

/// `name==version` (normalised name; a direct reference `name @ url` has no version).
fn pin(line: &str) -> Option<(String, String)> {
    let line = line.split(';').next()?.trim();
    let (name, version) = line.split_once("==")?;
    let name = pyslip_plan::normalize_name(name.trim())?;
    Some((name, version.trim().to_owned()))
}

/// The arguments of an unpinned uv install step after uv's own options (`-r requirements.txt`),
/// when `req`'s recipe is exactly one such step; `None` for every other recipe (locked ones run
/// offline first anyway, pip has no such mode, a project build may run code).
fn unpinned_args(req: &DepsRequest) -> Option<(Vec<String>, steps::Recipe)> {
    let install = req.plan.install.as_ref()?;
    if install.installer != Installer::Uv
        || req.isolation != Isolation::None
        || platform::foreign(req.platform).ok()?.is_some()
    {
        return None;
    }
    let recipe = steps::recipe(install, req.project_dir).ok()?;
    let [step] = recipe.steps.as_slice() else {
        return None;
    };
    if step.offline_first || recipe.copy_project || recipe.copy_locals {
        return None;
    }
    let argv = &step.argv;
    if argv.get(..3)? != [UV, "pip", "install"] {
        return None;
    }
    // Skip uv's own options (`--system`, `--python python3`, `--no-config`, `--config-file F`).
    let at = argv.iter().position(|a| a == "-r")?;
    let args = argv.get(at..)?.to_vec();
    // Only requirement files: a bare path or URL may be a project to build.
    let files_only = args
        .chunks(2)
        .all(|pair| pair.len() == 2 && pair[0] == "-r");
    files_only.then_some((args, recipe))
}

/// Whether [`prefetch`] would resolve anything for `req` (without running it).
pub fn prefetch_applies(req: &DepsRequest) -> bool {
    unpinned_args(req).is_some()
}

/// Resolves `req`'s unpinned requirements on this host for Python `python_version` of the
/// image, filling the package cache; `None` when it does not apply or did not succeed (the
/// install then runs online as usual). Blocking; meant to run while the base is unpacked.
pub fn prefetch(req: &DepsRequest, python_version: &str) -> Option<Prefetched> {
    let (args, recipe) = unpinned_args(req)?;
    let cache = crate::request::open_cache(req.cache_dir).ok()?;
    let cache_dir = cache.root();
    let uv = uv_for(req, cache_dir).ok()?;
    let scratch = Scratch::new_in(&cache.tmp_dir(), "prefetch-").ok()?;
    let files = scratch.join("files");
    let (home, tmp) = (scratch.join("home"), scratch.join("tmp"));
    for d in [&files, &home, &tmp] {
        fs_err::create_dir_all(d).ok()?;
    }
    for (name, content) in &recipe.files {
        fs_err::write(files.join(name), content).ok()?;
    }
    let out = scratch.join("resolved.txt");
    let host = |arg: &str| match arg.strip_prefix(&format!("{WORK}/")) {
        Some(rel) => files.join(rel).to_string_lossy().into_owned(),
        None => arg.to_owned(),
    };
    let mut argv: Vec<String> = vec![
        uv.to_string_lossy().into_owned(),
        "pip".into(),
        "compile".into(),
        "--no-config".into(),
    ];
    if recipe.files.iter().any(|(name, _)| name == UV_CONFIG) {
        argv.extend(["--config-file".into(), host(&format!("{WORK}/{UV_CONFIG}"))]);
    }
    argv.extend(
        [
            "--python-version",
            python_version,
            "--python-platform",
            uv_target(),
            "--quiet",
            "--no-header",
            "--no-annotate",
            "--output-file",
        ]
        .map(str::to_owned),
    );
    argv.push(out.to_string_lossy().into_owned());
    // `uv pip compile` takes the requirement files themselves (`-r` is install's spelling).
    argv.extend(args.iter().filter(|a| *a != "-r").map(|a| host(a)));

    let pass = PassThrough::from_host(&req.host_env);
    // uv looks for an interpreter (any: it resolves for `--python-version`) on the host.
    let path = req.host_env.iter().find(|(k, _)| k == "PATH").map_or_else(
        || "/usr/local/bin:/usr/bin:/bin".to_owned(),
        |(_, v)| v.clone(),
    );
    let paths = EnvPaths::on_host(cache_dir, &pass, &home, &tmp, path);
    let mut env = pass.step_env(req.mtime, &paths);
    // Source distributions built for their metadata see what the install's builds see.
    for (var, value) in NO_COMPILER {
        env.retain(|(k, _)| k != var);
        env.push((var.into(), value.into()));
    }
    let ran = HostCommand {
        argv,
        env,
        cwd: req.project_dir.to_owned(),
    }
    .run(Stdio::Capture { limit: 64 * 1024 })
    .ok()?;
    if !ran.status.success() {
        return None;
    }
    let resolved = fs_err::read_to_string(&out).ok()?;
    Some(Prefetched::from_pins(
        resolved
            .lines()
            .filter(|l| !l.trim_start().starts_with('#')),
    ))
}

/// uv's `--python-platform` for this machine: glibc Linux, the newest manylinux uv knows, so
/// that every wheel the base can load is considered.
fn uv_target() -> &'static str {
    match platform::host_arch() {
        "arm64" => "aarch64-manylinux_2_40",
        _ => "x86_64-manylinux_2_40",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offline_install_is_kept_only_with_the_versions_the_resolution_gave() {
        let p = Prefetched::from_pins([
            "fastapi==0.120.0",
            "pydantic-core==2.41.1 ; python_version >= '3.9'",
            "typing_extensions==4.15.0",
        ]);
        let uv = "Resolved 3 packages in 20ms\nInstalled 3 packages in 9ms\n + fastapi==0.120.0\n + pydantic_core==2.41.1\n + Typing-Extensions==4.15.0\n";
        assert!(p.covers(uv));
        assert!(!p.covers(&format!("{uv} + starlette==0.48.0\n")));
        assert!(!p.covers(&uv.replace("fastapi==0.120.0", "fastapi==0.119.0")));
        assert!(!p.covers(" + local @ file:///src\n"));
        assert!(p.covers("Audited 3 packages in 1ms\n"));
    }
}
