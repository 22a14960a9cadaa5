//! The settings registry: [`SETTINGS`] defines each setting once (name, strategies that read
//! it, help, range, default) and [`Setting`] parses, checks and layers their values.

use std::fmt;

use super::choices::{InitKind, OptimizerKind, Strategy};
use super::paper::PaperRow;
use super::values::SoupSettings;
use crate::soup::stack::MixGranularity;

/// A setting and a value given for it (by a recipe, a flag or a form), as layers hold them.
pub type Given = (&'static Setting, Value);

/// A setting's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Count(usize),
    Real(f64),
    Choice(&'static str),
    Switch(bool),
    Seed(u64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Count(v) => write!(f, "{v}"),
            Value::Real(v) => write!(f, "{v}"),
            Value::Choice(v) => f.write_str(v),
            Value::Switch(v) => f.write_str(if *v { "on" } else { "off" }),
            Value::Seed(v) => write!(f, "{v}"),
        }
    }
}

/// What values a setting takes.
#[derive(Debug, Clone, Copy)]
pub enum SettingKind {
    /// A whole number from `min` to `max`: the upper bound is far above any sensible run, so
    /// that a typo (`epochs = 1e18`) is named at once instead of running until killed.
    Count { min: usize, max: usize },
    /// A finite number with `min < x` (or `min <= x` when `min_inclusive`) and `x < max`.
    Real { min: f64, min_inclusive: bool, max: f64 },
    /// One of these names.
    Choice(&'static [&'static str]),
    /// on / off.
    Switch,
    /// Any whole number >= 0 (a random seed).
    Seed,
}

/// A setting that is wrong, and which one (so a form can mark the field).
#[derive(Debug, Clone, PartialEq)]
pub struct SettingError {
    pub setting: &'static str,
    pub problem: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--{}: {}", self.setting, self.problem)
    }
}

impl std::error::Error for SettingError {}

/// What a default may depend on.
pub struct DefaultsFor<'a> {
    pub strategy: Strategy,
    pub paper: Option<&'a PaperRow>,
}

/// One setting: see the module comment.
pub struct Setting {
    pub name: &'static str,
    pub help: &'static str,
    /// The strategies that read it.
    pub strategies: &'static [Strategy],
    pub kind: SettingKind,
    /// Whether the paper's table sets it for the architectures and datasets it covers.
    pub from_paper: bool,
    pub default: fn(&DefaultsFor) -> Value,
    pub get: fn(&SoupSettings) -> Value,
    pub(super) set: fn(&mut SoupSettings, &Value),
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Setting({})", self.name)
    }
}

const LEARNED: &[Strategy] = &Strategy::LEARNED;

