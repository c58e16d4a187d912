//! `pycguard ps`: the Python processes running code from PATHS whose code may be older
//! than the tree — sources or caches changed after they started, or a working directory
//! in a release a `current` symlink no longer points to. Read-only, from `/proc` only
//! ([`crate::procs`]); nothing of the processes is run or attached to. The interpreters
//! pycguard discovers on its own (trusted, isolated, usually remembered: no process) are
//! recognised by their resolved executables besides the CPython name rule.
//!
//! Exit status: 1 when a listed process may run old code, else 0 (2 on bad usage).

use crate::commands::{discover, stop_if_interrupted, CommandResult, Finished};
use crate::exit::Tally;
use crate::output::ps::{print, PsOutput};
use crate::procs::{self, running};
use crate::settings::PsConfig;

/// Run `ps`.
pub fn run(config: &PsConfig) -> CommandResult {
    let interpreters = discover(&config.discovery)?;
    let known: Vec<_> = interpreters
        .all()
        .iter()
        .map(|i| i.resolved.clone())
        .collect();
    let listing = procs::python_processes(&known);
    let tolerance_ns = procs::start_tolerance_ns();
    let outcome = running::find(&config.scan, &listing.processes, tolerance_ns);
    stop_if_interrupted()?;
    let stale = outcome.running.iter().filter(|r| r.is_stale()).count();
    print(
        &mut config.verbosity.stdout(),
        &PsOutput {
            listing: &listing,
            outcome: &outcome,
            tolerance_ns,
            all: config.all,
            format: config.format,
        },
    )?;
    Ok(Finished::with(Tally {
        problems: stale,
        warnings: 0,
        unreadable: outcome.errors.len(),
    }))
}
