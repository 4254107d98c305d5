//! The base image's operating-system packages: the dpkg database (`/var/lib/dpkg/status` and the
//! per-package files of `/var/lib/dpkg/status.d/` that distroless images use) and `os-release`,
//! read from the layers as data.

use std::str::FromStr as _;

use crate::scan::Captured;
use crate::view::MergedView;

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_D: &str = "var/lib/dpkg/status.d/";
const INFO: &str = "var/lib/dpkg/info/";

/// The distribution, from `os-release`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Distro {
    /// `ID` (`debian`, `ubuntu`, …).
    pub id: String,
    /// `VERSION_ID` (`12`), absent on testing/unstable.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME` (`bookworm`).
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

impl Distro {
    /// The purl `distro` qualifier: `debian-12`, or `debian-<codename>` without a version.
    pub fn qualifier(&self) -> Option<String> {
        let tail = self.version_id.as_ref().or(self.codename.as_ref())?;
        Some(format!("{}-{tail}", self.id))
    }
}

/// One installed Debian package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    /// `Package`.
    pub name: String,
    /// `Version` (with epoch, e.g. `1:2.38-4`).
    pub version: String,
    /// `Architecture` (`amd64`, `all`, …).
    pub arch: String,
    /// The source package when it differs from the binary package's name.
    pub source: Option<String>,
    /// Index of the layer that installed it (the one holding its `info/<name>.list`, else the
    /// one holding the database entry).
    pub layer: usize,
}

/// Parse `os-release` (shell-style `KEY=value` lines, values optionally quoted).
pub fn parse_os_release(text: &str) -> Option<Distro> {
    let mut distro = Distro::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').trim_matches('\'').to_owned();
        let value = (!value.is_empty()).then_some(value);
        match key {
            "ID" => distro.id = value.unwrap_or_default(),
            "VERSION_ID" => distro.version_id = value,
            "VERSION_CODENAME" => distro.codename = value,
            "PRETTY_NAME" => distro.pretty_name = value,
            _ => {}
        }
    }
    (!distro.id.is_empty()).then_some(distro)
}

/// The distribution of the final filesystem (`/etc/os-release`, else `/usr/lib/os-release`).
pub fn distro(view: &MergedView) -> Option<Distro> {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|p| view.read(p))
        .and_then(|(bytes, _)| parse_os_release(&String::from_utf8_lossy(bytes)))
}

/// Whether a `Status:` value means installed (`install ok installed`, `hold ok installed`).
fn installed(status: Option<&str>) -> bool {
    status.is_none_or(|s| s.split_whitespace().nth(2) == Some("installed"))
}

/// The packages of one database file; `layer` of each is `default_layer` unless its
/// `info/<name>.list` says otherwise.
fn parse_database(text: &str, default_layer: usize, view: &MergedView) -> Vec<DebPackage> {
    let Ok(db) = deb822_fast::Deb822::from_str(text) else {
        return Vec::new();
    };
    db.iter()
        .filter(|p| installed(p.get("Status")))
        .filter_map(|p| {
            let name = p.get("Package")?.trim().to_owned();
            let version = p.get("Version")?.trim().to_owned();
            let arch = p.get("Architecture").unwrap_or("all").trim().to_owned();
            let source = p
                .get("Source")
                .and_then(|s| s.split_whitespace().next())
                .filter(|s| *s != name)
                .map(str::to_owned);
            let layer = [
                format!("{INFO}{name}:{arch}.list"),
                format!("{INFO}{name}.list"),
            ]
            .iter()
            .find_map(|path| view.get(path).map(|e| e.layer))
            .unwrap_or(default_layer);
            Some(DebPackage {
                name,
                version,
                arch,
                source,
                layer,
            })
        })
        .collect()
}

/// Every installed package of the final filesystem, sorted by name, version, architecture.
pub fn packages(view: &MergedView) -> Vec<DebPackage> {
    let mut out = Vec::new();
    for (path, placed) in view.iter() {
        let is_db = path == STATUS
            || path
                .strip_prefix(STATUS_D)
                .is_some_and(|rest| !rest.contains('/'));
        if !is_db {
            continue;
        }
        if let Captured::File(bytes) = &placed.content {
            out.extend(parse_database(
                &String::from_utf8_lossy(bytes),
                placed.layer,
                view,
            ));
        }
    }
    out.sort_by(|a, b| (&a.name, &a.version, &a.arch).cmp(&(&b.name, &b.version, &b.arch)));
    out.dedup_by(|a, b| (&a.name, &a.version, &a.arch) == (&b.name, &b.version, &b.arch));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::LayerScan;

    const STATUS_TEXT: &str = "Package: libc6\nStatus: install ok installed\nPriority: optional\n\
Architecture: amd64\nMulti-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n \
Contains the standard libraries.\n\nPackage: removed\nStatus: deinstall ok config-files\n\
Architecture: amd64\nVersion: 1.0\n\nPackage: bash\nStatus: install ok installed\n\
Architecture: amd64\nVersion: 5.2.15-2+b2\n";

    fn layer(files: &[(&str, Captured)]) -> LayerScan {
        LayerScan {
            captured: files
                .iter()
                .map(|(p, c)| ((*p).to_owned(), c.clone()))
                .collect(),
            ..LayerScan::default()
        }
    }

    #[test]
    fn installed_packages_with_the_layer_that_added_them() {
        let bottom = layer(&[
            (STATUS, Captured::File(b"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n".to_vec())),
            ("var/lib/dpkg/info/bash.list", Captured::Marker),
        ]);
        let top = layer(&[
            (STATUS, Captured::File(STATUS_TEXT.as_bytes().to_vec())),
            ("var/lib/dpkg/info/libc6:amd64.list", Captured::Marker),
        ]);
        let view = MergedView::new([&bottom, &top]);
        let pkgs = packages(&view);
        let names: Vec<(&str, usize)> = pkgs.iter().map(|p| (p.name.as_str(), p.layer)).collect();
        assert_eq!(names, vec![("bash", 0), ("libc6", 1)]);
        assert_eq!(pkgs[1].source.as_deref(), Some("glibc"));
        assert_eq!(pkgs[1].version, "2.36-9+deb12u4");
    }

    #[test]
    fn distroless_status_d_and_os_release() {
        let l = layer(&[
            ("var/lib/dpkg/status.d/base", Captured::File(b"Package: base-files\nVersion: 12.4\nArchitecture: amd64\n".to_vec())),
            ("usr/lib/os-release", Captured::File(b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n".to_vec())),
            ("etc/os-release", Captured::Symlink("../usr/lib/os-release".into())),
        ]);
        let view = MergedView::new([&l]);
        assert_eq!(packages(&view).len(), 1);
        let d = distro(&view).unwrap();
        assert_eq!(d.qualifier().as_deref(), Some("debian-12"));
        let sid = parse_os_release("ID=debian\nVERSION_CODENAME=forky\n").unwrap();
        assert_eq!(sid.qualifier().as_deref(), Some("debian-forky"));
        assert!(parse_os_release("NAME=x\n").is_none());
    }
}
