//! Django's `collectstatic` at build time: run in the rootless sandbox over the base root, the
//! dependency (and project) layers and a copy of the shipped app files at the workdir, and keep
//! the files it wrote under `STATIC_ROOT` as one cached, reproducible layer.

use std::path::{Component, Path, PathBuf};

use layers::{Digest, EntryKind, LayerEntry, LayerOptions};
use pyslip_cache::LayerKind;
use pyslip_plan::{BuildPlan, Collectstatic, FileKind};

use crate::env::PassThrough;
use crate::error::InstallError;
use crate::failure;
use crate::fsutil::Scratch;
use crate::key::KeyHasher;
use crate::request::{DepsLayer, open_cache};
use crate::roots::layer_root;
use crate::runner::{Isolation, Runner, Setup};

/// Version of the static layer's key scheme: bump it when the recipe or the filter changes.
pub const STATIC_KEY_SCHEME: &str = "pyslip-static-v1";
/// Lines of Django's output shown in an error.
const ERROR_LINES: usize = 40;
/// Marker of the probe's answer line.
const MARKER: &str = "PYSLIP_STATIC_ROOT=";
/// Asks Django (through `manage.py shell`, so `manage.py` sets the settings module as it does for
/// collectstatic) where `STATIC_ROOT` resolved to.
const PROBE: &str = "import os\nfrom django.conf import settings\nr = settings.STATIC_ROOT\nprint('PYSLIP_STATIC_ROOT=' + (os.path.abspath(os.fspath(r)) if r else ''))\n";

/// The static layer: the same shape as the dependency layer (digest, blob, reuse, history, key;
/// `log` holds the tail of Django's output).
pub type StaticLayer = DepsLayer;

/// One collectstatic run.
#[derive(Debug, Clone)]
pub struct StaticRequest<'a> {
    /// The project directory (the plan was made from it).
    pub project_dir: &'a Path,
    /// The build plan: `collectstatic`, `files`, `workdir`, `user` and `env` are used.
    pub plan: &'a BuildPlan,
    /// The layers between the base and the app, lowest first (the dependency layer, then the
    /// project layer when there is one); each is unpacked once into
    /// `<cache>/layer-roots-v1/<hex>` and stacked as a lower dir.
    pub layers: &'a [&'a DepsLayer],
    /// The unpacked base image root (only read on a cache miss).
    pub base_root: &'a Path,
    /// The base image's manifest digest (part of the cache key).
    pub base_digest: &'a Digest,
    /// Target platform (part of the cache key).
    pub platform: &'a str,
    /// pyslip's cache root.
    pub cache_dir: &'a Path,
    /// Run again even when the cache has the layer.
    pub no_cache: bool,
    /// mtime of every layer entry and `SOURCE_DATE_EPOCH` of the run.
    pub mtime: u64,
    /// In the namespace sandbox, or for the root from the host.
    pub isolation: Isolation,
}

/// Whether the plan runs Django's collectstatic at build time.
pub fn runs_collectstatic(plan: &BuildPlan) -> bool {
    step(plan).is_some()
}

fn step(plan: &BuildPlan) -> Option<&Collectstatic> {
    plan.collectstatic
        .as_ref()
        .map(|d| &d.value)
        .filter(|c| c.run && !c.command.is_empty())
}

/// The runtime user of the plan as numeric ids: `root`, `UID` or `UID:GID` (what the app layer
/// accepts too).
pub fn runtime_owner(user: &str) -> Result<(u32, u32), InstallError> {
    if user == "root" {
        return Ok((0, 0));
    }
    let bad = || InstallError::User(user.to_owned());
    match user.split_once(':') {
        Some((u, g)) => Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?)),
        None => {
            let uid = user.parse().map_err(|_| bad())?;
            Ok((uid, uid))
        }
    }
}

/// The cache key of the static layer (hex sha256): base, platform, the layers below, the
/// collectstatic step, the image env, user, workdir, mtime and every shipped file.
pub fn static_key(req: &StaticRequest) -> Result<String, InstallError> {
    let mut h = KeyHasher::new(STATIC_KEY_SCHEME);
    h.field("base", req.base_digest.to_string().as_bytes());
    h.field("platform", req.platform.as_bytes());
    h.field("python", req.plan.python.value.as_bytes());
    h.field("mtime", req.mtime.to_string().as_bytes());
    for layer in req.layers {
        h.field("layer", layer.layer.diff_id.to_string().as_bytes());
    }
    if let Some(step) = step(req.plan) {
        h.field("manage-py", step.manage_py.as_bytes());
        for arg in &step.command {
            h.field("argv", arg.as_bytes());
        }
    }
    for (k, v) in &req.plan.env {
        h.field(&format!("env:{k}"), v.as_bytes());
    }
    h.field("user", req.plan.user.value.as_bytes());
    h.field("workdir", req.plan.workdir.as_bytes());
    h.shipped(req.project_dir, &req.plan.files)?;
    Ok(h.finish())
}

