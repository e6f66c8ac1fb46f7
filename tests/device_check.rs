//! The device check computes what the hand-derived f64 reference says, on every backend.

use clipag::{check, device};

fn relative_error(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let diff: f64 = got.iter().zip(want).map(|(g, w)| (*g as f64 - w).powi(2)).sum();
    let norm: f64 = want.iter().map(|w| w * w).sum();
    (diff / norm).sqrt()
}

fn check_on(kind: device::BackendKind, tolerance: f64) {
    let compute = pollster::block_on(device::open(kind)).expect("device opens");
    let report = pollster::block_on(check::run(&compute.device, &compute.info)).expect("check runs");
    let (loss, grad) = check::reference();
    assert!((report.loss as f64 - loss).abs() / loss <= tolerance, "{} vs {loss}", report.loss);
    let error = relative_error(&report.grad, &grad);
    assert!(error <= tolerance, "gradient relative error {error} on {:?}", compute.info);
}

#[test]
fn cpu_gradient_matches_reference() {
    check_on(device::BackendKind::Cpu, 1e-5);
}

/// Runs on lavapipe here (build.sh installs it); a machine with no Vulkan driver fails this
/// test rather than skipping it.
#[test]
fn gpu_gradient_matches_reference() {
    check_on(device::BackendKind::Gpu, 1e-4);
}

#[test]
fn unknown_backend_is_a_clear_error() {
    let error = "tpu".parse::<device::BackendKind>().unwrap_err();
    assert!(error.to_string().contains("unknown backend 'tpu'"), "{error}");
}
