//! `pycguard check`'s printer: which of [`super::human`]'s and [`super::json`]'s parts
//! go where.
//!
//! Human: the problems grouped by state (not with `-q`), the summary, the deep summary
//! (or, after a check by header only, how to prove), the environments skipped. JSON:
//! the report (schema 1, see [`super::json`]) alone on stdout; the lines it has no room
//! for (environments skipped, the deep summary, and every entry that could not be read)
//! go to stderr, as they do with `-q`.

use std::io::{self, Write};
use std::time::Duration;

use crate::escape;
use crate::output::Format;
use crate::output::{human, json};
use crate::prove::DeepSummary;
use crate::report::Report;

/// What a check found, to print.
pub struct CheckOutput<'a> {
    pub report: &'a Report,
    pub deep: Option<&'a DeepSummary>,
    pub elapsed: Duration,
    pub format: Format,
    pub quiet: bool,
}

/// Print a check: its result on `out`, notes on `err`.
pub fn print<O: Write, E: Write>(out: &mut O, err: &mut E, c: &CheckOutput<'_>) -> io::Result<()> {
    let report = c.report;
    match c.format {
        Format::Json => json::write_report(out, report)?,
        Format::Human => {
            if !c.quiet {
                human::write_problems(out, report)?;
            }
            human::write_summary(out, report, c.elapsed)?;
            match c.deep {
                Some(summary) => human::write_deep_summary(out, summary)?,
                None if !c.quiet => human::write_deep_hint(out, report)?,
                None => {}
            }
            if let (Some(line), false) = (report.walk.skipped_line(), c.quiet) {
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    if c.format == Format::Json {
        if let (Some(line), false) = (report.walk.skipped_line(), c.quiet) {
            writeln!(err, "pycguard: {line}")?;
        }
        if let Some(summary) = c.deep {
            human::write_deep_summary(err, summary)?;
        }
    }
    if c.format == Format::Json || c.quiet {
        // Unreadable entries still reach the user on stderr when stdout is not for them.
        for error in &report.errors {
            writeln!(
                err,
                "pycguard: {}: {}",
                escape::path(&error.path),
                escape::text(&error.message)
            )?;
        }
    }
    err.flush()
}
