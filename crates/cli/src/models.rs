//! The commands about model files and what a model computes: the device check, converting,
//! blending, random checkpoints, tokens, embeddings and the pixel gradient.

use std::path::PathBuf;

use clap::Subcommand;
use clipag::generate::Settings;
use clipag::weights::{convert, folder, quant::Quantization};
use clipag::{Error, Result, check, device};

use crate::common::{ModelArgs, json, load, note_reading, read_image, write_file};

/// Model files and what a model computes.
#[derive(Subcommand)]
pub enum Command {
    /// Run the device check (a small forward and backward pass) and print it as JSON.
    Check {
        #[arg(long, default_value = "gpu")]
        backend: device::BackendKind,
    },
    /// Turn a robust-CLIP checkpoint into a model folder the page and this tool load.
    Convert {
        /// A CLIPAG-style PyTorch checkpoint (.pt), an open_clip_model.safetensors (with its
        /// open_clip_config.json beside it), a Hugging Face model.safetensors (with its
        /// config.json), or a folder holding one of those.
        src: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "q8")]
        quant: Quantization,
        /// Use QuickGELU, for checkpoints that do not record their activation (CLIPAG's).
        #[arg(long)]
        quick_gelu: bool,
        /// Display name (default: the source's file name).
        #[arg(long)]
        name: Option<String>,
        /// Licence of the weights, recorded in the manifest (e.g. CC-BY-4.0).
        #[arg(long)]
        license: Option<String>,
        /// An open_clip config (open_clip_config.json) for a checkpoint without one beside it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A tokenizer.json to ship instead of CLIP's, for a model trained on its own
        /// vocabulary (e.g. models/shapes-robust/tokenizer.json, the Shapes world's words).
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// How to paint with the model where a person says nothing, recorded in its manifest:
        /// JSON in the page's names, e.g. '{"steps": 60, "patchViews": 0}' (default: the paper's).
        #[arg(long)]
        recommended: Option<String>,
        /// Where the weights came from, recorded in the manifest (default: the source's name).
        #[arg(long)]
        source: Option<String>,
    },
    /// Interpolate two models of one architecture, tensor by tensor: (1 - T) * A + T * B
    /// (two fine-tunings of one pre-training, such as the Shapes twins).
    Blend {
        a: PathBuf,
        b: PathBuf,
        /// T: 0 gives A, 1 gives B.
        #[arg(long)]
        weight: f32,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "f32")]
        quant: Quantization,
    },
    /// Write a checkpoint of random weights in the CLIPAG layout (for benchmarks and tests of
    /// full-size models; real checkpoints cannot be downloaded everywhere).
    #[command(hide = true)]
    RandomCheckpoint {
        /// `vit-b-32`, `rn50`, or an open_clip_config.json.
        #[arg(long, default_value = "vit-b-32")]
        arch: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print each text's token ids as a JSON array, one line per text.
    Tokenize {
        #[arg(long)]
        model: PathBuf,
        texts: Vec<String>,
    },
    /// Print an embedding (before normalisation) as a JSON array.
    Embed {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, conflicts_with = "image", required_unless_present = "image")]
        text: Option<String>,
        /// An image file; one not at the model's resolution is resized (and a note says so).
        #[arg(long)]
        image: Option<PathBuf>,
    },
    /// Write the gradient of cos(image, text) with respect to the [0,1] pixels as tensor
    /// `grad` [3, H, W] of a safetensors file; print the cosine.
    Grad {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        image: PathBuf,
        #[arg(long)]
        text: String,
        #[arg(long)]
        out: PathBuf,
    },
}

pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Check { backend } => {
            let compute = device::open(backend).await?;
            let report = check::run(&compute.device, &compute.info).await?;
            println!("{}", json(&report));
        }
        Command::Convert { src, out, quant, quick_gelu, name, license, config, tokenizer, recommended, source: source_note } => {
            let recommended = recommended
                .map(|json| serde_json::from_str(&json).map_err(|e| Error::Invalid(format!("--recommended: {e}"))))
                .transpose()?;
            Settings::check_recommendation(recommended.as_ref())?;
            let options = convert::Options { quantization: quant, quick_gelu, config, name, license, tokenizer, recommended, source: source_note };
            let manifest = convert::convert(&src, &out, &options)?;
            let bytes: u64 = manifest.files.values().map(|f| f.bytes).sum();
            eprintln!("wrote {} ({:?}, {:.1} MB)", out.display(), manifest.quantization, bytes as f64 / 1e6);
        }
        Command::Blend { a, b, weight, out, quant } => {
            let (first, second) = (folder::read(&a)?, folder::read(&b)?);
            let tensors = clipag::weights::blend::blend(&first, &second, weight)?;
            let description = folder::Description {
                name: format!("{} x {weight} {}", first.manifest.name, second.manifest.name),
                license: if first.manifest.license == second.manifest.license {
                    first.manifest.license.clone()
                } else {
                    format!("{} AND {}", first.manifest.license, second.manifest.license)
                },
                source: format!("(1 - {weight}) x {} + {weight} x {}", a.display(), b.display()),
                // Blends of one model's fine-tunings paint as that model does.
                recommended: first.manifest.recommended.clone(),
            };
            folder::write(&out, &first.manifest.config, &tensors, quant, &first.tokenizer, description)?;
            eprintln!("wrote {}", out.display());
        }
        Command::RandomCheckpoint { arch, seed, out } => {
            let config = match arch.as_str() {
                "vit-b-32" => clipag::model::ClipConfig::vit_b_32(),
                "rn50" => clipag::model::ClipConfig::rn50(),
                path => {
                    let text = std::fs::read_to_string(path).map_err(|e| Error::Invalid(format!("{path}: {e}")))?;
                    clipag::model::ClipConfig::from_open_clip_json(&text)?
                }
            };
            let tensors = clipag::weights::random::RandomWeights::tensors(&config, seed)?;
            let file = std::fs::File::create(&out).map_err(|e| Error::Invalid(format!("{}: {e}", out.display())))?;
            clipag::weights::torch::write_clipag_layout(std::io::BufWriter::new(file), &tensors, "random")?;
        }
        Command::Tokenize { model, texts } => {
            let files = folder::read(&model)?;
            let tokenizer = clipag::tokenizer::Tokenizer::from_json(&files.tokenizer, files.manifest.config.text.context_length)?;
            for text in texts {
                let tokens = tokenizer.encode(&text)?;
                for note in tokenizer.notes(&tokens) {
                    eprintln!("note: {note}");
                }
                println!("{}", json(&tokens.ids));
            }
        }
        Command::Embed { model, text, image } => {
            let model = load(&model).await?;
            let embedding = match (text, image) {
                (Some(text), _) => {
                    note_reading(&model, &text)?;
                    model.embed_text(&text).await?
                }
                (None, Some(path)) => model.embed_image(&read_image(&path, model.image_size())?).await?,
                (None, None) => unreachable!("clap requires --text or --image"),
            };
            println!("{}", json(&embedding));
        }
        Command::Grad { model, image, text, out } => {
            let model = load(&model).await?;
            note_reading(&model, &text)?;
            let pixels = read_image(&image, model.image_size())?;
            let result = model.pixel_gradient(&pixels, &text).await?;
            let file = result.to_safetensors()?;
            write_file(&out, &file)?;
            println!("{}", json(&serde_json::json!({ "cosine": result.cosine })));
        }
    }
    Ok(())
}