/// The cached static layer for `req`, if the cache has it; `None` also when the plan does not
/// run collectstatic. Needs neither the base root nor the sandbox.
pub fn lookup_static(req: &StaticRequest) -> Result<Option<StaticLayer>, InstallError> {
    if step(req.plan).is_none() {
        return Ok(None);
    }
    let key = static_key(req)?;
    DepsLayer::cached(req.cache_dir, LayerKind::Static, key)
}

/// Runs (or reuses) Django's collectstatic and returns its output as a layer; `Ok(None)` when
/// the plan does not run it.
///
/// The sandbox's root is an overlay of a copy of the shipped files at the workdir, the layers of
/// `req.layers` and the base root; the command runs in `manage.py`'s folder with the image's env
/// (plus `PYTHONHASHSEED=0` and `SOURCE_DATE_EPOCH` for reproducible output), then Django is
/// asked where `STATIC_ROOT` resolved. The layer keeps only what was written under it (no
/// `__pycache__`, no shipped file left unchanged, no deletions), owned by the runtime user, with
/// its parents inside the workdir as the app layer has them (0755, runtime user).
pub fn collectstatic_layer(req: &StaticRequest) -> Result<Option<StaticLayer>, InstallError> {
    let Some(step) = step(req.plan) else {
        return Ok(None);
    };
    if !req.no_cache
        && let Some(hit) = lookup_static(req)?
    {
        return Ok(Some(hit));
    }
    let owner = runtime_owner(&req.plan.user.value)?;
    let key = static_key(req)?;
    let cache = open_cache(req.cache_dir)?;
    let cache_dir = cache.root();

    let mut lower = Vec::new();
    for layer in req.layers.iter().rev() {
        lower.push(layer_root(cache_dir, layer)?);
    }
    let scratch = Scratch::new_in(&cache.tmp_dir(), "static-").map_err(InstallError::Cache)?;
    let (files, app) = (scratch.join("files"), scratch.join("app"));
    for d in [&files, &app] {
        fs_err::create_dir(d).map_err(InstallError::Cache)?;
    }
    let workdir = relative(&req.plan.workdir).ok_or_else(|| InstallError::InvalidInput {
        file: "plan".into(),
        reason: format!("workdir {:?} is not an absolute path", req.plan.workdir),
    })?;
    stage_app(req.project_dir, req.plan, &app.join(&workdir))?;
    lower.insert(0, app);
    lower.push(req.base_root.to_owned());

    let manage_dir = Path::new(&step.manage_py)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty());
    let cwd = match &manage_dir {
        Some(dir) => format!("/{workdir}/{dir}"),
        None => format!("/{workdir}"),
    };
    let manage_py = Path::new(&step.manage_py)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manage.py".into());
    let project = fs_err::canonicalize(req.project_dir).map_err(InstallError::Cache)?;
    let mut runner = Runner::new(
        req.isolation,
        Setup {
            lowers: lower,
            project: &project,
            scratch: &scratch,
            files: &files,
            uv: None,
            cache_dir,
            pass: &PassThrough::default(),
            mtime: req.mtime,
            extra_env: image_env(req.plan),
            cwd,
            writable: vec![workdir.clone()],
        },
    )?;

    // Where STATIC_ROOT is, asked first: without namespaces Django must not write outside the
    // staged app.
    let probe: Vec<String> = ["python", &manage_py, "shell", "-c", PROBE]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let out = runner.run(&probe)?;
    let probe_out = String::from_utf8_lossy(&out.stdout).into_owned();
    let probe_err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(InstallError::Collectstatic {
            step: format!("python {manage_py} shell -c <print STATIC_ROOT>"),
            status: out.status,
            output: failure::tail(&probe_err, ERROR_LINES),
        });
    }
    let reported = probe_out
        .lines()
        .find_map(|l| l.trim().strip_prefix(MARKER))
        .unwrap_or_default()
        .to_owned();
    if reported.is_empty() {
        return Err(InstallError::StaticRoot {
            root: reported,
            reason: "is not set",
        });
    }
    let root = runner.image_path(&reported).ok_or(InstallError::StaticRoot {
        root: reported.clone(),
        reason: "is outside the app directory, where a build without namespaces can write (use --sandbox namespaces, or a STATIC_ROOT below BASE_DIR)",
    })?;
    let static_rel = match relative(&root) {
        Some(rel) if !rel.is_empty() => rel,
        _ => {
            return Err(InstallError::StaticRoot {
                root,
                reason: "is not a directory below / in the image",
            });
        }
    };

    let shown = step.command.join(" ");
    let out = runner.run(&step.command)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(InstallError::Collectstatic {
            step: shown,
            status: out.status,
            output: failure::tail(
                if stderr.trim().is_empty() {
                    &stdout
                } else {
                    &stderr
                },
                ERROR_LINES,
            ),
        });
    }
    let mut log = format!("$ {shown}\n{stdout}{stderr}");
    log.push_str(&format!("STATIC_ROOT = {root}\n"));

    let changes = runner.changes(&|_| true)?;
    let entries = static_entries(changes.entries, &workdir, &static_rel, owner);
    let (layer, blob_path) = cache.write_layer(entries, &LayerOptions { mtime: req.mtime })?;
    let created_by = format!(
        "pyslip collectstatic: cd {} && {shown}",
        manage_dir.as_deref().unwrap_or(".")
    );
    cache.record_layer(LayerKind::Static, &key, &layer, &created_by)?;
    Ok(Some(DepsLayer {
        layer,
        blob_path,
        reused: false,
        created_by,
        key,
        log: failure::tail(&log, 400),
        special_bits: Vec::new(),
    }))
}

