//! Dashboard rendering with ratatui's TestBackend, fed by a scripted event stream (no libtorch
//! work, no terminal): what each state shows, and no panic at any size.

use std::collections::BTreeMap;

use gnn_soup::engine::report::{IngredientAccuracy, IngredientResult, SoupReport};
use gnn_soup::engine::Event;
use gnn_soup::model::Arch;
use gnn_soup::soup::{SoupSettings, Strategy};
use gnn_soup::tui::app::{Action, App, Key};
use gnn_soup::tui::system::Snapshot;
use gnn_soup::tui::ui;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn started(strategy: Strategy, steps: usize, parts: Option<usize>) -> Event {
    Event::Started {
        strategy,
        dataset: "cora".into(),
        nodes: 2708,
        edges: 10556,
        device: "cpu".into(),
        ingredients: (0..4).map(|i| format!("ingredient-{i:02}.safetensors")).collect(),
        groups: vec!["convs.0.lin.weight".into(), "convs.0.bias".into()],
        steps,
        parts,
    }
}

fn report(strategy: Strategy, partial: bool) -> SoupReport {
    SoupReport {
        strategy,
        dataset: "cora".into(),
        dataset_fingerprint: "f".into(),
        device: "cpu".into(),
        settings: SoupSettings::defaults(strategy, Arch::Gcn, "cora"),
        val_acc: 0.812,
        test_acc: 0.824,
        seconds: 2.5,
        load_seconds: 0.1,
        peak_rss_bytes: 1 << 28,
        rss_start_bytes: 1 << 27,
        peak_device_bytes: None,
        partial,
        ingredients: vec![IngredientResult { path: "a".into(), val_acc: 0.79, test_acc: 0.81 }],
        uniform: IngredientAccuracy { val_acc: 0.80, test_acc: 0.81 },
        weights: BTreeMap::new(),
        history: vec![],
        candidates: vec![],
        holdout: None,
        checkpoint: None,
    }
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let snap = Snapshot { cpu_ram: "CPU 50%  RAM 1.0/23.0 GiB".into(), gpu: "no NVIDIA GPU found".into() };
    t.draw(|f| ui::draw(f, app, &snap)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..buf.area.height).map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>() + "\n").collect()
}

fn ls_app() -> App {
    let mut app = App::new("gnn-soup");
    app.apply(&Event::Evaluation { what: "ingredient 0".into(), val_acc: 0.79, test_acc: 0.81 });
    app.apply(&started(Strategy::Ls, 10, None));
    for e in 0..6 {
        app.apply(&Event::Epoch {
            epoch: e,
            epochs: 10,
            loss: 1.0 - 0.1 * e as f64,
            val_acc: 0.78 + 0.005 * e as f64,
            select_acc: None,
            lr: 5.0,
            weights: vec![vec![0.4, 0.3, 0.2, 0.1], vec![0.1, 0.2, 0.3, 0.4]],
            seconds: 0.1 * (e + 1) as f64,
        });
    }
    app
}

#[test]
fn ls_dashboard_shows_curves_weights_and_progress() {
    let app = ls_app();
    let s = render(&app, 100, 30);
    assert!(s.contains("ls on cora (2708 nodes, 10556 edges), 4 ingredients, cpu") && s.contains("[running]"), "{s}");
    assert!(s.contains("6/10"), "{s}");
    assert!(s.contains("loss (recent): 0.5000"), "{s}");
    assert!(s.contains("val accuracy (recent): 80.50%"), "{s}");
    assert!(s.contains(" 0 0.250"), "mean weight of ingredient 0: {s}");
    assert!(s.contains("no NVIDIA GPU found"), "{s}");
    assert!(s.contains("q stop"), "{s}");
}

#[test]
fn pls_candidates_results_and_failure_render() {
    let mut app = App::new("gnn-soup");
    app.apply(&started(Strategy::Pls, 5, Some(8)));
    app.apply(&Event::PartitionSample { epoch: 0, parts: vec![1, 5], nodes: 300, edges: 900, val_nodes: 40 });
    let s = render(&app, 100, 30);
    assert!(s.contains("PLS parts: 2 of 8 sampled") && s.contains("300 nodes, 900 edges") && s.contains("1*"), "{s}");

    app.apply(&started(Strategy::Gis, 3, None));
    app.apply(&Event::Candidate { ingredient: 2, factor: 0.842, val_acc: 0.81, accepted: true, step: 1, steps: 3 });
    app.apply(&Event::Candidate { ingredient: 3, factor: 1.0, val_acc: 0.80, accepted: false, step: 2, steps: 3 });
    app.apply(&Event::Finished { report: Box::new(report(Strategy::Gis, false)) });
    app.apply(&Event::Finished { report: Box::new(report(Strategy::Ls, true)) });
    let s = render(&app, 100, 30);
    assert!(s.contains("0.84") && s.contains("kept") && s.contains("rejected"), "{s}");
    assert!(s.contains("gis") && s.contains("81.20%") && s.contains("ls*"), "{s}");

    app.apply(&Event::Failed { message: "CUDA out of memory".into() });
    let s = render(&app, 100, 30);
    assert!(s.contains("FAILED") && s.contains("CUDA out of memory"), "{s}");
}

#[test]
fn small_terminals_get_a_message_and_nothing_panics() {
    let app = ls_app();
    for (w, h) in [(0, 0), (1, 1), (2, 2), (10, 5), (79, 24), (80, 23), (80, 24), (200, 60)] {
        let s = render(&app, w, h);
        if w >= 80 && h >= 24 {
            assert!(s.contains("progress"), "{w}x{h}");
        } else if w >= 40 && h >= 3 {
            assert!(s.contains("at least 80x24"), "{w}x{h}: {s}");
        }
    }
    let mut help = ls_app();
    help.on_key(Key::Char('?'));
    assert!(render(&help, 100, 30).contains("keys"));
}

#[test]
fn quitting_asks_while_running() {
    let mut app = ls_app();
    assert_eq!(app.on_key(Key::Char('q')), Action::None);
    assert!(render(&app, 100, 30).contains("Stop it"));
    assert_eq!(app.on_key(Key::Char('n')), Action::None);
    app.on_key(Key::Char('q'));
    assert_eq!(app.on_key(Key::Char('y')), Action::Cancel);
    app.finish();
    assert_eq!(app.on_key(Key::Char('q')), Action::Quit);
    let mut app = ls_app();
    app.on_key(Key::Tab);
    assert!(render(&app, 100, 30).contains("[mixing weights"));
}
