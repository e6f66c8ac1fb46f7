//! The command line's contract: JSON on stdout, clear errors on stderr, a failing exit code.

use std::process::Command;

#[path = "../../../tests/common/mod.rs"]
mod common;
use common::temp_dir;

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
    let dir = temp_dir("bad-settings");
    let not_an_image = dir.join("not-an-image.png");
    std::fs::write(&not_an_image, b"this is not a picture").unwrap();
    let model = dir.join("no-such-model");
    for (args, expected) in [
        (vec!["--steps", "0"], "steps"),
        (vec!["--lr", "NaN"], "learning rate"),
        (vec!["--size", "0"], "canvas"),
        (vec!["--size", "100000"], "canvas"),
        (vec!["--init", not_an_image.to_str().unwrap()], "image could not be read"),
        (vec!["--image-prompt", not_an_image.to_str().unwrap()], "image could not be read"),
        (vec!["--image-prompt", "x.png::heavy"], "not a weight"),
        (vec!["--param", "strokes", "--strokes", "0"], "strokes must be 1 to"),
        (vec!["--svg", "out.svg"], "add --param strokes"),
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
    let out_png = temp_dir("builtin").join("out.png");
    let out = clipag(&[
        "generate", "--backend", "cpu", "--prompt", "a red star", "--steps", "3", "--views", "2", "--patch-views", "2",
        "--candidates", "2", "--out", out_png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let picture = image::open(&out_png).expect("a PNG");
    assert_eq!((picture.width(), picture.height()), (64, 64));
    std::fs::remove_file(out_png).ok();
}

/// Strokes on the built-in model: a PNG and an SVG of the same strokes (the SVG checked against
/// the PNG with a real renderer in the engine's own tests).
#[test]
fn generate_paints_strokes_and_writes_their_svg() {
    let dir = temp_dir("strokes");
    let (png, svg) = (dir.join("out.png"), dir.join("out.svg"));
    let out = clipag(&[
        "generate", "--backend", "cpu", "--prompt", "a red star", "--param", "strokes", "--strokes", "12", "--steps", "3",
        "--views", "2", "--patch-views", "2", "--candidates", "2", "--out", png.to_str().unwrap(), "--svg", svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\""), "{svg}");
    assert_eq!(svg.matches("<path ").count(), 12);
    assert_eq!(image::open(&png).unwrap().width(), 64);
    std::fs::remove_dir_all(dir).ok();
}

/// `clipag explain` on a clean render of the Shapes world ranks the render's own caption
/// first among others of the world, prints JSON and writes the gradient maps beside it.
#[test]
fn explain_ranks_a_render_s_own_caption_first() {
    let dir = temp_dir("explain");
    let out = clipag(&["shapes", "render", "--count", "6", "--seed", "3", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let captions = std::fs::read_to_string(dir.join("captions.txt")).unwrap();
    let captions: Vec<(&str, &str)> = captions.lines().map(|l| l.split_once('\t').unwrap()).collect();
    let texts: Vec<&str> = captions.iter().map(|(_, caption)| *caption).collect();
    let saliency = dir.join("saliency.png");
    for (file, own) in &captions {
        let image = dir.join(file);
        let mut args = vec!["explain", "--backend", "cpu", "--image", image.to_str().unwrap(), "--saliency", saliency.to_str().unwrap(), "--caption"];
        args.extend(&texts);
        let out = clipag(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let readings: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        let readings = readings["readings"].as_array().unwrap();
        assert_eq!(readings.len(), texts.len());
        eprintln!("{file}: {} first ({:.3}), own caption {own:?}", readings[0]["caption"], readings[0]["probability"]);
        assert_eq!(readings[0]["caption"], *own, "{file}");
        let total: f64 = readings.iter().map(|r| r["probability"].as_f64().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
    }
    let strip = image::open(&saliency).unwrap();
    assert_eq!((strip.width(), strip.height()), (64 * (1 + texts.len() as u32), 64));
    // The model's own words, and the errors.
    let image = dir.join(captions[0].0);
    let out = clipag(&["explain", "--backend", "cpu", "--image", image.to_str().unwrap(), "--vocabulary"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let readings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(readings["readings"].as_array().unwrap().len(), 33, "the Shapes world's words");
    for (args, expected) in [(vec!["--caption", " "], "caption 1 is empty"), (vec![], "give --caption")] {
        let mut all = vec!["explain", "--backend", "cpu", "--image", image.to_str().unwrap()];
        all.extend(args);
        let out = clipag(&all);
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains(expected), "{all:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::remove_dir_all(dir).ok();
}

/// The built-in model knows only its world's words: the others are named, with the ones it knows.
#[test]
fn generate_names_the_words_the_model_does_not_know() {
    let out_png = temp_dir("unknown-words").join("out.png");
    let out = clipag(&[
        "generate", "--backend", "cpu", "--prompt", "a red cat", "--negative", "the moon", "--steps", "1", "--views", "1",
        "--patch-views", "0", "--candidates", "1", "--out", out_png.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for expected in ["does not know the word 'cat'", "does not know the word 'moon'", "the words it knows are: a, "] {
        assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
    }
    let out = clipag(&["tokenize", "--model", concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/shapes-robust"), "a red star", "a cat"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("does not know").count(), 1, "{stderr}");
    std::fs::remove_file(out_png).ok();
}

/// `clipag shapes eval` writes its files, one CSV line and one PNG per painting, and
/// `clipag shapes judge` reads those PNGs as the evaluation read the paintings.
#[test]
fn shapes_eval_writes_tables_grid_and_one_line_per_picture() {
    let out_dir = temp_dir("eval");
    let models = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models");
    let out = clipag(&[
        "shapes", "eval", "--plain", &format!("{models}/shapes-plain"), "--robust", &format!("{models}/shapes-robust"),
        "--prompts", "2", "--seeds", "1", "--steps", "2", "--views", "1", "--patch-views", "1",
        "--out", out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tables = std::fs::read_to_string(out_dir.join("tables.md")).unwrap();
    assert!(tables.contains("painted for 2 held-out prompts x 1 seeds"), "{tables}");
    image::open(out_dir.join("grid.png")).expect("a PNG");
    let csv = std::fs::read_to_string(out_dir.join("pictures.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "prompt,seed,model,colour,shape,background,place,size,judged colour,judged shape,judged background,judged place,judged size,score,clean score"
    );
    assert_eq!(lines.len(), 1 + 2 * 2, "{csv}");
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 15, "{line}");
        assert!(fields[0].starts_with("\"a ") && (fields[2] == "plain" || fields[2] == "robust"), "{line}");
        assert!(fields[3..8].iter().all(|f| *f == "0" || *f == "1"), "{line}");
        // Cosines: two steps of painting are far from the prompt's own picture, which each
        // twin reads well (its cosine 0.6 or more on every one of 20 held-out prompts).
        let [painted, clean] = [13, 14].map(|i| fields[i].parse::<f32>().unwrap());
        assert!((-1.0..=1.0).contains(&painted) && clean > 0.5 && clean > painted, "{line}");
    }
    let paintings = std::fs::read_dir(out_dir.join("paintings")).unwrap().count();
    assert_eq!(paintings, 2 * 2);
    let judged_dir = out_dir.join("judged");
    let out = clipag(&["shapes", "judge", "--from", out_dir.to_str().unwrap(), "--out", judged_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let judged = std::fs::read_to_string(judged_dir.join("judged.csv")).unwrap();
    // The same lines but the scores: what was asked, and what the judge reads in the PNGs.
    let readings = |line: &str| line.split(',').take(13).collect::<Vec<_>>().join(",");
    let mut expected: Vec<String> = lines.iter().map(|l| readings(l)).collect();
    let mut got: Vec<String> = judged.lines().map(readings).collect();
    expected[1..].sort();
    got[1..].sort();
    assert_eq!(got, expected);
    std::fs::remove_dir_all(out_dir).ok();
}

/// `--backend auto` (the default) takes the GPU only where it is one: on a software adapter
/// (lavapipe here, where CI runs) it paints on the CPU engine, faster there, and says why.
#[test]
fn auto_prefers_the_cpu_engine_to_a_software_adapter_and_says_so() {
    let check = clipag(&["check", "--backend", "gpu"]);
    let software = match serde_json::from_slice::<serde_json::Value>(&check.stdout) {
        Ok(report) => report["device"]["software"].as_bool().expect("the check reports whether the adapter is software"),
        Err(_) => return eprintln!("no GPU adapter here: auto's choice between two engines is not tested"),
    };
    let out_png = temp_dir("auto").join("out.png");
    let out = clipag(&[
        "generate", "--prompt", "a red star", "--steps", "1", "--views", "1", "--patch-views", "0", "--candidates", "1",
        "--out", out_png.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.contains("a software renderer on the CPU") && stderr.contains("using the CPU (burn-flex)"), software, "{stderr}");
}

/// `--backend fastest` (and `auto` on an adapter that does not say what it is) times a step
/// on each engine and paints on the faster, naming both times.
#[test]
fn fastest_times_a_step_on_each_engine_and_keeps_the_faster() {
    let check = clipag(&["check", "--backend", "gpu"]);
    if !check.status.success() {
        return eprintln!("no GPU adapter here: fastest has one engine to time");
    }
    let out_png = temp_dir("fastest").join("out.png");
    let out = clipag(&[
        "generate", "--backend", "fastest", "--prompt", "a red star", "--steps", "1", "--views", "1", "--patch-views", "0",
        "--candidates", "1", "--out", out_png.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = stderr.lines().find_map(|l| l.strip_prefix("note: a step of 16 views took ")).unwrap_or_else(|| panic!("{stderr}"));
    let (fast, rest) = line.split_once(" s on ").unwrap();
    let (chosen, rest) = rest.split_once(" and ").unwrap();
    let (slow, rest) = rest.split_once(" s on ").unwrap();
    let (_, using) = rest.split_once(": using ").unwrap();
    assert!(fast.parse::<f64>().unwrap() <= slow.parse::<f64>().unwrap(), "the faster is named first: {line}");
    assert_eq!(using, chosen, "{line}");
    assert!(out_png.exists());
}
