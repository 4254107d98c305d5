//! Real sandbox runs as the unprivileged test user (re-executed via runuser when run as root).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Fixture, sh, stdout, tree};
use pyslip_sandbox::ExitStatus;

rootless_test! {
    /// Writes land in the upper dir; the lower root is untouched.
    fn writes_land_in_upper_and_lower_is_unchanged() {
        let fx = Fixture::new();
        let before = tree(&fx.base);
        let out = sh(&fx.sandbox(), "mkdir -p /opt/app && echo hi > /opt/app/new && echo changed >> /etc/base-file && id -u");
        assert_eq!(out.status, ExitStatus::Code(0), "{out:?}");
        assert_eq!(stdout(&out), "0\n");
        assert_eq!(fs_err::read_to_string(fx.upper.join("opt/app/new")).unwrap(), "hi\n");
        assert_eq!(fs_err::read_to_string(fx.upper.join("etc/base-file")).unwrap(), "from the base\nchanged\n");
        assert_eq!(fs_err::read_to_string(fx.base.join("etc/base-file")).unwrap(), "from the base\n");
        assert_eq!(tree(&fx.base), before);
    }
}

rootless_test! {
    /// Deleting a lower file leaves an overlay whiteout (char 0/0) in the upper dir.
    fn deleting_a_lower_file_leaves_a_whiteout() {
        let fx = Fixture::new();
        let out = sh(&fx.sandbox(), "rm /etc/base-file && test ! -e /etc/base-file");
        assert_eq!(out.status, ExitStatus::Code(0), "{out:?}");
        let meta = fs_err::symlink_metadata(fx.upper.join("etc/base-file")).unwrap();
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        assert!(meta.file_type().is_char_device(), "{meta:?}");
        assert_eq!(meta.rdev(), 0);
        assert!(fx.base.join("etc/base-file").exists());
    }
}

rootless_test! {
    /// The invoking user is root inside (uid and gid 0, single mapping), host name set.
    fn invoking_user_is_root_inside() {
        let fx = Fixture::new();
        let out = sh(&fx.sandbox(), "id -u; id -g; cat /proc/self/uid_map; hostname");
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["0", "0"], "{out:?}");
        // The command sees the nested namespace's identity map (0 -> 0, one id).
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["0", "0", "1"]);
        assert_eq!(lines[3], "pyslip-test");
        assert_ne!(rustix::process::getuid().as_raw(), 0, "test must run unprivileged");
    }
}

rootless_test! {
    /// PID namespace: /proc is fresh and shows only the sandbox's processes; PID 1 is the reaper.
    fn proc_is_fresh_and_shows_only_sandbox_processes() {
        let fx = Fixture::new();
        let host_pid = std::process::id();
        let out = sh(
            &fx.sandbox(),
            // Shell builtins and glob expansion only: no extra processes while listing.
            "echo self=$$; echo /proc/[0-9]*; read comm < /proc/1/comm; echo init=$comm; \
             test -e /proc/1/status && echo has-init",
        );
        let text = stdout(&out);
        assert!(text.contains("self=2\n"), "command is PID 2 under the reaper: {text}");
        let pids: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(pids, ["/proc/1", "/proc/2"], "only the reaper and the command: {text}");
        assert_ne!(host_pid, 2, "the host pid space is not visible");
        assert!(!text.contains("init=sh"), "PID 1 is the reaper, not the command: {text}");
        assert!(text.contains("has-init"));
    }
}

rootless_test! {
    /// /dev holds only the minimal device set, and the devices work.
    fn dev_is_minimal() {
        let fx = Fixture::new();
        let out = sh(
            &fx.sandbox(),
            "ls -A /dev | tr '\\n' ' '; echo; echo x > /dev/null && head -c 3 /dev/zero | wc -c; \
             readlink /dev/fd; echo shm > /dev/shm/x && cat /dev/shm/x",
        );
        let text = stdout(&out);
        let mut lines = text.lines();
        let mut entries: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        entries.sort();
        assert_eq!(
            entries,
            ["fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"]
        );
        assert_eq!(lines.next().map(str::trim), Some("3"));
        assert_eq!(lines.next(), Some("/proc/self/fd"));
        assert_eq!(lines.next(), Some("shm"));
        // Nothing of /dev, /tmp or /proc leaks into the layer.
        assert!(!fx.upper.join("dev").exists() && !fx.upper.join("proc").exists());
    }
}

