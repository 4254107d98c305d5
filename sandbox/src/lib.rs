//! Rootless sandbox: user, mount and PID namespaces around an overlay root filesystem (sync, no
//! tokio). See [`Sandbox::run`], [`Sandbox::start`] (a long-running command, optionally with a
//! private network) and [`probe`]; the fork/exec design is documented in `spawn.rs`.

// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod channel;
mod config;
mod error;
mod exec;
#[cfg(test)]
mod fake;
mod host;
mod lowers;
mod plan;
mod probe;
mod run;
mod scrub;
mod spawn;
mod start;
mod syscall;

pub use config::{BindMount, ExitStatus, Output, Sandbox, Stdio};
pub use error::{Blocker, SandboxError};
pub use host::{HostCommand, STEP_UMASK};
pub use lowers::{LOWERDIR_MAX, ShortLowers, short_lowers};
pub use probe::{probe, probe_in, probe_sandbox};
pub use scrub::remove_mountpoints;
pub use start::{Running, StartOptions, Stopped};
