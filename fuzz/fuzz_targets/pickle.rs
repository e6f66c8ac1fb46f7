//! The pickle reader on any bytes: an error or a value, never a panic, a hang or a blow-up.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = clipag::weights::pickle::read(data);
});
