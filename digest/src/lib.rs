//! Content digests (`sha256:<64 lowercase hex>`), validated before they are used in a path or URL.
//!
//! A crate of its own so that the layer writer and the registry client share one digest type
//! without depending on each other. oci-spec's `Digest` accepts any algorithm; pyslip's stores
//! are sha256-only and put the hex into file names, so this type is stricter: a value of it is
//! always 64 lowercase hex characters. Converting to oci-spec's type is a string parse.
#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A validated `sha256:` content digest.
///
/// Only SHA-256 is accepted; the hex part must be exactly 64 lowercase hex characters, so a value
/// of this type is always safe to put into a file name or a URL path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

/// Why a string is not a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid digest {value:?}: expected sha256: followed by 64 lowercase hex characters")]
pub struct DigestError {
    /// The rejected value (truncated to 100 characters).
    pub value: String,
}

impl Digest {
    /// Parse and validate `sha256:<hex>`.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let reject = || DigestError {
            value: value.chars().take(100).collect(),
        };
        let hex = value.strip_prefix("sha256:").ok_or_else(reject)?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(reject());
        }
        Ok(Self {
            hex: hex.to_owned(),
        })
    }

    /// The digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(bytes).into())
    }

    /// Wrap a finished SHA-256 hash.
    pub fn from_sha256(hash: [u8; 32]) -> Self {
        use std::fmt::Write as _;
        let mut hex = String::with_capacity(64);
        for byte in hash {
            let _ = write!(hex, "{byte:02x}");
        }
        Self { hex }
    }

    /// The 64 hex characters, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The algorithm name (always `sha256`).
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_known_value() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn rejects_path_tricks_wrong_length_uppercase_and_other_algorithms() {
        let good = "a".repeat(64);
        assert!(Digest::parse(&format!("sha256:{good}")).is_ok());
        for bad in [
            "sha256:../x".to_owned(),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{good}"),
            format!("sha256:{}/..", "a".repeat(61)),
            good.clone(),
            String::new(),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn serde_round_trip_validates() {
        let d = Digest::of(b"x");
        let json = serde_json::to_string(&d).expect("serialize");
        assert_eq!(serde_json::from_str::<Digest>(&json).expect("parse"), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }
}