/// The image's env (the plan's Env over the base's PATH) that collectstatic runs with; the
/// runner sets what makes the output reproducible (`PYTHONHASHSEED=0`, `SOURCE_DATE_EPOCH`) and
/// the step's own PATH, HOME and TMPDIR over it.
fn image_env(plan: &BuildPlan) -> Vec<(String, String)> {
    let mut env = plan.env.clone();
    env.retain(|(k, _)| k != "PYTHONUNBUFFERED");
    env.push(("PYTHONUNBUFFERED".to_owned(), "1".to_owned()));
    env
}

/// `path` without its leading `/`, normalised; `None` when it is relative or climbs with `..`.
fn relative(path: &str) -> Option<String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return None;
    }
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => parts.push(n.to_str()?.to_owned()),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Puts the shipped files under `dest` (hardlinked when the cache is on the project's
/// filesystem, else copied): what the image's workdir holds, and nothing else.
fn stage_app(project: &Path, plan: &BuildPlan, dest: &Path) -> Result<(), InstallError> {
    fs_err::create_dir_all(dest).map_err(InstallError::Cache)?;
    for f in &plan.files.entries {
        if f.path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            continue;
        }
        let to: PathBuf = dest.join(&f.path);
        if let Some(parent) = to.parent() {
            fs_err::create_dir_all(parent).map_err(InstallError::Cache)?;
        }
        match &f.kind {
            FileKind::Dir => fs_err::create_dir_all(&to).map_err(InstallError::Cache)?,
            FileKind::File => {
                let from = project.join(&f.path);
                // The overlay never writes to a lower dir, so a hardlink is as safe as a copy.
                if std::fs::hard_link(&from, &to).is_err() {
                    fs_err::copy(&from, &to)
                        .map_err(|source| InstallError::ReadInput { path: from, source })?;
                }
            }
            FileKind::Symlink { target } => {
                fs_err::os::unix::fs::symlink(target, &to).map_err(InstallError::Cache)?
            }
        }
    }
    Ok(())
}

fn under(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The layer entries: what collectstatic wrote at or below `static_rel` (no `__pycache__`, no
/// deletions; shipped files it left as they were are not changes), owned by the runtime user,
/// and its parents inside the workdir as the app layer has them (0755, runtime user).
fn static_entries(
    changes: Vec<LayerEntry>,
    workdir: &str,
    static_rel: &str,
    (uid, gid): (u32, u32),
) -> Vec<LayerEntry> {
    let keep = |path: &str| {
        (under(path, static_rel) || under(static_rel, path))
            && !path
                .split('/')
                .any(|c| c == "__pycache__" || c.ends_with(".pyc"))
    };
    let mut out = Vec::new();
    for mut e in changes {
        if matches!(e.kind, EntryKind::Whiteout | EntryKind::OpaqueWhiteout) || !keep(&e.path) {
            continue;
        }
        if under(&e.path, static_rel) {
            (e.uid, e.gid) = (uid, gid);
        } else if under(&e.path, workdir) {
            // A parent inside the workdir: as the app layer has it.
            (e.mode, e.uid, e.gid) = (0o755, uid, gid);
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_parse_like_the_app_layer() {
        assert_eq!(runtime_owner("root").unwrap(), (0, 0));
        assert_eq!(runtime_owner("1000").unwrap(), (1000, 1000));
        assert_eq!(runtime_owner("1000:2000").unwrap(), (1000, 2000));
        assert!(runtime_owner("app").unwrap_err().hint().is_some());
        assert!(runtime_owner("1:x").is_err());
    }

    #[test]
    fn static_roots_must_be_absolute_without_climbing() {
        assert_eq!(
            relative("/app/staticfiles").as_deref(),
            Some("app/staticfiles")
        );
        assert_eq!(relative("/app/./static/").as_deref(), Some("app/static"));
        assert_eq!(relative("/").as_deref(), Some(""));
        assert_eq!(relative("static"), None);
        assert_eq!(relative("/app/../etc"), None);
    }

    #[test]
    fn under_is_by_component() {
        assert!(under("app/staticfiles/x.css", "app/staticfiles"));
        assert!(under("app/staticfiles", "app/staticfiles"));
        assert!(!under("app/staticfiles2/x", "app/staticfiles"));
        assert!(under("app/staticfiles", "app"));
    }
}
