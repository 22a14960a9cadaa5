//! `gnn-soup train`.

use anyhow::Result;
use serde_json::json;

use super::args::TrainArgs;
use super::headless::{announce_training, print_training_summary, training_progress};
use super::output::print_json;
use crate::data;
use crate::device::{device_name, parse_device};
use crate::train::{train_ingredients, TrainConfig};

pub fn config_from(args: &TrainArgs) -> TrainConfig {
    let d = TrainConfig::defaults(args.arch);
    TrainConfig {
        arch: args.arch,
        layers: args.layers.unwrap_or(d.layers),
        hidden: args.hidden.unwrap_or(d.hidden),
        heads: args.heads.unwrap_or(d.heads),
        dropout: args.dropout.unwrap_or(d.dropout),
        batch_norm: args.batch_norm,
        row_normalize: args.row_normalize,
        input_dropout_off: args.input_dropout_off.as_ref().map_or(d.input_dropout_off, |l| l.0.clone()),
        add_self_loops: args.self_loops.unwrap_or(d.add_self_loops),
        epochs: args.epochs.unwrap_or(d.epochs),
        lr: args.lr.unwrap_or(d.lr),
        weight_decay: args.weight_decay.unwrap_or(d.weight_decay),
        ingredients: args.ingredients,
        seed: args.seed,
    }
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let cfg = config_from(args);
    cfg.validate()?;
    let device = parse_device(&args.device)?;
    let g = data::load(args.data.dataset_or_default(), &args.data.options())?;
    announce_training(&g, &cfg, device);
    let report = train_ingredients(&g, &cfg, device, &args.out, args.overwrite, &mut training_progress(cfg.epochs, cfg.ingredients, args.json))?;
    eprintln!("trained {} ingredients in {:.1}s", report.ingredients.len(), report.seconds);
    if args.json {
        return print_json(&json!({
            "dataset": report.dataset,
            "dataset_fingerprint": report.dataset_fingerprint,
            "arch": report.arch,
            "device": device_name(device),
            "init": report.init,
            "ingredients": report.ingredients,
            "seconds": report.seconds,
        }));
    }
    print_training_summary(&report);
    Ok(())
}
