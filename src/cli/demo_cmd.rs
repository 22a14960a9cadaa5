//! `gnn-soup demo` (and `gnn-soup` alone): every strategy on the demo's ingredients. On a
//! terminal it opens the workbench; otherwise it runs headless and prints the comparison table.

use std::io::IsTerminal;

use anyhow::Result;

use super::args::{DataArgs, DemoArgs, SettingFlags, StrategyChoice, TuiArgs};
use super::headless::{
    comparison_table, completed, demo_ingredients, execute, split_outcome, write_comparison,
};
use crate::data::DataOptions;
use crate::device::{device_name, parse_device};
use crate::engine::JobSpec;
use crate::soup::Strategy;

pub fn run(args: &DemoArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    if args.out.is_none() && std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        return super::tui_cmd::run(&TuiArgs {
            ingredients: None,
            recipe: None,
            strategy: Some(StrategyChoice::All),
            attach: None,
            data: DataArgs { dataset: None, data_dir: None, split_seed: None, offline: false },
            settings: SettingFlags::default(),
            device: Some(args.device.clone()),
            out: None,
            run: true,
            reevaluate: false,
        });
    }
    let run_dir = args
        .out
        .clone()
        .unwrap_or_else(|| crate::paths::results_dir().join("demo").join("last-run"));
    let ingredients = demo_ingredients(device)?;
    let g = crate::demo::graph()?;
    let recipe = crate::demo::recipe();
    let chosen = recipe.strategies.clone().unwrap_or_else(|| Strategy::ALL.to_vec());
    let job = JobSpec {
        ingredients: crate::checkpoint::list_ingredients(&ingredients)?,
        dataset: None,
        data: DataOptions::default(),
        strategies: SettingFlags::default().resolve(
            Some(&recipe),
            &chosen,
            crate::demo::ARCH,
            crate::demo::DATASET,
        )?,
        device,
        out_dir: Some(run_dir.clone()),
        // The default run directory is the demo's own, replaced each time; one the user names is not.
        overwrite: args.out.is_none(),
        resume: false,
        reevaluate: false,
    };
    let (reports, error) = split_outcome(execute(job));
    if reports.is_empty() {
        return Err(error.unwrap_or_else(|| anyhow::anyhow!("the demo produced no result")));
    }
    println!(
        "\nsouping {} ingredients on {} ({}):",
        reports.first().map_or(0, |r| r.ingredients.len()),
        g.name,
        device_name(device)
    );
    print!("{}", comparison_table(&reports));
    write_comparison(&run_dir, &reports)?;
    match error {
        Some(e) => Err(e),
        None => completed(&reports, &run_dir),
    }
}
