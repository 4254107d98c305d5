//! The installer's environment: what is passed through from the build's environment, what pyslip
//! sets, and how secrets are kept out of keys and logs.

use std::path::{Path, PathBuf};

/// Where the CA bundle is mounted in the sandbox.
pub(crate) const CA_TARGET: &str = "/.pyslip/ca.pem";
/// Fallback CA bundle when `SSL_CERT_FILE` is unset (Debian/Ubuntu/Alpine location).
const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";
/// PATH inside the sandbox (the official python image's).
pub(crate) const SANDBOX_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `PIP_*`/`UV_*` variables pyslip sets itself or that would redirect the install away from the
/// system interpreter or read host paths; they are never passed through.
const NOT_PASSED: &[&str] = &[
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_ROOT",
    "PIP_USER",
    "PIP_REQUIRE_VIRTUALENV",
    "PIP_CACHE_DIR",
    "PIP_NO_CACHE_DIR",
    "PIP_CERT",
    "PIP_CONFIG_FILE",
    "PIP_EDITABLE",
    "PIP_SRC",
    "UV_CACHE_DIR",
    "UV_NO_CACHE",
    "UV_LINK_MODE",
    "UV_PYTHON",
    "UV_PYTHON_DOWNLOADS",
    "UV_PYTHON_INSTALL_DIR",
    "UV_SYSTEM_PYTHON",
    "UV_BREAK_SYSTEM_PACKAGES",
    "UV_COMPILE_BYTECODE",
    "UV_PROJECT_ENVIRONMENT",
    "UV_CONFIG_FILE",
    "UV_NO_CONFIG",
    "UV_NATIVE_TLS",
    "UV_SYSTEM_CERTS",
    "UV_TOOL_DIR",
    "UV_TOOL_BIN_DIR",
    "UV_INSTALL_DIR",
    "UV_FROZEN",
    "UV_LOCKED",
    "UV_NO_SYNC",
];

/// Passed-through variables that cannot change what gets installed (timeouts, output, auth);
/// they stay out of the cache key.
const NOT_KEYED: &[&str] = &[
    "PIP_DEFAULT_TIMEOUT",
    "PIP_TIMEOUT",
    "PIP_RETRIES",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "PIP_PROGRESS_BAR",
    "PIP_NO_INPUT",
    "PIP_QUIET",
    "PIP_VERBOSE",
    "PIP_NO_COLOR",
    "PIP_ROOT_USER_ACTION",
    "PIP_KEYRING_PROVIDER",
    "UV_HTTP_TIMEOUT",
    "UV_REQUEST_TIMEOUT",
    "UV_HTTP_RETRIES",
    "UV_CONCURRENT_DOWNLOADS",
    "UV_CONCURRENT_BUILDS",
    "UV_CONCURRENT_INSTALLS",
    "UV_NO_PROGRESS",
    "UV_KEYRING_PROVIDER",
    "UV_OFFLINE",
];

/// Variables that name files the installer reads (constraints, overrides): the files are keyed
/// by content, mounted read-only into the sandbox, and the variable points at the mount.
const INPUT_FILES: &[&str] = &[
    "PIP_CONSTRAINT",
    "UV_CONSTRAINT",
    "UV_OVERRIDE",
    "UV_BUILD_CONSTRAINT",
];
/// Where the files of [`INPUT_FILES`] are mounted in the sandbox.
pub(crate) const INPUTS_TARGET: &str = "/.pyslip/inputs";

/// Proxy variables, passed through in both spellings and never keyed.
const PROXY: &[&str] = &["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"];

/// Words that mark a variable's whole value as a secret.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "TOKEN",
    "SECRET",
    "USERNAME",
    "CREDENTIAL",
    "AUTH",
    "KEY",
];

/// The part of the build's environment that reaches the installer.
#[derive(Debug, Clone, Default)]
pub(crate) struct PassThrough {
    /// `(name, value)` pairs passed into the sandbox as they are.
    pub vars: Vec<(String, String)>,
    /// Host CA bundle to mount read-only (canonical path).
    pub ca_bundle: Option<PathBuf>,
    /// Files named by [`INPUT_FILES`] variables: (variable, canonical host paths).
    pub input_files: Vec<(String, Vec<PathBuf>)>,
}

/// Where the steps' own directories are, as the steps see them.
#[derive(Debug, Clone)]
pub(crate) struct EnvPaths {
    /// uv's package cache.
    pub uv_cache: String,
    /// pip's package cache.
    pub pip_cache: String,
    /// The CA bundle (empty: none).
    pub ca: String,
    /// `HOME`.
    pub home: String,
    /// `TMPDIR`.
    pub tmp: String,
    /// `PATH`.
    pub path: String,
    /// Whether the steps run in the sandbox (input files are then at [`INPUTS_TARGET`]).
    pub sandboxed: bool,
}

