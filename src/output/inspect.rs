//! `pycguard inspect`'s printer.
//!
//! Human: per file, a block of labelled rows (file size, magic and interpreter, header,
//! flags, source mtime/size or hash, source, verdict and reason, `co_filename`, code
//! objects, names defined and used), blocks separated by a blank line. With `-q` only the
//! files with a problem (unreadable, or not a fresh cache); nothing with `-qq`.
//!
//! JSON (`--output-format json`): a list with one object per file, in the order given:
//!
//! ```text
//! [{"path": P,
//!   "error": "why the file could not be read" | null,
//!   "size": N | null,                    bytes (null when unreadable)
//!   "magic": 3531 | null,                the header's magic number
//!   "header_interpreter": "cpython-3.12" | null,
//!   "header_error": "…" | null,          why the header is not usable
//!   "flags": 0 | null,
//!   "header_mtime": N | null, "header_size": N | null,   (timestamp caches)
//!   "header_hash": "1fa71a9763b4d0c6" | null,            (hash-based caches)
//!   "cache": {…} | null,                 the cache as `check`'s JSON lists it (schema 1)
//!   "source_exists": true,
//!   "code": {"filename": "co_filename", "name": "<module>", "code_objects": N,
//!            "defines": ["names", …], "names": ["names", …]} | null,
//!   "code_error": "why the body does not unmarshal" | null}, …]
//! ```

use std::io::{self, Write};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::escape;
use crate::inspect::Inspection;
use crate::output::human::severity_style;
use crate::output::{write_json, JsonPath};
use crate::pyc::header::{Header, Invalidation};
use crate::pyc::source_hash::stored_hex;
use crate::report::Entry;
use crate::timefmt;

/// Print every inspection, in order.
pub fn print<W: Write>(
    out: &mut W,
    inspections: &[Inspection],
    format: crate::output::Format,
    verbosity: crate::output::verbosity::Verbosity,
) -> io::Result<()> {
    match format {
        crate::output::Format::Human => {
            let shown = inspections
                .iter()
                .filter(|i| verbosity.normal() || has_problem(i));
            for (n, inspection) in shown.enumerate() {
                if n > 0 {
                    writeln!(out)?;
                }
                write_human(out, inspection)?;
            }
        }
        crate::output::Format::Json => {
            let list = inspections
                .iter()
                .map(json)
                .collect::<io::Result<Vec<_>>>()?;
            write_json(out, &list)?;
        }
        crate::output::Format::JsonLines => {
            for inspection in inspections {
                let object = json(inspection)?;
                crate::output::json_lines::write(out, "file", &object)?;
            }
        }
        crate::output::Format::Github => {
            use crate::output::github::{self, Annotation, Level};
            for i in inspections.iter().filter(|i| has_problem(i)) {
                let (level, message) = match (&i.read_error, &i.entry) {
                    (Some(err), _) => (Level::Error, err.clone()),
                    (None, Some(e)) => (
                        Level::of(e.verdict.severity).unwrap_or(Level::Notice),
                        crate::messages::reason(&e.verdict).unwrap_or_else(|| {
                            format!("{}: {}", e.verdict.state.name(), e.verdict.state.meaning())
                        }),
                    ),
                    (None, None) => (Level::Notice, "not named like a bytecode cache".to_owned()),
                };
                github::write(
                    out,
                    &Annotation::on(level, &i.path, "pycguard inspect", &message),
                )?;
            }
        }
    }
    out.flush()
}

/// Is this file a problem (what `-q` shows): unreadable, or not a fresh cache?
fn has_problem(i: &Inspection) -> bool {
    i.read_error.is_some()
        || i.entry
            .as_ref()
            .map_or(true, |e| e.verdict.severity != crate::verdict::Severity::Ok)
}

const LABEL: anstyle::Style = anstyle::Style::new().bold();

fn row<W: Write>(out: &mut W, label: &str, value: impl std::fmt::Display) -> io::Result<()> {
    writeln!(out, "  {LABEL}{label:<14}{LABEL:#}{value}")
}

fn write_human<W: Write>(out: &mut W, i: &Inspection) -> io::Result<()> {
    writeln!(out, "{LABEL}{}{LABEL:#}", escape::path(&i.path))?;
    if let Some(err) = &i.read_error {
        row(out, "error", escape::text(err))?;
        if let Some(entry) = &i.entry {
            let v = &entry.verdict;
            let style = severity_style(v.severity);
            row(
                out,
                "verdict",
                format!("{style}{}{style:#} ({})", v.state, v.severity.name()),
            )?;
            if let Some(reason) = crate::messages::reason(v) {
                row(out, "reason", escape::text(&reason))?;
            }
        }
        return Ok(());
    }
    if let Some(size) = i.size {
        row(out, "file size", format!("{size} bytes"))?;
    }
    match &i.header {
        Ok(h) => write_header(out, h)?,
        Err(e) => row(out, "header", e)?,
    }
    if i.not_a_cache_name {
        row(out, "name", "not a .pyc/.pyo name: no source or verdict")?;
    }
    if let Some(entry) = &i.entry {
        write_verdict(out, entry, i.source_exists)?;
    }
    write_code(out, i)
}

