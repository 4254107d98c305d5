//! The SBOM's content, independent of the document format: the image, its layers, the project,
//! and every package with its purl, license, layer and file hash.

use layers::Digest;
use packageurl::PackageUrl;

use crate::contents::{ImageContents, LayerInfo};
use crate::license::DeclaredLicense;
use crate::locks::{LockedFile, LockedFiles};
use crate::python::{PythonDist, normalize};

/// The image the document describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSubject {
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest size in bytes.
    pub size: u64,
    /// Manifest media type.
    pub media_type: String,
    /// `linux/amd64`.
    pub platform: String,
}

/// The project the image was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectInfo {
    /// Its name (pyproject's, else the directory's).
    pub name: String,
    /// Its version, when it declares one statically.
    pub version: Option<String>,
}

/// What kind of package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PackageKind {
    /// A Python distribution (`pkg:pypi`).
    Python,
    /// A Debian package (`pkg:deb`).
    Deb,
}

/// One package of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Python or Debian.
    pub kind: PackageKind,
    /// Name as its metadata spells it.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// The package URL.
    pub purl: String,
    /// The declared license (`None`: NOASSERTION). Debian packages: always `None`.
    pub license: Option<String>,
    /// Index of the layer holding it.
    pub layer: usize,
    /// The file it was installed from, when a lock pins exactly one.
    pub file: Option<LockedFile>,
    /// Where its metadata lives in the image (Python), or its source package (Debian).
    pub detail: Option<String>,
}

/// The described project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPackage {
    /// Name.
    pub name: String,
    /// Version, when known (its installed metadata, else pyproject).
    pub version: Option<String>,
    /// Declared license of its installed metadata.
    pub license: Option<String>,
    /// Layers holding it: the app layer, and the layer its own package was installed in.
    pub layers: Vec<usize>,
}

/// Everything a document says.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The image.
    pub image: ImageSubject,
    /// Its layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// The project.
    pub project: ProjectPackage,
    /// Python packages (pyslip's and the base's non-Debian ones), then Debian packages; sorted.
    pub packages: Vec<Package>,
    /// `PRETTY_NAME` of the base's distribution.
    pub distro: Option<String>,
    /// Locks that gave file hashes.
    pub lock_sources: Vec<String>,
    /// Document creation time (RFC 3339).
    pub created: String,
    /// `pyslip-<version>`.
    pub tool: String,
    /// `LicenseRef-…` identifiers used by package licenses.
    pub license_refs: Vec<String>,
}

/// The inputs of an SBOM, all of which the build already has.
#[derive(Debug, Clone, Copy)]
pub struct SbomInput<'a> {
    /// The image.
    pub image: &'a ImageSubject,
    /// The project.
    pub project: &'a ProjectInfo,
    /// The image's contents.
    pub contents: &'a ImageContents,
    /// Files the lock pins.
    pub locked: &'a LockedFiles,
    /// `SOURCE_DATE_EPOCH` (or the epoch) as RFC 3339.
    pub created: &'a str,
    /// The tool, `pyslip-0.1.0`.
    pub tool: &'a str,
}

/// The `pkg:pypi` purl (name PEP 503-normalised).
pub fn pypi_purl(name: &str, version: &str) -> String {
    PackageUrl::new("pypi", normalize(name))
        .and_then(|mut p| p.with_version(version.to_owned()).map(|p| p.to_string()))
        .unwrap_or_else(|_| format!("pkg:pypi/{}@{version}", normalize(name)))
}

/// The `pkg:deb` purl with `arch` and `distro` qualifiers.
pub fn deb_purl(
    namespace: &str,
    name: &str,
    version: &str,
    arch: &str,
    distro: Option<&str>,
) -> String {
    let built = PackageUrl::new("deb", name.to_owned()).and_then(|mut p| {
        p.with_namespace(namespace.to_owned())?
            .with_version(version.to_owned())?
            .add_qualifier("arch", arch.to_owned())?;
        if let Some(distro) = distro {
            p.add_qualifier("distro", distro.to_owned())?;
        }
        Ok(p.to_string())
    });
    built.unwrap_or_else(|_| format!("pkg:deb/{namespace}/{name}@{version}?arch={arch}"))
}

