//! `pycguard inspect`: learn everything about each file given, print, and count what
//! decides the exit status (error-severity caches, files that could not be read).

use crate::commands::{CommandResult, Finished};
use crate::exit::Tally;
use crate::inspect::{self, Inspection};
use crate::settings::InspectConfig;
use crate::verdict::Severity;

/// Run `inspect`.
pub fn run(config: &InspectConfig) -> CommandResult {
    let inspections: Vec<Inspection> = config
        .files
        .iter()
        .map(|(file, absolute)| inspect::inspect(file, absolute, config.prefix.as_deref()))
        .collect();
    crate::output::inspect::print(
        &mut config.verbosity.stdout(),
        &inspections,
        config.format,
        config.verbosity,
    )?;
    let errors = |i: &&Inspection| {
        i.entry
            .as_ref()
            .is_some_and(|e| e.verdict.severity == Severity::Error)
    };
    Ok(Finished::with(Tally {
        problems: inspections.iter().filter(errors).count(),
        warnings: 0,
        unreadable: inspections
            .iter()
            .filter(|i| i.read_error.is_some())
            .count(),
    }))
}
