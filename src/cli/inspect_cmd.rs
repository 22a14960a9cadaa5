//! `gnn-soup inspect <checkpoint|DIR>`.

use anyhow::Result;
use serde::Serialize;

use super::args::InspectArgs;
use super::headless::resolve_ingredients;
use super::output::{percent, print_json, Table};
use crate::checkpoint::{self, CheckpointMeta};
use crate::inspect::{self, DiversityReport};

#[derive(Serialize)]
struct TensorInfo {
    name: String,
    shape: Vec<i64>,
    dtype: String,
}

#[derive(Serialize)]
struct Inspected {
    path: String,
    meta: CheckpointMeta,
    weights_fingerprint: String,
    tensors: Vec<TensorInfo>,
}

pub fn run(args: &InspectArgs) -> Result<()> {
    let path = resolve_ingredients(&args.path, &args.data)?;
    let files = if path.is_dir() {
        let mut files = checkpoint::list_ingredients(&path)?;
        let init = path.join(checkpoint::INIT_FILE);
        if init.is_file() {
            files.insert(0, init);
        }
        files
    } else {
        vec![path.clone()]
    };
    let mut all = Vec::new();
    for f in &files {
        let ck = checkpoint::load(f)?;
        let tensors = ck
            .params
            .iter()
            .map(|(k, t)| TensorInfo {
                name: k.clone(),
                shape: t.size(),
                dtype: format!("{:?}", t.kind()),
            })
            .collect();
        all.push(Inspected {
            path: f.display().to_string(),
            weights_fingerprint: checkpoint::weights_fingerprint(&ck.params),
            meta: ck.meta,
            tensors,
        });
    }
    let ingredients: Vec<std::path::PathBuf> = all
        .iter()
        .filter(|c| c.meta.kind == checkpoint::CheckpointKind::Ingredient)
        .map(|c| c.path.clone().into())
        .collect();
    if args.diversity {
        if ingredients.len() < 2 {
            anyhow::bail!(
                "{}: --diversity needs a directory with at least two ingredients",
                path.display()
            );
        }
        return print_json(&inspect::analyse(&ingredients)?);
    }
    if args.json {
        return if path.is_dir() { print_json(&all) } else { print_json(&all[0]) };
    }
    if let [one] = all.as_slice() {
        let m = &one.meta;
        println!("file          {}", one.path);
        println!("kind          {:?}", m.kind);
        println!("architecture  {}", m.arch.describe());
        println!("parameters    {}", m.arch.num_parameters());
        println!("dataset       {} (fingerprint {})", m.dataset, m.dataset_fingerprint);
        println!("shared init   {}", m.init_fingerprint);
        println!("weights       {}", one.weights_fingerprint);
        println!("seed          {}", m.seed.map_or("-".into(), |s| s.to_string()));
        println!("epochs        {}", m.epochs.map_or("-".into(), |s| s.to_string()));
        println!(
            "val / test    {} / {}",
            percent(m.val_acc.unwrap_or(f64::NAN)),
            percent(m.test_acc.unwrap_or(f64::NAN))
        );
        println!("tool          {}", m.tool_version);
        for (k, v) in &m.extra {
            println!("{k:<13} {v}");
        }
        let mut t = Table::new(["tensor", "shape", "dtype"]);
        for ti in &one.tensors {
            t.row([ti.name.clone(), format!("{:?}", ti.shape), ti.dtype.clone()]);
        }
        print!("\n{}", t.render());
    } else {
        let mut t = Table::new(["file", "kind", "arch", "dataset", "seed", "val", "test", "init"]);
        for c in &all {
            let m = &c.meta;
            let name = std::path::Path::new(&c.path)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            t.row([
                name,
                format!("{:?}", m.kind).to_lowercase(),
                format!("{} {}x{}", m.arch.arch, m.arch.layers, m.arch.hidden),
                m.dataset.clone(),
                m.seed.map_or("-".into(), |s| s.to_string()),
                percent(m.val_acc.unwrap_or(f64::NAN)),
                percent(m.test_acc.unwrap_or(f64::NAN)),
                m.init_fingerprint.clone(),
            ]);
        }
        print!("{}", t.render());
        if ingredients.len() >= 2 {
            print!("\n{}", diversity_text(&inspect::analyse(&ingredients)?));
        }
    }
    Ok(())
}

/// The diversity report as plain tables.
fn diversity_text(d: &DiversityReport) -> String {
    let names: Vec<String> = (0..d.ingredients.len()).map(|i| format!("#{i}")).collect();
    let num = |x: f64| format!("{x:.4}");
    let mut out = String::new();
    let mut t = Table::new(["ingredient", "val", "test", "weight norm", "distance from init"]);
    for (i, g) in d.ingredients.iter().enumerate() {
        t.row([
            format!("{} {}", names[i], g.path.file_name().unwrap_or_default().to_string_lossy()),
            percent(g.val_acc.unwrap_or(f64::NAN)),
            percent(g.test_acc.unwrap_or(f64::NAN)),
            num(g.norm),
            g.distance_from_init.map_or("- (no init.safetensors)".into(), num),
        ]);
    }
    out.push_str(&t.render());
    let square = |title: &str, m: &[Vec<f64>]| {
        let mut t = Table::new(std::iter::once(title.to_string()).chain(names.iter().cloned()));
        for (i, row) in m.iter().enumerate() {
            t.row(std::iter::once(names[i].clone()).chain(row.iter().map(|&x| num(x))));
        }
        t.render()
    };
    out.push_str(&format!("\npairwise L2 distance between weights\n{}", square("", &d.distance)));
    let what = if d.cosine_of == "updates" {
        "updates (weights minus the shared init)"
    } else {
        "weights (no init.safetensors found)"
    };
    out.push_str(&format!(
        "\ncosine similarity of {what}; mean off-diagonal {:.4}\n{}",
        d.mean_cosine(),
        square("", &d.cosine)
    ));
    if let Some(i) = d.outlier() {
        out.push_str(&format!("least like the others (lowest mean cosine): #{i}\n"));
    }
    let mut t = Table::new(std::iter::once("tensor norm".to_string()).chain(names.iter().cloned()));
    for tn in &d.tensors {
        t.row(std::iter::once(tn.name.clone()).chain(tn.norms.iter().map(|&x| format!("{x:.3}"))));
    }
    out.push_str(&format!("\n{}", t.render()));
    out
}
