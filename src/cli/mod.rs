//! The `gnn-soup` command line: argument definitions and dispatch. Each subcommand's work lives
//! in its own module; doc comments here are the help text.

mod data_cmd;
pub(crate) mod inspect_cmd;
pub(crate) mod soup_cmd;
pub(crate) mod tui_cmd;
mod table;
mod train_cmd;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::data::DataOptions;
use crate::model::Arch;
use crate::soup::{InitKind, MixGranularity, Strategy};

#[derive(Parser, Debug)]
#[command(name = "gnn-soup", version, about = "Souping graph neural networks: Learned Souping, Partition Learned Souping and every baseline")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Inspect or fetch datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train ingredients: N models from one shared initialisation, saved as checkpoints.
    Train(TrainArgs),
    /// Print a checkpoint's metadata and tensors; for a directory, every checkpoint's metadata and
    /// how diverse the ingredients are.
    Inspect(InspectArgs),
    /// Soup ingredients with one strategy or all of them, headless, with progress bars.
    Soup(SoupArgs),
    /// Accuracy of any checkpoint on a dataset.
    Eval(EvalArgs),
    /// The terminal dashboard: soup live, or attach to a run directory written elsewhere.
    Tui(TuiArgs),
    /// The default job on the embedded synthetic dataset (what the README's main command runs).
    Demo(DemoArgs),
}

#[derive(Args, Debug)]
pub struct TuiArgs {
    /// Ingredients to soup (default: the demo's, trained on first use).
    #[arg(long)]
    pub ingredients: Option<PathBuf>,
    /// uniform, greedy, gis, ls, pls, ensemble, or all.
    #[arg(long, value_parser = parse_strategy, default_value = "all")]
    pub strategy: StrategyChoice,
    /// Show the run in this directory (its events.jsonl), following it while it is written.
    #[arg(long, conflicts_with = "ingredients")]
    pub attach: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Run directory of the first job (default: a new one under ~/.cache/gnn-soup/runs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start souping at once with --strategy (skip the setup screen); without a terminal, run
    /// the same job headless.
    #[arg(long)]
    pub run: bool,
}

/// `--strategy`: one strategy, or `all` of them on the same ingredients.
#[derive(Debug, Clone, Copy)]
pub enum StrategyChoice {
    One(Strategy),
    All,
}

fn parse_strategy(s: &str) -> Result<StrategyChoice, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(StrategyChoice::All);
    }
    <Strategy as clap::ValueEnum>::from_str(s, true)
        .map(StrategyChoice::One)
        .map_err(|_| format!("unknown strategy {s:?}: expected uniform, greedy, gis, ls, pls, ensemble or all"))
}

