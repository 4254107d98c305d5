//! [`run`]: start the image's command in the rootless sandbox — its root the base, pyslip's
//! layers and the app layer; a private network namespace with only `lo`; the image's user —
//! watch it, decide, and kill everything.

use std::io::BufReader;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use layers::UnpackLimits;
use pyslip_sandbox::{ExitStatus, Running, Sandbox, SandboxError, StartOptions};

use crate::error::CheckError;
use crate::http;
use crate::image::BootImage;
use crate::outcome::{Failure, Passed, Workload};
use crate::sockets::{Listening, judge, listeners};

/// `$PORT` given to a web app: one no app hard-codes, so an app that ignores `$PORT` is caught
/// (the second when the image's own port is the first). Any port is free in the private
/// network namespace.
pub const CHECK_PORTS: [u16; 2] = [38017, 38019];
/// Env a web app gets unless its image sets it: one server worker. The check asks whether the
/// app starts and serves, not how much; a worker per CPU (pyslip's default start commands read
/// `WEB_CONCURRENCY`) would make the check slower, and on a busy machine a server that
/// health-checks its workers (uvicorn) may kill them before they finish importing the app.
pub const WEB_DEFAULTS: [(&str, &str); 1] = [("WEB_CONCURRENCY", "1")];
/// How long a worker must keep running.
pub const WORKER_GRACE: Duration = Duration::from_secs(3);
/// Interval between two looks at the socket table.
const POLL: Duration = Duration::from_millis(20);
/// How long a server that listens, but not yet as it should, gets to open the right socket
/// (servers may open another port first).
const SETTLE: Duration = Duration::from_secs(1);
/// How long to wait for the exit status after the probe failed (the server may be dying).
const EXIT_WAIT: Duration = Duration::from_millis(500);
/// The signal that ends a killed sandbox.
const SIGKILL: i32 = 9;
/// Lines of output shown with a failure.
const OUTPUT_LINES: usize = 30;
/// Bytes of output kept.
const OUTPUT_BYTES: usize = 64 * 1024;
/// Sockets per address family handed out by the sandbox (one request, one spare).
const SOCKETS: usize = 2;

/// One boot check.
#[derive(Debug, Clone)]
pub struct CheckRequest<'a> {
    /// The image config (JSON): Entrypoint, Cmd, Env, User, WorkingDir, ExposedPorts.
    pub config: &'a [u8],
    /// The read-only roots under the app layer, topmost first: pyslip's unpacked layers, then
    /// the unpacked base image.
    pub lower: &'a [PathBuf],
    /// The app layer's blob (gzip'd tar), unpacked into `scratch` as the topmost layer.
    pub app_layer: &'a Path,
    /// An empty directory for the check's files (the unpacked app layer, the overlay's upper and
    /// work dirs), on a file system with user xattrs. The caller removes it after [`run`]
    /// returned (the sandbox is gone by then).
    pub scratch: &'a Path,
    /// Web (must serve HTTP on `$PORT`) or worker (must keep running).
    pub workload: Workload,
    /// The path requested from a web app.
    pub path: &'a str,
    /// How long a web app gets to listen and answer.
    pub timeout: Duration,
    /// A 5xx answer fails the check instead of passing with a warning.
    pub strict: bool,
}

/// Runs the check: `Ok` when the image passed (maybe with a warning), [`CheckError::Failed`]
/// when it failed. Every process of the sandbox is killed before it returns.
pub fn run(req: &CheckRequest<'_>) -> Result<Passed, CheckError> {
    let image = BootImage::from_config(req.config)?;
    let app = req.scratch.join("app");
    let blob = fs_err::File::open(req.app_layer).map_err(CheckError::Io)?;
    layers::unpack_layers_into(&app, [BufReader::new(blob)], &UnpackLimits::default())
        .map_err(CheckError::Unpack)?;
    let (upper, work) = (req.scratch.join("upper"), req.scratch.join("work"));
    for dir in [&upper, &work] {
        fs_err::create_dir(dir).map_err(CheckError::Io)?;
    }
    let port = pick_port(&image);
    let env = match req.workload {
        Workload::Web => web_env(&image, port),
        Workload::Worker => image.env.clone(),
    };
    let sandbox = Sandbox {
        lower: std::iter::once(app)
            .chain(req.lower.iter().cloned())
            .collect(),
        upper,
        work,
        mounts: Vec::new(),
        env,
        cwd: image.workdir.clone(),
        hostname: "pyslip-check".to_owned(),
    };
    let options = StartOptions {
        private_network: true,
        run_as: Some(image.user),
        sockets: SOCKETS,
        output_limit: OUTPUT_BYTES,
    };
    let started = Instant::now();
    let running = sandbox
        .start(&image.argv, &options)
        .map_err(CheckError::Sandbox)?;
    let watch = Watch {
        running: &running,
        image: &image,
        started,
        deadline: started + req.timeout,
    };
    let verdict = match req.workload {
        Workload::Web => watch.web(port, req.path, req.strict, req.timeout),
        Workload::Worker => watch.worker(),
    };
    let stopped = running.stop();
    verdict.map_err(|failure| CheckError::Failed(with_output(failure, &stopped.output)))
}

