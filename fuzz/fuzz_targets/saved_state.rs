//! A run directory's saved state as `soup --resume` reads it: `job.json` (through
//! `engine::job_from_saved`) and an LS/PLS fit's `state-<strategy>.json` (through
//! `FitState::parse`), checked against LS and PLS jobs with and without Adam and a holdout. A
//! state the checks accept must hold what `Fit::restore` builds tensors and durations from.
#![no_main]
use std::path::Path;

use gnn_soup::model::Arch;
use gnn_soup::soup::state::{Expected, FitState};
use gnn_soup::soup::{OptimizerKind, SoupSettings, Strategy};
use libfuzzer_sys::fuzz_target;

/// The seeds' settings (scripts/fuzz.sh): 2 ingredients, 50 epochs, patience 40, PLS 2 of 4 parts.
fn settings(strategy: Strategy, optimizer: OptimizerKind, holdout: f64) -> SoupSettings {
    let mut s = SoupSettings::defaults(strategy, Arch::Gcn, "csbm");
    s.epochs = 50;
    s.optimizer = optimizer;
    s.holdout = holdout;
    s.patience = 40;
    s.parts = 4;
    s.sample = 2;
    s
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(job) = gnn_soup::engine::job_from_saved(text, Path::new("/fuzz/run"), tch::Device::Cpu)
    {
        assert!(!job.ingredients.is_empty() && !job.strategies.is_empty());
        assert!(job.strategies.iter().all(|s| s.validate().is_ok()));
    }
    for strategy in [Strategy::Ls, Strategy::Pls] {
        for optimizer in [OptimizerKind::Auto, OptimizerKind::Sgd] {
            for holdout in [0.0, 0.2] {
                let settings = settings(strategy, optimizer, holdout);
                for groups in [None, Some(4)] {
                    let expected = Expected { settings: &settings, ingredients: 2, groups };
                    let Ok(s) = FitState::parse(text, &expected) else { continue };
                    let len = s.groups * s.ingredients;
                    assert_eq!(s.logits.len(), len);
                    assert!(s.next_epoch < settings.epochs);
                    assert!(s.history.len() <= s.next_epoch);
                    assert!(s.best.as_ref().is_none_or(|b| b.2.len() == len && b.1 < s.next_epoch));
                    assert!(s.adam.as_ref().is_none_or(|a| a.m.len() == 2
                        && a.m[0].len() == len
                        && a.v[0].len() == len));
                    let seconds = s.history.last().map_or(0.0, |r| r.seconds);
                    assert!(std::time::Duration::try_from_secs_f64(seconds).is_ok());
                }
            }
        }
    }
});
