use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    gnn_soup::device::silence_beta_warnings();
    // Behave like a Unix tool when piped into `head`: exit quietly on a closed pipe, no panic.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = gnn_soup::cli::Cli::parse();
    gnn_soup::cli::init_logging(cli.uses_terminal_ui());
    gnn_soup::signals::install();
    // Exit codes (README): 0 done, 1 error, 2 usage (clap), 3 stopped early with a partial result.
    match gnn_soup::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<gnn_soup::signals::Interrupted>().is_some() => {
            eprintln!("interrupted: {e:#}");
            ExitCode::from(gnn_soup::signals::EXIT_INTERRUPTED)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
