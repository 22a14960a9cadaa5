//! `gnn-soup completions SHELL` and `gnn-soup man`: generated from the same clap definition as the
//! parser (settings' flags included), so they never disagree with `--help`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

use super::args::Cli;

pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "gnn-soup", &mut std::io::stdout());
    Ok(())
}

/// The page of `cmd` (roff).
fn page(cmd: clap::Command) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out).context("rendering the manual page")?;
    Ok(out)
}

pub fn man(out: Option<&Path>, overwrite: bool) -> Result<()> {
    let cmd = Cli::command();
    let Some(dir) = out else {
        use std::io::Write;
        std::io::stdout().write_all(&page(cmd)?)?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The top page, then one per command named as man(1) expects: gnn-soup-soup.1, ...
    let mut pages = vec![("gnn-soup.1".to_string(), page(cmd.clone())?)];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("gnn-soup-{}", sub.get_name());
        pages.push((format!("{name}.1"), page(sub.clone().name(name))?));
    }
    if !overwrite {
        if let Some((f, _)) = pages.iter().find(|(f, _)| dir.join(f).exists()) {
            bail!(
                "{} already exists (pass --overwrite to replace the pages)",
                dir.join(f).display()
            );
        }
    }
    for (f, bytes) in &pages {
        crate::checkpoint::write_atomic(&dir.join(f), bytes)?;
    }
    eprintln!(
        "wrote {} pages into {} (`man -l {}`)",
        pages.len(),
        dir.display(),
        dir.join("gnn-soup.1").display()
    );
    Ok(())
}
