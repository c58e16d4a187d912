//! `pycguard clean`: resolve its flags, remove, print, and turn the outcome into an exit
//! code.

use std::io::{self, Write};

use crate::actions::clean::{self, CleanOptions, CleanOutcome};
use crate::cli::CleanArgs;
use crate::commands::{interrupted, parse_states, ActionArgsError};
use crate::exit::ExitCode;
use crate::output::escape;
use crate::output::human::severity_style;
use crate::settings::ScanConfig;
use crate::verdict::Severity;

pub fn clean_options(
    args: &CleanArgs,
) -> Result<(ScanConfig, CleanOptions), Box<dyn std::error::Error>> {
    let scan = ScanConfig::resolve(&args.walk).map_err(ActionArgsError::from)?;
    let options = CleanOptions {
        states: parse_states(&args.state)?,
        tags: args
            .tag
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        debris: args.debris,
        dry_run: args.dry_run,
    };
    Ok((scan, options))
}

pub fn run_clean(
    scan: &ScanConfig,
    options: &CleanOptions,
    args: &CleanArgs,
) -> io::Result<ExitCode> {
    let outcome = clean::run(scan, options);
    if interrupted() {
        return Ok(ExitCode::Interrupted);
    }
    let mut out = anstream::stdout().lock();
    write_clean(
        &mut out,
        &outcome,
        options.dry_run,
        args.verbose || options.dry_run,
        args.quiet,
    )?;
    out.flush()?;
    Ok(
        if outcome.failed.is_empty() && outcome.scan_errors.is_empty() {
            ExitCode::Success
        } else {
            ExitCode::Problems
        },
    )
}

fn write_clean<W: Write>(
    out: &mut W,
    o: &CleanOutcome,
    dry: bool,
    list: bool,
    quiet: bool,
) -> io::Result<()> {
    let verb = if dry { "would remove" } else { "removed" };
    if list && !quiet {
        for p in &o.removed {
            writeln!(out, "{verb} {}", escape::path(p))?;
        }
        for p in &o.debris_removed {
            writeln!(out, "{verb} {}/", escape::path(p))?;
        }
        for p in &o.dirs_removed {
            writeln!(out, "{verb} {}/", escape::path(p))?;
        }
    }
    let err = severity_style(Severity::Error);
    for (p, message) in &o.failed {
        writeln!(
            out,
            "{err}failed{err:#} {}: {}",
            escape::path(p),
            escape::text(message)
        )?;
    }
    for (p, message) in &o.scan_errors {
        writeln!(
            out,
            "{err}unreadable{err:#} {}: {}",
            escape::path(p),
            escape::text(message)
        )?;
    }
    let mut parts = vec![format!(
        "{verb} {} {}",
        o.removed.len(),
        if o.removed.len() == 1 {
            "cache"
        } else {
            "caches"
        }
    )];
    if !o.dirs_removed.is_empty() {
        parts.push(format!(
            "{} empty __pycache__ directories",
            o.dirs_removed.len()
        ));
    }
    if !o.debris_removed.is_empty() {
        parts.push(format!("{} tool-cache directories", o.debris_removed.len()));
    }
    if o.kept_sourceless > 0 {
        parts.push(format!(
            "kept {} sourceless (use --state sourceless to remove them)",
            o.kept_sourceless
        ));
    }
    if !o.failed.is_empty() {
        parts.push(format!("{err}{} failed{err:#}", o.failed.len()));
    }
    writeln!(out, "{}", parts.join(", "))?;
    match o.walk.skipped_line() {
        Some(line) if !quiet => writeln!(out, "{line}"),
        _ => Ok(()),
    }
}
