//! Process lifecycle for pyslip: stopping cleanly on a signal, and never keeping or trusting what
//! a killed build left behind.
//!
//! - [`folders`]: the cache directory's folder names.
//! - [`children`]: a process-wide table of child processes (sandboxes, installers run on the
//!   host) that are killed when pyslip is interrupted. Killing is async-signal-safe, so a signal
//!   handler does it at once.
//! - [`interrupt`]: the "interrupted by signal N" flag, a reader that stops long copies (layer
//!   unpacking) once it is set, and the step the build is in, for the one line printed then.
//! - [`scratch`]: scratch directories and temp files that are `flock`ed by their owner while in
//!   use, so that [`sweep`] can remove the leftovers of killed builds (also `kill -9`) without
//!   ever touching a live one of a concurrent build.

// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod children;
pub mod folders;
pub mod interrupt;
pub mod scratch;
pub mod sweep;
