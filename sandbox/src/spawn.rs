//! Starting the sandbox: `clone` into new namespaces, then (in the child) the setup, a PID-1
//! reaper and the command.
//!
//! # Why this is sound in a multi-threaded caller
//! The caller may run tokio threads. After `clone` without `CLONE_VM` only the calling thread
//! exists in the child, and any lock another thread held (malloc, stdio, env) stays held
//! forever. So everything the child needs — the mount plan, C strings, `argv`/`envp` pointer
//! arrays, PATH candidates — is built by the parent *before* `clone`, and the child only walks
//! those structures and makes raw system calls (rustix's linux_raw backend, or libc wrappers that
//! are plain syscalls: `execve`, `sigaction`, `sigprocmask`, `waitpid`, `kill`, `_exit`). No
//! allocation, no panics (errors are reported as numbers over the channel), no destructors that
//! allocate. `clone` is the raw system call, not glibc's `fork`, so no `atfork` handlers run.
//! The alternative — re-executing `/proc/self/exe` with a hidden argument — would need a hook in
//! every binary's `main` (including test harnesses); this design keeps the crate self-contained.
//!
//! Signals are blocked on the calling thread across `clone` (restored in the parent right
//! after), so no handler of the caller can run in the child before it resets dispositions.

use std::ffi::{CString, c_char};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::channel::{ChildChannel, ExecPhase, MAX_READY_FDS};
use crate::config::ExitStatus;
use crate::exec::execute;
use crate::plan::{Plan, Step};
use crate::syscall::Linux;

/// The command to run, fully prepared for `execve` without allocation.
pub(crate) struct Command {
    /// Paths to try in order (argv[0] itself, or argv[0] joined to each PATH entry).
    pub candidates: Vec<CString>,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const c_char>,
    /// Working directory inside the sandbox.
    pub cwd: CString,
}

impl Command {
    /// Builds the pointer arrays; the `CString` buffers do not move when `Command` does.
    pub fn new(
        candidates: Vec<CString>,
        argv: Vec<CString>,
        envp: Vec<CString>,
        cwd: CString,
    ) -> Command {
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        Command {
            candidates,
            argv_ptrs: ptrs(&argv),
            _argv: argv,
            envp_ptrs: ptrs(&envp),
            _envp: envp,
            cwd,
        }
    }
}

/// What the child does after the setup.
pub(crate) enum Action<'a> {
    /// Exit 0 (used by [`crate::probe`]).
    Probe,
    /// Run the command under a reaper.
    Run(&'a Command),
    /// Like `Run`, after sending [`crate::channel::Message::Ready`] with `sockets` unconnected
    /// TCP sockets per address family (IPv4, IPv6), made in the sandbox's network namespace.
    Serve {
        /// The command.
        command: &'a Command,
        /// Sockets per family (at most half of [`MAX_READY_FDS`]).
        sockets: usize,
    },
}

/// Descriptors the child needs, as numbers valid in the parent at `clone` time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildFds {
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    pub channel: RawFd,
}

/// Namespaces the sandbox gets: user, mount, PID, UTS, IPC — not network.
const CLONE_FLAGS: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC;

fn errno() -> i32 {
    // SAFETY: glibc's errno is thread-local; reading it is async-signal-safe.
    unsafe { *libc::__errno_location() }
}

/// Raw `clone` with fork semantics (no new stack: the child continues on a copy of ours).
///
/// # Safety
/// In the child (return 0) only async-signal-safe code may run until `execve` or `_exit`.
unsafe fn raw_clone(flags: libc::c_int) -> libc::c_long {
    let flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: without CLONE_VM and with a null stack the kernel gives the child a copy-on-write
    // copy of our address space, exactly like fork(2).
    unsafe {
        #[cfg(target_arch = "s390x")]
        let ret = libc::syscall(libc::SYS_clone, 0usize, flags, 0usize, 0usize, 0usize);
        #[cfg(not(target_arch = "s390x"))]
        let ret = libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize);
        ret
    }
}

/// Starts the sandbox's PID 1, which executes `steps` and then `action`. Returns its host pid.
pub(crate) fn spawn(plan: &Plan, action: Action<'_>, fds: ChildFds) -> io::Result<libc::pid_t> {
    spawn_with(plan, action, fds, 0)
}

