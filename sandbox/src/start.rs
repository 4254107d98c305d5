//! [`Sandbox::start`]: a sandbox whose command keeps running while the caller watches it (a web
//! server under a boot check), optionally in a private network namespace and as a given user.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use pyslip_lifecycle::children;
use rustix::fs::{Mode, OFlags};
use rustix::net::AddressFamily;
use rustix::net::sockopt::{Timeout, set_socket_timeout, socket_domain};

use crate::channel::{ExecPhase, Message, ParentChannel, channel};
use crate::config::{ExitStatus, Sandbox};
use crate::error::SandboxError;
use crate::lowers::short_lowers;
use crate::plan::{Isolation, Plan};
use crate::probe::Sysctls;
use crate::run::{
    clone_error, describe_wait, exec_error, host_info, pipe, prepare_command, setup_error, wait_for,
};
use crate::spawn::{Action, ChildFds, spawn_with};

/// How [`Sandbox::start`] isolates and runs the command, beyond what [`Sandbox`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartOptions {
    /// A private network namespace whose only interface is `lo` (brought up): nothing on the
    /// host's network is reachable, and no port the command binds collides with the host's.
    pub private_network: bool,
    /// `(uid, gid)` the command runs as. The invoking user is mapped to them (one id each, so
    /// every file of the root appears owned by them), and the command keeps no capabilities
    /// unless it is `(0, 0)`. `None` runs it as root, as [`Sandbox::run`] does.
    pub run_as: Option<(u32, u32)>,
    /// Unconnected TCP sockets per address family (IPv4, IPv6; at most 4 each) made inside the
    /// sandbox's network namespace, for [`Running::connect`].
    pub sockets: usize,
    /// Bytes of output kept (the tail).
    pub output_limit: usize,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            private_network: false,
            run_as: None,
            sockets: 0,
            output_limit: 64 * 1024,
        }
    }
}

/// What the sandbox reported after it started.
#[derive(Debug, Default)]
struct State {
    status: Option<ExitStatus>,
    exec_failed: Option<(ExecPhase, i32)>,
    /// PID 1 went away without reporting the command's end (killed from outside).
    lost: bool,
    output: Tail,
}

/// The last `limit` bytes of a stream, and how many were dropped before them.
#[derive(Debug, Default)]
struct Tail {
    kept: Vec<u8>,
    dropped: u64,
    limit: usize,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.kept.extend_from_slice(bytes);
        // Trim only when twice over the limit, so trimming stays amortized O(1) per byte.
        if self.kept.len() > self.limit.saturating_mul(2).max(64 * 1024) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.kept.len() > self.limit {
            let excess = self.kept.len() - self.limit;
            self.kept.drain(..excess);
            self.dropped += excess as u64;
        }
    }
}

/// A started sandbox. Dropping it kills everything in it (as [`Running::stop`] does).
#[derive(Debug)]
pub struct Running {
    pid: libc::pid_t,
    /// PID 1 in the table of processes killed when pyslip is interrupted; `None` once reaped.
    tracked: Option<children::Tracked>,
    program: String,
    cwd: String,
    state: Arc<Mutex<State>>,
    sockets: Mutex<Vec<OwnedFd>>,
    threads: Vec<JoinHandle<()>>,
    reaped: bool,
}

/// How a stopped sandbox ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The command's status when it ended by itself; `None` when [`Running::stop`] killed it.
    pub status: Option<ExitStatus>,
    /// The tail of its stdout and stderr, interleaved as written.
    pub output: Vec<u8>,
    /// Bytes of output dropped before the tail.
    pub dropped: u64,
}

