//! `pycguard fix`'s printer.
//!
//! Human: with `-v` first `fresh PATH` for each cache left alone because it is fresh;
//! one line per action (`recompiled PATH (STATE; with Python 3.12.1)`, `deleted PATH
//! (STATE; why)`, `left PATH (STATE; why)`; not with `-q`), `failed to repair PATH
//! (STATE): why`, `unreadable PATH: why` (the problems: also with `-q`), then — not with
//! `-q` — the summary line, the proof summary (or, with `--shallow`, how many caches were
//! judged by header only) and the environments skipped (`-v`: one per line).
//!
//! JSON (`--output-format json`), one document:
//!
//! ```text
//! {"schema": 1,
//!  "dry_run": false,
//!  "actions": [{"path": P, "state": "stale",
//!               "action": "recompile" | "delete" | "leave",
//!               "interpreter": "Python 3.12.1" | null,   (recompile)
//!               "optimization": 0 | null,                (recompile)
//!               "invalidation": "timestamp" | "checked-hash" | "unchecked-hash" | null,
//!               "reason": "why" | null,                   (delete, leave)
//!               "failed": false,
//!               "error": "why it failed" | null}, …],
//!  "summary": {"repaired": N, "deleted": N, "left": N, "failed": N},
//!  "dirs_removed": [P, …],
//!  "errors": [{"path": P, "message": M}, …],
//!  "deep": {"compiled": N, "remembered": N, "unproven": N} | null,   (null: --shallow)
//!  "header_only": N,
//!  "skipped": [{"path": P, "venv": true}, …]}
//! ```
//!
//! `actions` lists every cache that was not fresh, sorted by path; in a dry run nothing
//! was done and `summary` counts what would be (`repaired`, `deleted`: planned). `failed`
//! is true when the repair was attempted and failed (`error` says why) or cannot be made
//! (`reason` says why). `errors` are entries that could not be read.

use std::io::{self, Write};

use serde::Serialize;

use crate::actions::fix::{Action, FixOutcome};
use crate::actions::recompile::Mode;
use crate::escape;
use crate::interpreters::Interpreters;
use crate::output::github::{self, Annotation, Level};
use crate::output::human::severity_style;
use crate::output::verbosity::Verbosity;
use crate::output::Format;
use crate::output::{json_lines, json_paths, write_json, JsonError, JsonPath, JsonSkipped, SCHEMA};
use crate::prove::DeepSummary;
use crate::report::ScanError;
use crate::verdict::Severity;
use crate::walk::WalkSummary;

/// What a fix did, to print.
pub struct FixOutput<'a> {
    pub outcome: &'a FixOutcome,
    pub interpreters: &'a Interpreters,
    pub scan_errors: &'a [ScanError],
    pub deep: Option<&'a DeepSummary>,
    /// Caches judged by header only (with `--shallow`).
    pub header_only: usize,
    pub walk: &'a WalkSummary,
    pub dry_run: bool,
    /// The fresh caches left alone (listed with `-v`; empty otherwise).
    pub fresh: &'a [std::path::PathBuf],
    pub verbosity: Verbosity,
    pub format: Format,
}

/// Print a fix.
pub fn print<W: Write>(out: &mut W, f: &FixOutput<'_>) -> io::Result<()> {
    match f.format {
        Format::Human => write_human(out, f)?,
        Format::Json => write_json(out, &json(f))?,
        Format::JsonLines => {
            let doc = json(f);
            for action in &doc.actions {
                json_lines::write(out, "action", action)?;
            }
            json_lines::write_paths(out, "dir_removed", &doc.dirs_removed)?;
            for error in &doc.errors {
                json_lines::write(out, "error", error)?;
            }
        }
        Format::Github => write_annotations(out, f)?,
    }
    out.flush()
}

/// The summary line's counts: done, or (dry run) planned.
fn counts(f: &FixOutput<'_>) -> (usize, usize, usize, usize) {
    let o = f.outcome;
    let repaired = if f.dry_run {
        o.count(|d| matches!(d.action, Action::Recompile { .. }))
    } else {
        o.repaired()
    };
    let deleted = if f.dry_run {
        o.count(|d| matches!(d.action, Action::Delete { .. }))
    } else {
        o.deleted()
    };
    (repaired, deleted, o.left(), o.failed())
}

