//! `gnn-soup tui`: the dashboard, or the same job headless when stdout is not a terminal.

use std::io::IsTerminal;

use anyhow::Result;

use super::{soup_cmd, StrategyChoice, TuiArgs};
use crate::checkpoint;
use crate::device::parse_device;
use crate::engine::JobSpec;
use crate::soup::{SoupSettings, Strategy};
use crate::tui::{self, Source};

pub fn run(args: &TuiArgs) -> Result<()> {
    if let Some(dir) = &args.attach {
        if !dir.join(crate::engine::EVENTS_FILE).is_file() {
            anyhow::bail!("{} holds no {} (not a gnn-soup run directory?)", dir.display(), crate::engine::EVENTS_FILE);
        }
        tui::run(Source::Attach(dir.clone()), &format!("gnn-soup: {}", dir.display()), Some(&super::log_file()))?;
        return Ok(());
    }
    let device = parse_device(&args.device)?;
    let ingredients = match &args.ingredients {
        Some(d) => d.clone(),
        None => super::train_cmd::demo_ingredients(device)?,
    };
    let paths = checkpoint::list_ingredients(&ingredients)?;
    let meta = checkpoint::read_meta(&paths[0])?;
    let dataset = args.data.dataset.clone().unwrap_or_else(|| meta.dataset.clone());
    let strategies: Vec<Strategy> = match args.strategy {
        StrategyChoice::All => Strategy::ALL.to_vec(),
        StrategyChoice::One(s) => vec![s],
    };
    let settings = strategies.iter().map(|&s| SoupSettings::defaults(s, meta.arch.arch, &dataset)).collect();
    let out = args.out.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        crate::data::cache_dir().join("runs").join(format!("run-{secs}"))
    });
    let job = JobSpec { ingredients: paths, dataset: Some(dataset), data: args.data.options(), strategies: settings, device, out_dir: Some(out.clone()), overwrite: false };
    if !std::io::stdout().is_terminal() {
        let reports = soup_cmd::execute(job)?;
        print!("{}", soup_cmd::comparison_table(&reports));
        return Ok(());
    }
    let reports = tui::run(Source::Live(job), "gnn-soup", Some(&super::log_file()))?;
    if !reports.is_empty() {
        print!("{}", soup_cmd::comparison_table(&reports));
        eprintln!("results in {}", out.display());
    }
    Ok(())
}
