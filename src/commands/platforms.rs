//! Which platforms a build makes images for (`--platform linux/amd64,linux/arm64`, `all`, or
//! this machine's), and the base images each needs: the target platform's own manifest (its
//! layers and config go into the image) and, for a platform other than this machine's, the
//! host platform's image of the same tag, whose root runs the installer. Nothing is emulated:
//! the installer only *selects* the target's wheels.

use anyhow::{Context, Result};
use pyslip_registry::{Client, Platform, PulledImage, Reference};

use crate::commands::UserError;
use crate::commands::report::Printer;

/// `--platform`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformSpec {
    /// No flag: this machine's platform.
    Host,
    /// `all`: every Linux platform the base index offers.
    All,
    /// A comma list, each once, in the order given.
    List(Vec<Platform>),
}

impl PlatformSpec {
    /// Parse the flag's value (`None`: the flag was not given).
    pub fn parse(value: Option<&str>) -> Result<Self> {
        let Some(value) = value else {
            return Ok(Self::Host);
        };
        if value.trim() == "all" {
            return Ok(Self::All);
        }
        let mut list: Vec<Platform> = Vec::new();
        for part in value.split(',').map(str::trim) {
            let platform = Platform::parse(part).map_err(|err| {
                UserError::new(
                    format!("--platform {value}: {err}"),
                    "give OS/ARCH[/VARIANT], a comma list (linux/amd64,linux/arm64) or all",
                )
            })?;
            if list.contains(&platform) {
                return Err(UserError::new(
                    format!("--platform {value}: {platform} is listed twice"),
                    "name each platform once",
                )
                .into());
            }
            list.push(platform);
        }
        Ok(Self::List(list))
    }

    /// The platform the Python choice is checked against before the base is resolved: the
    /// first one listed, else this machine's.
    pub fn first_or_host(&self) -> Platform {
        match self {
            Self::List(list) => list[0].clone(),
            Self::Host | Self::All => Platform::host(),
        }
    }

    /// True when the build may make more than one image (`--sbom` is per image).
    pub fn may_be_several(&self) -> bool {
        match self {
            Self::Host => false,
            Self::All => true,
            Self::List(list) => list.len() > 1,
        }
    }
}

/// True when `platform` is this machine's (same OS and CPU; a variant does not matter).
pub fn is_host(platform: &Platform) -> bool {
    let host = Platform::host();
    platform.os == host.os && platform.architecture == host.architecture
}

/// One target platform and its base image.
pub struct Target {
    /// The platform, as requested (or as the index lists it, for `all`).
    pub platform: Platform,
    /// The base image's manifest and config for this platform.
    pub base: PulledImage,
}

/// The base images of a build.
pub struct Bases {
    /// One per target platform, in the order of the index the build writes.
    pub targets: Vec<Target>,
    /// The host platform's base image, when some target is another platform: its root runs
    /// the installs for every platform.
    pub host: Option<PulledImage>,
}

impl Bases {
    /// The base whose root the install for `target` runs in.
    pub fn install_base<'a>(&'a self, target: &'a Target) -> &'a PulledImage {
        match &self.host {
            Some(host) if !is_host(&target.platform) => host,
            _ => &target.base,
        }
    }

    /// The position of the target that is this machine's platform, if the build makes one.
    pub fn host_target(&self) -> Option<usize> {
        self.targets.iter().position(|t| is_host(&t.platform))
    }
}

