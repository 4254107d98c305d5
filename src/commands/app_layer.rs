//! The application layer (project files under the workdir, owned by the runtime user) and the
//! image settings that go with it.

use std::path::Path;

use anyhow::{Context, Result};
use layers::{EntryKind, FileSource, LayerEntry, LayerOptions, WrittenLayer};
use pyslip_plan::{BuildPlan, FileKind};

use crate::cache::Cache;
use pyslip_image::ImageSettings;

/// History line of the app layer.
pub const HISTORY: &str = "pyslip: COPY . /app";
/// HOME of the default unprivileged user (created in the app layer).
pub const DEFAULT_HOME: &str = "/home/app";

/// The runtime user as numeric ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeUser {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl RuntimeUser {
    /// Parse `root`, `UID` or `UID:GID` (the same rule the install crate applies to the files
    /// collectstatic writes, so every layer agrees on the owner).
    ///
    /// Names other than `root` would need the base image's /etc/passwd, which pyslip does not
    /// download just for this; numeric ids work in every image.
    pub fn parse(value: &str) -> Result<Self> {
        let (uid, gid) = pyslip_install::runtime_owner(value)?;
        Ok(Self { uid, gid })
    }

    fn is_root(self) -> bool {
        self.uid == 0
    }
}

/// The layer entries for the plan's shipped files under the workdir.
pub fn entries(dir: &Path, plan: &BuildPlan) -> Result<Vec<LayerEntry>> {
    let user = RuntimeUser::parse(&plan.user.value)?;
    let workdir = plan.workdir.trim_matches('/').to_owned();
    let owned = |path: String, kind: EntryKind, mode: u32| LayerEntry {
        path,
        kind,
        mode,
        uid: user.uid,
        gid: user.gid,
    };
    let mut entries = vec![owned(workdir.clone(), EntryKind::Dir, 0o755)];
    if !user.is_root() {
        entries.push(owned(
            DEFAULT_HOME.trim_start_matches('/').to_owned(),
            EntryKind::Dir,
            0o755,
        ));
    }
    for file in &plan.files.entries {
        let path = format!("{workdir}/{}", file.path);
        let entry = match &file.kind {
            FileKind::Dir => owned(path, EntryKind::Dir, 0o755),
            FileKind::File => {
                let mode = if file.executable { 0o755 } else { 0o644 };
                let source = FileSource::Path(dir.join(&file.path));
                owned(path, EntryKind::File(source), mode)
            }
            FileKind::Symlink { target } => owned(path, EntryKind::Symlink(target.clone()), 0o777),
        };
        entries.push(entry);
    }
    Ok(entries)
}

/// Write the app layer into the cache's blob store.
pub fn write(
    cache: &Cache,
    dir: &Path,
    plan: &BuildPlan,
    opts: &LayerOptions,
) -> Result<WrittenLayer> {
    let entries = entries(dir, plan)?;
    let (layer, _) = cache
        .write_layer(entries, opts)
        .with_context(|| format!("writing the app layer from {}", dir.display()))?;
    Ok(layer)
}

/// The config settings for the plan: env (HOME added for the unprivileged user), port, cmd, user.
pub fn settings(plan: &BuildPlan, created: String) -> Result<ImageSettings> {
    let user = RuntimeUser::parse(&plan.user.value)?;
    let mut env = plan.env.clone();
    if !user.is_root() && !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".to_owned(), DEFAULT_HOME.to_owned()));
    }
    let mut labels = plan.labels.clone();
    labels
        .entry("org.opencontainers.image.created".to_owned())
        .or_insert_with(|| created.clone());
    Ok(ImageSettings {
        env,
        port: plan.port.as_ref().map(|p| p.value),
        cmd: plan.cmd.value.clone(),
        workdir: plan.workdir.clone(),
        user: format!("{}:{}", user.uid, user.gid),
        labels,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::RuntimeUser;

    #[test]
    fn user_forms() {
        assert_eq!(
            RuntimeUser::parse("root").expect("root"),
            RuntimeUser { uid: 0, gid: 0 }
        );
        assert_eq!(
            RuntimeUser::parse("1000").expect("uid"),
            RuntimeUser {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(
            RuntimeUser::parse("1:2").expect("pair"),
            RuntimeUser { uid: 1, gid: 2 }
        );
        assert!(RuntimeUser::parse("www-data").is_err());
        assert!(RuntimeUser::parse("1:x").is_err());
    }
}
