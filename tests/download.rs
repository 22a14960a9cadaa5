//! Downloading named datasets, against a loopback HTTP server serving fixture files.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use gnn_soup::data;

/// Serves files of `root` on 127.0.0.1 for `requests` requests, then stops.
fn serve(root: PathBuf, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches("/data/")
                .to_string();
            match std::fs::read(root.join(&path)) {
                Ok(body) => {
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .unwrap();
                    stream.write_all(&body).unwrap();
                }
                Err(_) => write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .unwrap(),
            }
        }
    });
    format!("http://{addr}/data")
}

/// The mirror is named in the child's environment only: nothing process-wide changes here.
#[test]
fn planetoid_downloads_from_the_configured_base_url() {
    let dir = common::planetoid_dir();
    let base = serve(dir, 8 + 1);
    let cache = tempfile::tempdir().unwrap();
    let data_dir = cache.path().to_str().unwrap();
    let env = [("GNN_SOUP_PLANETOID_URL", base.as_str())];
    let (ok, _, stderr) = common::run_bin_with(
        &["data", "download", "--dataset", "cora", "--data-dir", data_dir],
        &env,
    );
    assert!(ok, "{stderr}");
    let g = data::load("cora", &common::data_opts(cache.path())).unwrap();
    assert_eq!((g.num_nodes, g.num_edges()), (2708, 10_556));
    assert!(cache.path().join("ind.cora.graph").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty());

    // the server has no pubmed: a clear error, and nothing half-written left behind
    let (ok, _, stderr) = common::run_bin_with(
        &["data", "download", "--dataset", "pubmed", "--data-dir", data_dir],
        &env,
    );
    assert!(!ok);
    assert!(stderr.contains("HTTP 404") && stderr.contains("ind.pubmed.x"), "{stderr}");
    assert!(!cache.path().join("ind.pubmed.x").exists());
}
