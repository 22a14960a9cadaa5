//! Dashboard rendering with ratatui's TestBackend, fed by a scripted event stream (no libtorch
//! work, no terminal): what each state shows, and no panic at any size.

use std::collections::BTreeMap;

use gnn_soup::engine::report::{IngredientAccuracy, IngredientResult, SoupReport};
use gnn_soup::engine::{Evaluated, Event};
use gnn_soup::model::Arch;
use gnn_soup::soup::{LogLevel, SoupSettings, Strategy};
use gnn_soup::tui::app::{Action, App};
use gnn_soup::tui::keys::Key;
use gnn_soup::tui::state::Panel;
use gnn_soup::tui::system::Snapshot;
use gnn_soup::tui::view;
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
        fit_seconds: 2.2,
        load_seconds: 0.1,
        peak_rss_bytes: 1 << 28,
        rss_start_bytes: 1 << 27,
        load_peak_rss_bytes: 1 << 28,
        peak_device_bytes: None,
        peak_device_allocated_bytes: None,
        partial,
        ingredients: vec![IngredientResult {
            path: "a".into(),
            val_acc: 0.79,
            test_acc: 0.81,
            recorded: false,
        }],
        uniform: IngredientAccuracy { val_acc: 0.80, test_acc: 0.81 },
        weights: BTreeMap::new(),
        history: vec![],
        candidates: vec![],
        holdout: None,
        notes: vec![],
        checkpoint: None,
    }
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let snap =
        Snapshot { cpu_ram: "CPU 50%  RAM 1.0/23.0 GiB".into(), gpu: "no NVIDIA GPU found".into() };
    t.draw(|f| view::draw(f, app, &snap)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>() + "\n"
        })
        .collect()
}

fn ls_app() -> App {
    let mut app = App::new("gnn-soup");
    app.apply(&Event::Evaluation { what: Evaluated::Ingredient(0), val_acc: 0.79, test_acc: 0.81 });
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
    assert!(
        s.contains("ls on cora (2708 nodes, 10556 edges), 4 ingredients, cpu")
            && s.contains("[running]"),
        "{s}"
    );
    assert!(s.contains("6/10"), "{s}");
    assert!(s.contains("loss (ls, recent): 0.5000"), "{s}");
    assert!(s.contains("val accuracy (ls, recent): 80.50%"), "{s}");
    assert!(
        s.contains("LS schedule") && s.contains("epoch 6/10") && s.contains("learning rate 5.000"),
        "{s}"
    );
    assert!(s.contains(" 0 0.250"), "mean weight of ingredient 0: {s}");
    assert!(s.contains("no NVIDIA GPU found"), "{s}");
    assert!(s.contains("q stop"), "{s}");
}

#[test]
fn pls_candidates_results_and_failure_render() {
    let mut app = App::new("gnn-soup");
    app.apply(&started(Strategy::Pls, 5, Some(8)));
    app.apply(&Event::PartitionSample {
        epoch: 0,
        parts: vec![1, 5],
        nodes: 300,
        edges: 900,
        val_nodes: 40,
    });
    let s = render(&app, 100, 30);
    assert!(
        s.contains("PLS parts: 2 of 8 sampled")
            && s.contains("300 nodes, 900 edges")
            && s.contains("1*"),
        "{s}"
    );

    app.apply(&started(Strategy::Gis, 3, None));
    app.apply(&Event::Candidate {
        ingredient: 2,
        factor: 0.842,
        val_acc: 0.81,
        accepted: true,
        step: 1,
        steps: 3,
    });
    app.apply(&Event::Candidate {
        ingredient: 3,
        factor: 1.0,
        val_acc: 0.80,
        accepted: false,
        step: 2,
        steps: 3,
    });
    let s = render(&app, 100, 30);
    assert!(s.contains("0.84") && s.contains("kept") && s.contains("rejected"), "{s}");
    let mut gis = report(Strategy::Gis, false);
    gis.candidates = vec![
        gnn_soup::soup::CandidateRecord {
            ingredient: 2,
            factor: 0.842,
            val_acc: 0.81,
            accepted: true,
        },
        gnn_soup::soup::CandidateRecord {
            ingredient: 3,
            factor: 1.0,
            val_acc: 0.80,
            accepted: false,
        },
    ];
    app.apply(&Event::Finished { report: Box::new(gis) });
    app.apply(&started(Strategy::Ls, 3, None));
    app.apply(&Event::Finished { report: Box::new(report(Strategy::Ls, true)) });
    let s = render(&app, 100, 30);
    assert!(s.contains("gis") && s.contains("81.20%") && s.contains("ls*"), "{s}");
    app.on_key(Key::Char('['));
    let s = render(&app, 100, 30);
    assert!(
        s.contains("0.84") && s.contains("kept") && s.contains("rejected"),
        "the finished GIS run keeps its candidates: {s}"
    );

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
    assert!(
        render(&app, 100, 30).contains("[mixing weights"),
        "the weights panel has the focus first"
    );
    app.on_key(Key::Tab);
    assert!(render(&app, 100, 30).contains("[loss (ls"));
    // Ctrl-C asks too, and a second one stops the job
    assert_eq!(app.on_key(Key::Interrupt), Action::None);
    assert!(render(&app, 100, 30).contains("Stop it"));
    assert_eq!(app.on_key(Key::Interrupt), Action::Cancel);
    app.finish();
    assert_eq!(app.on_key(Key::Interrupt), Action::Quit);
}

