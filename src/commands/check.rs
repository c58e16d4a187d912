//! `pycguard check`: scan, optionally prove, print, and turn the report into an exit code.

use std::io::{self, Write};
use std::time::Instant;

use crate::cli::{DeepArgs, Format};
use crate::commands::usage_error;
use crate::exit::ExitCode;
use crate::output::{escape, human, json};
use crate::prove;
use crate::scan::{self, Keep};
use crate::settings::CheckConfig;
use crate::verdict::Severity;

pub fn run_check(config: &CheckConfig, deep_args: &DeepArgs) -> io::Result<ExitCode> {
    let started = Instant::now();
    // A bad --python is a usage error even when --deep is not given.
    if let Err(bad) = crate::interpreters::check_flags(&deep_args.python.pythons) {
        eprintln!(
            "pycguard: error: --python {}: {}",
            bad.path.display(),
            bad.message
        );
        return Ok(ExitCode::Usage);
    }
    let keep = match config.format {
        // The deep stage upgrades fresh verdicts too, so it needs every entry.
        _ if deep_args.deep => Keep::All,
        Format::Json => Keep::All,
        Format::Human => Keep::Problems,
    };
    let mut report = scan::run(&config.scan, keep);
    if crate::signals::interrupted() {
        // A walk cut short: print nothing that looks like a result.
        return Ok(ExitCode::Interrupted);
    }
    let deep_summary = if deep_args.deep {
        match prove::run_stage(&mut report, deep_args, config) {
            Ok(summary) => Some(summary),
            Err(err @ prove::StageError::Usage { .. }) => return Ok(usage_error(&err)),
            // The workers are already stopped and reaped.
            Err(prove::StageError::Interrupted) => return Ok(ExitCode::Interrupted),
        }
    } else {
        None
    };
    let elapsed = started.elapsed();
    let mut out = anstream::stdout().lock();
    match config.format {
        Format::Json => json::write_report(&mut out, &report)?,
        Format::Human => {
            if !config.quiet {
                human::write_problems(&mut out, &report)?;
            }
            human::write_summary(&mut out, &report, elapsed)?;
            match &deep_summary {
                Some(summary) => human::write_deep_summary(&mut out, summary)?,
                None if !config.quiet => human::write_deep_hint(&mut out, &report)?,
                None => {}
            }
            if let (Some(line), false) = (report.walk.skipped_line(), config.quiet) {
                writeln!(out, "{line}")?;
            }
        }
    }
    if let (Format::Json, Some(line), false) =
        (config.format, report.walk.skipped_line(), config.quiet)
    {
        eprintln!("pycguard: {line}");
    }
    if let (Format::Json, Some(summary)) = (config.format, &deep_summary) {
        human::write_deep_summary(&mut anstream::stderr().lock(), summary)?;
    }
    out.flush()?;
    if config.format == Format::Json || config.quiet {
        // Unreadable entries still reach the user on stderr when stdout is not for them.
        for error in &report.errors {
            eprintln!(
                "pycguard: {}: {}",
                escape::path(&error.path),
                escape::text(&error.message)
            );
        }
    }
    let worst = report.summary.worst;
    let failing = match worst {
        Some(Severity::Error) => true,
        Some(Severity::Warning) => config.strict,
        _ => false,
    } || !report.errors.is_empty();
    Ok(if failing && !config.exit_zero {
        ExitCode::Problems
    } else {
        ExitCode::Success
    })
}
