//! Sweeping what killed builds left in the cache: scratch dirs and temp files whose owner is
//! gone (see `pyslip_lifecycle::sweep`; live ones of concurrent builds are locked and kept).

use std::thread::JoinHandle;

use pyslip_lifecycle::folders;
use pyslip_lifecycle::scratch::TRASH;
use pyslip_lifecycle::sweep::{Pick, Rule, Swept, sweep};

use crate::root::Cache;

/// Folders of the cache that hold temp entries, and which of their entries are temp: `tmp/`
/// holds nothing else; elsewhere temp names start with `.` beside finished entries named by
/// digest or key. (`tools-v1/` is left alone: its temp file is closed before it is renamed, so
/// it cannot stay locked.)
const FOLDERS: &[(&[&str], Pick)] = &[
    (&[folders::TMP], Pick::All),
    (&[folders::BLOBS, "sha256"], Pick::Hidden),
    (&[folders::ROOTS], Pick::Hidden),
    (&[folders::LAYER_ROOTS], Pick::Hidden),
    (&[folders::DEPS_INDEX], Pick::Hidden),
    (&[folders::PROJECT_INDEX], Pick::Hidden),
    (&[folders::STATIC_INDEX], Pick::Hidden),
];

/// A sweep running in the background; waited for when dropped (at the end of the build).
#[derive(Debug)]
pub struct Sweeping(Option<JoinHandle<Swept>>);

impl Drop for Sweeping {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

impl Cache {
    /// Starts removing the leftovers of killed builds (scratch dirs, half-written temp files) on
    /// a background thread; the returned guard waits for it when dropped.
    pub fn sweep_in_background(&self) -> Sweeping {
        let root = self.root().to_owned();
        let rules: Vec<Rule> = FOLDERS
            .iter()
            .map(|&(parts, pick)| Rule {
                dir: parts.iter().fold(root.clone(), |dir, part| dir.join(part)),
                pick,
            })
            .collect();
        let trash = root.join(folders::TMP).join(TRASH);
        let handle = std::thread::Builder::new()
            .name("pyslip-sweep".into())
            .spawn(move || sweep(&rules, &trash))
            .ok();
        Sweeping(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_dead_leftovers_of_every_folder_and_keeps_live_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(dir.path().join("pyslip")).expect("open");
        let root = cache.root().to_owned();
        let mut dead = Vec::new();
        for (folder, pick) in FOLDERS {
            let folder = folder.iter().fold(root.clone(), |dir, part| dir.join(part));
            fs_err::create_dir_all(&folder).expect("mkdir");
            let name = match pick {
                Pick::All => "deps-dead",
                Pick::Hidden => ".tmp-dead",
            };
            // Not locked by anyone: what a killed build leaves.
            fs_err::create_dir(folder.join(name)).expect("mkdir");
            dead.push(folder.join(name));
            fs_err::write(folder.join(format!("{name}-file")), b"x").expect("write");
            dead.push(folder.join(format!("{name}-file")));
        }
        let finished = root.join("roots-v1/0123abcd");
        fs_err::create_dir(&finished).expect("mkdir");
        let live = pyslip_lifecycle::scratch::ScratchDir::new_in(&root.join("tmp"), "deps-")
            .expect("scratch");
        drop(cache.sweep_in_background());
        for path in &dead {
            assert!(!path.exists(), "{} was not swept", path.display());
        }
        assert!(finished.exists(), "a finished root was swept");
        assert!(live.exists(), "a live scratch dir was swept");
    }
}
