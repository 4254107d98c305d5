//! The dependency layer's cache key: a sha256 over everything that can change the layer's bytes.

use std::io::Read;

use pyslip_plan::{FileKind, Installer, PackageManager};
use sha2::{Digest as _, Sha256};

use crate::env::PassThrough;
use crate::error::InstallError;
use crate::request::{DepsLayer, DepsRequest};
use crate::uv::UV_VERSION;

/// Version of the key scheme (and of the layer recipe): bump it when the install steps, the
/// filter or anything else that shapes the layer changes.
pub const KEY_SCHEME: &str = "pyslip-deps-v3";

/// Version of the project layer's key scheme.
pub const PROJECT_KEY_SCHEME: &str = "pyslip-project-v2";

/// Feeds length-prefixed fields into the hash, so that no two field lists collide.
pub(crate) struct KeyHasher(Sha256);

impl KeyHasher {
    /// A hasher that starts with the key scheme and the layer byte format (tar and gzip
    /// settings), so that a cached layer is only reused by a pyslip that would write the same bytes.
    pub fn new(scheme: &str) -> Self {
        let mut h = KeyHasher(Sha256::new());
        h.field("scheme", scheme.as_bytes());
        h.field("layer-format", layers::LAYER_FORMAT.as_bytes());
        h
    }

    /// The key: hex sha256 of every field fed so far.
    pub fn finish(self) -> String {
        format!("{:x}", self.0.finalize())
    }

    /// Feeds every shipped entry of the project: paths, kinds, modes' execute bit and content.
    pub fn shipped(
        &mut self,
        project_dir: &std::path::Path,
        files: &pyslip_plan::ShippedFiles,
    ) -> Result<(), InstallError> {
        for f in &files.entries {
            match &f.kind {
                FileKind::File => self.file(
                    &format!("file:{}:{}", f.path, f.executable),
                    &project_dir.join(&f.path),
                )?,
                FileKind::Dir => self.field(&format!("dir:{}", f.path), b""),
                FileKind::Symlink { target } => {
                    self.field(&format!("link:{}", f.path), target.as_bytes())
                }
            }
        }
        Ok(())
    }

    pub fn field(&mut self, name: &str, value: &[u8]) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }

    pub fn file(&mut self, name: &str, path: &std::path::Path) -> Result<(), InstallError> {
        let read_err = |source| InstallError::ReadInput {
            path: path.to_owned(),
            source,
        };
        let mut file = fs_err::File::open(path).map_err(read_err)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
        self.field(name, &hasher.finalize());
        Ok(())
    }
}

/// The cache key of the dependency layer `req` describes (hex sha256). It reads the project's
/// install inputs (and, when the project itself is installed in the same step because its
/// dependencies are only known to its build backend, every shipped file) but writes nothing and
/// touches no network. Credentials never enter it: index URLs are keyed with their
/// user info stripped, secret-named variables and proxies not at all.
pub fn cache_key(req: &DepsRequest) -> Result<String, InstallError> {
    let install = req.plan.install.as_ref().ok_or(InstallError::NoInstall)?;
    let mut h = KeyHasher::new(KEY_SCHEME);
    h.field("base", req.base_digest.to_string().as_bytes());
    h.field("platform", req.platform.as_bytes());
    h.field("python", req.plan.python.value.as_bytes());
    h.field("mtime", req.mtime.to_string().as_bytes());
    let manager = serde_json::to_string(&install.manager).unwrap_or_default();
    h.field("manager", manager.as_bytes());
    let installer = match install.installer {
        Installer::Uv => "uv",
        Installer::Pip => "pip (the image's)",
    };
    h.field("installer", installer.as_bytes());
    // uv also runs for pip installs of a uv.lock (the export step).
    if install.installer == Installer::Uv || install.manager == PackageManager::UvLock {
        match req.uv_override {
            Some(path) => h.file("uv-binary", path)?,
            None => h.field("uv-version", UV_VERSION.as_bytes()),
        }
    }
    h.field("install-project", &[u8::from(install.install_project)]);
    if let Some(config) = crate::steps::uv_config(req.project_dir)? {
        h.field("uv-config", config.as_bytes());
    }
    for input in &install.inputs {
        h.file(&format!("input:{input}"), &req.project_dir.join(input))?;
    }
    if let Some(ws) = &install.workspace {
        h.field(
            "workspace",
            serde_json::to_string(ws).unwrap_or_default().as_bytes(),
        );
    }
    for local in &install.local {
        h.field("local", local.name.as_bytes());
    }
    let split = crate::steps::split_project(install, req.project_dir)?;
    h.field("project-layer", &[u8::from(split)]);
    if install.install_project && !split {
        // The project's own package is built from its files, here: all of them shape the layer.
        h.shipped(req.project_dir, &req.plan.files)?;
    }
    for (k, v) in PassThrough::from_host(&req.host_env).keyed() {
        h.field(&format!("env:{k}"), v.as_bytes());
    }
    Ok(h.finish())
}

/// The cache key of the project layer (hex sha256): the dependency layer below it, base,
/// platform, Python, installer, index settings (without credentials) and every shipped file.
pub fn project_key(req: &DepsRequest, deps: &DepsLayer) -> Result<String, InstallError> {
    let install = req.plan.install.as_ref().ok_or(InstallError::NoInstall)?;
    let mut h = KeyHasher::new(PROJECT_KEY_SCHEME);
    h.field("deps", deps.layer.diff_id.to_string().as_bytes());
    h.field("base", req.base_digest.to_string().as_bytes());
    h.field("platform", req.platform.as_bytes());
    h.field("python", req.plan.python.value.as_bytes());
    h.field("mtime", req.mtime.to_string().as_bytes());
    match install.installer {
        Installer::Uv => match req.uv_override {
            Some(path) => h.file("uv-binary", path)?,
            None => h.field("uv-version", UV_VERSION.as_bytes()),
        },
        Installer::Pip => h.field("installer", b"pip (the image's)"),
    }
    for (k, v) in PassThrough::from_host(&req.host_env).keyed() {
        h.field(&format!("env:{k}"), v.as_bytes());
    }
    if let Some(config) = crate::steps::uv_config(req.project_dir)? {
        h.field("uv-config", config.as_bytes());
    }
    if install.install_project {
        h.shipped(req.project_dir, &req.plan.files)?;
    }
    for local in &install.local {
        h.field("local", local.path.as_bytes());
        h.shipped(&req.project_dir.join(&local.path), &local.files)?;
    }
    Ok(h.finish())
}
