//! `gnn-soup tui`: the workbench (setup screen, inspector, dashboard), or with `--run` and no
//! terminal the same job headless.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;

use super::args::{StrategyChoice, TuiArgs};
use super::headless::{
    comparison_table, completed, demo_ingredients, execute, ingredients_of, split_outcome,
};
use crate::checkpoint;
use crate::device::{device_name, parse_device};
use crate::engine::{self, JobSpec};
use crate::recipe::Recipe;
use crate::soup::Strategy;
use crate::tui::app::App;
use crate::tui::setup::{device_choices, Setup};
use crate::tui::{self, Session, Source};

pub fn run(args: &TuiArgs) -> Result<()> {
    let log = super::logging::log_file();
    let runs_dir = crate::paths::results_dir().join("runs");
    let session = Session {
        data: args.data.options(),
        runs_dir: runs_dir.clone(),
        fixed_out: args.out.clone(),
        reevaluate: args.reevaluate,
    };
    if let Some(dir) = &args.attach {
        // No terminal to draw on (ssh without -t, a pipe): the run as plain lines.
        let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        // A training run: its events file, or a directory with one (and no soup run's events).
        let training = if dir.is_file()
            && dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("train-events"))
        {
            Some(dir.clone())
        } else {
            Some(dir.join(crate::train::TRAIN_EVENTS_FILE))
                .filter(|f| f.is_file() && !dir.join(engine::EVENTS_FILE).is_file())
        };
        if let Some(file) = training {
            if !terminal {
                return super::headless::follow_training_as_text(&file);
            }
            let app =
                App::training(format!("gnn-soup: {}", file.display()), file.display().to_string());
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
        if !terminal {
            return super::headless::follow_run_as_text(dir);
        }
        let app = App::attached(format!("gnn-soup: {}", dir.display()), dir.display().to_string());
        tui::run(app, Some(Source::Attach(dir.clone())), session, Some(&log))?;
        return Ok(());
    }
    let recipe = args.recipe.as_deref().map(Recipe::read).transpose()?;
    let device = parse_device(
        args.device
            .as_deref()
            .or(recipe.as_ref().and_then(|r| r.device.as_deref()))
            .unwrap_or("auto"),
    )?;
    let data = args.data.with_recipe(recipe.as_ref());
    // Without ingredients (from the flag or the recipe): the demo's, souped as its recipe says
    // unless another is given (flags still override it).
    let (paths, recipe) = match ingredients_of(args.ingredients.as_deref(), recipe.as_ref(), &data)?
    {
        Some(paths) => (paths, recipe),
        None => (
            checkpoint::list_ingredients(&demo_ingredients(device)?)?,
            recipe.or_else(|| Some(crate::demo::recipe())),
        ),
    };
    let first = paths.first().ok_or_else(|| anyhow::anyhow!("no ingredients to soup"))?;
    let meta = checkpoint::read_meta(first)?;
    let dataset = data.dataset.clone().unwrap_or_else(|| meta.dataset.clone());
    let chosen = args
        .strategy
        .map(StrategyChoice::strategies)
        .or_else(|| recipe.as_ref().and_then(|r| r.strategies.clone()))
        .unwrap_or_else(|| Strategy::ALL.to_vec());
    let strategy_name = match (args.strategy, chosen.as_slice()) {
        (Some(choice), _) => choice.name(),
        (None, [one]) => one.name(),
        (None, _) => "all",
    };
    let strategies = args.settings.resolve(recipe.as_ref(), &chosen, meta.arch.arch, &dataset)?;
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if !terminal && !args.run {
        anyhow::bail!(
            "the workbench needs a terminal; pass --run to soup headless (or use `gnn-soup soup`)"
        );
    }
    let fixed_out = args.out.clone().or_else(|| recipe.as_ref().and_then(|r| r.out.clone()));
    let session = Session {
        data: data.options(),
        runs_dir: runs_dir.clone(),
        fixed_out: fixed_out.clone(),
        reevaluate: args.reevaluate,
    };
    let first_dir = fixed_out.unwrap_or_else(|| engine::new_run_dir(&runs_dir));
    // The form browses one directory: the first ingredient's, with only the job's selected.
    let ingredients_dir = first.parent().map(PathBuf::from).unwrap_or_default();
    let job = JobSpec {
        ingredients: paths.clone(),
        dataset: Some(dataset),
        data: data.options(),
        strategies,
        device,
        out_dir: Some(first_dir.clone()),
        overwrite: false,
        resume: false,
        reevaluate: args.reevaluate,
    };
    if !terminal {
        let (reports, error) = split_outcome(execute(job));
        print!("{}", comparison_table(&reports));
        eprintln!("results in {}", first_dir.display());
        return match error {
            Some(e) => Err(e),
            None => completed(&reports, &first_dir),
        };
    }
    let mut setup = Setup::with_given(
        &ingredients_dir,
        strategy_name,
        device_choices(
            &device_name(device),
            if tch::Cuda::is_available() { tch::Cuda::device_count() as usize } else { 0 },
        ),
        recipe.clone(),
        args.settings.overrides.clone(),
    );
    setup.keep_selected(&paths);
    if let Some(d) = &data.dataset {
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
