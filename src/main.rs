//! The `pycguard` binary: parse the command line, run, map the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = pycguard::cli::Cli::parse();
    pycguard::commands::run(cli).into()
}
