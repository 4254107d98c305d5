//! The boot check: start a built image's command the way a container engine would — its Env,
//! User and WorkingDir, `$PORT` set — in the rootless sandbox whose root is the image's layers,
//! with a private network namespace that has only `lo`, and judge whether it serves. See [`run`].
//!
//! A web app passes when something listens on `$PORT` on all interfaces and one HTTP GET gets an
//! answer below 500 (a 5xx answer is a warning, or a failure in strict mode); it fails when it
//! listens only on loopback, on another port, exits, cannot be started, or does not listen in
//! time. A worker passes when it still runs after a few seconds. Sync code only.

// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod boot;
mod error;
mod http;
mod image;
mod outcome;
mod sockets;

pub use boot::{CHECK_PORTS, CheckRequest, WEB_DEFAULTS, WORKER_GRACE, run};
pub use error::CheckError;
pub use image::BootImage;
pub use outcome::{Failure, Passed, Workload, describe_status};
pub use sockets::{Listener, Listening, judge, listeners, parse_table};
