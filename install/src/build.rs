//! [`dependency_layer`]: cache lookup, then the sandboxed install, then upper dir → layer.

use std::path::{Path, PathBuf};

use layers::LayerOptions;
use pyslip_cache::{Cache, LayerKind};
use pyslip_plan::{FileKind, ShippedFiles};

use crate::compile;
use crate::env::{PassThrough, redact};
use crate::error::InstallError;
use crate::failure;
use crate::fsutil::Scratch;
use crate::key::{cache_key, project_key};
use crate::platform;
use crate::prefetch::Prefetched;
use crate::pyc::PycCache;
use crate::request::{DepsLayer, DepsRequest, ProjectLayer, open_cache};
use crate::roots::layer_root;
use crate::runner::{Runner, Setup};
use crate::steps::{self, PROJECT, WORK};
use crate::uv::uv_for;

/// Paths (relative to the root) that never go into the dependency layer: pyslip's own mounts,
/// scratch space, and caches/logs the installers or Python may write.
const EXCLUDED: &[&str] = &[
    ".pyslip",
    "tmp",
    "var/tmp",
    "root/.cache",
    "root/.config/pip",
    "root/.local/share/uv",
    "var/log",
    "var/cache",
    "run",
];

fn keep(path: &str) -> bool {
    !EXCLUDED.iter().any(|e| {
        path == *e
            || path
                .strip_prefix(e)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn cache_err(e: std::io::Error) -> InstallError {
    InstallError::Cache(e)
}

/// The cached dependency layer for `req`, if the cache has it (`reused: true`).
///
/// Needs neither `req.base_root` nor the sandbox, so a caller can skip downloading and unpacking
/// the base image when this answers.
pub fn lookup(req: &DepsRequest) -> Result<Option<ProjectLayer>, InstallError> {
    if req.plan.install.is_none() {
        return Err(InstallError::NoInstall);
    }
    let key = cache_key(req)?;
    DepsLayer::cached(req.cache_dir, LayerKind::Deps, key)
}

/// Makes (or reuses) the dependency layer `req` describes.
///
/// A cache hit (an index record whose blob exists and verifies) returns at once with
/// `reused: true`: no uv, no sandbox, no tar, no gzip. Otherwise the installer runs in the rootless
/// sandbox over `req.base_root` with the package caches, the CA bundle and the project mounted, its
/// overlay upper dir becomes the layer (`<cache>/blobs-v1/sha256/<hex>`), and the key is recorded.
/// Nothing half-made is recorded: a failure leaves at most a stray temp file in `<cache>/tmp`.
pub fn dependency_layer(req: &DepsRequest) -> Result<DepsLayer, InstallError> {
    dependency_layer_prefetched(req, None)
}

/// [`dependency_layer`] after [`crate::prefetch`] resolved the requirements on this host: the
/// install runs offline and is kept only when every package it installed has the version that
/// resolution named; otherwise (and when `prefetched` is `None`) it runs online as usual.
pub fn dependency_layer_prefetched(
    req: &DepsRequest,
    prefetched: Option<&Prefetched>,
) -> Result<DepsLayer, InstallError> {
    let install = req.plan.install.as_ref().ok_or(InstallError::NoInstall)?;
    if !req.no_cache
        && let Some(hit) = lookup(req)?
    {
        return Ok(hit);
    }
    let key = cache_key(req)?;
    let cache = open_cache(req.cache_dir)?;
    let recipe = steps::recipe(install, req.project_dir)?;
    let run = |offline| Run {
        req,
        cache: &cache,
        recipe: &recipe,
        lower: vec![req.base_root.to_owned()],
        history: "pyslip dependencies",
        offline,
    };
    if prefetched.is_some() {
        match run(prefetched).layer(LayerKind::Deps, key.clone()) {
            Err(InstallError::OfflineMismatch) => {}
            done => return done,
        }
    }
    run(None).layer(LayerKind::Deps, key)
}

/// Whether the plan installs the project's own package as a layer of its own (above the
/// dependency layer; see [`project_layer`]). True for a project that is installed and whose
/// dependencies come from a uv or poetry lock or from static PEP 621 `[project] dependencies`;
/// setup.py projects and unlocked poetry projects install in one step, in the dependency layer.
pub fn has_project_layer(req: &DepsRequest) -> Result<bool, InstallError> {
    match &req.plan.install {
        Some(install) => steps::split_project(install, req.project_dir),
        None => Ok(false),
    }
}

/// The cached project layer over `deps`, if the cache has it; `None` also when the plan has no
/// project layer. Needs neither the base root nor the sandbox.
pub fn lookup_project(
    req: &DepsRequest,
    deps: &DepsLayer,
) -> Result<Option<ProjectLayer>, InstallError> {
    if !has_project_layer(req)? {
        return Ok(None);
    }
    let key = project_key(req, deps)?;
    DepsLayer::cached(req.cache_dir, LayerKind::Project, key)
}

/// Makes (or reuses) the project layer: the project's own package installed with `--no-deps`,
/// non-editable, into the image's site-packages, in the sandbox over `deps` (unpacked once into
/// `<cache>/layer-roots-v1/`) and the base root. Keyed on `deps` and the shipped files, so an
/// app-code change rebuilds only this small layer. `Ok(None)` when the plan has no project
/// layer ([`has_project_layer`]).
pub fn project_layer(
    req: &DepsRequest,
    deps: &DepsLayer,
) -> Result<Option<ProjectLayer>, InstallError> {
    let install = req.plan.install.as_ref().ok_or(InstallError::NoInstall)?;
    if !has_project_layer(req)? {
        return Ok(None);
    }
    if !req.no_cache
        && let Some(hit) = lookup_project(req, deps)?
    {
        return Ok(Some(hit));
    }
    let key = project_key(req, deps)?;
    let cache = open_cache(req.cache_dir)?;
    let recipe = steps::project_recipe(install, req.project_dir)?;
    let run = Run {
        req,
        cache: &cache,
        recipe: &recipe,
        lower: vec![layer_root(cache.root(), deps)?, req.base_root.to_owned()],
        history: "pyslip project",
        offline: None,
    };
    run.layer(LayerKind::Project, key).map(Some)
}

/// One recipe run (in the sandbox, or for the root from the host), captured as a layer.
struct Run<'a> {
    req: &'a DepsRequest<'a>,
    /// The cache, at its canonical root.
    cache: &'a Cache,
    recipe: &'a steps::Recipe,
    /// Lower dirs, topmost first (the base root last).
    lower: Vec<PathBuf>,
    /// Start of the history line.
    history: &'static str,
    /// Run the unpinned install offline, after this host's resolution ([`crate::prefetch`]).
    offline: Option<&'a Prefetched>,
}

impl Run<'_> {
    /// Runs the recipe over the lower dirs with the package caches, the CA bundle and the
    /// project available; what it changed, byte-compiled, becomes the layer, recorded under
    /// `key` in the `kind` index of the cache.
    fn layer(self, kind: LayerKind, key: String) -> Result<DepsLayer, InstallError> {
        let Run {
            req,
            cache,
            recipe,
            lower,
            history,
            offline: prefetched,
        } = self;
        let cache_dir = cache.root();
        let uv = match recipe.needs_uv {
            true => Some(uv_for(req, cache_dir)?),
            false => None,
        };
        let pass = PassThrough::from_host(&req.host_env);
        let secrets = pass.secrets();

        let scratch = Scratch::new_in(&cache.tmp_dir(), "deps-").map_err(cache_err)?;
        let files = scratch.join("files");
        fs_err::create_dir(&files).map_err(cache_err)?;
        for (name, content) in &recipe.files {
            fs_err::write(files.join(name), content).map_err(cache_err)?;
        }
        if recipe.copy_project {
            copy_project(
                req.project_dir,
                &req.plan.files,
                &files.join("src"),
                req.mtime,
            )?;
        }
        let install = req.plan.install.as_ref();
        if recipe.copy_locals {
            for (i, local) in install.iter().flat_map(|i| i.local.iter()).enumerate() {
                let dest = steps::local_dir(i);
                let dest = files.join(dest.trim_start_matches(&format!("{WORK}/")));
                copy_project(
                    &req.project_dir.join(&local.path),
                    &local.files,
                    &dest,
                    req.mtime,
                )?;
            }
        }
        // A uv workspace member's install runs at the workspace root (its lock is there).
        let visible = match install.and_then(|i| i.workspace.as_ref()) {
            Some(ws) => ws.root_dir(req.project_dir),
            None => req.project_dir.to_owned(),
        };
        let project = fs_err::canonicalize(&visible).map_err(cache_err)?;
        let base_root = lower.last().cloned().unwrap_or_default();
        let mut runner = Runner::new(
            req.isolation,
            Setup {
                lowers: lower,
                project: &project,
                scratch: &scratch,
                files: &files,
                uv: uv.as_deref(),
                cache_dir,
                pass: &pass,
                mtime: req.mtime,
                extra_env: Vec::new(),
                cwd: PROJECT.into(),
                writable: Vec::new(),
            },
        )?;

        let foreign = platform::foreign(req.platform)?;
        let python_platform = match &foreign {
            Some(target) => Some(foreign_python_platform(req, target, &base_root)?),
            None => None,
        };
        let mut log = String::new();
        for step in &recipe.steps {
            let platformed =
                |argv: &[String]| with_python_platform(argv, python_platform.as_deref());
            let offline = match prefetched {
                Some(_) => Some(step.offline_after_resolution()),
                None => step.offline(),
            };
            if let Some(offline) = offline {
                let out = runner.run(&platformed(&offline.argv))?;
                let stderr = redact(&String::from_utf8_lossy(&out.stderr), &secrets);
                log.push_str(&format!("$ {}\n{stderr}", offline.display()));
                if out.status.success() && prefetched.is_none_or(|p| p.covers(&stderr)) {
                    continue;
                }
                if prefetched.is_some() {
                    return Err(InstallError::OfflineMismatch);
                }
                // Something the lock pins is not in the package cache: the online run below.
            }
            let out = runner.run(&platformed(&step.argv))?;
            let stdout = redact(&String::from_utf8_lossy(&out.stdout), &secrets);
            let stderr = redact(&String::from_utf8_lossy(&out.stderr), &secrets);
            log.push_str(&format!("$ {}\n{stdout}{stderr}", step.display()));
            if !out.status.success() {
                let err = step_failure(req, step, out.status, (&stdout, &stderr), &log, cache_dir);
                return Err(match (&foreign, err) {
                    // For another platform, a package that must be built from source is the
                    // problem, whatever the build's own error (no compiler, or the host's).
                    (
                        Some(target),
                        InstallError::Failed {
                            kind,
                            package,
                            output,
                            ..
                        },
                    ) if kind == crate::error::FailureKind::Compiler
                        || output.contains("Failed to build")
                        || output.contains("Failed building wheel") =>
                    {
                        InstallError::ForeignNeedsWheel {
                            package,
                            platform: target.platform.clone(),
                            output,
                        }
                    }
                    (_, err) => err,
                });
            }
        }
        let installed = runner.changes(&keep)?;
        runner.fix_files(&installed)?;
        let compiled = compile_cached(req, &mut runner, &base_root, &installed.entries, cache_dir)?;
        if !compiled.status.success() {
            return Err(InstallError::Failed {
                step: "python3 -c <byte-compile the installed modules>".into(),
                status: compiled.status,
                package: None,
                output: failure::tail(
                    &String::from_utf8_lossy(&compiled.stderr),
                    failure::SHOWN_LINES,
                ),
                kind: crate::error::FailureKind::Other,
                python: req.plan.python.value.clone(),
                context: Box::default(),
            });
        }
        let changes = runner.changes(&keep)?;
        if let Some(target) = &foreign {
            platform::check_elf(&changes.entries, target)?;
        }
        let (layer, blob_path) =
            cache.write_layer(changes.entries, &LayerOptions { mtime: req.mtime })?;
        let created_by = created_by(history, recipe);
        cache.record_layer(kind, &key, &layer, &created_by)?;
        Ok(DepsLayer {
            layer,
            blob_path,
            reused: false,
            created_by,
            key,
            log: failure::tail(&log, 400),
            special_bits: changes.special_bits,
        })
    }
}

/// Byte-compiles what the install added, restoring from the bytecode cache the packages
/// compiled before by the same interpreter from the same sources at the same paths (with
/// `--no-cache` every package is compiled anew; the result is stored either way). Not used when
/// the install replaced the interpreter.
fn compile_cached(
    req: &DepsRequest,
    runner: &mut Runner,
    base_root: &Path,
    entries: &[layers::LayerEntry],
    cache_dir: &Path,
) -> Result<pyslip_sandbox::Output, InstallError> {
    let groups = compile::groups(&compile::targets(entries));
    let cache = match compile::touches_interpreter(entries) {
        true => None,
        false => PycCache::open(cache_dir, base_root)?,
    };
    let Some(cache) = cache else {
        return runner.compile(&groups);
    };
    let (misses, pending) = cache.restore(&groups, &|p| runner.host_path(p), !req.no_cache)?;
    let compiled = runner.compile(&misses)?;
    if compiled.status.success() {
        let out = String::from_utf8_lossy(&compiled.stdout);
        let tag = out.lines().next().unwrap_or("").trim();
        cache.store(pending, tag, &|p| runner.host_path(p))?;
    }
    Ok(compiled)
}

/// uv's `--python-platform` for installing `req` for `target` over the host-platform base root.
fn foreign_python_platform(
    req: &DepsRequest,
    target: &platform::Foreign,
    base_root: &Path,
) -> Result<String, InstallError> {
    let install = req.plan.install.as_ref().ok_or(InstallError::NoInstall)?;
    if install.installer == pyslip_plan::Installer::Pip {
        return Err(InstallError::ForeignPlatform {
            platform: target.platform.clone(),
            reason: "--installer pip installs for the platform it runs on; uv (the default) selects the platform's wheels".into(),
        });
    }
    let interp = crate::interp::Interpreter::find(base_root)?;
    Ok(target.uv_platform(platform::libc_of(base_root, &interp.loader)))
}

/// `argv` with `--python-platform` after `uv pip install` (other steps unchanged).
fn with_python_platform(argv: &[String], python_platform: Option<&str>) -> Vec<String> {
    let mut out = argv.to_vec();
    let is_install = argv.first().is_some_and(|a| a == steps::UV_PATH)
        && argv.get(1).is_some_and(|a| a == "pip")
        && argv.get(2).is_some_and(|a| a == "install");
    if let (Some(platform), true) = (python_platform, is_install) {
        out.splice(3..3, ["--python-platform".to_owned(), platform.to_owned()]);
    }
    out
}

/// The error for a failed install step, from its output.
fn step_failure(
    req: &DepsRequest,
    step: &steps::Step,
    status: pyslip_sandbox::ExitStatus,
    (stdout, stderr): (&str, &str),
    log: &str,
    cache_dir: &Path,
) -> InstallError {
    let combined = format!("{stdout}\n{stderr}");
    let kind = failure::kind(&combined);
    if kind == crate::error::FailureKind::Other
        && step.argv.get(1).is_some_and(|a| a == "export")
        && combined.contains("--locked")
    {
        return InstallError::StaleLock {
            lock: "uv.lock",
            manifest: "pyproject.toml",
            refresh: "uv lock",
        };
    }
    failure::failed(
        step.display(),
        status,
        &combined,
        log,
        cache_dir,
        &req.plan.python.value,
    )
}

/// The history line: the commands, without paths of pyslip's mounts or any environment.
fn created_by(history: &str, recipe: &steps::Recipe) -> String {
    let commands: Vec<String> = recipe
        .steps
        .iter()
        .map(|s| {
            s.display()
                .replace(&format!("{WORK}/"), "")
                .replace(steps::SRC, ".")
        })
        .collect();
    format!("{history}: {}", commands.join(" && "))
}

/// Copies the project's shipped files to `dest` (what a project install builds from).
///
/// Every copied file and directory gets the mtime `SOURCE_DATE_EPOCH` (`mtime`): build backends
/// and uv (`uv_cache.json` of a directory install) record source timestamps, which must not
/// depend on when the copy was made.
fn copy_project(
    project: &Path,
    files: &ShippedFiles,
    dest: &Path,
    mtime: u64,
) -> Result<(), InstallError> {
    fs_err::create_dir(dest).map_err(cache_err)?;
    for f in &files.entries {
        if f.path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            continue;
        }
        let to: PathBuf = dest.join(&f.path);
        if let Some(parent) = to.parent() {
            fs_err::create_dir_all(parent).map_err(cache_err)?;
        }
        match &f.kind {
            FileKind::Dir => fs_err::create_dir_all(&to).map_err(cache_err)?,
            FileKind::File => {
                let from = project.join(&f.path);
                fs_err::copy(&from, &to)
                    .map_err(|source| InstallError::ReadInput { path: from, source })?;
            }
            FileKind::Symlink { target } => {
                fs_err::os::unix::fs::symlink(target, &to).map_err(cache_err)?
            }
        }
    }
    set_mtimes(
        dest,
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime),
    )
}

/// Sets the mtime of `dir` and of every file and directory below it (children first).
fn set_mtimes(dir: &Path, when: std::time::SystemTime) -> Result<(), InstallError> {
    for entry in fs_err::read_dir(dir).map_err(cache_err)? {
        let entry = entry.map_err(cache_err)?;
        let kind = entry.file_type().map_err(cache_err)?;
        if kind.is_dir() {
            set_mtimes(&entry.path(), when)?;
        } else if kind.is_file() {
            fs_err::File::options()
                .write(true)
                .open(entry.path())
                .and_then(|f| f.set_modified(when))
                .map_err(cache_err)?;
        }
    }
    fs_err::File::open(dir)
        .and_then(|f| f.set_modified(when))
        .map_err(cache_err)
}
