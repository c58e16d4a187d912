//! `pycguard clean`'s printer.
//!
//! Human: with `-v` or `--dry-run` (not with `-q`), every path removed (`removed PATH`,
//! a directory with a trailing `/`); `failed PATH: why` and `unreadable PATH: why` (the
//! problems: also with `-q`); then — not with `-q` — the summary line and the
//! environments skipped (`-v`: one per line).
//!
//! JSON (`--output-format json`), one document:
//!
//! ```text
//! {"schema": 1,
//!  "dry_run": false,
//!  "removed": [P, …],          caches removed (dry run: that would be)
//!  "debris_removed": [P, …],   tool-cache directories (--debris)
//!  "dirs_removed": [P, …],     __pycache__ directories this run emptied (dry run: would)
//!  "kept_sourceless": N,       legacy caches of sourceless distributions left alone
//!  "failed": [{"path": P, "message": M}, …],
//!  "errors": [{"path": P, "message": M}, …],   entries that could not be read
//!  "skipped": [{"path": P, "venv": true}, …]}
//! ```
//!
//! Every list is sorted by path.

use std::io::{self, Write};

use serde::Serialize;

use crate::actions::clean::CleanOutcome;
use crate::escape;
use crate::messages::count;
use crate::output::github::{self, Annotation, Level};
use crate::output::human::severity_style;
use crate::output::verbosity::Verbosity;
use crate::output::Format;
use crate::output::{json_lines, json_paths, write_json, JsonError, JsonPath, JsonSkipped, SCHEMA};
use crate::verdict::Severity;

/// What a clean did, to print.
pub struct CleanOutput<'a> {
    pub outcome: &'a CleanOutcome,
    pub dry_run: bool,
    /// List every path removed.
    pub list: bool,
    pub verbosity: Verbosity,
    pub format: Format,
}

/// Print a clean.
pub fn print<W: Write>(out: &mut W, c: &CleanOutput<'_>) -> io::Result<()> {
    match c.format {
        Format::Human => write_human(out, c)?,
        Format::Json => write_json(out, &json(c))?,
        Format::JsonLines => {
            let doc = json(c);
            json_lines::write_paths(out, "removed", &doc.removed)?;
            json_lines::write_paths(out, "debris_removed", &doc.debris_removed)?;
            json_lines::write_paths(out, "dir_removed", &doc.dirs_removed)?;
            for failed in &doc.failed {
                json_lines::write(out, "failed", failed)?;
            }
            for error in &doc.errors {
                json_lines::write(out, "error", error)?;
            }
        }
        Format::Github => {
            let o = c.outcome;
            for (p, e) in &o.failed {
                let message = e.to_string();
                let a = Annotation::on(Level::Error, p, "pycguard: failed to remove", &message);
                github::write(out, &a)?;
            }
            for e in &o.scan_errors {
                let a = Annotation::on(Level::Error, &e.path, "pycguard: unreadable", &e.message);
                github::write(out, &a)?;
            }
        }
    }
    out.flush()
}

fn write_human<W: Write>(out: &mut W, c: &CleanOutput<'_>) -> io::Result<()> {
    let o = c.outcome;
    let verb = if c.dry_run { "would remove" } else { "removed" };
    let v = c.verbosity;
    if c.list && v.normal() {
        // The optimisation levels of one source on one line.
        for (p, others) in crate::output::human::group_levels(&o.removed, |p| p, |_| ()) {
            writeln!(
                out,
                "{verb} {}{}",
                escape::path(p),
                crate::output::human::also_levels(&others)
            )?;
        }
        for p in &o.debris_removed {
            writeln!(out, "{verb} {}/", escape::path(p))?;
        }
        for p in &o.dirs_removed {
            writeln!(out, "{verb} {}/", escape::path(p))?;
        }
    }
    let err = severity_style(Severity::Error);
    for (p, e) in &o.failed {
        writeln!(
            out,
            "{err}failed{err:#} {}: {}",
            escape::path(p),
            escape::text(&e.to_string())
        )?;
    }
    for e in &o.scan_errors {
        writeln!(
            out,
            "{err}unreadable{err:#} {}: {}",
            escape::path(&e.path),
            escape::text(&e.message)
        )?;
    }
    if !v.normal() {
        return Ok(());
    }
    let mut parts = vec![format!(
        "{verb} {}",
        count(o.removed.len(), "cache", "caches")
    )];
    if !o.dirs_removed.is_empty() {
        parts.push(count(
            o.dirs_removed.len(),
            "empty __pycache__ directory",
            "empty __pycache__ directories",
        ));
    }
    if !o.debris_removed.is_empty() {
        parts.push(count(
            o.debris_removed.len(),
            "tool-cache directory",
            "tool-cache directories",
        ));
    }
    if o.kept_sourceless > 0 {
        parts.push(format!(
            "kept {} (use --state sourceless to remove {})",
            count(o.kept_sourceless, "sourceless cache", "sourceless caches"),
            if o.kept_sourceless == 1 { "it" } else { "them" }
        ));
    }
    if !o.failed.is_empty() {
        parts.push(format!("{err}{} failed{err:#}", o.failed.len()));
    }
    writeln!(out, "{}", parts.join(", "))?;
    crate::output::human::write_skipped(out, &o.walk, v)
}

#[derive(Serialize)]
struct JsonClean<'a> {
    schema: u32,
    dry_run: bool,
    removed: Vec<JsonPath<'a>>,
    debris_removed: Vec<JsonPath<'a>>,
    dirs_removed: Vec<JsonPath<'a>>,
    kept_sourceless: usize,
    failed: Vec<JsonError<'a>>,
    errors: Vec<JsonError<'a>>,
    skipped: Vec<JsonSkipped<'a>>,
}

fn json<'a>(c: &'a CleanOutput<'a>) -> JsonClean<'a> {
    let o = c.outcome;
    JsonClean {
        schema: SCHEMA,
        dry_run: c.dry_run,
        removed: json_paths(&o.removed),
        debris_removed: json_paths(&o.debris_removed),
        dirs_removed: json_paths(&o.dirs_removed),
        kept_sourceless: o.kept_sourceless,
        failed: o.failed.iter().map(|(p, e)| JsonError::new(p, e)).collect(),
        errors: JsonError::scan(&o.scan_errors),
        skipped: JsonSkipped::all(&o.walk),
    }
}
