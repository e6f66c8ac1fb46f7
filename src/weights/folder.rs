//! Model folders on disk (native): reading one back, writing one from named tensors.

use std::path::Path;

use super::manifest::{self, FileEntry, Manifest};
use super::quant::{self, Quantization};
use super::tensors::TensorMap;
use super::ModelFiles;
use crate::model::ClipConfig;
use crate::{Error, Result};

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::file(e.to_string()).at(path.display())
}

/// The largest manifest read: a manifest is a few kilobytes.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Reads and verifies a model folder. Each file's size is checked before it is read: the
/// manifest's against `MAX_MANIFEST_BYTES`, the others' against what the manifest says they
/// hold, so that a huge file, a link to a device or a sparse file is refused at once.
pub fn read(dir: &Path) -> Result<ModelFiles> {
    let read = |name: &str, most: u64| {
        let path = dir.join(name);
        let metadata = std::fs::metadata(&path).map_err(|e| io(&path, e))?;
        if !metadata.is_file() {
            return Err(Error::file("not a regular file").at(path.display()));
        }
        if metadata.len() > most {
            return Err(Error::file(format!("{} bytes, more than the {most} expected", metadata.len())).at(path.display()));
        }
        std::fs::read(&path).map_err(|e| io(&path, e))
    };
    let manifest_path = dir.join(manifest::MANIFEST);
    let manifest = String::from_utf8(read(manifest::MANIFEST, MAX_MANIFEST_BYTES)?)
        .map_err(|_| Error::file("not UTF-8").at(manifest_path.display()))?;
    let manifest = Manifest::parse(&manifest).map_err(|e| e.at(manifest_path.display()))?;
    // `Manifest::parse` has checked that both files are listed, with their sizes.
    let listed = |name: &str| read(name, manifest.files[name].bytes);
    let (weights, tokenizer) = (listed(manifest::WEIGHTS)?, listed(manifest::TOKENIZER)?);
    // The files name themselves by their names in the folder; on disk, the folder is known.
    ModelFiles::verified(manifest, weights, tokenizer).map_err(|e| e.under(dir))
}

/// What describes a model besides its weights.
pub struct Description {
    pub name: String,
    pub license: String,
    pub source: String,
    /// How to paint with it, where it has its own way (a `Patch` of settings).
    pub recommended: Option<super::manifest::Patch>,
}

/// Writes a model folder: the tensors encoded at `quantization`, the tokenizer, and a
/// manifest listing both with their sizes and hashes.
pub fn write(
    dir: &Path,
    config: &ClipConfig,
    tensors: &TensorMap,
    quantization: Quantization,
    tokenizer_json: &[u8],
    description: Description,
) -> Result<Manifest> {
    if let Some(recommended) = &description.recommended {
        recommended.check_names()?;
    }
    let encoded: Vec<(String, quant::Encoded)> = tensors
        .iter()
        .map(|(name, t)| (name.clone(), quant::encode(t, quantization.encoding(name, &t.shape))))
        .collect();
    fn view<'a>(name: &str, dtype: safetensors::Dtype, shape: &[usize], bytes: &'a [u8]) -> Result<safetensors::tensor::TensorView<'a>> {
        safetensors::tensor::TensorView::new(dtype, shape.to_vec(), bytes)
            .map_err(|err| Error::Invalid(format!("encoding '{name}': {err}")))
    }
    let mut views = Vec::new();
    for (name, e) in &encoded {
        views.push((name.clone(), view(name, e.dtype, &e.shape, &e.data)?));
        if let Some((dtype, shape, bytes)) = &e.scales {
            views.push((format!("{name}.scale"), view(name, *dtype, shape, bytes)?));
        }
    }
    let metadata = [("format".to_string(), format!("{}-weights/{}", manifest::FORMAT, manifest::VERSION))];
    let weights = safetensors::serialize(views, Some(metadata.into_iter().collect()))
        .map_err(|e| Error::Invalid(format!("writing weights: {e}")))?;

    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        name: description.name,
        license: description.license,
        source: description.source,
        quantization,
        config: config.clone(),
        files: [
            (manifest::WEIGHTS.to_string(), FileEntry::of(&weights)),
            (manifest::TOKENIZER.to_string(), FileEntry::of(tokenizer_json)),
        ]
        .into_iter()
        .collect(),
        recommended: description.recommended,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    for (name, bytes) in [
        (manifest::WEIGHTS, &weights[..]),
        (manifest::TOKENIZER, tokenizer_json),
        ("manifest.json", manifest.to_json().as_bytes()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
    }
    Ok(manifest)
}
