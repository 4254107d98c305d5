//! The files a lock pins, with their sha256: which wheel or sdist each installed distribution
//! came from, when the lock says so.
//!
//! The plan crate reads these locks to learn *which* packages are installed; its parsers return
//! names only. File names and hashes are read here, from the same files the install read.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::SbomError;
use crate::python::normalize;

/// A file a lock allows for one package version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedFile {
    /// File name (`flask-3.1.3-py3-none-any.whl`), when the lock names it.
    pub filename: Option<String>,
    /// Where the lock says it is downloaded from.
    pub url: Option<String>,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// Which lock (or hashed requirements files) the install used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockSource {
    /// `uv.lock`.
    UvLock(std::path::PathBuf),
    /// `poetry.lock`.
    PoetryLock(std::path::PathBuf),
    /// `Pipfile.lock`.
    PipfileLock(std::path::PathBuf),
    /// requirements files (`--hash=` options).
    Requirements(Vec<std::path::PathBuf>),
}

/// Locked files per (PEP 503 name, version), and the lock they came from.
#[derive(Debug, Clone, Default)]
pub struct LockedFiles {
    /// The lock file names, for the documents (`uv.lock`).
    pub sources: Vec<String>,
    files: BTreeMap<(String, String), Vec<LockedFile>>,
}

impl LockedFiles {
    /// The files allowed for `name` (normalised) at `version`.
    pub fn get(&self, name: &str, version: &str) -> &[LockedFile] {
        self.files
            .get(&(name.to_owned(), version.to_owned()))
            .or_else(|| {
                // `1.0` and `1.0.0` are the same version; compare as PEP 440 versions.
                let wanted = version.parse::<pep440_rs::Version>().ok()?;
                self.files.iter().find_map(|((n, v), files)| {
                    (n == name && v.parse::<pep440_rs::Version>().ok()? == wanted).then_some(files)
                })
            })
            .map_or(&[], Vec::as_slice)
    }

    fn add(&mut self, name: &str, version: &str, file: LockedFile) {
        let version = version.trim().trim_start_matches("==").to_owned();
        let list = self.files.entry((normalize(name), version)).or_default();
        if !list.contains(&file) {
            list.push(file);
        }
    }

    /// Read the lock the install used.
    pub fn read(source: &LockSource) -> Result<Self, SbomError> {
        let mut out = Self::default();
        match source {
            LockSource::UvLock(path) => out.read_uv(path)?,
            LockSource::PoetryLock(path) => out.read_poetry(path)?,
            LockSource::PipfileLock(path) => out.read_pipfile(path)?,
            LockSource::Requirements(paths) => {
                for path in paths {
                    out.read_requirements(path)?;
                }
            }
        }
        Ok(out)
    }

    fn note(&mut self, path: &Path) {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.sources.push(name);
    }

    fn read_uv(&mut self, path: &Path) -> Result<(), SbomError> {
        #[derive(Deserialize)]
        struct Lock {
            #[serde(default)]
            package: Vec<Package>,
        }
        #[derive(Deserialize)]
        struct Package {
            name: String,
            version: Option<String>,
            sdist: Option<Artifact>,
            #[serde(default)]
            wheels: Vec<Artifact>,
        }
        #[derive(Deserialize)]
        struct Artifact {
            url: Option<String>,
            path: Option<String>,
            hash: Option<String>,
        }
        let lock: Lock = read_toml(path)?;
        self.note(path);
        for p in lock.package {
            let Some(version) = &p.version else { continue };
            for a in p.sdist.iter().chain(&p.wheels) {
                let Some(sha256) = a.hash.as_deref().and_then(sha256_of) else {
                    continue;
                };
                let location = a.url.as_deref().or(a.path.as_deref());
                let filename = location.and_then(last_segment);
                let url = a.url.clone();
                self.add(
                    &p.name,
                    version,
                    LockedFile {
                        filename,
                        url,
                        sha256,
                    },
                );
            }
        }
        Ok(())
    }

