//! The robust twin's adversarial pictures: the attacks (FGSM, N-FGSM, L2, PGD), a batch
//! mixed with clean pictures, and how far an attack moves a model's loss.
use burn::tensor::{Tensor, TensorData};

use super::loss::{Goal, scalar};
use super::{Plan, Trainer};
use clipag::rng::Rng;
use clipag::{Error, Result};

/// How the robust twin's adversarial images are made; the single-step attacks cost one extra
/// forward and backward pass per training step, PGD one per attack step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Attack {
    /// FGSM with a random start (Wong, Rice and Kolter, "Fast is better than free", 2020):
    /// from a uniform point in the ball, one signed step of 1.25 epsilon, projected back.
    Fgsm,
    /// N-FGSM (de Jorge et al., "Make some noise", 2022): from uniform noise of twice epsilon,
    /// one signed step of epsilon, not projected; it avoids the catastrophic overfitting that
    /// FGSM suffers at budgets above about 8/255.
    #[value(name = "n-fgsm")]
    NoiseFgsm,
    /// FGSM with a random start under an L2 budget (the threat model of most work on
    /// perceptually aligned gradients, e.g. Santurkar et al. 2019): from a uniform radius in a
    /// random direction, one step of 1.25 epsilon along the normalised gradient, projected
    /// back into the ball. An L-infinity step moves every pixel alike, the L2 step puts its
    /// budget where the gradient is.
    L2,
    /// PGD (Madry et al., 2018; the attack TeCoA trains against): from a uniform point in
    /// the L-infinity ball, `attack_steps` signed steps of 2.5 epsilon / steps, each projected
    /// back. Several steps find the loss's maximum where a single step can be misled by a
    /// gradient that is steep only near the clean picture.
    Pgd,
}

impl Attack {
    /// The budget on pixel values 0 to 1, from the command line's: L-infinity radii are given
    /// in steps of 1/255, L2 radii as they are.
    pub fn budget(self, given: f32) -> Result<f32> {
        if !(given.is_finite() && given > 0.0) {
            return Err(Error::Invalid(format!("the adversarial budget (--epsilon) must be a positive number, not {given}")));
        }
        Ok(match self {
            Attack::Fgsm | Attack::NoiseFgsm | Attack::Pgd => given / 255.0,
            Attack::L2 => given,
        })
    }

    /// N-FGSM's random start from the command line's multiple of epsilon (None: the shipped
    /// twin's 4; the paper's default is 2). The other attacks start inside their ball, so a
    /// start given for them is refused rather than ignored.
    pub fn noise(self, given: Option<f32>) -> Result<f32> {
        match (self, given) {
            (_, None) => Ok(Plan::default().noise),
            (Attack::NoiseFgsm, Some(v)) if v.is_finite() && v >= 0.0 => Ok(v),
            (Attack::NoiseFgsm, Some(v)) => Err(Error::Invalid(format!(
                "N-FGSM's random start (--noise) must be zero or a positive multiple of epsilon, not {v}"
            ))),
            (_, Some(_)) => Err(Error::Invalid("--noise is N-FGSM's random start: use it with --attack n-fgsm".into())),
        }
    }

    /// PGD's steps from the command line's (None: `Plan::default().attack_steps`); the
    /// single-step attacks refuse them rather than ignore them.
    pub fn steps(self, given: Option<usize>) -> Result<usize> {
        match (self, given) {
            (_, None) => Ok(Plan::default().attack_steps),
            (Attack::Pgd, Some(steps)) if steps > 0 => Ok(steps),
            (Attack::Pgd, Some(steps)) => Err(Error::Invalid(format!("PGD needs at least one step (--attack-steps), not {steps}"))),
            (_, Some(_)) => Err(Error::Invalid("--attack-steps is PGD's: use it with --attack pgd".into())),
        }
    }

    pub fn describe(self, epsilon: f32, noise: f32, steps: usize) -> String {
        match self {
            Attack::Fgsm => format!("FGSM with random start, L-inf {epsilon:.4} = {:.1}/255", epsilon * 255.0),
            Attack::NoiseFgsm => format!("N-FGSM, L-inf {epsilon:.4} = {:.1}/255, start noise {noise} epsilon", epsilon * 255.0),
            Attack::L2 => format!("FGSM with random start, L2 {epsilon}"),
            Attack::Pgd => format!("PGD, {steps} steps, L-inf {epsilon:.4} = {:.1}/255", epsilon * 255.0),
        }
    }
}


