//! What a check found: a pass (maybe with a warning), or the reason it failed, each with the
//! words the user sees and the JSON `--json` prints.

use std::fmt;
use std::net::IpAddr;

use pyslip_sandbox::ExitStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sockets::Listener;

/// Which kind of process the image runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// An HTTP server that must listen on `$PORT` on all interfaces and answer.
    Web,
    /// A background process that must keep running.
    Worker,
}

/// A passed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passed {
    /// What was checked.
    pub workload: Workload,
    /// `$PORT` given to the server (web).
    pub port: Option<u16>,
    /// The address it listened on: `0.0.0.0` or `::` (web).
    pub address: Option<String>,
    /// The path requested (web).
    pub path: Option<String>,
    /// The HTTP status of the answer (web).
    pub status: Option<u16>,
    /// Milliseconds from the start to the first response (web) or that the worker was watched.
    pub milliseconds: u64,
    /// For a 5xx answer (not a failure without strict mode): its status line and first lines.
    pub warning: Option<Vec<String>>,
}

impl Passed {
    /// The `check` object of `--json` (`cached` says whether it was this run's result).
    pub fn json(&self, cached: bool) -> Value {
        let mut value = json!({
            "passed": true,
            "cached": cached,
            "workload": self.workload,
            "port": self.port,
            "address": self.address,
            "path": self.path,
            "status": self.status,
            "warning": self.warning.as_ref().map(|lines| lines.join("\n")),
        });
        let key = match self.workload {
            Workload::Web => "first_response_ms",
            Workload::Worker => "running_ms",
        };
        value[key] = json!(self.milliseconds);
        value
    }
}

/// Why an image failed the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server listens on `$PORT` only on a loopback address.
    LoopbackOnly {
        /// The address (`127.0.0.1`, `::1`).
        address: IpAddr,
        /// `$PORT`.
        port: u16,
        /// The image's command, as shown to the user.
        command: String,
    },
    /// The server listens, but not on `$PORT`.
    WrongPort {
        /// Where it listens.
        found: Listener,
        /// `$PORT`.
        port: u16,
        /// The image's command.
        command: String,
    },
    /// The process ended (before listening, or a worker within the grace time).
    Exited {
        /// What was checked.
        workload: Workload,
        /// How it ended.
        status: ExitStatus,
        /// The last lines of its output.
        output: String,
    },
    /// The command could not be started at all.
    NotStarted {
        /// The sandbox's reason (program not found, not executable …).
        reason: String,
        /// The image's command.
        command: String,
    },
    /// Nothing listened within the timeout.
    Timeout {
        /// The timeout.
        seconds: u64,
        /// `$PORT`.
        port: u16,
        /// The output so far.
        output: String,
    },
    /// The server listens on `$PORT` but gave no HTTP answer.
    NoResponse {
        /// Where it listens.
        address: IpAddr,
        /// `$PORT`.
        port: u16,
        /// The path requested.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A 5xx answer in strict mode.
    ServerError {
        /// The path requested.
        path: String,
        /// The status.
        status: u16,
        /// The status line and the body's first lines.
        head: Vec<String>,
    },
}

/// `status 3` / `signal 9`.
pub fn describe_status(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(code) => format!("status {code}"),
        ExitStatus::Signal(signal) => format!("signal {signal}"),
    }
}

/// The last non-empty line of `output` (a traceback's error line).
fn gist(output: &str) -> Option<&str> {
    output.lines().map(str::trim).rfind(|l| !l.is_empty())
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::LoopbackOnly {
                address,
                port,
                command,
            } => write!(
                f,
                "the server listens on {} only, so nothing outside the container can reach it (command: {command})",
                socket(*address, *port)
            ),
            Failure::WrongPort { found, port, .. } => write!(
                f,
                "the server listens on port {} ({}), not on $PORT ({port})",
                found.port,
                socket(found.addr, found.port)
            ),
            Failure::Exited {
                workload,
                status,
                output,
            } => {
                match workload {
                    Workload::Web => write!(
                        f,
                        "the app exited with {} before it listened",
                        describe_status(*status)
                    )?,
                    Workload::Worker => write!(
                        f,
                        "the worker exited with {} instead of running",
                        describe_status(*status)
                    )?,
                }
                match gist(output) {
                    Some(line) => write!(f, ": {line}"),
                    None => write!(f, " (no output)"),
                }
            }
            Failure::NotStarted { reason, command } => {
                write!(
                    f,
                    "the command could not be started: {reason} (command: {command})"
                )
            }
            Failure::Timeout { seconds, port, .. } => {
                write!(f, "nothing listened on $PORT ({port}) within {seconds} s")
            }
            Failure::NoResponse {
                address,
                port,
                path,
                reason,
            } => write!(
                f,
                "the server listens on {} but GET {path} got no HTTP answer: {reason}",
                socket(*address, *port)
            ),
            Failure::ServerError { path, head, .. } => {
                write!(
                    f,
                    "GET {path} answered {} (--check-strict)",
                    head.join(" | ")
                )
            }
        }
    }
}

