//! `gnn-soup export`: a checkpoint back as the state dict of the model it came from.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::args::ExportArgs;
use super::output::print_json;
use crate::checkpoint;
use crate::import::{self, export, Source};

#[derive(Serialize)]
struct Exported {
    path: PathBuf,
    /// The template whose names were used, or None for canonical names.
    like: Option<PathBuf>,
    layout: Option<Source>,
    tensors: usize,
}

/// The original file of the first ingredient, when the checkpoint records one that still exists.
fn first_source(meta: &checkpoint::CheckpointMeta) -> Option<PathBuf> {
    let from = meta.extra.get("imported_from")?;
    let first = from.as_array().map_or(Some(from), |a| a.first())?;
    first.as_str().map(PathBuf::from).filter(|p| p.is_file())
}

pub fn run(args: &ExportArgs) -> Result<()> {
    crate::fsio::check_replaceable(&args.out)?;
    if args.out.exists() && !args.overwrite {
        bail!("{} already exists; choose another --out or pass --overwrite", args.out.display());
    }
    let ckpt = checkpoint::load(&args.checkpoint)?;
    let meta = &ckpt.meta;
    let recorded = meta.extra.get("layout").and_then(|l| l.as_str()).and_then(Source::from_name);
    let like = match (&args.like, args.layout) {
        (Some(p), _) => Some(p.clone()),
        (None, None) => first_source(meta),
        (None, Some(_)) => None,
    };
    let (sd, layout) = match &like {
        Some(template) => {
            let t = import::read_foreign(template)
                .with_context(|| format!("reading the template {}", template.display()))?;
            let sd = export::export(&meta.arch, &ckpt.params, export::Names::Like(&t))
                .with_context(|| {
                    format!("{} as {}", args.checkpoint.display(), template.display())
                })?;
            (sd, None)
        }
        None => {
            let layout = args.layout.or(recorded).unwrap_or(Source::Pyg);
            (
                export::export(&meta.arch, &ckpt.params, export::Names::Canonical(layout))
                    .with_context(|| format!("{}", args.checkpoint.display()))?,
                Some(layout),
            )
        }
    };
    // A model carries its aggregation semantics; the other library's layer computes otherwise.
    let arch = &meta.arch;
    // The paper's GAT is not a PyG or DGL layer stack: its own code decides (the graph as it is).
    if !matches!(arch.arch, crate::model::Arch::Sage | crate::model::Arch::PaperGat) {
        match layout {
            Some(Source::Dgl) if arch.add_self_loops => eprintln!("note: this model adds self-loops, which DGL's GraphConv/GATConv do not: in DGL, add them to the graph (dgl.add_self_loop) to get the same outputs"),
            Some(Source::Pyg) if !arch.add_self_loops => eprintln!("note: this model adds no self-loops, which PyG's GCNConv/GATConv do: build them with add_self_loops=False to get the same outputs"),
            _ => {}
        }
    }
    let bytes = export::file_bytes(&sd, &args.out)?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    checkpoint::write_atomic(&args.out, &bytes)?;
    let done = Exported { path: args.out.clone(), like, layout, tensors: sd.len() };
    if args.json {
        return print_json(&done);
    }
    match (&done.like, done.layout) {
        (Some(t), _) => eprintln!("named as {}", t.display()),
        (None, Some(l)) => eprintln!("{} names ({})", l.name(), meta.arch.describe()),
        _ => {}
    }
    println!("wrote {} ({} tensors)", done.path.display(), done.tensors);
    Ok(())
}