impl EnvPaths {
    /// The directories of steps that run on this host (no namespaces): the package caches of
    /// `cache_dir`, the CA bundle where it lies, and the given `HOME`, `TMPDIR` and `PATH`.
    pub(crate) fn on_host(
        cache_dir: &Path,
        pass: &PassThrough,
        home: &Path,
        tmp: &Path,
        path: String,
    ) -> Self {
        let shown = |p: &Path| p.to_string_lossy().into_owned();
        EnvPaths {
            uv_cache: shown(&cache_dir.join(pyslip_lifecycle::folders::UV_CACHE)),
            pip_cache: shown(&cache_dir.join(pyslip_lifecycle::folders::PIP_CACHE)),
            ca: pass.ca_bundle.as_deref().map(shown).unwrap_or_default(),
            home: shown(home),
            tmp: shown(tmp),
            path,
            sandboxed: false,
        }
    }
}

/// The image has no compiler (python:X.Y-slim): building a C extension with the host's would
/// make a different image than the sandbox does, so steps on the host fail the same way.
pub(crate) const NO_COMPILER: [(&str, &str); 2] = [
    ("CC", "pyslip-no-compiler-in-image"),
    ("CXX", "pyslip-no-compiler-in-image"),
];

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
}

fn is_proxy(name: &str) -> bool {
    PROXY.iter().any(|p| p.eq_ignore_ascii_case(name))
}

impl PassThrough {
    /// Picks `PIP_*`, `UV_*` and proxy variables from `host_env`, and the CA bundle
    /// (`SSL_CERT_FILE`, else the system bundle) when it exists.
    pub fn from_host(host_env: &[(String, String)]) -> Self {
        let mut vars: Vec<(String, String)> = host_env
            .iter()
            .filter(|(k, _)| {
                ((k.starts_with("PIP_") || k.starts_with("UV_"))
                    && !NOT_PASSED.contains(&k.as_str()))
                    || is_proxy(k)
            })
            .cloned()
            .collect();
        vars.sort();
        vars.dedup_by(|a, b| a.0 == b.0);
        let ca = host_env
            .iter()
            .rev()
            .find(|(k, _)| k == "SSL_CERT_FILE")
            .map(|(_, v)| PathBuf::from(v))
            .filter(|p| p.is_file())
            .or_else(|| Some(PathBuf::from(SYSTEM_CA)).filter(|p| p.is_file()));
        // Bind sources must not contain symlinks (the sandbox refuses them); the user's CA path
        // is trusted, so resolve it here.
        let ca_bundle = ca.and_then(|p| fs_err::canonicalize(&p).ok());
        let input_files = vars
            .iter()
            .filter(|(k, _)| INPUT_FILES.contains(&k.as_str()))
            .map(|(k, v)| {
                let files = v
                    .split_whitespace()
                    .map(|p| fs_err::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p)))
                    .collect();
                (k.clone(), files)
            })
            .collect();
        PassThrough {
            vars,
            ca_bundle,
            input_files,
        }
    }

    /// Read-only mounts of the input files, at `/.pyslip/inputs/<var>-<n>`.
    pub fn input_mounts(&self) -> Vec<pyslip_sandbox::BindMount> {
        let mut out = Vec::new();
        for (var, files) in &self.input_files {
            for (i, file) in files.iter().enumerate() {
                out.push(pyslip_sandbox::BindMount {
                    source: file.clone(),
                    target: format!("{INPUTS_TARGET}/{var}-{i}"),
                    writable: false,
                });
            }
        }
        out
    }

    /// Index-related settings that change what gets installed, credentials stripped, sorted.
    /// Input files ([`INPUT_FILES`]) are keyed by their content, not their path.
    pub fn keyed(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .filter(|(k, _)| !is_proxy(k) && !NOT_KEYED.contains(&k.as_str()) && !is_secret_name(k))
            .map(
                |(k, v)| match self.input_files.iter().find(|(var, _)| var == k) {
                    Some((_, files)) => (k.clone(), content_digests(files)),
                    None => (k.clone(), strip_credentials(v)),
                },
            )
            .collect()
    }

    /// Every string that must not appear in logs: whole values of secret-named variables and the
    /// user-info parts of URLs in any passed value.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.vars {
            if is_secret_name(k) && !v.is_empty() {
                out.push(v.clone());
            }
            for word in v.split([' ', ',']) {
                if let Ok(url) = url::Url::parse(word) {
                    if let Some(p) = url.password() {
                        out.push(p.to_owned());
                        if let Ok(decoded) = urldecode(p) {
                            out.push(decoded);
                        }
                    }
                    if !url.username().is_empty() {
                        out.push(url.username().to_owned());
                    }
                }
            }
        }
        out.retain(|s| s.len() >= 3);
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out.dedup();
        out
    }

    /// The environment of the install steps: pyslip's fixed settings plus the passed-through
    /// variables, with the steps' own directories at `paths`.
    pub fn step_env(&self, mtime: u64, paths: &EnvPaths) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self.vars.clone();
        let fixed = [
            ("PATH", paths.path.clone()),
            ("HOME", paths.home.clone()),
            ("LANG", "C.UTF-8".to_owned()),
            ("TMPDIR", paths.tmp.clone()),
            ("NO_COLOR", "1".to_owned()),
            // Reproducible bytecode (checked-hash pycs) and build backends' timestamps.
            ("SOURCE_DATE_EPOCH", mtime.to_string()),
            ("PYTHONHASHSEED", "0".to_owned()),
            // The interpreter running the installer must not leave stdlib pycs in the layer.
            ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
            ("UV_CACHE_DIR", paths.uv_cache.clone()),
            ("UV_LINK_MODE", "copy".to_owned()),
            ("UV_PYTHON_DOWNLOADS", "never".to_owned()),
            ("UV_NO_PROGRESS", "1".to_owned()),
            ("PIP_CACHE_DIR", paths.pip_cache.clone()),
            ("PIP_NO_INPUT", "1".to_owned()),
            ("PIP_PROGRESS_BAR", "off".to_owned()),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1".to_owned()),
            ("PIP_ROOT_USER_ACTION", "ignore".to_owned()),
            // No pip.conf of the image or the host: pip is configured by PIP_* only (keyed).
            ("PIP_CONFIG_FILE", "/dev/null".to_owned()),
        ];
        for (k, v) in fixed {
            env.retain(|(name, _)| name != k);
            env.push((k.to_owned(), v));
        }
        if paths.sandboxed {
            for (var, files) in &self.input_files {
                let mounted: Vec<String> = (0..files.len())
                    .map(|i| format!("{INPUTS_TARGET}/{var}-{i}"))
                    .collect();
                env.retain(|(name, _)| name != var);
                env.push((var.clone(), mounted.join(" ")));
            }
        }
        if self.ca_bundle.is_some() {
            for k in [
                "SSL_CERT_FILE",
                "PIP_CERT",
                "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE",
            ] {
                env.retain(|(name, _)| name != k);
                env.push((k.to_owned(), paths.ca.clone()));
            }
            // uv reads the bundle through the system store (`SSL_CERT_FILE`); `UV_SYSTEM_CERTS`
            // is the name uv 0.13 uses (it warns that `UV_NATIVE_TLS` is deprecated).
            env.retain(|(name, _)| name != "UV_SYSTEM_CERTS");
            env.push(("UV_SYSTEM_CERTS".to_owned(), "1".to_owned()));
        }
        env
    }
}

