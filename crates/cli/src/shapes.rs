//! The Shapes world and its models: render, train, batches, attack, judge, evaluate.

use std::path::PathBuf;

use clap::Subcommand;
use clipag_shapes::{eval, train};
use clipag::{Error, Result};

use crate::common::{Backend, ModelArgs, create_dir, load, open, read_pixels, write_file};
use crate::given::Given;

/// How the robust twin's adversarial pictures are made, for `shapes train` and `shapes attack`.
#[derive(clap::Args)]
pub struct AttackArgs {
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

#[derive(Subcommand)]
pub enum Command {
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

pub async fn run(command: Command) -> Result<()> {
    use clipag_shapes::world::Scene;
    match command {
        Command::Render { count, seed, held_out, out } => {
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
        Command::Train { out, checkpoints, seed, batch, lr, pretrain_steps, finetune_steps, attack, clean_share, minimal_pairs, shades, objective, deeper_vision, wider_vision_mlp, vision_width, resnet, resnet_width, image_size, patch_scale, patch_low_pass, position_scale, align_steps, painted_negatives, painting_steps, painting_views, twins, checkpoint_every, backend } => {
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
        Command::Batches { seed, batch, size, from, to, shades, minimal_pairs, threads } => {
            let stream = clipag_shapes::batches::Stream {
                plan: train::Plan { seed, batch, shades, minimal_pairs, ..train::Plan::default() },
                size,
                from,
                to,
            };
            let tokenizer = clipag::tokenizer::Tokenizer::from_json(&train::tokenizer_json()?, train::config().text.context_length)?;
            stream.write(&tokenizer, threads, &mut std::io::BufWriter::new(std::io::stdout().lock()))?;
        }
        Command::Attack { model, attack, batch, seed } => {
            let plan = attack.apply(train::Plan::default())?;
            let description = plan.attack.describe(plan.epsilon.unwrap_or_default(), plan.noise, plan.attack_steps);
            let (clean, attacked) = train::Trainer::probe(plan, &model)?.attacked_loss(batch, seed)?;
            let line = serde_json::json!({ "model": model, "attack": description, "scenes": batch, "clean_loss": clean, "attacked_loss": attacked });
            println!("{line}");
        }
        Command::Judge { from, out } => {
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
        Command::Eval { plain, robust, prompts, seeds, first_seed, settings: Given(given), from_clean, backend, out } => {
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