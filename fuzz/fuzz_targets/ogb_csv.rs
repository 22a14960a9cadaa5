//! OGB's CSV members (edges, features, labels, splits).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gnn_soup::data::ogb::parse_csv::<i64>(data, "fuzz.csv");
    let _ = gnn_soup::data::ogb::parse_csv::<f32>(data, "fuzz.csv");
});