/// `sha256:<hex>` of each file's content (or `missing:<path>`), space-separated.
fn content_digests(files: &[PathBuf]) -> String {
    use sha2::Digest as _;
    files
        .iter()
        .map(|f| match fs_err::read(f) {
            Ok(bytes) => format!("sha256:{:x}", sha2::Sha256::digest(&bytes)),
            Err(_) => format!("missing:{}", f.display()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces every secret in `text` with `***`.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        out = out.replace(s.as_str(), "***");
    }
    out
}

fn urldecode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8(bytes)
}

/// Removes user info from every URL in `value` (space- or comma-separated lists, as
/// `PIP_EXTRA_INDEX_URL` allows): `https://user:pass@host/simple` → `https://host/simple`.
/// Words that are not URLs are kept as they are.
pub fn strip_credentials(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if let Ok(mut url) = url::Url::parse(word)
            && (!url.username().is_empty() || url.password().is_some())
            && url.set_username("").is_ok()
            && url.set_password(None).is_ok()
        {
            out.push_str(url.as_str());
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in value.chars() {
        if c == ' ' || c == ',' {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn credentials_are_stripped_from_url_lists() {
        assert_eq!(
            strip_credentials("https://user:pass@host/simple"),
            "https://host/simple"
        );
        assert_eq!(
            strip_credentials("https://a:b@x.org/s https://y.org/t,https://tok@z.org/u"),
            "https://x.org/s https://y.org/t,https://z.org/u"
        );
        assert_eq!(strip_credentials("/opt/wheels"), "/opt/wheels");
    }

    #[test]
    fn pass_through_picks_index_and_proxy_settings_only() {
        let p = PassThrough::from_host(&env(&[
            ("PIP_INDEX_URL", "https://user1:s3cr3t@idx.example/simple"),
            ("UV_CACHE_DIR", "/host/cache"),
            ("HOME", "/home/me"),
            ("https_proxy", "http://proxy:3128"),
            ("UV_INDEX_PRIV_PASSWORD", "hunter22"),
            ("UV_HTTP_TIMEOUT", "60"),
        ]));
        let names: Vec<&str> = p.vars.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "PIP_INDEX_URL",
                "UV_HTTP_TIMEOUT",
                "UV_INDEX_PRIV_PASSWORD",
                "https_proxy"
            ]
        );
        assert_eq!(
            p.keyed(),
            env(&[("PIP_INDEX_URL", "https://idx.example/simple")])
        );
        let secrets = p.secrets();
        assert!(secrets.contains(&"s3cr3t".to_owned()));
        assert!(secrets.contains(&"hunter22".to_owned()));
        assert_eq!(
            redact("GET https://user1:s3cr3t@idx hunter22", &secrets),
            "GET https://***:***@idx ***"
        );
    }
}