fn write_human<W: Write>(out: &mut W, f: &FixOutput<'_>) -> io::Result<()> {
    let err = severity_style(Severity::Error);
    let v = f.verbosity;
    if v.verbose() {
        for path in f.fresh {
            writeln!(out, "fresh {}", escape::path(path))?;
        }
    }
    // Failures one per line; what was done grouped by source across optimisation levels.
    let mut done = Vec::new();
    for d in &f.outcome.done {
        let (verb, detail) = match (&d.action, f.dry_run) {
            (Action::Recompile { interpreter, .. }, dry) => (
                if dry { "would recompile" } else { "recompiled" },
                format!(
                    "with {}",
                    escape::text(&f.interpreters.all()[*interpreter].display_name())
                ),
            ),
            (Action::Delete { why }, dry) => {
                (if dry { "would delete" } else { "deleted" }, why.clone())
            }
            (Action::Leave { why, .. }, _) => ("left", why.clone()),
        };
        match &d.error {
            Some(e) => writeln!(
                out,
                "{err}failed{err:#} to repair {} ({}): {}",
                escape::path(&d.path),
                d.state,
                escape::text(&e.to_string())
            )?,
            None if matches!(d.action, Action::Leave { failure: true, .. }) => writeln!(
                out,
                "{err}failed{err:#} to repair {} ({}): {}",
                escape::path(&d.path),
                d.state,
                escape::text(&detail)
            )?,
            None => done.push((d, verb, detail)),
        }
    }
    if v.normal() {
        let grouped = crate::output::human::group_levels(
            &done,
            |(d, _, _)| &d.path,
            |(d, verb, detail)| (*verb, d.state, detail.clone()),
        );
        for ((d, verb, detail), others) in grouped {
            writeln!(
                out,
                "{verb} {}{} ({}; {})",
                escape::path(&d.path),
                crate::output::human::also_levels(&others),
                d.state,
                escape::text(detail)
            )?;
        }
    }
    for e in f.scan_errors {
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
    let (repaired, deleted, left, failed) = counts(f);
    let dirs = &f.outcome.dirs_removed;
    writeln!(
        out,
        "{}repaired {repaired}, deleted {deleted}, left {left}, failed {failed}{}",
        if f.dry_run { "would have " } else { "" },
        if dirs.is_empty() {
            String::new()
        } else {
            format!(
                "; removed {}",
                crate::messages::count(
                    dirs.len(),
                    "empty __pycache__ directory",
                    "empty __pycache__ directories"
                )
            )
        }
    )?;
    match f.deep {
        Some(summary) => crate::output::human::write_deep_summary(out, summary)?,
        None if f.header_only > 0 => write_shallow_note(out, f.header_only)?,
        None => {}
    }
    crate::output::human::write_skipped(out, f.walk, v)
}

/// `--output-format github`: an error annotation per repair that failed or cannot be
/// made, and per entry that could not be read.
fn write_annotations<W: Write>(out: &mut W, f: &FixOutput<'_>) -> io::Result<()> {
    for d in &f.outcome.done {
        let why = match (&d.error, &d.action) {
            (Some(e), _) => e.to_string(),
            (None, Action::Leave { why, failure: true }) => why.clone(),
            _ => continue,
        };
        let title = format!("pycguard: failed to repair a {} cache", d.state);
        github::write(out, &Annotation::on(Level::Error, &d.path, &title, &why))?;
    }
    for e in f.scan_errors {
        github::write(
            out,
            &Annotation::on(Level::Error, &e.path, "pycguard: unreadable", &e.message),
        )?;
    }
    Ok(())
}

/// After `fix --shallow`: what was not proven.
fn write_shallow_note<W: Write>(out: &mut W, n: usize) -> io::Result<()> {
    let one = n == 1;
    writeln!(
        out,
        "--shallow: {n} {} judged by header only (mtime and size, as the interpreter does) and left as {}; without --shallow, fix proves {} against {} source",
        if one { "cache was" } else { "caches were" },
        if one { "it was" } else { "they were" },
        if one { "it" } else { "them" },
        if one { "its" } else { "their" },
    )
}

#[derive(Serialize)]
struct JsonFix<'a> {
    schema: u32,
    dry_run: bool,
    actions: Vec<JsonAction<'a>>,
    summary: JsonSummary,
    dirs_removed: Vec<JsonPath<'a>>,
    errors: Vec<JsonError<'a>>,
    deep: Option<JsonDeep>,
    header_only: usize,
    skipped: Vec<JsonSkipped<'a>>,
}

#[derive(Serialize)]
struct JsonAction<'a> {
    path: JsonPath<'a>,
    state: &'static str,
    action: &'static str,
    interpreter: Option<String>,
    optimization: Option<u8>,
    invalidation: Option<&'static str>,
    reason: Option<&'a str>,
    failed: bool,
    error: Option<String>,
}

#[derive(Serialize)]
struct JsonSummary {
    repaired: usize,
    deleted: usize,
    left: usize,
    failed: usize,
}

/// The proof summary of `check --deep` and `fix`, in JSON.
#[derive(Serialize)]
pub struct JsonDeep {
    pub compiled: usize,
    pub remembered: usize,
    pub unproven: usize,
}

impl JsonDeep {
    pub fn of(deep: &DeepSummary) -> JsonDeep {
        JsonDeep {
            compiled: deep.compiled,
            remembered: deep.remembered,
            unproven: deep.unproven(),
        }
    }
}

/// The name of an invalidation mode, as JSON and the flag spell it.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Timestamp => "timestamp",
        Mode::CheckedHash => "checked-hash",
        Mode::UncheckedHash => "unchecked-hash",
    }
}

fn json<'a>(f: &'a FixOutput<'a>) -> JsonFix<'a> {
    let actions = f
        .outcome
        .done
        .iter()
        .map(|d| {
            let (action, interpreter, optimization, invalidation, reason) = match &d.action {
                Action::Recompile {
                    interpreter,
                    optimize,
                    mode,
                } => (
                    "recompile",
                    Some(f.interpreters.all()[*interpreter].display_name()),
                    Some(*optimize),
                    Some(mode_name(*mode)),
                    None,
                ),
                Action::Delete { why } => ("delete", None, None, None, Some(why.as_str())),
                Action::Leave { why, .. } => ("leave", None, None, None, Some(why.as_str())),
            };
            JsonAction {
                path: JsonPath(&d.path),
                state: d.state.name(),
                action,
                interpreter,
                optimization,
                invalidation,
                reason,
                failed: d.error.is_some()
                    || matches!(d.action, Action::Leave { failure: true, .. }),
                error: d.error.as_ref().map(ToString::to_string),
            }
        })
        .collect();
    let (repaired, deleted, left, failed) = counts(f);
    JsonFix {
        schema: SCHEMA,
        dry_run: f.dry_run,
        actions,
        summary: JsonSummary {
            repaired,
            deleted,
            left,
            failed,
        },
        dirs_removed: json_paths(&f.outcome.dirs_removed),
        errors: JsonError::scan(f.scan_errors),
        deep: f.deep.map(JsonDeep::of),
        header_only: f.header_only,
        skipped: JsonSkipped::all(f.walk),
    }
}
