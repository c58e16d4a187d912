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
use crate::verdict::State;

/// Run `check`.
pub fn run(config: &CheckConfig) -> CommandResult {
    let started = Instant::now();
    // A bad --python is a usage error even when --deep is not given.
    interpreters::check_flags(&config.discovery).map_err(CommandError::BadPython)?;
    let keep_fresh =
        config.verbosity.verbose() || matches!(config.format, Format::Json | Format::JsonLines);
    let (report, deep) = if config.deep {
        // Discovered first, so that proofs are recalled while the scan runs.
        let interpreters = discover(&config.discovery)?;
        let recall = prove::Recall::open(config.prove.cache_dir.as_deref(), &interpreters);
        let mut report = scan::run_with(&config.scan, &|entry| {
            // A recalled fresh cache is settled: kept only to be listed.
            !recall.apply(entry) || keep_fresh || entry.verdict.state != State::Fresh
        });
        // A walk cut short: print nothing that looks like a result.
        stop_if_interrupted()?;
        let deep = prove::run(&mut report, &config.prove, &interpreters, &recall)?;
        (report, Some(deep))
    } else {
        let keep = if keep_fresh {
            Keep::All
        } else {
            Keep::Problems
        };
        let report = scan::run(&config.scan, keep);
        stop_if_interrupted()?;
        (report, None)
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