/// Magic, header size, flags, and what the header records of the source.
fn write_header<W: Write>(out: &mut W, h: &Header) -> io::Result<()> {
    let m = &h.magic;
    let raw: Vec<String> = m.raw.iter().map(|b| format!("{b:02x}")).collect();
    row(
        out,
        "magic",
        format!("{} ({}) — {}", m.value, raw.join(" "), m.series),
    )?;
    row(out, "header", format!("{} bytes", h.byte_len()))?;
    if h.byte_len() == 16 {
        row(
            out,
            "flags",
            format!("{:#x} — {}", h.flags, h.invalidation.mode_name()),
        )?;
    }
    match h.invalidation {
        Invalidation::Timestamp { mtime, size } => {
            row(
                out,
                "source mtime",
                format!("{} ({mtime})", timefmt::seconds(i64::from(mtime))),
            )?;
            if let Some(size) = size {
                row(out, "source size", format!("{size} bytes"))?;
            }
        }
        Invalidation::Hash { hash, check_source } => {
            let checked = if check_source {
                "checked against the source on import"
            } else {
                "never checked on import"
            };
            row(
                out,
                "source hash",
                format!("{} ({checked})", stored_hex(hash)),
            )?;
        }
    }
    Ok(())
}

/// The source and the verdict.
fn write_verdict<W: Write>(out: &mut W, entry: &Entry, source_exists: bool) -> io::Result<()> {
    match &entry.source {
        Some(s) => row(
            out,
            "source",
            format!(
                "{} ({})",
                escape::path(s),
                if source_exists { "exists" } else { "missing" }
            ),
        )?,
        None => row(out, "source", "none")?,
    }
    let v = &entry.verdict;
    let style = severity_style(v.severity);
    row(
        out,
        "verdict",
        format!(
            "{style}{}{style:#} ({}, checked by {})",
            v.state,
            v.severity.name(),
            v.checked.name()
        ),
    )?;
    if let Some(reason) = crate::messages::reason(v) {
        row(out, "reason", escape::text(&reason))?;
    }
    Ok(())
}

/// What the body holds: the code's file name and names, or why it was not read.
fn write_code<W: Write>(out: &mut W, i: &Inspection) -> io::Result<()> {
    match &i.code {
        Some(Ok(code)) => {
            row(out, "co_filename", escape::text(&code.filename))?;
            row(out, "code objects", code.code_objects)?;
            row(out, "defines", list(&code.stored_names))?;
            row(out, "uses names", list(&code.names))?;
        }
        Some(Err(e)) => row(
            out,
            "body",
            format!("damaged: {}", escape::text(&e.to_string())),
        )?,
        None if i.header.is_ok() => row(
            out,
            "body",
            "not decoded (marshal format of this interpreter is not known to pycguard)",
        )?,
        None => {}
    }
    Ok(())
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        escape::text(&names.join(", ")).into_owned()
    }
}

#[derive(Serialize)]
struct JsonInspection<'a> {
    path: JsonPath<'a>,
    error: Option<&'a str>,
    size: Option<u64>,
    magic: Option<u16>,
    header_interpreter: Option<String>,
    header_error: Option<String>,
    flags: Option<u32>,
    header_mtime: Option<u32>,
    header_size: Option<u32>,
    header_hash: Option<String>,
    /// The entry exactly as `check --format json` writes it.
    cache: Option<Box<RawValue>>,
    source_exists: bool,
    code: Option<JsonCode<'a>>,
    code_error: Option<String>,
}

#[derive(Serialize)]
struct JsonCode<'a> {
    filename: &'a str,
    name: &'a str,
    code_objects: usize,
    defines: &'a [String],
    names: &'a [String],
}

fn json(i: &Inspection) -> io::Result<JsonInspection<'_>> {
    let h = i.header.as_ref().ok();
    let (mtime, size, hash) = match h.map(|h| h.invalidation) {
        Some(Invalidation::Timestamp { mtime, size }) => (Some(mtime), size, None),
        Some(Invalidation::Hash { hash, .. }) => (None, None, Some(stored_hex(hash))),
        None => (None, None, None),
    };
    let cache = match &i.entry {
        Some(e) => {
            let mut text = Vec::new();
            crate::output::json::write_entry(&mut text, e)?;
            let text = String::from_utf8(text).map_err(io::Error::other)?;
            Some(RawValue::from_string(text).map_err(io::Error::from)?)
        }
        None => None,
    };
    Ok(JsonInspection {
        path: JsonPath(&i.path),
        error: i.read_error.as_deref(),
        size: i.size,
        magic: h.map(|h| h.magic.value),
        header_interpreter: h.map(|h| h.magic.series.id()),
        header_error: i.header.as_ref().err().map(ToString::to_string),
        flags: h.map(|h| h.flags),
        header_mtime: mtime,
        header_size: size,
        header_hash: hash,
        cache,
        source_exists: i.source_exists,
        code: match &i.code {
            Some(Ok(c)) => Some(JsonCode {
                filename: &c.filename,
                name: &c.name,
                code_objects: c.code_objects,
                defines: &c.stored_names,
                names: &c.names,
            }),
            _ => None,
        },
        code_error: match &i.code {
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        },
    })
}