/// [`spawn`] with more namespaces: `extra_flags` is added to the `clone` flags
/// (`CLONE_NEWNET` for a private network).
pub(crate) fn spawn_with(
    plan: &Plan,
    action: Action<'_>,
    fds: ChildFds,
    extra_flags: libc::c_int,
) -> io::Result<libc::pid_t> {
    // Scratch space for the child, allocated here because the child must not allocate.
    let mut slots: Vec<Option<OwnedFd>> = (0..plan.slots).map(|_| None).collect();
    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask only touch the calling thread.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: the child branch runs only `child_main`, which is async-signal-safe and never
    // returns (see the module docs).
    let pid = unsafe { raw_clone(CLONE_FLAGS | extra_flags) };
    if pid == 0 {
        child_main(&plan.steps, &mut slots, action, fds);
    }
    let err = errno();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if pid < 0 {
        Err(io::Error::from_raw_os_error(err))
    } else {
        Ok(pid as libc::pid_t)
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and stdio flushing, as a forked child must.
    unsafe { libc::_exit(code) }
}

/// Resets every catchable signal to its default action (handlers of the caller must not run here
/// and ignored signals such as SIGPIPE must not be ignored by the command).
fn reset_signal_dispositions() {
    // 1..65 covers every Linux signal (NSIG is 65); invalid numbers just return EINVAL.
    for signal in 1..65 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: sigaction is async-signal-safe; a zeroed sigaction is SIG_DFL, no flags.
        unsafe {
            let action: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The sandbox's PID 1: setup, then probe exit or reaper.
fn child_main(
    steps: &[Step],
    slots: &mut [Option<OwnedFd>],
    action: Action<'_>,
    fds: ChildFds,
) -> ! {
    let channel = ChildChannel::from_raw(fds.channel);
    // Die with the thread that started us (it blocks in `Sandbox::run` until we exit).
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    reset_signal_dispositions();
    let mut report = |step: usize, len: usize| channel.send_created(step, len);
    if let Err(failure) = execute(steps, &Linux, slots, &mut report) {
        channel.send_setup_failed(failure.step, failure.errno.raw_os_error());
        exit(1);
    }
    match action {
        Action::Probe => exit(0),
        Action::Run(command) => reaper(command, fds, channel, None),
        Action::Serve { command, sockets } => reaper(command, fds, channel, Some(sockets)),
    }
}

/// Puts stdin/stdout/stderr at 0/1/2 and the channel at 3 (close-on-exec), closes the rest.
fn arrange_fds(fds: ChildFds) -> Result<ChildChannel, i32> {
    let high = |fd: RawFd| {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor valid in this process.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        if new < 0 { Err(errno()) } else { Ok(new) }
    };
    let (stdin, stdout, stderr, channel) = (
        high(fds.stdin)?,
        high(fds.stdout)?,
        high(fds.stderr)?,
        high(fds.channel)?,
    );
    // SAFETY: dup2/dup3/close_range on descriptors we own; the sources are ≥ 10, so the
    // targets 0..=3 never clobber them.
    unsafe {
        for (from, to) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
            if libc::dup2(from, to) < 0 {
                return Err(errno());
            }
        }
        if libc::dup3(channel, 3, libc::O_CLOEXEC) < 0 {
            return Err(errno());
        }
        // close_range(2) is newer than what rustix wraps; the sandbox needs Linux ≥ 5.12 anyway (mount_setattr).
        if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) < 0 {
            return Err(errno());
        }
    }
    Ok(ChildChannel::from_raw(3))
}

/// Signals PID 1 forwards to the command.
const FORWARDED: [libc::c_int; 8] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGALRM,
];

