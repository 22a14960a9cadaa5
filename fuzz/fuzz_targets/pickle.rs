//! The pickle reader behind Planetoid files and `torch.save` checkpoints.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = gnn_soup::data::pickle::parse(data) {
        let _ = gnn_soup::data::pickle::csr_matrix(&v);
        let _ = gnn_soup::data::pickle::ndarray(&v);
    }
});
