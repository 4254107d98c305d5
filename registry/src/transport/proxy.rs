//! Proxy settings: `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (upper or lower
//! case), with curl's `NO_PROXY` rules (host suffixes, IPs, CIDR ranges, `*`). Loopback hosts
//! are never proxied, as in Go's `net/http` (so crane, skopeo and podman agree with pyslip about
//! a registry on `127.0.0.1`).

/// Makes a proxy for one URL scheme (or all).
type MakeProxy = fn(&str) -> reqwest::Result<reqwest::Proxy>;

/// Always bypass the proxy for these.
const LOOPBACK: &str = "localhost,127.0.0.0/8,::1";

/// Which proxy each request goes through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Proxy for `http://` URLs (`HTTP_PROXY`).
    pub http: Option<String>,
    /// Proxy for `https://` URLs (`HTTPS_PROXY`).
    pub https: Option<String>,
    /// Proxy for both when the specific one is unset (`ALL_PROXY`).
    pub all: Option<String>,
    /// Comma-separated hosts, domains, IPs and CIDR ranges reached directly (`NO_PROXY`).
    pub no_proxy: Option<String>,
}

impl ProxyConfig {
    /// No proxy at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// From this process's environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From a list of environment variables (the last value of a name wins).
    pub fn from_vars(vars: &[(String, String)]) -> Self {
        Self::from_lookup(|name| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let first = |upper: &str| {
            [upper.to_owned(), upper.to_ascii_lowercase()]
                .iter()
                .find_map(|name| get(name).filter(|v| !v.trim().is_empty()))
        };
        Self {
            http: first("HTTP_PROXY"),
            https: first("HTTPS_PROXY"),
            all: first("ALL_PROXY"),
            no_proxy: first("NO_PROXY"),
        }
    }

    /// Configure `builder` with exactly these proxies (the environment is not read again).
    pub(crate) fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, reqwest::Error> {
        builder = builder.no_proxy();
        let bypass = std::iter::once(LOOPBACK)
            .chain(self.no_proxy.as_deref())
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        let kinds: [(&Option<String>, MakeProxy); 3] = [
            (&self.http, |u| reqwest::Proxy::http(u)),
            (&self.https, |u| reqwest::Proxy::https(u)),
            (&self.all, |u| reqwest::Proxy::all(u)),
        ];
        for (value, make) in kinds {
            if let Some(url) = value {
                let proxy = make(url)?.no_proxy(reqwest::NoProxy::from_string(&bypass));
                builder = builder.proxy(proxy);
            }
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_upper_then_lower_case_and_skips_empty_values() {
        let vars = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let c = ProxyConfig::from_vars(&vars(&[
            ("https_proxy", "http://lower:1"),
            ("HTTP_PROXY", ""),
            ("http_proxy", "http://h:2"),
            ("no_proxy", "example.org"),
            ("NO_PROXY", "internal"),
        ]));
        assert_eq!(c.https.as_deref(), Some("http://lower:1"));
        assert_eq!(c.http.as_deref(), Some("http://h:2"));
        assert_eq!(c.all, None);
        assert_eq!(c.no_proxy.as_deref(), Some("internal"));
    }

    #[test]
    fn bad_proxy_url_is_an_error() {
        let c = ProxyConfig {
            https: Some("::not a url::".into()),
            ..ProxyConfig::none()
        };
        assert!(c.apply(reqwest::Client::builder()).is_err());
    }
}