impl Sandbox {
    /// Starts `argv` in the sandbox and returns as soon as the setup is done and the command is
    /// being started, while it runs. stdout and stderr go to one pipe whose tail is kept
    /// ([`Running::output`]); stdin is `/dev/null`.
    ///
    /// Unlike [`Sandbox::run`], any number of lower dirs may be given (long lists are aliased,
    /// see [`crate::short_lowers`]), and nothing is reported about mountpoints created in
    /// `upper`: it is meant for a scratch upper dir.
    ///
    /// The sandbox dies with the thread that started it (`PR_SET_PDEATHSIG`): call
    /// [`Running::stop`] (or drop the handle) from a thread that lives at least as long.
    pub fn start(&self, argv: &[String], options: &StartOptions) -> Result<Running, SandboxError> {
        let command = prepare_command(argv, &self.env, &self.cwd)?;
        let lowers = short_lowers(self.lower.clone())?;
        let sandbox = Sandbox {
            lower: lowers.dirs.clone(),
            ..self.clone()
        };
        let host = host_info(&sandbox)?;
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        let isolation = Isolation {
            private_network: options.private_network,
            run_as: options.run_as,
        };
        let plan = Plan::build_with(&sandbox, uid, gid, &host, isolation)?;

        let stdin = rustix::fs::open(
            c"/dev/null",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SandboxError::Spawn(e.into()))?;
        let (parent, child_end) = channel().map_err(SandboxError::Spawn)?;
        let (out_r, out_w) = pipe()?;
        let fds = ChildFds {
            stdin: stdin.as_raw_fd(),
            stdout: out_w.as_raw_fd(),
            stderr: out_w.as_raw_fd(),
            channel: child_end.as_raw_fd(),
        };
        let flags = if options.private_network {
            libc::CLONE_NEWNET
        } else {
            0
        };
        let action = Action::Serve {
            command: &command,
            sockets: options.sockets,
        };
        let spawned = spawn_with(&plan, action, fds, flags);
        // The child has its copies; ours must go so that EOF arrives when it is done.
        drop((child_end, stdin, out_w));
        let pid = spawned.map_err(|e| clone_error(e, &Sysctls::read()))?;
        // Killed (with its whole PID namespace) when pyslip is interrupted.
        let tracked = children::track(children::Target::Process(pid));

        let sockets = match wait_ready(&parent) {
            Ok(sockets) => sockets,
            Err(failure) => {
                // Untracked before it is reaped, so its pid cannot be reused and killed.
                drop(tracked);
                let status = wait_for(pid);
                return Err(match failure {
                    NotReady::Setup(step, errno) => {
                        setup_error(&plan, step, errno, &Sysctls::read())
                    }
                    NotReady::Start(errno) => SandboxError::Setup {
                        step: "start the command".to_owned(),
                        source: io::Error::from_raw_os_error(errno),
                    },
                    NotReady::Channel(source) => SandboxError::Spawn(source),
                    NotReady::Gone => SandboxError::Lost(describe_wait(status)),
                });
            }
        };
        drop(lowers);

        let state = Arc::new(Mutex::new(State {
            output: Tail {
                limit: options.output_limit,
                ..Tail::default()
            },
            ..State::default()
        }));
        let threads = vec![
            spawn_thread("pyslip-sandbox-channel", {
                let state = Arc::clone(&state);
                move || watch(&parent, &state)
            })?,
            spawn_thread("pyslip-sandbox-output", {
                let state = Arc::clone(&state);
                move || capture(out_r, &state)
            })?,
        ];
        Ok(Running {
            pid,
            tracked: Some(tracked),
            program: argv.first().cloned().unwrap_or_default(),
            cwd: self.cwd.clone(),
            state,
            sockets: Mutex::new(sockets),
            threads,
            reaped: false,
        })
    }
}

/// Why the sandbox did not become ready.
enum NotReady {
    Setup(u32, i32),
    Start(i32),
    Channel(io::Error),
    Gone,
}

