//! The command line's arguments. Doc comments here are the help text; the soup settings' flags
//! come from [`crate::soup::SETTINGS`].

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::data::DataOptions;
use crate::model::Arch;
use crate::recipe::Recipe;
use crate::soup::{Setting, SettingKind, SoupSettings, Strategy, Value, SETTINGS};

#[derive(Parser, Debug)]
#[command(
    name = "gnn-soup",
    version = concat!(env!("CARGO_PKG_VERSION"), " (torch ", env!("GNN_SOUP_TORCH_VERSION"), ")"),
    about = "Souping graph neural networks: Learned Souping, Partition Learned Souping and every baseline"
)]
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
    Train(Box<TrainArgs>),
    /// Print a checkpoint's metadata and tensors; for a directory, every checkpoint's metadata and
    /// how diverse the ingredients are.
    Inspect(InspectArgs),
    /// Soup ingredients with one strategy or all of them, headless, with progress bars.
    Soup(SoupArgs),
    /// Accuracy of any checkpoint on a dataset.
    Eval(EvalArgs),
    /// The terminal dashboard: soup live, or attach to a run directory written elsewhere.
    Tui(TuiArgs),
    /// Turn checkpoints trained elsewhere (PyTorch Geometric `torch.save(model.state_dict())`
    /// files, plain `.safetensors` state dicts) into gnn-soup ingredients.
    Import(ImportArgs),
    /// Write a gnn-soup checkpoint (a soup, or an ingredient) as a PyG or DGL state dict that the
    /// model it came from loads (`model.load_state_dict(torch.load(FILE))`).
    Export(ExportArgs),
    /// The default job on the embedded synthetic dataset (what the README's main command runs).
    Demo(DemoArgs),
    /// Print a shell completion script: `gnn-soup completions bash > ~/.local/share/bash-completion/completions/gnn-soup`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Train ingredients on a Slurm cluster: write (and with --submit, submit) an array job of
    /// `train --shard` tasks and a job that collects them (and soups) when all succeeded.
    #[command(subcommand)]
    Slurm(SlurmCommand),
    /// The manual page (roff): printed, or with --out one page per command written into a directory
    /// (`gnn-soup man | man -l -`).
    Man {
        /// Directory for gnn-soup.1 and gnn-soup-<command>.1.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace pages already in --out.
        #[arg(long)]
        overwrite: bool,
    },
    /// What this build computes on: the torch it was built against, and every CUDA device
    /// libtorch sees (name and memory from NVML), or that there is none.
    Devices {
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct TuiArgs {
    /// Ingredients to soup (default: the recipe's, else the demo's, trained on first use).
    #[arg(long)]
    pub ingredients: Option<PathBuf>,
    /// A recipe, as for `soup --recipe` (a TOML file or a report-<strategy>.json): its
    /// ingredients, dataset, strategies and settings fill the setup form and --run's job; flags
    /// override what it says.
    #[arg(long, conflicts_with = "attach")]
    pub recipe: Option<PathBuf>,
    /// uniform, greedy, gis, ls, pls, ensemble, or all [default: the recipe's, else all].
    #[arg(long, value_parser = parse_strategy)]
    pub strategy: Option<StrategyChoice>,
    /// Show the run in this directory (its events.jsonl), following it while it is written; for a
    /// training directory (or a shard's train-events-shard-I.jsonl), the training's workers.
    #[arg(long, conflicts_with = "ingredients")]
    pub attach: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Settings for --run, and what the setup form starts with.
    #[command(flatten)]
    pub settings: SettingFlags,
    /// cpu, cuda, cuda:N or auto [default: the recipe's, else auto].
    #[arg(long)]
    pub device: Option<String>,
    /// Run directory of the first job (default: a new one under $XDG_DATA_HOME/gnn-soup/runs/, i.e. ~/.local/share/gnn-soup/runs/); later
    /// jobs started from the setup screen get new directories beside it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start souping at once with --strategy (skip the setup screen); without a terminal, run
    /// the same job headless.
    #[arg(long)]
    pub run: bool,
    /// Evaluate every ingredient on the dataset again, even one whose checkpoint records its
    /// accuracies on this very dataset (same fingerprint), which are otherwise reused.
    #[arg(long)]
    pub reevaluate: bool,
}

/// `--strategy`: one strategy, or `all` of them on the same ingredients.
#[derive(Debug, Clone, Copy)]
pub enum StrategyChoice {
    One(Strategy),
    All,
}

impl StrategyChoice {
    /// The strategies this choice runs.
    pub fn strategies(self) -> Vec<Strategy> {
        match self {
            StrategyChoice::All => Strategy::ALL.to_vec(),
            StrategyChoice::One(s) => vec![s],
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            StrategyChoice::All => "all",
            StrategyChoice::One(s) => s.name(),
        }
    }
}

pub fn parse_strategy(s: &str) -> Result<StrategyChoice, String> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(StrategyChoice::All);
    }
    Strategy::from_name(s).map(StrategyChoice::One).ok_or_else(|| {
        let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
        format!("unknown strategy {s:?}: expected {} or all", names.join(", "))
    })
}

