//! `pycguard compile`'s printer.
//!
//! Human: `compiling for Python 3.12.1 (why)` per interpreter before anything is
//! compiled (not with `-q`); in a dry run `would compile SOURCE -> CACHE with PYTHON
//! (why)` per cache (with `-v` also `compiled …` after a real run); `failed PATH: why`,
//! `unreadable PATH: why` (the problems: also with `-q`); then — not with `-q` — the
//! summary line, a note per pycache prefix found in the tree when none is in effect, the
//! environments skipped (`-v`: one per line).
//!
//! JSON (`--output-format json`), one document:
//!
//! ```text
//! {"schema": 1,
//!  "dry_run": false,
//!  "interpreters": [{"name": "Python 3.12.1", "path": P, "tag": "cpython-312",
//!                    "why": "the tree holds cpython-312 caches"}, …],
//!  "compiled": [{"source": P, "cache": P, "interpreter": "Python 3.12.1",
//!                "optimization": 0, "invalidation": "timestamp",
//!                "why": "missing" | "forced" | a state}, …],
//!  "summary": {"compiled": N, "up_to_date": N, "failed": N, "unreadable": N},
//!  "failed": [{"path": P, "message": M}, …],
//!  "errors": [{"path": P, "message": M}, …],
//!  "found_prefixes": [P, …],
//!  "skipped": [{"path": P, "venv": true}, …]}
//! ```
//!
//! `compiled` lists the caches written (in a dry run: that would be), sorted by source;
//! `failed` those that could not be, `errors` entries that could not be read,
//! `found_prefixes` pycache prefixes recognised inside the tree.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::actions::compile::{CompileError, CompileOutcome};
use crate::actions::recompile::WriteError;
use crate::escape;
use crate::interpreters::Interpreter;
use crate::output::fix::mode_name;
use crate::output::github::{self, Annotation, Level};
use crate::output::human::severity_style;
use crate::output::verbosity::Verbosity;
use crate::output::Format;
use crate::output::{json_lines, json_paths, write_json, JsonError, JsonPath, JsonSkipped, SCHEMA};
use crate::report::ScanError;
use crate::verdict::Severity;
use crate::walk::WalkSummary;

/// Before compiling: which interpreters, and why (human, not with `-q`).
pub fn print_chosen<W: Write>(
    out: &mut W,
    chosen: &[(Interpreter, String)],
    format: Format,
    verbosity: Verbosity,
) -> io::Result<()> {
    if format == Format::Human && verbosity.normal() {
        for (interpreter, why) in chosen {
            writeln!(out, "compiling for {} ({why})", interpreter.display_name())?;
        }
        out.flush()?;
    }
    Ok(())
}

/// What a compile did, to print.
pub struct CompileOutput<'a> {
    pub outcome: &'a CompileOutcome,
    pub chosen: &'a [Interpreter],
    /// Why each of `chosen` was chosen.
    pub reasons: &'a [String],
    pub scan_errors: &'a [ScanError],
    pub walk: &'a WalkSummary,
    /// A pycache prefix is in effect (then prefixes found in the tree are not noted).
    pub prefix_given: bool,
    pub dry_run: bool,
    pub verbosity: Verbosity,
    pub format: Format,
}

/// Print a compile.
pub fn print<W: Write>(out: &mut W, c: &CompileOutput<'_>) -> io::Result<()> {
    match c.format {
        Format::Human => write_human(out, c)?,
        Format::Json => write_json(out, &json(c))?,
        Format::JsonLines => {
            let doc = json(c);
            for compiled in &doc.compiled {
                json_lines::write(out, "compiled", compiled)?;
            }
            for failed in &doc.failed {
                json_lines::write(out, "failed", failed)?;
            }
            for error in &doc.errors {
                json_lines::write(out, "error", error)?;
            }
        }
        Format::Github => write_annotations(out, c)?,
    }
    out.flush()
}

/// Caches written (dry run: planned).
fn compiled(c: &CompileOutput<'_>) -> usize {
    c.outcome.planned.len() - if c.dry_run { 0 } else { c.outcome.failed.len() }
}

fn write_human<W: Write>(out: &mut W, c: &CompileOutput<'_>) -> io::Result<()> {
    let outcome = c.outcome;
    let v = c.verbosity;
    if (c.dry_run && v.normal()) || v.verbose() {
        let failed: BTreeSet<&PathBuf> = outcome.failed.iter().map(|(p, _)| p).collect();
        for p in &outcome.planned {
            if !c.dry_run && failed.contains(&p.task.cache) {
                continue;
            }
            writeln!(
                out,
                "{} {} -> {} with {} ({})",
                if c.dry_run {
                    "would compile"
                } else {
                    "compiled"
                },
                escape::path(&p.task.source),
                escape::path(&p.task.cache),
                escape::text(&c.chosen[p.interpreter].display_name()),
                p.why
            )?;
        }
    }
    let err = severity_style(Severity::Error);
    for (path, e) in &outcome.failed {
        writeln!(
            out,
            "{err}failed{err:#} {}: {}",
            escape::path(path),
            escape::text(&e.to_string())
        )?;
    }
    for e in c.scan_errors {
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
    let names: Vec<String> = c
        .chosen
        .iter()
        .map(|i| escape::text(&i.display_name()).into_owned())
        .collect();
    writeln!(
        out,
        "{} {}, {} up to date, {} failed{} ({})",
        if c.dry_run {
            "would compile"
        } else {
            "compiled"
        },
        compiled(c),
        outcome.up_to_date,
        outcome.failed.len(),
        if c.scan_errors.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable", c.scan_errors.len())
        },
        names.join(", ")
    )?;
    if !c.prefix_given {
        for prefix in &c.walk.found_prefixes {
            writeln!(
                out,
                "note: {} holds the caches a pycache prefix gives these sources (a service's PYTHONPYCACHEPREFIX?); with --pycache-prefix {} compile writes them there",
                prefix.display(),
                prefix.display()
            )?;
        }
    }
    crate::output::human::write_skipped(out, c.walk, v)
}

