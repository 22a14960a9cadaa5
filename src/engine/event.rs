//! What a running soup job tells whoever watches it: plain numbers, serialisable, so the same
//! stream feeds progress bars, the TUI and the `events.jsonl` file of a run directory. The
//! strategies' own [`Progress`] becomes the `epoch`, `candidate`, `partition_sample` and `log`
//! events, with the same JSON as before the strategies owned it.

use serde::{Deserialize, Serialize};

use super::report::SoupReport;
use crate::soup::{LogLevel, Progress, Strategy};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A strategy starts: what runs and how big it is.
    Started {
        strategy: Strategy,
        dataset: String,
        nodes: usize,
        edges: usize,
        device: String,
        ingredients: Vec<String>,
        /// Names of the rows of the mixing-weight matrix (tensors, layers or "all").
        groups: Vec<String>,
        /// Epochs for LS/PLS, candidates for greedy/GIS, else 0.
        steps: usize,
        /// PLS: K.
        parts: Option<usize>,
    },
    /// One LS/PLS step.
    Epoch {
        epoch: usize,
        epochs: usize,
        loss: f64,
        /// NaN (null in JSON) until first measured.
        #[serde(with = "crate::units::nan_as_null")]
        val_acc: f64,
        /// Accuracy on the held-out selection nodes, when early stopping is on.
        select_acc: Option<f64>,
        lr: f64,
        /// Current mixing weights, `[group][ingredient]`.
        weights: Vec<Vec<f64>>,
        seconds: f64,
    },
    /// A greedy/GIS trial of adding an ingredient.
    Candidate {
        ingredient: usize,
        factor: f64,
        val_acc: f64,
        accepted: bool,
        step: usize,
        steps: usize,
    },
    /// A PLS sample: which of the K parts form this epoch's subgraph.
    PartitionSample {
        epoch: usize,
        parts: Vec<usize>,
        nodes: usize,
        edges: usize,
        val_nodes: usize,
    },
    /// An accuracy measured along the way (ingredients, uniform soup).
    Evaluation { what: Evaluated, val_acc: f64, test_acc: f64 },
    /// A warning or note for the log pane.
    Log { level: LogLevel, message: String },
    /// A strategy finished (possibly partial, after cancellation).
    Finished { report: Box<SoupReport> },
    /// A strategy failed; the job stops.
    Failed { message: String },
}

impl From<Progress> for Event {
    fn from(p: Progress) -> Event {
        match p {
            Progress::Epoch { epochs, record, weights } => Event::Epoch {
                epoch: record.epoch,
                epochs,
                loss: record.loss,
                val_acc: record.val_acc,
                select_acc: record.select_acc,
                lr: record.lr,
                weights,
                seconds: record.seconds,
            },
            Progress::Candidate { record, step, steps } => Event::Candidate {
                ingredient: record.ingredient,
                factor: record.factor,
                val_acc: record.val_acc,
                accepted: record.accepted,
                step,
                steps,
            },
            Progress::PartitionSample { epoch, parts, nodes, edges, val_nodes } => {
                Event::PartitionSample { epoch, parts, nodes, edges, val_nodes }
            }
            Progress::Log { level, message } => Event::Log { level, message },
        }
    }
}

/// What an `evaluation` event measured. Written as text in `events.jsonl` ("ingredient 3",
/// "uniform soup"), as it always was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Evaluated {
    Ingredient(usize),
    UniformSoup,
}

impl From<Evaluated> for String {
    fn from(e: Evaluated) -> String {
        match e {
            Evaluated::Ingredient(i) => format!("ingredient {i}"),
            Evaluated::UniformSoup => "uniform soup".into(),
        }
    }
}

impl TryFrom<String> for Evaluated {
    type Error = String;
    fn try_from(s: String) -> Result<Evaluated, String> {
        if s == "uniform soup" {
            return Ok(Evaluated::UniformSoup);
        }
        s.strip_prefix("ingredient ")
            .and_then(|i| i.parse().ok())
            .map(Evaluated::Ingredient)
            .ok_or_else(|| format!("unknown evaluation {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soup::EpochRecord;

    #[test]
    fn progress_keeps_the_event_json_of_the_run_files() {
        let record = EpochRecord {
            epoch: 3,
            loss: 0.5,
            val_acc: 0.8,
            select_acc: None,
            lr: 2.0,
            seconds: 1.5,
        };
        let e: Event = Progress::Epoch { epochs: 10, record, weights: vec![vec![0.5, 0.5]] }.into();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"event": "epoch", "epoch": 3, "epochs": 10, "loss": 0.5, "val_acc": 0.8, "select_acc": null, "lr": 2.0, "weights": [[0.5, 0.5]], "seconds": 1.5})
        );
        let log: Event = Progress::Log { level: LogLevel::Warn, message: "m".into() }.into();
        assert_eq!(
            serde_json::to_string(&log).unwrap(),
            r#"{"event":"log","level":"warn","message":"m"}"#
        );
        let ev = Event::Evaluation { what: Evaluated::Ingredient(4), val_acc: 0.1, test_acc: 0.2 };
        let text = serde_json::to_string(&ev).unwrap();
        assert!(text.contains(r#""what":"ingredient 4""#), "{text}");
        let back: Event = serde_json::from_str(
            r#"{"event":"evaluation","what":"uniform soup","val_acc":0.1,"test_acc":0.2}"#,
        )
        .unwrap();
        assert!(matches!(back, Event::Evaluation { what: Evaluated::UniformSoup, .. }));
        assert!(serde_json::from_str::<Event>(
            r#"{"event":"evaluation","what":"oops","val_acc":0.1,"test_acc":0.2}"#
        )
        .is_err());
    }
}
