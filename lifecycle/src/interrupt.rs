//! Whether pyslip was interrupted by a signal, and a reader that stops long copies once it was.

use std::io::{self, Read};
use std::sync::atomic::{AtomicI32, Ordering};

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
