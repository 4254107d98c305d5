//! Installed files put right before they become a layer:
//! - [`apply`]: what an install run outside the image writes differently from one inside it —
//!   the interpreter path in console-script shebangs, the project source location in PEP 610
//!   `direct_url.json` — and the hashes and sizes of those files in their `RECORD`; after this
//!   the staging tree holds exactly the bytes an install inside the image writes;
//! - [`drop_volatile`]: files that record when the build ran (uv's `uv_cache.json` holds the
//!   ctime of a local source directory), removed with their `RECORD` line, in every install.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use base64::Engine as _;
use layers::{EntryKind, LayerEntry};
use sha2::{Digest as _, Sha256};

use crate::error::InstallError;

/// Textual replacements: staging paths → image paths.
#[derive(Debug, Clone)]
pub(crate) struct Rewrites {
    /// `#!<staging interpreter>` first lines → `#!<image interpreter>`.
    pub shebangs: Vec<(String, String)>,
    /// `file://<staging dir>` → `file://<image dir>` in `direct_url.json`.
    pub urls: Vec<(String, String)>,
}

fn cache_err(e: std::io::Error) -> InstallError {
    InstallError::Cache(e)
}

/// Rewrites the changed files of `entries` under `tree` (paths root-relative) and the `RECORD`
/// lines of every file it rewrote. Returns the rewritten paths.
pub(crate) fn apply(
    tree: &Path,
    entries: &[LayerEntry],
    rewrites: &Rewrites,
) -> Result<Vec<String>, InstallError> {
    let mut changed: HashMap<String, Vec<u8>> = HashMap::new();
    for e in entries {
        if !matches!(e.kind, EntryKind::File(_)) {
            continue;
        }
        let host = tree.join(&e.path);
        let new = if e.path.ends_with(".dist-info/direct_url.json") {
            let text = fs_err::read_to_string(&host).map_err(cache_err)?;
            let mut out = text.clone();
            for (from, to) in &rewrites.urls {
                out = out.replace(from.as_str(), to);
            }
            (out != text).then(|| out.into_bytes())
        } else {
            rewrite_shebang(&host, &rewrites.shebangs)?
        };
        if let Some(bytes) = new {
            fs_err::write(&host, &bytes).map_err(cache_err)?;
            changed.insert(e.path.clone(), bytes);
        }
    }
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let changed: HashMap<String, Option<Vec<u8>>> =
        changed.into_iter().map(|(k, v)| (k, Some(v))).collect();
    fix_records(tree, entries, &changed)?;
    let mut paths: Vec<String> = changed.into_keys().collect();
    paths.sort();
    Ok(paths)
}

/// Installer bookkeeping that records the time of the build, not the package.
const VOLATILE: &[&str] = &[".dist-info/uv_cache.json"];

/// Removes the [`VOLATILE`] files among `entries` (under `dir`: the overlay upper dir or the
/// staging tree) and their `RECORD` lines.
pub(crate) fn drop_volatile(dir: &Path, entries: &[LayerEntry]) -> Result<(), InstallError> {
    let mut removed: HashMap<String, Option<Vec<u8>>> = HashMap::new();
    for e in entries {
        if matches!(e.kind, EntryKind::File(_)) && VOLATILE.iter().any(|v| e.path.ends_with(v)) {
            fs_err::remove_file(dir.join(&e.path)).map_err(cache_err)?;
            removed.insert(e.path.clone(), None);
        }
    }
    if removed.is_empty() {
        return Ok(());
    }
    fix_records(dir, entries, &removed)
}

/// Applies `changed` (path → new bytes, or `None`: removed) to every `RECORD` among `entries`.
fn fix_records(
    dir: &Path,
    entries: &[LayerEntry],
    changed: &HashMap<String, Option<Vec<u8>>>,
) -> Result<(), InstallError> {
    for e in entries {
        if e.path.ends_with(".dist-info/RECORD") && matches!(e.kind, EntryKind::File(_)) {
            fix_record(dir, &e.path, changed)?;
        }
    }
    Ok(())
}

/// The file with its first line's interpreter replaced, when it starts with one of `shebangs`.
fn rewrite_shebang(
    host: &Path,
    shebangs: &[(String, String)],
) -> Result<Option<Vec<u8>>, InstallError> {
    let mut head = [0u8; 512];
    let n = {
        use std::io::Read as _;
        let mut f = fs_err::File::open(host).map_err(cache_err)?;
        f.read(&mut head).map_err(cache_err)?
    };
    let head = head.get(..n).unwrap_or_default();
    if !head.starts_with(b"#!") {
        return Ok(None);
    }
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let first = String::from_utf8_lossy(head.get(..line_end).unwrap_or_default()).into_owned();
    for (from, to) in shebangs {
        // The interpreter, optionally followed by arguments (` -E`).
        let rest = first.strip_prefix(from.as_str());
        if let Some(rest) = rest
            && (rest.is_empty() || rest.starts_with(' '))
        {
            let body = fs_err::read(host).map_err(cache_err)?;
            let mut out = format!("{to}{rest}").into_bytes();
            out.extend_from_slice(body.get(line_end..).unwrap_or_default());
            return Ok(Some(out));
        }
    }
    Ok(None)
}

