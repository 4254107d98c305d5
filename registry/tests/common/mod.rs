//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use pyslip_registry::{Client, ClientConfig, CredentialSources, RetryPolicy};

/// Read a test-environment variable or fail with how to get it.
pub fn env_or_fail(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/test-env.sh and source /var/lib/pyslip-test/env")
    })
}

/// Fast retries so fault tests do not sleep long.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
    }
}

/// A client with no credentials and fast retries.
pub fn open_client() -> Client {
    client_with(CredentialSources::none())
}

/// A client with the given credential sources and fast retries.
pub fn client_with(credentials: CredentialSources) -> Client {
    Client::new(ClientConfig {
        credentials,
        retry: fast_retry(),
        ..ClientConfig::default()
    })
    .unwrap()
}
