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

#[test]
fn generate_refuses_bad_settings_before_loading_anything() {
    let dir = std::env::temp_dir().join(format!("clipag-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_an_image = dir.join("not-an-image.png");
    std::fs::write(&not_an_image, b"this is not a picture").unwrap();
    let model = dir.join("no-such-model");
    for (args, expected) in [
        (vec!["--steps", "0"], "steps"),
        (vec!["--lr", "NaN"], "learning rate"),
        (vec!["--size", "0"], "canvas"),
        (vec!["--size", "100000"], "canvas"),
        (vec!["--init", not_an_image.to_str().unwrap()], "image could not be read"),
    ] {
        let mut all = vec!["generate", "--model", model.to_str().unwrap(), "--prompt", "a cat", "--out", "/dev/null"];
        all.extend(args.iter().copied());
        let out = clipag(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{all:?} succeeded");
        assert!(stderr.contains(expected), "{all:?}: {stderr}");
    }
}

/// Without `--model`, the built-in Shapes model (carried by the binary) paints.
#[test]
fn generate_uses_the_built_in_model_by_default() {
    let out_png = std::env::temp_dir().join(format!("clipag-cli-builtin-{}.png", std::process::id()));
    let out = clipag(&[
        "generate", "--backend", "cpu", "--prompt", "a red star", "--steps", "3", "--views", "2", "--patch-views", "2",
        "--candidates", "2", "--out", out_png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let picture = image::open(&out_png).expect("a PNG");
    assert_eq!((picture.width(), picture.height()), (64, 64));
    std::fs::remove_file(out_png).ok();
}
