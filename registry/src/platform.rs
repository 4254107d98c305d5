//! Target platforms (`linux/amd64`, `linux/arm64/v8`) and picking an image index entry for one.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::ImageIndex;

/// An image platform: OS, architecture and optional variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// Architecture in OCI spelling (`amd64`, `arm64`).
    pub architecture: String,
    /// Variant (`v8`, `v7`), if any.
    pub variant: Option<String>,
}

/// Why a string is not a platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64")]
pub struct PlatformError(pub String);

impl Platform {
    /// Parse `os/arch[/variant]`.
    pub fn parse(value: &str) -> Result<Self, PlatformError> {
        let mut parts = value.split('/');
        let valid =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(arch), variant, None)
                if valid(os) && valid(arch) && variant.is_none_or(valid) =>
            {
                Ok(Self {
                    os: os.to_ascii_lowercase(),
                    architecture: arch.to_ascii_lowercase(),
                    variant: variant.map(str::to_ascii_lowercase),
                })
            }
            _ => Err(PlatformError(value.chars().take(100).collect())),
        }
    }

    /// `linux/<the architecture this binary was built for>`.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Self {
            os: "linux".to_owned(),
            architecture: architecture.to_owned(),
            variant: None,
        }
    }

    /// Whether an entry with these fields satisfies this platform.
    ///
    /// A wanted variant must match (arm64 without variant equals `v8`); no wanted variant accepts any.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != architecture {
            return false;
        }
        match &self.variant {
            None => true,
            Some(wanted) => normalise_variant(architecture, variant) == Some(wanted.as_str()),
        }
    }
}

/// arm64's only variant is v8; treat a missing one as v8 so `linux/arm64/v8` matches both.
fn normalise_variant<'a>(architecture: &str, variant: Option<&'a str>) -> Option<&'a str> {
    match (architecture, variant) {
        ("arm64", None) => Some("v8"),
        (_, v) => v,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whether an index entry is an attestation (BuildKit's `unknown/unknown` provenance/SBOM entries).
fn is_attestation(entry: &oci_spec::image::Descriptor) -> bool {
    let annotated = entry
        .annotations()
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest");
    let unknown = entry.platform().as_ref().is_some_and(|p| {
        p.os().to_string() == "unknown" && p.architecture().to_string() == "unknown"
    });
    annotated || unknown
}

/// The Linux platforms an index offers, in its order, each once; attestation entries
/// (`unknown/unknown`) and other operating systems are left out.
pub(crate) fn linux_platforms(index: &ImageIndex) -> Vec<Platform> {
    let mut out: Vec<Platform> = Vec::new();
    for entry in index.manifests() {
        let Some(p) = entry.platform().as_ref().filter(|_| !is_attestation(entry)) else {
            continue;
        };
        let platform = Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        };
        if platform.os == "linux" && !out.contains(&platform) {
            out.push(platform);
        }
    }
    out
}

/// Pick the index entry for `wanted`, skipping attestation entries.
///
/// Returns the index of the entry, or the list of platforms the index offers.
pub(crate) fn select(index: &ImageIndex, wanted: &Platform) -> Result<usize, Vec<String>> {
    let mut available = Vec::new();
    let mut best: Option<(usize, bool)> = None;
    for (i, entry) in index.manifests().iter().enumerate() {
        if is_attestation(entry) {
            continue;
        }
        let Some(p) = entry.platform() else { continue };
        let (os, arch) = (p.os().to_string(), p.architecture().to_string());
        let variant = p.variant().as_deref();
        let shown = Platform {
            os: os.clone(),
            architecture: arch.clone(),
            variant: variant.map(str::to_owned),
        };
        available.push(shown.to_string());
        if wanted.matches(&os, &arch, variant) {
            // Without a wanted variant, prefer the default one (none, or v8 for arm64).
            let preferred = wanted.variant.is_some()
                || variant.is_none()
                || normalise_variant(&arch, None) == variant;
            match best {
                Some((_, true)) => {}
                Some((_, false)) if !preferred => {}
                _ => best = Some((i, preferred)),
            }
        }
    }
    best.map(|(i, _)| i).ok_or(available)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &str) -> ImageIndex {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{entries}]}}"#
        );
        serde_json::from_str(&json).expect("index")
    }

    fn entry(os: &str, arch: &str, variant: Option<&str>, n: u8, attestation: bool) -> String {
        let variant = variant
            .map(|v| format!(r#","variant":"{v}""#))
            .unwrap_or_default();
        let ann = if attestation {
            r#","annotations":{"vnd.docker.reference.type":"attestation-manifest"}"#
        } else {
            ""
        };
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":10,"platform":{{"os":"{os}","architecture":"{arch}"{variant}}}{ann}}}"#,
            format!("{n:x}").repeat(64).get(..64).unwrap_or_default()
        )
    }

    #[test]
    fn platform_parse_and_display() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(Platform::parse("linux/amd64").unwrap().variant, None);
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selects_matching_entry_and_skips_attestations() {
        let idx = index(
            &[
                entry("unknown", "unknown", None, 1, true),
                entry("linux", "amd64", None, 2, false),
                entry("linux", "arm64", Some("v8"), 3, false),
                entry("unknown", "unknown", None, 4, false),
            ]
            .join(","),
        );
        assert_eq!(
            select(&idx, &Platform::parse("linux/amd64").unwrap()),
            Ok(1)
        );
        assert_eq!(
            select(&idx, &Platform::parse("linux/arm64").unwrap()),
            Ok(2)
        );
        assert_eq!(
            select(&idx, &Platform::parse("linux/arm64/v8").unwrap()),
            Ok(2)
        );
        let missing = select(&idx, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert_eq!(
            missing,
            vec!["linux/amd64", "linux/arm64/v8"],
            "attestations are not offered"
        );
    }

    #[test]
    fn linux_platforms_skip_attestations_other_oses_and_repeats() {
        let idx = index(
            &[
                entry("linux", "amd64", None, 1, false),
                entry("unknown", "unknown", None, 2, false),
                entry("linux", "arm64", Some("v8"), 3, false),
                entry("windows", "amd64", None, 4, false),
                entry("linux", "amd64", None, 5, true),
                entry("linux", "amd64", None, 6, false),
            ]
            .join(","),
        );
        let shown: Vec<String> = linux_platforms(&idx)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["linux/amd64", "linux/arm64/v8"]);
    }

    #[test]
    fn attestation_for_the_wanted_platform_is_never_selected() {
        // An attestation entry that (wrongly) claims linux/amd64 and comes first.
        let idx = index(
            &[
                entry("linux", "amd64", None, 1, true),
                entry("linux", "amd64", None, 2, false),
            ]
            .join(","),
        );
        assert_eq!(
            select(&idx, &Platform::parse("linux/amd64").unwrap()),
            Ok(1)
        );
    }

    #[test]
    fn arm_without_wanted_variant_prefers_default_and_wanted_variant_is_strict() {
        let idx = index(
            &[
                entry("linux", "arm", Some("v6"), 1, false),
                entry("linux", "arm", Some("v7"), 2, false),
                entry("linux", "arm64", None, 3, false),
            ]
            .join(","),
        );
        assert_eq!(
            select(&idx, &Platform::parse("linux/arm/v7").unwrap()),
            Ok(1)
        );
        assert_eq!(select(&idx, &Platform::parse("linux/arm").unwrap()), Ok(0));
        assert_eq!(
            select(&idx, &Platform::parse("linux/arm64/v8").unwrap()),
            Ok(2)
        );
        assert!(select(&idx, &Platform::parse("linux/arm/v5").unwrap()).is_err());
    }
}