/// Every soup setting, in the order forms and help list them.
pub static SETTINGS: &[Setting] = &[
    Setting {
        name: "granularity",
        help: "GIS: interpolation points in [0, 1]",
        strategies: &[Strategy::Gis],
        kind: SettingKind::Count { min: 2, max: 1000 },
        from_paper: false,
        default: |_| Value::Count(20),
        get: |s| Value::Count(s.granularity),
        set: |s, v| s.granularity = v.count(),
    },
    Setting {
        name: "epochs",
        help: "LS/PLS epochs (one optimisation step each)",
        strategies: LEARNED,
        kind: SettingKind::Count { min: 1, max: 1_000_000 },
        from_paper: true,
        default: |d| Value::Count(match (d.paper, d.strategy) {
            (Some(r), Strategy::Pls) => r.pls_epochs,
            (Some(r), _) => r.ls_epochs,
            (None, _) => 100,
        }),
        get: |s| Value::Count(s.epochs),
        set: |s, v| s.epochs = v.count(),
    },
    Setting {
        name: "lr",
        help: "LS/PLS SGD learning rate (large: the paper uses 5 to 110; not read with --optimizer auto)",
        strategies: LEARNED,
        kind: SettingKind::Real { min: 0.0, min_inclusive: false, max: f64::INFINITY },
        from_paper: true,
        default: |d| Value::Real(match (d.paper, d.strategy) {
            (Some(r), Strategy::Pls) => r.pls_lr,
            (Some(r), _) => r.ls_lr,
            (None, _) => 10.0,
        }),
        get: |s| Value::Real(s.lr),
        set: |s, v| s.lr = v.real(),
    },
    Setting {
        name: "optimizer",
        help: "LS/PLS optimiser: sgd (the paper's: --lr, cosine warm restarts over --t0; --lr implies it) or auto (Adam at a fixed step, scale-free: no learning rate to tune, --lr not read)",
        strategies: LEARNED,
        kind: SettingKind::Choice(OptimizerKind::NAMES),
        from_paper: true,
        default: |d| Value::Choice(if d.paper.is_some() { "sgd" } else { "auto" }),
        get: |s| Value::Choice(s.optimizer.name()),
        set: |s, v| s.optimizer = OptimizerKind::from_name(v.choice()).unwrap_or(OptimizerKind::Sgd),
    },
    Setting {
        name: "t0",
        help: "cosine annealing warm-restart period T0, in epochs",
        strategies: LEARNED,
        kind: SettingKind::Count { min: 1, max: 1_000_000 },
        from_paper: true,
        default: |d| Value::Count(d.paper.map_or(4, |r| r.t0)),
        get: |s| Value::Count(s.t0),
        set: |s, v| s.t0 = v.count(),
    },
    Setting {
        name: "parts",
        help: "PLS: K, the number of METIS parts",
        strategies: &[Strategy::Pls],
        kind: SettingKind::Count { min: 2, max: 1_000_000 },
        from_paper: true,
        default: |d| Value::Count(d.paper.map_or(32, |r| r.parts)),
        get: |s| Value::Count(s.parts),
        set: |s, v| s.parts = v.count(),
    },
    Setting {
        name: "sample",
        help: "PLS: R, parts sampled per epoch (at most K)",
        strategies: &[Strategy::Pls],
        kind: SettingKind::Count { min: 1, max: 1_000_000 },
        from_paper: true,
        default: |d| Value::Count(d.paper.map_or(8, |r| r.sample)),
        get: |s| Value::Count(s.sample),
        set: |s, v| s.sample = v.count(),
    },
    Setting {
        name: "init",
        help: "mixing-logit initialisation: ones (the uniform soup), uniform or normal (Xavier)",
        strategies: LEARNED,
        kind: SettingKind::Choice(InitKind::NAMES),
        from_paper: false,
        default: |d| Value::Choice(if d.strategy == Strategy::Pls { "normal" } else { "ones" }),
        get: |s| Value::Choice(s.init.name()),
        set: |s, v| s.init = InitKind::from_name(v.choice()).unwrap_or(InitKind::Ones),
    },
    Setting {
        name: "mix",
        help: "mixing weights per tensor (the paper), per layer, or one per ingredient",
        strategies: LEARNED,
        kind: SettingKind::Choice(MixGranularity::NAMES),
        from_paper: false,
        default: |_| Value::Choice("tensor"),
        get: |s| Value::Choice(s.mix.name()),
        set: |s, v| s.mix = MixGranularity::from_name(v.choice()).unwrap_or(MixGranularity::Tensor),
    },
    Setting {
        name: "dropout",
        help: "dropout while fitting LS/PLS weights (the reference keeps the model in training mode; on by default with --optimizer sgd or --lr)",
        strategies: LEARNED,
        kind: SettingKind::Switch,
        from_paper: true,
        default: |d| Value::Switch(d.paper.is_some()),
        get: |s| Value::Switch(s.dropout),
        set: |s, v| s.dropout = v.switch(),
    },
    Setting {
        name: "batch-stats",
        help: "batch norm while fitting LS/PLS weights normalises with the batch's statistics (the whole graph, or PLS's sampled parts), as the reference's model in training mode does; off: the mixed running statistics, as at inference",
        strategies: LEARNED,
        kind: SettingKind::Switch,
        from_paper: false,
        default: |_| Value::Switch(true),
        get: |s| Value::Switch(s.batch_stats),
        set: |s, v| s.batch_stats = v.switch(),
    },
    Setting {
        name: "holdout",
        help: "fraction of validation nodes held out to pick the best epoch (early stopping; 0: off, as the paper)",
        strategies: LEARNED,
        kind: SettingKind::Real { min: 0.0, min_inclusive: true, max: 0.95 },
        from_paper: false,
        default: |_| Value::Real(0.0),
        get: |s| Value::Real(s.holdout),
        set: |s, v| s.holdout = v.real(),
    },
    Setting {
        name: "patience",
        help: "with a holdout: epochs without improvement before stopping",
        strategies: LEARNED,
        kind: SettingKind::Count { min: 1, max: 1_000_000 },
        from_paper: false,
        default: |_| Value::Count(20),
        get: |s| Value::Count(s.patience),
        set: |s, v| s.patience = v.count(),
    },
    Setting {
        name: "fit-validation",
        help: "measure the soup's validation accuracy during an LS/PLS fit with an extra inference pass (every epoch up to 100,000 nodes, every 5th above); off: none, as the reference code (the soup is scored after the fit either way)",
        strategies: LEARNED,
        kind: SettingKind::Switch,
        from_paper: false,
        default: |_| Value::Switch(true),
        get: |s| Value::Switch(s.fit_validation),
        set: |s, v| s.fit_validation = v.switch(),
    },
    Setting {
        name: "seed",
        help: "LS/PLS random seed (logit initialisation, dropout, PLS sampling, holdout split)",
        strategies: LEARNED,
        kind: SettingKind::Seed,
        from_paper: false,
        default: |_| Value::Seed(0),
        get: |s| Value::Seed(s.seed),
        set: |s, v| s.seed = v.seed(),
    },
];