rootless_test! {
    /// The host filesystem is invisible: canaries in the test user's and root's homes cannot be read.
    fn host_homes_are_not_readable() {
        let fx = Fixture::new();
        let home = std::env::var("HOME").unwrap();
        let canary = tempfile::Builder::new().prefix(".pyslip-canary").tempfile_in(&home).unwrap();
        fs_err::write(canary.path(), b"user-canary-secret").unwrap();
        let mut paths = vec![canary.path().display().to_string()];
        if let Ok(root_canary) = std::env::var("PYSLIP_SANDBOX_ROOT_CANARY") {
            paths.push(root_canary);
        }
        for path in &paths {
            let cat = sh(&fx.sandbox(), &format!("cat '{path}'"));
            assert_ne!(cat.status, ExitStatus::Code(0), "cat {path} must fail");
            let text = format!("{}{}", stdout(&cat), String::from_utf8_lossy(&cat.stderr));
            assert!(!text.contains("canary-secret"), "{path}: {text}");
        }
        let out = sh(&fx.sandbox(), "ls /; echo --; ls -A /root");
        let text = stdout(&out);
        let (root, root_home) = text.split_once("--\n").unwrap();
        assert!(!root.lines().any(|l| l == "home"), "host /home visible: {text}");
        assert_eq!(root_home, "base-marker\n", "/root is the base's");
    }
}

rootless_test! {
    /// A read-only bind cannot be written nor remounted writable; a writable one persists.
    fn read_only_bind_is_read_only_and_writable_cache_persists() {
        let fx = Fixture::new();
        let project = fx.dir.path().join("project");
        let cache = fx.dir.path().join("cache");
        fs_err::create_dir(&project).unwrap();
        fs_err::create_dir(&cache).unwrap();
        fs_err::write(project.join("requirements.txt"), b"flask\n").unwrap();
        let mut sandbox = fx.sandbox();
        sandbox.mounts = vec![
            pyslip_sandbox::BindMount { source: project.clone(), target: "/app".into(), writable: false },
            pyslip_sandbox::BindMount { source: cache.clone(), target: "/root/.cache/pip".into(), writable: true },
        ];
        let out = sh(
            &sandbox,
            "cat /app/requirements.txt; echo evil > /app/requirements.txt && echo WROTE; \
             mount -o remount,rw,bind /app && echo REMOUNTED; umount /app && echo UNMOUNTED; \
             echo cached > /root/.cache/pip/wheel",
        );
        let text = stdout(&out);
        assert!(text.starts_with("flask\n"), "{out:?}");
        assert!(!text.contains("WROTE") && !text.contains("REMOUNTED") && !text.contains("UNMOUNTED"), "{out:?}");
        assert_eq!(fs_err::read_to_string(project.join("requirements.txt")).unwrap(), "flask\n");
        assert_eq!(fs_err::read_to_string(cache.join("wheel")).unwrap(), "cached\n");
        // Neither mount's content is in the layer; the created mountpoints are reported.
        assert!(!fx.upper.join("root/.cache/pip/wheel").exists());
        assert_eq!(out.created_mountpoints.iter().filter(|p| !p.starts_with("etc/")).collect::<Vec<_>>(), ["app", "root/.cache", "root/.cache/pip"]);
        // A second run sees the cache.
        let mut fx = fx;
        fx.fresh_upper("second");
        let mut second = fx.sandbox();
        second.mounts = sandbox.mounts.clone();
        assert_eq!(stdout(&sh(&second, "cat /root/.cache/pip/wheel")), "cached\n");
    }
}

rootless_test! {
    /// Created mountpoints (e.g. /etc/resolv.conf missing from the base) are reported and
    /// remove_mountpoints leaves only the command's own changes; DNS files are read-only.
    fn created_mountpoints_are_reported_and_removable() {
        let fx = Fixture::new();
        let out = sh(&fx.sandbox(), "cat /etc/resolv.conf > /dev/null && echo ok; echo x > /etc/resolv.conf || echo ro; echo new > /etc/made-by-command");
        assert_eq!(stdout(&out), "ok\nro\n", "{out:?}");
        if std::path::Path::new("/etc/resolv.conf").exists() {
            assert!(out.created_mountpoints.contains(&"etc/resolv.conf".to_owned()), "{out:?}");
            assert!(fx.upper.join("etc/resolv.conf").exists());
        }
        pyslip_sandbox::remove_mountpoints(&fx.upper, &out.created_mountpoints).unwrap();
        assert_eq!(tree(&fx.upper), ["etc", "etc/made-by-command"]);
    }
}

