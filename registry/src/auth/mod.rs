//! Authentication state: challenges seen per registry, cached credentials, bearer tokens per
//! (registry, scope) with expiry. The HTTP side (fetching tokens) lives in `transport`.

pub mod challenge;
pub mod credentials;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

pub use challenge::{Challenge, parse_challenge};
pub use credentials::{Credential, CredentialSources};

/// Tokens are refreshed this long before they expire, so a request never carries a token that
/// dies in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// The distribution spec's default token lifetime when `expires_in` is missing.
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

/// The access a request needs, as token scopes (`repository:<name>:pull[,push]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

impl Scope {
    /// Pull access to `repository`.
    pub fn pull(repository: &str) -> Self {
        Self(vec![format!("repository:{repository}:pull")])
    }

    /// Pull and push access to `repository`, plus pull access to each mount source.
    pub fn push<'a>(repository: &str, mount_from: impl IntoIterator<Item = &'a str>) -> Self {
        let mut scopes = vec![format!("repository:{repository}:pull,push")];
        for source in mount_from {
            let scope = format!("repository:{source}:pull");
            if source != repository && !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Self(scopes)
    }

    /// No access at all (requests that never carry credentials).
    pub(crate) fn none() -> Self {
        Self(Vec::new())
    }

    /// The individual scope strings (each sent as its own `scope=` parameter).
    pub fn items(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// A token endpoint's answer (`token` or `access_token`).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long it lives.
    pub(crate) fn into_token(self) -> Option<(String, Duration)> {
        let token = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let lifetime = self.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Some((token, Duration::from_secs(lifetime)))
    }
}

#[derive(Debug, Clone)]
struct CachedToken {
    header: String,
    expires: Instant,
}

/// Per-client authentication state.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
    credentials: tokio::sync::Mutex<HashMap<String, Option<Credential>>>,
    /// Serialises token fetches so parallel requests that all hit a 401 share one token.
    pub(crate) fetch_lock: tokio::sync::Mutex<()>,
}

impl AuthState {
    /// The challenge last seen from `registry`.
    pub(crate) fn challenge(&self, registry: &str) -> Option<Challenge> {
        self.challenges.lock().ok()?.get(registry).cloned()
    }

    /// Remember the challenge `registry` sent.
    pub(crate) fn set_challenge(&self, registry: &str, challenge: Challenge) {
        if let Ok(mut map) = self.challenges.lock() {
            map.insert(registry.to_owned(), challenge);
        }
    }

    /// A cached, unexpired `Authorization` value for (registry, scope).
    pub(crate) fn token(&self, registry: &str, scope: &Scope) -> Option<String> {
        let map = self.tokens.lock().ok()?;
        let cached = map.get(&(registry.to_owned(), scope.to_string()))?;
        (Instant::now() + EXPIRY_MARGIN < cached.expires).then(|| cached.header.clone())
    }

    /// Cache a bearer token.
    pub(crate) fn store_token(
        &self,
        registry: &str,
        scope: &Scope,
        token: &str,
        lifetime: Duration,
    ) {
        if let Ok(mut map) = self.tokens.lock() {
            map.insert(
                (registry.to_owned(), scope.to_string()),
                CachedToken {
                    header: format!("Bearer {token}"),
                    expires: Instant::now() + lifetime,
                },
            );
        }
    }

    /// Drop the cached token for (registry, scope) if it is still `used` (a 401 proved it stale).
    pub(crate) fn invalidate(&self, registry: &str, scope: &Scope, used: &str) {
        if let Ok(mut map) = self.tokens.lock() {
            let key = (registry.to_owned(), scope.to_string());
            if map.get(&key).is_some_and(|t| t.header == used) {
                map.remove(&key);
            }
        }
    }

    /// Credentials for `registry`, looked up once per client.
    pub(crate) async fn credential(
        &self,
        sources: &CredentialSources,
        registry: &str,
    ) -> Result<Option<Credential>, crate::RegistryError> {
        let mut map = self.credentials.lock().await;
        if let Some(found) = map.get(registry) {
            return Ok(found.clone());
        }
        let found = sources.lookup(registry).await?;
        map.insert(registry.to_owned(), found.clone());
        Ok(found)
    }
}

/// `Basic <base64(user:password)>`.
pub(crate) fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_scope_includes_mount_sources_once() {
        let s = Scope::push("app", ["library/python", "library/python", "app"]);
        assert_eq!(
            s.items(),
            ["repository:app:pull,push", "repository:library/python:pull"]
        );
        assert_eq!(Scope::pull("x").to_string(), "repository:x:pull");
    }

    #[test]
    fn token_cache_expires_and_invalidates_only_the_used_token() {
        let state = AuthState::default();
        let scope = Scope::pull("x");
        state.store_token("r", &scope, "t1", Duration::from_secs(300));
        assert_eq!(state.token("r", &scope).as_deref(), Some("Bearer t1"));
        assert_eq!(state.token("r", &Scope::pull("y")), None);
        state.invalidate("r", &scope, "Bearer other");
        assert!(state.token("r", &scope).is_some());
        state.invalidate("r", &scope, "Bearer t1");
        assert_eq!(state.token("r", &scope), None);
        state.store_token("r", &scope, "short", Duration::from_secs(5));
        assert_eq!(state.token("r", &scope), None, "within the expiry margin");
    }

    #[test]
    fn token_response_accepts_token_or_access_token() {
        let r: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":30}"#).unwrap();
        assert_eq!(r.into_token(), Some(("a".into(), Duration::from_secs(30))));
        let r: TokenResponse = serde_json::from_str(r#"{"token":"t"}"#).unwrap();
        assert_eq!(r.into_token(), Some(("t".into(), Duration::from_secs(60))));
        let r: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(r.into_token(), None);
    }
}
