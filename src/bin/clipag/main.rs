//! The native command line: a thin shell over the library. Results go to stdout (JSON where
//! they are data), notes and errors to stderr, and failures exit non-zero.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod given;

use clap::{Parser, Subcommand};
use given::Given;
use clipag::engine::Model;
use clipag::generate::{Generator, Settings};
use clipag::shapes::{eval, train};
use clipag::pixels::Pixels;
use clipag::weights::{ModelFiles, convert, folder, quant::Quantization};
use clipag::{Error, Result, check, device};

#[derive(Parser)]
#[command(name = "clipag", version, about = "Generator-free text-to-image through a robust CLIP")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ModelArgs {
    /// A model folder (manifest.json, weights.safetensors, tokenizer.json); without one, the
    /// built-in Shapes (robust) model, which this binary carries.
    #[arg(long)]
    model: Option<PathBuf>,
    /// `gpu` (wgpu: Vulkan, Metal or DX12), `cpu` (burn-flex), or `auto`: the GPU if there
    /// is one, else the CPU.
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

/// How the robust twin's adversarial pictures are made, for `shapes train` and `shapes attack`.
#[derive(clap::Args)]
struct AttackArgs {
    /// Budget of the robust twin's adversarial images: for `fgsm`, `n-fgsm` and `pgd` the
    /// L-infinity radius in steps of 1/255 (8 is 8/255), for `l2` the L2 radius of the
    /// whole image's change on pixel values 0 to 1 (default: the shipped twin's 16/255).
    #[arg(long, default_value_t = 16.0)]
    epsilon: f32,
    /// How the adversarial images are made: `fgsm` (with a random start), `n-fgsm`, `l2`
    /// or `pgd`.
    #[arg(long, default_value = "n-fgsm")]
    attack: train::Attack,
    /// PGD's steps per adversarial picture, of 2.5 epsilon / steps each (default 3).
    #[arg(long)]
    attack_steps: Option<usize>,
    /// N-FGSM's random start, in multiples of epsilon (default: the shipped twin's 4; the
    /// paper's is 2).
    #[arg(long)]
    noise: Option<f32>,
}

