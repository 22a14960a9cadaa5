use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    gnn_soup::cli::init_logging();
    let cli = gnn_soup::cli::Cli::parse();
    match gnn_soup::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