/// Reads the channel up to [`Message::Ready`] and returns the sockets it carried.
fn wait_ready(parent: &ParentChannel) -> Result<Vec<OwnedFd>, NotReady> {
    loop {
        match parent.recv_with_fds() {
            Ok(Some((Message::Ready, fds))) => return Ok(fds),
            Ok(Some((Message::SetupFailed { step, errno }, _))) => {
                return Err(NotReady::Setup(step, errno));
            }
            Ok(Some((Message::ExecFailed { errno, .. }, _))) => {
                return Err(NotReady::Start(errno));
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err(NotReady::Gone),
            Err(e) => return Err(NotReady::Channel(e)),
        }
    }
}

fn spawn_thread(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, SandboxError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .map_err(SandboxError::Spawn)
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A poisoned lock only means a capture thread panicked; the data is still usable.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the command's fate until the channel closes (PID 1 is gone).
fn watch(parent: &ParentChannel, state: &Mutex<State>) {
    while let Ok(Some(message)) = parent.recv() {
        match message {
            Message::ExecFailed { phase, errno } => lock(state).exec_failed = Some((phase, errno)),
            Message::Finished(status) => lock(state).status = Some(status),
            _ => {}
        }
    }
    let mut state = lock(state);
    state.lost = state.status.is_none() && state.exec_failed.is_none();
}

/// Appends the command's output to the tail until every writer is gone.
fn capture(fd: OwnedFd, state: &Mutex<State>) {
    let mut file = std::fs::File::from(fd);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => lock(state).output.push(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

impl Running {
    /// Host pid of the sandbox's PID 1, which is in every namespace of the sandbox:
    /// `/proc/<pid>/net/tcp` lists the sockets of its network namespace. The pid stays ours (at
    /// worst a zombie) until the handle is stopped or dropped.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// How the command ended: `Ok(None)` while it runs; an error when it could not be started
    /// (not found, not executable, no working directory), or [`SandboxError::Lost`] when the
    /// sandbox was killed from outside (an interrupted pyslip kills it) before it ended.
    pub fn status(&self) -> Result<Option<ExitStatus>, SandboxError> {
        let state = lock(&self.state);
        if let Some((phase, errno)) = state.exec_failed {
            return Err(exec_error(phase, errno, &self.program, &self.cwd));
        }
        if state.lost && !self.reaped {
            return Err(SandboxError::Lost("the sandbox was killed".to_owned()));
        }
        Ok(state.status)
    }

    /// The output so far (stdout and stderr interleaved as written; the tail of
    /// [`StartOptions::output_limit`] bytes).
    pub fn output(&self) -> Vec<u8> {
        let state = lock(&self.state);
        let kept = &state.output.kept;
        kept.get(kept.len().saturating_sub(state.output.limit)..)
            .unwrap_or_default()
            .to_vec()
    }

    /// Connects to `addr` as seen from inside the sandbox (with a private network, `127.0.0.1`
    /// is the sandbox's loopback), using one of the sockets of [`StartOptions::sockets`]; each
    /// connection uses one up. `timeout` bounds the connect.
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::INET,
            SocketAddr::V6(_) => AddressFamily::INET6,
        };
        let socket = {
            let mut pool = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
            let index = pool
                .iter()
                .position(|s| socket_domain(s).ok() == Some(family))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::AddrNotAvailable,
                        "no sandbox socket of this address family is left",
                    )
                })?;
            pool.swap_remove(index)
        };
        // Linux bounds a blocking connect by the send timeout.
        set_socket_timeout(&socket, Timeout::Send, Some(timeout))?;
        rustix::net::connect(&socket, &addr)?;
        set_socket_timeout(&socket, Timeout::Send, None)?;
        Ok(TcpStream::from(socket))
    }

    /// Kills everything in the sandbox (SIGKILL to its PID 1; the kernel kills the rest of the
    /// PID namespace), waits for it, and returns how the command ended and its output. While
    /// the sandbox runs, its PID 1 is tracked in [`pyslip_lifecycle::children`], so an
    /// interrupted pyslip kills it too.
    pub fn stop(mut self) -> Stopped {
        self.kill_and_reap();
        let state = lock(&self.state);
        let mut output = Tail {
            kept: state.output.kept.clone(),
            dropped: state.output.dropped,
            limit: state.output.limit,
        };
        output.trim();
        Stopped {
            status: state.status,
            output: output.kept,
            dropped: output.dropped,
        }
    }

    fn kill_and_reap(&mut self) {
        if self.reaped {
            return;
        }
        // SAFETY: kill(2) on our own child, not yet reaped, so the pid cannot have been reused.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        // Untracked before it is reaped, so its pid cannot be reused and killed.
        self.tracked = None;
        wait_for(self.pid);
        self.reaped = true;
        // Once PID 1 is reaped, every process of the namespace is gone: the pipe and the
        // channel are at EOF and both threads end.
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut tail = Tail {
            limit: 10,
            ..Tail::default()
        };
        for i in 0..100_000u32 {
            tail.push(format!("{i:05}\n").as_bytes());
        }
        tail.trim();
        assert_eq!(tail.kept, b"99998\n99999\n"[2..].to_vec());
        assert_eq!(tail.dropped, 600_000 - 10);
    }
}
