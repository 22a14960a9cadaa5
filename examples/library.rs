//! gnn-soup as a library: train ingredients, then soup them through the engine with an event
//! consumer of your own (here, one that prints LS's loss every 20 epochs and GIS's accepted
//! candidates). Runs on a fresh clone, on generated data:
//!
//!     cargo run --release --example library [OUT_DIR]
use std::path::PathBuf;

use anyhow::Result;
use gnn_soup::data::{self, DataOptions};
use gnn_soup::engine::{self, Event, EventSink, JobSpec};
use gnn_soup::model::Arch;
use gnn_soup::soup::{SoupSettings, Strategy};
use gnn_soup::train::{train_ingredients, TrainConfig, TrainEvent};

/// The consumer: the engine calls it from its own thread for every event of the job.
struct Printer;

impl EventSink for Printer {
    fn event(&self, e: Event) {
        match e {
            Event::Started { strategy, nodes, ingredients, .. } => {
                println!("{strategy}: {} ingredients, {nodes} nodes", ingredients.len())
            }
            Event::Epoch { epoch, loss, val_acc, .. } if epoch % 20 == 19 => {
                println!("  epoch {:>3}  loss {loss:.4}  val {:.2}%", epoch + 1, 100.0 * val_acc)
            }
            Event::Candidate { ingredient, factor, accepted: true, .. } => {
                println!("  took ingredient {ingredient} at a = {factor:.2}")
            }
            Event::Finished { report } => println!(
                "  -> val {:.2}%  test {:.2}%  in {:.2} s",
                100.0 * report.val_acc,
                100.0 * report.test_acc,
                report.seconds
            ),
            Event::Failed { message } => eprintln!("  failed: {message}"),
            _ => {}
        }
    }
}

fn main() -> Result<()> {
    gnn_soup::device::silence_beta_warnings();
    // libtorch's CPU work runs faster off the process's main thread (see src/main.rs).
    std::thread::spawn(run).join().expect("the example's thread panicked")
}

fn run() -> Result<()> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("gnn-soup-library-example"));
    // A generated graph: 3,000 nodes, 6 classes (any dataset name of `--dataset` works here).
    let dataset = "csbm:nodes=3000,classes=6,homophily=0.7,noise=3,train=120";
    let graph = data::load(dataset, &DataOptions::default())?;

    // 1. Ten GCN ingredients from one shared initialisation (ingredient i uses seed i + 1).
    let cfg = TrainConfig { ingredients: 10, epochs: 100, ..TrainConfig::defaults(Arch::Gcn) };
    let trained = train_ingredients(
        &graph,
        &cfg,
        tch::Device::Cpu,
        &out.join("ingredients"),
        true,
        &mut |e| {
            if let TrainEvent::IngredientStarted { index, .. } = e {
                println!("training ingredient {}/{}", index + 1, cfg.ingredients);
            }
        },
    )?;

    // 2. GIS and LS with the defaults the command line would use (csbm has no row in the paper's
    //    table, so LS fits with Adam, dropout off: `--optimizer auto`), LS for 60 epochs. Flags
    //    and recipes layer on the defaults through gnn_soup::recipe::resolve_settings.
    let strategies = vec![
        SoupSettings::defaults(Strategy::Gis, Arch::Gcn, dataset),
        SoupSettings { epochs: 60, ..SoupSettings::defaults(Strategy::Ls, Arch::Gcn, dataset) },
    ];
    let job = JobSpec {
        ingredients: trained.ingredients.iter().map(|i| i.path.clone()).collect(),
        dataset: Some(dataset.into()),
        data: DataOptions::default(),
        strategies,
        device: tch::Device::Cpu,
        out_dir: Some(out.join("run")),
        overwrite: true,
        resume: false,
        reevaluate: false,
    };
    let reports = engine::spawn(job, Printer).join()?;

    // 3. The reports are the same as `gnn-soup soup --json` prints; the soups are checkpoints.
    for r in &reports {
        println!(
            "{}: test {:.2}%, soup in {}",
            r.strategy,
            100.0 * r.test_acc,
            r.checkpoint.as_ref().map_or("-".into(), |p| p.display().to_string())
        );
    }
    Ok(())
}
