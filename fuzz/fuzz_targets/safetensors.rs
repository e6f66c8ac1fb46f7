//! A model's weights file: its safetensors table, then every tensor decoded (f32, f16, q8, q4
//! with their scales) as the model would ask for it.
#![no_main]

use clipag::model::WeightSource;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(mut weights) = clipag::weights::StoredWeights::parse(data) else { return };
    for name in weights.names() {
        let _ = weights.take(&name, &[]);
    }
});
