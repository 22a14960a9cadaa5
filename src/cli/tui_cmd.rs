//! `gnn-soup tui`: the workbench (setup screen, inspector, dashboard), or with `--run` and no
//! terminal the same job headless.

use std::io::IsTerminal;

use anyhow::Result;

use super::{soup_cmd, StrategyChoice, TuiArgs};
use crate::checkpoint;
use crate::device::parse_device;
use crate::engine::JobSpec;
use crate::soup::SoupSettings;
use crate::tui::app::App;
use crate::tui::setup::Setup;
use crate::tui::{self, Session, Source};

/// "cpu" and every CUDA device libtorch finds, for the setup form.
fn devices() -> Vec<String> {
    let cuda = if tch::Cuda::is_available() { tch::Cuda::device_count() } else { 0 };
    std::iter::once("cpu".to_string()).chain((0..cuda).map(|i| format!("cuda:{i}"))).collect()
}

pub fn run(args: &TuiArgs) -> Result<()> {
    let log = super::log_file();
    let session = Session { data: args.data.options(), runs_dir: crate::data::cache_dir().join("runs"), fixed_out: args.out.clone() };
    if let Some(dir) = &args.attach {
        if !dir.join(crate::engine::EVENTS_FILE).is_file() {
            anyhow::bail!("{} holds no {} (not a gnn-soup run directory?)", dir.display(), crate::engine::EVENTS_FILE);
        }
        tui::run(App::new(format!("gnn-soup: {}", dir.display())), Some(Source::Attach(dir.clone())), session, Some(&log))?;
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
    let strategies = match args.strategy {
        StrategyChoice::All => SoupSettings::all_defaults(meta.arch.arch, &dataset),
        StrategyChoice::One(s) => vec![SoupSettings::defaults(s, meta.arch.arch, &dataset)],
    };
    let terminal = std::io::stdout().is_terminal();
    if !terminal && !args.run {
        anyhow::bail!("the workbench needs a terminal; pass --run to soup headless (or use `gnn-soup soup`)");
    }
    let job_dir = args.out.clone().unwrap_or_else(|| tui::new_run_dir(&session.runs_dir));
    let job = JobSpec { ingredients: paths, dataset: Some(dataset), data: args.data.options(), strategies, device, out_dir: Some(job_dir.clone()), overwrite: false };
    if !terminal {
        let reports = soup_cmd::execute(job)?;
        print!("{}", soup_cmd::comparison_table(&reports));
        return Ok(());
    }
    let ingredients_dir = if ingredients.is_dir() { ingredients.clone() } else { ingredients.parent().map(|p| p.to_path_buf()).unwrap_or_default() };
    let strategy_name = match args.strategy {
        StrategyChoice::All => "all".to_string(),
        StrategyChoice::One(s) => s.to_string(),
    };
    let mut setup = Setup::new(&ingredients_dir, &strategy_name, devices());
    if let Some(d) = &args.data.dataset {
        setup.set_dataset(d);
    }
    let app = App::with_setup("gnn-soup", setup);
    let start = args.run.then_some(Source::Live(job));
    let reports = tui::run(app, start, session, Some(&log))?;
    if !reports.is_empty() {
        print!("{}", soup_cmd::comparison_table(&reports));
        eprintln!("results in {}", if args.run { job_dir.display().to_string() } else { crate::data::cache_dir().join("runs").display().to_string() });
    }
    Ok(())
}
