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
