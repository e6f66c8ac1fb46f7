//! The command line's contract: JSON on stdout, clear errors on stderr, a failing exit code.

use std::process::Command;

fn clipag(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clipag"))
        .args(args)
        .output()
        .expect("clipag runs")
}

#[test]
fn check_prints_json() {
    let out = clipag(&["check", "--backend", "cpu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["device"]["backend"], "cpu");
    assert_eq!(report["grad"].as_array().unwrap().len(), clipag::check::ROWS * clipag::check::INPUTS);
}

#[test]
fn bad_backend_fails_with_a_message() {
    let out = clipag(&["check", "--backend", "tpu"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown backend"));
}
