//! [`Sandbox::run`]: prepare everything in the parent, start the sandbox, collect its report.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use pyslip_lifecycle::children;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::channel::{ExecPhase, Message, ParentChannel, channel};
use crate::config::{ExitStatus, Output, Sandbox, Stdio};
use crate::error::SandboxError;
use crate::plan::{DEVICES, HostInfo, Plan, Stage, Step};
use crate::probe::{Sysctls, diagnose};
use crate::spawn::{Action, ChildFds, Command, spawn};
use crate::syscall::Kind;

/// PATH used to find `argv[0]` when the caller's env has none (not added to the env).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Sandbox {
    /// Runs `argv` in the sandbox and waits for it. PID 1 inside is a small reaper that forwards
    /// SIGTERM/INT/HUP/QUIT/USR1/USR2/WINCH/ALRM to the command, reaps orphans and reports the
    /// command's status; everything else left in the sandbox is killed when the command ends.
    /// While it runs, PID 1 is tracked in [`pyslip_lifecycle::children`], so an interrupted
    /// pyslip kills it (and with it the whole sandbox).
    pub fn run(&self, argv: &[String], stdio: Stdio) -> Result<Output, SandboxError> {
        let command = prepare_command(argv, &self.env, &self.cwd)?;
        let host = host_info(self)?;
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        let plan = Plan::build(self, uid, gid, &host)?;

        let stdin = rustix::fs::open(
            c"/dev/null",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SandboxError::Spawn(e.into()))?;
        let (parent, child_end) = channel().map_err(SandboxError::Spawn)?;
        let pipes = match stdio {
            Stdio::Inherit => None,
            Stdio::Capture { limit } => Some((pipe()?, pipe()?, limit)),
        };
        let fds = ChildFds {
            stdin: stdin.as_raw_fd(),
            stdout: pipes.as_ref().map_or(1, |(out, _, _)| out.1.as_raw_fd()),
            stderr: pipes.as_ref().map_or(2, |(_, err, _)| err.1.as_raw_fd()),
            channel: child_end.as_raw_fd(),
        };
        let spawned = spawn(&plan, Action::Run(&command), fds);
        // The child has its copies; ours must go so that EOF arrives when it is done.
        drop(child_end);
        drop(stdin);
        let (readers, limit) = match pipes {
            Some(((out_r, out_w), (err_r, err_w), limit)) => {
                drop((out_w, err_w));
                (Some((out_r, err_r)), limit)
            }
            None => (None, 0),
        };
        let pid = spawned.map_err(|e| clone_error(e, &Sysctls::read()))?;
        // Killed (with its whole PID namespace) when pyslip is interrupted.
        let tracked = children::track(children::Target::Process(pid));

        let (out, err, report) = std::thread::scope(|scope| {
            let (out, err) = match readers {
                Some((out, err)) => (
                    Some(scope.spawn(move || drain(out, limit))),
                    Some(scope.spawn(move || drain(err, limit))),
                ),
                None => (None, None),
            };
            let report = collect(&parent);
            (join(out), join(err), report)
        });
        // Untracked before it is reaped, so its pid cannot be reused and killed.
        drop(tracked);
        let wait = wait_for(pid);
        let report = report.map_err(SandboxError::Spawn)?;
        let (stdout, stdout_dropped) = out.map_err(SandboxError::Io)?;
        let (stderr, stderr_dropped) = err.map_err(SandboxError::Io)?;

        if let Some((step, errno)) = report.setup_failed {
            return Err(setup_error(&plan, step, errno, &Sysctls::read()));
        }
        if let Some((phase, errno)) = report.exec_failed {
            let program = argv.first().map_or("", String::as_str);
            return Err(exec_error(phase, errno, program, &self.cwd));
        }
        let status = report
            .status
            .ok_or_else(|| SandboxError::Lost(describe_wait(wait)))?;
        let created_mountpoints = report
            .created
            .iter()
            .filter_map(|&(step, len)| match plan.steps.get(step as usize) {
                Some(
                    Step::Bind { target, .. }
                    | Step::MountFs { target, .. }
                    | Step::MountProc { target, .. },
                ) => Some(target.prefix(len as usize)),
                _ => None,
            })
            .collect();
        Ok(Output {
            status,
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
            created_mountpoints,
        })
    }
}

