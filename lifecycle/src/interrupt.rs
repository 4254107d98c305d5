//! Whether pyslip was interrupted by a signal, a reader that stops long copies once it was, and
//! the step the build is in (named in the one line printed when a signal stops it).

use std::io::{self, Read};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The first signal received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Records `signal` and kills every tracked child ([`crate::children::kill_all`]). Returns
/// whether this was the first signal. Async-signal-safe: meant to be called from the handler.
pub fn on_signal(signal: i32) -> bool {
    let first = SIGNAL
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    crate::children::kill_all();
    first
}

/// The signal pyslip was interrupted by, if any.
pub fn interrupted() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// The error a stopped copy returns.
#[derive(Debug)]
pub struct Interrupted(pub i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by signal {}", self.0)
    }
}

impl std::error::Error for Interrupted {}

/// `Err` once pyslip was interrupted. Its kind is `Other`, not `Interrupted`, which `std::io`
/// would retry.
pub fn check() -> io::Result<()> {
    match interrupted() {
        Some(signal) => Err(io::Error::other(Interrupted(signal))),
        None => Ok(()),
    }
}

/// A reader that fails (see [`check`]) once pyslip was interrupted, so a long unpack stops at
/// its next read instead of writing on while the scratch dir is being removed.
#[derive(Debug)]
pub struct Reader<R>(pub R);

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        check()?;
        self.0.read(buf)
    }
}

/// The step the build is in, named in the one line printed when a signal stops it.
static STEP: Mutex<String> = Mutex::new(String::new());

fn slot() -> MutexGuard<'static, String> {
    STEP.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Names the step now running (e.g. `making the dependency layer`).
pub fn set_step(text: &str) {
    *slot() = text.to_owned();
}

/// The step now running, or `""` before the first.
pub fn current_step() -> String {
    slot().clone()
}

/// Names a sub-step until the guard is dropped, then names the enclosing step again.
pub fn enter_step(text: &str) -> StepGuard {
    let previous = std::mem::replace(&mut *slot(), text.to_owned());
    StepGuard { previous }
}

/// Restores the enclosing step when dropped (see [`enter_step`]).
#[derive(Debug)]
#[must_use = "the step ends when this is dropped"]
pub struct StepGuard {
    previous: String,
}

impl Drop for StepGuard {
    fn drop(&mut self) {
        *slot() = std::mem::take(&mut self.previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_steps_restore_the_enclosing_step() {
        set_step("making the dependency layer");
        {
            let _unpack = enter_step("unpacking the base image");
            assert_eq!(current_step(), "unpacking the base image");
        }
        assert_eq!(current_step(), "making the dependency layer");
    }
}
