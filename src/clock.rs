//! Seconds on a monotonic clock, natively and in a browser (where `std::time::Instant` is not
//! available), for the timings the engine reports.

#[cfg(not(target_family = "wasm"))]
pub fn seconds() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

#[cfg(target_family = "wasm")]
pub fn seconds() -> f64 {
    // Date.now is in every JavaScript realm (window and worker alike); milliseconds suffice.
    js_sys::Date::now() / 1000.0
}
