//! Image references (`[registry/]repository[:tag][@digest]`) parsed with Docker's rules.
//!
//! Hand-written rather than taken from a crate: the grammar is small, and the crates that parse it
//! (`oci-distribution`, `docker_reference`) bring their own digest type and client; pyslip needs
//! `pyslip_digest::Digest` so a reference's digest is validated once, before it is used in a URL.

use std::fmt;
use std::str::FromStr;

use pyslip_digest::Digest;

/// The registry assumed when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The tag assumed when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// Docker's limit on the length of a repository name, registry included.
const MAX_NAME_LENGTH: usize = 255;
/// Docker's limit on the length of a tag.
const MAX_TAG_LENGTH: usize = 128;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {expected}")]
pub struct ReferenceError {
    /// The rejected input (truncated to 200 characters).
    pub reference: String,
    /// What was expected instead.
    pub expected: String,
}

impl ReferenceError {
    fn new(reference: &str, expected: impl Into<String>) -> Self {
        Self {
            reference: reference.chars().take(200).collect(),
            expected: expected.into(),
        }
    }

    /// A short suggestion for the user.
    pub fn hint(&self) -> Option<String> {
        Some(
            "write references as [registry/]repository[:tag][@sha256:digest], \
             e.g. docker.io/library/python:3.12-slim"
                .to_owned(),
        )
    }
}

/// A repository on a registry, without tag or digest (`127.0.0.1:5000/library/python`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoRef {
    registry: String,
    repository: String,
}

impl RepoRef {
    /// Parse `[registry/]repository`, normalising like Docker (`python` → `docker.io/library/python`).
    pub fn parse(value: &str) -> Result<Self, ReferenceError> {
        let reference = Reference::parse(value)?;
        if reference.tag_given || reference.digest.is_some() {
            return Err(ReferenceError::new(
                value,
                "a repository without :tag or @digest",
            ));
        }
        Ok(reference.repo)
    }

    /// The registry as written in references (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path on the registry (`library/python`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The `host[:port]` that serves the registry API (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// A reference to `tag` in this repository; the tag is validated.
    pub fn tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        validate_tag(tag).map_err(|expected| ReferenceError::new(tag, expected))?;
        Ok(Reference {
            repo: self.clone(),
            tag: Some(tag.to_owned()),
            tag_given: true,
            digest: None,
        })
    }

    /// A reference to `digest` in this repository.
    pub fn digest(&self, digest: Digest) -> Reference {
        Reference {
            repo: self.clone(),
            tag: None,
            tag_given: false,
            digest: Some(digest),
        }
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

impl FromStr for RepoRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A parsed, normalised image reference.
///
/// `tag` is `latest` when neither a tag nor a digest was given. When both are given
/// (`name:tag@digest`) both are kept; the digest wins for pulling.
#[derive(Debug, Clone)]
pub struct Reference {
    repo: RepoRef,
    tag: Option<String>,
    /// Whether the tag was written (false when `latest` was assumed).
    tag_given: bool,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse `[registry/]repository[:tag][@digest]` with Docker's normalisation rules.
    pub fn parse(value: &str) -> Result<Self, ReferenceError> {
        let err = |expected: &str| ReferenceError::new(value, expected);
        if value.is_empty() {
            return Err(err("a non-empty reference"));
        }
        let (rest, digest) = match value.split_once('@') {
            Some((rest, digest)) => {
                let digest = Digest::parse(digest)
                    .map_err(|_| err("a digest of the form @sha256:<64 lowercase hex>"))?;
                (rest, Some(digest))
            }
            None => (value, None),
        };
        // The tag separator is the last ':' after the last '/', so `host:5000/repo` has no tag.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest.get(last_slash..).and_then(|tail| tail.rfind(':')) {
            Some(i) => {
                let split = last_slash + i;
                let tag = rest.get(split + 1..).unwrap_or_default();
                validate_tag(tag).map_err(err)?;
                (rest.get(..split).unwrap_or_default(), Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.len() > MAX_NAME_LENGTH {
            return Err(err("a repository name of at most 255 characters"));
        }
        let (registry, path) = split_registry(name);
        validate_registry(registry).map_err(err)?;
        validate_path(path).map_err(err)?;
        let registry = normalise_registry(registry);
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        let tag_given = tag.is_some();
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag,
        };
        Ok(Self {
            repo: RepoRef {
                registry,
                repository,
            },
            tag,
            tag_given,
            digest,
        })
    }

    /// The repository this reference points into.
    pub fn repo(&self) -> &RepoRef {
        &self.repo
    }

    /// The registry as written in references (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.repo.registry
    }

    /// The repository path (`library/python`).
    pub fn repository(&self) -> &str {
        &self.repo.repository
    }

    /// The tag (`latest` when neither a tag nor a digest was written).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, when the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        self.repo.tag(tag)
    }

    /// The same repository pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Whether the registry is on the loopback interface (spoken to over plain HTTP).
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.repo.registry)
    }
}