// ---- setup screen, inspector, session results ----

use std::path::{Path, PathBuf};

use gnn_soup::checkpoint::{self, CheckpointKind, CheckpointMeta};
use gnn_soup::inspect::{DiversityReport, IngredientSummary, TensorNorms};
use gnn_soup::model::ArchSpec;
use gnn_soup::tui::setup::Setup;
use gnn_soup::tui::state::{Inspection, Screen};

fn spec() -> ArchSpec {
    ArchSpec::plain(Arch::Gcn, 8, 3)
}

/// Writes a tiny checkpoint (random weights; only the metadata matters to the browser).
fn write_ck(path: &Path, kind: CheckpointKind, seed: u64, init_fp: &str) {
    let meta = CheckpointMeta {
        format_version: checkpoint::FORMAT_VERSION,
        kind,
        arch: spec(),
        dataset: "csbm".into(),
        dataset_fingerprint: "d1".into(),
        init_fingerprint: init_fp.into(),
        seed: Some(seed),
        epochs: Some(3),
        val_acc: Some(0.70 + 0.01 * seed as f64),
        test_acc: Some(0.69),
        tool_version: checkpoint::tool_version(),
        extra: Default::default(),
    };
    checkpoint::save(path, &spec().init(seed as i64, tch::Device::Cpu), &meta, true).unwrap();
}

fn checkpoint_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ingredients");
    std::fs::create_dir_all(dir.join("older")).unwrap();
    write_ck(&dir.join("init.safetensors"), CheckpointKind::Init, 0, "aaaa");
    for i in 1..=3 {
        write_ck(
            &dir.join(format!("ingredient-0{i}.safetensors")),
            CheckpointKind::Ingredient,
            i,
            "aaaa",
        );
    }
    write_ck(&dir.join("z-foreign.safetensors"), CheckpointKind::Ingredient, 9, "bbbb");
    std::fs::write(dir.join("z-broken.safetensors"), b"not a checkpoint").unwrap();
    (tmp, dir)
}

fn render_setup(app: &App) -> String {
    render(app, 130, 30)
}

#[test]
fn setup_browser_shows_metadata_and_refuses_what_cannot_be_souped_together() {
    let (_tmp, dir) = checkpoint_dir();
    let mut app =
        App::with_setup("gnn-soup", Setup::new(&dir, "ls", vec!["cpu".into(), "cuda:0".into()]));
    let s = render_setup(&app);
    assert!(s.contains("3 selected"), "the compatible ingredients start selected: {s}");
    assert!(
        s.contains("ingredient-01 ")
            && s.contains("gcn 2x16")
            && s.contains("csbm")
            && s.contains("71.00%/69.00%"),
        "{s}"
    );
    assert!(s.contains("older/") && s.contains("../"), "{s}");
    assert!(s.contains("the shared initial weights, not an ingredient"), "{s}");
    assert!(
        s.contains("different initial weights"),
        "the foreign ingredient is greyed with its reason: {s}"
    );
    assert!(s.contains("unreadable"), "{s}");
    assert!(s.contains("ready: 3 ingredient(s), 1 strategy run(s)"), "{s}");

    // Selecting the foreign checkpoint is refused, with the reason.
    let foreign = app
        .setup
        .as_ref()
        .unwrap()
        .entries
        .iter()
        .position(|e| e.name == "z-foreign.safetensors")
        .unwrap();
    app.setup.as_mut().unwrap().cursor = foreign;
    assert_eq!(app.on_key(Key::Char(' ')), Action::None);
    assert_eq!(app.setup.as_ref().unwrap().selected.len(), 3);
    assert!(render_setup(&app).contains("cannot join the selection: different initial weights"));

    // a: all selected -> none; then the foreign one alone may be chosen, and the others refused.
    app.on_key(Key::Char('a'));
    assert!(
        render_setup(&app).contains("0 selected")
            && render_setup(&app).contains("not ready: select at least one ingredient")
    );
    app.on_key(Key::Char(' '));
    assert_eq!(app.setup.as_ref().unwrap().selected.len(), 1);
    assert!(
        render_setup(&app).contains("different initial weights"),
        "now the first three are the foreign ones"
    );
    // a: the foreign one alone is "all" -> none; again: every ingredient that fits the first.
    app.on_key(Key::Char('a'));
    app.on_key(Key::Char('a'));
    let setup = app.setup.as_ref().unwrap();
    assert!(
        setup.selected.iter().all(|(p, _)| p.file_name().unwrap() != "z-foreign.safetensors")
            && setup.selected.len() == 3,
        "{:?}",
        setup.selected
    );

    // Into a subdirectory and back.
    let older =
        app.setup.as_ref().unwrap().entries.iter().position(|e| e.name == "older/").unwrap();
    app.setup.as_mut().unwrap().cursor = older;
    app.on_key(Key::Enter);
    assert!(render_setup(&app).contains("older"));
    app.on_key(Key::Backspace);
    assert!(render_setup(&app).contains("ingredient-02 "));
}

