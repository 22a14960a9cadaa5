//! The strategies and the named choices of their settings (initialisation, optimiser, mixing
//! granularity), each with the one name flags, forms, recipes and reports use.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::soup::stack::MixGranularity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Uniform,
    Greedy,
    Gis,
    Ls,
    Pls,
    Ensemble,
}

impl Strategy {
    pub const ALL: [Strategy; 6] = [
        Strategy::Uniform,
        Strategy::Greedy,
        Strategy::Gis,
        Strategy::Ls,
        Strategy::Pls,
        Strategy::Ensemble,
    ];
    /// The learned strategies (one optimisation step per epoch).
    pub const LEARNED: [Strategy; 2] = [Strategy::Ls, Strategy::Pls];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Uniform => "uniform",
            Strategy::Greedy => "greedy",
            Strategy::Gis => "gis",
            Strategy::Ls => "ls",
            Strategy::Pls => "pls",
            Strategy::Ensemble => "ensemble",
        }
    }

    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether the result is one model (everything but the ensemble).
    pub fn makes_soup(self) -> bool {
        self != Strategy::Ensemble
    }

    pub fn is_learned(self) -> bool {
        Strategy::LEARNED.contains(&self)
    }

    /// Whether it tries ingredients one by one (greedy, GIS).
    pub fn tries_candidates(self) -> bool {
        matches!(self, Strategy::Greedy | Strategy::Gis)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How LS/PLS initialise the mixing logits (the reference code's options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitKind {
    /// Exactly uniform weights: LS starts from the uniform soup.
    Ones,
    /// Xavier-uniform perturbation of uniform.
    Uniform,
    /// Xavier-normal perturbation of uniform (the reference's suggestion for PLS).
    Normal,
}

impl InitKind {
    pub const NAMES: &'static [&'static str] = &["ones", "uniform", "normal"];
    pub(super) fn name(self) -> &'static str {
        match self {
            InitKind::Ones => "ones",
            InitKind::Uniform => "uniform",
            InitKind::Normal => "normal",
        }
    }
    pub(super) fn from_name(s: &str) -> Option<InitKind> {
        [InitKind::Ones, InitKind::Uniform, InitKind::Normal].into_iter().find(|k| k.name() == s)
    }
}

/// How LS/PLS step the mixing logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// The paper's: plain SGD at `lr` with cosine warm restarts over `t0`. Its step depends on the
    /// gradient's scale, which is why the paper tunes lr from 5 to 110 per dataset.
    Sgd,
    /// Adam on the logits and temperature at a fixed step ([`auto_step`]) with the same cosine
    /// warm restarts: invariant to the gradient's scale, so nothing to tune; `lr` is not read.
    Auto,
}

/// The step size of `--optimizer auto` (Adam): a change of the logits per step, not a gradient
/// multiplier, so one value per strategy serves every dataset (docs: "Learned souping without a
/// learning rate"). LS steps on the exact full-graph gradient and takes larger steps (at 0.05 it
/// had not converged in 100 epochs on GAT ingredients); PLS's gradient comes from a few sampled
/// parts, so its noisier steps are smaller. Chosen on 4 cells x 2 seeds of `scripts/lr-auto.sh`.
pub fn auto_step(strategy: Strategy) -> f64 {
    match strategy {
        Strategy::Pls => 0.2,
        _ => 0.5,
    }
}

impl OptimizerKind {
    pub const NAMES: &'static [&'static str] = &["sgd", "auto"];
    pub(super) fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Auto => "auto",
        }
    }
    pub(super) fn from_name(s: &str) -> Option<OptimizerKind> {
        [OptimizerKind::Sgd, OptimizerKind::Auto].into_iter().find(|k| k.name() == s)
    }
}

impl MixGranularity {
    pub const NAMES: &'static [&'static str] = &["tensor", "layer", "ingredient"];
    pub(super) fn name(self) -> &'static str {
        match self {
            MixGranularity::Tensor => "tensor",
            MixGranularity::Layer => "layer",
            MixGranularity::Ingredient => "ingredient",
        }
    }
    pub(super) fn from_name(s: &str) -> Option<MixGranularity> {
        [MixGranularity::Tensor, MixGranularity::Layer, MixGranularity::Ingredient]
            .into_iter()
            .find(|k| k.name() == s)
    }
}
