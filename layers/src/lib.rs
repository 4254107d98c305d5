//! Layer making and unpacking: deterministic tar writer, gzip and sha256 in one streaming pass,
//! overlay upper dir to OCI layer with whiteouts, and safe extraction of untrusted layers.
//!
//! Sync code only; no registry or sandbox code lives here.

pub mod digest;

pub use digest::{Digest, DigestError};