#[test]
fn setup_form_fills_defaults_validates_as_you_type_and_starts() {
    let (_tmp, dir) = checkpoint_dir();
    let mut app =
        App::with_setup("gnn-soup", Setup::new(&dir, "ls", vec!["cpu".into(), "cuda:0".into()]));
    app.on_key(Key::Tab);
    let s = render_setup(&app);
    let d = SoupSettings::defaults(Strategy::Ls, Arch::Gcn, "csbm");
    assert!(
        s.contains("[strategy and settings]")
            && s.contains("< ls >")
            && s.contains(&format!("epochs      {}", d.epochs)),
        "{s}"
    );

    // Typing q into the dataset field edits it; it does not quit (Ctrl-C does).
    assert_eq!(app.on_key(Key::Char('q')), Action::None);
    assert_eq!(app.setup.as_ref().unwrap().value("dataset"), "csbmq");
    app.on_key(Key::Backspace);
    // down to lr (dataset, strategy, device, epochs, lr), clear it: invalid, marked with '!'.
    for _ in 0..4 {
        app.on_key(Key::Down);
    }
    for _ in 0..10 {
        app.on_key(Key::Backspace);
    }
    let s = render_setup(&app);
    assert!(s.contains("!lr") && s.contains("not ready: lr: expected a number above 0"), "{s}");
    assert_eq!(app.on_key(Key::Enter), Action::None, "an invalid form does not start");
    for c in "2.5".chars() {
        app.on_key(Key::Char(c));
    }
    assert!(!render_setup(&app).contains("!lr"));

    // device: right arrow picks cuda:0
    app.on_key(Key::Up);
    app.on_key(Key::Up);
    app.on_key(Key::Right);
    // strategy: left from ls wraps to "all"; right twice from there gives pls
    app.on_key(Key::Up);
    app.on_key(Key::Right);
    let s = render_setup(&app);
    assert!(
        s.contains("< pls >") && s.contains("parts") && s.contains("sample"),
        "PLS shows K and R: {s}"
    );

    // R > K is refused, naming both
    let sample =
        app.setup.as_ref().unwrap().fields.iter().position(|f| f.name() == "sample").unwrap();
    app.setup.as_mut().unwrap().field = sample;
    for c in "99".chars() {
        app.on_key(Key::Char(c));
    }
    let s = render_setup(&app);
    assert!(
        s.contains("!sample") && s.contains("R (--sample 899) cannot exceed K (--parts 32)"),
        "{s}"
    );
    for _ in 0..2 {
        app.on_key(Key::Backspace);
    }
    match app.on_key(Key::Enter) {
        Action::Start { ingredients, dataset, device, settings } => {
            assert_eq!(ingredients.len(), 3);
            assert_eq!(dataset, "csbm");
            assert_eq!(device, "cuda:0");
            assert_eq!(settings.len(), 1);
            let expected = SoupSettings::defaults(Strategy::Pls, Arch::Gcn, "csbm");
            assert_eq!(settings[0], expected, "a fresh strategy gets its defaults");
        }
        other => panic!("expected Start, got {other:?}"),
    }
}

#[test]
fn the_forms_dropout_follows_its_optimiser() {
    use gnn_soup::soup::OptimizerKind;
    let (_tmp, dir) = checkpoint_dir();
    let mut app = App::with_setup("gnn-soup", Setup::new(&dir, "ls", vec!["cpu".into()]));
    app.on_key(Key::Tab);
    // csbm has no row in the paper's table: auto, dropout off while fitting.
    let setup = app.setup.as_ref().unwrap();
    assert_eq!((setup.value("optimizer"), setup.value("dropout")), ("auto", "off"));
    let optimizer = setup.fields.iter().position(|f| f.name() == "optimizer").unwrap();
    app.setup.as_mut().unwrap().field = optimizer;
    app.on_key(Key::Right);
    let setup = app.setup.as_ref().unwrap();
    assert_eq!(
        (setup.value("optimizer"), setup.value("dropout")),
        ("sgd", "on"),
        "the paper's SGD fits with dropout"
    );
    let settings = setup.settings().unwrap();
    assert_eq!((settings[0].optimizer, settings[0].dropout), (OptimizerKind::Sgd, true));
    app.on_key(Key::Left);
    let setup = app.setup.as_ref().unwrap();
    assert_eq!((setup.value("optimizer"), setup.value("dropout")), ("auto", "off"));
}

fn diversity() -> DiversityReport {
    let ing = |i: usize, from_init: f64| IngredientSummary {
        path: format!("/r/ingredient-0{i}.safetensors").into(),
        seed: Some(i as u64),
        val_acc: Some(0.8),
        test_acc: Some(0.79),
        norm: 12.5,
        distance_from_init: Some(from_init),
    };
    DiversityReport {
        ingredients: vec![ing(0, 1.0), ing(1, 1.1), ing(2, 4.0)],
        init: Some("/r/init.safetensors".into()),
        tensors: vec![
            TensorNorms { name: "convs.0.lin.weight".into(), norms: vec![3.0, 3.1, 3.2] },
            TensorNorms { name: "convs.0.bias".into(), norms: vec![0.1, 0.2, 0.3] },
        ],
        distance: vec![vec![0.0, 0.5, 3.0], vec![0.5, 0.0, 3.1], vec![3.0, 3.1, 0.0]],
        cosine: vec![vec![1.0, 0.6, 0.1], vec![0.6, 1.0, 0.05], vec![0.1, 0.05, 1.0]],
        cosine_of: "updates".into(),
    }
}

