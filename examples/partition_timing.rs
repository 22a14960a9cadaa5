//! Times PLS's METIS partition of a dataset into K parts (its first-run cost) and says how good
//! the parts are: `cargo run --release --example partition_timing -- DATASET K [REPEATS]`
//! (`GNN_SOUP_DATA_DIR` for the data). One JSON line: seconds per repeat, the share of edges cut,
//! and the largest part's share of nodes, validation nodes and edges against a perfect split.
//! `scripts/bench-metis.sh` runs it beside DGL's METIS call on the same graph.
use std::time::Instant;

use gnn_soup::data::{self, DataOptions};
use gnn_soup::soup::partition;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dataset, k) = (&args[1], args[2].parse::<usize>().expect("K"));
    let repeats = args.get(3).map_or(3, |r| r.parse().expect("REPEATS"));
    let data_dir = std::env::var("GNN_SOUP_DATA_DIR").unwrap_or_else(|_| ".".into());
    let opts = DataOptions { data_dir: data_dir.into(), split_seed: 0, download: false };
    let g = data::load(dataset, &opts).unwrap();
    let mut seconds = Vec::new();
    let mut part = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        part = partition::metis_partition(&g, k).unwrap();
        seconds.push(t.elapsed().as_secs_f64());
    }
    let cut = g.src.iter().zip(&g.dst).filter(|(&s, &d)| part[s as usize] != part[d as usize]);
    let imbalance = |weight: &dyn Fn(usize) -> f64| {
        let mut per = vec![0.0; k];
        for (v, &p) in part.iter().enumerate() {
            per[p as usize] += weight(v);
        }
        let total: f64 = per.iter().sum();
        per.iter().cloned().fold(0.0, f64::max) / (total / k as f64)
    };
    let mut degree = vec![0.0; g.num_nodes];
    for &s in &g.src {
        degree[s as usize] += 1.0;
    }
    let mut is_val = vec![0.0; g.num_nodes];
    for &v in &g.val {
        is_val[v as usize] = 1.0;
    }
    let doc = serde_json::json!({
        "side": "gnn-soup",
        "dataset": dataset,
        "k": k,
        "seconds": seconds,
        "edge_cut": cut.count() as f64 / g.src.len() as f64,
        "max_part_nodes": imbalance(&|_| 1.0),
        "max_part_val": imbalance(&|v| is_val[v]),
        "max_part_edges": imbalance(&|v| degree[v]),
    });
    println!("{doc}");
}
