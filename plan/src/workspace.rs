//! uv workspaces: a project without its own `uv.lock` that is a member of a workspace above it
//! is installed from the workspace root's lock (`uv sync --locked --package <member>`).
//!
//! Found as uv finds it: walking up from the project to the first `pyproject.toml` with a
//! `[tool.uv.workspace]` table, whose `members` globs (minus `exclude`) match the project's
//! folder.

use std::path::{Component, Path, PathBuf};

use globset::GlobBuilder;

use crate::error::PlanError;
use crate::locks::UV_LOCK;
use crate::project::Project;
use crate::pyproject;

/// How far up the workspace root is looked for.
const MAX_DEPTH: usize = 16;

/// The workspace a project is a member of.
#[derive(Debug)]
pub(crate) struct FoundWorkspace {
    /// The workspace root.
    pub root: Project,
    /// The root relative to the project (`..`, `../..`).
    pub root_rel: String,
    /// The member's folder relative to the root, `/`-separated (`apps/api`).
    pub member_dir: String,
}

/// `a/b` joined with `c` as a `/` path (`.` parts dropped).
pub(crate) fn join(a: &str, b: &str) -> String {
    [a, b]
        .iter()
        .filter(|p| !p.is_empty() && **p != ".")
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

/// A relative path without `.`/`..` that stays inside its base, `/`-separated (`""` for the base).
pub(crate) fn normalise(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// The workspace `project` is a member of, when it has no `uv.lock` of its own.
pub(crate) fn find(project: &Project) -> Result<Option<FoundWorkspace>, PlanError> {
    if project.is_file(UV_LOCK) || !project.is_file(pyproject::FILE) {
        return Ok(None);
    }
    let Ok(start) = fs_err::canonicalize(project.root()) else {
        return Ok(None);
    };
    let mut dir: PathBuf = start.clone();
    for depth in 1..=MAX_DEPTH {
        let Some(parent) = dir.parent() else {
            return Ok(None);
        };
        dir = parent.to_path_buf();
        let candidate = Project::open(&dir)?;
        let Some(text) = candidate.read(pyproject::FILE)? else {
            continue;
        };
        let Some(workspace) = workspace_table(&text) else {
            continue;
        };
        let rel = start
            .strip_prefix(&dir)
            .ok()
            .and_then(normalise)
            .unwrap_or_default();
        if !is_member(&workspace, &rel) || !candidate.is_file(UV_LOCK) {
            return Ok(None);
        }
        return Ok(Some(FoundWorkspace {
            root: candidate,
            root_rel: vec![".."; depth].join("/"),
            member_dir: rel,
        }));
    }
    Ok(None)
}

/// `[tool.uv.workspace]` of a pyproject.toml, if it has one (a file that does not parse has none).
fn workspace_table(text: &str) -> Option<toml::Table> {
    let table: toml::Table = text.parse().ok()?;
    table
        .get("tool")?
        .get("uv")?
        .get("workspace")?
        .as_table()
        .cloned()
}

/// Whether `rel` matches a `members` glob and no `exclude` glob.
fn is_member(workspace: &toml::Table, rel: &str) -> bool {
    let matches = |key: &str| {
        workspace
            .get(key)
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_str)
            .filter_map(|g| {
                GlobBuilder::new(g.trim_end_matches('/'))
                    .literal_separator(true)
                    .build()
                    .ok()
            })
            .any(|g| g.compile_matcher().is_match(rel))
    };
    !rel.is_empty() && matches("members") && !matches("exclude")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_inside_their_base() {
        assert_eq!(
            normalise(Path::new("./libs/../libs/shared")).as_deref(),
            Some("libs/shared")
        );
        assert_eq!(normalise(Path::new("..")), None);
        assert_eq!(join("..", "libs/shared"), "../libs/shared");
        assert_eq!(join("..", "."), "..");
        assert_eq!(join("", "lib"), "lib");
    }

    #[test]
    fn members_and_excludes_are_globs() {
        let ws: toml::Table =
            "members = [\"apps/*\", \"libs/shared\"]\nexclude = [\"apps/legacy\"]\n"
                .parse()
                .expect("toml");
        assert!(is_member(&ws, "apps/api"));
        assert!(is_member(&ws, "libs/shared"));
        assert!(!is_member(&ws, "apps/legacy"));
        assert!(!is_member(&ws, "tools/x"));
        assert!(
            !is_member(&ws, "apps/api/sub"),
            "`*` stays within one folder"
        );
    }
}
