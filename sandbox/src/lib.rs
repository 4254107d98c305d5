//! Rootless sandbox: user, mount and PID namespaces around a root filesystem (sync, no tokio).
