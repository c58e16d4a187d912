//! `pycguard compile`: survey the tree and find the interpreters (at once), choose which
//! interpreters to compile for; unless the survey proves the tree up to date (the no-op
//! pass, in memory flat in the size of the tree), walk it again and compile what is
//! missing or not fresh; print, and count what decides the exit status (compiles that
//! failed, entries that could not be read).

use crate::actions::compile::{self, CompileOutcome, Survey};
use crate::actions::recompile::WriteOptions;
use crate::commands::{discover, stop_if_interrupted, CommandError, CommandResult, Finished};
use crate::exit::Tally;
use crate::interpreters::Interpreters;
use crate::output::compile::{print, print_chosen, CompileOutput};
use crate::progress::Progress;
use crate::settings::CompileConfig;

/// Run `compile`.
pub fn run(config: &CompileConfig) -> CommandResult {
    let (survey, found) = find(config)?;
    stop_if_interrupted()?;
    let chosen = compile::choose_interpreters(
        &found,
        !config.discovery.pythons.is_empty(),
        &survey.tags,
        &config.scan.roots,
        &config.discovery.search,
    );
    if chosen.is_empty() {
        return Err(CommandError::NoInterpreter);
    }
    let mut out = config.verbosity.stdout();
    print_chosen(&mut out, &chosen, config.format, config.verbosity)?;
    let (chosen, reasons): (Vec<_>, Vec<_>) = chosen.into_iter().unzip();
    let (outcome, errors, walk) = match survey.up_to_date(&chosen, &config.options) {
        // Nothing to do, and nothing kept per source to know it.
        Some(up_to_date) => (
            CompileOutcome {
                up_to_date,
                ..CompileOutcome::default()
            },
            survey.errors,
            survey.walk,
        ),
        None => {
            drop(survey);
            let found_tree = compile::find_sources(&config.scan);
            stop_if_interrupted()?;
            let errors = found_tree.errors.clone();
            let walk = found_tree.walk.clone();
            let progress = Progress::bar(config.verbosity.normal(), "compiling", 0);
            let write = WriteOptions {
                progress: progress.handle(),
                ..config.write.clone()
            };
            let outcome = compile::run(found_tree, &chosen, &config.options, &write);
            drop(progress);
            (outcome, errors, walk)
        }
    };
    stop_if_interrupted()?;
    print(
        &mut out,
        &CompileOutput {
            outcome: &outcome,
            chosen: &chosen,
            reasons: &reasons,
            scan_errors: &errors,
            walk: &walk,
            prefix_given: config.scan.walk.pycache_prefix.is_some(),
            dry_run: config.options.dry_run,
            verbosity: config.verbosity,
            format: config.format,
        },
    )?;
    Ok(Finished::with(Tally {
        problems: outcome.failed.len(),
        warnings: 0,
        unreadable: errors.len(),
    }))
}

/// The survey of the tree (see [`Survey`]), and the interpreters on the machine.
fn find(config: &CompileConfig) -> Result<(Survey, Interpreters), CommandError> {
    if !config.discovery.pythons.is_empty() {
        // A bad --python is reported before any walk.
        let found = discover(&config.discovery)?;
        return Ok((compile::survey(&config.scan, &config.options), found));
    }
    // Finding the interpreters (a few stats, probes remembered) overlaps the walk.
    std::thread::scope(|s| {
        let discovering = s.spawn(|| discover(&config.discovery));
        let found_tree = compile::survey(&config.scan, &config.options);
        let found = discovering
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok((found_tree, found))
    })
}
