//! What every command shares: the model and backend arguments, loading a model, and reading
//! and writing files with their paths in the errors.

use std::path::{Path, PathBuf};

use clipag::engine::Model;
use clipag::generate::Settings;
use clipag::pixels::Pixels;
use clipag::weights::{ModelFiles, folder};
use clipag::{Error, Result, device};

#[derive(clap::Args)]
pub struct ModelArgs {
    /// A model folder (manifest.json, weights.safetensors, tokenizer.json); without one, the
    /// built-in Shapes (robust) model, which this binary carries.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// `gpu` (wgpu: Vulkan, Metal or DX12), `cpu` (burn-flex), `fastest` (a step timed on
    /// each, the faster kept), or `auto`: the GPU if there is one and it is not a software
    /// renderer (llvmpipe, lavapipe, SwiftShader), else the CPU, which is faster than such a
    /// renderer on the same processor; an adapter that does not say what it is (a virtual
    /// GPU) is timed, as `fastest` does.
    #[arg(long, default_value = "auto")]
    pub backend: Backend,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Backend {
    Auto,
    Gpu,
    Cpu,
    Fastest,
}

/// The views of the step `fastest` times on each engine (the built-in model's own number).
const TIMED_VIEWS: usize = 16;

/// Data as one line of JSON.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// The built-in model (models/shapes-robust, the first of models/index.json), compiled in
/// so that the binary works anywhere.
pub fn builtin_model() -> Result<ModelFiles> {
    macro_rules! file {
        ($name:literal) => {
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/shapes-robust/", $name))
        };
    }
    let manifest = std::str::from_utf8(file!("manifest.json")).expect("the built-in manifest is UTF-8");
    ModelFiles::new(manifest, file!("weights.safetensors").to_vec(), file!("tokenizer.json").to_vec())
}

pub async fn load(args: &ModelArgs) -> Result<Model> {
    let files = match &args.model {
        Some(dir) => folder::read(dir)?,
        None => builtin_model()?,
    };
    Settings::check_recommendation(files.manifest.recommended.as_ref())?;
    let gpu = match args.backend {
        Backend::Fastest => Some(device::open(device::BackendKind::Gpu).await),
        Backend::Auto => match device::open(device::BackendKind::Gpu).await {
            Ok(gpu) if gpu.info.unclear => Some(Ok(gpu)),
            _ => None,
        },
        _ => None,
    };
    match gpu {
        Some(Ok(gpu)) => fastest(&files, gpu).await,
        Some(Err(error)) => {
            eprintln!("note: {error}; using the CPU");
            Model::load(&files, &device::open(device::BackendKind::Cpu).await?.device)
        }
        None => Model::load(&files, &open(args.backend).await?.device),
    }
}

/// Loads `files` on the GPU and on the CPU, times one step on each (after one that compiles
/// the kernels) and keeps the faster, saying on stderr which and by how much.
async fn fastest(files: &ModelFiles, gpu: device::Compute) -> Result<Model> {
    let cpu = device::open(device::BackendKind::Cpu).await?;
    let mut timed = Vec::new();
    for compute in [gpu, cpu] {
        let model = std::rc::Rc::new(Model::load(files, &compute.device)?);
        let figures = clipag::bench::measure(&model, TIMED_VIEWS, 1, 1).await?;
        timed.push((figures.seconds_per_step, compute.info.adapter, model));
    }
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (fast, chosen, model) = timed.remove(0);
    let (slow, other, _) = &timed[0];
    eprintln!("note: a step of {TIMED_VIEWS} views took {fast:.3} s on {chosen} and {slow:.3} s on {other}: using {chosen}");
    std::rc::Rc::try_unwrap(model).map_err(|_| Error::Internal("the timed model is still in use".into()))
}

/// The device `backend` names. With no model to time, `fastest` and an unclear adapter under
/// `auto` take the GPU (`load` times them).
pub async fn open(backend: Backend) -> Result<device::Compute> {
    match backend {
        Backend::Gpu => device::open(device::BackendKind::Gpu).await,
        Backend::Cpu => device::open(device::BackendKind::Cpu).await,
        Backend::Auto | Backend::Fastest => match device::open(device::BackendKind::Gpu).await {
            Ok(compute) if compute.info.software => {
                eprintln!(
                    "note: the GPU adapter is {}, a software renderer on the CPU, slower than the CPU engine \
                     (docs/performance.md); using the CPU (burn-flex). --backend gpu uses it anyway",
                    compute.info.adapter
                );
                device::open(device::BackendKind::Cpu).await
            }
            Ok(compute) => Ok(compute),
            Err(error) => {
                eprintln!("note: {error}; using the CPU");
                device::open(device::BackendKind::Cpu).await
            }
        },
    }
}

/// Says on stderr what the model cannot read of a text: words it does not know, a tail past its context.
pub fn note_reading(model: &Model, text: &str) -> Result<()> {
    for note in model.tokenizer.notes(&model.tokenize(text)?) {
        eprintln!("note: {note}");
    }
    Ok(())
}

pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

pub fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// An image file's pixels; a file that is no image is named in the error.
pub fn read_pixels(path: &Path) -> Result<Pixels> {
    Pixels::decode(&read_bytes(path)?).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

pub fn read_image(path: &Path, size: usize) -> Result<Pixels> {
    let pixels = read_pixels(path)?;
    if pixels.height != size || pixels.width != size {
        eprintln!("note: the image is {}x{}; resized to the model's {size}x{size}", pixels.width, pixels.height);
    }
    Ok(pixels.resized(size))
}
