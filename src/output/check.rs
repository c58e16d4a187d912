//! `pycguard check`'s printer: which of [`super::human`]'s and [`super::json`]'s parts
//! go where.
//!
//! Human: the problems grouped by state (with `-v` the fresh caches too), then — not
//! with `-q` — the summary, the deep summary (or, after a check by header only, how to
//! prove), the environments skipped (with `-v` one per line). JSON: the report (schema 1,
//! see [`super::json`]) alone on stdout; the lines it has no room for (environments
//! skipped and the deep summary, not with `-q`; every entry that could not be read) go to
//! stderr. Nothing at all with `-qq` (the caller writes to a sink).

use std::io::{self, Write};
use std::time::Duration;

use crate::escape;
use crate::output::github::{self, Annotation, Level};
use crate::output::verbosity::Verbosity;
use crate::output::Format;
use crate::output::{human, json, json_lines, JsonError};
use crate::prove::DeepSummary;
use crate::report::Report;

/// What a check found, to print.
pub struct CheckOutput<'a> {
    pub report: &'a Report,
    pub deep: Option<&'a DeepSummary>,
    pub elapsed: Duration,
    pub format: Format,
    pub verbosity: Verbosity,
}

/// Print a check: its result on `out`, notes on `err`.
pub fn print<O: Write, E: Write>(out: &mut O, err: &mut E, c: &CheckOutput<'_>) -> io::Result<()> {
    let report = c.report;
    let v = c.verbosity;
    match c.format {
        Format::Json => json::write_report(out, report)?,
        Format::JsonLines => write_lines(out, report)?,
        Format::Github => write_annotations(out, report)?,
        Format::Human => {
            if v.verbose() {
                human::write_fresh(out, report)?;
            }
            human::write_problems(out, report)?;
            if v.normal() {
                human::write_summary(out, report, c.elapsed)?;
                match c.deep {
                    Some(summary) => human::write_deep_summary(out, summary)?,
                    None => human::write_deep_hint(out, report)?,
                }
                human::write_skipped(out, &report.walk, v)?;
            }
        }
    }
    out.flush()?;
    if c.format.is_machine() {
        if v.normal() {
            if let Some(line) = report.walk.skipped_line() {
                writeln!(err, "pycguard: {line}")?;
            }
            if let Some(summary) = c.deep {
                human::write_deep_summary(err, summary)?;
            }
        }
        // Unreadable entries still reach the user on stderr when stdout is not for them.
        let annotated = c.format == Format::Github;
        for error in report.errors.iter().filter(|_| v.problems() && !annotated) {
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

/// `--output-format json-lines`: a `cache` object per cache (as in the JSON report's
/// `caches`), an `error` object per entry that could not be read.
fn write_lines<W: Write>(out: &mut W, report: &Report) -> io::Result<()> {
    let mut object = Vec::new();
    for entry in &report.entries {
        object.clear();
        json::write_entry(&mut object, entry)?;
        json_lines::write_raw(out, "cache", &object)?;
    }
    for error in &report.errors {
        json_lines::write(out, "error", &JsonError::new(&error.path, &error.message))?;
    }
    Ok(())
}

/// `--output-format github`: an annotation per cache that is not fresh, and per entry
/// that could not be read.
fn write_annotations<W: Write>(out: &mut W, report: &Report) -> io::Result<()> {
    for entry in &report.entries {
        let Some(level) = Level::of(entry.verdict.severity) else {
            continue;
        };
        let state = entry.verdict.state;
        let title = format!("pycguard: {} cache", state.name());
        let message = crate::messages::reason(&entry.verdict).map_or_else(
            || state.meaning().to_owned(),
            |r| format!("{}: {r}", state.meaning()),
        );
        github::write(out, &Annotation::on(level, &entry.path, &title, &message))?;
    }
    for error in &report.errors {
        github::write(
            out,
            &Annotation::on(
                Level::Error,
                &error.path,
                "pycguard: unreadable",
                &error.message,
            ),
        )?;
    }
    Ok(())
}
