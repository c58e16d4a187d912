//! `pycguard fix`: scan, prove (unless `--shallow`), repair, print, and count what decides
//! the exit status (repairs that failed, entries that could not be read).

use crate::actions::fix;
use crate::actions::recompile::WriteOptions;
use crate::commands::{discover, stop_if_interrupted, CommandResult, Finished};
use crate::exit::Tally;
use crate::output::fix::{print, FixOutput};
use crate::progress::Progress;
use crate::prove;
use crate::scan::{self, Keep};
use crate::settings::FixConfig;
use crate::verdict::State;

/// Run `fix`.
pub fn run(config: &FixConfig) -> CommandResult {
    let interpreters = discover(&config.discovery)?;
    let verbose = config.verbosity.verbose();
    let (mut report, deep) = if config.prove_first {
        // Proofs are recalled while the scan runs; a recalled fresh cache needs no repair.
        let recall = prove::Recall::open(config.prove.cache_dir.as_deref(), &interpreters);
        let mut report = scan::run_with(&config.scan, &|entry| {
            !recall.apply(entry) || verbose || entry.verdict.state != State::Fresh
        });
        stop_if_interrupted()?;
        let deep = prove::run(&mut report, &config.prove, &interpreters, &recall)?;
        (report, Some(deep))
    } else {
        let keep = if verbose { Keep::All } else { Keep::Problems };
        let report = scan::run(&config.scan, keep);
        stop_if_interrupted()?;
        (report, None)
    };
    let header_only = report.summary.header_only;
    let walked = std::mem::take(&mut report.walk);
    let scan_errors = std::mem::take(&mut report.errors);
    let (fresh, entries): (Vec<_>, Vec<_>) = report
        .entries
        .into_iter()
        .partition(|e| e.verdict.state == State::Fresh);
    // -v lists the fresh caches fix leaves alone.
    let fresh: Vec<_> = if config.verbosity.verbose() {
        fresh.into_iter().map(|e| e.path).collect()
    } else {
        Vec::new()
    };
    let progress = Progress::bar(config.verbosity.normal(), "recompiling", 0);
    let write = WriteOptions {
        progress: progress.handle(),
        ..config.write.clone()
    };
    let outcome = fix::run(entries, &interpreters, &config.options, &write);
    drop(progress);
    stop_if_interrupted()?;
    print(
        &mut config.verbosity.stdout(),
        &FixOutput {
            outcome: &outcome,
            interpreters: &interpreters,
            scan_errors: &scan_errors,
            deep: deep.as_ref(),
            header_only,
            walk: &walked,
            dry_run: config.options.dry_run,
            fresh: &fresh,
            verbosity: config.verbosity,
            format: config.format,
        },
    )?;
    Ok(Finished::with(Tally {
        problems: outcome.failed(),
        warnings: 0,
        unreadable: scan_errors.len(),
    }))
}