impl Value {
    // Accessors for the table's setters: the table pairs each setter with its kind, and
    // `Setting::check` runs before any setter, so a mismatch is a bug in the table itself.
    fn count(&self) -> usize {
        match self {
            Value::Count(v) => *v,
            other => unreachable!("a count setting got {other:?}"),
        }
    }
    fn real(&self) -> f64 {
        match self {
            Value::Real(v) => *v,
            other => unreachable!("a real setting got {other:?}"),
        }
    }
    fn choice(&self) -> &'static str {
        match self {
            Value::Choice(v) => v,
            other => unreachable!("a choice setting got {other:?}"),
        }
    }
    fn switch(&self) -> bool {
        match self {
            Value::Switch(v) => *v,
            other => unreachable!("a switch setting got {other:?}"),
        }
    }
    fn seed(&self) -> u64 {
        match self {
            Value::Seed(v) => *v,
            other => unreachable!("a seed setting got {other:?}"),
        }
    }
}

impl Setting {
    pub fn by_name(name: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.name == name)
    }

    /// What the settings `given` (lowest priority first: a recipe, then flags or a form) imply,
    /// to be applied after them ([`Setting::with_implied`]): an `lr` means SGD (nobody sets a
    /// learning rate for Adam to ignore) unless an optimiser is given after it (a flag's `--lr`
    /// beats a recipe's `optimizer = "auto"`), and dropout while fitting goes with the optimiser
    /// unless it is given: on with the paper's SGD, off with `auto` (measured over 5 seeds: with
    /// dropout on, Adam's fit of GAT ingredients on a mid-homophily graph fell 4 points under the
    /// tuned SGD grid; docs, "Learned souping without a learning rate").
    pub fn implied_by(given: &[Given]) -> Vec<Given> {
        let last = |name: &str| given.iter().rposition(|(s, _)| s.name == name);
        let sgd = Value::Choice("sgd");
        let mut implied = Vec::new();
        let optimizer = match (last("optimizer"), last("lr")) {
            (Some(o), Some(l)) if l < o => Some(given[o].1.clone()),
            (_, Some(_)) => {
                implied.extend(Setting::by_name("optimizer").map(|s| (s, sgd.clone())));
                Some(sgd.clone())
            }
            (Some(o), None) => Some(given[o].1.clone()),
            (None, None) => None,
        };
        if let (Some(optimizer), None) = (optimizer, last("dropout")) {
            implied
                .extend(Setting::by_name("dropout").map(|s| (s, Value::Switch(optimizer == sgd))));
        }
        implied
    }

    /// `given` (lowest priority first) with what it implies, one value per setting, in the order
    /// to apply them: the one place where the layers of settings meet.
    pub fn with_implied(given: &[Given]) -> Vec<Given> {
        let mut out: Vec<Given> = Vec::new();
        for (setting, value) in given.iter().cloned().chain(Setting::implied_by(given)) {
            out.retain(|(s, _)| s.name != setting.name);
            out.push((setting, value));
        }
        out
    }

    pub fn applies_to(&self, strategy: Strategy) -> bool {
        self.strategies.contains(&strategy)
    }

    fn error(&self, problem: impl Into<String>) -> SettingError {
        SettingError { setting: self.name, problem: problem.into() }
    }

    /// What values are allowed, in words.
    pub fn range(&self) -> String {
        match self.kind {
            SettingKind::Seed => "a whole number".into(),
            SettingKind::Count { min, max } => format!("a whole number from {min} to {max}"),
            SettingKind::Real { min, min_inclusive, max } => match (min_inclusive, max.is_finite())
            {
                (false, false) => format!("a number above {min}"),
                (true, false) => format!("a number, at least {min}"),
                (false, true) => format!("a number above {min} and below {max}"),
                (true, true) => format!("a number in [{min}, {max})"),
            },
            SettingKind::Choice(names) => format!("one of {}", names.join(", ")),
            SettingKind::Switch => "on or off".into(),
        }
    }

    /// Reads a value typed on the command line or in the form.
    pub fn parse(&self, text: &str) -> Result<Value, SettingError> {
        let t = text.trim();
        let wrong = || self.error(format!("expected {}, got {text:?}", self.range()));
        let v = match self.kind {
            SettingKind::Count { .. } => Value::Count(t.parse().map_err(|_| wrong())?),
            SettingKind::Real { .. } => Value::Real(t.parse().map_err(|_| wrong())?),
            SettingKind::Choice(names) => {
                Value::Choice(names.iter().find(|n| n.eq_ignore_ascii_case(t)).ok_or_else(wrong)?)
            }
            SettingKind::Switch => Value::Switch(match t.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => true,
                "off" | "false" | "no" | "0" => false,
                _ => return Err(wrong()),
            }),
            SettingKind::Seed => Value::Seed(t.parse().map_err(|_| wrong())?),
        };
        self.check(&v).map_err(|_| wrong())?;
        Ok(v)
    }

    /// Whether `v` is in range (and of this setting's kind).
    pub fn check(&self, v: &Value) -> Result<(), SettingError> {
        let ok = match (self.kind, v) {
            (SettingKind::Count { min, max }, Value::Count(x)) => (min..=max).contains(x),
            (SettingKind::Real { min, min_inclusive, max }, Value::Real(x)) => {
                x.is_finite() && (*x > min || (min_inclusive && *x == min)) && *x < max
            }
            (SettingKind::Choice(names), Value::Choice(x)) => names.contains(x),
            (SettingKind::Switch, Value::Switch(_)) | (SettingKind::Seed, Value::Seed(_)) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(self.error(format!("expected {}, got {v}", self.range())))
        }
    }

    /// The help line shown by `--help` and the form: what it does and its defaults.
    pub fn help_with_default(&self) -> String {
        let mut per: Vec<(Strategy, Value)> = self
            .strategies
            .iter()
            .map(|&s| (s, (self.default)(&DefaultsFor { strategy: s, paper: None })))
            .collect();
        per.dedup_by(|a, b| a.1 == b.1);
        let defaults = match per.as_slice() {
            [(_, v)] => format!("{v}"),
            many => many.iter().map(|(s, v)| format!("{v} for {s}")).collect::<Vec<_>>().join(", "),
        };
        let paper = if self.from_paper {
            ", or the paper's table where it has the architecture and dataset"
        } else {
            ""
        };
        format!("{} [default: {defaults}{paper}]", self.help)
    }

    /// A value from a report's JSON (numbers, strings, booleans as written by [`Serialize`]).
    pub(super) fn value_from_json(&self, v: &serde_json::Value) -> Result<Value, SettingError> {
        let text = match v {
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => return Err(self.error(format!("unexpected {other}"))),
        };
        self.parse(&text)
    }

    pub(super) fn to_json(&self, s: &SoupSettings) -> serde_json::Value {
        match (self.get)(s) {
            Value::Count(v) => v.into(),
            Value::Real(v) => v.into(),
            Value::Choice(v) => v.into(),
            Value::Switch(v) => v.into(),
            Value::Seed(v) => v.into(),
        }
    }
}