/// Makes `per_family` TCP sockets per address family in this network namespace and sends them
/// with [`crate::channel::Message::Ready`]; closes ours after. A family the kernel lacks (IPv6
/// disabled) is skipped. No allocation: the sockets live in a fixed array.
fn send_ready(channel: ChildChannel, per_family: usize) -> Result<(), i32> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let mut sockets: [Option<OwnedFd>; MAX_READY_FDS] = Default::default();
    let families = [AddressFamily::INET, AddressFamily::INET6];
    let wanted = per_family.min(MAX_READY_FDS / families.len());
    let mut count = 0;
    for family in families {
        for _ in 0..wanted {
            match rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None) {
                Ok(socket) => {
                    if let Some(slot) = sockets.get_mut(count) {
                        *slot = Some(socket);
                        count += 1;
                    }
                }
                Err(rustix::io::Errno::AFNOSUPPORT) => break,
                Err(e) => return Err(e.raw_os_error()),
            }
        }
    }
    // SAFETY: the channel's descriptor is open for the child's whole life; it only fills the
    // unused tail of the array, which is never sent.
    let filler = unsafe { BorrowedFd::borrow_raw(channel.as_raw_fd()) };
    let mut borrowed = [filler; MAX_READY_FDS];
    for (slot, socket) in borrowed.iter_mut().zip(sockets.iter().flatten()) {
        *slot = socket.as_fd();
    }
    channel.send_ready(borrowed.get(..count).unwrap_or_default())
}

/// PID 1: forks the command, forwards signals to it, reaps every orphan, and reports the
/// command's status when it ends (the kernel then kills whatever is left in the namespace).
/// With `ready`, first reports that the setup is done, with that many sockets per family.
fn reaper(command: &Command, fds: ChildFds, channel: ChildChannel, ready: Option<usize>) -> ! {
    let channel = match arrange_fds(fds) {
        Ok(channel) => channel,
        Err(errno) => {
            channel.send_exec_failed(ExecPhase::Fork, errno);
            exit(127);
        }
    };
    if let Some(per_family) = ready
        && let Err(errno) = send_ready(channel, per_family)
    {
        channel.send_exec_failed(ExecPhase::Fork, errno);
        exit(127);
    }
    // SAFETY: async-signal-safe; the child branch never returns.
    let pid = unsafe { raw_clone(0) };
    if pid == 0 {
        run_command(command, channel);
    }
    if pid < 0 {
        channel.send_exec_failed(ExecPhase::Fork, errno());
        exit(127);
    }
    let pid = pid as libc::pid_t;
    // SAFETY: sigset manipulation on a local; every signal is still blocked (since `spawn`).
    let mut wait_set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut wait_set);
        libc::sigaddset(&mut wait_set, libc::SIGCHLD);
        for signal in FORWARDED {
            libc::sigaddset(&mut wait_set, signal);
        }
    }
    loop {
        // SAFETY: waits for a blocked signal of `wait_set`; no handler runs.
        let signal = unsafe { libc::sigwaitinfo(&wait_set, std::ptr::null_mut()) };
        if signal < 0 {
            continue;
        }
        if signal != libc::SIGCHLD {
            // SAFETY: kill(2) to our own child.
            unsafe { libc::kill(pid, signal) };
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: waitpid(2) with a valid out pointer.
            let reaped = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if reaped <= 0 {
                break;
            }
            if reaped == pid {
                if libc::WIFEXITED(status) {
                    let code = libc::WEXITSTATUS(status);
                    channel.send_finished(ExitStatus::Code(code));
                    exit(code);
                }
                if libc::WIFSIGNALED(status) {
                    let signal = libc::WTERMSIG(status);
                    channel.send_finished(ExitStatus::Signal(signal));
                    exit(128 + signal);
                }
            }
        }
    }
}

/// The command process (PID 2): unblock signals, fix the umask, chdir, execve each candidate.
fn run_command(command: &Command, channel: ChildChannel) -> ! {
    // SAFETY: plain syscall wrappers on locals and on the parent-built, NUL-terminated arrays.
    unsafe {
        // Files the step creates must not depend on the caller's umask.
        libc::umask(crate::host::STEP_UMASK as libc::mode_t);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if libc::chdir(command.cwd.as_ptr()) < 0 {
            channel.send_exec_failed(ExecPhase::Chdir, errno());
            exit(127);
        }
        let mut last = libc::ENOENT;
        let mut saw_eacces = false;
        for candidate in &command.candidates {
            libc::execve(
                candidate.as_ptr(),
                command.argv_ptrs.as_ptr(),
                command.envp_ptrs.as_ptr(),
            );
            last = errno();
            match last {
                libc::EACCES => saw_eacces = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ELOOP => {}
                _ => break,
            }
        }
        if saw_eacces && matches!(last, libc::ENOENT | libc::ENOTDIR) {
            last = libc::EACCES;
        }
        channel.send_exec_failed(ExecPhase::Execve, last);
        exit(127);
    }
}
