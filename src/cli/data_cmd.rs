//! `gnn-soup data info|download`.

use anyhow::{bail, Result};

use super::args::DataArgs;
use super::output::print_json;
use crate::data::{self, download, ogb, planetoid, DatasetSpec};

pub fn info(args: &DataArgs, json: bool) -> Result<()> {
    let g = data::load(args.dataset_or_default(), &args.options())?;
    let info = g.info();
    if json {
        return print_json(&info);
    }
    println!("dataset      {}", info.name);
    println!("fingerprint  {}", info.fingerprint);
    println!("nodes        {}", info.nodes);
    println!(
        "edges        {} (directed, symmetrised; average degree {:.2})",
        info.edges, info.average_degree
    );
    println!("isolated     {}", info.isolated_nodes);
    println!("features     {}", info.features);
    println!("classes      {}", info.classes);
    println!("split        train {} / val {} / test {}", info.train, info.val, info.test);
    println!("class balance");
    for (c, &count) in info.class_counts.iter().enumerate() {
        let share = count as f64 / info.nodes as f64;
        println!(
            "  {c:>4}  {count:>9}  {:>6.2}%  {}",
            100.0 * share,
            "#".repeat((share * 60.0).round() as usize)
        );
    }
    Ok(())
}

pub fn export(args: &DataArgs, out: &std::path::Path, overwrite: bool) -> Result<()> {
    crate::fsio::check_replaceable(out)?;
    if out.exists() && !overwrite {
        bail!("{} exists; pass --overwrite to replace it", out.display());
    }
    let g = data::load(args.dataset_or_default(), &args.options())?;
    data::npz::write_graph(&g, out)?;
    eprintln!(
        "{}: {} nodes, {} edges, {} features -> {}",
        g.name,
        g.num_nodes,
        g.num_edges(),
        g.num_features,
        out.display()
    );
    Ok(())
}

pub fn download(args: &DataArgs) -> Result<()> {
    let opts = args.options();
    match DatasetSpec::parse(args.dataset_or_default())? {
        DatasetSpec::Planetoid(name) => match planetoid::locate(&opts.data_dir, &name) {
            Some(dir) => eprintln!("{name} is already in {}", dir.display()),
            None => {
                download::planetoid(&opts.data_dir, &name)?;
            }
        },
        DatasetSpec::Ogb(name) => match ogb::locate(&opts.data_dir, &name) {
            Some(p) => eprintln!("{name} is already at {}", p.display()),
            None => {
                download::ogb(&opts.data_dir, &name)?;
            }
        },
        other => bail!("{other:?} is not a named dataset that can be downloaded"),
    }
    let g = data::load(args.dataset_or_default(), &DataOptions { download: false, ..opts })?;
    eprintln!(
        "{}: {} nodes, {} edges, fingerprint {}",
        g.name,
        g.num_nodes,
        g.num_edges(),
        g.fingerprint()
    );
    Ok(())
}

use crate::data::DataOptions;
