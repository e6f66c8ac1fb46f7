//! The whole recipe, one command: the shared pre-training, then the plain twin and the
//! robust twin from it, each written as a shipped q8 model folder.
use std::path::Path;

use super::{Objective, PROGRESS, Plan, Trainer, progress, run, vit};
use clipag::model::VisionConfig;
use clipag::weights::quant::Quantization;
use clipag::Result;


/// Which twins a run trains (both start from the shared pre-training).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Twins {
    Both,
    Plain,
    Robust,
}

/// The whole recipe, one command: clean pre-training, then from that checkpoint the plain
/// twin (more clean steps) and the robust twin (adversarial steps), each written as a q8
/// model folder under `out` (`shapes-plain`, `shapes-robust`). Every phase checkpoints
/// under `checkpoints` and a rerun resumes the phase it stopped in.
pub fn twins(plan: &Plan, which: Twins, out: &Path, checkpoints: &Path, checkpoint_every: usize) -> Result<()> {
    plan.check_painting()?;
    let pre_dir = checkpoints.join("pretrain");
    let done = |dir: &Path, step: usize| progress(dir).is_ok_and(|reached| reached >= step);
    let start = |dir: &Path, fallback: &Path, plan: Plan| -> Result<Trainer> {
        if dir.join(PROGRESS).is_file() {
            eprintln!("resuming from {}", dir.display());
            Trainer::resume(plan, dir)
        } else if fallback.join(PROGRESS).is_file() {
            Trainer::grown(plan, fallback)
        } else {
            Trainer::new(plan)
        }
    };
    let pre_plan = Plan { epsilon: None, ..plan.clone() };
    if !done(&pre_dir, plan.pretrain_steps) {
        eprintln!("pre-training: {} clean steps", plan.pretrain_steps);
        let mut trainer = start(&pre_dir, &pre_dir, pre_plan)?;
        run(&mut trainer, plan.pretrain_steps, 50, Some((&pre_dir, checkpoint_every)))?;
        trainer.save_checkpoint(&pre_dir)?;
    }
    let mut twins = vec![("shapes-plain", None), ("shapes-robust", plan.epsilon)];
    twins.retain(|(_, epsilon)| match which {
        Twins::Both => true,
        Twins::Plain => epsilon.is_none(),
        Twins::Robust => epsilon.is_some(),
    });
    for (name, epsilon) in twins {
        let dir = checkpoints.join(name);
        let twin = Plan { epsilon, ..plan.clone() };
        let mut trainer = start(&dir, &pre_dir, twin)?;
        if epsilon.is_some() && plan.objective == Objective::Fare {
            trainer.set_reference(&pre_dir)?;
        }
        let kind = match epsilon {
            Some(e) if plan.clean_share > 0.0 => {
                format!("adversarial ({}; {:.0}% of each batch clean)", plan.attack.describe(e, plan.noise, plan.attack_steps), plan.clean_share * 100.0)
            }
            Some(e) => format!("adversarial ({})", plan.attack.describe(e, plan.noise, plan.attack_steps)),
            None => "clean".to_string(),
        };
        // The manifest's source says how the batches were drawn, as it says the attack.
        let kind = if plan.minimal_pairs { format!("{kind} minimal-pair") } else { kind };
        let kind = if plan.shades > 0 { format!("{kind} (colours shaded up to {}/255)", plan.shades) } else { kind };
        let kind = if plan.deeper_vision > 0 { format!("{kind} ({} vision blocks added)", plan.deeper_vision) } else { kind };
        let kind = if plan.wider_vision_mlp > 0 { format!("{kind} (vision MLPs widened to {})", plan.wider_vision_mlp) } else { kind };
        let kind = match &trainer.config.vision {
            VisionConfig::Transformer(v) if v.width != vit().width => format!("{kind} (image tower {} wide)", v.width),
            VisionConfig::ResNet(r) => format!("{kind} (ModifiedResNet image tower, layers {:?}, width {}, {} px)", r.layers, r.width, r.image_size),
            VisionConfig::Transformer(_) => kind,
        };
        let kind = if plan.patch_scale != 1.0 { format!("{kind} (patch embedding scaled by {})", plan.patch_scale) } else { kind };
        let kind = if plan.position_scale != 1.0 { format!("{kind} (patch positions scaled by {})", plan.position_scale) } else { kind };
        let kind = if plan.patch_low_pass > 0 {
            format!("{kind} (patch filters cut to their lowest {0} x {0} frequencies)", plan.patch_low_pass)
        } else {
            kind
        };
        let kind = match (epsilon, plan.objective) {
            (Some(_), Objective::Fare) => format!("{kind} FARE (embeddings pulled to the pre-trained model's)"),
            _ => kind,
        };
        let kind = match (epsilon, plan.painted_negatives) {
            (Some(_), k) if k > 0 => {
                let how = if plan.painting_views { "steps of the evaluation's painting" } else { "ascent steps" };
                format!("{kind} (with {k} of its own paintings a batch as negatives, {} {how} each)", plan.painting_steps)
            }
            _ => kind,
        };
        eprintln!("{name}: {} {kind} steps", plan.finetune_steps);
        let total = trainer.total_steps();
        run(&mut trainer, total, 50, Some((&dir, checkpoint_every)))?;
        trainer.save_checkpoint(&dir)?;
        let aligned = match plan.align_steps {
            0 => String::new(),
            n => format!(", then {n} steps of the text tower alone on clean pictures"),
        };
        let source = format!(
            "trained by `clipag shapes train` from seed {}: {} clean contrastive steps, then {} {kind} steps{aligned}, batch {}",
            plan.seed, plan.pretrain_steps, plan.finetune_steps, plan.batch
        );
        let title = if epsilon.is_some() { "Shapes (robust)" } else { "Shapes (plain)" };
        trainer.save(&out.join(name), Quantization::Q8, title, source)?;
        eprintln!("wrote {}", out.join(name).display());
    }
    Ok(())
}
