//! An `.npz` dataset: the zip, every `.npy` header and array, the graph built from them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gnn_soup::data::npz::parse_npy(data);
    let _ = gnn_soup::data::npz::load_from(std::io::Cursor::new(data), std::path::Path::new("fuzz.npz"), "fuzz", 0);
});