/// The image's Env with `PORT` set to `port` and [`WEB_DEFAULTS`] for what it does not set.
fn web_env(image: &BootImage, port: u16) -> Vec<(String, String)> {
    let mut env = image.env_with("PORT", &port.to_string());
    for (key, value) in WEB_DEFAULTS {
        if !env.iter().any(|(k, _)| k == key) {
            env.push((key.to_owned(), value.to_owned()));
        }
    }
    env
}

/// The first of [`CHECK_PORTS`] that is neither the image's exposed port nor its `PORT`.
fn pick_port(image: &BootImage) -> u16 {
    let own: Vec<u16> = image
        .env
        .iter()
        .filter(|(k, _)| k == "PORT")
        .filter_map(|(_, v)| v.parse().ok())
        .chain(image.exposed_port)
        .collect();
    CHECK_PORTS
        .into_iter()
        .find(|p| !own.contains(p))
        .unwrap_or(CHECK_PORTS[0])
}

/// Puts the last lines of the sandbox's output into the failures that show it.
fn with_output(failure: Failure, output: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines
        .get(lines.len().saturating_sub(OUTPUT_LINES)..)
        .unwrap_or_default()
        .join("\n");
    match failure {
        Failure::Exited {
            workload, status, ..
        } => Failure::Exited {
            workload,
            status,
            output: tail,
        },
        Failure::Timeout { seconds, port, .. } => Failure::Timeout {
            seconds,
            port,
            output: tail,
        },
        other => other,
    }
}

/// A running image under watch.
struct Watch<'a> {
    running: &'a Running,
    image: &'a BootImage,
    started: Instant,
    deadline: Instant,
}

