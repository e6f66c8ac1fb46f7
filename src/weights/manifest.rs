//! `manifest.json`: what a model folder holds, and the sizes and hashes that prove each file
//! arrived whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::quant::Quantization;
use crate::model::ClipConfig;
use crate::{Error, Result};

pub const FORMAT: &str = "clipag-model";
pub const VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const WEIGHTS: &str = "weights.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// What the model is called in a model picker.
    pub name: String,
    /// The licence of the weights (an SPDX identifier where there is one).
    pub license: String,
    /// Where the weights came from.
    pub source: String,
    pub quantization: Quantization,
    pub config: ClipConfig,
    pub files: BTreeMap<String, FileEntry>,
    /// How to paint with this model where a person says nothing (absent: the paper's way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended: Option<Patch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub bytes: u64,
    pub sha256: String,
}

impl FileEntry {
    pub fn of(bytes: &[u8]) -> Self {
        Self { bytes: bytes.len() as u64, sha256: sha256_hex(bytes) }
    }
}

/// Generation settings by name (their serde names: docs/generation.md), over others: a model's
/// recommendation (`recommended` here), the page's request, the command line's flags. Plain
/// data at this level; `generate::Settings::patched` reads it, and checks the values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Patch(pub serde_json::Map<String, serde_json::Value>);

impl Patch {
    /// A recommendation names how to paint, not what: a prompt or a seed is the person's.
    pub fn check_names(&self) -> Result<()> {
        for key in ["prompt", "negative", "seed"] {
            if self.0.contains_key(key) {
                return Err(Error::Invalid(format!("the recommended settings name a {key}, which is the person's to choose")));
            }
        }
        Ok(())
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self> {
        let manifest: Manifest = serde_json::from_str(text)
            .map_err(|e| Error::file(format!("manifest.json is not a valid model manifest: {e}")).at(MANIFEST))?;
        if manifest.format != FORMAT {
            return Err(Error::file(format!("manifest.json describes '{}', not a {FORMAT} folder", manifest.format)).at(MANIFEST));
        }
        if manifest.version != VERSION {
            return Err(Error::file(format!("manifest.json is format version {}; this build reads version {VERSION}", manifest.version)).at(MANIFEST));
        }
        // A folder's files are named, never reached by a path or an address.
        if let Some(name) = manifest.files.keys().find(|n| n.is_empty() || n.contains(['/', '\\', ':']) || n.starts_with('.')) {
            return Err(Error::file(format!("manifest.json lists '{name}': a model folder's files are named, not given by a path or an address")).at(MANIFEST));
        }
        for required in [WEIGHTS, TOKENIZER] {
            if !manifest.files.contains_key(required) {
                return Err(Error::file(format!("manifest.json lists no {required}")).at(MANIFEST));
            }
        }
        manifest.config.validate().map_err(|e| e.at(MANIFEST))?;
        if let Some(recommended) = &manifest.recommended {
            recommended.check_names().map_err(|e| Error::file(format!("manifest.json: {e}")).at(MANIFEST))?;
        }
        Ok(manifest)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest is plain data") + "\n"
    }

    /// Checks a file's bytes against the manifest: first the size (a truncated download),
    /// then the sha256 (a corrupt or substituted one).
    pub fn verify(&self, file: &str, bytes: &[u8]) -> Result<()> {
        let entry = self
            .files
            .get(file)
            .ok_or_else(|| Error::file(format!("manifest.json lists no file '{file}'")).at(MANIFEST))?;
        if bytes.len() as u64 != entry.bytes {
            return Err(Error::file(format!(
                "{file} is {} bytes but the manifest says {}: the file is truncated or was replaced",
                bytes.len(),
                entry.bytes
            ))
            .at(file));
        }
        let actual = sha256_hex(bytes);
        if actual != entry.sha256 {
            return Err(Error::file(format!(
                "{file} does not match its sha256 in the manifest (got {actual}, expected {}): the file is corrupt",
                entry.sha256
            ))
            .at(file));
        }
        Ok(())
    }
}
