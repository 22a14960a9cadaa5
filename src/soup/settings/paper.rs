//! The paper's souping table (Zuber et al., 2025): its tuned LS/PLS settings per architecture and
//! dataset, where gnn-soup's defaults come from when a pair is in it.

use crate::model::Arch;

/// One row of the paper's souping table.
#[derive(Debug, Clone, Copy)]
pub struct PaperRow {
    pub arch: Arch,
    pub dataset: &'static str,
    pub ls_epochs: usize,
    pub ls_lr: f64,
    pub t0: usize,
    /// PLS: R of K.
    pub sample: usize,
    pub parts: usize,
    pub pls_epochs: usize,
    pub pls_lr: f64,
}

#[allow(clippy::too_many_arguments)] // one argument per column of the paper's table
const fn row(
    arch: Arch,
    dataset: &'static str,
    ls_epochs: usize,
    ls_lr: f64,
    t0: usize,
    sample: usize,
    parts: usize,
    pls_epochs: usize,
    pls_lr: f64,
) -> PaperRow {
    PaperRow { arch, dataset, ls_epochs, ls_lr, t0, sample, parts, pls_epochs, pls_lr }
}

/// The paper's souping table.
pub const PAPER: &[PaperRow] = &[
    row(Arch::Gcn, "flickr", 100, 80.0, 3, 8, 32, 150, 11.0),
    row(Arch::Gcn, "ogbn-arxiv", 250, 11.0, 4, 8, 32, 200, 7.5),
    row(Arch::Gcn, "reddit", 100, 80.0, 4, 8, 32, 500, 110.0),
    row(Arch::Gcn, "ogbn-products", 100, 40.0, 4, 4, 32, 100, 40.0),
    row(Arch::Gat, "flickr", 150, 11.0, 4, 8, 32, 150, 40.0),
    row(Arch::Gat, "ogbn-arxiv", 100, 10.0, 4, 4, 32, 400, 10.0),
    row(Arch::Gat, "reddit", 25, 80.0, 4, 2, 32, 100, 80.0),
    row(Arch::Gat, "ogbn-products", 100, 5.0, 4, 4, 128, 100, 40.0),
    row(Arch::Sage, "flickr", 5, 10.0, 4, 8, 32, 125, 15.0),
    row(Arch::Sage, "ogbn-arxiv", 200, 15.0, 4, 8, 32, 125, 15.0),
    row(Arch::Sage, "reddit", 50, 10.0, 4, 4, 32, 50, 6.0),
    row(Arch::Sage, "ogbn-products", 25, 10.0, 4, 4, 32, 50, 1.0),
];

/// The paper's row for `arch` on a dataset name: the real dataset, or its synthetic look-alike.
pub fn paper_row(arch: Arch, dataset: &str) -> Option<&'static PaperRow> {
    let n = dataset.to_ascii_lowercase();
    let base = match n.split(':').next().unwrap_or("") {
        "flickr" => "flickr",
        "reddit" => "reddit",
        "ogbn-arxiv" | "csbm-arxiv" => "ogbn-arxiv",
        "ogbn-products" | "csbm-products" => "ogbn-products",
        _ => return None,
    };
    PAPER.iter().find(|r| r.arch == arch.paper_family() && r.dataset == base)
}