#[derive(Args, Debug)]
pub struct SoupArgs {
    /// A directory of ingredient checkpoints (its manifest order), or one checkpoint.
    #[arg(long)]
    pub ingredients: PathBuf,
    /// uniform, greedy, gis, ls, pls, ensemble, or all.
    #[arg(long, value_parser = parse_strategy, default_value = "ls")]
    pub strategy: StrategyChoice,
    #[command(flatten)]
    pub data: DataArgs,
    /// GIS: interpolation points in [0, 1] (default 20, as in the paper).
    #[arg(long)]
    pub granularity: Option<usize>,
    /// LS/PLS epochs (default: the paper's table for the architecture/dataset, else 100).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// LS/PLS SGD learning rate (default: the paper's table, else 10).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Cosine annealing warm-restart period T0 in epochs (default: the paper's table, else 4).
    #[arg(long)]
    pub t0: Option<usize>,
    /// Mixing-logit initialisation: ones (uniform soup), uniform or normal (Xavier). Default:
    /// ones for LS, normal for PLS.
    #[arg(long, value_enum)]
    pub init: Option<InitKind>,
    /// PLS: K, the number of METIS parts (default 32).
    #[arg(long)]
    pub parts: Option<usize>,
    /// PLS: R, parts sampled per epoch (default: the paper's table, else 8).
    #[arg(long)]
    pub sample: Option<usize>,
    /// Mixing weights per tensor (paper), per layer, or one per ingredient.
    #[arg(long, value_enum)]
    pub mix: Option<MixGranularity>,
    /// Fit LS/PLS weights with dropout off (the reference keeps the model in training mode).
    #[arg(long)]
    pub no_dropout: bool,
    /// Hold out this fraction of validation nodes to pick the best epoch (early stopping).
    #[arg(long)]
    pub holdout: Option<f64>,
    /// With --holdout: epochs without improvement before stopping (default 20).
    #[arg(long)]
    pub patience: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Run directory: soup-<strategy>.safetensors, report-<strategy>.json, events.jsonl.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace results already in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Print the report (a list of reports for `all`) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The checkpoint to evaluate.
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Shape, class balance, split sizes and fingerprint of a dataset.
    Info {
        #[command(flatten)]
        data: DataArgs,
        /// Print one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Download a named dataset into the data directory (Planetoid files, OGB zip).
    Download {
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Which dataset, and where named datasets live.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// cora, citeseer, pubmed, ogbn-arxiv, ogbn-products, ogbn-*, npz:<file>, csbm, csbm-arxiv,
    /// csbm-products, csbm:key=value,... or the path of an OGB directory/zip. Default: csbm for
    /// `train` and `data`, the checkpoints' own dataset for `soup` and `eval`.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Directory of named datasets (Planetoid `ind.*` files, OGB zips or directories).
    #[arg(long, env = "GNN_SOUP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Seed of the random 20/30-per-class split for datasets without one (npz).
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Never download; fail with the list of files to put in place instead.
    #[arg(long)]
    pub offline: bool,
}

impl DataArgs {
    /// The dataset named, or the embedded synthetic default.
    pub fn dataset_or_default(&self) -> &str {
        self.dataset.as_deref().unwrap_or("csbm")
    }

    pub fn options(&self) -> DataOptions {
        DataOptions { data_dir: self.data_dir.clone().unwrap_or_else(crate::data::default_data_dir), split_seed: self.split_seed, download: !self.offline }
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value_t = Arch::Gcn)]
    pub arch: Arch,
    /// Number of graph convolution layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Hidden width (per head for GAT). Default: 64, or 8 for GAT.
    #[arg(long)]
    pub hidden: Option<i64>,
    /// Attention heads of GAT's hidden layers (default 8).
    #[arg(long)]
    pub heads: Option<i64>,
    /// Dropout before every layer. Default: 0.5, or 0.6 for GAT.
    #[arg(long)]
    pub dropout: Option<f64>,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Adam learning rate. Default: 0.01, or 0.005 for GAT.
    #[arg(long)]
    pub lr: Option<f64>,
    /// L2 weight decay (default 5e-4).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Batch norm between layers.
    #[arg(long)]
    pub batch_norm: bool,
    /// Row-normalise input features (true/false). Default: when all features are non-negative.
    #[arg(long)]
    pub row_normalize: Option<bool>,
    /// How many ingredients to train.
    #[arg(long, default_value_t = 10)]
    pub ingredients: usize,
    /// Output directory (init.safetensors, ingredient-NN.safetensors, manifest.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace checkpoints already in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Seed of the shared initialisation; ingredient i uses seed + 1 + i.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A checkpoint file, or a directory of them.
    pub path: PathBuf,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// With --json on a directory: print the ingredients' diversity report (norms, pairwise
    /// distances and cosines, distance from the shared init) instead of their metadata.
    #[arg(long, requires = "json")]
    pub diversity: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the demo's ingredients are kept (reused when present).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command.unwrap_or(Command::Demo(DemoArgs { out: None, device: "auto".into() })) {
        Command::Data(DataCommand::Info { data, json }) => data_cmd::info(&data, json),
        Command::Data(DataCommand::Download { data }) => data_cmd::download(&data),
        Command::Train(args) => train_cmd::run(&args),
        Command::Inspect(args) => inspect_cmd::run(&args),
        Command::Soup(args) => soup_cmd::run(&args),
        Command::Eval(args) => soup_cmd::eval(&args),
        Command::Demo(args) => train_cmd::demo(&args),
        Command::Tui(args) => tui_cmd::run(&args),
    }
}

/// Prints a JSON document on stdout (the only thing printed there under `--json`).
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(crate) fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2}%", 100.0 * x)
    } else {
        "-".into()
    }
}

/// The log file used while the dashboard owns the terminal.
pub fn log_file() -> PathBuf {
    crate::data::cache_dir().join("gnn-soup.log")
}

/// Logs filtered by `RUST_LOG` (default: warnings): to stderr, or to [`log_file`] when the
/// dashboard owns the terminal (nothing may be printed over it).
pub fn init_logging(to_file: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let file = to_file.then(|| {
        let path = log_file();
        let _ = std::fs::create_dir_all(path.parent().unwrap());
        std::fs::OpenOptions::new().create(true).append(true).open(path).ok()
    });
    match file.flatten() {
        Some(f) => {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(std::sync::Mutex::new(f)).try_init();
        }
        None => {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
        }
    }
}

impl Cli {
    /// Whether this invocation will draw the dashboard (stdout is a terminal).
    pub fn uses_terminal_ui(&self) -> bool {
        use std::io::IsTerminal;
        matches!(self.command, None | Some(Command::Tui(_)) | Some(Command::Demo(_))) && std::io::stdout().is_terminal()
    }
}
