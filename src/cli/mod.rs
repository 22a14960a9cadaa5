//! The `gnn-soup` command line: arguments ([`args`]), one file per command, and what the
//! headless commands share ([`headless`], [`output`]). This file only dispatches.

pub mod args;
mod data_cmd;
mod demo_cmd;
mod devices_cmd;
mod docs_cmd;
mod export_cmd;
pub mod headless;
mod import_cmd;
mod inspect_cmd;
pub mod logging;
pub mod output;
mod slurm_cmd;
mod soup_cmd;
mod train_cmd;
mod tui_cmd;

use anyhow::Result;

pub use args::Cli;
pub use logging::{init_logging, log_file};

use args::{Command, DataCommand, DemoArgs, SlurmCommand};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command.unwrap_or(Command::Demo(DemoArgs { out: None, device: "auto".into() })) {
        Command::Data(DataCommand::Info { data, json }) => data_cmd::info(&data, json),
        Command::Data(DataCommand::Download { data }) => data_cmd::download(&data),
        Command::Data(DataCommand::Export { data, out, overwrite }) => {
            data_cmd::export(&data, &out, overwrite)
        }
        Command::Train(args) => train_cmd::run(&args),
        Command::Inspect(args) => inspect_cmd::run(&args),
        Command::Soup(args) => soup_cmd::run(&args),
        Command::Eval(args) => soup_cmd::eval(&args),
        Command::Demo(args) => demo_cmd::run(&args),
        Command::Tui(args) => tui_cmd::run(&args),
        Command::Import(args) => import_cmd::run(&args),
        Command::Export(args) => export_cmd::run(&args),
        Command::Slurm(SlurmCommand::Train(args)) => slurm_cmd::train(&args),
        Command::Completions { shell } => docs_cmd::completions(shell),
        Command::Man { out, overwrite } => docs_cmd::man(out.as_deref(), overwrite),
        Command::Devices { json } => devices_cmd::run(json),
    }
}
