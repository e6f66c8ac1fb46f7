//! Shared by the native tests: the open_clip fixtures, model folders converted from them,
//! and the comparisons the issues name.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;

use clipag::engine::Model;
use clipag::generate::{Generator, Settings};
use clipag::pixels::Pixels;
use clipag::weights::convert;
use clipag::weights::quant::Quantization;

/// The repository's root: this package's folder, or two above it for the workspace's
/// crates (crates/shapes, crates/cli), whose tests include this module too.
pub fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().find(|dir| dir.join("crates").is_dir() && dir.join("tests/fixtures").is_dir()).unwrap_or(here).to_path_buf()
}

/// The folder of a model the repository ships (under models/).
pub fn shipped(name: &str) -> PathBuf {
    root().join("models").join(name)
}

/// The open_clip reference data the repository owns (made by tools/make_fixtures.py).
pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// The larger shared copies made the same way (../shared/fixtures, beside the checkout where
/// CI runs), a cross-check of the repository's own: `None` in a bare clone.
pub fn shared_fixtures() -> Option<PathBuf> {
    let dir = root().join("../shared/fixtures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("no {} beside the checkout: the cross-check against the shared fixtures is not run", dir.display());
        None
    }
}

/// open_clip's ViT fixture.
pub fn tiny() -> PathBuf {
    fixtures().join("tiny-clip")
}

/// open_clip's ModifiedResNet fixture (the same text tower, prompts and images).
pub fn tiny_rn() -> PathBuf {
    fixtures().join("tiny-rn")
}

/// A tensor of reference.safetensors, as f32 (token ids as f32 too), with its shape.
pub struct Ref {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The reference tensors of the fixture in `dir`, read once per test process.
pub fn reference_of(dir: &Path) -> &'static HashMap<String, Ref> {
    static REFERENCES: OnceLock<std::sync::Mutex<HashMap<PathBuf, &'static HashMap<String, Ref>>>> = OnceLock::new();
    let mut references = REFERENCES.get_or_init(Default::default).lock().unwrap();
    references.entry(dir.to_path_buf()).or_insert_with(|| {
        let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let data = match view.dtype() {
                    safetensors::Dtype::F32 => view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
                    safetensors::Dtype::I64 => view.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
                    other => panic!("unexpected dtype {other:?}"),
                };
                (name, Ref { shape: view.shape().to_vec(), data })
            })
            .collect();
        Box::leak(Box::new(tensors))
    })
}

pub fn reference() -> &'static HashMap<String, Ref> {
    reference_of(&tiny())
}

pub fn prompts_of(dir: &Path) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    json["prompts"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
}

pub fn prompts() -> Vec<String> {
    prompts_of(&tiny())
}

/// Row `i` of a reference tensor whose first dimension indexes items.
pub fn row_of(dir: &Path, name: &str, i: usize) -> Vec<f32> {
    let r = &reference_of(dir)[name];
    let n: usize = r.shape[1..].iter().product();
    r.data[i * n..(i + 1) * n].to_vec()
}

pub fn row(name: &str, i: usize) -> Vec<f32> {
    row_of(&tiny(), name, i)
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// ||a - b|| / ||b||.
pub fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (diff / norm).sqrt()
}

/// A fresh directory under the target directory's tmp (Cargo's CARGO_TARGET_TMPDIR), named
/// for the test binary and `name`: a rerun replaces it, so runs do not pile up in /tmp.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{name}", env!("CARGO_CRATE_NAME")));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Converts a fixture source (relative to the fixture folder `dir`) into a model folder,
/// once per test process for each (fixture, source, quantization).
pub fn converted_from(dir: &Path, source: &str, quantization: Quantization) -> PathBuf {
    static DONE: OnceLock<std::sync::Mutex<HashMap<(PathBuf, String, String), PathBuf>>> = OnceLock::new();
    let key = (dir.to_path_buf(), source.to_string(), format!("{quantization:?}"));
    let mut done = DONE.get_or_init(Default::default).lock().unwrap();
    if let Some(out) = done.get(&key) {
        return out.clone();
    }
    // Named for the fixture and the folder above it, so the shared copies never share a folder.
    let names: Vec<_> = dir.components().rev().take(3).map(|c| c.as_os_str().to_string_lossy()).collect();
    let fixture = names.join("-");
    let out = temp_dir(&format!("{fixture}-{}-{:?}", source.replace(['/', '.'], "_"), quantization));
    let options = convert::Options { quantization, quick_gelu: false, config: None, name: Some("tiny".into()), license: Some("test".into()), tokenizer: None, recommended: None, source: None };
    convert::convert(&dir.join(source), &out, &options).expect("the fixture converts");
    done.insert(key, out.clone());
    out
}

/// `converted_from` the ViT fixture.
pub fn converted(source: &str, quantization: Quantization) -> PathBuf {
    converted_from(&tiny(), source, quantization)
}

/// Runs a generation to its end, checking that every step's numbers are finite and the canvas
/// stays in [0, 1]; returns the clean score at the start and at the end, and the kept picture.
pub fn run(model: &Rc<Model>, settings: Settings) -> (f32, f32, Pixels) {
    let mut generator = pollster::block_on(Generator::new(model.clone(), settings)).unwrap();
    let start = generator.current_score();
    let mut last = start;
    while !generator.is_done() {
        let report = pollster::block_on(generator.step()).unwrap();
        assert!(report.score.is_finite() && report.global_loss.is_finite() && report.patch_loss.is_finite());
        last = report.score;
    }
    assert!(generator.current().data.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    (start, last, generator.best().clone())
}
