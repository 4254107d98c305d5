//! A 5,000-file project plans quickly: only detection files are read, the rest is stat only.
//! Reports the time; asserts no timing (machines differ), only the result.

mod common;

use std::time::Instant;

use pyslip_plan::plan;

#[test]
fn five_thousand_files() {
    let dir = common::project(&[
        ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
        ("requirements.txt", "flask\ngunicorn\n"),
    ]);
    for d in 0..100 {
        for f in 0..50 {
            common::write(dir.path(), &format!("pkg{d:03}/mod{f:02}.py"), "x = 1\n");
        }
    }
    let started = Instant::now();
    let plan = plan(dir.path(), &common::defaults()).expect("plan");
    let elapsed = started.elapsed();
    eprintln!("planned {} entries in {elapsed:?}", plan.files.count);
    assert_eq!(plan.files.count, 5_000 + 100 + 2);
    assert_eq!(plan.files.total_size, 5_000 * 6 + 46 + 15);
}
