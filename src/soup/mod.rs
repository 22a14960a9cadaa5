//! Souping strategies: uniform, greedy, GIS, LS, PLS and the ensemble reference point, as
//! `docs/method.md` states them: the paper's reference code, except where
//! `docs/method.md#departures-from-the-reference` says otherwise. Each strategy is a function of a
//! [`SoupContext`] that reports [`Progress`] and returns a [`SoupOutcome`]; the engine does the
//! rest (timing, memory, evaluation, saving). This module only dispatches: the types live in its
//! files, which never import it back.

pub mod baselines;
pub mod context;
pub mod learned;
pub mod partition;
pub mod progress;
pub mod settings;
pub mod stack;
pub mod state;

use anyhow::Result;

pub use context::{global_weights, SoupContext, SoupOutcome};
pub use progress::{CandidateRecord, EpochRecord, HoldoutResult, LogLevel, Progress};
pub use settings::{
    Given, InitKind, OptimizerKind, PaperRow, Setting, SettingError, SettingKind, SoupSettings,
    Strategy, Value, PAPER, SETTINGS,
};
pub use stack::{IngredientStack, MixGranularity};
pub use state::FitState;

/// Runs one strategy.
pub fn run_strategy(ctx: &SoupContext) -> Result<SoupOutcome> {
    ctx.settings.validate()?;
    match ctx.settings.strategy {
        Strategy::Uniform => baselines::uniform(ctx),
        Strategy::Greedy => baselines::greedy(ctx),
        Strategy::Gis => baselines::gis(ctx),
        Strategy::Ensemble => baselines::ensemble(ctx),
        Strategy::Ls | Strategy::Pls => learned::learned(ctx),
    }
}
