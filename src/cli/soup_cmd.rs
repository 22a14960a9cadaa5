//! `gnn-soup soup` (headless souping with progress bars) and `gnn-soup eval`.

use anyhow::{bail, Result};

use super::args::{EvalArgs, SoupArgs, StrategyChoice};
use super::headless::{
    check_comparison_free, comparison_table, completed, execute, ingredients_of,
    resolve_ingredients, split_outcome, write_comparison,
};
use super::output::{percent, print_json};
use crate::checkpoint;
use crate::data;
use crate::device::parse_device;
use crate::engine::{self, JobSpec};
use crate::minibatch::Minibatch;
use crate::model::{self, GraphTensors};
use crate::recipe::Recipe;
use crate::soup::Strategy;

pub fn run(args: &SoupArgs) -> Result<()> {
    let recipe = args.recipe.as_deref().map(Recipe::read).transpose()?;
    let device = parse_device(
        args.device
            .as_deref()
            .or(recipe.as_ref().and_then(|r| r.device.as_deref()))
            .unwrap_or("auto"),
    )?;
    let job = match &args.resume {
        Some(dir) => {
            JobSpec { reevaluate: args.reevaluate, ..engine::job_for_resume(dir, device)? }
        }
        None => new_job(args, recipe.as_ref(), device)?,
    };
    let out = job.out_dir.clone().unwrap_or_default();
    let comparing = job.strategies.len() > 1;
    let all = comparing || matches!(args.strategy, Some(StrategyChoice::All));
    // Whatever finished is printed and written even when another strategy failed.
    let (reports, error) = split_outcome(execute(job));
    if args.json {
        match reports.as_slice() {
            [one] if !all => print_json(one)?,
            [] if error.is_some() => {}
            all => print_json(&all)?,
        }
    } else if !reports.is_empty() {
        print!("{}", comparison_table(&reports));
    }
    if comparing && !reports.is_empty() {
        write_comparison(&out, &reports)?;
    }
    if let Some(e) = error {
        return Err(e);
    }
    completed(&reports, &out)
}

/// The job the flags describe (without --resume): the flags, then the recipe, then the defaults.
fn new_job(args: &SoupArgs, recipe: Option<&Recipe>, device: tch::Device) -> Result<JobSpec> {
    let missing = |flag: &str| match recipe {
        Some(r) => {
            anyhow::anyhow!("--{flag} is needed: the recipe {} names no {flag}", r.path.display())
        }
        None => anyhow::anyhow!("--{flag} is needed (or --recipe FILE, or --resume RUN_DIR)"),
    };
    let data = args.data.with_recipe(recipe);
    let ingredients = ingredients_of(args.ingredients.as_deref(), recipe, &data)?
        .ok_or_else(|| missing("ingredients"))?;
    if ingredients.is_empty() {
        bail!("no ingredients to soup");
    }
    let out = args
        .out
        .clone()
        .or_else(|| recipe.and_then(|r| r.out.clone()))
        .ok_or_else(|| missing("out"))?;
    let meta = checkpoint::read_meta(&ingredients[0])?;
    let dataset = data.dataset.clone().unwrap_or_else(|| meta.dataset.clone());
    let chosen = match (&args.strategy, recipe.and_then(|r| r.strategies.clone())) {
        (Some(flag), _) => flag.strategies(),
        (None, Some(listed)) => listed,
        (None, None) => vec![Strategy::Ls],
    };
    let strategies = args.settings.resolve(recipe, &chosen, meta.arch.arch, &dataset)?;
    if strategies.len() > 1 {
        check_comparison_free(&out, args.overwrite)?;
    }
    Ok(JobSpec {
        ingredients,
        dataset: Some(dataset),
        data: data.options(),
        strategies,
        device,
        out_dir: Some(out),
        overwrite: args.overwrite,
        resume: false,
        reevaluate: args.reevaluate,
    })
}

/// Why exact whole-graph inference of `spec` on `g` would not fit on `device` (the graph, its
/// sparse operator, one layer's input and output), or None when it does.
fn exact_inference_shortfall(
    g: &data::Graph,
    spec: &crate::model::ArchSpec,
    device: tch::Device,
) -> Result<Option<String>> {
    use crate::engine::memory::{self, gib};
    let (n, e) = (g.num_nodes as u64, g.num_edges() as u64);
    let need = memory::graph_bytes(n, e, g.num_features as u64)
        + memory::exact_inference_bytes(spec, n, e);
    Ok(memory::shortfall(device, need)?.map(|available| {
        format!(
            "exact inference on {} needs about {:.2} GiB; {:.2} GiB is available on {}",
            g.name,
            gib(need),
            gib(available),
            crate::device::device_name(device)
        )
    }))
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    let path = resolve_ingredients(&args.checkpoint, &args.data)?;
    let ck = checkpoint::load(&path)?;
    let dataset = args.data.dataset.clone().unwrap_or_else(|| ck.meta.dataset.clone());
    let g = data::load(&dataset, &args.data.options())?;
    if g.num_features as i64 != ck.meta.arch.in_dim || g.num_classes as i64 > ck.meta.arch.out_dim {
        bail!(
            "{} expects {} features and {} classes; {dataset} has {} and {}",
            args.checkpoint.display(),
            ck.meta.arch.in_dim,
            ck.meta.arch.out_dim,
            g.num_features,
            g.num_classes
        );
    }
    if g.fingerprint() != ck.meta.dataset_fingerprint {
        eprintln!(
            "warning: {} was trained on {} ({}); evaluating on {} ({})",
            args.checkpoint.display(),
            ck.meta.dataset,
            ck.meta.dataset_fingerprint,
            g.name,
            g.fingerprint()
        );
    }
    let spec = &ck.meta.arch;
    let sampled = match args.eval_batch_size {
        Some(size) => Some(Minibatch::new(
            Some(size),
            Some(args.eval_fanout.as_ref().map_or_else(
                || vec![crate::sampling::Fanout::All; spec.layers],
                |f| f.0.clone(),
            )),
            spec.layers,
        )?),
        None => exact_inference_shortfall(&g, spec, device)?
            .map(|reason| -> Result<Minibatch> {
                let m = Minibatch::new(None, None, spec.layers)?;
                eprintln!("{reason}: evaluating over sampled blocks instead ({}; an estimate; --eval-batch-size and --eval-fanout choose others)", m.describe());
                Ok(m)
            })
            .transpose()?,
    };
    let gt = GraphTensors::new(&g, device);
    let started = std::time::Instant::now();
    let params = checkpoint::to_device(&ck.params, device);
    let acc = match &sampled {
        Some(m) => crate::minibatch::sampled_accuracies(spec, &params, &gt, &g, m, 0),
        None => model::evaluate(spec, &params, &gt),
    };
    // One full-graph inference pass (building the graph's sparse operators included).
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        return print_json(&serde_json::json!({
            "checkpoint": args.checkpoint,
            "dataset": g.name,
            "train_acc": acc.train,
            "val_acc": acc.val,
            "test_acc": acc.test,
            "seconds": seconds,
            "exact": sampled.is_none(),
            "sampled": sampled,
        }));
    }
    println!(
        "{}: train {} val {} test {}",
        args.checkpoint.display(),
        percent(acc.train),
        percent(acc.val),
        percent(acc.test)
    );
    Ok(())
}
