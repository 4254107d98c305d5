//! [`HostCommand`]: a build step run as an ordinary process of the host, for hosts where user
//! namespaces are unavailable (the namespace-free install). It has none of the sandbox's
//! isolation — it runs with the calling user's rights, in the CI job's own container — but the
//! same hygiene: a fixed umask, `no_new_privs`, only the environment it is given, stdin from
//! `/dev/null`, no inherited descriptors beyond stdio, its own process group (so the whole tree
//! can be killed), and death with the thread that started it.

use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio as ProcStdio};

use pyslip_lifecycle::children;

use crate::config::{ExitStatus, Output, Stdio};
use crate::error::SandboxError;
use crate::run::drain;

/// The umask every build step runs with (files 0644, directories 0755), whatever the caller's.
pub const STEP_UMASK: u32 = 0o022;

/// One command run directly on the host.
#[derive(Debug, Clone)]
pub struct HostCommand {
    /// Program and arguments; the program is looked up in `env`'s `PATH` when it has no `/`.
    pub argv: Vec<String>,
    /// The complete environment (nothing of the caller's is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
}

impl HostCommand {
    /// Runs the command and waits for it.
    pub fn run(&self, stdio: Stdio) -> Result<Output, SandboxError> {
        let program = self.argv.first().ok_or_else(|| SandboxError::Exec {
            program: String::new(),
            source: std::io::Error::other("empty command"),
        })?;
        let path = self
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str())
            .unwrap_or("/usr/bin:/bin");
        let resolved = resolve_program(program, path).ok_or_else(|| SandboxError::Exec {
            program: program.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        let mut cmd = Command::new(&resolved);
        cmd.arg0(program)
            .args(self.argv.iter().skip(1))
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(ProcStdio::null());
        match stdio {
            Stdio::Inherit => {}
            Stdio::Capture { .. } => {
                cmd.stdout(ProcStdio::piped()).stderr(ProcStdio::piped());
            }
        }
        // SAFETY: the closure only makes raw syscalls (umask, prctl, setpgid), which are
        // async-signal-safe; it allocates nothing and takes no locks.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::umask(rustix::fs::Mode::from_raw_mode(STEP_UMASK));
                rustix::thread::set_no_new_privs(true)?;
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))?;
                rustix::process::setsid()?;
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| SandboxError::Exec {
            program: program.clone(),
            source,
        })?;
        // Its process group (setsid above) is killed when pyslip is interrupted.
        let tracked =
            i32::try_from(child.id()).map(|pid| children::track(children::Target::Group(pid)));
        let (out, err) = match stdio {
            Stdio::Inherit => (None, None),
            Stdio::Capture { limit } => (
                child.stdout.take().map(|o| (OwnedFd::from(o), limit)),
                child.stderr.take().map(|e| (OwnedFd::from(e), limit)),
            ),
        };
        let (status, captured_out, captured_err) = std::thread::scope(|scope| {
            let out = out.map(|(fd, limit)| scope.spawn(move || drain(fd, limit)));
            let err = err.map(|(fd, limit)| scope.spawn(move || drain(fd, limit)));
            let status = match tracked {
                Ok(tracked) => children::wait(&mut child, tracked),
                Err(_) => child.wait(),
            };
            // The step's process group dies with it: nothing it started outlives the step (and
            // a background child holding the output pipes cannot keep the capture waiting).
            let _ = rustix::process::kill_process_group(
                rustix::process::Pid::from_child(&child),
                rustix::process::Signal::KILL,
            );
            let join = |h: Option<std::thread::ScopedJoinHandle<'_, _>>| {
                h.map_or(Ok((Vec::new(), 0)), |h| {
                    h.join()
                        .unwrap_or_else(|_| Err(std::io::Error::other("capture thread panicked")))
                })
            };
            (status, join(out), join(err))
        });
        let status = status.map_err(SandboxError::Io)?;
        let (stdout, stdout_dropped) = captured_out.map_err(SandboxError::Io)?;
        let (stderr, stderr_dropped) = captured_err.map_err(SandboxError::Io)?;
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(sig)) => ExitStatus::Signal(sig),
            (None, None) => ExitStatus::Code(-1),
        };
        Ok(Output {
            status,
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
            created_mountpoints: Vec::new(),
        })
    }
}

/// `program` itself when it has a `/`, else the first executable file named so in `path`.
fn resolve_program(program: &str, path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> HostCommand {
        HostCommand {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: PathBuf::from("/"),
        }
    }

    #[test]
    fn steps_get_a_fixed_umask_and_only_their_env() {
        let out = sh("umask; echo \"home=${HOME:-unset}\"; exit 3")
            .run(Stdio::Capture { limit: 4096 })
            .unwrap();
        assert_eq!(out.status, ExitStatus::Code(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0022\nhome=unset\n");
    }

    #[test]
    fn a_missing_program_is_named() {
        let cmd = HostCommand {
            argv: vec!["pyslip-no-such-program".into()],
            env: vec![("PATH".into(), "/usr/bin".into())],
            cwd: PathBuf::from("/"),
        };
        let err = cmd.run(Stdio::Capture { limit: 10 }).unwrap_err();
        assert!(err.to_string().contains("pyslip-no-such-program"), "{err}");
    }

    #[test]
    fn background_children_do_not_outlive_the_step() {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("late");
        let script = format!("(sleep 1; touch {}) & exit 0", marker.display());
        let out = sh(&script).run(Stdio::Capture { limit: 10 }).unwrap();
        assert!(out.status.success());
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert!(!marker.exists(), "a background child outlived its step");
    }
}