#[test]
fn inspector_shows_distances_cosines_norms_and_the_outlier() {
    let (_tmp, dir) = checkpoint_dir();
    let mut app = App::with_setup("gnn-soup", Setup::new(&dir, "ls", vec!["cpu".into()]));
    match app.on_key(Key::Char('i')) {
        Action::Inspect(paths) => assert_eq!(paths.len(), 3),
        other => panic!("expected Inspect, got {other:?}"),
    }
    assert_eq!(app.ui.screen, Screen::Inspect);
    assert!(render(&app, 100, 30).contains("loading and comparing 3 checkpoints"));
    app.inspection = Inspection::Ready(Box::new(diversity()));
    let s = render(&app, 120, 30);
    assert!(s.contains("cosine of updates") && s.contains("per-tensor norms"), "{s}");
    assert!(s.contains("0.60") && s.contains("convs.0.lin.weight"), "{s}");
    app.on_key(Key::Char('m'));
    let s = render(&app, 120, 30);
    assert!(s.contains("L2 distance between weights") && s.contains("3.100"), "{s}");
    assert!(s.contains("#2") && s.contains("least like the others"), "{s}");
    assert!(s.contains("from init") && s.contains("4.000"), "{s}");
    for (w, h) in [(80, 24), (81, 25), (200, 60)] {
        render(&app, w, h);
    }
    app.on_key(Key::Esc);
    assert_eq!(app.ui.screen, Screen::Setup);
}

#[test]
fn session_keeps_each_runs_curves_and_results_and_offers_save_and_new_run() {
    let (_tmp, dir) = checkpoint_dir();
    let mut app = App::with_setup("gnn-soup", Setup::new(&dir, "ls", vec!["cpu".into()]));
    app.job_started("/tmp/run-1".into());
    let epoch = |e: usize, loss: f64| Event::Epoch {
        epoch: e,
        epochs: 3,
        loss,
        val_acc: 0.7,
        select_acc: None,
        lr: 1.0,
        weights: vec![(0..12).map(|i| i as f64 / 66.0).collect()],
        seconds: 0.1,
    };
    app.apply(&started(Strategy::Ls, 3, None));
    app.apply(&epoch(0, 0.9));
    app.apply(&Event::Finished { report: Box::new(report(Strategy::Ls, false)) });
    app.apply(&started(Strategy::Pls, 3, Some(4)));
    app.apply(&epoch(0, 0.4));
    let mut pls = report(Strategy::Pls, false);
    pls.val_acc = 0.9; // the best: shown when the job ends
    app.apply(&Event::Finished { report: Box::new(pls) });
    app.finish();
    let s = render(&app, 100, 30);
    assert!(s.contains("loss (pls, recent): 0.4000"), "{s}");
    app.on_key(Key::Char('['));
    assert!(
        render(&app, 100, 30).contains("loss (ls, recent): 0.9000"),
        "the earlier run's curve is kept"
    );
    app.on_key(Key::Char(']'));

    // 12 ingredients do not fit the weights panel of a small terminal: it scrolls.
    app.ui.focus = Panel::Weights;
    let s = render(&app, 80, 24);
    assert!(s.contains("1-6 of 12"), "{s}");
    for _ in 0..6 {
        app.on_key(Key::Down);
    }
    let s = render(&app, 80, 24);
    assert!(s.contains("7-12 of 12") && s.contains("11 0.167"), "{s}");

    // results: the newest run is selected; down stays there; save it to a typed directory
    app.ui.focus = Panel::Results;
    app.on_key(Key::Down);
    assert!(render(&app, 100, 30).contains(">pls"));
    app.on_key(Key::Char('s'));
    assert!(render(&app, 100, 30).contains("Copy the pls soup"));
    for _ in 0.."./soups/pls".len() {
        app.on_key(Key::Backspace);
    }
    for c in "/tmp/keep".chars() {
        app.on_key(Key::Char(c));
    }
    assert_eq!(app.on_key(Key::Enter), Action::Save { run: 1, dest: "/tmp/keep".into() });
    assert_eq!(app.runs[1].dir.as_deref(), Some(Path::new("/tmp/run-1")));

    // n: back to the setup screen with the same selection, ready for another strategy
    app.on_key(Key::Char('n'));
    assert_eq!(app.ui.screen, Screen::Setup);
    assert!(render_setup(&app).contains("3 selected"));
    app.on_key(Key::Esc);
    assert_eq!(app.ui.screen, Screen::Dashboard, "Esc returns to the dashboard");
}

/// Every screen at tiny and odd sizes: no panic. And colours stay readable on dark and light
/// themes: no background colour but the gauge's fill (highlights use reverse video) and no
/// foreground that vanishes on one of them (yellow and white on light, black and gray on dark).
#[test]
fn every_screen_renders_at_any_size_with_theme_safe_colours() {
    use ratatui::style::Color;
    let (_tmp, dir) = checkpoint_dir();
    let mut setup = App::with_setup("gnn-soup", Setup::new(&dir, "pls", vec!["cpu".into()]));
    let mut form = App::with_setup("gnn-soup", Setup::new(&dir, "ls", vec!["cpu".into()]));
    form.on_key(Key::Tab);
    let mut inspector = App::with_setup("gnn-soup", Setup::new(&dir, "ls", vec!["cpu".into()]));
    inspector.on_key(Key::Char('i'));
    inspector.inspection = Inspection::Ready(Box::new(diversity()));
    let mut dashboard = ls_app();
    dashboard.apply(&Event::Log { level: LogLevel::Warn, message: "a warning".into() });
    dashboard.apply(&Event::Log { level: LogLevel::Error, message: "an error".into() });
    setup.on_key(Key::Char(' '));
    for app in [&setup, &form, &inspector, &dashboard] {
        for (w, h) in [(0, 0), (3, 2), (79, 24), (80, 24), (97, 31), (240, 70)] {
            let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
            let snap = Snapshot { cpu_ram: "CPU".into(), gpu: "GPU".into() };
            t.draw(|f| view::draw(f, app, &snap)).unwrap();
            for cell in t.backend().buffer().content() {
                // the one exception: the progress gauge's fill
                assert!(
                    matches!(cell.bg, Color::Reset | Color::Green),
                    "background {:?} at {w}x{h}",
                    cell.bg
                );
                assert!(
                    !matches!(
                        cell.fg,
                        Color::Yellow
                            | Color::LightYellow
                            | Color::White
                            | Color::Black
                            | Color::Gray
                    ),
                    "{:?} at {w}x{h}",
                    cell.fg
                );
            }
        }
    }
}

