//! Path dependencies: a package installed from a folder of the project (or of its uv workspace)
//! rather than from an index. Its files are listed like the app layer's, so the install can copy
//! exactly them and the cache key can hash them.

use std::path::Path;

use crate::error::PlanError;
use crate::files::{self, WalkOptions};
use crate::ignore;
use crate::model::LocalPackage;
use crate::project::Project;
use crate::workspace;

/// The path dependency `name` at `path` (as written in `file`, relative to `base`, which is
/// `base_rel` from the project). It must be a folder inside `base`.
pub(crate) fn package(
    file: &str,
    name: &str,
    path: &str,
    base: &Path,
    base_rel: &str,
) -> Result<LocalPackage, PlanError> {
    let refuse = |reason: &str| PlanError::PathDependency {
        file: file.to_owned(),
        name: name.to_owned(),
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let path = path.strip_prefix("file://").unwrap_or(path);
    let inside = workspace::normalise(Path::new(path))
        .ok_or_else(|| refuse("outside the folder the install can see"))?;
    let dir = base.join(&inside);
    if !dir.is_dir() {
        return Err(refuse(if dir.exists() {
            "a file; only folders are installed from a path"
        } else {
            "which does not exist"
        }));
    }
    let lib = Project::open(&dir)?;
    let dockerignore = match lib.read(".dockerignore")? {
        Some(text) => ignore::parse_dockerignore(".dockerignore", &text)?,
        None => Vec::new(),
    };
    let walked = files::walk(
        &dir,
        &WalkOptions {
            dockerignore,
            config_exclude: Vec::new(),
            outputs: &[],
        },
    )?;
    let rel = workspace::join(base_rel, &inside);
    Ok(LocalPackage {
        name: name.to_owned(),
        path: if rel.is_empty() { ".".to_owned() } else { rel },
        files: walked.files,
    })
}
