//! `gnn-soup train`.

use anyhow::{bail, Result};
use serde_json::json;

use super::args::TrainArgs;
use super::headless::{announce_training, print_training_summary, training_progress};
use super::output::print_json;
use crate::data;
use crate::device::{device_name, parse_device, parse_devices};
use crate::train::{train, train_events_file, TrainConfig, TrainPlan, TrainRecord, TrainReport};

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
    if let Some(dir) = &args.collect {
        let report = crate::train::collect(dir)?;
        eprintln!("{}: all {} ingredients are there; wrote {}", dir.display(), report.ingredients.len(), dir.join(crate::checkpoint::MANIFEST).display());
        return finish(args, &report, &[]);
    }
    let Some(out) = &args.out else { bail!("--out is needed (or --collect DIR)") };
    let cfg = config_from(args);
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
    let mut events = if finished { EventsFile(None) } else { EventsFile::open(&train_events_file(out, args.shard)) };
    events.write(&TrainRecord::Started {
        dataset: g.name.clone(),
        model: cfg.spec_for(&g).describe(),
        ingredients: cfg.ingredients,
        epochs: cfg.epochs,
        devices: devices.iter().map(|d| device_name(*d)).collect(),
        shard: args.shard.map(|s| s.to_string()),
    });
    let mut progress = training_progress(cfg.epochs, cfg.ingredients, &devices, args.json);
    let result = train(&g, &cfg, &plan, out, &mut |e| {
        events.write(&TrainRecord::from_event(&e));
        progress(e);
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            events.write(&TrainRecord::Failed { message: format!("{e:#}") });
            return Err(e);
        }
    };
    events.write(&TrainRecord::Finished { seconds: report.seconds, complete: report.complete });
    eprintln!("trained {} ingredients in {:.1}s", report.ingredients.len(), report.seconds);
    if let Some(shard) = args.shard {
        eprintln!("shard {shard} done; when every shard is, `gnn-soup train --collect {}` checks them and writes the manifest", out.display());
    }
    finish(args, &report, &devices)
}

/// A training run's events file, appended to (a resumed run continues it). Progress is not worth
/// failing a training run for: a file that cannot be written is reported once and dropped.
struct EventsFile(Option<std::io::BufWriter<std::fs::File>>);

impl EventsFile {
    fn open(path: &std::path::Path) -> EventsFile {
        let _ = path.parent().map(std::fs::create_dir_all);
        match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => EventsFile(Some(std::io::BufWriter::new(f))),
            Err(e) => {
                eprintln!("warning: cannot write {} ({e}); `tui --attach` will not show this run", path.display());
                EventsFile(None)
            }
        }
    }

    fn write(&mut self, record: &TrainRecord) {
        use std::io::Write;
        let Some(w) = &mut self.0 else { return };
        let line = serde_json::to_string(record).unwrap_or_default();
        if writeln!(w, "{line}").and_then(|_| w.flush()).is_err() {
            eprintln!("warning: cannot write the training events file; `tui --attach` stops here");
            self.0 = None;
        }
    }
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