/// Every soup setting of [`SETTINGS`] as a flag (`--lr 11`; a switch also as `--no-dropout`),
/// with the table's help, range and defaults: the table is the only definition.
#[derive(Debug, Clone, Default)]
pub struct SettingFlags {
    /// The settings given on the command line, checked against their ranges.
    pub overrides: crate::recipe::Overrides,
}

impl SettingFlags {
    /// `strategies`' settings for `arch`/`dataset`: the defaults, the recipe's, then these flags
    /// (see [`resolve_settings`](crate::recipe::resolve_settings)).
    pub fn resolve(
        &self,
        recipe: Option<&Recipe>,
        strategies: &[Strategy],
        arch: Arch,
        dataset: &str,
    ) -> Result<Vec<SoupSettings>> {
        strategies
            .iter()
            .map(|&s| crate::recipe::resolve_settings(recipe, s, arch, dataset, &self.overrides))
            .collect()
    }
}

fn negated(setting: &Setting) -> String {
    format!("no-{}", setting.name)
}

impl clap::FromArgMatches for SettingFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = SettingFlags::default();
        flags.update_from_arg_matches(m)?;
        Ok(flags)
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        for setting in SETTINGS {
            if let Some(v) = m.get_one::<Value>(setting.name) {
                self.overrides.push((setting, v.clone()));
            }
            if matches!(setting.kind, SettingKind::Switch) && m.get_flag(&negated(setting)) {
                self.overrides.push((setting, Value::Switch(false)));
            }
        }
        Ok(())
    }
}