/// The one locked file this distribution was installed from, if the lock says which: the only
/// file of its version, else the wheel whose tags are the installed `WHEEL` tags, else (built
/// from source) the only sdist.
fn installed_file(dist: &PythonDist, locked: &LockedFiles) -> Option<LockedFile> {
    let files = locked.get(&dist.normalized, &dist.version);
    if let [only] = files {
        return Some(only.clone());
    }
    let wheels: Vec<&LockedFile> = files
        .iter()
        .filter(|f| {
            f.filename
                .as_deref()
                .and_then(wheel_filename_tags)
                .is_some_and(|tags| !tags.is_empty() && tags == dist.wheel_tags)
        })
        .collect();
    if let [only] = wheels.as_slice() {
        return Some((*only).clone());
    }
    let sdists: Vec<&LockedFile> = files
        .iter()
        .filter(|f| f.filename.as_deref().is_some_and(|n| !n.ends_with(".whl")))
        .collect();
    match (wheels.is_empty(), sdists.as_slice()) {
        (true, [only]) if files.iter().all(|f| f.filename.is_some()) => Some((*only).clone()),
        _ => None,
    }
}

/// The expanded tag set of a wheel file name: `x-1.0-py2.py3-none-any.whl` →
/// {`py2-none-any`, `py3-none-any`}.
pub fn wheel_filename_tags(filename: &str) -> Option<std::collections::BTreeSet<String>> {
    let stem = filename.strip_suffix(".whl")?;
    let parts: Vec<&str> = stem.split('-').collect();
    let [.., py, abi, plat] = parts.as_slice() else {
        return None;
    };
    if parts.len() < 5 {
        return None;
    }
    let mut tags = std::collections::BTreeSet::new();
    for p in py.split('.') {
        for a in abi.split('.') {
            for pl in plat.split('.') {
                tags.insert(format!("{p}-{a}-{pl}"));
            }
        }
    }
    Some(tags)
}

fn license_of(license: &DeclaredLicense) -> Option<String> {
    license.expression.clone()
}

impl Inventory {
    /// Gather everything the documents say.
    pub fn new(input: SbomInput<'_>) -> Self {
        let contents = input.contents;
        let project_name = normalize(&input.project.name);
        let app_layers: Vec<usize> = contents
            .layers
            .iter()
            .enumerate()
            .filter(|(_, (l, _))| l.origin == "app")
            .map(|(i, _)| i)
            .collect();
        let own = contents.python_packages().find(|d| {
            d.normalized == project_name && !contents.layer(d.layer).is_some_and(LayerInfo::is_base)
        });
        let mut project = ProjectPackage {
            name: input.project.name.clone(),
            version: input.project.version.clone(),
            license: None,
            layers: app_layers,
        };
        if let Some(dist) = own {
            project.version = Some(dist.version.clone());
            project.license = license_of(&dist.license);
            project.layers.push(dist.layer);
            project.layers.sort_unstable();
            project.layers.dedup();
        }
        let mut license_refs = Vec::new();
        let mut packages: Vec<Package> = contents
            .python_packages()
            .filter(|d| Some(*d) != own)
            .map(|d| {
                license_refs.extend(d.license.license_refs());
                Package {
                    kind: PackageKind::Python,
                    name: d.name.clone(),
                    version: d.version.clone(),
                    purl: pypi_purl(&d.name, &d.version),
                    license: license_of(&d.license),
                    layer: d.layer,
                    file: installed_file(d, input.locked),
                    detail: Some(d.location.clone()),
                }
            })
            .collect();
        if let Some(dist) = own {
            license_refs.extend(dist.license.license_refs());
        }
        let namespace = contents.distro.as_ref().map_or("debian", |d| d.id.as_str());
        let qualifier = contents.distro.as_ref().and_then(|d| d.qualifier());
        packages.extend(contents.debs.iter().map(|p| Package {
            kind: PackageKind::Deb,
            name: p.name.clone(),
            version: p.version.clone(),
            purl: deb_purl(
                namespace,
                &p.name,
                &p.version,
                &p.arch,
                qualifier.as_deref(),
            ),
            license: None,
            layer: p.layer,
            file: None,
            detail: p.source.clone(),
        }));
        packages.sort_by(|a, b| {
            (a.kind, normalize(&a.name), &a.version, &a.purl).cmp(&(
                b.kind,
                normalize(&b.name),
                &b.version,
                &b.purl,
            ))
        });
        license_refs.sort();
        license_refs.dedup();
        Self {
            image: input.image.clone(),
            layers: contents.layers.iter().map(|(l, _)| l.clone()).collect(),
            project,
            packages,
            distro: contents.distro.as_ref().and_then(|d| d.pretty_name.clone()),
            lock_sources: input.locked.sources.clone(),
            created: input.created.to_owned(),
            tool: input.tool.to_owned(),
            license_refs,
        }
    }

