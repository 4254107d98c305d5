//! OCI distribution client: references, auth, pull, push with cross-repository mounts, retries.
//!
//! Entry point: [`Client`] (built from a [`ClientConfig`]), with [`Client::pull_image`],
//! [`Client::list_platforms`], [`Client::fetch_blob`], [`Client::push`], [`Client::push_index`]
//! and [`Client::fetch_url_verified`] (a plain URL through the same HTTP stack).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod blob;
pub mod client;
mod download;
pub mod error;
mod fetch;
pub mod index_push;
pub mod manifest;
pub mod platform;
pub mod pull;
pub mod push;
pub mod reference;
pub mod referrers;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;
mod upload;

pub use auth::{Credential, CredentialSources};
pub use client::{Client, ClientConfig};
pub use error::{RegistryError, RegistryErrorDetail};
pub use index_push::{ImagePushReport, IndexPushReport, IndexedImage};
pub use manifest::{Descriptor, ManifestToPush, media_types};
pub use platform::{Platform, PlatformError};
pub use pull::{FetchedManifest, PulledImage};
pub use push::{BlobOutcome, BlobReport, BlobSource, PushBlob, PushReport};
pub use reference::{Reference, ReferenceError, RepoRef};
pub use referrers::{AttachReport, ReferrerDescriptor, Referrers, ReferrersVia, fallback_tag};
pub use transport::proxy::ProxyConfig;
pub use transport::retry::RetryPolicy;
/// URLs as [`Client::fetch_url_verified`] takes them.
pub use url::Url;
