//! A `.pt` checkpoint (zip, its pickle, its storages) read as a state dict from any bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = clipag::weights::torch::read_state_dict(std::io::Cursor::new(data));
});
