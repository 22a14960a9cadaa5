//! The setup screen's state: a checkpoint browser with multi-select, and the strategy form.
//!
//! The browser reads only checkpoint headers (metadata), so listing a directory of large models
//! is quick. A checkpoint that cannot join the current selection (another architecture, other
//! data, another shared init, not an ingredient, unreadable) is listed with the reason and
//! refuses selection. The form holds the chosen strategy's settings as text, filled with its
//! defaults and validated on every key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::checkpoint::{self, CheckpointKind, CheckpointMeta};
use crate::soup::stack::MixGranularity;
use crate::soup::{InitKind, SoupSettings, Strategy};

// Boxing the metadata would save little: a listing holds a few dozen entries.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum EntryKind {
    Parent,
    Dir,
    /// A `.safetensors` file: its metadata, or why it cannot be read.
    Checkpoint(Result<CheckpointMeta, String>),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub name: String,
    pub kind: EntryKind,
}

/// What the user asked the setup screen to do.
#[derive(Debug, Clone, PartialEq)]
pub enum SetupAction {
    None,
    /// Start souping: ingredients, dataset, device text, one settings per strategy.
    Start { ingredients: Vec<PathBuf>, dataset: String, device: String, settings: Vec<SoupSettings> },
    Inspect(Vec<PathBuf>),
    /// Leave the setup screen (to the dashboard when a run exists).
    Back,
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// Cycled with left/right.
    Choice(Vec<String>),
    /// Typed; digits, '.', 'e', '-'.
    Number,
    Text,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub value: String,
    pub kind: FieldKind,
    pub help: &'static str,
}

