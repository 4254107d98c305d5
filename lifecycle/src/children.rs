//! Child processes killed when pyslip is interrupted.
//!
//! Every process pyslip starts that could outlive an interrupted build is *tracked* here while
//! it runs: the sandbox's PID 1 ([`track`] with [`Target::Process`]; killing it ends its whole PID
//! namespace) and installer processes run on the host ([`TrackedChild::spawn`], which puts them
//! in a process group of their own and tracks the group). On SIGINT/SIGTERM the signal handler
//! calls [`kill_all`], which sends SIGKILL to each of them.
//!
//! The table is a fixed array of atomics, not a `Mutex<Vec>`: [`kill_all`] only loads atomics
//! and makes `kill(2)` system calls, so it is async-signal-safe and runs in the handler itself.
//!
//! A tracked process must be untracked (its [`Tracked`] dropped) *before* it is reaped, or its
//! pid could be reused by an unrelated process and killed; [`TrackedChild::wait`] does that in
//! the right order (`waitid(WNOWAIT)`, untrack, reap).

use std::io::{self, Read};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

/// How many processes can be tracked at once (pyslip runs a handful).
const SLOTS: usize = 256;

/// Tracked pids: `> 0` a process, `< 0` a process group (`-pgid`), `0` a free slot.
static TABLE: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

/// What [`kill_all`] kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One process (a sandbox's PID 1: its PID namespace dies with it).
    Process(i32),
    /// A process group (an installer run on the host and everything it started).
    Group(i32),
}

/// A tracked process; untracked when dropped.
#[derive(Debug)]
#[must_use = "the process is untracked as soon as this is dropped"]
pub struct Tracked {
    slot: Option<usize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.and_then(|i| TABLE.get(i)) {
            slot.store(0, Ordering::SeqCst);
        }
    }
}

/// Tracks `target` until the returned guard is dropped. When pyslip is already interrupted, the
/// target is killed at once (it was started after the signal handler's [`kill_all`]).
///
/// Pids that are not positive are ignored; when the table is full (more than 256 processes at
/// once) the target is not tracked.
pub fn track(target: Target) -> Tracked {
    let value = match target {
        Target::Process(pid) if pid > 0 => pid,
        Target::Group(pgid) if pgid > 0 => -pgid,
        _ => return Tracked { slot: None },
    };
    let slot = TABLE.iter().position(|s| {
        s.compare_exchange(0, value, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    });
    // The handler sets the flag before it walks the table, and we stored before we read the
    // flag: whichever came second sees the other, so the target is killed at least once.
    if crate::interrupt::interrupted().is_some() {
        kill(value);
    }
    Tracked { slot }
}

/// Sends SIGKILL to every tracked process and process group. Async-signal-safe.
pub fn kill_all() {
    for slot in &TABLE {
        let value = slot.load(Ordering::SeqCst);
        if value != 0 {
            kill(value);
        }
    }
}

fn kill(value: i32) {
    // Errors (the process is already gone) need no handling.
    let _ = match Pid::from_raw(value.saturating_abs()) {
        Some(pid) if value > 0 => rustix::process::kill_process(pid, Signal::KILL),
        Some(pid) => rustix::process::kill_process_group(pid, Signal::KILL),
        None => Ok(()),
    };
}

/// A child process run on the host, in a process group of its own, tracked until it is reaped
/// and killed (with its whole group) when pyslip is interrupted or this is dropped unwaited.
///
/// The child also gets `PR_SET_PDEATHSIG` = SIGKILL, so it dies when pyslip is killed with
/// `kill -9`. Linux sends that signal when the *thread* that spawned the child exits: spawn and
/// wait on the same thread (as a blocking call inside `spawn_blocking`/`block_in_place` does).
#[derive(Debug)]
pub struct TrackedChild {
    child: Child,
    tracked: Option<Tracked>,
}

impl TrackedChild {
    /// Spawns `command` (in a new process group, with the death signal set) and tracks it.
    pub fn spawn(command: &mut Command) -> io::Result<TrackedChild> {
        let parent = rustix::process::getpid();
        command.process_group(0);
        // SAFETY: the closure runs between fork and exec and makes only raw system calls
        // (prctl, getppid) that neither allocate nor take locks.
        unsafe {
            command.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // pyslip died between fork and prctl: the signal will never come.
                if rustix::process::getppid() != Some(parent) {
                    return Err(io::Error::other("the parent process exited"));
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        let tracked = i32::try_from(child.id())
            .ok()
            .map(|pid| track(Target::Group(pid)));
        Ok(TrackedChild { child, tracked })
    }

    /// The child's pid (also its process group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The underlying [`Child`], e.g. to take its pipes. Do not `wait` on it directly: use
    /// [`TrackedChild::wait`], which untracks the child before reaping it.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child to exit, untracks it, then reaps it.
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        self.wait_untracked()?;
        self.child.wait()
    }

    /// Like [`Child::wait_with_output`]: collects stdout and stderr (when piped) while waiting.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        let readers = [
            self.child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            self.child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        let [stdout, stderr] = readers.map(|reader| {
            reader.map(|mut r| {
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    r.read_to_end(&mut buf).map(|_| buf)
                })
            })
        });
        self.wait_untracked()?;
        let status = self.child.wait()?;
        let collect = |handle: Option<std::thread::JoinHandle<io::Result<Vec<u8>>>>| {
            handle.map_or(Ok(Vec::new()), |h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("output reader panicked")))
            })
        };
        Ok(Output {
            status,
            stdout: collect(stdout)?,
            stderr: collect(stderr)?,
        })
    }

    /// Blocks until the child has exited, without reaping it, then untracks it.
    fn wait_untracked(&mut self) -> io::Result<()> {
        wait_exited(self.child.id())?;
        self.tracked = None;
        Ok(())
    }
}

