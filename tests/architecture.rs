//! The crate's layering, checked from the source: no module may import a module that imports it
//! back, directly or through others. Every `.rs` file under `src/` is a module; an edge A -> B is
//! any path in A that names B (`use crate::b::..`, `super::b::..`, `b::..` for a child module,
//! or an inline `crate::b::f()`). A module's own `#[cfg(test)]` tail is left out: unit tests
//! reach into their parent by design.
//!
//! Run alone: `cargo test --test architecture` (no libtorch work, a second).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path ("cli::soup_cmd"; "" for the crate root) -> file.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> =
                rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            match parts.last().map(String::as_str) {
                Some("main") if parts.len() == 1 => continue, // the binary, not the library
                Some("lib") if parts.len() == 1 => parts.clear(),
                Some("mod") => {
                    parts.pop();
                }
                _ => {}
            }
            out.insert(parts.join("::"), p);
        }
    }
    out
}

/// The file without comments, string literals and its trailing `#[cfg(test)]` section.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        // Drop string literals (paths in messages are not imports).
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
                out.push(' ');
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or("").to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|s| !s.is_empty())
        .flat_map(|s| expand(s).into_iter().map(move |p| format!("{prefix}{p}")))
        .collect()
}

/// Every path written in `code` that starts at `crate`, `super`, `self` or a child module.
fn paths_in(code: &str, children: &BTreeSet<String>) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = String::new();
    let mut tail = code;
    while let Some(i) = tail.find("use ") {
        let boundary = i == 0 || !tail[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        rest.push_str(&tail[..i]);
        let Some(end) = tail[i..].find(';') else { break };
        if boundary {
            paths.extend(expand(&tail[i + 4..i + end]));
        } else {
            rest.push_str(&tail[i..i + end]);
        }
        tail = &tail[i + end..];
    }
    rest.push_str(tail);
    // Inline paths: an identifier followed by `::`, not itself preceded by `::`.
    let bytes = rest.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let starts_path =
            i == 0 || !(is_ident(bytes[i - 1]) || i >= 2 && &bytes[i - 2..i] == b"::");
        if is_ident(bytes[i]) && starts_path {
            let mut j = i;
            while j < bytes.len()
                && (is_ident(bytes[j])
                    || (bytes[j] == b':' && j + 1 < bytes.len() && bytes[j + 1] == b':'))
            {
                j += if bytes[j] == b':' { 2 } else { 1 };
            }
            let path = &rest[i..j];
            let head = path.split("::").next().unwrap_or("");
            if path.contains("::")
                && (matches!(head, "crate" | "super" | "self") || children.contains(head))
            {
                paths.push(path.to_string());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    paths
}

/// The module a path written in module `from` lands in (the longest module prefix).
fn resolve(from: &str, path: &str, mods: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut base: Vec<&str> = if from.is_empty() { vec![] } else { from.split("::").collect() };
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    match segs.first().copied() {
        Some("crate") => {
            base.clear();
            segs.remove(0);
        }
        Some("super") => {
            while segs.first() == Some(&"super") {
                base.pop();
                segs.remove(0);
            }
        }
        Some("self") => {
            segs.remove(0);
        }
        _ => {}
    }
    let full: Vec<&str> = base.into_iter().chain(segs).collect();
    (0..=full.len()).rev().map(|k| full[..k].join("::")).find(|m| mods.contains_key(m))
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn dependency_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, file) in &mods {
        let children: BTreeSet<String> = mods
            .keys()
            .filter_map(|m| {
                let rest = if name.is_empty() {
                    Some(m.as_str())
                } else {
                    m.strip_prefix(&format!("{name}::"))
                };
                rest.filter(|r| !r.is_empty() && !r.contains("::")).map(str::to_string)
            })
            .collect();
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let e = edges.entry(name.clone()).or_default();
        for p in paths_in(&code, &children) {
            if let Some(to) = resolve(name, &p, &mods) {
                // The crate root only declares modules; an edge into it is a path through it.
                if &to != name && !to.is_empty() {
                    e.insert(to);
                }
            }
        }
    }
    edges
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = dependency_graph(&src);
    let found = cycles(&edges);
    let mut msg = String::new();
    for c in &found {
        msg.push_str(&format!("cycle among {}:\n", c.join(", ")));
        for a in c {
            for b in edges[a].iter().filter(|b| c.contains(b)) {
                msg.push_str(&format!("  {a} -> {b}\n"));
            }
        }
    }
    assert!(found.is_empty(), "import cycles in src/:\n{msg}");
}

#[test]
fn the_checker_finds_a_cycle_and_reads_nested_use_trees() {
    let dir = tempfile_dir();
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod a; pub mod b;").unwrap();
    std::fs::write(dir.join("a/mod.rs"), "pub mod x;\nuse crate::{b::{self, Thing}};\n").unwrap();
    std::fs::write(
        dir.join("a/x.rs"),
        "fn f() { super::y(); }\n#[cfg(test)]\nmod t { use crate::b; }",
    )
    .unwrap();
    std::fs::write(dir.join("b.rs"), "fn g() { let s = \"crate::a::nothing\"; crate::a::x::f(); }")
        .unwrap();
    let edges = dependency_graph(&dir);
    assert_eq!(edges["a"], BTreeSet::from(["b".to_string()]));
    assert_eq!(edges["a::x"], BTreeSet::from(["a".to_string()]));
    assert_eq!(edges["b"], BTreeSet::from(["a::x".to_string()]));
    assert_eq!(cycles(&edges), vec![vec!["a".to_string(), "a::x".to_string(), "b".to_string()]]);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("gnn-soup-arch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