impl Watch<'_> {
    /// Fails when the command could not start or has ended.
    fn alive(&self, workload: Workload) -> Result<(), Failure> {
        match self.running.status() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Failure::Exited {
                workload,
                status,
                output: String::new(),
            }),
            // Killed from outside (an interrupted pyslip kills its sandboxes).
            Err(SandboxError::Lost(_)) => Err(Failure::Exited {
                workload,
                status: ExitStatus::Signal(SIGKILL),
                output: String::new(),
            }),
            Err(e) => Err(Failure::NotStarted {
                reason: describe(&e),
                command: self.image.shown_command(),
            }),
        }
    }

    /// Waits for a listener on `port`, then asks it for `path`.
    fn web(
        &self,
        port: u16,
        path: &str,
        strict: bool,
        timeout: Duration,
    ) -> Result<Passed, Failure> {
        let mut settling: Option<Instant> = None;
        let address = loop {
            self.alive(Workload::Web)?;
            // The table is gone when PID 1 just exited: the next look sees the status.
            let found = listeners(self.running.pid()).unwrap_or_default();
            let command = || self.image.shown_command();
            let wrong = match judge(&found, port) {
                Listening::Ready(address) => break address,
                Listening::Nothing => None,
                Listening::LoopbackOnly(address) => Some(Failure::LoopbackOnly {
                    address,
                    port,
                    command: command(),
                }),
                Listening::OtherPort(found) => Some(Failure::WrongPort {
                    found,
                    port,
                    command: command(),
                }),
            };
            if let Some(failure) = wrong {
                let since = *settling.get_or_insert_with(Instant::now);
                if since.elapsed() >= SETTLE || Instant::now() >= self.deadline {
                    return Err(failure);
                }
            }
            if Instant::now() >= self.deadline {
                return Err(Failure::Timeout {
                    seconds: timeout.as_secs(),
                    port,
                    output: String::new(),
                });
            }
            std::thread::sleep(POLL);
        };
        let answer = self.probe(address, port, path).map_err(|reason| {
            // A server that dies under the request: its exit and traceback say more.
            let until = Instant::now() + EXIT_WAIT;
            while Instant::now() < until {
                if let Err(exited) = self.alive(Workload::Web) {
                    return exited;
                }
                std::thread::sleep(POLL);
            }
            Failure::NoResponse {
                address,
                port,
                path: path.to_owned(),
                reason,
            }
        })?;
        let milliseconds = self.started.elapsed().as_millis() as u64;
        if answer.status >= 500 && strict {
            return Err(Failure::ServerError {
                path: path.to_owned(),
                status: answer.status,
                head: answer.head,
            });
        }
        Ok(Passed {
            workload: Workload::Web,
            port: Some(port),
            address: Some(address.to_string()),
            path: Some(path.to_owned()),
            status: Some(answer.status),
            milliseconds,
            warning: (answer.status >= 500).then_some(answer.head),
        })
    }

    /// One GET from inside the sandbox's network namespace.
    fn probe(&self, address: IpAddr, port: u16, path: &str) -> Result<http::Answer, String> {
        let target = match address {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        let mut stream = self
            .running
            .connect(SocketAddr::new(target, port), left.max(POLL))
            .map_err(|e| format!("connecting to {target}:{port}: {e}"))?;
        http::get(
            &mut stream,
            &format!("localhost:{port}"),
            path,
            self.deadline,
        )
        .map_err(|e| e.to_string())
    }

    /// A worker passes when it still runs after [`WORKER_GRACE`].
    fn worker(&self) -> Result<Passed, Failure> {
        while self.started.elapsed() < WORKER_GRACE {
            self.alive(Workload::Worker)?;
            std::thread::sleep(POLL);
        }
        self.alive(Workload::Worker)?;
        Ok(Passed {
            workload: Workload::Worker,
            port: None,
            address: None,
            path: None,
            status: None,
            milliseconds: self.started.elapsed().as_millis() as u64,
            warning: None,
        })
    }
}

/// A sandbox error with its cause, on one line.
fn describe(error: &SandboxError) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(env: &[(&str, &str)], exposed: Option<u16>) -> BootImage {
        BootImage {
            argv: vec!["python".into()],
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            user: (1000, 1000),
            workdir: "/app".into(),
            exposed_port: exposed,
        }
    }

    #[test]
    fn the_check_port_differs_from_the_images_own() {
        assert_eq!(pick_port(&image(&[("PORT", "8000")], Some(8000))), 38017);
        assert_eq!(pick_port(&image(&[("PORT", "38017")], None)), 38019);
        assert_eq!(pick_port(&image(&[], Some(38017))), 38019);
    }

    #[test]
    fn web_apps_get_port_and_one_worker_unless_the_image_sets_it() {
        let env = web_env(&image(&[("PORT", "8000"), ("A", "b")], Some(8000)), 38017);
        assert_eq!(
            env,
            [("A", "b"), ("PORT", "38017"), ("WEB_CONCURRENCY", "1")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let own = web_env(&image(&[("WEB_CONCURRENCY", "4")], None), 38017);
        assert_eq!(
            own.iter().filter(|(k, _)| k == "WEB_CONCURRENCY").count(),
            1
        );
        assert!(own.contains(&("WEB_CONCURRENCY".to_owned(), "4".to_owned())));
    }

    #[test]
    fn failures_get_the_last_lines_of_output() {
        let output: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let failure = with_output(
            Failure::Exited {
                workload: Workload::Web,
                status: pyslip_sandbox::ExitStatus::Code(1),
                output: String::new(),
            },
            output.as_bytes(),
        );
        let shown = failure.output().unwrap();
        assert_eq!(shown.lines().count(), OUTPUT_LINES);
        assert!(shown.ends_with("line 99"));
        assert!(failure.to_string().ends_with(": line 99"));
    }
}
