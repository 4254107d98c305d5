//! [`dependency_layer`]: cache lookup, then the sandboxed install, then upper dir → layer.

use std::path::{Path, PathBuf};

use pyslip_plan::{FileKind, ShippedFiles};
use pyslip_sandbox::{BindMount, Sandbox, Stdio};

use crate::env::{CA_TARGET, PassThrough, redact};
use crate::error::InstallError;
use crate::failure;
use crate::fsutil::Scratch;
use crate::key::{cache_key, project_key};
use crate::request::{DepsLayer, DepsRequest, ProjectLayer};
use crate::roots::{layer_root, short_lowers};
use crate::steps::{self, PIP_CACHE, PROJECT, UV, UV_CACHE, WORK};
use crate::store::Store;
use crate::uv::ensure_uv;

/// Bytes of each output stream kept per step (the error is at the end).
const CAPTURE: usize = 256 * 1024;
/// Index folder of project layers under the cache root.
const PROJECT_INDEX: &str = "project-v1";

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
    Store::cached_layer(req.cache_dir, crate::store::DEPS_INDEX, key)
}

/// Makes (or reuses) the dependency layer `req` describes.
///
/// A cache hit (an index record whose blob exists and verifies) returns at once with
/// `reused: true`: no uv, no sandbox, no tar, no gzip. Otherwise the installer runs in the rootless
/// sandbox over `req.base_root` with the package caches, the CA bundle and the project mounted, its
/// overlay upper dir becomes the layer (`<cache>/blobs-v1/sha256/<hex>`), and the key is recorded.
/// Nothing half-made is recorded: a failure leaves at most a stray temp file in `<cache>/tmp`.
pub fn dependency_layer(req: &DepsRequest) -> Result<DepsLayer, InstallError> {
    let install = req.plan.install.as_ref().ok_or(InstallError::NoInstall)?;
    if !req.no_cache
        && let Some(hit) = lookup(req)?
    {
        return Ok(hit);
    }
    let key = cache_key(req)?;
    fs_err::create_dir_all(req.cache_dir).map_err(cache_err)?;
    // Bind sources must be free of symlinks; the cache root itself is the user's to choose.
    let cache_dir = fs_err::canonicalize(req.cache_dir).map_err(cache_err)?;
    let recipe = steps::recipe(install, req.project_dir)?;
    let run = Run {
        req,
        cache_dir: &cache_dir,
        recipe: &recipe,
        lower: vec![req.base_root.to_owned()],
        history: "pyslip dependencies",
    };
    run.layer(&Store::new(&cache_dir), key)
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
    Store::cached_layer(req.cache_dir, PROJECT_INDEX, key)
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
    fs_err::create_dir_all(req.cache_dir).map_err(cache_err)?;
    let cache_dir = fs_err::canonicalize(req.cache_dir).map_err(cache_err)?;
    let recipe = steps::project_recipe(install);
    let run = Run {
        req,
        cache_dir: &cache_dir,
        recipe: &recipe,
        lower: vec![layer_root(&cache_dir, deps)?, req.base_root.to_owned()],
        history: "pyslip project",
    };
    run.layer(&Store::with_index(&cache_dir, PROJECT_INDEX), key)
        .map(Some)
}

/// One recipe run in the sandbox, captured as a layer.
struct Run<'a> {
    req: &'a DepsRequest<'a>,
    /// The canonical cache root.
    cache_dir: &'a Path,
    recipe: &'a steps::Recipe,
    /// Lower dirs, topmost first (the base root last).
    lower: Vec<PathBuf>,
    /// Start of the history line.
    history: &'static str,
}

