//! SIGINT, SIGTERM and SIGHUP: stop promptly and leave nothing behind.
//!
//! The handler itself (async-signal-safe) records the signal and kills every tracked child
//! process: sandboxes and installers ([`pyslip_lifecycle::children`]). A thread then prints one
//! line naming the step that was interrupted, removes this process's scratch dirs and temp
//! files ([`pyslip_lifecycle::scratch::discard_live`]) and exits with 128 + the signal number
//! (130 for SIGINT, 143 for SIGTERM). A second signal exits at once; whatever is left then is
//! swept by the next build, as after `kill -9`.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyslip_lifecycle::{interrupt, scratch};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The signals that stop a build, with their names.
const HANDLED: [(i32, &str); 3] = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")];

/// How long the cleanup may take before pyslip exits anyway.
const CLEANUP: Duration = Duration::from_secs(3);

/// The terminal spinner, cleared before the line is printed.
static SPINNER: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Installs the handlers and starts the thread that stops the process.
pub fn install() -> std::io::Result<()> {
    for (signal, _) in HANDLED {
        // SAFETY: the action only uses atomics, kill(2) and _exit(2), all async-signal-safe.
        unsafe {
            signal_hook::low_level::register(signal, move || {
                if !interrupt::on_signal(signal) {
                    // A second signal: the user does not want to wait for the cleanup.
                    signal_hook::low_level::exit(128 + signal);
                }
            })?;
        }
    }
    let mut signals = signal_hook::iterator::Signals::new(HANDLED.map(|(s, _)| s))?;
    std::thread::Builder::new()
        .name("pyslip-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                stop(signal);
            }
        })?;
    Ok(())
}

/// Shows `bar` until the process ends or is interrupted.
pub fn set_spinner(bar: Option<indicatif::ProgressBar>) {
    if let Ok(mut slot) = SPINNER.lock() {
        *slot = bar;
    }
}

/// When a signal is being handled, never returns (the signal thread exits the process), so that
/// no other line is printed and the exit status is the signal's.
pub fn wait_if_interrupted() {
    while interrupt::interrupted().is_some() {
        std::thread::park();
    }
}

fn stop(signal: i32) -> ! {
    if let Ok(Some(bar)) = SPINNER.lock().map(|s| s.clone()) {
        bar.finish_and_clear();
    }
    let name = HANDLED
        .iter()
        .find(|(s, _)| *s == signal)
        .map_or("a signal", |(_, n)| n);
    let step = interrupt::current_step();
    let during = if step.is_empty() {
        String::new()
    } else {
        format!(" while {step}")
    };
    // stderr may be gone (SIGHUP from a closed terminal): never panic here.
    let _ = writeln!(std::io::stderr(), "error: interrupted by {name}{during}");
    scratch::discard_live(Instant::now() + CLEANUP);
    std::process::exit(128 + signal)
}
