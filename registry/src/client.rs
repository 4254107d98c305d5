//! The registry client: configuration and the shared handle that pull and push hang off.

use std::sync::Arc;

use crate::auth::CredentialSources;
use crate::error::RegistryError;
use crate::transport::Transport;
use crate::transport::proxy::ProxyConfig;
use crate::transport::retry::RetryPolicy;

/// How a [`Client`] talks to registries.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (`host[:port]`) spoken to without TLS verification: HTTPS without verifying
    /// the certificate when the registry answers HTTPS, else plain HTTP (podman's and crane's
    /// behaviour). Loopback registries always use plain HTTP and need no entry here.
    pub insecure_registries: Vec<String>,
    /// Where credentials are looked up.
    pub credentials: CredentialSources,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// Blobs transferred at once during a push.
    pub max_concurrent_transfers: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Proxies (default: from `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`).
    pub proxy: ProxyConfig,
    /// PEM files of CA certificates trusted in addition to the system's roots (which follow
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` when set).
    pub extra_ca_files: Vec<std::path::PathBuf>,
    /// A content-addressed directory (`<dir>/<sha256 hex>`) where manifests and configs are
    /// kept by digest and served from, verified, on later pulls. `None` disables it.
    pub blob_cache: Option<std::path::PathBuf>,
}

impl Default for ClientConfig {
    /// Credentials and proxies from the environment, default retries, 4 parallel transfers.
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            credentials: CredentialSources::from_env(),
            retry: RetryPolicy::default(),
            max_concurrent_transfers: 4,
            user_agent: concat!("pyslip/", env!("CARGO_PKG_VERSION")).to_owned(),
            proxy: ProxyConfig::from_env(),
            extra_ca_files: Vec::new(),
            blob_cache: None,
        }
    }
}

/// An OCI distribution client. Cheap to clone; clones share connections and auth tokens.
#[derive(Clone)]
pub struct Client {
    pub(crate) transport: Arc<Transport>,
    pub(crate) max_concurrent_transfers: usize,
    /// Manifests and configs kept by digest (`ClientConfig::blob_cache`): a tag that still points
    /// at the same manifest costs one request instead of three. Only content named by its digest
    /// is stored, and it is verified again when read; failing to store it never fails a pull.
    pub(crate) small_cache: Option<pyslip_cache::BlobStore>,
    pub(crate) received: Arc<Received>,
}

/// Layer-sized blobs this client (and its clones) downloaded to files: how many, how many bytes.
#[derive(Debug, Default)]
pub(crate) struct Received {
    blobs: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

impl Received {
    /// Count one downloaded blob of `bytes` bytes.
    pub(crate) fn add(&self, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.blobs.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }
}

impl Client {
    /// Build a client.
    pub fn new(config: ClientConfig) -> Result<Self, RegistryError> {
        let max_concurrent_transfers = config.max_concurrent_transfers.max(1);
        let small_cache = config
            .blob_cache
            .clone()
            .map(pyslip_cache::BlobStore::in_dir);
        Ok(Self {
            transport: Arc::new(Transport::new(config)?),
            max_concurrent_transfers,
            small_cache,
            received: Arc::default(),
        })
    }

    /// Blobs downloaded so far by [`Client::fetch_blob`] (through this client and its clones):
    /// `(count, bytes)`. Manifests and configs (small documents) are not counted.
    pub fn blobs_received(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.received.blobs.load(Relaxed),
            self.received.bytes.load(Relaxed),
        )
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}
