//! Painting: `generate` (a picture from text, with its progress on stderr) and `bench` (the
//! generation step timed).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use clipag::engine::Model;
use clipag::generate::{Generator, ImagePrompt, Parameterisation, Settings, weighted};
use clipag::pixels::Pixels;
use clipag_shapes::train;
use clipag::{Error, Result, device, explain};

use crate::common::{ModelArgs, create_dir, json, load, note_reading, read_pixels, write_file};
use crate::given::Given;

/// Painting, and timing it.
#[derive(Subcommand)]
pub enum Command {
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
        /// A picture to paint toward (`PNG` or `PNG::WEIGHT`, weight 1 where none is
        /// written), alone or beside text prompts; repeatable.
        #[arg(long = "image-prompt", value_name = "PNG[::W]")]
        image_prompts: Vec<String>,
        /// Write a numbered PNG of every snapshot (`--snapshot-every`) here, and animation.gif of them.
        #[arg(long)]
        frames: Option<PathBuf>,
        /// Print every step's report as a line of JSON on stdout, before the summary.
        #[arg(long)]
        trace: bool,
        /// The picture: the canvas with the lowest global loss seen, as in the paper.
        #[arg(long)]
        out: PathBuf,
        /// With `--param strokes`: the same picture as an SVG of its strokes.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Explain a picture: the model's zero-shot scores for captions (JSON on stdout, most
    /// probable first) and, per caption, where its score's pixel gradient falls.
    Explain {
        #[command(flatten)]
        model: ModelArgs,
        /// The picture (resized to the model's resolution).
        #[arg(long)]
        image: PathBuf,
        /// Captions to score (at least one, unless `--vocabulary`).
        #[arg(long = "caption", value_name = "TEXT", num_args = 1..)]
        captions: Vec<String>,
        /// Score the model's own words instead (a model with a closed vocabulary, such as the
        /// built-in Shapes models).
        #[arg(long, conflicts_with = "captions")]
        vocabulary: bool,
        /// Write the picture beside each caption's gradient map (white where the gradient is
        /// largest), in the order printed, as one PNG.
        #[arg(long)]
        saliency: Option<PathBuf>,
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
}

pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Generate { model, settings: Given(given), init, image_prompts, frames, trace, out, svg } => {
            // Settings are checked before the model loads, so a mistake costs nothing.
            let start = init.as_deref().map(read_pixels).transpose()?;
            let mut asked = Settings::default().patched(&given)?;
            asked.canvas.start = start.clone();
            asked.objective.image_prompts = image_prompts.iter().map(|given| image_prompt(given)).collect::<Result<_>>()?;
            asked.validate()?;
            if svg.is_some() && asked.canvas.param != Parameterisation::Strokes {
                return Err(Error::Invalid("--svg writes a strokes painting: add --param strokes".into()));
            }
            let model = std::rc::Rc::new(load(&model).await?);
            let mut settings = Settings::for_model(&model.manifest)?.patched(&given)?;
            settings.canvas.start = start;
            settings.objective.image_prompts = asked.objective.image_prompts;
            settings.validate()?;
            for prompt in settings.objective.prompt.iter().chain(&settings.objective.negative) {
                note_reading(&model, &prompt.text)?;
            }
            if let Some(dir) = &frames {
                create_dir(dir)?;
            }
            generate(model, settings, frames.as_deref(), trace, &out, svg.as_deref()).await?;
        }
        Command::Explain { model, image, captions, vocabulary, saliency } => {
            if captions.is_empty() && !vocabulary {
                return Err(Error::Invalid("give --caption TEXT (one or more), or --vocabulary".into()));
            }
            let picture = read_pixels(&image)?;
            let model = load(&model).await?;
            let captions = if vocabulary { explain::vocabulary(&model)? } else { captions };
            for caption in &captions {
                note_reading(&model, caption)?;
            }
            let readings = explain::explain(&model, &picture, &captions).await?;
            if let Some(path) = saliency {
                write_file(&path, &explain::saliency_strip(&picture, &readings, model.image_size())?.to_png()?)?;
            }
            println!("{}", json(&serde_json::json!({ "readings": readings })));
        }
        Command::Bench { arch, views, backend, warmup, steps } => bench(&arch, &views, &backend, warmup, steps).await?,
    }
    Ok(())
}

/// `PNG` or `PNG::WEIGHT`, read.
fn image_prompt(given: &str) -> Result<ImagePrompt> {
    let (path, weight) = weighted(given, "--image-prompt PNG::WEIGHT, e.g. 'cat.png::0.5'")?;
    Ok(ImagePrompt { picture: read_pixels(Path::new(path))?, weight: weight.unwrap_or(1.0) })
}

async fn generate(model: std::rc::Rc<Model>, settings: Settings, frames: Option<&Path>, trace: bool, out: &Path, svg: Option<&Path>) -> Result<()> {
    let started = std::time::Instant::now();
    let mut generator = Generator::new(model, settings).await?;
    // Kept only for --frames: a long run would otherwise hold every snapshot it passed.
    let mut snapshots = if frames.is_some() { vec![generator.current().clone()] } else { Vec::new() };
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
        if report.snapshot && frames.is_some() {
            snapshots.push(generator.current().clone());
        }
        if report.done {
            break report;
        }
    };
    eprintln!();
    write_file(out, &generator.best().to_png()?)?;
    if let (Some(path), Some(document)) = (svg, generator.best_svg().await?) {
        write_file(path, document.as_bytes())?;
    }
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
                    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/shapes-rn-robust/", $name))
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
