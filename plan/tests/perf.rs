//! A 5,000-file project plans quickly, and planning opens only the files detection needs: the
//! other 5,000 are listed and stat'ed, never opened. Opens are observed with inotify watches on
//! every folder of the project (stat does not open a file; reading does). Reports the time;
//! asserts only a generous bound (machines differ).

mod common;

use std::collections::BTreeSet;
use std::mem::MaybeUninit;
use std::path::Path;
use std::time::{Duration, Instant};

use pyslip_plan::plan;
use rustix::fs::inotify;

/// Names of files (not folders) opened in the watched folders, as `folder/name`.
fn opened_files(fd: &impl std::os::fd::AsFd, folders: &[(i32, String)]) -> BTreeSet<String> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut reader = inotify::Reader::new(fd, &mut buf);
    let mut opened = BTreeSet::new();
    loop {
        match reader.next() {
            Ok(event) => {
                assert!(
                    !event.events().contains(inotify::ReadFlags::QUEUE_OVERFLOW),
                    "inotify queue overflowed: events were lost"
                );
                let (Some(name), false) = (
                    event.file_name(),
                    event.events().contains(inotify::ReadFlags::ISDIR),
                ) else {
                    continue;
                };
                let folder = folders
                    .iter()
                    .find(|(wd, _)| *wd == event.wd())
                    .map_or("?", |(_, f)| f.as_str());
                opened.insert(format!("{folder}/{}", name.to_string_lossy()));
            }
            Err(rustix::io::Errno::AGAIN) => return opened,
            Err(e) => panic!("reading inotify events: {e}"),
        }
    }
}

fn watch(fd: &impl std::os::fd::AsFd, dir: &Path, name: &str) -> (i32, String) {
    let wd = inotify::add_watch(fd, dir, inotify::WatchFlags::OPEN).expect("inotify watch");
    (wd, name.to_owned())
}

#[test]
fn five_thousand_files_plan_quickly_and_only_detection_files_are_opened() {
    let dir = common::project(&[
        ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
        ("requirements.txt", "flask\ngunicorn\n"),
    ]);
    for d in 0..100 {
        for f in 0..50 {
            common::write(dir.path(), &format!("pkg{d:03}/mod{f:02}.py"), "x = 1\n");
        }
    }
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
        .expect("inotify");
    let mut folders = vec![watch(&fd, dir.path(), ".")];
    for d in 0..100 {
        let name = format!("pkg{d:03}");
        folders.push(watch(&fd, &dir.path().join(&name), &name));
    }

    let started = Instant::now();
    let plan = plan(dir.path(), &common::defaults()).expect("plan");
    let elapsed = started.elapsed();
    eprintln!("planned {} entries in {elapsed:?}", plan.files.count);
    assert_eq!(plan.files.count, 5_000 + 100 + 2);
    assert_eq!(plan.files.total_size, 5_000 * 6 + 46 + 15);
    // Well under 0.1 s in a release build; a loaded debug build gets 20 times that.
    assert!(
        elapsed < Duration::from_secs(2),
        "planning took {elapsed:?}"
    );

    let opened = opened_files(&fd, &folders);
    // The watches work: the detection files were opened...
    assert!(opened.contains("./requirements.txt"), "{opened:?}");
    // ...and nothing in the packages was.
    let modules: Vec<&String> = opened.iter().filter(|f| f.starts_with("pkg")).collect();
    assert!(
        modules.is_empty(),
        "planning opened {} module files: {modules:?}",
        modules.len()
    );
}
