//! What to soup with and how: the strategies, and every setting they read.
//!
//! [`SETTINGS`] is the one definition of a setting: its name (the `--flag`, the setup form's
//! field and the key in a report's `settings` block), which strategies read it, its help text,
//! its range, and its default per strategy and per row of the paper's table. The command line,
//! the workbench form, the reports and [`SoupSettings::validate`] are all built from it.
//!
//! Files: [`choices`] (the strategies and the named choices), [`paper`] (the paper's table),
//! [`registry`] (every setting, defined once), [`values`] ([`SoupSettings`], the values one
//! strategy run reads); this file: their defaults, layering, validation, and how reports write
//! and read them.

mod choices;
mod paper;
mod registry;
mod values;

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use choices::{auto_step, InitKind, OptimizerKind, Strategy};
pub use paper::{paper_row, PaperRow, PAPER};
pub use registry::{DefaultsFor, Given, Setting, SettingError, SettingKind, Value, SETTINGS};
pub use values::SoupSettings;

use crate::model::Arch;
use crate::soup::stack::MixGranularity;

impl SoupSettings {
    /// Defaults for `strategy` on `arch`/`dataset`: the paper's table where it has the pair,
    /// otherwise general defaults (tuned on the Planetoid graphs); see [`SETTINGS`].
    pub fn defaults(strategy: Strategy, arch: Arch, dataset: &str) -> SoupSettings {
        let paper = paper_row(arch, dataset);
        let mut s = SoupSettings {
            strategy,
            granularity: 0,
            epochs: 0,
            optimizer: OptimizerKind::Sgd,
            lr: 0.0,
            t0: 0,
            init: InitKind::Ones,
            parts: 0,
            sample: 0,
            mix: MixGranularity::Tensor,
            dropout: true,
            batch_stats: true,
            holdout: 0.0,
            patience: 0,
            fit_validation: true,
            seed: 0,
            source: paper.map_or("general defaults".to_string(), |r| {
                format!("paper table: {} {}", arch, r.dataset)
            }),
        };
        let d = DefaultsFor { strategy, paper };
        for setting in SETTINGS {
            (setting.set)(&mut s, &(setting.default)(&d));
        }
        s
    }

    /// Every strategy, each with its defaults (`--strategy all`).
    pub fn all_defaults(arch: Arch, dataset: &str) -> Vec<SoupSettings> {
        Strategy::ALL.iter().map(|&s| SoupSettings::defaults(s, arch, dataset)).collect()
    }

    /// Sets one setting, checking its range (not yet how it fits with the others: [`validate`]).
    ///
    /// [`validate`]: SoupSettings::validate
    pub fn set(&mut self, setting: &Setting, v: &Value) -> Result<(), SettingError> {
        setting.check(v)?;
        (setting.set)(self, v);
        Ok(())
    }

    /// Applies overrides (from flags or a form) to every strategy that reads them.
    pub fn with(mut self, overrides: &[Given]) -> Result<SoupSettings, SettingError> {
        for (setting, v) in overrides {
            if setting.applies_to(self.strategy) {
                self.set(setting, v)?;
            }
        }
        Ok(self)
    }

    /// The one validator: every setting the strategy reads is in range, and they fit together.
    pub fn validate(&self) -> Result<(), SettingError> {
        for setting in SETTINGS.iter().filter(|s| s.applies_to(self.strategy)) {
            setting.check(&(setting.get)(self))?;
        }
        if self.strategy == Strategy::Pls && self.sample > self.parts {
            return Err(SettingError {
                setting: "sample",
                problem: format!(
                    "R (--sample {}) cannot exceed K (--parts {})",
                    self.sample, self.parts
                ),
            });
        }
        Ok(())
    }
}

/// The report's `settings` block: the strategy, every setting of [`SETTINGS`], and the source.
impl Serialize for SoupSettings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(SETTINGS.len() + 2))?;
        map.serialize_entry("strategy", &self.strategy)?;
        for setting in SETTINGS {
            map.serialize_entry(setting.name, &setting.to_json(self))?;
        }
        map.serialize_entry("source", &self.source)?;
        map.end()
    }
}

