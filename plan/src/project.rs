//! Read-only access to the project directory: only the few files detection needs are read.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::PlanError;

/// Files larger than this are not read (no detection input is legitimately this big).
const MAX_READ: u64 = 32 * 1024 * 1024;

/// The project directory.
#[derive(Debug)]
pub(crate) struct Project {
    root: PathBuf,
}

impl Project {
    /// Opens the project at `root`.
    pub(crate) fn open(root: &Path) -> Result<Self, PlanError> {
        if !root.is_dir() {
            return Err(PlanError::NotADirectory {
                path: root.to_path_buf(),
            });
        }
        Ok(Project {
            root: root.to_path_buf(),
        })
    }

    /// The project directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `rel` is a regular file (following symlinks).
    pub(crate) fn is_file(&self, rel: &str) -> bool {
        self.root.join(rel).is_file()
    }

    /// Whether `rel` is a directory (following symlinks).
    pub(crate) fn is_dir(&self, rel: &str) -> bool {
        self.root.join(rel).is_dir()
    }

    /// Reads `rel` as UTF-8 text; `None` when it is not a regular file.
    pub(crate) fn read(&self, rel: &str) -> Result<Option<String>, PlanError> {
        let path = self.root.join(rel);
        if !path.is_file() {
            return Ok(None);
        }
        let file = fs_err::File::open(&path).map_err(|source| PlanError::Read {
            path: path.clone(),
            source,
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_READ + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| PlanError::Read {
                path: path.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_READ {
            return Err(PlanError::malformed(
                rel,
                None,
                format!("file is larger than {} MiB", MAX_READ / 1024 / 1024),
                None,
            ));
        }
        decode(rel, bytes).map(Some)
    }

    /// The first `limit` bytes of `rel` as text (a multi-byte character cut at the end is
    /// dropped); `None` when it is not a regular file.
    pub(crate) fn read_head(&self, rel: &str, limit: u64) -> Result<Option<String>, PlanError> {
        let path = self.root.join(rel);
        if !path.is_file() {
            return Ok(None);
        }
        let read_err = |source| PlanError::Read {
            path: path.clone(),
            source,
        };
        let file = fs_err::File::open(&path).map_err(read_err)?;
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes).map_err(read_err)?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => {
                let valid = err.utf8_error().valid_up_to();
                let mut bytes = err.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).unwrap_or_default()
            }
        };
        Ok(Some(text.trim_start_matches('\u{feff}').to_owned()))
    }

    /// Sorted names of the top-level `.py` files, at most `limit` of them.
    pub(crate) fn top_level_python(&self, limit: usize) -> Result<Vec<String>, PlanError> {
        let entries = match fs_err::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(_) => return Ok(Vec::new()),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".py"))
            .collect();
        names.sort();
        names.truncate(limit);
        Ok(names)
    }

    /// Sorted names of the subdirectories of `rel` (not following symlinks, hidden ones skipped).
    pub(crate) fn subdirs(&self, rel: &str) -> Result<Vec<String>, PlanError> {
        let path = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        let entries = match fs_err::read_dir(&path) {
            Ok(entries) => entries,
            Err(_) => return Ok(Vec::new()),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| PlanError::Read {
                path: path.clone(),
                source,
            })?;
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if let (true, Some(name)) = (is_dir, entry.file_name().to_str())
                && !name.starts_with('.')
                && !matches!(name, "venv" | "__pycache__" | "node_modules")
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Decodes bytes as UTF-8 (a leading BOM is dropped).
pub(crate) fn decode(rel: &str, bytes: Vec<u8>) -> Result<String, PlanError> {
    let mut text = String::from_utf8(bytes).map_err(|err| {
        PlanError::malformed(
            rel,
            None,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                err.utf8_error().valid_up_to()
            ),
            None,
        )
    })?;
    if text.starts_with('\u{feff}') {
        text.remove(0);
    }
    Ok(text)
}