/// Waits for `child` (tracked by `tracked`) to exit, untracks it, then reaps it: the order in
/// which a reaped pid is never left tracked. For a [`Child`] spawned by other means than
/// [`TrackedChild::spawn`] and tracked with [`track`].
pub fn wait(child: &mut Child, tracked: Tracked) -> io::Result<ExitStatus> {
    wait_exited(child.id())?;
    drop(tracked);
    child.wait()
}

/// Blocks until the child `id` has exited, without reaping it (`waitid(WNOWAIT)`).
fn wait_exited(id: u32) -> io::Result<()> {
    let pid = i32::try_from(id)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::other("child pid out of range"))?;
    loop {
        match rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

impl Drop for TrackedChild {
    /// A child that was never waited for (an early return, a panic) is killed with its group and
    /// reaped, so no installer outlives the step that started it.
    fn drop(&mut self) {
        if let Some(tracked) = self.tracked.take() {
            if let Ok(pid) = i32::try_from(self.child.id()) {
                kill(-pid);
            }
            let _ = self.wait_untracked();
            drop(tracked);
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked_values() -> Vec<i32> {
        TABLE
            .iter()
            .map(|s| s.load(Ordering::SeqCst))
            .filter(|&v| v != 0)
            .collect()
    }

    #[test]
    fn kill_all_kills_a_tracked_group_with_its_grandchildren() {
        // `sh` starts a grandchild in the same group; both must die.
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "sleep 300 & wait"]);
        let child = TrackedChild::spawn(&mut cmd).unwrap();
        let pgid = i32::try_from(child.id()).unwrap();
        assert!(tracked_values().contains(&-pgid));
        let started = std::time::Instant::now();
        kill(-pgid);
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(!tracked_values().contains(&-pgid), "still tracked");
        // The grandchild (same process group) is gone too.
        let group = Pid::from_raw(pgid).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while rustix::process::test_kill_process_group(group).is_ok() {
            assert!(std::time::Instant::now() < deadline, "grandchild survived");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn dropping_an_unwaited_child_kills_and_reaps_it() {
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("300");
        let child = TrackedChild::spawn(&mut cmd).unwrap();
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        drop(child);
        // Reaped: not even a zombie is left.
        assert!(rustix::process::test_kill_process(pid).is_err());
    }

    #[test]
    fn wait_with_output_collects_both_streams() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let out = TrackedChild::spawn(&mut cmd)
            .unwrap()
            .wait_with_output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn untracked_values_are_ignored() {
        let guard = track(Target::Process(0));
        assert!(guard.slot.is_none());
        let guard = track(Target::Group(-5));
        assert!(guard.slot.is_none());
    }
}
