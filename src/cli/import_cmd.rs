//! `gnn-soup import`: foreign checkpoints as gnn-soup ingredients.

use anyhow::{bail, Result};

use super::args::ImportArgs;
use super::output::{percent, print_json, Table};
use crate::data;
use crate::import::{self, LayoutOptions};

pub fn run(args: &ImportArgs) -> Result<()> {
    if !(0.0..1.0).contains(&args.dropout) {
        bail!("--dropout must be in [0, 1), got {}", args.dropout);
    }
    let Some(dataset) = &args.data.dataset else {
        bail!("--dataset is required: the ingredients are checked and evaluated on it, and souped on it later");
    };
    let g = data::load(dataset, &args.data.options())?;
    let opts = LayoutOptions {
        prefix: args.prefix.clone(),
        arch: args.arch,
        dropout: args.dropout,
        row_normalize: args
            .row_normalize
            .unwrap_or_else(|| crate::train::row_normalize_default(&g)),
        input_dropout_off: args.input_dropout_off.as_ref().map(|l| l.0.clone()),
        add_self_loops: args.self_loops,
        activation: args.model.activation,
        dropouts: args.model.dropouts(Default::default()),
    };
    let report = import::import(
        &args.sources,
        args.init.as_deref(),
        &g,
        &opts,
        &args.out,
        args.overwrite,
        true,
    )?;
    if args.json {
        return print_json(&report);
    }
    println!("{} ({} layout): {}", report.dataset, report.layout.name(), report.arch.describe());
    let mut t = Table::new(["ingredient", "from", "val", "test"]);
    for i in &report.ingredients {
        t.row([
            i.path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            i.source.display().to_string(),
            i.val_acc.map(percent).unwrap_or_default(),
            i.test_acc.map(percent).unwrap_or_default(),
        ]);
    }
    print!("{}", t.render());
    match &report.init {
        Some(p) => eprintln!("shared initial weights: {}", p.display()),
        None => eprintln!("no --init given: the shared initialisation is unknown (souping assumes one; the inspector shows no distances from it)"),
    }
    eprintln!("imported {} ingredients into {}", report.ingredients.len(), args.out.display());
    Ok(())
}