    fn read_poetry(&mut self, path: &Path) -> Result<(), SbomError> {
        #[derive(Deserialize)]
        struct Lock {
            #[serde(default)]
            package: Vec<Package>,
        }
        #[derive(Deserialize)]
        struct Package {
            name: String,
            version: String,
            #[serde(default)]
            files: Vec<File>,
        }
        #[derive(Deserialize)]
        struct File {
            file: String,
            hash: String,
        }
        let lock: Lock = read_toml(path)?;
        self.note(path);
        for p in lock.package {
            for f in &p.files {
                if let Some(sha256) = sha256_of(&f.hash) {
                    let file = LockedFile {
                        filename: Some(f.file.clone()),
                        url: None,
                        sha256,
                    };
                    self.add(&p.name, &p.version, file);
                }
            }
        }
        Ok(())
    }

    fn read_pipfile(&mut self, path: &Path) -> Result<(), SbomError> {
        let text = fs_err::read_to_string(path).map_err(SbomError::Io)?;
        let lock: serde_json::Value = serde_json::from_str(&text).map_err(|e| SbomError::Lock {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        self.note(path);
        // Only `default` is installed (`pipenv install --deploy` without `--dev`).
        let Some(default) = lock["default"].as_object() else {
            return Ok(());
        };
        for (name, entry) in default {
            let Some(version) = entry["version"].as_str() else {
                continue;
            };
            for hash in entry["hashes"].as_array().into_iter().flatten() {
                if let Some(sha256) = hash.as_str().and_then(sha256_of) {
                    let file = LockedFile {
                        filename: None,
                        url: None,
                        sha256,
                    };
                    self.add(name, version, file);
                }
            }
        }
        Ok(())
    }

    fn read_requirements(&mut self, path: &Path) -> Result<(), SbomError> {
        let text = fs_err::read_to_string(path).map_err(SbomError::Io)?;
        let mut any = false;
        for line in logical_lines(&text) {
            let mut words = line.split_whitespace();
            let Some(first) = words.next().filter(|w| !w.starts_with('-')) else {
                continue;
            };
            let Some((name, version)) = pinned(first) else {
                continue;
            };
            for word in words {
                if let Some(sha256) = word.strip_prefix("--hash=").and_then(sha256_of) {
                    any = true;
                    let file = LockedFile {
                        filename: None,
                        url: None,
                        sha256,
                    };
                    self.add(&name, &version, file);
                }
            }
        }
        if any {
            self.note(path);
        }
        Ok(())
    }
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SbomError> {
    let text = fs_err::read_to_string(path).map_err(SbomError::Io)?;
    toml::from_str(&text).map_err(|e| SbomError::Lock {
        path: path.to_owned(),
        reason: e.message().to_owned(),
    })
}

/// `sha256:<64 hex>` → the hex, lowercased; other algorithms → `None`.
fn sha256_of(text: &str) -> Option<String> {
    let hex = text.trim().strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_lowercase())
}

/// The last path segment of a URL or path, percent-decoded where it is plain ASCII.
fn last_segment(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next()?;
    let name = path.rsplit('/').next().filter(|n| !n.is_empty())?;
    Some(name.replace("%2B", "+").replace("%2b", "+"))
}

/// `Flask==3.1.3`, `flask[async] == 3.1.3 ; python_version > "3"` (first word only) → name and
/// version; anything that is not an exact pin → `None`.
fn pinned(requirement: &str) -> Option<(String, String)> {
    let (head, version) = requirement.split_once("==")?;
    let name = head.split('[').next()?.trim();
    let version = version.split(';').next()?.trim();
    (!name.is_empty() && !version.is_empty() && !version.starts_with('='))
        .then(|| (name.to_owned(), version.to_owned()))
}

/// Requirements-file lines with `\` continuations joined and comments removed.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        match raw.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(raw);
                lines.push(strip_comment(&current).trim().to_owned());
                current.clear();
            }
        }
    }
    lines.push(strip_comment(&current).trim().to_owned());
    lines.retain(|l| !l.is_empty());
    lines
}