/// Lexically normalises `a/b/../c` (no `..` may climb above the start).
fn normalise(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

/// Updates the hash and size of every line of the `RECORD` at `record` (root-relative) that
/// names a file in `changed` (drops the line of a removed one), keeping every other byte.
fn fix_record(
    tree: &Path,
    record: &str,
    changed: &HashMap<String, Option<Vec<u8>>>,
) -> Result<(), InstallError> {
    // Paths in RECORD are relative to the directory holding the .dist-info directory.
    let Some(site) = record
        .rsplit_once('/')
        .and_then(|(dist_info, _)| dist_info.rsplit_once('/'))
        .map(|(site, _)| site)
    else {
        return Ok(());
    };
    let host = tree.join(record);
    let text = fs_err::read_to_string(&host).map_err(cache_err)?;
    let mut updates: BTreeMap<usize, Option<String>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        // `path,hash,size`; the path may be quoted and hold commas, the last two fields do not.
        let mut fields = line.rsplitn(3, ',');
        let (Some(_size), Some(hash), Some(path)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let unquoted = path
            .strip_prefix('"')
            .and_then(|p| p.strip_suffix('"'))
            .map(|p| p.replace("\"\"", "\""))
            .unwrap_or_else(|| path.to_owned());
        let Some(target) = normalise(&format!("{site}/{unquoted}")) else {
            continue;
        };
        let Some(new) = changed.get(&target) else {
            continue;
        };
        let Some(bytes) = new else {
            updates.insert(i, None);
            continue;
        };
        if hash.is_empty() {
            continue;
        }
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes));
        updates.insert(i, Some(format!("{path},sha256={digest},{}", bytes.len())));
    }
    if updates.is_empty() {
        return Ok(());
    }
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        match updates.get(&i) {
            Some(None) => {}
            Some(Some(new)) => {
                out.push_str(new);
                if line.ends_with("\r\n") {
                    out.push_str("\r\n");
                } else if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    fs_err::write(&host, out).map_err(cache_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use layers::FileSource;

    fn file(path: &str) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind: EntryKind::File(FileSource::Bytes(Vec::new())),
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn shebangs_urls_and_records_come_out_as_inside_the_image() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path();
        let site = tree.join("usr/local/lib/python3.13/site-packages");
        fs_err::create_dir_all(site.join("flask-3.1.0.dist-info")).unwrap();
        fs_err::create_dir_all(tree.join("usr/local/bin")).unwrap();
        let stage_py = format!("#!{}/usr/local/bin/python3", tree.display());
        let script = format!("{stage_py}\nimport sys\n");
        fs_err::write(tree.join("usr/local/bin/flask"), &script).unwrap();
        fs_err::write(tree.join("usr/local/bin/other"), "#!/bin/sh\necho\n").unwrap();
        fs_err::write(
            site.join("flask-3.1.0.dist-info/direct_url.json"),
            "{\"url\":\"file:///stage/work/src\",\"dir_info\":{}}",
        )
        .unwrap();
        fs_err::write(
            site.join("flask-3.1.0.dist-info/RECORD"),
            "../../../bin/flask,sha256=old,99\nflask-3.1.0.dist-info/direct_url.json,sha256=old,1\nflask/__init__.py,sha256=keep,5\nflask-3.1.0.dist-info/RECORD,,\n",
        )
        .unwrap();
        let entries = vec![
            file("usr/local/bin/flask"),
            file("usr/local/bin/other"),
            file("usr/local/lib/python3.13/site-packages/flask-3.1.0.dist-info/direct_url.json"),
            file("usr/local/lib/python3.13/site-packages/flask-3.1.0.dist-info/RECORD"),
        ];
        let rewrites = Rewrites {
            shebangs: vec![(stage_py.clone(), "#!/usr/local/bin/python3".into())],
            urls: vec![("file:///stage/work".into(), "file:///.pyslip/work".into())],
        };
        let changed = apply(tree, &entries, &rewrites).unwrap();
        assert_eq!(changed.len(), 2);
        let flask = "#!/usr/local/bin/python3\nimport sys\n";
        assert_eq!(
            fs_err::read_to_string(tree.join("usr/local/bin/flask")).unwrap(),
            flask
        );
        assert_eq!(
            fs_err::read_to_string(tree.join("usr/local/bin/other")).unwrap(),
            "#!/bin/sh\necho\n"
        );
        let url = "{\"url\":\"file:///.pyslip/work/src\",\"dir_info\":{}}";
        let b64 = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(s.as_bytes()))
        };
        assert_eq!(
            fs_err::read_to_string(site.join("flask-3.1.0.dist-info/RECORD")).unwrap(),
            format!(
                "../../../bin/flask,sha256={},{}\nflask-3.1.0.dist-info/direct_url.json,sha256={},{}\nflask/__init__.py,sha256=keep,5\nflask-3.1.0.dist-info/RECORD,,\n",
                b64(flask),
                flask.len(),
                b64(url),
                url.len()
            )
        );
    }

    #[test]
    fn record_paths_normalise_without_climbing_out() {
        assert_eq!(normalise("a/b/../../c").as_deref(), Some("c"));
        assert_eq!(normalise("a/../../c"), None);
    }
}