    /// Python packages the project depends on (every one in pyslip's layers).
    pub fn project_dependencies(&self) -> impl Iterator<Item = &Package> {
        self.packages.iter().filter(|p| {
            p.kind == PackageKind::Python && self.layers.get(p.layer).is_some_and(|l| !l.is_base())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_follow_the_spec() {
        assert_eq!(
            pypi_purl("Flask_SQLAlchemy", "3.1.1"),
            "pkg:pypi/flask-sqlalchemy@3.1.1"
        );
        assert_eq!(
            pypi_purl("torch", "2.4.0+cpu"),
            "pkg:pypi/torch@2.4.0%2Bcpu"
        );
        assert_eq!(
            deb_purl(
                "debian",
                "libc6",
                "2.36-9+deb12u4",
                "amd64",
                Some("debian-12")
            ),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            deb_purl("debian", "login", "1:4.13+dfsg1-1", "amd64", None),
            "pkg:deb/debian/login@1:4.13%2Bdfsg1-1?arch=amd64"
        );
    }

    #[test]
    fn wheel_tags_expand() {
        let tags = wheel_filename_tags("six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(
            tags.into_iter().collect::<Vec<_>>(),
            vec!["py2-none-any", "py3-none-any"]
        );
        let build = wheel_filename_tags(
            "x-1.0-1-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(build.len(), 2);
        assert!(wheel_filename_tags("x-1.0.tar.gz").is_none());
    }

    fn dist(tags: &[&str]) -> PythonDist {
        PythonDist {
            name: "pydantic-core".into(),
            normalized: "pydantic-core".into(),
            version: "2.0".into(),
            license: crate::license::declared(None, None, &[]),
            layer: 1,
            location: "/x".into(),
            wheel_tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            direct_url: None,
        }
    }

    #[test]
    fn the_installed_wheel_is_found_by_its_tags() {
        let dir = tempfile::tempdir().unwrap();
        let h = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let lock = format!(
            "[[package]]\nname = \"pydantic-core\"\nversion = \"2.0\"\nfiles = [\
{{file = \"pydantic_core-2.0-cp313-cp313-manylinux_2_17_x86_64.whl\", hash = \"{}\"}},\
{{file = \"pydantic_core-2.0-cp313-cp313-manylinux_2_17_aarch64.whl\", hash = \"{}\"}},\
{{file = \"pydantic_core-2.0.tar.gz\", hash = \"{}\"}}]\n",
            h('a'),
            h('b'),
            h('c')
        );
        let path = dir.path().join("poetry.lock");
        fs_err::write(&path, lock).unwrap();
        let locked = LockedFiles::read(&crate::locks::LockSource::PoetryLock(path)).unwrap();
        let x86 = installed_file(&dist(&["cp313-cp313-manylinux_2_17_x86_64"]), &locked).unwrap();
        assert_eq!(x86.sha256, "a".repeat(64));
        let built = installed_file(&dist(&["cp313-cp313-linux_riscv64"]), &locked).unwrap();
        assert_eq!(
            built.sha256,
            "c".repeat(64),
            "no wheel fits: built from the sdist"
        );
    }
}
