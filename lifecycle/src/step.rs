//! The step the build is in, named in the one line printed when a signal stops it.

use std::sync::{Mutex, MutexGuard};

static STEP: Mutex<String> = Mutex::new(String::new());

fn slot() -> MutexGuard<'static, String> {
    STEP.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Names the step now running (e.g. `making the dependency layer`).
pub fn set(text: &str) {
    *slot() = text.to_owned();
}

/// The step now running, or `""` before the first.
pub fn current() -> String {
    slot().clone()
}

/// Names a sub-step until the guard is dropped, then names the enclosing step again.
pub fn enter(text: &str) -> StepGuard {
    let previous = std::mem::replace(&mut *slot(), text.to_owned());
    StepGuard { previous }
}

/// Restores the enclosing step when dropped (see [`enter`]).
#[derive(Debug)]
#[must_use = "the step ends when this is dropped"]
pub struct StepGuard {
    previous: String,
}

impl Drop for StepGuard {
    fn drop(&mut self) {
        *slot() = std::mem::take(&mut self.previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_steps_restore_the_enclosing_step() {
        set("making the dependency layer");
        {
            let _unpack = enter("unpacking the base image");
            assert_eq!(current(), "unpacking the base image");
        }
        assert_eq!(current(), "making the dependency layer");
    }
}