rootless_test! {
    /// Descriptors the caller leaked without CLOEXEC (and the protocol channel) are closed.
    fn extra_fds_are_not_inherited() {
        use std::os::fd::AsRawFd;
        let fx = Fixture::new();
        let marker = fx.dir.path().join("leaked-marker");
        fs_err::write(&marker, b"x").unwrap();
        let leaked = std::fs::File::open(&marker).unwrap();
        let fd = leaked.as_raw_fd();
        // SAFETY: clearing FD_CLOEXEC on our own open descriptor.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        let out = sh(&fx.sandbox(), "ls /proc/self/fd | tr '\\n' ' '; echo; ls -l /proc/self/fd/");
        let text = stdout(&out);
        let fds: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
        // 0, 1, 2 and the directory `ls` itself opened.
        assert!(fds.len() <= 4, "{text}");
        assert!(fds.starts_with(&["0", "1", "2"]), "{text}");
        assert!(!text.contains("leaked-marker") && !text.contains("socket"), "{text}");
        drop(leaked);
    }
}

rootless_test! {
    /// no_new_privs is set for the command.
    fn no_new_privs_is_set() {
        let fx = Fixture::new();
        let out = sh(&fx.sandbox(), "grep NoNewPrivs /proc/self/status");
        assert_eq!(stdout(&out).split_whitespace().collect::<Vec<_>>(), ["NoNewPrivs:", "1"]);
    }
}

rootless_test! {
    /// The environment is exactly what the caller passed (secrets never come from the host env).
    fn env_is_exactly_what_was_passed() {
        let fx = Fixture::new();
        let mut sandbox = fx.sandbox();
        sandbox.env.push(("PIP_INDEX_URL".into(), "https://user:secret@example/simple".into()));
        sandbox.cwd = "/etc".into();
        let out = sandbox
            .run(&["env".into()], pyslip_sandbox::Stdio::Capture { limit: 4096 })
            .unwrap();
        let mut lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
        lines.sort();
        assert_eq!(lines, ["PATH=/bin", "PIP_INDEX_URL=https://user:secret@example/simple"]);
        assert_eq!(stdout(&sh(&{ let mut s = fx.sandbox(); s.cwd = "/etc".into(); s }, "pwd")), "/etc\n");
    }
}

rootless_test! {
    /// Exit codes and signals propagate; exec failures and setup errors are distinct errors.
    fn exit_codes_and_signals_propagate() {
        let fx = Fixture::new();
        let sandbox = fx.sandbox();
        assert_eq!(sh(&sandbox, "exit 7").status, ExitStatus::Code(7));
        assert_eq!(sh(&sandbox, "kill -TERM $$").status, ExitStatus::Signal(libc::SIGTERM));
        assert_eq!(sh(&sandbox, "kill -KILL $$").status, ExitStatus::Signal(libc::SIGKILL));
        // Orphans left behind do not keep the sandbox alive.
        let start = std::time::Instant::now();
        assert_eq!(sh(&sandbox, "sleep 60 & exit 0").status, ExitStatus::Code(0));
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
        let err = sandbox.run(&["no-such-program".into()], pyslip_sandbox::Stdio::Inherit).unwrap_err();
        assert!(matches!(err, pyslip_sandbox::SandboxError::Exec { .. }), "{err:?}");
        let mut bad_cwd = fx.sandbox();
        bad_cwd.cwd = "/missing".into();
        let err = bad_cwd.run(&["true".into()], pyslip_sandbox::Stdio::Inherit).unwrap_err();
        assert!(err.to_string().contains("working directory /missing"), "{err}");
    }
}

rootless_test! {
    /// Capture keeps only the last `limit` bytes and counts the rest.
    fn captured_output_is_bounded() {
        let fx = Fixture::new();
        let out = fx
            .sandbox()
            .run(
                &["sh".into(), "-c".into(), "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done; echo tail-err >&2".into()],
                pyslip_sandbox::Stdio::Capture { limit: 100 },
            )
            .unwrap();
        assert_eq!(out.stdout.len(), 100);
        assert!(stdout(&out).ends_with("line19999\n"));
        assert!(out.stdout_dropped > 100_000);
        assert_eq!(out.stderr, b"tail-err\n");
        assert_eq!(out.stderr_dropped, 0);
    }
}

