//! Recipes: a soup job described in a file, to rerun and share (as mergekit describes a merge).
//!
//! A TOML recipe names the ingredients, the dataset, the strategies and any setting of
//! [`SETTINGS`] (the one definition of a setting: recipes, flags, the workbench's form and
//! reports all read it); a report (`report-<strategy>.json`) is a recipe too, rerunning its
//! strategy on its ingredients and dataset with every setting it ran with. Command-line flags
//! override both. The layout, with every key optional:
//!
//! ```toml
//! description = "what this soup is"
//! ingredients = "runs/arxiv-gcn"   # a directory, one checkpoint, or a list of checkpoints
//! dataset = "ogbn-arxiv"
//! data_dir = "datasets"            # where named datasets live
//! split_seed = 0
//! strategy = "all"                 # one name, "all", or a list: ["ls", "pls"]
//! device = "auto"
//! out = "soups/arxiv-gcn"          # the run directory
//!
//! [settings]                       # for every strategy that reads them
//! dropout = true
//!
//! [pls]                            # for one strategy, over [settings]
//! lr = 7.5
//! ```
//!
//! Relative paths are relative to the recipe's own directory (a recipe moves with its files).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::engine::report::SoupReport;
use crate::model::Arch;
use crate::soup::{Given, Setting, SettingError, SoupSettings, Strategy, SETTINGS};

/// The most bytes of a recipe or report read (a report with a long history is a few MB).
const MAX_RECIPE_BYTES: u64 = 256 << 20;

/// The ingredients a recipe names.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingredients {
    /// A directory (its manifest order) or one checkpoint.
    Path(PathBuf),
    /// These checkpoints, in this order.
    Files(Vec<PathBuf>),
}

/// A setting and its value, as [`SoupSettings::with`] takes them.
pub type Overrides = Vec<Given>;

/// A soup job read from a file; what it leaves out comes from the command line or the defaults.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The file it was read from.
    pub path: PathBuf,
    pub description: Option<String>,
    pub ingredients: Option<Ingredients>,
    pub dataset: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub split_seed: Option<u64>,
    pub strategies: Option<Vec<Strategy>>,
    pub device: Option<String>,
    pub out: Option<PathBuf>,
    /// `[settings]`: for every strategy that reads them.
    pub settings: Overrides,
    /// `[<strategy>]`: for that strategy only, applied over `settings`.
    pub per_strategy: Vec<(Strategy, Overrides)>,
}

const TOP_KEYS: &[&str] = &[
    "description",
    "ingredients",
    "dataset",
    "data_dir",
    "split_seed",
    "strategy",
    "device",
    "out",
    "settings",
];

impl Recipe {
    /// What the recipe sets for `strategy`: `[settings]`, then its `[<strategy>]` table.
    pub fn settings_of(&self, strategy: Strategy) -> Overrides {
        let own =
            self.per_strategy.iter().filter(|(s, _)| *s == strategy).flat_map(|(_, o)| o.iter());
        self.settings.iter().chain(own).cloned().collect()
    }

