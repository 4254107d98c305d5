//! What the signal handler does, in a process of its own (the interrupted flag is global): every
//! tracked child dies, a child started afterwards is killed at once, and long reads stop.
#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use pyslip_lifecycle::children::TrackedChild;
use pyslip_lifecycle::interrupt;

fn sleeper() -> TrackedChild {
    // A grandchild in the same process group, as an installer's build backend would be.
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "sleep 300 & wait"]);
    TrackedChild::spawn(&mut cmd).unwrap()
}

#[test]
fn the_handler_kills_every_tracked_child_and_later_ones_at_once() {
    let running = [sleeper(), sleeper()];
    let started = Instant::now();
    assert!(interrupt::on_signal(15), "the first signal");
    assert!(!interrupt::on_signal(2), "a second signal is not the first");
    assert_eq!(interrupt::interrupted(), Some(15));
    for child in running {
        assert_eq!(child.wait().unwrap().signal(), Some(9));
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    let late = sleeper();
    assert_eq!(
        late.wait().unwrap().signal(),
        Some(9),
        "started after the signal"
    );

    let mut reader = interrupt::Reader(&b"layer bytes"[..]);
    let err = reader.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::Other,
        "must not be retried as Interrupted"
    );
    assert!(
        err.to_string().contains("interrupted by signal 15"),
        "{err}"
    );
}
