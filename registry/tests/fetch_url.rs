//! `Client::fetch_url_verified`: a plain URL downloaded through the registry client's HTTP stack
//! (retries, proxies, `NO_PROXY`), size-limited and sha256-checked, with nothing left behind on
//! failure. The fault server's blob URLs stand in for a file on a package index.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client_with, fast_retry};
use pyslip_digest::Digest;
use pyslip_registry::testing::{FaultServer, Route};
use pyslip_registry::{Client, ClientConfig, CredentialSources, ProxyConfig, RegistryError};

/// Host name that must not resolve: reaching it at all proves a proxy carried the request.
const UNRESOLVABLE: &str = "pyslip-test.invalid";

fn content() -> Vec<u8> {
    (0..100_000u32).map(|i| (i % 241) as u8).collect()
}

fn client(proxy: ProxyConfig) -> Client {
    Client::new(ClientConfig {
        credentials: CredentialSources::none(),
        retry: fast_retry(),
        proxy,
        ..ClientConfig::default()
    })
    .unwrap()
}

fn url(host: &str, digest: &Digest) -> url::Url {
    url::Url::parse(&format!("http://{host}/v2/files/blobs/{digest}")).unwrap()
}

fn entries(dir: &std::path::Path) -> usize {
    fs_err::read_dir(dir).unwrap().count()
}

#[tokio::test]
async fn downloads_and_verifies() {
    let server = FaultServer::builder().build().await;
    let digest = server.put_blob("files", content());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("sub/uv.whl");
    let size = client(ProxyConfig::none())
        .fetch_url_verified(&url(&server.registry(), &digest), &dest, &digest, 1 << 20)
        .await
        .unwrap();
    assert_eq!(size, content().len() as u64);
    assert_eq!(fs_err::read(&dest).unwrap(), content());
    assert!(
        server.requests().iter().all(|r| r.authorization.is_none()),
        "no credentials on a plain download"
    );
}

#[tokio::test]
async fn retries_503_and_resumes_a_broken_body() {
    let server = FaultServer::builder()
        .fail_with_status(Route::BlobGets, 503, None, 1)
        .reset_mid_body(Route::BlobGets, 1)
        .build()
        .await;
    let digest = server.put_blob("files", content());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f");
    client_with(CredentialSources::none())
        .fetch_url_verified(&url(&server.registry(), &digest), &dest, &digest, 1 << 20)
        .await
        .unwrap();
    assert_eq!(fs_err::read(&dest).unwrap(), content());
    let ranges: Vec<_> = server.requests().into_iter().map(|r| r.range).collect();
    assert_eq!(
        ranges,
        [None, None, Some("bytes=50000-".to_owned())],
        "503, then a body cut in half, then the rest"
    );
}

#[tokio::test]
async fn digest_mismatch_leaves_nothing() {
    let server = FaultServer::builder().build().await;
    let digest = server.put_blob("files", content());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f");
    let wrong = Digest::of(b"something else");
    let err = client(ProxyConfig::none())
        .fetch_url_verified(&url(&server.registry(), &digest), &dest, &wrong, 1 << 20)
        .await
        .unwrap_err();
    let RegistryError::DigestMismatch {
        expected, actual, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((expected, actual), (&wrong, &digest));
    assert_eq!(entries(dir.path()), 0, "no file and no temp file");
}

#[tokio::test]
async fn body_over_the_limit_is_refused_and_leaves_nothing() {
    let server = FaultServer::builder().build().await;
    let digest = server.put_blob("files", content());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f");
    let limit = content().len() as u64 - 1;
    let err = client(ProxyConfig::none())
        .fetch_url_verified(&url(&server.registry(), &digest), &dest, &digest, limit)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit: l, .. } if l == limit),
        "{err:?}"
    );
    assert_eq!(entries(dir.path()), 0);
}