    /// Reads a recipe: a report when the file is JSON (`.json`), TOML otherwise.
    pub fn read(path: &Path) -> Result<Recipe> {
        let text = crate::fsio::read_text(path, MAX_RECIPE_BYTES).context("reading the recipe")?;
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            let report: SoupReport = serde_json::from_str(&text).with_context(|| {
                format!("{}: not a gnn-soup report (report-<strategy>.json)", path.display())
            })?;
            return Ok(Recipe::from_report(&report, path));
        }
        Recipe::from_toml(&text, path)
    }

    /// Parses a TOML recipe; `path` names it in errors and anchors its relative paths.
    pub fn from_toml(text: &str, path: &Path) -> Result<Recipe> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            anyhow::anyhow!("{}: not valid TOML: {}", path.display(), e.to_string().trim_end())
        })?;
        let here = path.parent().unwrap_or(Path::new(""));
        let place = |p: &str| -> PathBuf { here.join(p) };
        let wrong = |key: &str, expected: &str, got: &toml::Value| {
            anyhow::anyhow!("{}: `{key}` should be {expected}, got {got}", path.display())
        };
        let mut r = Recipe::empty(path);
        for (key, value) in &table {
            let text =
                || value.as_str().map(str::to_string).ok_or_else(|| wrong(key, "a string", value));
            match key.as_str() {
                "description" => r.description = Some(text()?),
                "dataset" => r.dataset = Some(text()?),
                "device" => r.device = Some(text()?),
                "data_dir" => r.data_dir = Some(place(&text()?)),
                "out" => r.out = Some(place(&text()?)),
                "split_seed" => {
                    r.split_seed = Some(
                        value
                            .as_integer()
                            .and_then(|v| u64::try_from(v).ok())
                            .ok_or_else(|| wrong(key, "a whole number", value))?,
                    )
                }
                "ingredients" => {
                    r.ingredients = Some(match value {
                        toml::Value::String(s) => Ingredients::Path(place(s)),
                        toml::Value::Array(items) => Ingredients::Files(
                            items
                                .iter()
                                .map(|v| {
                                    v.as_str().map(&place).ok_or_else(|| {
                                        wrong(key, "a path or a list of paths", value)
                                    })
                                })
                                .collect::<Result<_>>()?,
                        ),
                        other => return Err(wrong(key, "a path or a list of paths", other)),
                    })
                }
                "strategy" => {
                    r.strategies = Some(
                        strategies_from(value)
                            .with_context(|| format!("{}: `strategy`", path.display()))?,
                    )
                }
                "settings" => {
                    r.settings = settings_from(value, None)
                        .with_context(|| format!("{}: [settings]", path.display()))?
                }
                other => {
                    match Strategy::from_name(other) {
                        Some(s) => r.per_strategy.push((
                            s,
                            settings_from(value, Some(s))
                                .with_context(|| format!("{}: [{s}]", path.display()))?,
                        )),
                        None => {
                            let strategies: Vec<&str> =
                                Strategy::ALL.iter().map(|s| s.name()).collect();
                            bail!("{}: unknown key `{other}` (expected {}, or a table per strategy: {})", path.display(), TOP_KEYS.join(", "), strategies.join(", "))
                        }
                    }
                }
            }
        }
        Ok(r)
    }

    /// A report as a recipe: its strategy on its ingredients and dataset, with every setting it
    /// ran with (the device is left to the command line: results do not depend on it). The engine
    /// refuses the rerun if the dataset no longer loads as the ingredients' fingerprint.
    pub fn from_report(report: &SoupReport, path: &Path) -> Recipe {
        let settings: Overrides = SETTINGS
            .iter()
            .filter(|s| s.applies_to(report.strategy))
            .map(|s| (s, (s.get)(&report.settings)))
            .collect();
        Recipe {
            description: Some(format!(
                "rerun of {} ({} on {})",
                path.display(),
                report.strategy,
                report.dataset
            )),
            ingredients: Some(Ingredients::Files(
                report.ingredients.iter().map(|i| i.path.clone()).collect(),
            )),
            dataset: Some(report.dataset.clone()),
            strategies: Some(vec![report.strategy]),
            per_strategy: vec![(report.strategy, settings)],
            ..Recipe::empty(path)
        }
    }

    fn empty(path: &Path) -> Recipe {
        Recipe {
            path: path.to_path_buf(),
            description: None,
            ingredients: None,
            dataset: None,
            data_dir: None,
            split_seed: None,
            strategies: None,
            device: None,
            out: None,
            settings: Vec::new(),
            per_strategy: Vec::new(),
        }
    }
}

/// The settings of `strategy` on `arch`/`dataset`: its defaults (the paper's row where it has
/// one), then the recipe's `[settings]` and `[<strategy>]` (when there is a recipe), then
/// `flags`, with what they imply ([`Setting::with_implied`]); not yet checked together (a form
/// shows them before the user fixes one). The one place the layers meet: the command line, the
/// workbench's form and the demo all go through it ([`resolve_settings`]).
pub fn layer_settings(
    recipe: Option<&Recipe>,
    strategy: Strategy,
    arch: Arch,
    dataset: &str,
    flags: &[Given],
) -> Result<SoupSettings, SettingError> {
    let mut s = SoupSettings::defaults(strategy, arch, dataset);
    let mut given: Overrides = Vec::new();
    if let Some(r) = recipe {
        given.extend(r.settings_of(strategy));
        s.source = format!("recipe {} over {}", r.path.display(), s.source);
    }
    given.extend(flags.iter().cloned());
    s.with(&Setting::with_implied(&given))
}

