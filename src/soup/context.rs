//! What a strategy sees while it runs, and what it hands back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use tch::Tensor;

use super::progress::{CandidateRecord, EpochRecord, HoldoutResult, LogLevel, Progress};
use super::settings::SoupSettings;
use super::stack::IngredientStack;
use crate::data::Graph;
use crate::model::{GraphTensors, ParamMap};

pub struct SoupContext<'a> {
    pub stack: &'a IngredientStack,
    pub graph: &'a Graph,
    pub gt: &'a GraphTensors,
    pub settings: &'a SoupSettings,
    pub progress: &'a dyn Fn(Progress),
    pub cancel: &'a AtomicBool,
    /// Ingredients' validation accuracies (already measured by the engine).
    pub ingredient_val: &'a [f64],
    /// LS/PLS: continue from this saved state (`soup --resume`).
    pub resume: Option<&'a super::state::FitState>,
    /// LS/PLS: where the fit's state goes every few seconds and when it is stopped.
    pub save_state: Option<&'a dyn Fn(&super::state::FitState)>,
}

impl SoupContext<'_> {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
    pub fn report(&self, p: Progress) {
        (self.progress)(p);
    }
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.report(Progress::Log { level, message: message.into() });
    }

    /// For tests of interruption, which must not depend on the machine's speed: with
    /// `GNN_SOUP_TEST_HOLD_AT_STEP=S`, a strategy reaching step S (an LS/PLS epoch, a GIS
    /// interpolation point of its first candidate) says so in its log and waits there until it
    /// is cancelled (a signal, the workbench's cancel), so that a test stops it at a known step.
    /// With `GNN_SOUP_TEST_HOLD_UNTIL_SIGNALS=N` too, it stays there until N signals arrived,
    /// logging each, so that a test sends the next one only once the last was handled.
    pub fn hold_for_tests(&self, step: usize) {
        static HOLD_AT: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
        let hold_at = *HOLD_AT.get_or_init(|| {
            std::env::var("GNN_SOUP_TEST_HOLD_AT_STEP").ok().and_then(|v| v.parse().ok())
        });
        if hold_at != Some(step) {
            return;
        }
        self.log(
            LogLevel::Info,
            format!("holding at step {step} until cancelled (GNN_SOUP_TEST_HOLD_AT_STEP)"),
        );
        while !self.cancelled() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let signals: usize = std::env::var("GNN_SOUP_TEST_HOLD_UNTIL_SIGNALS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut told = 0;
        while crate::signals::count() < signals {
            if crate::signals::count() > told {
                told = crate::signals::count();
                self.log(LogLevel::Info, format!("held after signal {told}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// What a strategy hands back.
#[derive(Default)]
pub struct SoupOutcome {
    /// The souped weights (None for the ensemble).
    pub params: Option<ParamMap>,
    /// Logits to score instead of a soup (the ensemble).
    pub logits: Option<Tensor>,
    /// Final mixing weights per tensor name.
    pub weights: BTreeMap<String, Vec<f64>>,
    pub history: Vec<EpochRecord>,
    pub candidates: Vec<CandidateRecord>,
    pub holdout: Option<HoldoutResult>,
    pub partial: bool,
    /// How the strategy decided what the report should say (e.g. its tie rule).
    pub notes: Vec<String>,
}

/// Per-tensor weights for a strategy that uses one weight per ingredient everywhere.
pub fn global_weights(stack: &IngredientStack, w: &[f64]) -> BTreeMap<String, Vec<f64>> {
    stack.names.iter().map(|n| (n.clone(), w.to_vec())).collect()
}