impl Trainer {
    /// The batch's first images made adversarial, its last `clean_share` left clean (the
    /// attack runs on the adversarial ones only, against every caption of the batch).
    pub(super) fn mixed(&self, images: Tensor<4>, goal: &Goal, epsilon: f32, rng: &mut Rng) -> Result<Tensor<4>> {
        let count = images.dims()[0];
        let clean = ((count as f32 * self.plan.clean_share).round() as usize).min(count);
        if clean == 0 {
            return self.attack(images, goal, epsilon, rng);
        }
        if clean == count {
            return Ok(images);
        }
        let attacked = count - clean;
        let adversarial = self.attack(images.clone().narrow(0, 0, attacked), &goal.first(attacked), epsilon, rng)?;
        Ok(Tensor::cat(vec![adversarial, images.narrow(0, attacked, clean)], 0))
    }

    /// One gradient step that increases the goal's loss from a random start (see `Attack`),
    /// the result kept in [0, 1].
    pub(super) fn attack(&self, images: Tensor<4>, goal: &Goal, epsilon: f32, rng: &mut Rng) -> Result<Tensor<4>> {
        let dims = images.dims();
        let count = dims.iter().product::<usize>();
        let start = match self.plan.attack {
            Attack::Fgsm | Attack::Pgd => (0..count).map(|_| rng.range(-epsilon, epsilon)).collect(),
            Attack::NoiseFgsm => {
                let noise = self.plan.noise * epsilon;
                (0..count).map(|_| rng.range(-noise, noise)).collect()
            }
            Attack::L2 => {
                // A random direction per image, at a uniform fraction of the radius.
                let per_image = count / dims[0];
                let mut start: Vec<f32> = (0..count).map(|_| rng.normal()).collect();
                for image in start.chunks_mut(per_image) {
                    let norm = image.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    let radius = epsilon * rng.uniform();
                    image.iter_mut().for_each(|v| *v *= radius / norm);
                }
                start
            }
        };
        let mut delta = Tensor::<4>::from_data(TensorData::new(start, dims), &self.device);
        let steps = if self.plan.attack == Attack::Pgd { self.plan.attack_steps } else { 1 };
        for _ in 0..steps {
            let grad = self.input_gradient(images.clone(), delta.clone(), goal)?;
            delta = match self.plan.attack {
                Attack::Fgsm => (delta + grad.sign() * (1.25 * epsilon)).clamp(-epsilon, epsilon),
                Attack::NoiseFgsm => delta + grad.sign() * epsilon,
                Attack::L2 => {
                    let delta = delta + grad.clone() / image_norm(grad) * (1.25 * epsilon);
                    let scale = (image_norm(delta.clone()).recip() * epsilon).clamp_max(1.0);
                    delta * scale
                }
                Attack::Pgd => (delta + grad.sign() * (2.5 * epsilon / steps as f32)).clamp(-epsilon, epsilon),
            };
        }
        Ok((images + delta).clamp(0.0, 1.0).detach())
    }

    /// The gradient of the goal's loss at the pictures moved by `delta`, with respect to it.
    pub(super) fn input_gradient(&self, images: Tensor<4>, delta: Tensor<4>, goal: &Goal) -> Result<Tensor<4>> {
        let delta = delta.detach().require_grad();
        let adversarial = (images + delta.clone()).clamp(0.0, 1.0);
        let loss = goal.loss(self.model.encode_image(adversarial)?, self.plan.temperature);
        delta.grad(&loss.backward()).ok_or_else(|| Error::Internal("the attack produced no gradient".into()))
    }

    /// How much the plan's attack raises the image-to-caption loss (TeCoA's, which the
    /// robust twin trains on) of `count` fresh scenes drawn from `seed`: (clean, attacked),
    /// nothing updated. A single-step attack that finds much less than PGD's several steps
    /// on the same model is misled by the model's gradient at the clean picture.
    pub fn attacked_loss(&self, count: usize, seed: u64) -> Result<(f32, f32)> {
        let epsilon = self.plan.epsilon.ok_or_else(|| Error::Invalid("an attack needs a budget".into()))?;
        if count < 2 {
            // One scene's caption has no rival: its loss is zero, attacked or not.
            return Err(Error::Invalid(format!("an attack's batch (--batch) needs at least 2 scenes, not {count}")));
        }
        let mut rng = Rng::new(seed);
        let (images, sequences, targets) = self.batch(count, &mut rng)?;
        let goal = self.captions(&sequences, &targets)?;
        let clean = scalar(goal.loss(self.model.encode_image(images.clone())?, self.plan.temperature))?;
        let attacked = self.attack(images, &goal, epsilon, &mut rng)?;
        Ok((clean, scalar(goal.loss(self.model.encode_image(attacked)?, self.plan.temperature))?))
    }
}

/// Each image's L2 norm, `[n, 1, 1, 1]`.
pub(super) fn image_norm(x: Tensor<4>) -> Tensor<4> {
    x.square().sum_dim(1).sum_dim(2).sum_dim(3).sqrt().clamp_min(1e-12)
}