/// Reads a `settings` block back. A setting it lacks (an older report) is what the written ones
/// imply ([`Setting::implied_by`], as when they were given), otherwise its general default; a
/// block without `optimizer` was written when the paper's SGD was the only one.
impl<'de> Deserialize<'de> for SoupSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let strategy: Strategy = serde_json::from_value(
            map.get("strategy").cloned().ok_or_else(|| D::Error::missing_field("strategy"))?,
        )
        .map_err(D::Error::custom)?;
        let mut written = Vec::new();
        for setting in SETTINGS {
            if let Some(v) = map.get(setting.name) {
                written.push((setting, setting.value_from_json(v).map_err(D::Error::custom)?));
            }
        }
        if !map.contains_key("optimizer") {
            written.extend(Setting::by_name("optimizer").map(|s| (s, Value::Choice("sgd"))));
        }
        // What was written stands as it is; implications only fill in what was not written.
        let implied = Setting::implied_by(&written)
            .into_iter()
            .filter(|(setting, _)| !map.contains_key(setting.name));
        let mut s = SoupSettings::defaults(strategy, Arch::Gcn, "");
        for (setting, v) in implied.chain(written) {
            (setting.set)(&mut s, &v);
        }
        s.source = map.get("source").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_papers_table_and_the_general_defaults() {
        let s = SoupSettings::defaults(Strategy::Pls, Arch::Gcn, "ogbn-arxiv");
        assert_eq!(
            (s.epochs, s.lr, s.t0, s.sample, s.parts, s.init),
            (200, 7.5, 4, 8, 32, InitKind::Normal)
        );
        assert_eq!(s.source, "paper table: gcn ogbn-arxiv");
        let s = SoupSettings::defaults(Strategy::Ls, Arch::Sage, "csbm-products");
        assert_eq!((s.epochs, s.lr, s.t0, s.init), (25, 10.0, 4, InitKind::Ones));
        assert_eq!(
            (s.optimizer, s.dropout),
            (OptimizerKind::Sgd, true),
            "the paper's row: its SGD, dropout on"
        );
        let s = SoupSettings::defaults(Strategy::Ls, Arch::Gcn, "cora");
        assert_eq!((s.epochs, s.lr, s.t0, s.granularity, s.patience), (100, 10.0, 4, 20, 20));
        assert_eq!(
            (s.optimizer, s.dropout),
            (OptimizerKind::Auto, false),
            "no row: nothing tuned, so auto"
        );
        assert_eq!(s.source, "general defaults");
    }

    #[test]
    fn one_validator_names_the_setting_that_is_wrong() {
        let base = SoupSettings::defaults(Strategy::Pls, Arch::Gcn, "cora");
        let patience = Setting::by_name("patience").unwrap();
        // --patience 0 is refused whatever the holdout (it used to pass the CLI and fail the form).
        assert_eq!(patience.parse("0").unwrap_err().setting, "patience");
        let mut s = base.clone();
        s.patience = 0;
        assert_eq!(s.validate().unwrap_err().setting, "patience");
        let lr = Setting::by_name("lr").unwrap();
        assert_eq!(
            lr.parse("-1").unwrap_err().to_string(),
            "--lr: expected a number above 0, got \"-1\""
        );
        assert!(lr.parse("nan").is_err() && lr.parse("inf").is_err());
        let holdout = Setting::by_name("holdout").unwrap();
        assert!(holdout.parse("0").is_ok() && holdout.parse("0.95").is_err());
        let mut s = base.clone();
        s.sample = 40;
        assert_eq!(s.validate().unwrap_err().setting, "sample");
        // A setting the strategy does not read is not checked.
        let mut g = SoupSettings::defaults(Strategy::Gis, Arch::Gcn, "cora");
        g.t0 = 0;
        assert!(g.validate().is_ok());
        g.granularity = 1;
        assert_eq!(g.validate().unwrap_err().setting, "granularity");
    }

    #[test]
    fn overrides_apply_only_to_strategies_that_read_them() {
        let lr = Setting::by_name("lr").unwrap();
        let gran = Setting::by_name("granularity").unwrap();
        let o = [(lr, Value::Real(3.0)), (gran, Value::Count(7))];
        let ls = SoupSettings::defaults(Strategy::Ls, Arch::Gcn, "cora").with(&o).unwrap();
        let gis = SoupSettings::defaults(Strategy::Gis, Arch::Gcn, "cora").with(&o).unwrap();
        assert_eq!((ls.lr, ls.granularity), (3.0, 20));
        assert_eq!((gis.lr, gis.granularity), (10.0, 7));
    }

    #[test]
    fn the_report_block_round_trips_and_keeps_its_json_types() {
        let mut s = SoupSettings::defaults(Strategy::Pls, Arch::Gat, "reddit");
        s.dropout = false;
        s.holdout = 0.25;
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["strategy"], "pls");
        assert_eq!(json["dropout"], false);
        assert_eq!(json["init"], "normal");
        assert_eq!(json["lr"], 80.0);
        assert_eq!(json["source"], "paper table: gat reddit");
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        for setting in SETTINGS {
            assert!(keys.contains(&setting.name), "{} missing from {keys:?}", setting.name);
        }
        let back: SoupSettings = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    /// A block written before `optimizer` existed was the paper's SGD, with dropout on unless it
    /// says otherwise: it reads back as that, not as today's default (auto).
    #[test]
    fn an_older_block_without_an_optimizer_reads_back_as_the_papers_sgd() {
        let old = serde_json::json!({"strategy": "ls", "epochs": 40, "lr": 11.0, "t0": 4, "source": "general defaults"});
        let s: SoupSettings = serde_json::from_value(old).unwrap();
        assert_eq!((s.optimizer, s.dropout, s.lr, s.epochs), (OptimizerKind::Sgd, true, 11.0, 40));
        let old_no_dropout = serde_json::json!({"strategy": "pls", "dropout": false});
        let s: SoupSettings = serde_json::from_value(old_no_dropout).unwrap();
        assert_eq!((s.optimizer, s.dropout, s.batch_stats), (OptimizerKind::Sgd, false, true));
    }

    #[test]
    fn help_states_each_default() {
        assert_eq!(Setting::by_name("init").unwrap().help_with_default(), "mixing-logit initialisation: ones (the uniform soup), uniform or normal (Xavier) [default: ones for ls, normal for pls]");
        assert!(Setting::by_name("lr").unwrap().help_with_default().ends_with(
            "[default: 10, or the paper's table where it has the architecture and dataset]"
        ));
    }
}
