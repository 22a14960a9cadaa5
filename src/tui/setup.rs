//! The setup screen's state: a checkpoint browser with multi-select, and the strategy form.
//!
//! The browser reads only checkpoint headers ([`checkpoint::read_meta`]: a few KB per file), so
//! a directory of large models lists at once. A checkpoint that cannot join the current selection (another architecture, other
//! data, another shared init, not an ingredient, unreadable) is listed with the reason and
//! refuses selection. The form holds the chosen strategy's settings as text, one field per entry
//! of [`SETTINGS`] the strategy reads, filled with its defaults and validated on every key by
//! the same validator as the command line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::keymap::Command;
use super::keys::Key;
use crate::checkpoint::{self, CheckpointKind, CheckpointMeta};
use crate::model::Arch;
use crate::recipe::{layer_settings, Overrides, Recipe};
use crate::soup::{Setting, SettingError, SettingKind, SoupSettings, Strategy, Value, SETTINGS};

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
    Start {
        ingredients: Vec<PathBuf>,
        dataset: String,
        device: String,
        settings: Vec<SoupSettings>,
    },
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

/// What a form field sets.
#[derive(Debug, Clone, Copy)]
pub enum FieldTarget {
    Dataset,
    Strategy,
    Device,
    Setting(&'static Setting),
}

#[derive(Debug, Clone)]
pub struct Field {
    pub target: FieldTarget,
    pub value: String,
    pub kind: FieldKind,
}

impl Field {
    pub fn name(&self) -> &'static str {
        match self.target {
            FieldTarget::Dataset => "dataset",
            FieldTarget::Strategy => "strategy",
            FieldTarget::Device => "device",
            FieldTarget::Setting(s) => s.name,
        }
    }

    pub fn help(&self) -> String {
        match self.target {
            FieldTarget::Dataset => "dataset name (from the ingredients' metadata)".into(),
            FieldTarget::Strategy => "left/right to change".into(),
            FieldTarget::Device => "cpu or a CUDA device found".into(),
            FieldTarget::Setting(s) => s.help_with_default(),
        }
    }
}

