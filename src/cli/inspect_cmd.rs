//! `gnn-soup inspect <checkpoint|DIR>`.

use anyhow::Result;
use serde::Serialize;

use super::{percent, print_json, table::Table, InspectArgs};
use crate::checkpoint::{self, CheckpointMeta};

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
    let files = if args.path.is_dir() {
        let mut files = checkpoint::list_ingredients(&args.path)?;
        let init = args.path.join(checkpoint::INIT_FILE);
        if init.is_file() {
            files.insert(0, init);
        }
        files
    } else {
        vec![args.path.clone()]
    };
    let mut all = Vec::new();
    for f in &files {
        let ck = checkpoint::load(f)?;
        let tensors = ck.params.iter().map(|(k, t)| TensorInfo { name: k.clone(), shape: t.size(), dtype: format!("{:?}", t.kind()) }).collect();
        all.push(Inspected { path: f.display().to_string(), weights_fingerprint: checkpoint::weights_fingerprint(&ck.params), meta: ck.meta, tensors });
    }
    if args.json {
        return if args.path.is_dir() { print_json(&all) } else { print_json(&all[0]) };
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
        println!("val / test    {} / {}", percent(m.val_acc.unwrap_or(f64::NAN)), percent(m.test_acc.unwrap_or(f64::NAN)));
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
            let name = std::path::Path::new(&c.path).file_name().unwrap_or_default().to_string_lossy().into_owned();
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
    }
    Ok(())
}