rootless_test! {
    /// docs/reliability.md, case 24: a symlink planted in the cache dir (by an earlier malicious setup.py)
    /// cannot make a later build mount a host path — neither as the last nor as an inner component.
    fn symlink_in_cache_dir_cannot_redirect_a_bind_mount() {
        let fx = Fixture::new();
        let cache = fx.dir.path().join("cache");
        let secret = fx.dir.path().join("host-secret");
        fs_err::create_dir_all(&cache).unwrap();
        fs_err::create_dir_all(&secret).unwrap();
        fs_err::write(secret.join("id_rsa"), b"PRIVATE KEY").unwrap();
        // An earlier build wrote through its writable cache mount.
        let mut first = fx.sandbox();
        first.mounts = vec![pyslip_sandbox::BindMount { source: cache.clone(), target: "/root/.cache".into(), writable: true }];
        let planted = sh(&first, &format!("ln -s {} /root/.cache/pip && mkdir -p /root/.cache/uv && ln -s {} /root/.cache/uv/wheels", secret.display(), secret.display()));
        assert_eq!(planted.status, ExitStatus::Code(0), "{planted:?}");
        for source in [cache.join("pip"), cache.join("pip/inner"), cache.join("uv/wheels")] {
            let mut later = fx.sandbox();
            later.mounts = vec![pyslip_sandbox::BindMount { source: source.clone(), target: "/root/.cache/pip".into(), writable: true }];
            match later.run(&["cat".into(), "/root/.cache/pip/id_rsa".into()], pyslip_sandbox::Stdio::Capture { limit: 1024 }) {
                Err(pyslip_sandbox::SandboxError::BindSource { source: e, .. }) => {
                    assert!(matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)), "{source:?}: {e}");
                }
                other => panic!("{}: expected a BindSource error, got {other:?}", source.display()),
            }
        }
    }
}

rootless_test! {
    /// Several lower roots stack in order (topmost first).
    fn multiple_lower_roots_stack_in_order() {
        let fx = Fixture::new();
        let dep = fx.dir.path().join("dep");
        fs_err::create_dir_all(dep.join("etc")).unwrap();
        fs_err::write(dep.join("etc/base-file"), b"from the dep root\n").unwrap();
        fs_err::write(dep.join("etc/dep-only"), b"dep\n").unwrap();
        let mut sandbox = fx.sandbox();
        sandbox.lower = vec![dep.clone(), fx.base.clone()];
        let out = sh(&sandbox, "cat /etc/base-file /etc/dep-only; ls /bin/busybox");
        assert_eq!(stdout(&out), "from the dep root\ndep\n/bin/busybox\n");
        // Only the DNS mountpoints were added (to /etc, which came from the dep root).
        pyslip_sandbox::remove_mountpoints(&fx.upper, &out.created_mountpoints).unwrap();
        assert!(tree(&fx.upper).iter().all(|p| p == "etc"), "{:?}", tree(&fx.upper));
        assert!(tree(&dep).len() == 3 && !dep.join("etc/resolv.conf").exists());
    }
}

rootless_test! {
    /// Host network is shared: the sandbox reaches a loopback listener opened by the test.
    fn reaches_a_loopback_listener_on_the_host() {
        use std::io::Read;
        let fx = Fixture::new();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = String::new();
            conn.read_to_string(&mut got).unwrap();
            got
        });
        let out = sh(&fx.sandbox(), &format!("echo hello-from-sandbox | nc -w 5 127.0.0.1 {port}"));
        assert_eq!(out.status, ExitStatus::Code(0), "{out:?}");
        assert_eq!(server.join().unwrap(), "hello-from-sandbox\n");
    }
}

rootless_test! {
    /// probe() passes on this host.
    fn probe_passes_here() {
        pyslip_sandbox::probe().unwrap();
        pyslip_sandbox::probe_in(&std::env::temp_dir()).unwrap();
    }
}

rootless_test! {
    /// A base whose /etc/resolv.conf is a (dangling) symlink still gets the host's DNS config:
    /// the bind covers the link itself, nothing is created, and the link is unchanged.
    fn dns_bind_covers_a_symlinked_resolv_conf() {
        if !std::path::Path::new("/etc/resolv.conf").exists() {
            return;
        }
        let fx = Fixture::new();
        std::os::unix::fs::symlink("../run/systemd/resolve/stub-resolv.conf", fx.base.join("etc/resolv.conf")).unwrap();
        let out = sh(&fx.sandbox(), "cat /etc/resolv.conf");
        assert_eq!(out.status, ExitStatus::Code(0), "{out:?}");
        assert_eq!(out.stdout, fs_err::read("/etc/resolv.conf").unwrap());
        assert!(!out.created_mountpoints.contains(&"etc/resolv.conf".to_owned()));
        assert!(!fx.upper.join("etc/resolv.conf").exists());
        assert!(!fx.upper.join("run").exists());
    }
}

rootless_test! {
    /// Starting sandboxes from a process whose other threads allocate all the time neither
    /// deadlocks nor corrupts anything (the child never allocates between clone and exec).
    fn safe_to_start_from_a_busy_multithreaded_process() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let fx = Fixture::new();
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let v: Vec<String> = (0..64).map(|j| format!("{i}-{j}-{n}")).collect();
                        n += v.len() as u64;
                    }
                    n
                })
            })
            .collect();
        for round in 0..15 {
            let out = sh(&fx.sandbox(), &format!("echo round{round}"));
            assert_eq!(stdout(&out), format!("round{round}\n"));
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            assert!(w.join().unwrap() > 0);
        }
    }
}
