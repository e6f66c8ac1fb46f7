//! The benchmark of one generation step, the unit of a visitor's wait: views, augmentations,
//! forward, input-gradient backward and the update, as the loop runs it. The same code times
//! it natively (`clipag bench`) and in the page (`Model.bench`, tools/bench-browser.mjs).

use std::rc::Rc;

use serde::Serialize;

use crate::Result;
use crate::engine::Model;
use crate::generate::{Generator, Settings};

/// Medians over the timed steps.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub views: usize,
    pub seconds_per_step: f64,
    pub steps_per_second: f64,
    pub views_per_second: f64,
    /// The part of a step spent waiting for the device to hand back the step's scores.
    pub waiting_for_device_seconds: f64,
}

/// Times `steps` generation steps of `views` views (half global, half patch) after `warmup`
/// untimed ones (which compile the kernels).
pub async fn measure(model: &Rc<Model>, views: usize, warmup: usize, steps: usize) -> Result<Figures> {
    let mut settings = Settings::paper("a photo of a cat", model.image_size());
    settings.view.views = views / 2;
    settings.view.patch_views = views - views / 2;
    settings.steps = warmup + steps.max(1);
    settings.canvas.candidates = 1;
    let mut generator = Generator::new(model.clone(), settings).await?;
    let (mut times, mut waits) = (Vec::new(), Vec::new());
    for i in 0..warmup + steps.max(1) {
        let started = crate::clock::seconds();
        let report = generator.step().await?;
        if i >= warmup {
            times.push(crate::clock::seconds() - started);
            waits.push(report.sync_seconds);
        }
    }
    let (step, wait) = (median(&mut times), median(&mut waits));
    Ok(Figures {
        views,
        seconds_per_step: step,
        steps_per_second: 1.0 / step,
        views_per_second: views as f64 / step,
        waiting_for_device_seconds: wait,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
