//! Bad input gets a clear error, never a panic: each case the CLIP issue names.

mod common;

use clipag::weights::quant::Quantization;
use clipag::weights::{ModelFiles, convert, folder, manifest, pickle};
use common::*;

fn copy_folder(from: &std::path::Path, name: &str) -> std::path::PathBuf {
    let to = temp_dir(name);
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

fn error_of<T>(result: clipag::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_weights_file_is_named() {
    let dir = copy_folder(&converted("checkpoint.pt", Quantization::Q8), "truncated");
    let path = dir.join(manifest::WEIGHTS);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let error = folder::read(&dir).err().expect("an error");
    let message = error.to_string();
    assert!(message.contains("weights.safetensors") && message.contains("truncated"), "{message}");
    // A caller acts on the kind and the path, not on the words.
    assert_eq!(error.kind(), clipag::error::ErrorKind::BadFile);
    assert_eq!(error.path(), Some(path.display().to_string().as_str()));
}

#[test]
fn flipped_byte_fails_the_hash() {
    let dir = copy_folder(&converted("checkpoint.pt", Quantization::Q8), "flipped");
    let path = dir.join(manifest::WEIGHTS);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let error = error_of(folder::read(&dir));
    assert!(error.contains("sha256") && error.contains("corrupt"), "{error}");
}

#[test]
fn corrupt_safetensors_with_a_matching_manifest_is_refused() {
    // A manifest written for garbage passes the hash; the weights parser must still refuse it.
    let dir = converted("checkpoint.pt", Quantization::Q8);
    let files = folder::read(&dir).unwrap();
    let garbage = vec![0xffu8; 64];
    let mut manifest = files.manifest.clone();
    manifest.files.insert(manifest::WEIGHTS.into(), manifest::FileEntry::of(&garbage));
    let files = ModelFiles::new(&manifest.to_json(), garbage, files.tokenizer).unwrap();
    let device = burn::tensor::Device::flex().autodiff();
    let error = error_of(clipag::engine::Model::load(&files, &device));
    assert!(error.contains("not a valid safetensors"), "{error}");
}

#[test]
fn pickle_with_a_foreign_global_is_refused() {
    // The classic: os.system('echo pwned') via GLOBAL + REDUCE.
    let evil = b"\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwnedq\x00\x85R.";
    let error = error_of(pickle::read(evil));
    assert!(error.contains("refusing the global 'os.system'"), "{error}");
}

#[test]
fn pickle_with_an_unknown_opcode_is_refused() {
    let error = error_of(pickle::read(b"\x80\x02\x81."));
    assert!(error.contains("opcode 0x81"), "{error}");
}

#[test]
fn truncated_checkpoint_is_refused() {
    let bytes = std::fs::read(tiny().join("checkpoint.pt")).unwrap();
    let dir = temp_dir("truncated-pt");
    let path = dir.join("checkpoint.pt");
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    let options = convert::Options { quantization: Quantization::F32, quick_gelu: false, config: Some(tiny().join("open_clip_config.json")), name: None, license: None, tokenizer: None, recommended: None, source: None };
    let error = error_of(convert::convert(&path, &dir.join("out"), &options));
    assert!(error.contains("PyTorch checkpoint"), "{error}");
}

#[test]
fn config_with_a_missing_field_is_named() {
    let dir = temp_dir("missing-field");
    let json = std::fs::read_to_string(tiny().join("open_clip_config.json")).unwrap();
    let broken = json.replace("\"patch_size\": 16", "\"patch_sise\": 16");
    assert_ne!(json, broken, "the fixture config changed shape");
    std::fs::write(dir.join("open_clip_config.json"), broken).unwrap();
    std::fs::copy(tiny().join("open_clip_model.safetensors"), dir.join("open_clip_model.safetensors")).unwrap();
    let options = convert::Options { quantization: Quantization::F32, quick_gelu: false, config: None, name: None, license: None, tokenizer: None, recommended: None, source: None };
    let error = error_of(convert::convert(&dir, &dir.join("out"), &options));
    assert!(error.contains("vision_cfg.patch_size"), "{error}");
}

#[test]
fn manifest_with_a_missing_field_is_named() {
    let dir = copy_folder(&converted("checkpoint.pt", Quantization::Q8), "manifest-field");
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["config"]["vision"].as_object_mut().unwrap().remove("width");
    std::fs::write(dir.join("manifest.json"), json.to_string()).unwrap();
    let error = error_of(folder::read(&dir));
    assert!(error.contains("missing field `width`"), "{error}");
}

#[test]
fn wrong_format_is_named() {
    let dir = temp_dir("wrong-format");
    let path = dir.join("weights.bin");
    std::fs::write(&path, b"GIF89a not a checkpoint").unwrap();
    let options = convert::Options { quantization: Quantization::Q8, quick_gelu: false, config: None, name: None, license: None, tokenizer: None, recommended: None, source: None };
    let error = error_of(convert::convert(&path, &dir.join("out"), &options));
    assert!(error.contains("neither a PyTorch checkpoint nor a safetensors file"), "{error}");
}