/// [`layer_settings`], validated together.
pub fn resolve_settings(
    recipe: Option<&Recipe>,
    strategy: Strategy,
    arch: Arch,
    dataset: &str,
    flags: &[Given],
) -> Result<SoupSettings> {
    let s = layer_settings(recipe, strategy, arch, dataset, flags)?;
    s.validate().with_context(|| match recipe {
        Some(r) => format!("invalid settings for {strategy} (recipe {})", r.path.display()),
        None => format!("invalid settings for {strategy}"),
    })?;
    Ok(s)
}

/// `strategy = "ls"`, `"all"` or `["ls", "pls"]`.
fn strategies_from(value: &toml::Value) -> Result<Vec<Strategy>> {
    let one = |v: &toml::Value| -> Result<Vec<Strategy>> {
        let name = v.as_str().with_context(|| format!("expected a strategy name, got {v}"))?;
        if name.trim().eq_ignore_ascii_case("all") {
            return Ok(Strategy::ALL.to_vec());
        }
        let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
        Strategy::from_name(name).map(|s| vec![s]).with_context(|| {
            format!("unknown strategy {name:?}: expected {} or all", names.join(", "))
        })
    };
    let mut out: Vec<Strategy> = Vec::new();
    match value {
        toml::Value::Array(items) if !items.is_empty() => {
            for s in items.iter().map(one).collect::<Result<Vec<_>>>()?.into_iter().flatten() {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        toml::Value::Array(_) => bail!("the list is empty"),
        v => out = one(v)?,
    }
    Ok(out)
}

/// A table of settings; with `only`, each must be one that strategy reads.
fn settings_from(value: &toml::Value, only: Option<Strategy>) -> Result<Overrides> {
    let table =
        value.as_table().with_context(|| format!("expected a table of settings, got {value}"))?;
    let known = || SETTINGS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ");
    table
        .iter()
        .map(|(key, v)| {
            let setting = Setting::by_name(key)
                .with_context(|| format!("unknown setting `{key}` (settings: {})", known()))?;
            if let Some(strategy) = only.filter(|s| !setting.applies_to(*s)) {
                let readers: Vec<&str> = setting.strategies.iter().map(|s| s.name()).collect();
                bail!("{strategy} does not read `{key}` (read by {})", readers.join(", "));
            }
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => bail!("`{key}`: expected {}, got {other}", setting.range()),
            };
            let value =
                setting.parse(&text).map_err(|e| anyhow::anyhow!("`{key}`: {}", e.problem))?;
            Ok((setting, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soup::Value;

    fn parse(text: &str) -> Result<Recipe> {
        Recipe::from_toml(text, Path::new("/recipes/r.toml"))
    }

    #[test]
    fn a_recipe_sets_paths_strategies_and_settings_in_layers() {
        let r = parse(
            "description = \"d\"\ningredients = \"../runs/x\"\ndataset = \"cora\"\nstrategy = [\"pls\", \"ls\", \"pls\"]\nout = \"soups\"\n\
             [settings]\nlr = 20\ndropout = false\n[pls]\nlr = 7.5\nparts = 16\n",
        )
        .unwrap();
        assert_eq!(r.ingredients, Some(Ingredients::Path(PathBuf::from("/recipes/../runs/x"))));
        assert_eq!(r.out, Some(PathBuf::from("/recipes/soups")));
        assert_eq!(r.strategies, Some(vec![Strategy::Pls, Strategy::Ls]));
        let ls = resolve_settings(Some(&r), Strategy::Ls, Arch::Gcn, "cora", &[]).unwrap();
        assert_eq!((ls.lr, ls.dropout, ls.parts), (20.0, false, 32));
        let pls = resolve_settings(Some(&r), Strategy::Pls, Arch::Gcn, "cora", &[]).unwrap();
        assert_eq!((pls.lr, pls.dropout, pls.parts), (7.5, false, 16));
        assert!(
            pls.source.starts_with("recipe /recipes/r.toml over general defaults"),
            "{}",
            pls.source
        );
        // A flag beats both layers.
        let flag = [(Setting::by_name("lr").unwrap(), Value::Real(3.0))];
        assert_eq!(
            resolve_settings(Some(&r), Strategy::Pls, Arch::Gcn, "cora", &flag).unwrap().lr,
            3.0
        );
        // What the recipe leaves out is the paper's row where it has one.
        let arxiv = resolve_settings(Some(&r), Strategy::Ls, Arch::Gcn, "ogbn-arxiv", &[]).unwrap();
        assert_eq!((arxiv.lr, arxiv.epochs), (20.0, 250));
    }

    #[test]
    fn auto_is_the_default_where_nobody_tuned_and_an_lr_means_the_papers_sgd() {
        use crate::soup::OptimizerKind::{Auto, Sgd};
        let with = |dataset: &str, given: &[(&str, Value)]| {
            let flags: Overrides =
                given.iter().map(|(n, v)| (Setting::by_name(n).unwrap(), v.clone())).collect();
            let s = resolve_settings(None, Strategy::Ls, Arch::Gcn, dataset, &flags).unwrap();
            (s.optimizer, s.dropout)
        };
        // No row in the paper's table: Adam, dropout off while fitting.
        assert_eq!(with("cora", &[]), (Auto, false));
        assert_eq!(with("npz:mine.npz", &[]), (Auto, false));
        // The paper's row: its tuned SGD, with dropout as the reference fits.
        assert_eq!(with("ogbn-arxiv", &[]), (Sgd, true));
        // A learning rate is for SGD; so is dropout, unless it is given.
        assert_eq!(with("cora", &[("lr", Value::Real(30.0))]), (Sgd, true));
        assert_eq!(
            with("cora", &[("lr", Value::Real(30.0)), ("dropout", Value::Switch(false))]),
            (Sgd, false)
        );
        assert_eq!(with("cora", &[("optimizer", Value::Choice("sgd"))]), (Sgd, true));
        assert_eq!(with("ogbn-arxiv", &[("optimizer", Value::Choice("auto"))]), (Auto, false));
        // What is given has the last word.
        assert_eq!(
            with("cora", &[("lr", Value::Real(30.0)), ("optimizer", Value::Choice("auto"))]),
            (Auto, false)
        );
        assert_eq!(with("cora", &[("dropout", Value::Switch(true))]), (Auto, true));
        // A recipe's settings imply the same as flags; the demo's lr 40 keeps it on SGD.
        let demo = crate::demo::recipe();
        let s = resolve_settings(Some(&demo), Strategy::Ls, Arch::Gcn, "csbm", &[]).unwrap();
        assert_eq!((s.optimizer, s.dropout, s.lr), (Sgd, false, 40.0));
        // A flag's --lr over a recipe's auto is not silently ignored: it means SGD; the recipe's
        // own dropout still holds.
        let lr = [(Setting::by_name("lr").unwrap(), Value::Real(30.0))];
        let r = parse("[settings]\noptimizer = \"auto\"").unwrap();
        let s = resolve_settings(Some(&r), Strategy::Ls, Arch::Gcn, "cora", &lr).unwrap();
        assert_eq!((s.optimizer, s.dropout, s.lr), (Sgd, true, 30.0));
        let r = parse("[settings]\noptimizer = \"auto\"\ndropout = false").unwrap();
        let s = resolve_settings(Some(&r), Strategy::Ls, Arch::Gcn, "cora", &lr).unwrap();
        assert_eq!((s.optimizer, s.dropout), (Sgd, false));
    }

    #[test]
    fn mistakes_are_named_with_the_file_and_the_key() {
        let err = |t: &str| format!("{:#}", parse(t).unwrap_err());
        assert!(err("lr = 5").contains("/recipes/r.toml: unknown key `lr`"), "{}", err("lr = 5"));
        assert!(err("[settings]\nlearning_rate = 5").contains("unknown setting `learning_rate`"));
        assert!(
            err("[settings]\nlr = -1").contains("`lr`: expected a number above 0, got \"-1\""),
            "{}",
            err("[settings]\nlr = -1")
        );
        assert!(
            err("[gis]\nlr = 5").contains("[gis]: gis does not read `lr` (read by ls, pls)"),
            "{}",
            err("[gis]\nlr = 5")
        );
        assert!(err("strategy = \"best\"").contains("unknown strategy \"best\""));
        assert!(err("strategy = []").contains("the list is empty"));
        assert!(err("ingredients = 3")
            .contains("`ingredients` should be a path or a list of paths, got 3"));
        assert!(err("dataset = [").contains("not valid TOML"));
        // R > K is caught when the settings are put together.
        let r = parse("[pls]\nsample = 40\nparts = 8").unwrap();
        assert!(format!(
            "{:#}",
            resolve_settings(Some(&r), Strategy::Pls, Arch::Gcn, "cora", &[]).unwrap_err()
        )
        .contains("cannot exceed K"));
    }
}