/// Whole screens, compared with `tests/snapshots/` by insta: any layout change shows up here.
/// After an intended change: `INSTA_UPDATE=always cargo test --test tui_render`, then review the
/// diff (or `cargo insta review`).
#[test]
fn snapshots_of_the_dashboard_and_the_inspector() {
    let mut ls = ls_app();
    ls.runs.last_mut().unwrap().started = None; // the ETA then comes from the scripted epoch times alone
    insta::assert_snapshot!("dashboard-ls-80x24", render(&ls, 80, 24));
    let mut pls = App::new("gnn-soup");
    pls.apply(&started(Strategy::Pls, 5, Some(8)));
    pls.apply(&Event::PartitionSample {
        epoch: 0,
        parts: vec![1, 5],
        nodes: 300,
        edges: 900,
        val_nodes: 40,
    });
    pls.apply(&Event::Finished { report: Box::new(report(Strategy::Pls, false)) });
    insta::assert_snapshot!("dashboard-pls-100x30", render(&pls, 100, 30));
    let mut app = App::new("gnn-soup");
    app.ui.screen = Screen::Inspect;
    app.inspection = Inspection::Ready(Box::new(diversity()));
    insta::assert_snapshot!("inspector-100x30", render(&app, 100, 30));
}

/// A job of every strategy on 10 ingredients of a 2-layer GCN, replayed as the engine (or an
/// `--attach`) delivers it: per-tensor LS weights, GIS factors, uniform weights.
fn session_of_every_strategy() -> App {
    let tensors = ["convs.0.lin.weight", "convs.0.bias", "convs.1.lin.weight", "convs.1.bias"];
    let mut app = App::new("gnn-soup");
    let start = |strategy: Strategy, groups: Vec<String>, steps: usize| Event::Started {
        strategy,
        dataset: "csbm".into(),
        nodes: 2000,
        edges: 16000,
        device: "cpu".into(),
        ingredients: (0..10).map(|i| format!("ingredient-{i:02}.safetensors")).collect(),
        groups,
        steps,
        parts: None,
    };
    for i in 0..10 {
        app.apply(&Event::Evaluation {
            what: Evaluated::Ingredient(i),
            val_acc: 0.89,
            test_acc: 0.88,
        });
    }
    // uniform: one weight per ingredient everywhere
    app.apply(&start(Strategy::Uniform, vec!["all".into()], 0));
    let mut uniform = report(Strategy::Uniform, false);
    uniform.weights = tensors.iter().map(|t| (t.to_string(), vec![0.1; 10])).collect();
    app.apply(&Event::Finished { report: Box::new(uniform) });
    // GIS: candidates, then the interpolated weights
    app.apply(&start(Strategy::Gis, vec!["all".into()], 9));
    let mut gis = report(Strategy::Gis, false);
    for c in 0..9 {
        let record = gnn_soup::soup::CandidateRecord {
            ingredient: c + 1,
            factor: 0.5 + 0.05 * c as f64,
            val_acc: 0.9,
            accepted: c % 2 == 0,
        };
        app.apply(&Event::Candidate {
            ingredient: record.ingredient,
            factor: record.factor,
            val_acc: record.val_acc,
            accepted: record.accepted,
            step: c + 1,
            steps: 9,
        });
        gis.candidates.push(record);
    }
    let gis_w: Vec<f64> = (0..10)
        .map(|i| {
            if i < 3 {
                0.3
            } else if i == 3 {
                0.1
            } else {
                0.0
            }
        })
        .collect();
    gis.weights = tensors.iter().map(|t| (t.to_string(), gis_w.clone())).collect();
    app.apply(&Event::Finished { report: Box::new(gis) });
    // LS: epochs with per-tensor weights, then the final ones
    app.apply(&start(Strategy::Ls, tensors.iter().map(|t| t.to_string()).collect(), 20));
    let row = |g: usize| -> Vec<f64> {
        let raw: Vec<f64> = (0..10).map(|i| 1.0 + ((i * (g + 2)) % 7) as f64).collect();
        let sum: f64 = raw.iter().sum();
        raw.iter().map(|x| x / sum).collect()
    };
    for e in 0..20 {
        app.apply(&Event::Epoch {
            epoch: e,
            epochs: 20,
            loss: 1.0 / (1.0 + e as f64),
            val_acc: 0.88 + 0.001 * e as f64,
            select_acc: None,
            lr: 11.0,
            weights: (0..4).map(row).collect(),
            seconds: 0.5 * (e + 1) as f64,
        });
    }
    let mut ls = report(Strategy::Ls, false);
    ls.weights = tensors.iter().enumerate().map(|(g, t)| (t.to_string(), row(g))).collect();
    app.apply(&Event::Finished { report: Box::new(ls) });
    app.finish();
    app.runs.iter_mut().for_each(|r| r.started = None);
    app
}