/// The source a failed cache was for, and the line of its syntax error (when that is
/// why it failed).
fn failed_at<'a>(
    c: &'a CompileOutput<'a>,
    cache: &'a Path,
    e: &CompileError,
) -> (&'a Path, Option<u32>) {
    let source = c
        .outcome
        .planned
        .iter()
        .find(|p| p.task.cache == cache)
        .map_or(cache, |p| p.task.source.as_path());
    let line = match e {
        CompileError::Write(WriteError::SyntaxError { line, .. }) => Some(*line),
        _ => None,
    };
    (source, line)
}

/// `--output-format github`: an error annotation per cache that could not be compiled
/// (on its source, at the line of a syntax error), and per entry that could not be read.
fn write_annotations<W: Write>(out: &mut W, c: &CompileOutput<'_>) -> io::Result<()> {
    for (cache, e) in &c.outcome.failed {
        let (source, line) = failed_at(c, cache, e);
        let message = format!("{e} (cache {})", cache.display());
        github::write(
            out,
            &Annotation {
                level: Level::Error,
                file: Some(source),
                line,
                title: Some("pycguard: failed to compile"),
                message: &message,
            },
        )?;
    }
    for e in c.scan_errors {
        github::write(
            out,
            &Annotation::on(Level::Error, &e.path, "pycguard: unreadable", &e.message),
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonCompile<'a> {
    schema: u32,
    dry_run: bool,
    interpreters: Vec<JsonInterpreter<'a>>,
    compiled: Vec<JsonCompiled<'a>>,
    summary: JsonSummary,
    failed: Vec<JsonError<'a>>,
    errors: Vec<JsonError<'a>>,
    found_prefixes: Vec<JsonPath<'a>>,
    skipped: Vec<JsonSkipped<'a>>,
}

#[derive(Serialize)]
struct JsonInterpreter<'a> {
    name: String,
    path: JsonPath<'a>,
    tag: Option<&'a str>,
    why: &'a str,
}

#[derive(Serialize)]
struct JsonCompiled<'a> {
    source: JsonPath<'a>,
    cache: JsonPath<'a>,
    interpreter: String,
    optimization: u8,
    invalidation: &'static str,
    why: &'a str,
}

#[derive(Serialize)]
struct JsonSummary {
    compiled: usize,
    up_to_date: usize,
    failed: usize,
    unreadable: usize,
}

fn json<'a>(c: &'a CompileOutput<'a>) -> JsonCompile<'a> {
    let o = c.outcome;
    let failed: BTreeSet<&PathBuf> = o.failed.iter().map(|(p, _)| p).collect();
    let mut written: Vec<_> = o
        .planned
        .iter()
        .filter(|p| c.dry_run || !failed.contains(&p.task.cache))
        .collect();
    written.sort_by(|a, b| {
        (a.task.source.as_os_str(), a.task.cache.as_os_str())
            .cmp(&(b.task.source.as_os_str(), b.task.cache.as_os_str()))
    });
    JsonCompile {
        schema: SCHEMA,
        dry_run: c.dry_run,
        interpreters: c
            .chosen
            .iter()
            .zip(c.reasons)
            .map(|(i, why)| JsonInterpreter {
                name: i.display_name(),
                path: JsonPath(&i.path),
                tag: i.cache_tag.as_deref(),
                why,
            })
            .collect(),
        compiled: written
            .into_iter()
            .map(|p| JsonCompiled {
                source: JsonPath(&p.task.source),
                cache: JsonPath(&p.task.cache),
                interpreter: c.chosen[p.interpreter].display_name(),
                optimization: p.task.optimize,
                invalidation: mode_name(p.task.mode),
                why: &p.why,
            })
            .collect(),
        summary: JsonSummary {
            compiled: compiled(c),
            up_to_date: o.up_to_date,
            failed: o.failed.len(),
            unreadable: c.scan_errors.len(),
        },
        failed: o.failed.iter().map(|(p, e)| JsonError::new(p, e)).collect(),
        errors: JsonError::scan(c.scan_errors),
        found_prefixes: if c.prefix_given {
            Vec::new()
        } else {
            json_paths(&c.walk.found_prefixes)
        },
        skipped: JsonSkipped::all(c.walk),
    }
}