/// Why the form cannot start, and which field is wrong (None: not a field, e.g. no selection).
#[derive(Debug, Clone, PartialEq)]
pub struct FormError {
    pub field: Option<&'static str>,
    pub message: String,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field {
            Some(name) => write!(f, "{name}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The devices the form offers: the one asked for on the command line first (so `--device cuda`
/// is what a run started from the form uses), then "cpu" and each CUDA device found.
pub fn device_choices(preferred: &str, cuda_devices: usize) -> Vec<String> {
    let mut all = vec![preferred.to_string()];
    for d in
        std::iter::once("cpu".to_string()).chain((0..cuda_devices).map(|i| format!("cuda:{i}")))
    {
        if !all.contains(&d) {
            all.push(d);
        }
    }
    all
}

/// Strategy names the form offers: each one, or all with their defaults.
pub fn strategy_names() -> Vec<String> {
    let learned_first = Strategy::ALL
        .iter()
        .filter(|s| s.is_learned())
        .chain(Strategy::ALL.iter().filter(|s| !s.is_learned()));
    learned_first.map(|s| s.name().to_string()).chain(std::iter::once("all".to_string())).collect()
}

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
    /// The recipe and the flags the workbench was started with: the form's settings are layered
    /// from them as the command line's are ([`layer_settings`]).
    pub recipe: Option<Recipe>,
    pub flags: Overrides,
}

impl Setup {
    /// Opens the browser at `dir`, selecting every ingredient there that fits with the first.
    /// `devices` are offered in that order, the first chosen.
    pub fn new(dir: &Path, strategy: &str, devices: Vec<String>) -> Setup {
        Setup::with_given(dir, strategy, devices, None, Vec::new())
    }

    /// As [`Setup::new`], with the form's settings layered from a recipe and flags.
    pub fn with_given(
        dir: &Path,
        strategy: &str,
        devices: Vec<String>,
        recipe: Option<Recipe>,
        flags: Overrides,
    ) -> Setup {
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
            recipe,
            flags,
        };
        s.open(dir);
        s.select_all();
        s.cursor =
            s.entries.iter().position(|e| matches!(e.kind, EntryKind::Checkpoint(_))).unwrap_or(0);
        s.reset_fields(
            if strategy_names().iter().any(|n| n == strategy) { strategy } else { "ls" },
            None,
        );
        s
    }

    /// Keeps only `paths` selected (a recipe's or a report's list of ingredients, when their
    /// directory holds others too).
    pub fn keep_selected(&mut self, paths: &[PathBuf]) {
        let wanted: BTreeSet<PathBuf> =
            paths.iter().map(|p| p.canonicalize().unwrap_or_else(|_| p.clone())).collect();
        self.selected
            .retain(|(p, _)| wanted.contains(&p.canonicalize().unwrap_or_else(|_| p.clone())));
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
            self.entries.push(Entry {
                path: parent.to_path_buf(),
                name: "../".into(),
                kind: EntryKind::Parent,
            });
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
            CheckpointKind::Init => {
                return Some("the shared initial weights, not an ingredient".into())
            }
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
            .filter(|&i| {
                matches!(self.entries[i].kind, EntryKind::Checkpoint(Ok(_)))
                    && (self.is_selected(&self.entries[i].path)
                        || self.blocked(&self.entries[i]).is_none())
            })
            .collect();
        let all_in =
            here.iter().all(|&i| self.is_selected(&self.entries[i].path)) && !here.is_empty();
        if all_in {
            let paths: BTreeSet<PathBuf> =
                here.iter().map(|&i| self.entries[i].path.clone()).collect();
            self.selected.retain(|(p, _)| !paths.contains(p));
            return;
        }
        for i in here {
            if !self.is_selected(&self.entries[i].path) && self.blocked(&self.entries[i]).is_none()
            {
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
        self.fields.iter().find(|f| f.name() == name).map_or("", |f| f.value.as_str())
    }

    fn arch(&self) -> Arch {
        self.selected.first().map(|(_, m)| m.arch.arch).unwrap_or(Arch::Gcn)
    }

    /// Refills the form with `strategy`'s defaults (and the command line's settings) for the
    /// selection's architecture and dataset, keeping the dataset and device already chosen.
    fn reset_fields(&mut self, strategy: &str, dataset: Option<&str>) {
        let dataset =
            dataset.map(str::to_string).unwrap_or_else(|| self.value("dataset").to_string());
        let dataset = if dataset.is_empty() {
            self.selected.first().map(|(_, m)| m.dataset.clone()).unwrap_or_default()
        } else {
            dataset
        };
        let device = if self.value("device").is_empty() {
            self.devices.first().cloned().unwrap_or_else(|| "cpu".into())
        } else {
            self.value("device").to_string()
        };
        let mut fields = vec![
            Field { target: FieldTarget::Dataset, value: dataset.clone(), kind: FieldKind::Text },
            Field {
                target: FieldTarget::Strategy,
                value: strategy.into(),
                kind: FieldKind::Choice(strategy_names()),
            },
            Field {
                target: FieldTarget::Device,
                value: device,
                kind: FieldKind::Choice(self.devices.clone()),
            },
        ];
        if let Some(s) = Strategy::from_name(strategy) {
            // A layer that does not fit (a value out of range for this dataset's defaults)
            // shows the defaults; starting then names the problem.
            let d = self
                .layered(s, self.arch(), &dataset)
                .unwrap_or_else(|_| SoupSettings::defaults(s, self.arch(), &dataset));
            for setting in SETTINGS.iter().filter(|x| x.applies_to(s)) {
                let value = (setting.get)(&d);
                let kind = match setting.kind {
                    SettingKind::Choice(names) => {
                        FieldKind::Choice(names.iter().map(|n| n.to_string()).collect())
                    }
                    SettingKind::Switch => FieldKind::Choice(vec!["on".into(), "off".into()]),
                    _ => FieldKind::Number,
                };
                fields.push(Field {
                    target: FieldTarget::Setting(setting),
                    value: value.to_string(),
                    kind,
                });
            }
        }
        self.fields = fields;
        self.field = self.field.min(self.fields.len() - 1);
    }

    /// `strategy`'s settings from the defaults, the recipe and the flags (not yet validated).
    fn layered(
        &self,
        strategy: Strategy,
        arch: Arch,
        dataset: &str,
    ) -> Result<SoupSettings, SettingError> {
        layer_settings(self.recipe.as_ref(), strategy, arch, dataset, &self.flags)
    }

    /// The settings the form describes, or what is wrong with them (and in which field).
    pub fn settings(&self) -> Result<Vec<SoupSettings>, FormError> {
        let not_field = |message: &str| FormError { field: None, message: message.into() };
        let (_, first) = self
            .selected
            .first()
            .ok_or_else(|| not_field("select at least one ingredient (space)"))?;
        let dataset = self.value("dataset");
        if dataset.trim().is_empty() {
            return Err(FormError { field: Some("dataset"), message: "empty".into() });
        }
        let strategy = self.value("strategy");
        if strategy == "all" {
            // Each with its defaults, and what the command line (or the demo's recipe) set.
            let to_form = |e: crate::soup::SettingError| FormError {
                field: Some(e.setting),
                message: e.problem,
            };
            return Strategy::ALL
                .iter()
                .map(|&s| {
                    let s = self.layered(s, first.arch.arch, dataset).map_err(to_form)?;
                    s.validate().map_err(to_form)?;
                    Ok(s)
                })
                .collect();
        }
        let s = Strategy::from_name(strategy).ok_or_else(|| FormError {
            field: Some("strategy"),
            message: format!("unknown strategy {strategy:?}"),
        })?;
        // The fields hold every setting the strategy reads, layered when the form was filled.
        let mut settings = SoupSettings::defaults(s, first.arch.arch, dataset);
        if let Some(r) = &self.recipe {
            settings.source = format!("recipe {} over {}", r.path.display(), settings.source);
        }
        let to_form =
            |e: crate::soup::SettingError| FormError { field: Some(e.setting), message: e.problem };
        for f in &self.fields {
            if let FieldTarget::Setting(setting) = f.target {
                let v = setting.parse(&f.value).map_err(to_form)?;
                settings.set(setting, &v).map_err(to_form)?;
            }
        }
        settings.validate().map_err(to_form)?;
        Ok(vec![settings])
    }

    /// Carries out a command of the keymap's browser or form context (`key`: which of its keys).
    pub fn on_command(&mut self, command: Command, key: Key) -> SetupAction {
        // A message answers the key before; the next key makes it stale.
        self.message = None;
        let last = self.entries.len().saturating_sub(1);
        match command {
            Command::SwitchFocus => {
                self.focus = if self.focus == SetupFocus::Browser {
                    SetupFocus::Form
                } else {
                    SetupFocus::Browser
                };
            }
            Command::Quit => return SetupAction::Quit,
            Command::Back => return SetupAction::Back,
            Command::Move => match key.vertical() {
                Some(true) => self.cursor = self.cursor.saturating_sub(1),
                Some(false) => self.cursor = (self.cursor + 1).min(last),
                None => {}
            },
            Command::Parent => {
                if let Some(parent) = self.dir.parent().map(Path::to_path_buf) {
                    let from = self.dir.clone();
                    self.open(&parent);
                    self.cursor = self.entries.iter().position(|e| e.path == from).unwrap_or(0);
                }
            }
            Command::Activate | Command::OpenDir | Command::Toggle => {
                match self.entries.get(self.cursor).map(|e| (e.kind.clone(), e.path.clone())) {
                    Some((EntryKind::Parent | EntryKind::Dir, path))
                        if command != Command::Toggle =>
                    {
                        self.open(&path)
                    }
                    Some((EntryKind::Checkpoint(_), _)) if command != Command::OpenDir => {
                        self.toggle(self.cursor);
                        if command == Command::Toggle {
                            self.cursor = (self.cursor + 1).min(last);
                        }
                    }
                    _ => {}
                }
            }
            Command::SelectAll => self.select_all(),
            Command::Inspect if self.selected.len() < 2 => {
                self.message = Some("select at least two ingredients to compare them".into());
            }
            Command::Inspect => {
                return SetupAction::Inspect(self.selected.iter().map(|(p, _)| p.clone()).collect())
            }
            Command::Start => return self.start(),
            Command::Field if key == Key::Up => self.field = self.field.saturating_sub(1),
            Command::Field => {
                self.field = (self.field + 1).min(self.fields.len().saturating_sub(1))
            }
            Command::Choose => self.choose(key == Key::Right),
            Command::Erase => {
                if let Some(f) = self
                    .fields
                    .get_mut(self.field)
                    .filter(|f| !matches!(f.kind, FieldKind::Choice(_)))
                {
                    f.value.pop();
                }
            }
            Command::QuitOrType | Command::Type => {
                let Key::Char(c) = key else { return SetupAction::None };
                match self.fields.get_mut(self.field) {
                    Some(f) if f.kind == FieldKind::Text => f.value.push(c),
                    Some(f)
                        if f.kind == FieldKind::Number
                            && (c.is_ascii_digit() || ".e-+".contains(c)) =>
                    {
                        f.value.push(c)
                    }
                    Some(f) if matches!(f.kind, FieldKind::Choice(_)) && c == 'q' => {
                        return SetupAction::Quit
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        SetupAction::None
    }

    /// The previous or next choice of the focused choice field.
    fn choose(&mut self, forward: bool) {
        let Some(f) = self.fields.get_mut(self.field) else { return };
        if let FieldKind::Choice(options) = &f.kind {
            let at = options.iter().position(|o| *o == f.value).unwrap_or(0);
            let next = if forward {
                (at + 1) % options.len()
            } else {
                (at + options.len() - 1) % options.len()
            };
            f.value = options[next].clone();
            match f.target {
                FieldTarget::Strategy => {
                    let s = f.value.clone();
                    self.reset_fields(&s, None);
                }
                // Dropout while fitting follows the optimiser, as on the command line.
                FieldTarget::Setting(setting) if setting.name == "optimizer" => {
                    let optimizer =
                        (setting, Value::Choice(if f.value == "sgd" { "sgd" } else { "auto" }));
                    for (implied, value) in Setting::implied_by(&[optimizer]) {
                        if let Some(field) = self.fields.iter_mut().find(|x| matches!(x.target, FieldTarget::Setting(t) if t.name == implied.name)) {
                            field.value = value.to_string();
                        }
                    }
                }
                _ => {}
            }
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