fn socket(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

impl Failure {
    /// A stable name for `--json` (`loopback_only`, `wrong_port`, `exited`, `not_started`,
    /// `timeout`, `no_response`, `server_error`).
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::LoopbackOnly { .. } => "loopback_only",
            Failure::WrongPort { .. } => "wrong_port",
            Failure::Exited { .. } => "exited",
            Failure::NotStarted { .. } => "not_started",
            Failure::Timeout { .. } => "timeout",
            Failure::NoResponse { .. } => "no_response",
            Failure::ServerError { .. } => "server_error",
        }
    }

    /// The app's output to show above the error line, when it explains the failure.
    pub fn output(&self) -> Option<&str> {
        match self {
            Failure::Exited { output, .. } | Failure::Timeout { output, .. } => {
                Some(output.as_str()).filter(|o| !o.trim().is_empty())
            }
            Failure::ServerError { .. } => None,
            _ => None,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            Failure::LoopbackOnly { .. } => "bind all interfaces, 0.0.0.0, on $PORT: e.g. `gunicorn --bind 0.0.0.0:$PORT`, `uvicorn --host 0.0.0.0 --port $PORT`, `app.run(host=\"0.0.0.0\", port=int(os.environ[\"PORT\"]))`".to_owned(),
            Failure::WrongPort { port, .. } => format!(
                "read the port from the PORT environment variable when the app starts (platforms set it; the check set PORT={port}): e.g. `--bind 0.0.0.0:$PORT` or `int(os.environ.get(\"PORT\", 8000))`"
            ),
            Failure::Exited { workload: Workload::Web, .. } => "the output above shows why it stopped; fix that error (the same happens when the image starts on a platform)".to_owned(),
            Failure::Exited { workload: Workload::Worker, .. } => "a worker must keep running: the output above shows why it stopped; if the image is a web server, build it with --workload web".to_owned(),
            Failure::NotStarted { .. } => "the start command's program must exist in the image: add the server to the dependencies, or fix --cmd / `cmd` in [tool.pyslip]".to_owned(),
            Failure::Timeout { .. } => "a web app must listen on 0.0.0.0:$PORT; if it needs longer to start raise --check-timeout SECS, or build it with --workload worker if it serves no HTTP".to_owned(),
            Failure::NoResponse { .. } => "the check sends one HTTP GET: make --check-path a route that answers quickly, or build the image with --workload worker if it does not speak HTTP".to_owned(),
            Failure::ServerError { .. } => "the app started but the page failed (often a database or secret the check cannot provide): point --check-path at a route that needs neither, or drop --check-strict to make this a warning".to_owned(),
        }
    }

    /// The `check` object of `--json`.
    pub fn json(&self) -> Value {
        let mut value = json!({
            "passed": false,
            "kind": self.kind(),
            "message": self.to_string(),
        });
        let fields: Vec<(&str, Value)> = match self {
            Failure::LoopbackOnly { address, port, .. } => {
                vec![
                    ("port", json!(port)),
                    ("address", json!(address.to_string())),
                ]
            }
            Failure::WrongPort { found, port, .. } => vec![
                ("port", json!(port)),
                ("found_port", json!(found.port)),
                ("address", json!(found.addr.to_string())),
            ],
            Failure::Exited { status, .. } => {
                vec![("exit_status", json!(describe_status(*status)))]
            }
            Failure::NotStarted { .. } => vec![],
            Failure::Timeout { seconds, port, .. } => {
                vec![("port", json!(port)), ("timeout_seconds", json!(seconds))]
            }
            Failure::NoResponse {
                address,
                port,
                path,
                ..
            } => vec![
                ("port", json!(port)),
                ("address", json!(address.to_string())),
                ("path", json!(path)),
            ],
            Failure::ServerError { path, status, .. } => {
                vec![("path", json!(path)), ("status", json!(status))]
            }
        };
        for (key, field) in fields {
            value[key] = field;
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_name_the_essentials() {
        let loopback = Failure::LoopbackOnly {
            address: "127.0.0.1".parse().unwrap(),
            port: 38017,
            command: "exec gunicorn --bind 127.0.0.1:$PORT app:app".into(),
        };
        let text = loopback.to_string();
        assert!(text.contains("127.0.0.1:38017 only"), "{text}");
        assert!(text.contains("gunicorn --bind 127.0.0.1"), "{text}");
        assert!(loopback.hint().contains("0.0.0.0"));
        assert_eq!(loopback.json()["address"], "127.0.0.1");

        let exited = Failure::Exited {
            workload: Workload::Web,
            status: ExitStatus::Code(1),
            output: "Traceback (most recent call last):\n  File \"/app/app.py\", line 1\nModuleNotFoundError: No module named 'nosuch'\n\n".into(),
        };
        assert_eq!(
            exited.to_string(),
            "the app exited with status 1 before it listened: ModuleNotFoundError: No module named 'nosuch'"
        );
        assert!(exited.output().unwrap().contains("Traceback"));
        assert_eq!(exited.json()["kind"], "exited");
        assert_eq!(exited.json()["exit_status"], "status 1");

        let wrong = Failure::WrongPort {
            found: Listener {
                addr: "::".parse().unwrap(),
                port: 5000,
            },
            port: 38017,
            command: "python app.py".into(),
        };
        assert_eq!(
            wrong.to_string(),
            "the server listens on port 5000 ([::]:5000), not on $PORT (38017)"
        );
        assert_eq!(wrong.json()["found_port"], 5000);
        for failure in [loopback, exited, wrong] {
            assert!(!failure.to_string().contains('\n'));
            assert!(!failure.hint().contains('\n'));
        }
    }

    #[test]
    fn passes_serialize_for_json_and_the_cache_record() {
        let passed = Passed {
            workload: Workload::Web,
            port: Some(38017),
            address: Some("0.0.0.0".into()),
            path: Some("/".into()),
            status: Some(404),
            milliseconds: 812,
            warning: None,
        };
        let json = passed.json(false);
        assert_eq!(json["passed"], true);
        assert_eq!(json["first_response_ms"], 812);
        assert_eq!(json["status"], 404);
        let back: Passed = serde_json::from_str(&serde_json::to_string(&passed).unwrap()).unwrap();
        assert_eq!(back, passed);
    }
}