impl Run<'_> {
    /// Runs the recipe over the lower dirs with the package caches, the CA bundle and the
    /// project mounted; the overlay upper dir becomes the layer, recorded under `key` in `store`.
    fn layer(self, store: &Store, key: String) -> Result<DepsLayer, InstallError> {
        let Run {
            req,
            cache_dir,
            recipe,
            lower,
            history,
        } = self;
        let base_root = lower.last().cloned().unwrap_or_default();
        let uv = if recipe.needs_uv {
            Some(match req.uv_override {
                Some(path) => fs_err::canonicalize(path).map_err(cache_err)?,
                None => ensure_uv(cache_dir, req.platform, &req.host_env)?,
            })
        } else {
            None
        };
        let pass = PassThrough::from_host(&req.host_env);
        let secrets = pass.secrets();

        let uv_cache = cache_dir.join("uv-v1");
        let pip_cache = cache_dir.join("pip-v1");
        fs_err::create_dir_all(&uv_cache).map_err(cache_err)?;
        fs_err::create_dir_all(&pip_cache).map_err(cache_err)?;
        let scratch = tempfile::Builder::new()
            .prefix("deps-")
            .tempdir_in(store.tmp()?)
            .map_err(cache_err)?
            .keep();
        let scratch = Scratch(scratch);
        let upper = scratch.0.join("upper");
        let work = scratch.0.join("work");
        let files = scratch.0.join("files");
        for d in [&upper, &work, &files] {
            fs_err::create_dir(d).map_err(cache_err)?;
        }
        for (name, content) in &recipe.files {
            fs_err::write(files.join(name), content).map_err(cache_err)?;
        }
        if recipe.copy_project {
            copy_project(req.project_dir, &req.plan.files, &files.join("src"))?;
        }
        let install = req.plan.install.as_ref();
        if recipe.copy_locals {
            for (i, local) in install.iter().flat_map(|i| i.local.iter()).enumerate() {
                let dest = steps::local_dir(i);
                let dest = files.join(dest.trim_start_matches(&format!("{WORK}/")));
                copy_project(&req.project_dir.join(&local.path), &local.files, &dest)?;
            }
        }

        // A uv workspace member's install runs at the workspace root (its lock is there).
        let visible = match install.and_then(|i| i.workspace.as_ref()) {
            Some(ws) => ws.root_dir(req.project_dir),
            None => req.project_dir.to_owned(),
        };
        let project = fs_err::canonicalize(&visible).map_err(cache_err)?;
        let mut mounts = vec![
            BindMount {
                source: project,
                target: PROJECT.into(),
                writable: false,
            },
            BindMount {
                source: files.clone(),
                target: WORK.into(),
                writable: true,
            },
            BindMount {
                source: uv_cache,
                target: UV_CACHE.into(),
                writable: true,
            },
            BindMount {
                source: pip_cache,
                target: PIP_CACHE.into(),
                writable: true,
            },
        ];
        if let Some(uv) = &uv {
            mounts.push(BindMount {
                source: uv.clone(),
                target: UV.into(),
                writable: false,
            });
        }
        if let Some(ca) = &pass.ca_bundle {
            mounts.push(BindMount {
                source: ca.clone(),
                target: CA_TARGET.into(),
                writable: false,
            });
        }
        let lowers = short_lowers(lower)?;
        let sandbox = Sandbox {
            lower: lowers.dirs.clone(),
            upper: upper.clone(),
            work,
            mounts,
            env: pass.sandbox_env(req.mtime, UV_CACHE, PIP_CACHE),
            cwd: PROJECT.into(),
            hostname: "pyslip".into(),
        };

        let mut created = Vec::new();
        let mut log = String::new();
        for step in &recipe.steps {
            let out = sandbox
                .run(&step.argv, Stdio::Capture { limit: CAPTURE })
                .map_err(InstallError::Sandbox)?;
            created.extend(out.created_mountpoints.iter().cloned());
            let stdout = redact(&String::from_utf8_lossy(&out.stdout), &secrets);
            let stderr = redact(&String::from_utf8_lossy(&out.stderr), &secrets);
            log.push_str(&format!("$ {}\n{stdout}{stderr}", step.display()));
            if !out.status.success() {
                let combined = format!("{stdout}\n{stderr}");
                let kind = failure::kind(&combined);
                if kind == crate::error::FailureKind::Other
                    && step.argv.get(1).is_some_and(|a| a == "export")
                    && combined.contains("--locked")
                {
                    return Err(InstallError::StaleLock {
                        lock: "uv.lock",
                        manifest: "pyproject.toml",
                        refresh: "uv lock",
                    });
                }
                return Err(failure::failed(
                    step.display(),
                    out.status,
                    &combined,
                    &log,
                    cache_dir,
                    &req.plan.python.value,
                ));
            }
        }
        created.sort();
        created.dedup();
        // Parents sort before children; remove_mountpoints walks the list backwards.
        pyslip_sandbox::remove_mountpoints(&upper, &created).map_err(InstallError::Sandbox)?;
        prune_copied_up_parents(&upper, &base_root, &created);
        let entries = layers::diff_entries(&upper, &keep).map_err(InstallError::Layer)?;
        let (layer, blob_path) = store.write_blob(entries, req.mtime)?;
        let created_by = created_by(history, recipe);
        store.record(&key, &layer, &created_by)?;
        Ok(DepsLayer {
            layer,
            blob_path,
            reused: false,
            created_by,
            key,
            log: failure::tail(&log, 400),
        })
    }
}

/// Removes the parents of mountpoints (`etc` for `etc/resolv.conf`) that overlay copied up from
/// the base only to create the mountpoint: still empty in `upper`, and a directory of the same
/// mode in the base, they would only repeat the base's directory in the layer.
fn prune_copied_up_parents(upper: &Path, base: &Path, created: &[String]) {
    use std::os::unix::fs::MetadataExt;
    let mut parents: Vec<&str> = created
        .iter()
        .flat_map(|c| {
            let mut p = c.as_str();
            std::iter::from_fn(move || {
                let (parent, _) = p.rsplit_once('/')?;
                p = parent;
                Some(parent)
            })
        })
        .filter(|p| !p.split('/').any(|c| c.is_empty() || c == "." || c == ".."))
        .collect();
    // Deepest first.
    parents.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    parents.dedup();
    for rel in parents {
        let (Ok(up), Ok(low)) = (
            fs_err::symlink_metadata(upper.join(rel)),
            fs_err::symlink_metadata(base.join(rel)),
        ) else {
            continue;
        };
        let empty = fs_err::read_dir(upper.join(rel)).is_ok_and(|mut d| d.next().is_none());
        if up.is_dir() && low.is_dir() && empty && up.mode() == low.mode() {
            let _ = fs_err::remove_dir(upper.join(rel));
        }
    }
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
fn copy_project(project: &Path, files: &ShippedFiles, dest: &Path) -> Result<(), InstallError> {
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
    Ok(())
}
