use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The CPU allocator PLS keeps large blocks with (src/engine/memory.rs);
    // GNN_SOUP_PLAIN_ALLOCATOR=1 keeps libtorch's own (for comparisons).
    if std::env::var_os("GNN_SOUP_PLAIN_ALLOCATOR").is_none() {
        gnn_soup::device::reuse_cpu_blocks();
    }
    gnn_soup::device::silence_beta_warnings();
    // Behave like a Unix tool when piped into `head`: exit quietly on a closed pipe, no panic.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = gnn_soup::cli::Cli::parse();
    let json = cli.wants_json();
    gnn_soup::cli::init_logging(cli.uses_terminal_ui());
    gnn_soup::signals::install();
    gnn_soup::crash::install_hook();
    // Exit codes (docs/files.md): 0 done, 1 error, 2 usage (clap), 3 stopped early with a partial result.
    // The command runs on a thread of its own, not on the process's main thread: libtorch's CPU
    // work ran 1.6x slower there (measured: `train` on csbm-arxiv 22.0 s against 14.0 s for the
    // same CPU seconds; one forward+backward 2.3 s against 1.2 s). The cause is in how its
    // thread pools treat the main thread, not pinned down; the engine's jobs already ran on
    // threads of their own, which is why souping did not show it.
    let command = std::thread::Builder::new()
        .name("gnn-soup".into())
        .stack_size(64 << 20)
        .spawn(move || gnn_soup::cli::run(cli));
    let result = match command.map(|t| t.join()) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(anyhow::anyhow!(
            "internal error (please report it): {}",
            gnn_soup::crash::summary(panic.as_ref())
        )),
        Err(e) => Err(anyhow::anyhow!("cannot start the command's thread: {e}")),
    };
    tracing::debug!(blocks = ?gnn_soup::device::cpu_block_stats(), "reusing CPU allocator");
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<gnn_soup::signals::Interrupted>().is_some() => {
            eprintln!("interrupted: {e:#}");
            let code = gnn_soup::signals::EXIT_INTERRUPTED;
            if json {
                gnn_soup::cli::output::print_json_error(&format!("interrupted: {e:#}"), code);
            }
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            if json {
                gnn_soup::cli::output::print_json_error(&format!("{e:#}"), 1);
            }
            ExitCode::FAILURE
        }
    }
}
