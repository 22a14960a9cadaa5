//! A checkpoint's bytes: the safetensors header, gnn-soup's metadata, every tensor's checks.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gnn_soup::checkpoint::load_bytes(std::path::Path::new("fuzz.safetensors"), data);
});
