//! OCI distribution client: references, auth, pull, push with cross-repository mounts, retries.
//!
//! Entry point: [`Client`] (built from a [`ClientConfig`]), with [`Client::pull_image`],
//! [`Client::fetch_blob`] and [`Client::push`].
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod blob;
pub mod client;
pub mod error;
mod fetch;
pub mod manifest;
pub mod platform;
pub mod pull;
pub mod push;
pub mod reference;
pub mod referrers;
mod small_cache;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;

pub use auth::{Credential, CredentialSources};
pub use client::{Client, ClientConfig};
pub use error::{RegistryError, RegistryErrorDetail};
pub use manifest::{Descriptor, ManifestToPush, media_types};
pub use platform::{Platform, PlatformError};
pub use pull::{FetchedManifest, PulledImage};
pub use push::{BlobOutcome, BlobReport, BlobSource, PushBlob, PushReport};
pub use reference::{Reference, ReferenceError, RepoRef};
pub use referrers::{AttachReport, ReferrerDescriptor, Referrers, ReferrersVia, fallback_tag};
pub use transport::retry::RetryPolicy;
