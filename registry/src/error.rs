//! The registry client's error type, with one-line hints for the errors a user can act on.

use std::path::PathBuf;

use pyslip_digest::Digest;

use crate::reference::ReferenceError;

/// One entry of a registry's JSON error body (`{"errors":[{"code","message"}]}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RegistryErrorDetail {
    /// The distribution-spec error code (`MANIFEST_UNKNOWN`, `DENIED`…).
    #[serde(default)]
    pub code: String,
    /// The registry's message.
    #[serde(default)]
    pub message: String,
}

/// `code: message` of the first error entry, or empty when the registry sent none.
fn detail_suffix(detail: &Option<RegistryErrorDetail>) -> String {
    match detail {
        Some(d) if !d.message.is_empty() => format!(" ({}: {})", d.code, d.message),
        Some(d) if !d.code.is_empty() => format!(" ({})", d.code),
        _ => String::new(),
    }
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference could not be parsed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    /// The registry could not be reached (connection refused, DNS failure, timeout).
    #[error("cannot reach registry {host}")]
    Unreachable {
        /// `host[:port]` that was contacted.
        host: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },

    /// The TLS handshake failed (unknown CA, wrong host name, plain-HTTP server).
    #[error("tls handshake with registry {host} failed")]
    Tls {
        /// `host[:port]` that was contacted.
        host: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },

    /// The connection broke during a request (reset, unexpected EOF) and retries ran out.
    #[error("connection to registry {host} failed during {what}")]
    Transport {
        /// `host[:port]` that was contacted.
        host: String,
        /// What was being transferred.
        what: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },

    /// The registry refused our credentials (or we had none).
    #[error("registry {registry} answered unauthorized for {scope}{}", detail_suffix(.detail))]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The access that was asked for (`repository:x:pull`).
        scope: String,
        /// Credential files that were consulted.
        consulted: Vec<PathBuf>,
        /// Whether any credentials were found and sent.
        had_credentials: bool,
        /// The registry's error entry.
        detail: Option<RegistryErrorDetail>,
    },

    /// Authenticated, but not allowed to do this.
    #[error("registry {registry} denied access to {repository}{}", detail_suffix(.detail))]
    Denied {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// The registry's error entry.
        detail: Option<RegistryErrorDetail>,
    },

    /// The manifest or tag does not exist.
    #[error("manifest unknown: {reference}")]
    ManifestUnknown {
        /// The reference that was asked for.
        reference: String,
    },

    /// A blob does not exist in the repository.
    #[error("blob {digest} unknown in {repository}")]
    BlobUnknown {
        /// `registry/repository`.
        repository: String,
        /// The blob.
        digest: Digest,
    },

    /// Received bytes do not hash to the digest they were asked for.
    #[error("digest mismatch for {object}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was fetched (`manifest docker.io/library/python:3.12`, `blob sha256:…`).
        object: String,
        /// The digest that was asked for (or announced).
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },

    /// Received a different number of bytes than the descriptor says.
    #[error("size mismatch for {object}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was fetched.
        object: String,
        /// The size in the descriptor.
        expected: u64,
        /// The number of bytes received.
        actual: u64,
    },

    /// A body is larger than we accept for its kind.
    #[error("{what} from {host} is larger than the {limit}-byte limit")]
    TooLarge {
        /// What was being read (`manifest`, `config`, `error body`, `token`).
        what: String,
        /// The registry or auth host.
        host: String,
        /// The limit in bytes.
        limit: u64,
    },

    /// A digest in a manifest, header or reference is malformed.
    #[error("malformed digest in {context}")]
    InvalidDigest {
        /// Where it was found.
        context: String,
        /// The validation error.
        #[source]
        source: pyslip_digest::DigestError,
    },

    /// A manifest, index, config or token response could not be parsed.
    #[error("cannot parse {what} from {host}")]
    InvalidJson {
        /// What was parsed.
        what: String,
        /// The host it came from.
        host: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },

    /// The manifest's media type is not one pyslip reads.
    #[error("unsupported manifest media type {media_type:?} for {reference}")]
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
        /// The reference.
        reference: String,
    },

    /// No entry of an image index matches the wanted platform.
    #[error("no image for platform {wanted} in {reference} (available: {})", .available.join(", "))]
    NoMatchingPlatform {
        /// The reference.
        reference: String,
        /// The wanted platform.
        wanted: String,
        /// Platforms the index offers.
        available: Vec<String>,
    },

    /// The registry answered with an unexpected status.
    #[error("registry {registry} answered {status} to {method} {path}{}", detail_suffix(.detail))]
    Status {
        /// The registry.
        registry: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// HTTP status code.
        status: u16,
        /// The registry's error entry.
        detail: Option<RegistryErrorDetail>,
    },

    /// The registry broke the protocol (missing Location header, bad redirect…).
    #[error("registry {registry} broke the protocol: {problem}")]
    Protocol {
        /// The registry.
        registry: String,
        /// What was wrong.
        problem: String,
    },

    /// A credentials file could not be read or parsed.
    #[error("cannot read credentials from {}", .path.display())]
    CredentialsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A `docker-credential-<name>` helper failed.
    #[error("credential helper docker-credential-{helper} failed for {registry}: {message}")]
    CredentialHelper {
        /// The helper name.
        helper: String,
        /// The registry asked about.
        registry: String,
        /// What went wrong (the helper's stderr, trimmed).
        message: String,
    },

    /// Local file I/O failed (fs-err errors name the path).
    #[error("file i/o failed")]
    Io(#[from] std::io::Error),

    /// The HTTP client could not be built.
    #[error("cannot set up the http client")]
    ClientSetup(#[source] reqwest::Error),
}

impl RegistryError {
    /// A one-line suggestion for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Reference(e) => e.hint(),
            Self::Unreachable { host, .. } => Some(format!(
                "is the registry at {host} running? check the address, or pass \
                 --insecure-registry {host} if it only speaks plain http"
            )),
            Self::Tls { host, .. } => Some(format!(
                "point SSL_CERT_FILE at the CA bundle that signed {host}'s certificate, or pass \
                 --insecure-registry {host} for a registry without valid tls"
            )),
            Self::Transport { .. } => {
                Some("the network or the registry dropped the connection; try again".to_owned())
            }
            Self::Unauthorized {
                registry,
                consulted,
                had_credentials,
                ..
            } => {
                let files = if consulted.is_empty() {
                    "none".to_owned()
                } else {
                    consulted
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let what = if *had_credentials {
                    "the stored credentials were rejected"
                } else {
                    "no credentials found"
                };
                Some(format!(
                    "run `podman login {registry}` or `docker login {registry}` \
                     ({what}; consulted: {files})"
                ))
            }
            Self::Denied { repository, .. } => Some(format!(
                "the account lacks access to {repository}; check the repository name and its permissions"
            )),
            Self::ManifestUnknown { .. } => {
                Some("check the tag (or the --python / --base options that chose it)".to_owned())
            }
            Self::DigestMismatch { .. } | Self::SizeMismatch { .. } => {
                Some("the registry or a proxy corrupted the data; nothing was cached".to_owned())
            }
            Self::TooLarge { .. } => Some(
                "the registry sent an implausibly large response; check the registry address"
                    .to_owned(),
            ),
            Self::NoMatchingPlatform { .. } => {
                Some("pick one of the available platforms with --platform".to_owned())
            }
            Self::CredentialHelper { helper, .. } => Some(format!(
                "check that docker-credential-{helper} is installed and on PATH"
            )),
            _ => None,
        }
    }

    /// Whether retrying the same request may succeed (408, 429, 5xx, reset/EOF).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::Transport { .. } => true,
            _ => false,
        }
    }
}
