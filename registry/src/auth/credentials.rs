//! Registry credentials from podman's and Docker's auth files and `docker-credential-*` helpers.
//!
//! Hand-written rather than using the `docker_credential` crate: that crate reads only Docker's
//! config from the process environment, while pyslip must also read `REGISTRY_AUTH_FILE` and
//! podman's `${XDG_RUNTIME_DIR}/containers/auth.json` in a fixed order, with injectable sources.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use crate::error::RegistryError;
use crate::reference::DOCKER_HUB;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (Basic auth, or the token endpoint's Basic auth).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`, or a helper's `<token>` user).
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Self::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

/// Where credentials are looked up, in order. Built from the environment by [`Self::from_env`];
/// tests build it by hand.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    /// `REGISTRY_AUTH_FILE`.
    pub registry_auth_file: Option<PathBuf>,
    /// `${XDG_RUNTIME_DIR}` (podman writes `containers/auth.json` there).
    pub xdg_runtime_dir: Option<PathBuf>,
    /// Docker's config directory: `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// `PATH` used to find `docker-credential-<name>` helpers (the process `PATH` when `None`).
    pub helper_path: Option<OsString>,
}

impl CredentialSources {
    /// Sources from the process environment.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            docker_config_dir: var("DOCKER_CONFIG")
                .or_else(|| var("HOME").map(|h| h.join(".docker"))),
            helper_path: None,
        }
    }

    /// No sources: always anonymous.
    pub fn none() -> Self {
        Self::default()
    }

    /// The auth files to consult, in order.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        files.extend(self.registry_auth_file.clone());
        files.extend(
            self.xdg_runtime_dir
                .as_ref()
                .map(|d| d.join("containers").join("auth.json")),
        );
        files.extend(
            self.docker_config_dir
                .as_ref()
                .map(|d| d.join("config.json")),
        );
        files
    }

    /// Find credentials for `registry` (as written in references, e.g. `docker.io`,
    /// `127.0.0.1:5001`). The first file that has an answer wins.
    pub async fn lookup(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        for path in self.files() {
            let Some(file) = AuthFile::read(&path)? else {
                continue;
            };
            if let Some(helper) = file.cred_helpers.get(registry).or_else(|| {
                file.cred_helpers
                    .iter()
                    .find(|(k, _)| normalise_key(k) == registry)
                    .map(|(_, v)| v)
            }) {
                return self.run_helper(helper, registry).await;
            }
            let entry = file
                .auths
                .iter()
                .find(|(key, _)| normalise_key(key) == registry)
                .map(|(_, entry)| entry);
            if let Some(entry) = entry
                && let Some(cred) = entry.credential(&path)?
            {
                return Ok(Some(cred));
            }
            if let Some(store) = &file.creds_store
                && let Some(cred) = self.run_helper(store, registry).await?
            {
                return Ok(Some(cred));
            }
        }
        Ok(None)
    }

    /// Run `docker-credential-<helper> get` with the server URL on stdin.
    async fn run_helper(
        &self,
        helper: &str,
        registry: &str,
    ) -> Result<Option<Credential>, RegistryError> {
        let fail = |message: String| RegistryError::CredentialHelper {
            helper: helper.to_owned(),
            registry: registry.to_owned(),
            message,
        };
        if !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(fail(
                "helper name has characters other than letters, digits, '-', '_', '.'".into(),
            ));
        }
        let server_url = if registry == DOCKER_HUB {
            "https://index.docker.io/v1/".to_owned()
        } else {
            registry.to_owned()
        };
        let program = format!("docker-credential-{helper}");
        let program = match &self.helper_path {
            Some(path) => std::env::split_paths(path)
                .map(|dir| dir.join(&program))
                .find(|p| p.is_file())
                .ok_or_else(|| fail("not found on PATH".into()))?,
            None => PathBuf::from(program),
        };
        let mut child = tokio::process::Command::new(&program)
            .arg("get")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may exit without reading stdin; its exit status and output tell the rest.
            let _ = stdin.write_all(server_url.as_bytes()).await;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            // Docker's helpers print this when they simply have nothing for the server.
            if stdout.contains("credentials not found") {
                return Ok(None);
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            let message = if stderr.trim().is_empty() {
                stdout.trim()
            } else {
                stderr.trim()
            };
            return Err(fail(message.chars().take(300).collect()));
        }
        #[derive(Deserialize)]
        struct HelperOutput {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let out: HelperOutput =
            serde_json::from_str(&stdout).map_err(|e| fail(format!("unreadable output: {e}")))?;
        if out.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if out.username == "<token>" {
            Credential::IdentityToken(out.secret)
        } else {
            Credential::Basic {
                username: out.username,
                password: out.secret,
            }
        }))
    }
}

/// `host` of an `auths`/`credHelpers` key: scheme and path stripped, Docker Hub's aliases folded.
fn normalise_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB,
        other => other,
    }
}

/// The parts of `config.json` / `auth.json` we use.
#[derive(Debug, Default, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl AuthFile {
    /// Read and parse; a missing file is `None`, a malformed one an error naming it.
    fn read(path: &Path) -> Result<Option<Self>, RegistryError> {
        let text = match fs_err::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(RegistryError::CredentialsFile {
                    path: path.to_owned(),
                    source: Box::new(e),
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| RegistryError::CredentialsFile {
                path: path.to_owned(),
                source: Box::new(e),
            })
    }
}

/// Why an `auth` value is unusable.
#[derive(Debug, thiserror::Error)]
#[error("the \"auth\" value is not base64 of user:password")]
struct BadAuthValue;

impl AuthEntry {
    fn credential(&self, path: &Path) -> Result<Option<Credential>, RegistryError> {
        if let Some(token) = self.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken(token.clone())));
        }
        if let Some(auth) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let bad = || RegistryError::CredentialsFile {
                path: path.to_owned(),
                source: Box::new(BadAuthValue),
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credential::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            }));
        }
        match (&self.username, &self.password) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Ok(Some(Credential::Basic {
                    username: username.clone(),
                    password: password.clone(),
                }))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