/// Strategies the form offers: each one, or all with their defaults.
pub const STRATEGIES: &[&str] = &["ls", "pls", "gis", "greedy", "uniform", "ensemble", "all"];
const INITS: &[&str] = &["ones", "uniform", "normal"];
const MIXES: &[&str] = &["tensor", "layer", "ingredient"];
const ON_OFF: &[&str] = &["on", "off"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupFocus {
    Browser,
    Form,
}

#[derive(Debug)]
pub struct Setup {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
    pub cursor: usize,
    /// Selected checkpoints in selection order; the first one sets what the others must match.
    pub selected: Vec<(PathBuf, CheckpointMeta)>,
    pub focus: SetupFocus,
    pub fields: Vec<Field>,
    pub field: usize,
    /// Devices offered: "cpu" and each CUDA device found.
    pub devices: Vec<String>,
    /// The last thing worth telling the user (a refused selection, an unreadable directory).
    pub message: Option<String>,
}

impl Setup {
    /// Opens the browser at `dir`, selecting every ingredient there that fits with the first.
    pub fn new(dir: &Path, strategy: &str, devices: Vec<String>) -> Setup {
        let mut s = Setup {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
            cursor: 0,
            selected: Vec::new(),
            focus: SetupFocus::Browser,
            fields: Vec::new(),
            field: 0,
            devices,
            message: None,
        };
        s.open(dir);
        s.select_all();
        s.cursor = s.entries.iter().position(|e| matches!(e.kind, EntryKind::Checkpoint(_))).unwrap_or(0);
        s.reset_fields(if STRATEGIES.contains(&strategy) { strategy } else { "ls" }, None);
        s
    }

    /// Lists `dir`: parent, subdirectories, then checkpoints, each group sorted by name.
    pub fn open(&mut self, dir: &Path) {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let listing = match std::fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) => {
                self.message = Some(format!("cannot list {}: {e}", dir.display()));
                return;
            }
        };
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        for e in listing.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                dirs.push(Entry { path, name: format!("{name}/"), kind: EntryKind::Dir });
            } else if path.extension().is_some_and(|x| x == "safetensors") {
                let meta = checkpoint::read_meta(&path).map_err(|e| format!("{e:#}"));
                files.push(Entry { path, name, kind: EntryKind::Checkpoint(meta) });
            }
        }
        dirs.sort_by(|a, b| a.name.cmp(&b.name));
        files.sort_by(|a, b| a.name.cmp(&b.name));
        self.entries.clear();
        if let Some(parent) = dir.parent() {
            self.entries.push(Entry { path: parent.to_path_buf(), name: "../".into(), kind: EntryKind::Parent });
        }
        self.entries.extend(dirs);
        self.entries.extend(files);
        self.dir = dir;
        self.cursor = 0;
    }

    /// Why `entry` cannot be added to the current selection, if it cannot.
    pub fn blocked(&self, entry: &Entry) -> Option<String> {
        let EntryKind::Checkpoint(meta) = &entry.kind else { return None };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => return Some(e.clone()),
        };
        match meta.kind {
            CheckpointKind::Init => return Some("the shared initial weights, not an ingredient".into()),
            CheckpointKind::Soup => return Some("a soup, not an ingredient".into()),
            CheckpointKind::Ingredient => {}
        }
        let first = self.selected.iter().find(|(p, _)| *p != entry.path)?;
        checkpoint::incompatibility(&first.1, meta)
    }

    pub fn is_selected(&self, path: &Path) -> bool {
        self.selected.iter().any(|(p, _)| p == path)
    }

    fn toggle(&mut self, i: usize) {
        let Some(entry) = self.entries.get(i).cloned() else { return };
        let EntryKind::Checkpoint(Ok(meta)) = &entry.kind else {
            if let Some(why) = self.blocked(&entry) {
                self.message = Some(format!("{}: {why}", entry.name));
            }
            return;
        };
        if let Some(pos) = self.selected.iter().position(|(p, _)| *p == entry.path) {
            self.selected.remove(pos);
            self.message = None;
        } else if let Some(why) = self.blocked(&entry) {
            self.message = Some(format!("{} cannot join the selection: {why}", entry.name));
        } else {
            let first = self.selected.is_empty();
            self.selected.push((entry.path.clone(), meta.clone()));
            self.message = None;
            if first {
                // The first ingredient names the dataset; the defaults follow it.
                let strategy = self.value("strategy").to_string();
                self.reset_fields(&strategy, Some(&meta.dataset));
            }
        }
    }

    /// Selects every ingredient of this directory that fits; if all already are, clears them.
    fn select_all(&mut self) {
        let here: Vec<usize> = (0..self.entries.len())
            .filter(|&i| matches!(self.entries[i].kind, EntryKind::Checkpoint(Ok(_))) && (self.is_selected(&self.entries[i].path) || self.blocked(&self.entries[i]).is_none()))
            .collect();
        let all_in = here.iter().all(|&i| self.is_selected(&self.entries[i].path)) && !here.is_empty();
        if all_in {
            let paths: BTreeSet<PathBuf> = here.iter().map(|&i| self.entries[i].path.clone()).collect();
            self.selected.retain(|(p, _)| !paths.contains(p));
            return;
        }
        for i in here {
            if !self.is_selected(&self.entries[i].path) && self.blocked(&self.entries[i]).is_none() {
                self.toggle(i);
            }
        }
    }

    /// Overrides the dataset the ingredients' metadata named.
    pub fn set_dataset(&mut self, dataset: &str) {
        let strategy = self.value("strategy").to_string();
        self.reset_fields(&strategy, Some(dataset));
    }

    /// The value of form field `name` ("" when the strategy has no such field).
    pub fn value(&self, name: &str) -> &str {
        self.fields.iter().find(|f| f.name == name).map_or("", |f| f.value.as_str())
    }

    /// Refills the form with `strategy`'s defaults for the selection's architecture and dataset,
    /// keeping the dataset and device already chosen.
    fn reset_fields(&mut self, strategy: &str, dataset: Option<&str>) {
        let dataset = dataset.map(str::to_string).unwrap_or_else(|| self.value("dataset").to_string());
        let dataset = if dataset.is_empty() { self.selected.first().map(|(_, m)| m.dataset.clone()).unwrap_or_default() } else { dataset };
        let device = if self.value("device").is_empty() { self.devices.first().cloned().unwrap_or_else(|| "cpu".into()) } else { self.value("device").to_string() };
        let choice = |options: &[&str]| FieldKind::Choice(options.iter().map(|o| o.to_string()).collect());
        let mut fields = vec![
            Field { name: "dataset", value: dataset.clone(), kind: FieldKind::Text, help: "dataset name (from the ingredients' metadata)" },
            Field { name: "strategy", value: strategy.into(), kind: choice(STRATEGIES), help: "left/right to change" },
            Field { name: "device", value: device, kind: FieldKind::Choice(self.devices.clone()), help: "cpu or a CUDA device found" },
        ];
        let arch = self.selected.first().map(|(_, m)| m.arch.arch).unwrap_or(crate::model::Arch::Gcn);
        if let Ok(s) = <Strategy as clap::ValueEnum>::from_str(strategy, true) {
            let d = SoupSettings::defaults(s, arch, &dataset);
            let num = |name, v: String, help| Field { name, value: v, kind: FieldKind::Number, help };
            match s {
                Strategy::Gis => fields.push(num("granularity", d.granularity.to_string(), "interpolation points in [0, 1]")),
                Strategy::Ls | Strategy::Pls => {
                    fields.push(num("epochs", d.epochs.to_string(), "one SGD step per epoch"));
                    fields.push(num("lr", d.lr.to_string(), "SGD learning rate (large: the paper uses 5 to 110)"));
                    fields.push(num("t0", d.t0.to_string(), "cosine warm-restart period, epochs"));
                    if s == Strategy::Pls {
                        fields.push(num("parts", d.parts.to_string(), "K: METIS parts"));
                        fields.push(num("sample", d.sample.to_string(), "R: parts sampled per epoch"));
                    }
                    fields.push(Field { name: "init", value: format!("{:?}", d.init).to_lowercase(), kind: choice(INITS), help: "mixing-logit initialisation" });
                    fields.push(Field { name: "mix", value: "tensor".into(), kind: choice(MIXES), help: "one weight per tensor (paper), layer or ingredient" });
                    fields.push(Field { name: "dropout", value: "on".into(), kind: choice(ON_OFF), help: "dropout while fitting (the reference keeps it on)" });
                    fields.push(num("holdout", d.holdout.to_string(), "fraction of val nodes held out for early stopping (0: off)"));
                    fields.push(num("patience", d.patience.to_string(), "epochs without gain before stopping (with holdout)"));
                    fields.push(num("seed", d.seed.to_string(), "random seed"));
                }
                _ => {}
            }
        }
        self.fields = fields;
        self.field = self.field.min(self.fields.len() - 1);
    }

    /// The settings the form describes, or what is wrong with them.
    pub fn settings(&self) -> Result<Vec<SoupSettings>, String> {
        let (_, first) = self.selected.first().ok_or("select at least one ingredient (space)")?;
        let dataset = self.value("dataset");
        if dataset.trim().is_empty() {
            return Err("dataset: empty".into());
        }
        let strategy = self.value("strategy");
        if strategy == "all" {
            return Ok(SoupSettings::all_defaults(first.arch.arch, dataset));
        }
        let s = <Strategy as clap::ValueEnum>::from_str(strategy, true)?;
        let mut d = SoupSettings::defaults(s, first.arch.arch, dataset);
        for f in &self.fields {
            let bad = |what: &str| format!("{}: {what}, got {:?}", f.name, f.value);
            let int = || f.value.trim().parse::<usize>().map_err(|_| bad("a whole number"));
            let real = || f.value.trim().parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad("a number"));
            match f.name {
                "granularity" => d.granularity = int()?,
                "epochs" => d.epochs = int()?,
                "lr" => d.lr = real()?,
                "t0" => d.t0 = int()?,
                "parts" => d.parts = int()?,
                "sample" => d.sample = int()?,
                "holdout" => d.holdout = real()?,
                "patience" => d.patience = int()?,
                "seed" => d.seed = f.value.trim().parse().map_err(|_| bad("a whole number"))?,
                "init" => d.init = match f.value.as_str() { "uniform" => InitKind::Uniform, "normal" => InitKind::Normal, _ => InitKind::Ones },
                "mix" => d.mix = match f.value.as_str() { "layer" => MixGranularity::Layer, "ingredient" => MixGranularity::Ingredient, _ => MixGranularity::Tensor },
                "dropout" => d.dropout = f.value == "on",
                _ => {}
            }
        }
        if d.holdout > 0.0 && d.patience == 0 {
            return Err("patience: must be at least 1 with a holdout".into());
        }
        d.validate().map_err(|e| e.to_string())?;
        Ok(vec![d])
    }

    pub fn on_key(&mut self, key: super::app::Key) -> SetupAction {
        use super::app::Key;
        // A message answers the key before; the next key makes it stale.
        self.message = None;
        match (self.focus, key) {
            (_, Key::Tab) => {
                self.focus = if self.focus == SetupFocus::Browser { SetupFocus::Form } else { SetupFocus::Browser };
                SetupAction::None
            }
            (SetupFocus::Browser, Key::Char('q')) => SetupAction::Quit,
            (SetupFocus::Browser, Key::Esc) => SetupAction::Back,
            (SetupFocus::Browser, Key::Up | Key::Char('k')) => {
                self.cursor = self.cursor.saturating_sub(1);
                SetupAction::None
            }
            (SetupFocus::Browser, Key::Down | Key::Char('j')) => {
                self.cursor = (self.cursor + 1).min(self.entries.len().saturating_sub(1));
                SetupAction::None
            }
            (SetupFocus::Browser, Key::Backspace | Key::Left | Key::Char('h')) => {
                if let Some(parent) = self.dir.parent().map(Path::to_path_buf) {
                    let from = self.dir.clone();
                    self.open(&parent);
                    self.cursor = self.entries.iter().position(|e| e.path == from).unwrap_or(0);
                }
                SetupAction::None
            }
            (SetupFocus::Browser, Key::Enter | Key::Right | Key::Char('l') | Key::Char(' ')) => {
                match self.entries.get(self.cursor).map(|e| (e.kind.clone(), e.path.clone())) {
                    Some((EntryKind::Parent | EntryKind::Dir, path)) if key != Key::Char(' ') => self.open(&path),
                    Some((EntryKind::Checkpoint(_), _)) if !matches!(key, Key::Right | Key::Char('l')) => {
                        self.toggle(self.cursor);
                        if key == Key::Char(' ') {
                            self.cursor = (self.cursor + 1).min(self.entries.len().saturating_sub(1));
                        }
                    }
                    _ => {}
                }
                SetupAction::None
            }
            (SetupFocus::Browser, Key::Char('a')) => {
                self.select_all();
                SetupAction::None
            }
            (SetupFocus::Browser, Key::Char('i')) => {
                if self.selected.len() < 2 {
                    self.message = Some("select at least two ingredients to compare them".into());
                    SetupAction::None
                } else {
                    SetupAction::Inspect(self.selected.iter().map(|(p, _)| p.clone()).collect())
                }
            }
            (SetupFocus::Browser, Key::Char('s')) | (SetupFocus::Form, Key::Enter) => self.start(),
            (SetupFocus::Form, Key::Esc) => {
                self.focus = SetupFocus::Browser;
                SetupAction::None
            }
            (SetupFocus::Form, Key::Up) => {
                self.field = self.field.saturating_sub(1);
                SetupAction::None
            }
            (SetupFocus::Form, Key::Down) => {
                self.field = (self.field + 1).min(self.fields.len().saturating_sub(1));
                SetupAction::None
            }
            (SetupFocus::Form, Key::Left | Key::Right) => {
                let forward = key == Key::Right;
                let Some(f) = self.fields.get_mut(self.field) else { return SetupAction::None };
                if let FieldKind::Choice(options) = &f.kind {
                    let at = options.iter().position(|o| *o == f.value).unwrap_or(0);
                    let next = if forward { (at + 1) % options.len() } else { (at + options.len() - 1) % options.len() };
                    f.value = options[next].clone();
                    if f.name == "strategy" {
                        let s = f.value.clone();
                        self.reset_fields(&s, None);
                    }
                }
                SetupAction::None
            }
            (SetupFocus::Form, Key::Backspace) => {
                if let Some(f) = self.fields.get_mut(self.field).filter(|f| !matches!(f.kind, FieldKind::Choice(_))) {
                    f.value.pop();
                }
                SetupAction::None
            }
            (SetupFocus::Form, Key::Char(c)) => {
                match self.fields.get_mut(self.field) {
                    Some(f) if f.kind == FieldKind::Text && !c.is_control() => f.value.push(c),
                    Some(f) if f.kind == FieldKind::Number && (c.is_ascii_digit() || ".e-+".contains(c)) => f.value.push(c),
                    Some(f) if matches!(f.kind, FieldKind::Choice(_)) && c == 'q' => return SetupAction::Quit,
                    _ => {}
                }
                SetupAction::None
            }
            _ => SetupAction::None,
        }
    }

    fn start(&mut self) -> SetupAction {
        match self.settings() {
            Ok(settings) => SetupAction::Start {
                ingredients: self.selected.iter().map(|(p, _)| p.clone()).collect(),
                dataset: self.value("dataset").trim().to_string(),
                device: self.value("device").to_string(),
                settings,
            },
            Err(e) => {
                self.message = Some(format!("cannot start: {e}"));
                SetupAction::None
            }
        }
    }
}