#[test]
fn every_panel_follows_the_selected_run_after_the_fact() {
    let mut app = session_of_every_strategy();
    let s = render(&app, 120, 40);
    assert!(
        s.contains("mixing weights: ls (final)")
            && s.contains("1=convs.0.lin.weight")
            && s.contains("4=convs.1.bias"),
        "LS per tensor: {s}"
    );
    assert!(s.contains(" 9 0."), "all 10 ingredients have a row: {s}");
    assert!(s.contains("LS schedule"), "{s}");
    app.on_key(Key::Char('['));
    let s = render(&app, 120, 40);
    assert!(
        s.contains("mixing weights: gis (final)")
            && s.contains(" 0 0.300")
            && s.contains(" 3 0.100"),
        "GIS's weights after the run: {s}"
    );
    assert!(
        s.contains("gis candidates: 9 of 9 tried") && s.contains("0.90") && s.contains("rejected"),
        "GIS's candidates after the run: {s}"
    );
    assert!(s.contains("gis has no epochs"), "{s}");
    assert!(s.contains("gis (run 2 of 3)"), "the header says which run is shown: {s}");
    app.on_key(Key::Char('['));
    let s = render(&app, 120, 40);
    assert!(s.contains("mixing weights: uniform (final)") && s.contains(" 0 0.100"), "{s}");
    assert!(!s.contains("1="), "one weight per ingredient: no legend of groups: {s}");
}

/// The dashboard at the sizes people use: the weights panel has a row per ingredient and a
/// column per weight group once the terminal allows, and the curves carry no legend on the line.
#[test]
fn dashboard_layouts_at_80x24_120x40_and_200x50() {
    let app = session_of_every_strategy();
    for (w, h) in [(80, 24), (120, 40), (200, 50)] {
        let s = render(&app, w, h);
        insta::assert_snapshot!(format!("dashboard-every-strategy-{w}x{h}"), &s);
        if h >= 40 {
            assert!(
                (0..10).all(|i| s.contains(&format!("{i:>2} 0."))),
                "every ingredient shows at {w}x{h}: {s}"
            );
            assert!(!s.contains("of 10 (j/k)"), "no scrolling needed at {w}x{h}: {s}");
        }
        assert!(!s.contains("learning rate") || s.contains("LS schedule"), "{s}");
    }
}

#[test]
fn the_form_starts_on_the_device_asked_for() {
    use gnn_soup::tui::setup::device_choices;
    assert_eq!(device_choices("cuda:0", 2), vec!["cuda:0", "cpu", "cuda:1"]);
    assert_eq!(device_choices("cpu", 1), vec!["cpu", "cuda:0"]);
    let (_tmp, dir) = checkpoint_dir();
    let mut app =
        App::with_setup("gnn-soup", Setup::new(&dir, "uniform", device_choices("cuda:0", 1)));
    match app.on_key(Key::Char('s')) {
        Action::Start { device, .. } => assert_eq!(device, "cuda:0"),
        other => panic!("expected Start, got {other:?}"),
    }
}

#[test]
fn no_color_draws_every_screen_in_the_terminals_own_colours_with_the_gauge_reversed() {
    use ratatui::style::{Color, Modifier};
    let mut app = ls_app();
    let snap = Snapshot { cpu_ram: "CPU".into(), gpu: "GPU".into() };
    let draw = |app: &App| {
        let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
        t.draw(|f| view::draw(f, app, &snap)).unwrap();
        t.backend().buffer().clone()
    };
    let coloured = draw(&app);
    assert!(coloured.content().iter().any(|c| c.fg != Color::Reset), "the dashboard uses colour");
    let filled: Vec<usize> = coloured
        .content()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.bg != Color::Reset)
        .map(|(i, _)| i)
        .collect();
    assert!(!filled.is_empty(), "the progress gauge has a background");
    app.ui.monochrome = true;
    let plain = draw(&app);
    for (i, (c, p)) in coloured.content().iter().zip(plain.content()).enumerate() {
        assert_eq!((p.fg, p.bg), (Color::Reset, Color::Reset), "cell {i}");
        assert_eq!(p.symbol(), c.symbol(), "cell {i}: the same glyphs");
        assert_eq!(
            p.modifier.contains(Modifier::REVERSED),
            filled.contains(&i) || c.modifier.contains(Modifier::REVERSED),
            "cell {i}"
        );
    }
}

#[test]
fn all_in_the_form_runs_every_strategy_with_the_settings_given() {
    use gnn_soup::soup::{Setting, Value};
    let (_tmp, dir) = checkpoint_dir();
    let given = vec![
        (Setting::by_name("lr").unwrap(), Value::Real(40.0)),
        (Setting::by_name("dropout").unwrap(), Value::Switch(false)),
    ];
    let setup = Setup::with_given(&dir, "all", vec!["cpu".into()], None, given);
    let mut app = App::with_setup("gnn-soup", setup);
    app.on_key(Key::Tab);
    let s = render_setup(&app);
    assert!(s.contains("every strategy, each with its") && s.contains("40, dropout off"), "{s}");
    match app.on_key(Key::Enter) {
        Action::Start { settings, .. } => {
            assert_eq!(settings.len(), Strategy::ALL.len());
            for s in &settings {
                let defaults = SoupSettings::defaults(s.strategy, Arch::Gcn, "csbm");
                if s.strategy.is_learned() {
                    assert_eq!((s.lr, s.dropout), (40.0, false), "{}", s.strategy);
                } else {
                    assert_eq!(s, &defaults, "{} reads neither setting", s.strategy);
                }
            }
        }
        other => panic!("expected Start, got {other:?}"),
    }
}

