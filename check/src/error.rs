//! Errors of the boot check: a failed check, or a check that could not run.

use std::io;

use pyslip_sandbox::SandboxError;

use crate::outcome::Failure;

/// Everything that ends a check without a pass.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The image ran and failed the check.
    #[error("boot check failed: {0}")]
    Failed(Failure),
    /// The sandbox could not start the image (user namespaces blocked, setup failure …).
    #[error("boot check: cannot start the image in the rootless sandbox")]
    Sandbox(#[source] SandboxError),
    /// The image config cannot be started as it is.
    #[error("boot check: {0}")]
    Image(String),
    /// The app layer could not be unpacked as the sandbox's top layer.
    #[error("boot check: cannot unpack the app layer")]
    Unpack(#[source] layers::UnpackError),
    /// The check's scratch directory could not be prepared.
    #[error("boot check: cannot prepare its scratch directory")]
    Io(#[source] io::Error),
}

impl CheckError {
    /// What the user can do, for the `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            CheckError::Failed(failure) => Some(failure.hint()),
            CheckError::Sandbox(SandboxError::Unavailable { blocker, .. }) => Some(format!(
                "{}; or build without --check (the check needs unprivileged user and network namespaces)",
                blocker.fix()
            )),
            CheckError::Sandbox(e) => e.hint(),
            CheckError::Image(_) => Some(
                "build without --check, or give the image a numeric user and a start command (--user, --cmd)"
                    .to_owned(),
            ),
            CheckError::Unpack(e) => e.hint(),
            CheckError::Io(_) => None,
        }
    }

    /// The failure, when the image ran and failed.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            CheckError::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}
