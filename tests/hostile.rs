//! Hostile input, as a table: checkpoints, datasets of every format, settings, paths and events
//! files that are corrupt, mismatched, huge-claiming or not files at all. For each case the tool
//! must exit with the documented code (1 error, 2 usage), print a message naming the file or
//! setting and the problem, never panic, stay within a small memory bound (the cases run under
//! a 1 GiB data-segment limit), never hang (each has a deadline), and leave everything outside
//! a fresh `--out` as it was.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// A small trained run the cases start from: two GCN ingredients on a tiny synthetic graph.
fn ingredients() -> PathBuf {
    common::shared_fixture("hostile-ingredients", |dir| {
        let (ok, _, stderr) = common::run_bin(&[
            "train",
            "--dataset",
            "csbm:nodes=400,features=8,classes=3,train=60,val=100,test=200",
            "--ingredients",
            "2",
            "--epochs",
            "3",
            "--hidden",
            "8",
            "--device",
            "cpu",
            "--out",
            dir.join("run").to_str().unwrap(),
        ]);
        assert!(ok, "{stderr}");
    })
    .join("run")
}

/// A safetensors file with this JSON header (the `__metadata__` inside it) and these bytes.
fn safetensors(path: &Path, header: &serde_json::Value, data: &[u8]) {
    let h = header.to_string();
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(h.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// A copy of ingredient 0 with its gnn-soup metadata edited by `edit`.
fn edited_checkpoint(path: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let src = ingredients().join("ingredient-00.safetensors");
    let bytes = std::fs::read(&src).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut meta: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["gnn_soup"].as_str().unwrap()).unwrap();
    edit(&mut meta);
    header["__metadata__"]["gnn_soup"] = serde_json::Value::String(meta.to_string());
    safetensors(path, &header, &bytes[8 + n..]);
}

/// An `.npz` (zip of `.npy` arrays) with these float64 arrays.
fn npz(path: &Path, arrays: &[(&str, Vec<usize>, Vec<f64>)]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, shape, data) in arrays {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let shape_text = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        let mut header =
            format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for v in data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        zip.start_file(format!("{name}.npy"), zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// A valid small npz graph (4 nodes in a ring, 2 features, 2 classes) with `labels`.
fn ring_npz(path: &Path, labels: Vec<f64>, attr_shape: Vec<f64>) {
    npz(
        path,
        &[
            ("adj_shape", vec![2], vec![4.0, 4.0]),
            ("adj_indptr", vec![5], vec![0.0, 1.0, 2.0, 3.0, 4.0]),
            ("adj_indices", vec![4], vec![1.0, 2.0, 3.0, 0.0]),
            ("adj_data", vec![4], vec![1.0; 4]),
            ("attr_shape", vec![2], attr_shape),
            ("attr_indptr", vec![5], vec![0.0, 1.0, 2.0, 3.0, 4.0]),
            ("attr_indices", vec![4], vec![0.0, 1.0, 0.0, 1.0]),
            ("attr_data", vec![4], vec![1.0; 4]),
            ("labels", vec![4], labels),
        ],
    );
}

/// A `torch.save`-style zip whose data.pkl is `pickle`.
fn torch_zip(path: &Path, pickle: &[u8]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    zip.start_file("archive/data.pkl", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(pickle).unwrap();
    zip.finish().unwrap();
}

/// A pickle of a few hundred bytes whose memo references double a list 60 times.
fn memo_bomb() -> Vec<u8> {
    let mut p = vec![0x80, 2, b']', b'q', 0]; // PROTO 2, EMPTY_LIST, BINPUT 0
    for i in 0..60u8 {
        p.extend_from_slice(&[b'h', i, b'h', i, 0x86, b'q', i + 1]); // BINGET i twice, TUPLE2, BINPUT i+1
    }
    p.push(b'.');
    p
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    /// Exit status expected (1 error, 2 usage).
    code: i32,
    /// What the message must name (a file, a setting) and say.
    says: Vec<String>,
}

/// Every file under `dir` (but `skip`) with its size and modification time.
fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.starts_with(skip) {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
            if m.is_dir() {
                pending.push(p.clone());
            }
            out.insert(p, (m.len(), m.modified().unwrap_or(std::time::UNIX_EPOCH)));
        }
    }
    out
}

/// Runs one case under a 1 GiB data limit and a 60 s deadline: (exit code, stderr).
fn run_limited(args: &[String], cwd: &Path) -> (Option<i32>, String) {
    let mut cmd = common::bin();
    cmd.args(args)
        .current_dir(cwd)
        .env("XDG_CACHE_HOME", cwd.join("cache"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; called in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 1 << 30, rlim_max: 1 << 30 };
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("gnn-soup did not start");
    common::wait_deadline(&mut child, Duration::from_secs(60))
        .unwrap_or((None, "(killed after 60 s: it hung)".into()))
}

#[test]
fn hostile_inputs_get_a_clear_error_and_change_nothing() {
    let run = ingredients();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let p = |name: &str| t.join(name).display().to_string();
    let ing0 = run.join("ingredient-00.safetensors").display().to_string();
    let run_s = run.display().to_string();
    let out = t.join("out");
    let out_s = out.display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let case = |name: &'static str, args: Vec<String>, code: i32, says: &[&str]| Case {
        name,
        args,
        code,
        says: says.iter().map(|x| x.to_string()).collect(),
    };

    // --- checkpoints ---
    std::fs::write(t.join("empty.safetensors"), b"").unwrap();
    std::fs::write(t.join("garbage.safetensors"), b"\x01\x02 definitely not a checkpoint").unwrap();
    std::fs::write(t.join("huge-header.safetensors"), [0xffu8; 16]).unwrap();
    let mut not_json = 12u64.to_le_bytes().to_vec();
    not_json.extend_from_slice(b"{not json!!}");
    std::fs::write(t.join("not-json.safetensors"), not_json).unwrap();
    safetensors(
        &t.join("no-meta.safetensors"),
        &serde_json::json!({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}),
        &[0; 4],
    );
    edited_checkpoint(&t.join("layers.safetensors"), |m| {
        m["arch"]["layers"] = serde_json::json!(1_000_000_000_000u64)
    });
    edited_checkpoint(&t.join("hidden.safetensors"), |m| {
        m["arch"]["hidden"] = serde_json::json!(1_000_000_000_000_000i64)
    });
    edited_checkpoint(&t.join("negative.safetensors"), |m| {
        m["arch"]["in_dim"] = serde_json::json!(-5)
    });
    edited_checkpoint(&t.join("future.safetensors"), |m| {
        m["format_version"] = serde_json::json!(999)
    });
    edited_checkpoint(&t.join("shape.safetensors"), |m| m["arch"]["hidden"] = serde_json::json!(9));
    edited_checkpoint(&t.join("wide-in.safetensors"), |m| {
        m["arch"]["in_dim"] = serde_json::json!(9)
    });
    let fifo = t.join("fifo.safetensors");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink(t.join("loop-b.safetensors"), t.join("loop-a.safetensors")).unwrap();
    std::os::unix::fs::symlink(t.join("loop-a.safetensors"), t.join("loop-b.safetensors")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", t.join("device.safetensors")).unwrap();
    std::fs::create_dir_all(t.join("only-junk/x.safetensors")).unwrap();
    std::fs::create_dir_all(t.join("bad-manifest")).unwrap();
    std::fs::copy(&ing0, t.join("bad-manifest/ingredient-00.safetensors")).unwrap();
    std::fs::write(t.join("bad-manifest/manifest.json"), b"{ this is not json").unwrap();
    std::fs::create_dir_all(t.join("missing-listed")).unwrap();
    std::fs::write(
        t.join("missing-listed/manifest.json"),
        std::fs::read(run.join("manifest.json")).unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(t.join("mixed")).unwrap();
    std::fs::copy(&ing0, t.join("mixed/a.safetensors")).unwrap();
    std::fs::copy(t.join("shape.safetensors"), t.join("mixed/b.safetensors")).unwrap();
    std::fs::write(t.join("garbage.pt"), b"\x80\x02legacy pickle, not zip").unwrap();
    torch_zip(&t.join("no-pkl.pt"), b"");
    std::fs::remove_file(t.join("no-pkl.pt")).unwrap();
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(t.join("no-pkl.pt")).unwrap());
        zip.start_file("archive/other", zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(b"x").unwrap();
        zip.finish().unwrap();
    }
    torch_zip(&t.join("memo-bomb.pt"), &memo_bomb());

    // --- datasets ---
    ring_npz(&t.join("negative-label.npz"), vec![0.0, 1.0, -1.0, 0.0], vec![4.0, 2.0]);
    ring_npz(&t.join("nan-label.npz"), vec![0.0, 1.0, f64::NAN, 0.0], vec![4.0, 2.0]);
    ring_npz(&t.join("huge-label.npz"), vec![0.0, 1.0, 1e12, 0.0], vec![4.0, 2.0]);
    ring_npz(&t.join("huge-shape.npz"), vec![0.0, 1.0, 1.0, 0.0], vec![4.0, 1e12]);
    std::fs::write(t.join("not-zip.npz"), b"PK? no").unwrap();
    npz(&t.join("no-labels.npz"), &[("adj_shape", vec![2], vec![1.0, 1.0])]);
    std::fs::create_dir_all(t.join("planetoid")).unwrap();
    for suffix in ["x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"] {
        std::fs::write(t.join(format!("planetoid/ind.cora.{suffix}")), b"\x80\x02truncated")
            .unwrap();
    }
    std::fs::create_dir_all(t.join("ogb/raw")).unwrap();
    // A gzip bomb: 100 KB that inflate to 100 MB, beyond what its size allows a CSV to expand to.
    std::fs::create_dir_all(t.join("ogb-bomb/raw")).unwrap();
    {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(t.join("ogb-bomb/raw/num-node-list.csv.gz")).unwrap(),
            flate2::Compression::best(),
        );
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..100 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap();
    }
    let data = |d: &str| vec!["data".to_string(), "info".into(), "--dataset".into(), d.to_string()];

    let cases = vec![
        case(
            "empty checkpoint",
            s(&["eval", &p("empty.safetensors"), "--device", "cpu"]),
            1,
            &["empty.safetensors", "corrupt or truncated safetensors"],
        ),
        case(
            "garbage checkpoint",
            s(&["eval", &p("garbage.safetensors"), "--device", "cpu"]),
            1,
            &["garbage.safetensors", "corrupt or truncated safetensors"],
        ),
        case(
            "header length huge",
            s(&["inspect", &p("huge-header.safetensors")]),
            1,
            &["huge-header.safetensors", "corrupt or truncated safetensors"],
        ),
        case(
            "header not JSON",
            s(&["inspect", &p("not-json.safetensors")]),
            1,
            &["not-json.safetensors", "corrupt or truncated safetensors"],
        ),
        case(
            "no gnn-soup metadata",
            s(&["soup", "--ingredients", &p("no-meta.safetensors"), "--out", &out_s]),
            1,
            &["no-meta.safetensors"],
        ),
        case(
            "10^12 layers in metadata",
            s(&["eval", &p("layers.safetensors"), "--device", "cpu"]),
            1,
            &["layers.safetensors", "layers"],
        ),
        case(
            "10^18 hidden width",
            s(&["inspect", &p("hidden.safetensors")]),
            1,
            &["hidden.safetensors", "widths above"],
        ),
        case(
            "negative width",
            s(&["eval", &p("negative.safetensors"), "--device", "cpu"]),
            1,
            &["negative.safetensors", "must be positive"],
        ),
        case(
            "newer format",
            s(&["inspect", &p("future.safetensors")]),
            1,
            &["future.safetensors", "newer than this tool"],
        ),
        case(
            "tensor shapes disagree with metadata",
            s(&["eval", &p("shape.safetensors"), "--device", "cpu"]),
            1,
            &["shape.safetensors", "has shape"],
        ),
        case(
            "input width differs from the dataset",
            s(&[
                "soup",
                "--ingredients",
                &p("wide-in.safetensors"),
                "--strategy",
                "uniform",
                "--device",
                "cpu",
                "--out",
                &out_s,
            ]),
            1,
            &["wide-in.safetensors", "input features"],
        ),
        case(
            "a FIFO as checkpoint",
            s(&["eval", &p("fifo.safetensors"), "--device", "cpu"]),
            1,
            &["fifo.safetensors", "not a regular file"],
        ),
        case(
            "a symlink loop",
            s(&["eval", &p("loop-a.safetensors"), "--device", "cpu"]),
            1,
            &["loop-a.safetensors", "loop of symbolic links"],
        ),
        case(
            "a link to /dev/zero",
            s(&["inspect", &p("device.safetensors")]),
            1,
            &["device.safetensors", "not a regular file"],
        ),
        case(
            "a folder of junk only",
            s(&["soup", "--ingredients", &p("only-junk"), "--out", &out_s]),
            1,
            &["only-junk", "no .safetensors checkpoints"],
        ),
        case(
            "corrupt manifest",
            s(&["soup", "--ingredients", &p("bad-manifest"), "--out", &out_s]),
            1,
            &["manifest.json", "unreadable manifest"],
        ),
        case(
            "manifest lists missing files",
            s(&["soup", "--ingredients", &p("missing-listed"), "--out", &out_s]),
            1,
            &["manifest.json", "does not exist"],
        ),
        case(
            "mixed architectures",
            s(&[
                "soup",
                "--ingredients",
                &p("mixed"),
                "--strategy",
                "uniform",
                "--device",
                "cpu",
                "--out",
                &out_s,
            ]),
            1,
            &["b.safetensors"],
        ),
        case(
            "legacy .pt",
            s(&["import", &p("garbage.pt"), "--dataset", "csbm", "--out", &out_s]),
            1,
            &["garbage.pt", "legacy format"],
        ),
        case(
            ".pt without data.pkl",
            s(&["import", &p("no-pkl.pt"), "--dataset", "csbm", "--out", &out_s]),
            1,
            &["no-pkl.pt", "no data.pkl"],
        ),
        case(
            "pickle memo bomb",
            s(&["import", &p("memo-bomb.pt"), "--dataset", "csbm", "--out", &out_s]),
            1,
            &["memo-bomb.pt", "memo references expand"],
        ),
        // --- datasets ---
        case(
            "npz negative label",
            data(&format!("npz:{}", p("negative-label.npz"))),
            1,
            &["negative-label.npz", "negative label"],
        ),
        case(
            "npz NaN label",
            data(&format!("npz:{}", p("nan-label.npz"))),
            1,
            &["nan-label.npz", "not a class number"],
        ),
        case(
            "npz label 10^12",
            data(&format!("npz:{}", p("huge-label.npz"))),
            1,
            &["huge-label.npz", "more classes than nodes"],
        ),
        case(
            "npz claims 10^12 columns",
            data(&format!("npz:{}", p("huge-shape.npz"))),
            1,
            &["huge-shape.npz", "attr_shape claims"],
        ),
        case(
            "npz not a zip",
            data(&format!("npz:{}", p("not-zip.npz"))),
            1,
            &["not-zip.npz", "not an .npz"],
        ),
        case(
            "npz without labels",
            data(&format!("npz:{}", p("no-labels.npz"))),
            1,
            &["no-labels.npz"],
        ),
        case(
            "npz path missing",
            data(&format!("npz:{}", p("absent.npz"))),
            1,
            &["absent.npz", "no such file"],
        ),
        case(
            "planetoid pickles truncated",
            s(&["data", "info", "--dataset", "cora", "--data-dir", &p("planetoid")]),
            1,
            &["ind.cora.x", "pickle"],
        ),
        case(
            "OGB directory without files",
            s(&["data", "info", "--dataset", &p("ogb")]),
            1,
            &["ogb"],
        ),
        case(
            "OGB gzip bomb",
            s(&["data", "info", "--dataset", &p("ogb-bomb")]),
            1,
            &["num-node-list.csv.gz", "decompresses to more than"],
        ),
        case("csbm 10^12 nodes", data("csbm:nodes=1000000000000"), 1, &["csbm", "nodes"]),
        case("csbm 10^9 features", data("csbm:features=1000000000"), 1, &["csbm", "features"]),
        case("csbm degree 1e300", data("csbm:degree=1e300"), 1, &["csbm", "degree"]),
        case("csbm negative split", data("csbm:train=-1"), 1, &["csbm split sizes"]),
        case(
            "csbm not a number",
            data("csbm:nodes=abc"),
            1,
            &["csbm setting nodes", "not a whole number"],
        ),
        case("csbm unknown key", data("csbm:colour=red"), 1, &["unknown csbm setting"]),
        case("dataset typo", data("coar"), 1, &["did you mean cora?"]),
        // --- settings ---
        case(
            "LS with 0 epochs",
            s(&[
                "soup",
                "--ingredients",
                &run_s,
                "--strategy",
                "ls",
                "--epochs",
                "0",
                "--out",
                &out_s,
            ]),
            2,
            &["--epochs"],
        ),
        case(
            "lr inf",
            s(&[
                "soup",
                "--ingredients",
                &run_s,
                "--strategy",
                "ls",
                "--lr",
                "inf",
                "--out",
                &out_s,
            ]),
            2,
            &["--lr"],
        ),
        case(
            "lr negative",
            s(&["soup", "--ingredients", &run_s, "--strategy", "ls", "--lr=-1", "--out", &out_s]),
            2,
            &["--lr"],
        ),
        case(
            "patience 0",
            s(&["soup", "--ingredients", &run_s, "--patience", "0", "--out", &out_s]),
            2,
            &["--patience"],
        ),
        case(
            "holdout 1.5",
            s(&["soup", "--ingredients", &run_s, "--holdout", "1.5", "--out", &out_s]),
            2,
            &["--holdout"],
        ),
        case(
            "one part",
            s(&[
                "soup",
                "--ingredients",
                &run_s,
                "--strategy",
                "pls",
                "--parts",
                "1",
                "--out",
                &out_s,
            ]),
            2,
            &["--parts"],
        ),
        case(
            "unknown strategy",
            s(&["soup", "--ingredients", &run_s, "--strategy", "best", "--out", &out_s]),
            2,
            &["best"],
        ),
        case("train lr inf", s(&["train", "--lr", "inf", "--out", &out_s]), 1, &["--lr"]),
        case(
            "train hidden 10^12",
            s(&["train", "--hidden", "1000000000000", "--out", &out_s]),
            1,
            &["widths above"],
        ),
        case(
            "train 10^6 layers",
            s(&["train", "--layers", "1000000", "--out", &out_s]),
            1,
            &["layers"],
        ),
        case(
            "train dropout 1.5",
            s(&["train", "--dropout", "1.5", "--out", &out_s]),
            1,
            &["--dropout"],
        ),
        case(
            "train edge dropout 1.5",
            s(&["train", "--arch", "paper-gat", "--edge-dropout", "1.5", "--out", &out_s]),
            1,
            &["--edge-dropout", "[0, 1)"],
        ),
        case(
            "train edge dropout on a gcn",
            s(&["train", "--arch", "gcn", "--edge-dropout", "0.1", "--out", &out_s]),
            1,
            &["edge dropout is part of the paper's GAT"],
        ),
        case(
            "train unknown activation",
            s(&["train", "--activation", "tanh", "--out", &out_s]),
            2,
            &["tanh", "relu, elu"],
        ),
        case(
            "a GPU that is not there",
            s(&["soup", "--ingredients", &run_s, "--device", "cuda:7", "--out", &out_s]),
            1,
            &["cuda:7"],
        ),
        // --- paths and events files ---
        case(
            "attach to a folder without events",
            s(&["tui", "--attach", &p("only-junk")]),
            1,
            &["only-junk", "events.jsonl"],
        ),
        case(
            "--out is a file",
            s(&[
                "soup",
                "--ingredients",
                &run_s,
                "--strategy",
                "uniform",
                "--device",
                "cpu",
                "--out",
                &p("garbage.pt"),
            ]),
            1,
            &["garbage.pt"],
        ),
        case(
            "--out holds another run's events",
            s(&[
                "soup",
                "--ingredients",
                &run_s,
                "--strategy",
                "uniform",
                "--device",
                "cpu",
                "--out",
                &p("earlier-run"),
            ]),
            1,
            &["events.jsonl", "already exists"],
        ),
        case(
            "export onto an existing file",
            s(&["export", &ing0, "--out", &p("garbage.pt")]),
            1,
            &["garbage.pt", "already exists"],
        ),
    ];
    // An earlier run's folder: its events must not be truncated by a later run.
    std::fs::create_dir_all(t.join("earlier-run")).unwrap();
    std::fs::write(t.join("earlier-run/events.jsonl"), b"{\"kind\":\"log\"}\n").unwrap();

    assert!(cases.len() >= 40, "{} cases", cases.len());
    check_cases(&cases, t, &out);
}

/// Runs each case on a fresh `out` and checks what the table says of it: the exit code, the
/// message, no panic or C++ trace, nothing changed outside `out`.
fn check_cases(cases: &[Case], t: &Path, out: &Path) {
    let mut failures = Vec::new();
    for c in cases {
        let _ = std::fs::remove_dir_all(out);
        let before = snapshot(t, out);
        let (code, stderr) = run_limited(&c.args, t);
        let after = snapshot(t, out);
        let mut wrong = Vec::new();
        if code != Some(c.code) {
            wrong.push(format!("exit {code:?}, expected {}", c.code));
        }
        for needle in &c.says {
            if !stderr.contains(needle.as_str()) {
                wrong.push(format!("message does not say {needle:?}"));
            }
        }
        if stderr.contains("panicked")
            || stderr.contains("RUST_BACKTRACE")
            || stderr.contains("libtorch") && stderr.contains("Exception raised")
        {
            wrong.push("a panic or C++ trace".into());
        }
        if before != after {
            let changed: Vec<String> = after
                .keys()
                .chain(before.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .map(|k| k.display().to_string())
                .collect();
            wrong.push(format!("changed outside --out: {changed:?}"));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n    gnn-soup {}\n    stderr: {}",
                c.name,
                wrong.join("; "),
                c.args.join(" "),
                stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases went wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A strategy that fails does not take the others' results with it: they are printed (`--json`),
/// compared and written; the failure is the last word on stderr and in `events.jsonl`; exit 1.
#[test]
fn a_failing_strategy_keeps_the_others_results() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // One validation node: LS and PLS cannot hold any out for --holdout, the others are fine.
    let (ok, _, stderr) = common::run_bin(&[
        "train",
        "--dataset",
        "csbm:nodes=300,train=60,val=1,test=100",
        "--ingredients",
        "2",
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let out = tmp.path().join("all");
    let (ok, stdout, stderr) = common::run_bin(&[
        "soup",
        "--ingredients",
        run.to_str().unwrap(),
        "--strategy",
        "all",
        "--holdout",
        "0.5",
        "--device",
        "cpu",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("ls failed: --holdout needs at least 2 validation nodes")
            && stderr.contains("pls failed"),
        "{stderr}"
    );
    let reports: Vec<serde_json::Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("--json still prints the finished reports ({e}): {stdout}"));
    let names: Vec<&str> = reports.iter().map(|r| r["strategy"].as_str().unwrap()).collect();
    assert_eq!(names, ["uniform", "greedy", "gis", "ensemble"]);
    assert!(
        out.join("comparison.md").is_file() && out.join("comparison.json").is_file(),
        "--json with all writes the comparison too"
    );
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    assert_eq!(
        events.matches("\"event\":\"failed\"").count(),
        2,
        "both failures are in events.jsonl"
    );
    // A second run into the same folder is refused before anything is touched.
    let (ok, _, stderr) = common::run_bin(&[
        "soup",
        "--ingredients",
        run.to_str().unwrap(),
        "--strategy",
        "all",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("events.jsonl")).unwrap(),
        events,
        "the earlier run's events are kept"
    );
}

/// A learned strategy whose step would not fit in the memory left is refused before it starts,
/// with what it needs, what is there, and what PLS would need; the others still run. A limit
/// that is not a size is an error that names the variable.
#[test]
fn a_fit_that_would_not_fit_is_refused_with_the_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let (ok, _, stderr) = common::run_bin(&[
        "train",
        "--dataset",
        "csbm:nodes=4000",
        "--hidden",
        "256",
        "--layers",
        "3",
        "--ingredients",
        "2",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let soup = |limit: &str, out: &str| {
        let out = tmp.path().join(out);
        let args = [
            "soup",
            "--ingredients",
            run.to_str().unwrap(),
            "--strategy",
            "all",
            "--epochs",
            "3",
            "--parts",
            "32",
            "--sample",
            "2",
            "--device",
            "cpu",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ];
        common::run_bin_with(&args, &[("GNN_SOUP_MEMORY_LIMIT", limit)])
    };
    // LS on 4000 nodes x (3 layers of 256) needs ~32 MiB; PLS with 2 of 32 parts ~8 MiB (its
    // full-graph evaluation).
    let (ok, stdout, stderr) = soup("12MiB", "small");
    assert!(!ok, "{stderr}");
    let line =
        stderr.lines().find(|l| l.contains("ls failed")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains("needs about")
            && line.contains("GiB is available in memory")
            && line.contains("--strategy pls needs about"),
        "{line}"
    );
    let reports: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = reports.iter().map(|r| r["strategy"].as_str().unwrap()).collect();
    assert_eq!(names, ["uniform", "greedy", "gis", "pls", "ensemble"], "{stderr}");
    let (ok, _, stderr) = soup("lots", "bad");
    assert!(!ok && stderr.contains("GNN_SOUP_MEMORY_LIMIT=\"lots\" is not a size"), "{stderr}");
    // Training is checked the same way, before its first epoch, and leaves no ingredient.
    let refused = tmp.path().join("refused");
    let args = [
        "train",
        "--dataset",
        "csbm:nodes=4000",
        "--hidden",
        "256",
        "--layers",
        "3",
        "--ingredients",
        "2",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        refused.to_str().unwrap(),
    ];
    let (ok, _, stderr) = common::run_bin_with(&args, &[("GNN_SOUP_MEMORY_LIMIT", "4MiB")]);
    assert!(
        !ok && stderr.contains("full-batch training of gcn")
            && stderr.contains("needs about")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(!refused.join("ingredient-00.safetensors").exists());
}

/// A plain safetensors state dict (no gnn-soup metadata): (name, dtype, shape, bytes) each.
fn state_dict(path: &Path, tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let at = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [at, data.len()] }),
        );
    }
    safetensors(path, &serde_json::Value::Object(header), &data);
}

/// A GCN state dict for the hostile dataset (8 features, 3 classes, hidden 8), with `first`
/// standing in for the first layer's weight.
fn gcn_state_dict(path: &Path, first: (&str, Vec<usize>, Vec<u8>)) {
    let f32s = |n: usize, v: f32| v.to_le_bytes().repeat(n);
    state_dict(
        path,
        &[
            ("convs.0.lin.weight", first.0, first.1, first.2),
            ("convs.0.bias", "F32", vec![8], f32s(8, 0.0)),
            ("convs.1.lin.weight", "F32", vec![3, 8], f32s(24, 0.1)),
            ("convs.1.bias", "F32", vec![3], f32s(3, 0.0)),
        ],
    );
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo {}", path.display());
}

const HOSTILE_DATA: &str = "csbm:nodes=400,features=8,classes=3,train=60,val=100,test=200";

/// Issue 24's classes: writing over what is not a regular file, imports that panicked, blocked
/// or wrote what `soup` then refused, settings far beyond sense, Planetoid headers claiming
/// terabytes, tampered events files.
#[test]
fn hostile_inputs_round_two_are_refused_cleanly() {
    let run = ingredients();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let p = |name: &str| t.join(name).display().to_string();
    let ing0 = run.join("ingredient-00.safetensors").display().to_string();
    let run_s = run.display().to_string();
    let out = t.join("out");
    let out_s = out.display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let case = |name: &'static str, args: Vec<String>, code: i32, says: &[&str]| Case {
        name,
        args,
        code,
        says: says.iter().map(|x| x.to_string()).collect(),
    };
    mkfifo(&t.join("fifo.pt"));
    mkfifo(&t.join("fifo.safetensors"));
    std::fs::create_dir_all(t.join("a-directory.pt")).unwrap();
    std::os::unix::fs::symlink(t.join("elsewhere.pt"), t.join("link.pt")).unwrap();
    let f32s = |n: usize, v: f32| v.to_le_bytes().repeat(n);
    gcn_state_dict(&t.join("one-d.safetensors"), ("F32", vec![64], f32s(64, 0.1)));
    gcn_state_dict(&t.join("int8.safetensors"), ("I8", vec![8, 8], vec![1; 64]));
    gcn_state_dict(&t.join("nan.safetensors"), ("F32", vec![8, 8], f32s(64, f32::NAN)));
    std::fs::write(t.join("huge-epochs.toml"), "[settings]\nepochs = 1e18\n").unwrap();
    std::fs::write(t.join("many-epochs.toml"), "[settings]\nepochs = 1000000000000\n").unwrap();
    // Planetoid's Cora with a training-label header claiming 2^40 rows of no columns.
    let cora = t.join("planetoid");
    std::fs::create_dir_all(&cora).unwrap();
    for f in std::fs::read_dir(common::planetoid_dir()).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("ind.cora.") {
            std::fs::copy(f.path(), cora.join(f.file_name())).unwrap();
        }
    }
    let made = std::process::Command::new(common::python())
        .args(["-c", "import numpy, pickle, sys; open(sys.argv[1], 'wb').write(pickle.dumps(numpy.empty((2**40, 0)), protocol=3))"])
        .arg(cora.join("ind.cora.y"))
        .status()
        .unwrap();
    assert!(made.success(), "writing the crafted ind.cora.y");
    // A report path that is a directory: refused before any soup is written.
    std::fs::create_dir_all(t.join("blocked/report-uniform.json")).unwrap();

    let cases = vec![
        case(
            "export --overwrite onto a FIFO",
            s(&["export", &ing0, "--out", &p("fifo.pt"), "--overwrite"]),
            1,
            &["fifo.pt", "a FIFO"],
        ),
        case(
            "export --overwrite onto a directory",
            s(&["export", &ing0, "--out", &p("a-directory.pt"), "--overwrite"]),
            1,
            &["a-directory.pt", "a directory"],
        ),
        case(
            "export --overwrite onto a symbolic link",
            s(&["export", &ing0, "--out", &p("link.pt"), "--overwrite"]),
            1,
            &["link.pt", "a symbolic link"],
        ),
        case(
            "data export --overwrite onto a FIFO",
            s(&[
                "data",
                "export",
                "--dataset",
                HOSTILE_DATA,
                "--out",
                &p("fifo.pt"),
                "--overwrite",
            ]),
            1,
            &["fifo.pt", "a FIFO"],
        ),
        case(
            "soup --overwrite where a report would go is a directory",
            s(&[
                "soup",
                "--ingredients",
                &run_s,
                "--strategy",
                "uniform",
                "--device",
                "cpu",
                "--out",
                &p("blocked"),
                "--overwrite",
            ]),
            1,
            &["report-uniform.json", "a directory"],
        ),
        case(
            "import a FIFO",
            s(&["import", &p("fifo.safetensors"), "--dataset", HOSTILE_DATA, "--out", &out_s]),
            1,
            &["fifo.safetensors", "not a regular file"],
        ),
        case(
            "import 1-D weights",
            s(&["import", &p("one-d.safetensors"), "--dataset", HOSTILE_DATA, "--out", &out_s]),
            1,
            &["one-d.safetensors", "[out, in]"],
        ),
        case(
            "import int8 weights",
            s(&["import", &p("int8.safetensors"), "--dataset", HOSTILE_DATA, "--out", &out_s]),
            1,
            &["convs.0.lin.weight", "floating point"],
        ),
        case(
            "import NaN weights",
            s(&["import", &p("nan.safetensors"), "--dataset", HOSTILE_DATA, "--out", &out_s]),
            1,
            &["convs.0.lin.weight", "NaN"],
        ),
        case(
            "recipe epochs = 1e18",
            s(&[
                "soup",
                "--recipe",
                &p("huge-epochs.toml"),
                "--ingredients",
                &run_s,
                "--out",
                &out_s,
            ]),
            1,
            &["huge-epochs.toml", "epochs"],
        ),
        case(
            "recipe epochs = 10^12",
            s(&[
                "soup",
                "--recipe",
                &p("many-epochs.toml"),
                "--ingredients",
                &run_s,
                "--out",
                &out_s,
            ]),
            1,
            &["many-epochs.toml", "epochs", "1000000"],
        ),
        case(
            "--granularity 10^12",
            s(&[
                "soup",
                "--ingredients",
                &run_s,
                "--strategy",
                "gis",
                "--granularity",
                "1000000000000",
                "--out",
                &out_s,
            ]),
            2,
            &["granularity", "from 2 to 1000"],
        ),
        case(
            "train --ingredients 10^12",
            s(&[
                "train",
                "--dataset",
                HOSTILE_DATA,
                "--ingredients",
                "1000000000000",
                "--out",
                &out_s,
            ]),
            1,
            &["--ingredients must be from 1 to 10000"],
        ),
        case(
            "Planetoid labels claiming 2^40 rows",
            s(&["data", "info", "--dataset", "cora", "--data-dir", &p("planetoid")]),
            1,
            &["ind.cora.y", "training labels"],
        ),
    ];
    check_cases(&cases, t, &out);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(t.join("fifo.pt")).unwrap().file_type().is_fifo());
    assert!(t.join("a-directory.pt").is_dir());
    assert!(!t.join("blocked/soup-uniform.safetensors").exists(), "no soup left behind");
}

/// `--json` users parse stdout: a command that fails prints a JSON object saying why (and exit
/// code 1), not nothing.
#[test]
fn a_failing_json_command_prints_a_json_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-run");
    let out = common::bin()
        .args(["soup", "--ingredients", missing.to_str().unwrap(), "--strategy", "uniform"])
        .args(["--out", tmp.path().join("out").to_str().unwrap(), "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {:?}", String::from_utf8_lossy(&out.stdout))
    });
    assert_eq!(doc["exit"], 1);
    assert!(doc["error"].as_str().unwrap().contains("no-such-run"), "{doc}");
}

/// `ssh host gnn-soup tui --attach RUN` without `-t`: no terminal, so the run is followed as
/// plain lines until every strategy of its job ended; an events line beyond the limit (tens of
/// MiB) is skipped while read, and what follows it still counts.
#[test]
fn attach_without_a_terminal_follows_as_text_and_skips_a_huge_line() {
    let run = ingredients();
    let tmp = tempfile::tempdir().unwrap();
    let soup = tmp.path().join("soup");
    let (ok, _, stderr) = common::run_bin(&[
        "soup",
        "--ingredients",
        run.to_str().unwrap(),
        "--strategy",
        "uniform",
        "--device",
        "cpu",
        "--out",
        soup.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let events = soup.join("events.jsonl");
    let mut text = "x".repeat(20 << 20);
    text.push('\n');
    text.push_str(&std::fs::read_to_string(&events).unwrap());
    std::fs::write(&events, text).unwrap();
    let (code, stderr) =
        run_limited(&s_vec(&["tui", "--attach", soup.to_str().unwrap()]), tmp.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("uniform: val"), "the run's end is shown: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn s_vec(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}