impl AttackArgs {
    /// The plan with this attack, each value checked against the attack it belongs to.
    fn apply(self, plan: train::Plan) -> Result<train::Plan> {
        let attack = self.attack;
        Ok(train::Plan {
            epsilon: Some(attack.budget(self.epsilon)?),
            attack,
            attack_steps: attack.steps(self.attack_steps)?,
            noise: attack.noise(self.noise)?,
            ..plan
        })
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Backend {
    Auto,
    Gpu,
    Cpu,
}

#[derive(Subcommand)]
enum Command {
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
    /// Paint a picture from text: gradient ascent on the canvas through the model (CLIPAG).
    Generate {
        #[command(flatten)]
        model: ModelArgs,
        /// The generation's settings; where one is not given, the model's recommendation
        /// stands, else the paper's value shown.
        #[command(flatten)]
        settings: Given,
        /// Start from this picture instead of noise.
        #[arg(long)]
        init: Option<PathBuf>,
        /// Write a numbered PNG of every snapshot (`--snapshot-every`) here, and animation.gif of them.
        #[arg(long)]
        frames: Option<PathBuf>,
        /// Print every step's report as a line of JSON on stdout, before the summary.
        #[arg(long)]
        trace: bool,
        /// The picture: the canvas with the lowest global loss seen, as in the paper.
        #[arg(long)]
        out: PathBuf,
    },
    /// Time the generation step (views, augmentations, forward, input-gradient backward,
    /// update) on random weights, and print steps/s and views/s per backend and view count.
    Bench {
        /// `vit-b-32` (the CLIPAG model's size), `rn50` (open_clip's RN50), `shapes` (the Shapes
        /// ViT's, the built-in model's) or `shapes-rn` (the convolutional Shapes twins').
        #[arg(long, default_value = "vit-b-32")]
        arch: String,
        /// Views per step (half global, half patch), comma-separated.
        #[arg(long, default_value = "8,64", value_delimiter = ',')]
        views: Vec<usize>,
        /// `gpu`, `cpu`, or `all` (each backend this binary has).
        #[arg(long, default_value = "all")]
        backend: String,
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
    },
    /// The Shapes world and its models: render, train, evaluate.
    #[command(subcommand)]
    Shapes(ShapesCommand),
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

#[derive(Subcommand)]
enum ShapesCommand {
    /// Write sample pictures of the world with their captions (captions.txt).
    Render {
        #[arg(long, default_value_t = 16)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Draw only held-out combinations (the evaluation's).
        #[arg(long)]
        held_out: bool,
        #[arg(long)]
        out: PathBuf,
    },
    /// Train both twins (clean pre-training, then plain and adversarial fine-tuning), writing
    /// q8 model folders OUT/shapes-plain and OUT/shapes-robust. Resumes from CHECKPOINTS.
    /// The defaults are the shipped twins' recipe.
    Train {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        checkpoints: PathBuf,
        #[arg(long, default_value_t = train::Plan::default().seed)]
        seed: u64,
        #[arg(long, default_value_t = train::Plan::default().batch)]
        batch: usize,
        #[arg(long, default_value_t = train::Plan::default().learning_rate)]
        lr: f64,
        #[arg(long, default_value_t = train::Plan::default().pretrain_steps)]
        pretrain_steps: usize,
        #[arg(long, default_value_t = train::Plan::default().finetune_steps)]
        finetune_steps: usize,
        #[command(flatten)]
        attack: AttackArgs,
        /// Share of each adversarial batch left clean, 0 to below 1 (default 0: all adversarial).
        #[arg(long)]
        clean_share: Option<f32>,
        /// Batches of minimal pairs: each scene beside a copy with one shape, size or place
        /// changed, both captions saying it (default: independent scenes).
        #[arg(long)]
        minimal_pairs: bool,
        /// Draw each colour as a random shade of its name, up to this many 1/255 off in each
        /// channel and never nearer another name (default 0: the named colours exactly).
        #[arg(long, default_value_t = 0)]
        shades: u8,
        /// What the robust twin's adversarial steps minimise: `tecoa` (the contrastive loss
        /// against the captions, CLIPAG's) or `fare` (the embeddings of the pre-trained model).
        #[arg(long, default_value = "tecoa")]
        objective: train::Objective,
        /// Vision blocks added on top of the pre-trained image tower when a twin starts from
        /// the pre-training, each starting as the identity (default 0).
        #[arg(long, default_value_t = 0)]
        deeper_vision: usize,
        /// The vision MLPs' hidden width when a twin starts from the pre-training, the new
        /// hidden units adding nothing at first (default 0: the pre-training's width).
        #[arg(long, default_value_t = 0)]
        wider_vision_mlp: usize,
        /// The image tower's residual-stream width for pre-training from scratch, a multiple
        /// of 32 (heads 32 wide, MLPs four times as wide; default 0: the shipped 128).
        #[arg(long, default_value_t = 0)]
        vision_width: usize,
        /// Pre-train open_clip's ModifiedResNet as the image tower instead of the ViT, with
        /// these four stage depths (e.g. 1,1,1,1), --resnet-width and --image-size.
        #[arg(long, value_delimiter = ',')]
        resnet: Option<Vec<usize>>,
        /// The ResNet's width (its stem's channels; the attention pool is 32 times as wide,
        /// in heads 64 wide, open_clip's default).
        #[arg(long, default_value_t = 16)]
        resnet_width: usize,
        /// The ResNet's image size, a multiple of 32 (the world is drawn at it).
        #[arg(long, default_value_t = 96)]
        image_size: usize,
        /// Factor on the pre-trained patch embedding and the patches' positional embeddings
        /// when a twin starts from the pre-training; the tower computes the same (ln_pre
        /// normalises each token), but they then learn 1/factor times faster (default 1).
        #[arg(long, default_value_t = train::Plan::default().patch_scale)]
        patch_scale: f32,
        /// When a twin starts from the pre-training, each patch filter keeps only its lowest
        /// N x N spatial frequencies (a DCT low-pass; flat patches read as before; default 0:
        /// all).
        #[arg(long, default_value_t = train::Plan::default().patch_low_pass)]
        patch_low_pass: usize,
        /// Further factor on the patches' positional embeddings alone when a twin starts from
        /// the pre-training, so that a place outweighs more of the attack's noise (default 1).
        #[arg(long, default_value_t = train::Plan::default().position_scale)]
        position_scale: f32,
        /// Steps after the fine-tuning that train the text tower alone on clean pictures, the
        /// image tower fixed (default 0).
        #[arg(long, default_value_t = 0)]
        align_steps: usize,
        /// Captions of each adversarial batch that also get a picture the twin paints for them
        /// itself, as a negative: the loss asks their right pictures to score above their
        /// paintings (default 0: none).
        #[arg(long, default_value_t = train::Plan::default().painted_negatives)]
        painted_negatives: usize,
        /// Steps that paint each of those negatives from noise: signed ascent steps, or the
        /// evaluation's own steps with `--painting-views`.
        #[arg(long, default_value_t = train::Plan::default().painting_steps)]
        painting_steps: usize,
        /// Paint the negatives as `shapes eval` paints (its views, AdamW, smoothness and
        /// thresholding) rather than by signed steps without views; sixteen times the passes.
        #[arg(long)]
        painting_views: bool,
        /// Which twins to train: `both`, `plain` or `robust`.
        #[arg(long, default_value = "both")]
        twins: train::Twins,
        #[arg(long, default_value_t = 250)]
        checkpoint_every: usize,
        /// Where to train: `cpu` (burn-flex, the shipped twins), `gpu` (wgpu) or `auto`.
        #[arg(long, default_value = "cpu")]
        backend: Backend,
    },
    /// Write training batches as `train` draws them (pictures, captions' token ids, which
    /// caption fits which picture) to stdout, for a trainer outside this program
    /// (tools/shapes_torch.py); docs/formats.md describes the stream.
    Batches {
        #[arg(long, default_value_t = train::Plan::default().seed)]
        seed: u64,
        #[arg(long, default_value_t = train::Plan::default().batch)]
        batch: usize,
        /// Side of the pictures in pixels (the model's image size).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// The first step written.
        #[arg(long, default_value_t = 0)]
        from: usize,
        /// The step after the last one written.
        #[arg(long)]
        to: usize,
        #[arg(long, default_value_t = 0)]
        shades: u8,
        #[arg(long)]
        minimal_pairs: bool,
        /// Steps drawn at once, each on its own thread.
        #[arg(long, default_value_t = 4)]
        threads: usize,
    },
    /// Attack a model (`--attack`, `--epsilon`, `--attack-steps`, `--noise` as in `train`)
    /// on a batch of fresh scenes and print the image-to-caption loss, clean and attacked,
    /// as JSON: how robust it is, and whether a single step finds what PGD does.
    Attack {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        attack: AttackArgs,
        #[arg(long, default_value_t = train::Plan::default().batch)]
        batch: usize,
        /// Seed of the scenes and the attacks' starts.
        #[arg(long, default_value_t = 1_000_003)]
        seed: u64,
    },
    /// Read an evaluation's paintings (its paintings/ folder) again with the judge, without
    /// painting them again: writes judged.md (the table) and judged.csv.
    Judge {
        /// The folder `shapes eval --out` wrote.
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Evaluate the twins and write the report's tables (markdown) and image grid (PNG).
    Eval {
        #[arg(long)]
        plain: PathBuf,
        #[arg(long)]
        robust: PathBuf,
        #[arg(long, default_value_t = 100)]
        prompts: usize,
        #[arg(long, default_value_t = 2)]
        seeds: u64,
        /// The first seed (seeds run from it): splits an evaluation between processes.
        #[arg(long, default_value_t = 0)]
        first_seed: u64,
        /// The paintings' settings: where one is not given, the evaluation's own
        /// (`eval::evaluation_settings`: fewer views, a faster rate, a quieter start, no colour
        /// jitter, some smoothness), not the paper's value shown. `--size` is the canvas
        /// painted (the views resample it to the model's resolution, and the judge reads the
        /// picture resized to it).
        #[command(flatten)]
        settings: Given,
        /// Start each painting from the prompt's clean render: not a way to paint, a check of
        /// whether the recipe keeps a picture its model already scores high.
        #[arg(long)]
        from_clean: bool,
        #[arg(long, default_value = "cpu")]
        backend: Backend,
        /// Where to write tables.md, grid.png, pictures.csv and paintings/ (every painting).
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match pollster::block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clipag: {error}");
            ExitCode::FAILURE
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

async fn run(command: Command) -> Result<()> {
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
        Command::Generate { model, settings: Given(given), init, frames, trace, out } => {
            // Settings are checked before the model loads, so a mistake costs nothing.
            Settings::default().patched(&given)?.validate()?;
            let start = init.as_deref().map(read_pixels).transpose()?;
            let model = std::rc::Rc::new(load(&model).await?);
            let mut settings = Settings::default();
            if let Some(recommended) = &model.manifest.recommended {
                settings = settings.patched(recommended)?;
            }
            let mut settings = settings.patched(&given)?;
            settings.canvas.start = start;
            settings.validate()?;
            for prompt in settings.objective.prompt.iter().chain(&settings.objective.negative) {
                note_reading(&model, &prompt.text)?;
            }
            if let Some(dir) = &frames {
                create_dir(dir)?;
            }
            generate(model, settings, frames.as_deref(), trace, &out).await?;
        }
        Command::Shapes(command) => shapes(command).await?,
        Command::Bench { arch, views, backend, warmup, steps } => bench(&arch, &views, &backend, warmup, steps).await?,
        Command::Grad { model, image, text, out } => {
            let model = load(&model).await?;
            note_reading(&model, &text)?;
            let pixels = read_image(&image, model.image_size())?;
            let result = model.pixel_gradient(&pixels, &text).await?;
            let size = model.image_size();
            let bytes: Vec<u8> = result.grad.iter().flat_map(|v| v.to_le_bytes()).collect();
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3, size, size], &bytes)
                .map_err(|e| Error::Invalid(format!("{e}")))?;
            let metadata = [("cosine".to_string(), result.cosine.to_string())].into_iter().collect();
            let file = safetensors::serialize([("grad", view)], Some(metadata))
                .map_err(|e| Error::Invalid(format!("{e}")))?;
            write_file(&out, &file)?;
            println!("{}", json(&serde_json::json!({ "cosine": result.cosine })));
        }
    }
    Ok(())
}

/// Medians over timed steps after a warm-up; one JSON line per (backend, views) on stdout.
async fn bench(arch: &str, views: &[usize], backend: &str, warmup: usize, steps: usize) -> Result<()> {
    let (config, tokenizer) = match arch {
        "vit-b-32" => (clipag::model::ClipConfig::vit_b_32(), clipag::tokenizer::vocab::clip_tokenizer_json()?),
        "rn50" => (clipag::model::ClipConfig::rn50(), clipag::tokenizer::vocab::clip_tokenizer_json()?),
        "shapes" => (train::config(), train::tokenizer_json()?),
        "shapes-rn" => {
            // The convolutional twins' architecture, read off their shipped manifest.
            macro_rules! file {
                ($name:literal) => {
                    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/shapes-rn-robust/", $name))
                };
            }
            let manifest = std::str::from_utf8(file!("manifest.json")).expect("the shipped manifest is UTF-8");
            (clipag::weights::Manifest::parse(manifest)?.config, file!("tokenizer.json").to_vec())
        }
        other => return Err(Error::Invalid(format!("unknown architecture '{other}': use vit-b-32, rn50, shapes or shapes-rn"))),
    };
    let kinds = match backend {
        "all" => vec![device::BackendKind::Gpu, device::BackendKind::Cpu],
        one => vec![one.parse()?],
    };
    for kind in kinds {
        let compute = match device::open(kind).await {
            Ok(compute) => compute,
            Err(error) => {
                eprintln!("{kind:?}: skipped ({error})");
                continue;
            }
        };
        let model = std::rc::Rc::new(Model::random(&config, &tokenizer, &compute.device, 1)?);
        for &count in views {
            let figures = clipag::bench::measure(&model, count, warmup, steps).await?;
            let mut line = serde_json::to_value(&figures).map_err(|e| Error::Invalid(e.to_string()))?;
            line["arch"] = arch.into();
            line["backend"] = format!("{kind:?}").to_lowercase().into();
            line["adapter"] = compute.info.adapter.clone().into();
            println!("{line}");
        }
    }
    Ok(())
}

async fn shapes(command: ShapesCommand) -> Result<()> {
    use clipag::shapes::world::Scene;
    match command {
        ShapesCommand::Render { count, seed, held_out, out } => {
            create_dir(&out)?;
            let mut rng = clipag::rng::Rng::new(seed);
            let mut captions = String::new();
            for i in 0..count {
                let scene = Scene::random(&mut rng, held_out);
                write_file(&out.join(format!("{i:03}.png")), &scene.render(64).to_png()?)?;
                captions += &format!("{i:03}.png\t{}\n", scene.caption());
            }
            write_file(&out.join("captions.txt"), captions.as_bytes())?;
        }
        ShapesCommand::Train { out, checkpoints, seed, batch, lr, pretrain_steps, finetune_steps, attack, clean_share, minimal_pairs, shades, objective, deeper_vision, wider_vision_mlp, vision_width, resnet, resnet_width, image_size, patch_scale, patch_low_pass, position_scale, align_steps, painted_negatives, painting_steps, painting_views, twins, checkpoint_every, backend } => {
            let resnet = resnet.map(|layers| clipag::model::ResNetConfig { image_size, layers, width: resnet_width, heads: resnet_width * 32 / 64 });
            let mut plan = attack.apply(train::Plan {
                seed,
                batch,
                learning_rate: lr,
                pretrain_steps,
                finetune_steps,
                clean_share: train::clean_share(clean_share)?,
                minimal_pairs,
                shades,
                objective,
                deeper_vision,
                wider_vision_mlp,
                vision_width,
                resnet,
                patch_scale,
                patch_low_pass,
                position_scale,
                align_steps,
                painted_negatives,
                painting_steps,
                painting_views,
                temperature: 0.07,
                ..train::Plan::default()
            })?;
            plan.check_painting()?;
            // Opened once every option is known good.
            plan.device = open(backend).await?.device;
            train::twins(&plan, twins, &out, &checkpoints, checkpoint_every)?;
        }
        ShapesCommand::Batches { seed, batch, size, from, to, shades, minimal_pairs, threads } => {
            let stream = clipag::shapes::batches::Stream {
                plan: train::Plan { seed, batch, shades, minimal_pairs, ..train::Plan::default() },
                size,
                from,
                to,
            };
            let tokenizer = clipag::tokenizer::Tokenizer::from_json(&train::tokenizer_json()?, train::config().text.context_length)?;
            stream.write(&tokenizer, threads, &mut std::io::BufWriter::new(std::io::stdout().lock()))?;
        }
        ShapesCommand::Attack { model, attack, batch, seed } => {
            let plan = attack.apply(train::Plan::default())?;
            let description = plan.attack.describe(plan.epsilon.unwrap_or_default(), plan.noise, plan.attack_steps);
            let (clean, attacked) = train::Trainer::probe(plan, &model)?.attacked_loss(batch, seed)?;
            let line = serde_json::json!({ "model": model, "attack": description, "scenes": batch, "clean_loss": clean, "attacked_loss": attacked });
            println!("{line}");
        }
        ShapesCommand::Judge { from, out } => {
            let folder = from.join("paintings");
            let entries = std::fs::read_dir(&folder).map_err(|e| Error::Invalid(format!("{}: {e}", folder.display())))?;
            let mut paintings = Vec::new();
            for entry in entries {
                let path = entry.map_err(|e| Error::Invalid(format!("{}: {e}", folder.display())))?.path();
                let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or_default();
                let (prompt, seed, model) = eval::parse_painting_name(name).ok_or_else(|| Error::Invalid(format!("{}: not a painting `shapes eval` wrote", path.display())))?;
                paintings.push((prompt, seed, model, read_pixels(&path)?));
            }
            paintings.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
            let (table, csv) = eval::rejudge(&paintings);
            create_dir(&out)?;
            write_file(&out.join("judged.md"), table.as_bytes())?;
            write_file(&out.join("judged.csv"), csv.as_bytes())?;
            println!("{} paintings\n\n{table}", paintings.len());
        }
        ShapesCommand::Eval { plain, robust, prompts, seeds, first_seed, settings: Given(given), from_clean, backend, out } => {
            let recipe = eval::Recipe { from_clean, ..eval::Recipe::default() }.patched(&given)?;
            eval::settings("a prompt", 0, &recipe).validate()?; // before the models load
            let plain = std::rc::Rc::new(load(&ModelArgs { model: Some(plain), backend }).await?);
            let robust = std::rc::Rc::new(load(&ModelArgs { model: Some(robust), backend }).await?);
            let options = eval::Options { prompts, seeds, first_seed, recipe, judge_scenes: 500, grid_rows: 12 };
            let report = eval::report(plain, robust, &options).await?;
            create_dir(&out)?;
            write_file(&out.join("tables.md"), report.tables.as_bytes())?;
            write_file(&out.join("grid.png"), &report.grid.to_png()?)?;
            write_file(&out.join("pictures.csv"), report.pictures_csv.as_bytes())?;
            let folder = out.join("paintings");
            create_dir(&folder)?;
            for (name, picture) in &report.paintings {
                write_file(&folder.join(format!("{name}.png")), &picture.to_png()?)?;
            }
            println!("{}", report.tables);
        }
    }
    Ok(())
}

/// The built-in model (models/shapes-robust, the first of models/index.json), compiled in
/// so that the binary works anywhere.
fn builtin_model() -> Result<ModelFiles> {
    macro_rules! file {
        ($name:literal) => {
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/shapes-robust/", $name))
        };
    }
    let manifest = std::str::from_utf8(file!("manifest.json")).expect("the built-in manifest is UTF-8");
    ModelFiles::new(manifest, file!("weights.safetensors").to_vec(), file!("tokenizer.json").to_vec())
}

async fn load(args: &ModelArgs) -> Result<Model> {
    let files = match &args.model {
        Some(dir) => folder::read(dir)?,
        None => builtin_model()?,
    };
    Settings::check_recommendation(files.manifest.recommended.as_ref())?;
    Model::load(&files, &open(args.backend).await?.device)
}

async fn open(backend: Backend) -> Result<device::Compute> {
    match backend {
        Backend::Gpu => device::open(device::BackendKind::Gpu).await,
        Backend::Cpu => device::open(device::BackendKind::Cpu).await,
        Backend::Auto => match device::open(device::BackendKind::Gpu).await {
            Ok(compute) => Ok(compute),
            Err(error) => {
                eprintln!("note: {error}; using the CPU");
                device::open(device::BackendKind::Cpu).await
            }
        },
    }
}

/// Says on stderr what the model cannot read of a text: words it does not know, a tail past its context.
fn note_reading(model: &Model, text: &str) -> Result<()> {
    for note in model.tokenizer.notes(&model.tokenize(text)?) {
        eprintln!("note: {note}");
    }
    Ok(())
}

/// `TEXT` or `TEXT::WEIGHT`.
async fn generate(model: std::rc::Rc<Model>, settings: Settings, frames: Option<&Path>, trace: bool, out: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let mut generator = Generator::new(model, settings).await?;
    let mut snapshots = vec![generator.current().clone()];
    eprintln!("start: score {:.4}", generator.current_score());
    if trace {
        println!("{}", json(&serde_json::json!({ "step": 0, "score": generator.current_score() })));
    }
    let report = loop {
        let report = generator.step().await?;
        if trace {
            println!("{}", json(&report));
        }
        // A one-line progress bar on stderr, redrawn in place.
        let width = 30;
        let done = width * report.step / report.steps;
        let rate = report.step as f64 / started.elapsed().as_secs_f64();
        eprint!(
            "\r[{}{}] {}/{} score {:.4} best {:.4} ({rate:.2} steps/s) ",
            "=".repeat(done), " ".repeat(width - done), report.step, report.steps, report.score, report.best_score
        );
        if report.snapshot {
            snapshots.push(generator.current().clone());
        }
        if report.done {
            break report;
        }
    };
    eprintln!();
    write_file(out, &generator.best().to_png()?)?;
    if let Some(dir) = frames {
        let every = generator.settings().snapshot_every;
        for (i, frame) in snapshots.iter().enumerate() {
            write_file(&dir.join(format!("frame_{:04}.png", (i * every).min(report.steps))), &frame.to_png()?)?;
        }
        write_file(&dir.join("animation.gif"), &Pixels::gif(&snapshots, 200)?)?;
    }
    println!("{}", json(&serde_json::json!({
        "score": report.best_score, "best_step": report.best_step, "final_score": report.score,
        "steps": report.steps, "seconds": started.elapsed().as_secs_f64(),
    })));
    Ok(())
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// An image file's pixels; a file that is no image is named in the error.
fn read_pixels(path: &Path) -> Result<Pixels> {
    Pixels::decode(&read_bytes(path)?).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

fn read_image(path: &Path, size: usize) -> Result<Pixels> {
    let pixels = read_pixels(path)?;
    if pixels.height != size || pixels.width != size {
        eprintln!("note: the image is {}x{}; resized to the model's {size}x{size}", pixels.width, pixels.height);
    }
    Ok(pixels.resized(size))
}