#[test]
fn the_training_viewer_shows_each_worker_and_the_finished_ingredients() {
    use gnn_soup::train::TrainRecord as R;
    let mut app = App::training("gnn-soup", "/runs/x/train-events.jsonl".into());
    let t = app.training.as_mut().unwrap();
    for r in [
        R::Started {
            dataset: "ogbn-arxiv".into(),
            model: "gcn 3x256".into(),
            ingredients: 4,
            epochs: 100,
            devices: vec!["cuda:0".into(), "cuda:1".into()],
            shard: None,
        },
        R::Ingredient { worker: 0, index: 0, seed: 1 },
        R::Ingredient { worker: 1, index: 1, seed: 2 },
        R::Epoch { worker: 0, index: 0, epoch: 99, loss: 0.5, val_acc: 0.7 },
        R::Done {
            worker: 0,
            index: 0,
            val_acc: 0.71,
            test_acc: 0.7,
            file: "/runs/x/ingredient-00.safetensors".into(),
        },
        R::Ingredient { worker: 0, index: 2, seed: 3 },
        R::Epoch { worker: 0, index: 2, epoch: 9, loss: 1.25, val_acc: f64::NAN },
        R::Epoch { worker: 1, index: 1, epoch: 41, loss: 0.75, val_acc: 0.65 },
        R::Batch {
            worker: 1,
            index: 1,
            epoch: 42,
            batch: 12,
            batches: 49,
            seeds_per_second: 3210.4,
        },
    ] {
        t.apply(&r);
    }
    let s = render(&app, 100, 30);
    assert!(s.contains("training 4 ingredients: gcn 3x256 on ogbn-arxiv [training]"), "{s}");
    assert!(s.contains("1/4 ingredients") && s.contains("2 worker(s): cuda:0, cuda:1"), "{s}");
    assert!(s.contains("w0     cuda:0   #02        10/100    1.2500    -"), "{s}");
    assert!(
        s.contains("w1     cuda:1   #01        42/100    0.7500    65.00%   12/49  3210/s"),
        "{s}"
    );
    assert!(s.contains("ingredient-00    w0     71.00%   70.00%"), "{s}");
    assert_eq!(app.on_key(Key::Char('q')), Action::Quit, "q closes the viewer");
}

/// Every key a handler answers is in the keymap (`src/tui/keymap.rs`): on every screen, box and
/// situation, a key the table does not bind leaves the workbench exactly as it was. A handler
/// that gains a key without its row in the table fails here.
#[test]
fn every_key_a_handler_answers_is_in_the_keymap() {
    use gnn_soup::tui::keymap::{self, Context};
    use gnn_soup::tui::setup::Setup;
    use gnn_soup::tui::state::{Modal, Screen};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let with_setup = || App::with_setup("gnn-soup", Setup::new(&dir, "ls", vec!["cpu".into()]));
    let done = |mut app: App| {
        app.apply(&Event::Finished { report: Box::new(report(Strategy::Ls, false)) });
        app.finish();
        app
    };
    type Make<'a> = Box<dyn Fn() -> App + 'a>;
    let states: Vec<(&str, Make)> = vec![
        ("setup browser", Box::new(with_setup)),
        (
            "setup form",
            Box::new(|| {
                let mut app = with_setup();
                app.on_key(Key::Tab);
                app
            }),
        ),
        (
            "inspector",
            Box::new(|| {
                let mut app = with_setup();
                app.ui.screen = Screen::Inspect;
                app
            }),
        ),
        ("dashboard, running", Box::new(ls_app)),
        ("dashboard, done", Box::new(|| done(ls_app()))),
        (
            "dashboard, done, with setup",
            Box::new(|| {
                let mut app = with_setup();
                app.job_started("/r".into());
                app.apply(&started(Strategy::Ls, 10, None));
                done(app)
            }),
        ),
        (
            "dashboard, attached",
            Box::new(|| {
                let mut app = App::attached("gnn-soup", "/r".into());
                app.apply(&started(Strategy::Ls, 10, None));
                app
            }),
        ),
        ("training viewer", Box::new(|| App::training("gnn-soup", "/r/train-events.jsonl".into()))),
        (
            "stop?",
            Box::new(|| {
                let mut app = ls_app();
                app.ui.modal = Some(Modal::ConfirmStop);
                app
            }),
        ),
        (
            "save",
            Box::new(|| {
                let mut app = done(ls_app());
                app.ui.modal = Some(Modal::SavePrompt("./soups/ls".into()));
                app
            }),
        ),
        (
            "help",
            Box::new(|| {
                let mut app = ls_app();
                app.ui.modal = Some(Modal::Help);
                app
            }),
        ),
    ];
    let mut keys: Vec<Key> = (' '..='~').chain(['é', '\u{7f}']).map(Key::Char).collect();
    keys.extend([
        Key::Esc,
        Key::Tab,
        Key::Up,
        Key::Down,
        Key::Left,
        Key::Right,
        Key::Enter,
        Key::Backspace,
        Key::Interrupt,
    ]);
    let mut unbound = 0;
    for (name, make) in &states {
        for &key in &keys {
            let mut app = make();
            let situation = app.situation();
            let bound = |c| keymap::command(c, key, &situation).is_some();
            if bound(Context::Anywhere) || bound(app.key_context()) {
                continue;
            }
            unbound += 1;
            let before = format!("{app:?}");
            let action = app.on_key(key);
            assert_eq!(action, Action::None, "{name}: {key:?} is not in the keymap but acts");
            assert_eq!(
                format!("{app:?}"),
                before,
                "{name}: {key:?} is not in the keymap but changes the workbench"
            );
        }
    }
    assert!(unbound > 500, "the check must see unbound keys to mean anything ({unbound})");
}

