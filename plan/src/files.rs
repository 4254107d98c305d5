//! The files of the app layer: one walk of the project, stat only (contents are never read).

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use walkdir::WalkDir;

use crate::error::PlanError;
use crate::ignore::{self, Matcher, Pattern};
use crate::model::{FileKind, ShippedFile, ShippedFiles};

/// Directory names never shipped, at any depth.
const ALWAYS_EXCLUDED_DIRS: &[&str] = &[".git", ".venv", "venv", "__pycache__"];

/// Inputs of the walk.
#[derive(Debug)]
pub struct WalkOptions<'a> {
    /// Patterns from `.dockerignore`.
    pub dockerignore: Vec<Pattern>,
    /// Patterns from the configuration's `exclude`.
    pub config_exclude: Vec<Pattern>,
    /// Output paths of the build.
    pub outputs: &'a [PathBuf],
}

/// Result of the walk.
#[derive(Debug)]
pub struct Walked {
    /// The shipped files.
    pub files: ShippedFiles,
    /// Warnings (excluded `.env` files, symlinks leaving the project, skipped special files).
    pub warnings: Vec<String>,
}

/// Walks `root` once and returns what the app layer ships.
pub fn walk(root: &Path, options: &WalkOptions<'_>) -> Result<Walked, PlanError> {
    let env_defaults = ["**/.env", "**/.env.*"].map(|glob| Pattern {
        glob: glob.to_owned(),
        negated: false,
    });
    let mut patterns: Vec<Pattern> = env_defaults.to_vec();
    patterns.extend(options.dockerignore.iter().cloned());
    patterns.extend(options.config_exclude.iter().cloned());
    let matcher = Matcher::new(&patterns, ".dockerignore / exclude")?;
    let env_only = Matcher::new(&env_defaults, "defaults")?;
    let outputs = output_paths(root, options.outputs);
    let prune_excluded = !matcher.has_negations();

    let mut warnings = Vec::new();
    let mut entries = Vec::new();
    let mut excluded_env = Vec::new();
    let walker = WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .into_iter();
    let relative = |path: &Path| -> String {
        let rel = path.strip_prefix(root).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    };
    let walker = walker.filter_entry(|entry| {
        let rel = relative(entry.path());
        let is_dir = entry.file_type().is_dir();
        if is_dir
            && entry
                .file_name()
                .to_str()
                .is_some_and(|n| ALWAYS_EXCLUDED_DIRS.contains(&n))
        {
            return false;
        }
        if outputs.contains(&rel) {
            return false;
        }
        !(is_dir && prune_excluded && matcher.is_excluded(&rel))
    });
    for next in walker {
        let entry = next.map_err(|source| PlanError::Walk {
            path: root.to_path_buf(),
            source,
        })?;
        let rel = relative(entry.path());
        let file_type = entry.file_type();
        if rel.ends_with(".pyc") && !file_type.is_dir() {
            continue;
        }
        if matcher.is_excluded(&rel) {
            if env_only.is_excluded(&rel) && !file_type.is_dir() {
                excluded_env.push(rel);
            }
            continue;
        }
        if entry.file_name().to_str().is_none() {
            return Err(PlanError::malformed(
                &rel,
                None,
                "file name is not UTF-8",
                Some("rename it, or exclude it in .dockerignore"),
            ));
        }
        let metadata = entry.metadata().map_err(|source| PlanError::Walk {
            path: entry.path().to_path_buf(),
            source,
        })?;
        let executable = metadata.permissions().mode() & 0o111 != 0;
        let (kind, size) = if file_type.is_symlink() {
            let target = fs_err::read_link(entry.path()).map_err(|source| PlanError::Read {
                path: entry.path().to_path_buf(),
                source,
            })?;
            if leaves_root(&rel, &target) {
                warnings.push(format!(
                    "symlink {rel} points outside the project ({}); it is shipped as a link and will dangle unless the image provides the target",
                    target.display()
                ));
            }
            (
                FileKind::Symlink {
                    target: target.to_string_lossy().into_owned(),
                },
                0,
            )
        } else if file_type.is_dir() {
            (FileKind::Dir, 0)
        } else if file_type.is_file() {
            (FileKind::File, metadata.len())
        } else {
            warnings.push(format!(
                "{rel} is not a regular file, directory or symlink; not shipped"
            ));
            continue;
        };
        entries.push(ShippedFile {
            path: rel,
            kind,
            size,
            executable,
        });
    }
    if !excluded_env.is_empty() {
        warnings.push(format!(
            "not shipping {} (env files usually hold secrets); add \"!{}\" to `exclude` in [tool.pyslip] to ship it",
            excluded_env.join(", "),
            excluded_env.first().map_or(".env", String::as_str)
        ));
    }
    add_missing_parents(root, &mut entries)?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let total_size = entries.iter().map(|e| e.size).sum();
    Ok(Walked {
        files: ShippedFiles {
            count: entries.len(),
            total_size,
            entries,
        },
        warnings,
    })
}

