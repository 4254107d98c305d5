//! `Sandbox::start` as the unprivileged test user: a long-running command in a private network
//! namespace, reached through the sockets the sandbox hands out, and killed with its whole tree.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::Fixture;
use pyslip_sandbox::{ExitStatus, Running, SandboxError, StartOptions};

fn argv(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

fn options() -> StartOptions {
    StartOptions {
        private_network: true,
        run_as: Some((1000, 1000)),
        sockets: 2,
        ..StartOptions::default()
    }
}

/// Waits until the output contains `needle` (or the command ended), returning the output.
fn wait_for_output(running: &Running, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = String::from_utf8_lossy(&running.output()).into_owned();
        if text.contains(needle) {
            return text;
        }
        assert!(
            running.status().unwrap().is_none(),
            "the command ended before printing {needle:?}: {text}"
        );
        assert!(Instant::now() < deadline, "no {needle:?} in {text:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the command ended (it must within 20 s).
fn wait_until_ended(running: &Running) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while running.status().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the command never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every descendant of `pid` (host pids), from `/proc/<pid>/task/*/children`.
fn descendants(pid: i32) -> Vec<i32> {
    let mut found = vec![];
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let tasks = std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

rootless_test! {
    /// Only `lo` exists and is up; the host's listeners are unreachable; a port the host uses is
    /// free inside; the command runs as the mapped user; the caller reaches the server.
    fn private_network_is_isolated_and_reachable_through_handed_out_sockets() {
        let fx = Fixture::new();
        let hello = fx.base.join("bin/hello");
        fs_err::write(&hello, "#!/bin/sh\necho hello from inside\n").unwrap();
        fs_err::set_permissions(&hello, std::fs::Permissions::from_mode(0o755)).unwrap();
        let host = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = host.local_addr().unwrap().port();
        let script = format!(
            "id -u; id -g; cat /proc/net/dev; \
             if nc -w 1 127.0.0.1 {port} </dev/null; then echo host-reached; else echo host-unreachable; fi; \
             echo serving; exec nc -ll -p {port} -e /bin/hello"
        );
        let running = fx.sandbox().start(&argv(&script), &options()).unwrap();
        let text = wait_for_output(&running, "serving");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["1000", "1000"], "{text}");
        let interfaces: Vec<&str> = text
            .lines()
            // /proc/net/dev rows: right-aligned `name:` then counters.
            .filter(|l| l.starts_with(' ') && !l.contains('|'))
            .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim()))
            .collect();
        assert_eq!(interfaces, ["lo"], "{text}");
        assert!(text.contains("host-unreachable"), "{text}");

        // The listener shows in the namespace's socket tables (state 0A = LISTEN; busybox nc
        // listens on IPv6 when the kernel has it), not in the host's.
        let hex = format!(":{port:04X} ");
        let deadline = Instant::now() + Duration::from_secs(20);
        let tables = || {
            ["tcp", "tcp6"]
                .map(|t| fs_err::read_to_string(format!("/proc/{}/net/{t}", running.pid())).unwrap())
                .join("")
        };
        while !tables().lines().any(|l| l.contains(&hex) && l.contains(" 0A ")) {
            assert!(Instant::now() < deadline, "nc never listened: {}", tables());
            std::thread::sleep(Duration::from_millis(20));
        }
        let host_tables = ["tcp", "tcp6"].map(|t| fs_err::read_to_string(format!("/proc/self/net/{t}")).unwrap()).join("");
        assert_eq!(
            host_tables.lines().filter(|l| l.contains(&hex) && l.contains(" 0A ")).count(),
            1,
            "only the host's own listener is in the host's table"
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut stream = running.connect(addr, Duration::from_secs(5)).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "hello from inside\n");
        // Two IPv4 sockets were handed out: one is left, then none.
        drop(running.connect(addr, Duration::from_secs(5)));
        let err = running.connect(addr, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrNotAvailable);
        drop(host);
        let stopped = running.stop();
        assert_eq!(stopped.status, None, "the server was killed, it did not exit");
    }
}

rootless_test! {
    /// `stop` kills every process of the sandbox, also background ones, and reports no status.
    fn stop_kills_the_whole_tree() {
        let fx = Fixture::new();
        let running = fx
            .sandbox()
            .start(&argv("sleep 1000 & sleep 1000 & echo started; wait"), &options())
            .unwrap();
        wait_for_output(&running, "started");
        let tree = descendants(running.pid());
        assert!(tree.len() >= 3, "sh and two sleeps under the reaper: {tree:?}");
        let stopped = running.stop();
        assert_eq!(stopped.status, None);
        for pid in tree {
            assert!(
                !PathBuf::from(format!("/proc/{pid}")).exists(),
                "process {pid} survived"
            );
        }
    }
}

rootless_test! {
    /// A command that exits is reported with its status and output; one that cannot be executed
    /// is an exec error.
    fn exit_status_and_exec_failures_are_reported() {
        let fx = Fixture::new();
        let running = fx
            .sandbox()
            .start(&argv("echo to-stdout; echo boom >&2; exit 3"), &options())
            .unwrap();
        wait_until_ended(&running);
        let stopped = running.stop();
        assert_eq!(stopped.status, Some(ExitStatus::Code(3)));
        assert_eq!(String::from_utf8_lossy(&stopped.output), "to-stdout\nboom\n");

        let running = fx.sandbox().start(&["/no/such/program".to_owned()], &options()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let err = loop {
            match running.status() {
                Err(err) => break err,
                Ok(_) => assert!(Instant::now() < deadline, "no exec failure reported"),
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(matches!(err, SandboxError::Exec { .. }), "{err:?}");
    }
}

rootless_test! {
    /// More lower dirs than one `lowerdir` option can name are aliased; the topmost wins.
    fn many_long_lower_dirs_are_stacked_in_order() {
        let fx = Fixture::new();
        let mut lower = vec![];
        for i in 0..5 {
            let dir = fx.dir.path().join(format!("layer-{i}-{}", "x".repeat(90)));
            fs_err::create_dir_all(dir.join("etc")).unwrap();
            fs_err::write(dir.join("etc/which"), format!("layer {i}\n")).unwrap();
            lower.push(dir);
        }
        let mut sandbox = fx.sandbox();
        lower.push(fx.base.clone());
        sandbox.lower = lower;
        let running = sandbox.start(&argv("cat /etc/which /etc/base-file"), &options()).unwrap();
        wait_until_ended(&running);
        let stopped = running.stop();
        assert_eq!(stopped.status, Some(ExitStatus::Code(0)));
        assert_eq!(String::from_utf8_lossy(&stopped.output), "layer 0\nfrom the base\n");
    }
}