/// The keys' help box on each screen lists that screen's keys, drawn from the keymap.
#[test]
fn the_help_box_lists_the_keys_of_the_screen_under_it() {
    use gnn_soup::tui::state::Modal;
    let mut app = ls_app();
    app.ui.modal = Some(Modal::Help);
    let s = render(&app, 100, 30);
    assert!(s.contains("stop the running job (asks first"), "{s}");
    assert!(s.contains("select the previous / next run"), "{s}");
    assert!(s.contains("Ctrl-C"), "{s}");
}

/// After `all`, the dashboard shows the best soup by validation accuracy (a tie goes to the
/// learned one, which has curves), not the last run (the ensemble), and the log says so; a run
/// the user picked while the job ran stays picked.
#[test]
fn after_all_the_dashboard_shows_the_best_run_by_validation() {
    use gnn_soup::tui::app::Message;
    let job = |vals: &[(Strategy, f64)], pick: bool| {
        let mut app = App::new("gnn-soup");
        app.update(Message::JobStarted("/r".into()));
        for (i, &(strategy, val)) in vals.iter().enumerate() {
            app.update(Message::Engine(started(strategy, 2, None)));
            let mut r = report(strategy, false);
            r.val_acc = val;
            app.update(Message::Engine(Event::Finished { report: Box::new(r) }));
            if pick && i == 1 {
                app.on_key(Key::Char('['));
            }
        }
        app.update(Message::JobEnded);
        app
    };
    let all = [
        (Strategy::Uniform, 0.70),
        (Strategy::Greedy, 0.80),
        (Strategy::Gis, 0.80),
        (Strategy::Ls, 0.80),
        (Strategy::Pls, 0.79),
        (Strategy::Ensemble, 0.85),
    ];
    let app = job(&all, false);
    assert_eq!(app.shown_run().unwrap().strategy, Strategy::Ls, "tie at 80%: the learned one");
    let said = &app.logs.last().unwrap().1;
    assert!(said.contains("showing ls, the best by validation accuracy (80.00%)"), "{said}");
    assert!(!app.job.running);
    let app = job(&[(Strategy::Greedy, 0.81), (Strategy::Ls, 0.80)], false);
    assert_eq!(app.shown_run().unwrap().strategy, Strategy::Greedy, "higher val wins");
    let app = job(&all, true);
    assert_eq!(app.shown_run().unwrap().strategy, Strategy::Uniform, "the user's pick stays");
    let one = job(&[(Strategy::Gis, 0.8)], false);
    assert!(!one.logs.iter().any(|(_, l)| l.contains("showing")), "one run: nothing to choose");
}

/// The command line and the workbench's form layer the same recipe and flags into the same
/// settings (one layering, `recipe::layer_settings`): every strategy, `all` and one at a time.
#[test]
fn the_form_and_the_command_line_give_the_same_settings_from_a_recipe_and_flags() {
    use gnn_soup::cli::args::SettingFlags;
    use gnn_soup::recipe::Recipe;
    use gnn_soup::soup::{Setting, Value};
    let (_tmp, dir) = checkpoint_dir();
    let recipe = Recipe::from_toml(
        "[settings]\nlr = 20\nepochs = 60\n[pls]\nlr = 7.5\nparts = 16\n[gis]\ngranularity = 10\n",
        &dir.join("r.toml"),
    )
    .unwrap();
    let flags = vec![
        (Setting::by_name("t0").unwrap(), Value::Count(3)),
        (Setting::by_name("epochs").unwrap(), Value::Count(50)),
    ];
    let cli = SettingFlags { overrides: flags.clone() };
    for name in ["all", "uniform", "greedy", "gis", "ls", "pls", "ensemble"] {
        let setup =
            Setup::with_given(&dir, name, vec!["cpu".into()], Some(recipe.clone()), flags.clone());
        let form = setup.settings().unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let strategies = match Strategy::from_name(name) {
            Some(one) => vec![one],
            None => Strategy::ALL.to_vec(),
        };
        let command_line = cli.resolve(Some(&recipe), &strategies, Arch::Gcn, "csbm").unwrap();
        assert_eq!(form, command_line, "{name}");
    }
    // And the layers did apply: the recipe's tables, the flags over them, what lr implies.
    let pls = Setup::with_given(&dir, "pls", vec!["cpu".into()], Some(recipe), flags);
    let pls = &pls.settings().unwrap()[0];
    assert_eq!((pls.lr, pls.parts, pls.t0, pls.epochs, pls.dropout), (7.5, 16, 3, 50, true));
}