/// Directories excluded themselves but holding re-included files still ship (as Docker does).
fn add_missing_parents(root: &Path, entries: &mut Vec<ShippedFile>) -> Result<(), PlanError> {
    let present: BTreeSet<String> = entries.iter().map(|e| e.path.clone()).collect();
    let mut missing = BTreeSet::new();
    for entry in entries.iter() {
        let mut path = entry.path.as_str();
        while let Some((parent, _)) = path.rsplit_once('/') {
            if !present.contains(parent) {
                missing.insert(parent.to_owned());
            }
            path = parent;
        }
    }
    for dir in missing {
        let metadata =
            fs_err::symlink_metadata(root.join(&dir)).map_err(|source| PlanError::Read {
                path: root.join(&dir),
                source,
            })?;
        let executable = metadata.permissions().mode() & 0o111 != 0;
        entries.push(ShippedFile {
            path: dir,
            kind: FileKind::Dir,
            size: 0,
            executable,
        });
    }
    Ok(())
}

/// The build's output paths that lie inside the project, relative and `/`-separated.
fn output_paths(root: &Path, outputs: &[PathBuf]) -> Vec<String> {
    let Ok(root) = fs_err::canonicalize(root) else {
        return Vec::new();
    };
    outputs
        .iter()
        .filter_map(|out| {
            let absolute = std::path::absolute(out).ok()?;
            let resolved = fs_err::canonicalize(&absolute).ok().or_else(|| {
                let parent = fs_err::canonicalize(absolute.parent()?).ok()?;
                Some(parent.join(absolute.file_name()?))
            })?;
            let rel = resolved.strip_prefix(&root).ok()?;
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            (!parts.is_empty()).then(|| parts.join("/"))
        })
        .collect()
}

/// Whether a link at `rel` with `target` resolves (lexically) outside the project.
fn leaves_root(rel: &str, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    // Depth of the link's directory below the root.
    let mut depth: i64 = rel.matches('/').count() as i64;
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return true,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Parses config `exclude` entries.
pub fn config_patterns(file: &str, exclude: &[String]) -> Result<Vec<Pattern>, PlanError> {
    let text = exclude.join("\n");
    ignore::parse_dockerignore(file, &text).map_err(|err| match err {
        PlanError::Malformed {
            reason, expected, ..
        } => PlanError::Malformed {
            file: file.to_owned(),
            line: None,
            reason: format!("exclude: {reason}"),
            expected,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_escape_is_lexical() {
        assert!(leaves_root("a", Path::new("/etc/passwd")));
        assert!(leaves_root("a", Path::new("../x")));
        assert!(!leaves_root("d/a", Path::new("../x")));
        assert!(leaves_root("d/a", Path::new("../../x")));
        assert!(!leaves_root("a", Path::new("b/../c")));
        assert!(leaves_root("a", Path::new("b/../../c")));
    }
}