#[tokio::test]
async fn endless_body_without_length_is_cut_off_at_the_limit() {
    let server = FaultServer::builder()
        .oversized(Route::BlobGets)
        .build()
        .await;
    let digest = Digest::of(b"x");
    let dir = tempfile::tempdir().unwrap();
    let err = client(ProxyConfig::none())
        .fetch_url_verified(
            &url(&server.registry(), &digest),
            &dir.path().join("f"),
            &digest,
            3 << 20,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err:?}");
    assert_eq!(entries(dir.path()), 0);
}

#[tokio::test]
async fn http_proxy_carries_the_request() {
    // The fault server doubles as the proxy: it serves absolute-form requests by path.
    let proxy = FaultServer::builder().build().await;
    let digest = proxy.put_blob("files", content());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f");
    let config = ProxyConfig {
        http: Some(format!("http://{}", proxy.registry())),
        ..ProxyConfig::none()
    };
    client(config)
        .fetch_url_verified(&url(UNRESOLVABLE, &digest), &dest, &digest, 1 << 20)
        .await
        .unwrap();
    assert_eq!(fs_err::read(&dest).unwrap(), content());
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].proxied_host.as_deref(), Some(UNRESOLVABLE));
}

#[tokio::test]
async fn no_proxy_hosts_bypass_the_proxy() {
    let proxy = FaultServer::builder().build().await;
    let digest = proxy.put_blob("files", content());
    let dir = tempfile::tempdir().unwrap();
    let config = ProxyConfig::from_vars(&[
        ("HTTP_PROXY".into(), format!("http://{}", proxy.registry())),
        (
            "NO_PROXY".into(),
            format!("example.org,.{UNRESOLVABLE},{UNRESOLVABLE}"),
        ),
    ]);
    let err = client(config)
        .fetch_url_verified(
            &url(UNRESOLVABLE, &digest),
            &dir.path().join("f"),
            &digest,
            1 << 20,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unreachable { ref host, .. } if host == UNRESOLVABLE),
        "went direct, and the name does not resolve: {err:?}"
    );
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
    assert_eq!(entries(dir.path()), 0);
}

#[tokio::test]
async fn loopback_is_never_proxied() {
    // A proxy that does not exist: any request sent to it would fail.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let server = FaultServer::builder().build().await;
    let digest = server.put_blob("files", content());
    let dir = tempfile::tempdir().unwrap();
    let config = ProxyConfig {
        http: Some(format!("http://{dead_addr}")),
        ..ProxyConfig::none()
    };
    client(config)
        .fetch_url_verified(
            &url(&server.registry(), &digest),
            &dir.path().join("f"),
            &digest,
            1 << 20,
        )
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 1);
}

/// A real TLS server (`openssl s_server -WWW`, serving files of its working directory) with a
/// certificate from a throwaway CA.
struct TlsServer {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TlsServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl is installed");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "2",
                "-subj",
                "/CN=pyslip test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "srv.key",
                "-out",
                "srv.csr",
            ],
        ]
        .concat());
        fs_err::write(
            dir.path().join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext",
            "-out",
            "srv.pem",
        ]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("openssl")
            .args([
                "s_server", "-quiet", "-WWW", "-cert", "srv.pem", "-key", "srv.key",
            ])
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "s_server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self { child, port, dir }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn https_needs_the_ca_and_trusts_extra_ca_files() {
    let server = TlsServer::start();
    fs_err::write(server.dir.path().join("file.bin"), content()).unwrap();
    let digest = Digest::of(&content());
    let url = url::Url::parse(&format!("https://127.0.0.1:{}/file.bin", server.port)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("f");
    // The system roots do not know the throwaway CA.
    let err = client(ProxyConfig::none())
        .fetch_url_verified(&url, &dest, &digest, 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Tls { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("SSL_CERT_FILE"));
    let trusting = Client::new(ClientConfig {
        credentials: CredentialSources::none(),
        retry: fast_retry(),
        proxy: ProxyConfig::none(),
        extra_ca_files: vec![server.dir.path().join("ca.pem")],
        ..ClientConfig::default()
    })
    .unwrap();
    trusting
        .fetch_url_verified(&url, &dest, &digest, 1 << 20)
        .await
        .unwrap();
    assert_eq!(fs_err::read(&dest).unwrap(), content());
}