/// The error for a command that could not be started in `phase`.
pub(crate) fn exec_error(phase: ExecPhase, errno: i32, program: &str, cwd: &str) -> SandboxError {
    let source = io::Error::from_raw_os_error(errno);
    match phase {
        ExecPhase::Execve => SandboxError::Exec {
            program: program.to_owned(),
            source,
        },
        ExecPhase::Chdir => SandboxError::Setup {
            step: format!("change to the working directory {cwd}"),
            source,
        },
        ExecPhase::Fork => SandboxError::Setup {
            step: "start the command".to_owned(),
            source,
        },
    }
}

/// Whether a trusted host path (device, DNS file) exists; symlinks such as systemd-resolved's
/// `/etc/resolv.conf` are followed.
fn host_has(path: &str) -> bool {
    rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).is_ok()
}

/// Checks a caller-named bind source the way the sandbox will open it — no symlink in any
/// component (docs/reliability.md, case 24) — and returns its kind. The sandbox re-opens it by path in
/// its own mount namespace with the same flags, so a swap in between cannot bypass the rule.
pub(crate) fn check_bind_source(path: &Path) -> Result<Kind, SandboxError> {
    let error = |source: io::Error| SandboxError::BindSource {
        path: path.to_owned(),
        source,
    };
    if !path.is_absolute() {
        return Err(SandboxError::Invalid {
            what: "bind source",
            value: path.display().to_string(),
            reason: "must be absolute",
        });
    }
    let fd = rustix::fs::openat2(
        rustix::fs::CWD,
        path,
        // No O_NOFOLLOW: a trailing symlink must fail with ELOOP like any other component.
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| error(e.into()))?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| error(e.into()))?;
    match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
        rustix::fs::FileType::Directory => Ok(Kind::Dir),
        rustix::fs::FileType::RegularFile => Ok(Kind::File),
        _ => Err(SandboxError::Invalid {
            what: "bind source",
            value: path.display().to_string(),
            reason: "must be a directory or a regular file",
        }),
    }
}

pub(crate) fn host_info(sandbox: &Sandbox) -> Result<HostInfo, SandboxError> {
    Ok(HostInfo {
        devices: DEVICES
            .iter()
            .copied()
            .filter(|name| host_has(&format!("/dev/{name}")))
            .collect(),
        resolv_conf: host_has("/etc/resolv.conf"),
        hosts: host_has("/etc/hosts"),
        binds: sandbox
            .mounts
            .iter()
            .map(|m| check_bind_source(&m.source))
            .collect::<Result<_, _>>()?,
    })
}

type Captured = io::Result<(Vec<u8>, u64)>;

fn join(handle: Option<std::thread::ScopedJoinHandle<'_, Captured>>) -> Captured {
    handle.map_or(Ok((Vec::new(), 0)), |h| {
        h.join()
            .unwrap_or_else(|_| Err(io::Error::other("capture thread panicked")))
    })
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| SandboxError::Spawn(e.into()))
}

/// Everything the sandbox reported over the channel.
#[derive(Debug, Default)]
struct Report {
    created: Vec<(u32, u32)>,
    setup_failed: Option<(u32, i32)>,
    exec_failed: Option<(ExecPhase, i32)>,
    status: Option<ExitStatus>,
}

fn collect(channel: &ParentChannel) -> io::Result<Report> {
    let mut report = Report::default();
    while let Some(message) = channel.recv()? {
        match message {
            Message::Created { step, len } => report.created.push((step, len)),
            Message::SetupFailed { step, errno } => report.setup_failed = Some((step, errno)),
            Message::ExecFailed { phase, errno } => report.exec_failed = Some((phase, errno)),
            Message::Finished(status) => report.status = Some(status),
            Message::Ready => {}
        }
    }
    Ok(report)
}

/// Reads a stream to EOF keeping only its last `limit` bytes; returns them and the count dropped.
pub(crate) fn drain(fd: OwnedFd, limit: usize) -> io::Result<(Vec<u8>, u64)> {
    let mut file = std::fs::File::from(fd);
    let mut kept = Vec::new();
    let mut dropped = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        kept.extend_from_slice(chunk.get(..n).unwrap_or_default());
        // Trim only when twice over the limit, so trimming stays amortized O(1) per byte.
        if kept.len() > limit.saturating_mul(2).max(64 * 1024) {
            let excess = kept.len() - limit;
            kept.drain(..excess);
            dropped += excess as u64;
        }
    }
    if kept.len() > limit {
        let excess = kept.len() - limit;
        kept.drain(..excess);
        dropped += excess as u64;
    }
    Ok((kept, dropped))
}

pub(crate) fn wait_for(pid: libc::pid_t) -> Option<i32> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) on our own child with a valid out pointer.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        if ret == pid {
            return Some(status);
        }
        if ret < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

