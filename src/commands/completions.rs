//! `pycguard completions SHELL` and `pycguard man [COMMAND]`: generated from the clap
//! definitions in [`crate::cli`] at run time, so they always describe the binary that
//! prints them (as ruff's and uv's `generate-shell-completion` and ripgrep's
//! `--generate man` do; no build script or xtask to keep in step).

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::commands::{CommandError, CommandResult, Finished};
use crate::exit::Tally;

/// Print the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> CommandResult {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pycguard", &mut out);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(Finished::with(Tally::default()))
}

/// Print the man page of pycguard, or of one command (`pycguard-check(1)`).
pub fn man(command: Option<&str>) -> CommandResult {
    let mut cli = Cli::command();
    cli.build();
    let page = match command {
        None => cli,
        Some(name) => {
            let Some(sub) = cli.find_subcommand(name) else {
                let names: Vec<String> = cli
                    .get_subcommands()
                    .map(|s| s.get_name().to_owned())
                    .collect();
                return Err(CommandError::NoSuchCommand(
                    name.to_owned(),
                    names.join(", "),
                ));
            };
            let full = format!("pycguard-{name}");
            sub.clone().name(full.clone()).bin_name(full)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(Finished::with(Tally::default()))
}