/// Equality ignores whether `latest` was written or assumed.
impl PartialEq for Reference {
    fn eq(&self, other: &Self) -> bool {
        self.repo == other.repo && self.tag == other.tag && self.digest == other.digest
    }
}

impl Eq for Reference {}

impl std::hash::Hash for Reference {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.repo.hash(state);
        self.tag.hash(state);
        self.digest.hash(state);
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repo)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The `host[:port]` that serves a registry's API.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API_HOST
    } else {
        registry
    }
}

/// Whether `registry` (`host[:port]`) is `localhost`, in 127.0.0.0/8 or `[::1]`.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_without_port(registry);
    if host.eq_ignore_ascii_case("localhost") || host == "[::1]" || host == "::1" {
        return true;
    }
    host.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// `host` of `host[:port]`, keeping the brackets of an IPv6 literal.
pub(crate) fn host_without_port(registry: &str) -> &str {
    if registry.starts_with('[') {
        return match registry.find(']') {
            Some(end) => registry.get(..=end).unwrap_or(registry),
            None => registry,
        };
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Split the registry off a name: the first component is a registry if it contains `.` or `:`,
/// is `localhost`, or has uppercase letters (Docker's rule); otherwise the registry is Docker Hub.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn normalise_registry(registry: &str) -> String {
    match registry {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        other => other.to_owned(),
    }
}

fn validate_registry(registry: &str) -> Result<(), &'static str> {
    const EXPECTED: &str = "a registry host of letters, digits, '.', '-' with an optional :port";
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or(EXPECTED)?;
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("a bracketed IPv6 address as registry host");
        }
        match after {
            "" => ("", None),
            p => ("", Some(p.strip_prefix(':').ok_or(EXPECTED)?)),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !(registry.starts_with('[') || labels_ok) {
        return Err(EXPECTED);
    }
    if let Some(port) = port
        && (port.is_empty() || port.parse::<u16>().is_err())
    {
        return Err("a numeric port after ':' in the registry");
    }
    Ok(())
}

/// Repository path: components of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` separated by `/`.
fn validate_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("a repository name after the registry");
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("a repository name in lowercase");
    }
    for component in path.split('/') {
        if !valid_component(component) {
            return Err(
                "repository components of lowercase letters and digits separated by '.', '_', '__' or '-'",
            );
        }
    }
    Ok(())
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or_default();
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-'.
        let run = bytes
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&c| !alnum(c))
            .collect::<Vec<_>>();
        let ok = match run.as_slice() {
            [b'.'] | [b'_'] | [b'_', b'_'] => true,
            dashes => dashes.iter().all(|&&c| c == b'-'),
        };
        if !ok {
            return false;
        }
        i += run.len();
    }
    true
}

/// Tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn validate_tag(tag: &str) -> Result<(), &'static str> {
    const EXPECTED: &str =
        "a tag of up to 128 letters, digits, '_', '.' or '-' not starting with '.' or '-'";
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok
        || tag.len() > MAX_TAG_LENGTH
        || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(EXPECTED);
    }
    Ok(())
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