/// Resolve the target platforms of `spec` on `base_ref` and pull each one's manifest and
/// config, plus the host platform's when some target is foreign (with the same Python).
pub async fn resolve(
    client: &Client,
    base_ref: &Reference,
    spec: &PlatformSpec,
    printer: &Printer,
) -> Result<Bases> {
    let wanted = match spec {
        PlatformSpec::Host => vec![Platform::host()],
        PlatformSpec::List(list) => list.clone(),
        PlatformSpec::All => {
            let listed = client
                .list_platforms(base_ref)
                .await
                .with_context(|| format!("listing the platforms of base image {base_ref}"))?;
            if listed.is_empty() {
                return Err(UserError::new(
                    format!("--platform all: base image {base_ref} lists no linux platform"),
                    "name the platforms, e.g. --platform linux/amd64,linux/arm64",
                )
                .into());
            }
            listed
        }
    };
    let mut targets = Vec::new();
    for platform in wanted {
        printer.step(&format!("resolving {base_ref} for {platform}"));
        let base = client
            .pull_image(base_ref, &platform)
            .await
            .with_context(|| format!("resolving base image {base_ref} for {platform}"))?;
        printer.base(base_ref, &base.digest, base.layers.len());
        targets.push(Target { platform, base });
    }
    let host = match targets.iter().all(|t| is_host(&t.platform)) {
        true => None,
        false => Some(host_base(client, base_ref, &targets).await?),
    };
    Ok(Bases { targets, host })
}

/// The host platform's image of `base_ref` (taken from `targets` when one is it), checked to
/// carry the same Python as every target.
async fn host_base(
    client: &Client,
    base_ref: &Reference,
    targets: &[Target],
) -> Result<PulledImage> {
    let host = Platform::host();
    let base = match targets.iter().find(|t| is_host(&t.platform)) {
        Some(target) => target.base.clone(),
        None => client.pull_image(base_ref, &host).await.map_err(|err| {
            anyhow::Error::new(UserError::new(
                format!(
                    "base image {base_ref} has no {host} image: pyslip installs other platforms' dependencies from this machine's platform of the same base ({err})"
                ),
                format!(
                    "use a base image that lists {host} as well, or build on a machine of a platform the base lists"
                ),
            ))
        })?,
    };
    let host_python = python_version(&base);
    for target in targets.iter().filter(|t| !is_host(&t.platform)) {
        let python = python_version(&target.base);
        if python != host_python {
            return Err(UserError::new(
                format!(
                    "base image {base_ref}: its {} image has PYTHON_VERSION {} but its {host} image has {}; the {host} interpreter installs for {} and must be the same Python",
                    target.platform,
                    shown(python.as_deref()),
                    shown(host_python.as_deref()),
                    target.platform,
                ),
                "use a base tag whose images carry the same Python (e.g. an official python:X.Y-slim index)",
            )
            .into());
        }
    }
    Ok(base)
}

/// `PYTHON_VERSION` of a base image's config environment.
pub fn python_version(base: &PulledImage) -> Option<String> {
    base.config
        .config()
        .as_ref()?
        .env()
        .as_ref()?
        .iter()
        .find_map(|kv| kv.strip_prefix("PYTHON_VERSION=").map(str::to_owned))
}

fn shown(value: Option<&str>) -> &str {
    value.unwrap_or("(not set)")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_list_keeps_its_order_and_all_is_a_word() {
        let spec = PlatformSpec::parse(Some("linux/arm64, linux/amd64")).unwrap();
        let PlatformSpec::List(list) = &spec else {
            panic!("expected a list, got {spec:?}");
        };
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["linux/arm64", "linux/amd64"]);
        assert!(spec.may_be_several());
        assert_eq!(PlatformSpec::parse(Some("all")).unwrap(), PlatformSpec::All);
        assert_eq!(PlatformSpec::parse(None).unwrap(), PlatformSpec::Host);
        let one = PlatformSpec::parse(Some("linux/arm64")).unwrap();
        assert!(!one.may_be_several());
        assert_eq!(one.first_or_host().to_string(), "linux/arm64");
    }

    #[test]
    fn repeated_or_malformed_platforms_are_refused_naming_the_flag() {
        let twice = PlatformSpec::parse(Some("linux/amd64,linux/amd64")).unwrap_err();
        assert!(twice.to_string().contains("listed twice"), "{twice}");
        let bad = PlatformSpec::parse(Some("linux/amd64,")).unwrap_err();
        assert!(
            bad.to_string().starts_with("--platform linux/amd64,:"),
            "{bad}"
        );
    }
}
