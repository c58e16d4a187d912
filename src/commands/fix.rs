//! `pycguard fix`: check, prove, repair, print, and turn the outcome into an exit code.

use std::io::{self, Write};

use crate::actions::fix::{self, Action, FixOptions};
use crate::cli::FixArgs;
use crate::commands::{interpreters_for, interrupted, mode_of, parse_states};
use crate::exit::ExitCode;
use crate::output::escape;
use crate::output::human::severity_style;
use crate::prove;
use crate::scan::{self, Keep};
use crate::settings::ScanConfig;
use crate::verdict::{Severity, State};

pub fn run_fix(args: &FixArgs) -> io::Result<ExitCode> {
    let scan = match ScanConfig::resolve(&args.walk) {
        Ok(s) => s,
        Err(e) => return Ok(crate::commands::usage_error(&e)),
    };
    let include = match parse_states(&args.include) {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return Ok(crate::commands::usage_error(&e)),
    };
    let options = FixOptions {
        delete: args.delete,
        include,
        mode: args.invalidation_mode.map(mode_of),
        dry_run: args.dry_run,
    };
    // Proving is the default: a fix that leaves hidden-stale code is not a fix. The proofs
    // are remembered, so a second run only hashes. `--deep` is accepted and changes nothing.
    let prove = !args.shallow;
    let keep = if prove { Keep::All } else { Keep::Problems };
    let mut report = scan::run(&scan, keep);
    if interrupted() {
        return Ok(ExitCode::Interrupted);
    }
    let (deep_config, interpreters) = match interpreters_for(
        &scan,
        &args.deep.python.pythons,
        args.deep.timeout,
        !args.quiet,
    ) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let deep_summary = if prove {
        match prove::run(&mut report, &deep_config, &interpreters) {
            Ok(summary) => Some(summary),
            Err(_) => return Ok(ExitCode::Interrupted),
        }
    } else {
        None
    };
    let header_only = report.summary.header_only;
    let walked = std::mem::take(&mut report.walk);
    let scan_errors = std::mem::take(&mut report.errors);
    let entries: Vec<_> = report
        .entries
        .into_iter()
        .filter(|e| e.verdict.state != State::Fresh)
        .collect();
    let outcome = fix::run(
        entries,
        &interpreters,
        &options,
        deep_config.workers,
        deep_config.timeout,
    );
    if interrupted() {
        return Ok(ExitCode::Interrupted);
    }
    let mut out = anstream::stdout().lock();
    let err = severity_style(Severity::Error);
    for d in &outcome.done {
        let (verb, detail) = match (&d.action, args.dry_run) {
            (Action::Recompile { interpreter, .. }, dry) => (
                if dry { "would recompile" } else { "recompiled" },
                format!(
                    "with {}",
                    escape::text(&interpreters.all()[*interpreter].display_name())
                ),
            ),
            (Action::Delete { why }, dry) => {
                (if dry { "would delete" } else { "deleted" }, why.clone())
            }
            (Action::Leave { why, .. }, _) => ("left", why.clone()),
        };
        match &d.error {
            Some(message) => writeln!(
                out,
                "{err}failed{err:#} to repair {} ({}): {}",
                escape::path(&d.path),
                d.state,
                escape::text(message)
            )?,
            None if matches!(d.action, Action::Leave { failure: true, .. }) => writeln!(
                out,
                "{err}failed{err:#} to repair {} ({}): {}",
                escape::path(&d.path),
                d.state,
                escape::text(&detail)
            )?,
            None if !args.quiet => writeln!(
                out,
                "{verb} {} ({}; {})",
                escape::path(&d.path),
                d.state,
                escape::text(&detail)
            )?,
            None => {}
        }
    }
    for e in &scan_errors {
        writeln!(
            out,
            "{err}unreadable{err:#} {}: {}",
            escape::path(&e.path),
            escape::text(&e.message)
        )?;
    }
    let prefix = if args.dry_run { "would have " } else { "" };
    writeln!(
        out,
        "{prefix}repaired {}, deleted {}, left {}, failed {}{}",
        if args.dry_run {
            outcome.count(|d| matches!(d.action, Action::Recompile { .. }))
        } else {
            outcome.repaired()
        },
        if args.dry_run {
            outcome.count(|d| matches!(d.action, Action::Delete { .. }))
        } else {
            outcome.deleted()
        },
        outcome.left(),
        outcome.failed(),
        if outcome.dirs_removed.is_empty() {
            String::new()
        } else {
            format!(
                "; removed {} empty __pycache__ directories",
                outcome.dirs_removed.len()
            )
        }
    )?;
    if !args.quiet {
        match &deep_summary {
            Some(summary) => crate::output::human::write_deep_summary(&mut out, summary)?,
            None if header_only > 0 => writeln!(
                out,
                "--shallow: {header_only} {} judged by header only (mtime and size, as the interpreter does) and left as {}; without --shallow, fix proves {} against {} source",
                if header_only == 1 { "cache was" } else { "caches were" },
                if header_only == 1 { "it was" } else { "they were" },
                if header_only == 1 { "it" } else { "them" },
                if header_only == 1 { "its" } else { "their" },
            )?,
            None => {}
        }
        if let Some(line) = walked.skipped_line() {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(if outcome.failed() == 0 && scan_errors.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Problems
    })
}
