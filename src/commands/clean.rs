//! `pycguard clean`: remove what is selected, print, and count what decides the exit
//! status (removals that failed, entries that could not be read).

use crate::actions::clean::{self, CleanOptions};
use crate::commands::{stop_if_interrupted, CommandResult, Finished};
use crate::exit::Tally;
use crate::output::clean::{print, CleanOutput};
use crate::progress::Progress;
use crate::settings::CleanConfig;

/// Run `clean`.
pub fn run(config: &CleanConfig) -> CommandResult {
    let label = if config.options.dry_run {
        "finding caches"
    } else {
        "removing caches"
    };
    let progress = Progress::counter(config.verbosity.normal(), label);
    let options = CleanOptions {
        progress: progress.handle(),
        ..config.options.clone()
    };
    let outcome = clean::run(&config.scan, &options);
    drop(progress);
    stop_if_interrupted()?;
    print(
        &mut config.verbosity.stdout(),
        &CleanOutput {
            outcome: &outcome,
            dry_run: config.options.dry_run,
            list: config.list,
            verbosity: config.verbosity,
            format: config.format,
        },
    )?;
    Ok(Finished::with(Tally {
        problems: outcome.failed.len(),
        warnings: 0,
        unreadable: outcome.scan_errors.len(),
    }))
}
