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

/// A memo read copies what it names: reading a value twice, memoising the pair and repeating
/// doubles it each time, so these 606 bytes would build 2^100 values. Refused after the work
/// a pickle of its size may do, in a moment (issue 35).
#[test]
fn a_pickle_memo_bomb_is_refused() {
    let mut bomb = b"\x80\x02]q\x00".to_vec();
    for _ in 0..100 {
        bomb.extend_from_slice(b"h\x00h\x00\x86q\x00");
    }
    bomb.push(b'.');
    let started = std::time::Instant::now();
    let error = error_of(pickle::read(&bomb));
    assert!(error.contains("memo bomb"), "{error}");
    assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
}

/// A million lists each appended into the one below: dropping (or cloning, or reading) it
/// recursively would overflow the stack. Refused at `MAX_DEPTH` (issue 35).
#[test]
fn a_pickle_nested_past_the_depth_cap_is_refused() {
    let n = 1_000_000;
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', n));
    deep.extend(std::iter::repeat_n(b'a', n - 1));
    deep.push(b'.');
    let error = error_of(pickle::read(&deep));
    assert!(error.contains(&format!("nested more than {}", pickle::MAX_DEPTH)), "{error}");
    // As deep as a checkpoint might be, it reads.
    let mut fine = b"\x80\x02".to_vec();
    fine.extend(std::iter::repeat_n(b']', 20));
    fine.extend(std::iter::repeat_n(b'a', 19));
    fine.push(b'.');
    assert!(pickle::read(&fine).is_ok());
}

/// A model folder's files are measured before they are read: one larger than its manifest
/// says, or not a file at all (a link to /dev/zero would be read for ever), is refused by
/// path at once (issue 35).
#[test]
fn a_folder_file_larger_than_declared_or_not_a_file_is_refused_before_reading() {
    let dir = copy_folder(&converted("checkpoint.pt", Quantization::Q8), "oversized");
    let path = dir.join(manifest::WEIGHTS);
    let file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.set_len(8 << 30).unwrap(); // 8 GiB, sparse: nothing is written, and nothing must be read
    let started = std::time::Instant::now();
    let error = folder::read(&dir).err().expect("an error");
    assert!(error.to_string().contains("8589934592 bytes, more than the"), "{error}");
    assert_eq!(error.path(), Some(path.display().to_string().as_str()));
    assert!(started.elapsed().as_secs() < 5, "took {:?}", started.elapsed());

    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let error = error_of(folder::read(&dir));
    assert!(error.contains("not a regular file"), "{error}");
}

/// A safetensors header may be 100 MB by the format; parsing one that large holds 1.9 GB.
/// Refused past `MAX_SAFETENSORS_HEADER`, before it is parsed (issue 35).
#[test]
fn a_safetensors_header_past_the_cap_is_refused_before_parsing() {
    let mut bytes = (100u64 << 20).to_le_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b' ', 1024));
    let error = error_of(clipag::weights::StoredWeights::parse(&bytes));
    assert!(error.contains("not a valid safetensors file: a header of 104857600 bytes"), "{error}");
}

/// Weights that are finite but huge (3e38) overflow inside the model: its embeddings and
/// gradient are an error, not NaN printed as `null` (issue 35). And a tokenizer whose ids
/// reach past the model's embedding table is refused when the model loads (a panic on the
/// CPU, garbage on a GPU): the largest id counts, not how many there are.
#[test]
fn overflowing_weights_and_ids_past_the_embeddings_are_errors() {
    use clipag::engine::Model;
    use clipag::model::WeightSource;
    use clipag::weights::StoredWeights;
    use clipag::weights::folder::Description;
    use clipag::weights::tensors::TensorMap;

    let files = folder::read(&converted("checkpoint.pt", Quantization::F32)).unwrap();
    let mut stored = StoredWeights::parse(&files.weights).unwrap();
    let mut tensors = TensorMap::new();
    for name in stored.names() {
        let mut tensor = stored.take(&name, &[]).unwrap();
        if name == "text_projection" || name == "visual.proj" {
            tensor.data.iter_mut().for_each(|v| *v *= 3e38);
        }
        tensors.insert(name, tensor);
    }
    let describe = || Description { name: "overflowing".into(), license: "none".into(), source: "a test".into(), recommended: None };
    let dir = temp_dir("overflowing");
    let config = &files.manifest.config;
    folder::write(&dir, config, &tensors, Quantization::F32, &files.tokenizer, describe()).unwrap();
    let device = burn::tensor::Device::flex().autodiff();
    let model = Model::load(&folder::read(&dir).unwrap(), &device).unwrap();
    let image = clipag::pixels::Pixels::new(64, 64, vec![0.5; 3 * 64 * 64]).unwrap();
    for error in [
        error_of(pollster::block_on(model.embed_text("a cat"))),
        error_of(pollster::block_on(model.embed_image(&image))),
        error_of(pollster::block_on(model.pixel_gradient(&image, "a cat"))),
    ] {
        assert!(error.contains("non-finite") && error.contains("overflow"), "{error}");
    }

    // The same tokenizer with one id moved past the table (its count unchanged).
    let json = String::from_utf8(files.tokenizer.clone()).unwrap();
    let last = config.text.vocab_size - 1;
    let moved = json.replacen(&format!(":{last}}}"), &format!(":{}}}", last + 1000), 1);
    assert_ne!(moved, json, "the tokenizer's last id is {last}");
    let dir = temp_dir("ids-past-the-table");
    folder::write(&dir, config, &tensors, Quantization::F32, moved.as_bytes(), describe()).unwrap();
    let error = error_of(Model::load(&folder::read(&dir).unwrap(), &device));
    assert!(error.contains(&format!("a token with id {}", last + 1000)), "{error}");
}

/// A manifest names its files; one that lists a path or an address (`../`, `https://`) is
/// refused by name (issue 35), whatever reads the folder.
#[test]
fn a_manifest_listing_a_path_or_an_address_is_refused() {
    let files = folder::read(&converted("checkpoint.pt", Quantization::Q8)).unwrap();
    for name in ["../../etc/passwd", "https://example.com/weights", "/etc/passwd", ".hidden"] {
        let mut manifest = files.manifest.clone();
        manifest.files.insert(name.into(), manifest::FileEntry::of(b"x"));
        let error = error_of(manifest::Manifest::parse(&manifest.to_json()));
        assert!(error.contains(&format!("lists '{name}'")), "{error}");
    }
}
