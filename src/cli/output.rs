//! What the headless commands print: JSON documents, percentages, aligned text tables.

/// Prints a JSON document on stdout (the only thing printed there under `--json`).
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    JSON_PRINTED.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// Whether this process printed its JSON document: a command asked for `--json` that fails
/// before it did prints one saying why ([`print_json_error`]), so stdout always holds one.
static JSON_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `{"error": ..., "exit": ...}` on stdout, unless the command already printed its document
/// (its results; the error then goes to stderr only).
pub fn print_json_error(message: &str, exit: u8) {
    if !JSON_PRINTED.load(std::sync::atomic::Ordering::SeqCst) {
        let doc = serde_json::json!({ "error": message, "exit": exit });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
}

pub use crate::units::percent;

/// A plain aligned text table for terminal summaries.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table { header: header.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// Left-aligns the first column, right-aligns the others (numbers).
    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0usize; cols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |r: &Vec<String>| {
            let cells: Vec<String> = (0..cols)
                .map(|i| {
                    let c = r.get(i).map(String::as_str).unwrap_or("");
                    if i == 0 {
                        format!("{c:<w$}", w = width[i])
                    } else {
                        format!("{c:>w$}", w = width[i])
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        out.push_str(
            width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  ").trim_end(),
        );
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}