impl clap::Args for SettingFlags {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for setting in SETTINGS {
            let parse = move |text: &str| setting.parse(text).map_err(|e| e.problem);
            let value_name = match setting.kind {
                SettingKind::Choice(names) => names.join("|"),
                SettingKind::Switch => "on|off".into(),
                SettingKind::Real { .. } => "X".into(),
                _ => "N".into(),
            };
            cmd = cmd.arg(
                clap::Arg::new(setting.name)
                    .long(setting.name)
                    .value_name(value_name)
                    .help(setting.help_with_default())
                    .value_parser(clap::builder::ValueParser::new(parse))
                    .help_heading("Soup settings"),
            );
            if matches!(setting.kind, SettingKind::Switch) {
                cmd = cmd.arg(
                    clap::Arg::new(negated(setting))
                        .long(negated(setting))
                        .action(clap::ArgAction::SetTrue)
                        .conflicts_with(setting.name)
                        .help(format!("same as --{} off", setting.name))
                        .help_heading("Soup settings"),
                );
            }
        }
        cmd
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[derive(Args, Debug)]
pub struct SoupArgs {
    /// A recipe: a TOML file (ingredients, dataset, strategies, settings; see
    /// assets/recipes/) or a report-<strategy>.json to rerun. Flags override what it says.
    #[arg(long, conflicts_with = "resume")]
    pub recipe: Option<PathBuf>,
    /// A directory of ingredient checkpoints (its manifest order), or one checkpoint.
    #[arg(long, required_unless_present_any = ["resume", "recipe"])]
    pub ingredients: Option<PathBuf>,
    /// uniform, greedy, gis, ls, pls, ensemble, or all [default: the recipe's, else ls].
    #[arg(long, value_parser = parse_strategy)]
    pub strategy: Option<StrategyChoice>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub settings: SettingFlags,
    /// cpu, cuda, cuda:N or auto [default: the recipe's, else auto].
    #[arg(long)]
    pub device: Option<String>,
    /// Run directory: soup-<strategy>.safetensors, report-<strategy>.json, events.jsonl.
    #[arg(long, required_unless_present_any = ["resume", "recipe"])]
    pub out: Option<PathBuf>,
    /// Replace results already in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Continue the stopped run in this directory with the settings it was started with:
    /// finished strategies are kept, an interrupted LS/PLS goes on from its last saved epoch
    /// (saved every few seconds and when stopped) and ends as an uninterrupted run would.
    #[arg(long, conflicts_with_all = ["ingredients", "out", "overwrite"])]
    pub resume: Option<PathBuf>,
    /// Evaluate every ingredient on the dataset again, even one whose checkpoint records its
    /// accuracies on this very dataset (same fingerprint), which are otherwise reused.
    #[arg(long)]
    pub reevaluate: bool,
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
    /// Evaluate over sampled blocks of this many nodes at a time instead of exact whole-graph
    /// inference. Default: exact where it fits the device's memory, otherwise sampled (with a
    /// message saying so).
    #[arg(long)]
    pub eval_batch_size: Option<usize>,
    /// The fanout of sampled evaluation, one per layer (default -1, every neighbour: exact
    /// inference's accuracy, the paper's GAT aside).
    #[arg(long, value_parser = parse_fanout, requires = "eval_batch_size", allow_hyphen_values = true)]
    pub eval_fanout: Option<FanoutList>,
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
    /// Write a dataset (a synthetic one especially) as an .npz that NumPy and PyTorch Geometric
    /// read: edge_index [2, E], x [N, F], y, train_idx, val_idx, test_idx.
    Export {
        #[command(flatten)]
        data: DataArgs,
        /// The .npz file to write.
        #[arg(long)]
        out: PathBuf,
        /// Replace --out if it exists.
        #[arg(long)]
        overwrite: bool,
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
    /// Seed of the random 20/30-per-class split for datasets without one (npz) [default: 0].
    #[arg(long)]
    pub split_seed: Option<u64>,
    /// Never download; fail with the list of files to put in place instead.
    #[arg(long)]
    pub offline: bool,
}

impl DataArgs {
    /// The dataset named, or the embedded synthetic default.
    pub fn dataset_or_default(&self) -> &str {
        self.dataset.as_deref().unwrap_or("csbm")
    }

    /// These flags, with what `recipe` says where they say nothing.
    pub fn with_recipe(&self, recipe: Option<&Recipe>) -> DataArgs {
        let mut data = self.clone();
        if let Some(r) = recipe {
            data.dataset = data.dataset.or_else(|| r.dataset.clone());
            data.data_dir = data.data_dir.or_else(|| r.data_dir.clone());
            data.split_seed = data.split_seed.or(r.split_seed);
        }
        data
    }

