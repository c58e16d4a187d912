//! `pycguard check`: scan, prove with `--deep`, print, and count what decides the exit
//! status (error-severity caches, entries that could not be read; with `--strict`
//! warnings too).

use std::time::Instant;

use crate::cli::Format;
use crate::commands::{discover, stop_if_interrupted, CommandError, CommandResult, Finished};
use crate::exit::Tally;
use crate::interpreters;
use crate::output::check::{print, CheckOutput};
use crate::prove;
use crate::report::Report;
use crate::scan::{self, Keep};
use crate::settings::CheckConfig;

/// Run `check`.
pub fn run(config: &CheckConfig) -> CommandResult {
    let started = Instant::now();
    // A bad --python is a usage error even when --deep is not given.
    interpreters::check_flags(&config.discovery).map_err(CommandError::BadPython)?;
    let keep = match config.format {
        // The deep stage upgrades fresh verdicts too, so it needs every entry.
        _ if config.deep => Keep::All,
        // -v lists the fresh caches too.
        _ if config.verbosity.verbose() => Keep::All,
        Format::Human | Format::Github => Keep::Problems,
        Format::Json | Format::JsonLines => Keep::All,
    };
    let mut report = scan::run(&config.scan, keep);
    // A walk cut short: print nothing that looks like a result.
    stop_if_interrupted()?;
    let deep = if config.deep {
        let interpreters = discover(&config.discovery)?;
        Some(prove::run(&mut report, &config.prove, &interpreters)?)
    } else {
        None
    };
    print(
        &mut config.verbosity.stdout(),
        &mut config.verbosity.stderr(),
        &CheckOutput {
            report: &report,
            deep: deep.as_ref(),
            elapsed: started.elapsed(),
            format: config.format,
            verbosity: config.verbosity,
        },
    )?;
    Ok(Finished {
        tally: tally(&report),
        policy: config.policy,
    })
}

/// What a check's report counts toward the exit status.
pub fn tally(report: &Report) -> Tally {
    Tally {
        problems: report.summary.errors,
        warnings: report.summary.warnings,
        unreadable: report.errors.len(),
    }
}