/// pip: a comment starts at `#` at the start of a line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let at = (0..bytes.len()).find(|&i| {
        bytes.get(i) == Some(&b'#')
            && (i == 0 || bytes.get(i - 1).is_some_and(u8::is_ascii_whitespace))
    });
    at.and_then(|i| line.get(..i)).unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "sha256:6bc31bbbec6dfaaedc1676dbc11dbda96fe22a2b5c400e9ebad113fec44a9dc6";
    const H2: &str = "sha256:0a30ef8f5322a4173720ae6712dc9a5e58f5a19868f3f167b4b5778db066c2b5";

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        fs_err::write(&path, text).unwrap();
        path
    }

    #[test]
    fn uv_lock_files_with_names() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "version = 1\n[[package]]\nname = \"Annotated_Doc\"\nversion = \"0.0.7\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\n\
sdist = {{ url = \"https://files.example/annotated_doc-0.0.7.tar.gz\", hash = \"{H2}\" }}\n\
wheels = [{{ url = \"https://files.example/annotated_doc-0.0.7-py3-none-any.whl\", hash = \"{H1}\" }}]\n\
[[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = {{ editable = \".\" }}\n"
        );
        let locked =
            LockedFiles::read(&LockSource::UvLock(write(dir.path(), "uv.lock", &text))).unwrap();
        let files = locked.get("annotated-doc", "0.0.7");
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[1].filename.as_deref(),
            Some("annotated_doc-0.0.7-py3-none-any.whl")
        );
        assert_eq!(files[1].sha256, H1.trim_start_matches("sha256:"));
        assert!(locked.get("app", "0.1.0").is_empty());
        assert_eq!(locked.sources, vec!["uv.lock"]);
    }

    #[test]
    fn poetry_pipfile_and_requirements() {
        let dir = tempfile::tempdir().unwrap();
        let poetry = format!(
            "[[package]]\nname = \"click\"\nversion = \"8.1\"\nfiles = [{{file = \"click-8.1-py3-none-any.whl\", hash = \"{H1}\"}}]\n"
        );
        let locked = LockedFiles::read(&LockSource::PoetryLock(write(
            dir.path(),
            "poetry.lock",
            &poetry,
        )))
        .unwrap();
        assert_eq!(locked.get("click", "8.1.0").len(), 1, "8.1 == 8.1.0");
        let pipfile = format!(
            "{{\"default\": {{\"Click\": {{\"version\": \"==8.1\", \"hashes\": [\"{H1}\", \"{H2}\"]}}}}, \"develop\": {{\"pytest\": {{\"version\": \"==8\", \"hashes\": [\"{H1}\"]}}}}}}"
        );
        let locked = LockedFiles::read(&LockSource::PipfileLock(write(
            dir.path(),
            "Pipfile.lock",
            &pipfile,
        )))
        .unwrap();
        assert_eq!(locked.get("click", "8.1").len(), 2);
        assert!(
            locked.get("pytest", "8").is_empty(),
            "develop is not installed"
        );
        let reqs = format!(
            "# pins\nflask==3.1.3 \\\n    --hash={H1} \\\n    --hash={H2}  # two files\nrequests>=2 --hash={H1}\n-r other.txt\n"
        );
        let path = write(dir.path(), "requirements.txt", &reqs);
        let locked = LockedFiles::read(&LockSource::Requirements(vec![path])).unwrap();
        assert_eq!(locked.get("flask", "3.1.3").len(), 2);
        assert!(locked.get("requests", "2").is_empty());
    }

    #[test]
    fn malformed_lock_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "uv.lock", "[[package]\n");
        let err = LockedFiles::read(&LockSource::UvLock(path)).unwrap_err();
        assert!(err.to_string().contains("uv.lock"), "{err}");
    }
}
