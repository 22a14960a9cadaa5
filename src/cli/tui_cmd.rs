//! `gnn-soup tui`: the workbench (setup screen, inspector, dashboard), or with `--run` and no
//! terminal the same job headless.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;

use super::args::TuiArgs;
use super::headless::{comparison_table, completed, demo_ingredients, execute, resolve_ingredients, split_outcome};
use crate::checkpoint;
use crate::device::{device_name, parse_device};
use crate::engine::{self, JobSpec};
use crate::soup::{Setting, Value};
use crate::tui::app::App;
use crate::tui::setup::{device_choices, Setup};
use crate::tui::{self, Session, Source};

pub fn run(args: &TuiArgs) -> Result<()> {
    let log = super::logging::log_file();
    let runs_dir = crate::paths::results_dir().join("runs");
    let session = Session { data: args.data.options(), runs_dir: runs_dir.clone(), fixed_out: args.out.clone() };
    if let Some(dir) = &args.attach {
        // A training run: its events file, or a directory with one (and no soup run's events).
        let training = if dir.is_file() && dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("train-events")) {
            Some(dir.clone())
        } else {
            Some(dir.join(crate::train::TRAIN_EVENTS_FILE)).filter(|f| f.is_file() && !dir.join(engine::EVENTS_FILE).is_file())
        };
        if let Some(file) = training {
            let app = App::training(format!("gnn-soup: {}", file.display()), file.display().to_string());
            tui::run(app, Some(Source::AttachTraining(file)), session, Some(&log))?;
            return Ok(());
        }
        if !dir.join(engine::EVENTS_FILE).is_file() {
            anyhow::bail!(
                "{} holds no {} (a souping run) or {} (a training run); a shard's is train-events-shard-I.jsonl: pass that file",
                dir.display(),
                engine::EVENTS_FILE,
                crate::train::TRAIN_EVENTS_FILE
            );
        }
        let app = App::attached(format!("gnn-soup: {}", dir.display()), dir.display().to_string());
        tui::run(app, Some(Source::Attach(dir.clone())), session, Some(&log))?;
        return Ok(());
    }
    let device = parse_device(&args.device)?;
    // Without --ingredients: the demo's, souped as its recipe says (flags still override it).
    let (ingredients, recipe) = match &args.ingredients {
        Some(d) => (resolve_ingredients(d, &args.data)?, None),
        None => (demo_ingredients(device)?, Some(crate::demo::recipe())),
    };
    let paths = checkpoint::list_ingredients(&ingredients)?;
    let meta = checkpoint::read_meta(&paths[0])?;
    let dataset = args.data.dataset.clone().unwrap_or_else(|| meta.dataset.clone());
    let strategies = args.settings.resolve(recipe.as_ref(), &args.strategy.strategies(), meta.arch.arch, &dataset)?;
    // The setup form starts from the recipe's settings for every strategy, then the flags: one
    // value per setting, the flag's where both give one.
    let given: Vec<(&'static Setting, Value)> = recipe.iter().flat_map(|r| r.settings.iter()).chain(&args.settings.overrides).cloned().collect();
    let mut form_overrides: Vec<(&'static Setting, Value)> = Vec::new();
    for (setting, value) in Setting::implied_by(&given).iter().chain(&given) {
        form_overrides.retain(|(s, _)| s.name != setting.name);
        form_overrides.push((setting, value.clone()));
    }
    let terminal = std::io::stdout().is_terminal();
    if !terminal && !args.run {
        anyhow::bail!("the workbench needs a terminal; pass --run to soup headless (or use `gnn-soup soup`)");
    }
    let first_dir = args.out.clone().unwrap_or_else(|| engine::new_run_dir(&runs_dir));
    let job = JobSpec { ingredients: paths, dataset: Some(dataset), data: args.data.options(), strategies, device, out_dir: Some(first_dir.clone()), overwrite: false, resume: false };
    if !terminal {
        let (reports, error) = split_outcome(execute(job));
        print!("{}", comparison_table(&reports));
        eprintln!("results in {}", first_dir.display());
        return match error {
            Some(e) => Err(e),
            None => completed(&reports, &first_dir),
        };
    }
    let ingredients_dir = if ingredients.is_dir() { ingredients.clone() } else { ingredients.parent().map(PathBuf::from).unwrap_or_default() };
    let mut setup = Setup::with_overrides(&ingredients_dir, args.strategy.name(), device_choices(&device_name(device), if tch::Cuda::is_available() { tch::Cuda::device_count() as usize } else { 0 }), form_overrides);
    if let Some(d) = &args.data.dataset {
        setup.set_dataset(d);
    }
    let app = App::with_setup("gnn-soup", setup);
    let start = args.run.then_some(Source::Live(job));
    let results = tui::run(app, start, session, Some(&log))?;
    let mut dirs: Vec<String> = results.dirs.iter().map(|d| d.display().to_string()).collect();
    dirs.dedup();
    if !results.reports.is_empty() {
        print!("{}", comparison_table(&results.reports));
        eprintln!("results in {}", dirs.join(", "));
    }
    // A signal ends the workbench with the job's partial result saved: say so in the exit status.
    if crate::signals::interrupted() {
        return completed(&results.reports, std::path::Path::new(&dirs.join(", ")));
    }
    Ok(())
}