    pub fn options(&self) -> DataOptions {
        DataOptions {
            data_dir: self.data_dir.clone().unwrap_or_else(crate::data::default_data_dir),
            split_seed: self.split_seed.unwrap_or(0),
            download: !self.offline,
        }
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
    /// Hidden width (per head for GAT). Default: 64, or 8 for GAT and paper-gat.
    #[arg(long)]
    pub hidden: Option<i64>,
    /// Attention heads of GAT's hidden layers, and of every paper-gat layer (default 8).
    #[arg(long)]
    pub heads: Option<i64>,
    /// Dropout before every layer (paper-gat: after every layer's activation). Default: 0.5, or
    /// 0.6 for GAT and paper-gat.
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
    /// Batch norm between layers (always on for paper-gat).
    #[arg(long)]
    pub batch_norm: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    /// paper-gat: attention logits also from each target's own map (`use_attn_dst`).
    #[arg(long)]
    pub attn_dst: bool,
    /// Row-normalise input features (true/false). Default: when all features are non-negative.
    #[arg(long)]
    pub row_normalize: Option<bool>,
    /// Layers (0-based, comma-separated) whose input is not dropped, e.g. `0` as the paper's
    /// GCN (dropout on hidden activations only), or `none` (the default: every layer's input).
    #[arg(long, value_parser = parse_layer_list)]
    pub input_dropout_off: Option<LayerList>,
    /// Whether GCN/GAT layers add a self-loop per node (true, PyG's default) or aggregate over
    /// the graph as it is (false, DGL's GraphConv/GATConv).
    #[arg(long)]
    pub self_loops: Option<bool>,
    /// How many ingredients to train.
    #[arg(long, default_value_t = 10)]
    pub ingredients: usize,
    /// Train in minibatches of this many seed nodes over sampled neighbours (each layer's block
    /// sampled per --fanout) instead of full-batch steps: for graphs whose full-batch step does
    /// not fit the device's memory (training is refused then, naming what it needs).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// In-neighbours sampled per target in each layer, input layer first (e.g. 15,10,5; -1 =
    /// all of them). Default: 10 per layer.
    #[arg(long, value_parser = parse_fanout, requires = "batch_size", allow_hyphen_values = true)]
    pub fanout: Option<FanoutList>,
    /// Validate during training over sampled blocks of this many validation nodes at a time,
    /// instead of exact whole-graph inference (the final accuracies are always exact).
    #[arg(long)]
    pub eval_batch_size: Option<usize>,
    /// The fanout of that validation (default -1, every neighbour).
    #[arg(long, value_parser = parse_fanout, requires = "eval_batch_size", allow_hyphen_values = true)]
    pub eval_fanout: Option<FanoutList>,
    /// Output directory (init.safetensors, ingredient-NN.safetensors, manifest.json).
    #[arg(long, required_unless_present = "collect")]
    pub out: Option<PathBuf>,
    /// Train on several devices at once, one worker each, ingredients handed out as workers free
    /// up: cuda:0,cuda:1,... or all (every CUDA device); a device may repeat (cpu,cpu).
    #[arg(long, conflicts_with = "device")]
    pub devices: Option<String>,
    /// Train only shard I of N (from 0): the ingredients whose index i has i % N == I, into a
    /// --out shared with the other shards (a Slurm array: --shard $SLURM_ARRAY_TASK_ID/N). No
    /// manifest: `train --collect DIR` writes it when every shard is done.
    #[arg(long, value_parser = crate::train::Shard::parse)]
    pub shard: Option<crate::train::Shard>,
    /// Only write the shared initialisation into --out (before the shards of an array start).
    #[arg(long, conflicts_with = "shard")]
    pub init_only: bool,
    /// Check that every ingredient of the run in DIR is there (the shards are done) and write its
    /// manifest; the run's settings come from DIR's init.safetensors.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "shard", "init_only", "devices"])]
    pub collect: Option<PathBuf>,
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

/// One fanout per layer (`15,10,5`; -1 = every neighbour).
#[derive(Debug, Clone)]
pub struct FanoutList(pub Vec<crate::sampling::Fanout>);

fn parse_fanout(s: &str) -> Result<FanoutList, String> {
    crate::sampling::Fanout::parse_list(s).map(FanoutList).map_err(|e| e.to_string())
}

/// A comma-separated list of layer indices, or `none`.
#[derive(Debug, Clone)]
pub struct LayerList(pub Vec<usize>);

fn parse_layer_list(s: &str) -> Result<LayerList, String> {
    if s.trim() == "none" {
        return Ok(LayerList(Vec::new()));
    }
    s.split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|_| format!("expected layer numbers like 0,2 or none, got {p:?}"))
        })
        .collect::<Result<_, _>>()
        .map(LayerList)
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The checkpoints, in the order the ingredients get (`.pt`/`.pth` or `.safetensors`).
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// Where the ingredients go: ingredient-NN.safetensors (and init.safetensors with --init).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// The shared initial weights the ingredients were trained from, when you have them (souping
    /// needs ingredients from one initialisation; the inspector measures distances from it).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Strip this prefix from every tensor name (default: whatever comes before the first layer's
    /// name, e.g. `model.` or `module.`).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Force the architecture instead of inferring it from the names.
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// The dropout the models were trained with, applied (where the layout places it) while
    /// LS/PLS fit (PyG's examples use 0.5).
    #[arg(long, default_value_t = 0.5)]
    pub dropout: f64,
    /// Row-normalise input features (true/false), as PyG's NormalizeFeatures. Default: when all
    /// features are non-negative.
    #[arg(long)]
    pub row_normalize: Option<bool>,
    /// Layers (0-based, comma-separated) whose input the models do not drop, e.g. `0` for a
    /// model without dropout on its input features, or `none`. Default: from the layout: PyG
    /// models drop every layer's input; the paper's DGL GCN all but the features' (`0`), its
    /// GraphSAGE all but the last layer's with 3+ layers, none with 2.
    #[arg(long, value_parser = parse_layer_list)]
    pub input_dropout_off: Option<LayerList>,
    /// Whether GCN/GAT layers add a self-loop per node (true/false). Default: from the layout:
    /// PyG's GCNConv/GATConv do, DGL's GraphConv/GATConv aggregate over the graph as it is.
    #[arg(long)]
    pub self_loops: Option<bool>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Replace ingredients already in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What a model computes that its weights do not say, for `train` and `import`.
#[derive(Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// Activation between layers: relu, or elu (DGL's GAT examples). Default: relu, or elu for
    /// a stack of DGL GATConv layers.
    #[arg(long, value_enum)]
    pub activation: Option<crate::model::Activation>,
    /// Dropout on the input features, where it differs from --dropout (paper-gat: `input_drop`,
    /// 0.1 when training).
    #[arg(long)]
    pub input_dropout: Option<f64>,
    /// Dropout on GAT's attention coefficients, where it differs from --dropout (paper-gat:
    /// `attn_drop`, 0 when training).
    #[arg(long)]
    pub attention_dropout: Option<f64>,
    /// Fraction of edges left out of each attention softmax in training (paper-gat: `edge_drop`).
    #[arg(long)]
    pub edge_dropout: Option<f64>,
}

impl ModelArgs {
    /// The dropout rates given, over `defaults`.
    pub fn dropouts(&self, defaults: crate::model::Dropouts) -> crate::model::Dropouts {
        crate::model::Dropouts {
            input: self.input_dropout.or(defaults.input),
            attention: self.attention_dropout.or(defaults.attention),
            edge: self.edge_dropout.unwrap_or(defaults.edge),
        }
    }
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The checkpoint: a run's soup-<strategy>.safetensors, or an ingredient.
    pub checkpoint: PathBuf,
    /// The file to write: `.pt` (torch.save's format, what torch.load reads) or `.safetensors`.
    #[arg(long)]
    pub out: PathBuf,
    /// Name the tensors as this state dict does (e.g. one of the files the ingredients were
    /// imported from). Default: the first ingredient's original file, when the ingredients were
    /// imported and it is still there.
    #[arg(long)]
    pub like: Option<PathBuf>,
    /// Without a template: pyg (`convs.<i>.lin.weight`, ...) or dgl (the reference's
    /// `layers.<i>.weight`, ...). Default: the layout the ingredients were imported from, else pyg.
    #[arg(long, value_enum, conflicts_with = "like")]
    pub layout: Option<crate::import::Source>,
    /// Replace --out if it exists.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A checkpoint file, or a directory of them.
    pub path: PathBuf,
    /// For checkpoints gnn-soup did not write: the dataset they are imported on (on the fly).
    #[command(flatten)]
    pub data: DataArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// With --json on a directory: print the ingredients' diversity report (norms, pairwise
    /// distances and cosines, distance from the shared init) instead of their metadata.
    #[arg(long, requires = "json")]
    pub diversity: bool,
}

#[derive(Subcommand, Debug)]
pub enum SlurmCommand {
    /// Write sbatch scripts for `gnn-soup train ARGS` split over an array of N tasks, each
    /// training its shard (--shard $SLURM_ARRAY_TASK_ID/N) into the shared --out, and a job that
    /// runs after all of them succeeded (--dependency=afterok): `train --collect`, then a soup
    /// with --soup-out. E.g. `gnn-soup slurm train --array 4 --gres gpu:1 --time 4:00:00
    /// --soup-out runs/arxiv -- --dataset ogbn-arxiv --ingredients 40 --out /shared/arxiv-gcn`.
    Train(SlurmTrainArgs),
}

#[derive(Args, Debug)]
pub struct SlurmTrainArgs {
    /// Tasks in the array (shards); each trains the ingredients i with i % N == its task id.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub array: u32,
    /// sbatch --partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// sbatch --gres of each training task, e.g. gpu:1.
    #[arg(long)]
    pub gres: Option<String>,
    /// sbatch --time of each training task, e.g. 4:00:00.
    #[arg(long)]
    pub time: Option<String>,
    /// sbatch --cpus-per-task of each training task.
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// sbatch --mem of each task, e.g. 32G.
    #[arg(long)]
    pub mem: Option<String>,
    /// sbatch --account.
    #[arg(long)]
    pub account: Option<String>,
    /// After collecting, soup the ingredients into this run directory.
    #[arg(long)]
    pub soup_out: Option<PathBuf>,
    /// The soup's strategy (with --soup-out).
    #[arg(long, default_value = "all", requires = "soup_out")]
    pub soup_strategy: String,
    /// A recipe for the soup (with --soup-out): `soup --recipe FILE`.
    #[arg(long, requires = "soup_out")]
    pub soup_recipe: Option<PathBuf>,
    /// Where the scripts go (default: <--out>/slurm).
    #[arg(long)]
    pub script_dir: Option<PathBuf>,
    /// Submit with sbatch now (otherwise print how to).
    #[arg(long)]
    pub submit: bool,
    /// Replace scripts already in the script directory.
    #[arg(long)]
    pub overwrite: bool,
    /// The arguments of `gnn-soup train` (after --), --out included; not --shard or --collect.
    #[arg(last = true, required = true, value_name = "TRAIN ARGS")]
    pub train: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The run directory (default: $XDG_DATA_HOME/gnn-soup/demo/last-run, i.e.
    /// ~/.local/share/gnn-soup/demo/last-run, replaced by every demo run); the ingredients are
    /// kept beside it in .../demo/csbm-gcn-dropout0.8 and reused. Implies headless.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

impl Cli {
    /// Whether this invocation will draw the dashboard (stdout is a terminal).
    /// Whether the command was asked for JSON on stdout (`--json`): a failure is then told there
    /// too, as a JSON object, for the scripts that parse it.
    pub fn wants_json(&self) -> bool {
        match &self.command {
            Some(Command::Soup(a)) => a.json,
            Some(Command::Eval(a)) => a.json,
            Some(Command::Train(a)) => a.json,
            Some(Command::Import(a)) => a.json,
            Some(Command::Export(a)) => a.json,
            Some(Command::Inspect(a)) => a.json,
            Some(Command::Data(DataCommand::Info { json, .. })) => *json,
            _ => false,
        }
    }

    pub fn uses_terminal_ui(&self) -> bool {
        use std::io::IsTerminal;
        matches!(self.command, None | Some(Command::Tui(_)) | Some(Command::Demo(_)))
            && std::io::stdout().is_terminal()
    }
}