pub(crate) fn describe_wait(status: Option<i32>) -> String {
    match status {
        Some(s) if libc::WIFSIGNALED(s) => format!("killed by signal {}", libc::WTERMSIG(s)),
        Some(s) if libc::WIFEXITED(s) => format!("exit code {}", libc::WEXITSTATUS(s)),
        _ => "status unknown".to_owned(),
    }
}

/// `clone` itself failed: a user-namespace problem when the errno says so.
pub(crate) fn clone_error(source: io::Error, sysctls: &Sysctls) -> SandboxError {
    match diagnose(Stage::UserNamespace, &source, sysctls) {
        Some(blocker) => SandboxError::Unavailable { blocker, source },
        None => SandboxError::Spawn(source),
    }
}

/// A setup step failed inside the sandbox.
pub(crate) fn setup_error(plan: &Plan, step: u32, errno: i32, sysctls: &Sysctls) -> SandboxError {
    let source = io::Error::from_raw_os_error(errno);
    let step = plan.steps.get(step as usize);
    let stage = step.map_or(Stage::Mount, Step::stage);
    match diagnose(stage, &source, sysctls) {
        Some(blocker) => SandboxError::Unavailable { blocker, source },
        None => SandboxError::Setup {
            step: step.map_or_else(|| "unknown step".to_owned(), Step::describe),
            source,
        },
    }
}

fn cstring(what: &'static str, value: &str) -> Result<CString, SandboxError> {
    CString::new(value).map_err(|_| SandboxError::Invalid {
        what,
        value: value.to_owned(),
        reason: "contains a NUL byte",
    })
}

/// Where to look for `program`: itself when it has a `/`, else each entry of the env's PATH.
pub(crate) fn exec_candidates(program: &str, env: &[(String, String)]) -> Vec<String> {
    if program.contains('/') {
        return vec![program.to_owned()];
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
        .collect()
}

pub(crate) fn prepare_command(
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
) -> Result<Command, SandboxError> {
    let program = argv
        .first()
        .filter(|p| !p.is_empty())
        .ok_or(SandboxError::Invalid {
            what: "argv",
            value: String::new(),
            reason: "needs a program",
        })?;
    if !cwd.starts_with('/') {
        return Err(SandboxError::Invalid {
            what: "cwd",
            value: cwd.to_owned(),
            reason: "must be absolute",
        });
    }
    let mut envp = Vec::with_capacity(env.len());
    for (key, value) in env {
        if key.is_empty() || key.contains('=') {
            return Err(SandboxError::Invalid {
                what: "env",
                value: key.clone(),
                reason: "names must be non-empty and contain no '='",
            });
        }
        envp.push(cstring("env", &format!("{key}={value}"))?);
    }
    Ok(Command::new(
        exec_candidates(program, env)
            .iter()
            .map(|c| cstring("argv", c))
            .collect::<Result<_, _>>()?,
        argv.iter()
            .map(|a| cstring("argv", a))
            .collect::<Result<_, _>>()?,
        envp,
        cstring("cwd", cwd)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_candidates_follow_the_passed_path() {
        let env = vec![("PATH".to_owned(), "/usr/local/bin::/bin/".to_owned())];
        assert_eq!(
            exec_candidates("pip", &env),
            ["/usr/local/bin/pip", "/bin/pip"]
        );
        assert_eq!(exec_candidates("./x", &env), ["./x"]);
        assert_eq!(
            exec_candidates("sh", &[]).last().map(String::as_str),
            Some("/bin/sh")
        );
    }

    #[test]
    fn drain_keeps_the_tail_within_the_limit() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let mut w = std::fs::File::from(w);
            for i in 0..50_000u32 {
                std::io::Write::write_all(&mut w, format!("{i:08}\n").as_bytes()).unwrap();
            }
        });
        let (kept, dropped) = drain(r, 1000).unwrap();
        writer.join().unwrap();
        assert_eq!(kept.len(), 1000);
        assert_eq!(dropped, 50_000 * 9 - 1000);
        assert!(kept.ends_with(b"00049999\n"));
    }

    #[test]
    fn invalid_inputs_are_rejected_before_spawning() {
        assert!(prepare_command(&[], &[], "/").is_err());
        assert!(prepare_command(&["sh".into()], &[], "relative").is_err());
        assert!(prepare_command(&["sh".into()], &[("A=B".into(), "x".into())], "/").is_err());
        assert!(prepare_command(&["s\0h".into()], &[], "/").is_err());
    }
}
