//! Embeddings on a training-capable (autodiff) device hold no memory once read: a forward
//! pass that no backward pass follows used to stay on burn's autodiff graph, about 250 KB a
//! text embedding, which took `clipag shapes eval` to 3.1 GB before it painted anything.
//! Alone in its own test binary, so no other test's allocations move the resident size.

use std::path::Path;

use clipag::engine::Model;
use clipag::pixels::Pixels;
use clipag::weights::folder;

/// Resident memory of this process, in kB (Linux).
fn resident_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS in kB")
}

#[test]
fn embeddings_on_the_autodiff_device_do_not_accumulate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shapes-robust");
    let files = folder::read(&dir).unwrap();
    let model = Model::load(&files, &burn::tensor::Device::flex().autodiff()).unwrap();
    let image = Pixels { height: 64, width: 64, data: vec![0.5; 3 * 64 * 64] };
    let embed = |i: usize| {
        let text = pollster::block_on(model.embed_text(&format!("a small red star {}", ["on the left", "at the top"][i % 2]))).unwrap();
        let picture = pollster::block_on(model.embed_image(&image)).unwrap();
        assert!(text.iter().chain(&picture).all(|v| v.is_finite()));
    };
    // Warm up allocator pools and caches first; then 1,000 more pairs must not grow the
    // process by anything like the 590 MB they held before.
    (0..200).for_each(embed);
    let before = resident_kb();
    (0..1000).for_each(embed);
    let grown = resident_kb().saturating_sub(before);
    eprintln!("1000 text + 1000 image embeddings: resident grew {grown} kB");
    assert!(grown < 50_000, "resident memory grew {grown} kB over 1000 text and image embeddings");
}
