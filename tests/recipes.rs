//! The recipes shipped in `assets/recipes/`: every one loads, and the paper's rows say what the
//! paper's table says (read from `soup::PAPER`, the table the defaults come from).

mod common;

use std::path::PathBuf;

use gnn_soup::model::Arch;
use gnn_soup::recipe::{resolve_settings, Recipe};
use gnn_soup::soup::{InitKind, Strategy, PAPER};

fn recipes() -> Vec<PathBuf> {
    let dir = common::repo().join("assets/recipes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_recipe_loads_and_validates_for_its_strategies() {
    let files = recipes();
    assert_eq!(
        files.len(),
        PAPER.len() + 1,
        "the paper's {} rows and the demo's: {files:?}",
        PAPER.len()
    );
    for f in &files {
        let r = Recipe::read(f).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(r.description.is_some(), "{} has no description", f.display());
        let strategies =
            r.strategies.clone().unwrap_or_else(|| panic!("{} names no strategy", f.display()));
        for s in strategies {
            resolve_settings(Some(&r), s, Arch::Gcn, r.dataset.as_deref().unwrap_or(""), &[])
                .unwrap_or_else(|e| panic!("{e:#}"));
        }
    }
}

#[test]
fn the_papers_rows_as_recipes_match_its_table() {
    for row in PAPER {
        let file = common::repo().join(format!("assets/recipes/{}-{}.toml", row.arch, row.dataset));
        let r = Recipe::read(&file).unwrap_or_else(|e| panic!("{e:#}"));
        // Settings from the recipe alone, on a dataset the table does not know.
        let ls =
            resolve_settings(Some(&r), Strategy::Ls, row.arch, "npz:elsewhere.npz", &[]).unwrap();
        let pls =
            resolve_settings(Some(&r), Strategy::Pls, row.arch, "npz:elsewhere.npz", &[]).unwrap();
        let gis =
            resolve_settings(Some(&r), Strategy::Gis, row.arch, "npz:elsewhere.npz", &[]).unwrap();
        let name = file.display();
        assert_eq!(
            (ls.epochs, ls.lr, ls.t0, ls.init),
            (row.ls_epochs, row.ls_lr, row.t0, InitKind::Ones),
            "{name}"
        );
        assert_eq!(
            (pls.epochs, pls.lr, pls.t0, pls.parts, pls.sample, pls.init),
            (row.pls_epochs, row.pls_lr, row.t0, row.parts, row.sample, InitKind::Normal),
            "{name}"
        );
        assert_eq!(gis.granularity, 20, "{name}");
        assert_eq!(r.strategies.as_deref(), Some(&Strategy::ALL[..]), "{name}");
        if row.dataset.starts_with("ogbn-") {
            assert_eq!(r.dataset.as_deref(), Some(row.dataset), "{name}");
        }
    }
}
