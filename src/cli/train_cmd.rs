//! `gnn-soup train`.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use super::args::TrainArgs;
use super::headless::{announce_training, print_training_summary, training_progress};
use super::output::print_json;
use crate::data;
use crate::device::{device_name, parse_device, parse_devices};
use crate::minibatch::Minibatch;
use crate::sampling::Fanout;
use crate::train::{
    train, train_events_file, TrainConfig, TrainEvent, TrainPlan, TrainRecord, TrainReport,
};

/// How often a minibatch step is written to the events file, at most.
const STEP_RECORD_EVERY: Duration = Duration::from_secs(1);

pub fn config_from(args: &TrainArgs) -> Result<TrainConfig> {
    let d = TrainConfig::defaults(args.arch);
    let layers = args.layers.unwrap_or(d.layers);
    let minibatch = match (args.batch_size, &args.fanout) {
        (None, _) => None,
        (size, fanout) => Some(Minibatch::new(size, fanout.as_ref().map(|f| f.0.clone()), layers)?),
    };
    let eval_minibatch = match (args.eval_batch_size, &args.eval_fanout) {
        (None, _) => None,
        (size, fanout) => Some(Minibatch::new(
            size,
            Some(fanout.as_ref().map_or_else(|| vec![Fanout::All; layers], |f| f.0.clone())),
            layers,
        )?),
    };
    Ok(TrainConfig {
        arch: args.arch,
        layers,
        hidden: args.hidden.unwrap_or(d.hidden),
        heads: args.heads.unwrap_or(d.heads),
        dropout: args.dropout.unwrap_or(d.dropout),
        batch_norm: args.batch_norm || d.batch_norm,
        row_normalize: args.row_normalize,
        input_dropout_off: args
            .input_dropout_off
            .as_ref()
            .map_or(d.input_dropout_off, |l| l.0.clone()),
        add_self_loops: args.self_loops.unwrap_or(d.add_self_loops),
        activation: args.model.activation.unwrap_or(d.activation),
        dropouts: args.model.dropouts(d.dropouts),
        attn_dst: args.attn_dst || d.attn_dst,
        epochs: args.epochs.unwrap_or(d.epochs),
        lr: args.lr.unwrap_or(d.lr),
        weight_decay: args.weight_decay.unwrap_or(d.weight_decay),
        ingredients: args.ingredients,
        seed: args.seed,
        minibatch,
        eval_minibatch,
    })
}

pub fn run(args: &TrainArgs) -> Result<()> {
    if let Some(dir) = &args.collect {
        let report = crate::train::collect(dir)?;
        eprintln!(
            "{}: all {} ingredients are there; wrote {}",
            dir.display(),
            report.ingredients.len(),
            dir.join(crate::checkpoint::MANIFEST).display()
        );
        return finish(args, &report, &[]);
    }
    let Some(out) = &args.out else { bail!("--out is needed (or --collect DIR)") };
    let cfg = config_from(args)?;
    cfg.validate()?;
    let devices = match &args.devices {
        Some(list) => parse_devices(list)?,
        None => vec![parse_device(&args.device)?],
    };
    let g = data::load(args.data.dataset_or_default(), &args.data.options())?;
    if args.init_only {
        let (path, fingerprint) = crate::train::write_init(&g, &cfg, out, args.overwrite)?;
        eprintln!("wrote {} (fingerprint {fingerprint}); now run the shards with the same flags and --shard I/N", path.display());
        return Ok(());
    }
    announce_training(&g, &cfg, &devices, args.shard);
    let plan = TrainPlan { devices: devices.clone(), shard: args.shard, overwrite: args.overwrite };
    // Progress on stderr, and as JSON lines in the run's events file for `tui --attach`.
    // A finished run is refused by `train`; its events file is left as it is.
    let finished = out.join(crate::checkpoint::MANIFEST).exists() && !args.overwrite;
    // A resumed run continues its file; progress is not worth failing the training for.
    let events = if finished {
        None
    } else {
        crate::fsio::JsonLines::append(&train_events_file(out, args.shard))
            .inspect_err(|e| tracing::warn!("{e:#}; `tui --attach` will not show this run"))
            .ok()
    };
    let record = |r: &TrainRecord| events.iter().for_each(|f| f.write(r));
    record(&TrainRecord::Started {
        dataset: g.name.clone(),
        model: cfg.spec_for(&g).describe(),
        ingredients: cfg.ingredients,
        epochs: cfg.epochs,
        devices: devices.iter().map(|d| device_name(*d)).collect(),
        shard: args.shard.map(|s| s.to_string()),
    });
    let mut progress = training_progress(cfg.epochs, cfg.ingredients, &devices, args.json);
    // Minibatch steps go to the file at most once a second per worker (and each epoch's last):
    // a products-sized run takes hundreds of thousands of steps, which `--attach` re-reads.
    let mut last_step_recorded: Vec<Option<Instant>> = vec![None; devices.len()];
    let result = train(&g, &cfg, &plan, out, &mut |e| {
        let keep = match e {
            TrainEvent::Batch { worker, batch, batches, .. } => {
                let last = &mut last_step_recorded[worker];
                let due = last.is_none_or(|t| t.elapsed() >= STEP_RECORD_EVERY);
                if due || batch == batches {
                    *last = Some(Instant::now());
                }
                due || batch == batches
            }
            _ => true,
        };
        if keep {
            record(&TrainRecord::from_event(&e));
        }
        progress(e);
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            record(&TrainRecord::Failed { message: format!("{e:#}") });
            return Err(e);
        }
    };
    record(&TrainRecord::Finished { seconds: report.seconds, complete: report.complete });
    eprintln!("trained {} ingredients in {:.1}s", report.ingredients.len(), report.seconds);
    if let Some(shard) = args.shard {
        eprintln!("shard {shard} done; when every shard is, `gnn-soup train --collect {}` checks them and writes the manifest", out.display());
    }
    finish(args, &report, &devices)
}

/// The JSON document or the summary table.
fn finish(args: &TrainArgs, report: &TrainReport, devices: &[tch::Device]) -> Result<()> {
    if args.json {
        return print_json(&json!({
            "dataset": report.dataset,
            "dataset_fingerprint": report.dataset_fingerprint,
            "arch": report.arch,
            "devices": devices.iter().map(|d| device_name(*d)).collect::<Vec<_>>(),
            "shard": args.shard.map(|s| s.to_string()),
            "complete": report.complete,
            "init": report.init,
            "ingredients": report.ingredients,
            "seconds": report.seconds,
        }));
    }
    print_training_summary(report);
    Ok(())
}
