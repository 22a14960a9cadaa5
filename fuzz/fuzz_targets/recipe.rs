//! A TOML recipe (`soup --recipe`): parsed, then layered into every strategy's settings and
//! validated, as `soup` and the workbench's form do.
#![no_main]
use std::path::Path;

use gnn_soup::model::Arch;
use gnn_soup::recipe::{resolve_settings, Recipe};
use gnn_soup::soup::Strategy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(recipe) = Recipe::from_toml(text, Path::new("/fuzz/recipes/r.toml")) else { return };
    for strategy in Strategy::ALL {
        for (arch, dataset) in [(Arch::Gcn, "cora"), (Arch::Sage, "ogbn-arxiv")] {
            if let Ok(s) = resolve_settings(Some(&recipe), strategy, arch, dataset, &[]) {
                assert!(s.validate().is_ok());
            }
        }
    }
});
