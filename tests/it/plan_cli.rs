//! `pyslip plan` from the command line (the plan itself is tested in the plan crate).

use std::process::{Command, Stdio};

fn pyslip() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pyslip"))
}

fn app(name: &str) -> String {
    format!("{}/testdata/apps/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn plan_json_is_the_plan_crates_serialization() {
    let out = pyslip()
        .args(["plan", &app("stdlib"), "--json", "--python", "3.11"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(plan["python"]["value"], "3.11");
    assert_eq!(plan["python"]["source"]["kind"], "flag");
    assert_eq!(
        plan["cmd"]["value"],
        serde_json::json!(["python", "main.py"])
    );
}

#[test]
fn plan_table_names_sources() {
    let out = pyslip()
        .args(["plan", &app("django")])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("runtime.txt"), "{table}");
    assert!(table.contains("collectstatic"), "{table}");
}

/// Regression: `pyslip plan | head` panicked with "failed printing to stdout".
#[test]
fn closed_stdout_is_not_a_panic() {
    let mut child = pyslip()
        .args(["plan", &app("fastapi-uv"), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}

#[test]
fn malformed_env_flag_names_the_flag() {
    let out = pyslip()
        .args(["plan", &app("stdlib"), "--env", "NOEQUALS"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--env \"NOEQUALS\""), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}
