//! `pycguard interpreters`'s printer.
//!
//! Human: a table (PATH, VERSION, MAGIC, TAG, FOUND VIA, CACHES; not with `-q`), then
//! how many caches need an interpreter that was not found, then each executable that was
//! refused, with why (the problems: also with `-q`).
//!
//! JSON (`--output-format json`), one document:
//!
//! ```text
//! {"schema": 1,
//!  "interpreters": [{"path": P, "resolved": P, "version": "3.12.1",
//!                    "implementation": "cpython", "magic": 3531,
//!                    "magic_hex": "cb0d0d0a", "tag": "cpython-312" | null,
//!                    "found_via": "--python" | "venv" | "pyenv" | "uv" | "PATH",
//!                    "caches": N}, …],   caches under PATHS it can prove
//!  "missing": [{"interpreter": "Python 3.9", "caches": N}, …],
//!  "rejected": [{"path": P, "found_via": "PATH", "message": M}, …]}
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};

use anstyle::Style;
use serde::Serialize;

use crate::escape;
use crate::interpreters::Interpreters;
use crate::output::Format;
use crate::output::{write_json, JsonPath, SCHEMA};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// How many caches each interpreter can prove.
pub struct Provable {
    /// Per interpreter, in the order of [`Interpreters::all`].
    pub per_interpreter: Vec<usize>,
    /// Caches whose interpreter was not found, by who would prove them (`Python 3.9`).
    pub missing: BTreeMap<String, usize>,
}

/// Print the interpreters.
pub fn print<W: Write>(
    out: &mut W,
    interpreters: &Interpreters,
    provable: &Provable,
    format: Format,
    verbosity: crate::output::verbosity::Verbosity,
) -> io::Result<()> {
    match format {
        Format::Human => write_human(out, interpreters, provable, verbosity.normal())?,
        Format::Json => write_json(out, &json(interpreters, provable))?,
        Format::JsonLines => {
            let doc = json(interpreters, provable);
            for i in &doc.interpreters {
                crate::output::json_lines::write(out, "interpreter", i)?;
            }
            for m in &doc.missing {
                crate::output::json_lines::write(out, "missing", m)?;
            }
            for r in &doc.rejected {
                crate::output::json_lines::write(out, "rejected", r)?;
            }
        }
        Format::Github => {
            use crate::output::github::{self, Annotation, Level};
            for (who, n) in &provable.missing {
                let message = format!(
                    "{n} {} need {who}, which was not found (add --python PATH)",
                    if *n == 1 { "cache" } else { "caches" }
                );
                let a = Annotation {
                    level: Level::Warning,
                    file: None,
                    line: None,
                    title: Some("pycguard: interpreter not found"),
                    message: &message,
                };
                github::write(out, &a)?;
            }
            for r in &interpreters.rejected {
                let a = Annotation::on(
                    Level::Warning,
                    &r.path,
                    "pycguard: interpreter ignored",
                    &r.message,
                );
                github::write(out, &a)?;
            }
        }
    }
    out.flush()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_human<W: Write>(
    out: &mut W,
    interpreters: &Interpreters,
    provable: &Provable,
    table: bool,
) -> io::Result<()> {
    let rows: Vec<[String; 6]> = interpreters
        .all()
        .iter()
        .zip(&provable.per_interpreter)
        .map(|(i, n)| {
            [
                escape::path_string(&i.path),
                escape::text(&i.version).into_owned(),
                format!("{} ({})", i.magic_value(), hex(&i.magic)),
                i.cache_tag.clone().unwrap_or_else(|| "-".into()),
                i.origin.name().to_owned(),
                n.to_string(),
            ]
        })
        .collect();
    let heads = ["PATH", "VERSION", "MAGIC", "TAG", "FOUND VIA", "CACHES"];
    let mut widths = heads.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 6]| {
        let mut s = String::new();
        for (k, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if k == 5 {
                s.push_str(&format!("{cell:>w$}"));
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s
    };
    if table {
        writeln!(out, "{BOLD}{}{BOLD:#}", line(&heads.map(str::to_owned)))?;
        for row in &rows {
            writeln!(out, "{}", line(row))?;
        }
    }
    if rows.is_empty() {
        writeln!(out, "(no Python interpreter found; pass --python PATH)")?;
    }
    for (who, n) in &provable.missing {
        writeln!(
            out,
            "{n} {} need {who}, which was not found (add --python PATH)",
            if *n == 1 { "cache" } else { "caches" }
        )?;
    }
    for r in &interpreters.rejected {
        writeln!(
            out,
            "{DIM}ignored {} ({}): {}{DIM:#}",
            escape::path(&r.path),
            r.origin.name(),
            escape::text(&r.message)
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonInterpreters<'a> {
    schema: u32,
    interpreters: Vec<JsonInterpreter<'a>>,
    missing: Vec<JsonMissing<'a>>,
    rejected: Vec<JsonRejected<'a>>,
}

#[derive(Serialize)]
struct JsonInterpreter<'a> {
    path: JsonPath<'a>,
    resolved: JsonPath<'a>,
    version: &'a str,
    implementation: &'a str,
    magic: u16,
    magic_hex: String,
    tag: Option<&'a str>,
    found_via: &'static str,
    caches: usize,
}

#[derive(Serialize)]
struct JsonMissing<'a> {
    interpreter: &'a str,
    caches: usize,
}

#[derive(Serialize)]
struct JsonRejected<'a> {
    path: JsonPath<'a>,
    found_via: &'static str,
    message: &'a str,
}

fn json<'a>(interpreters: &'a Interpreters, provable: &'a Provable) -> JsonInterpreters<'a> {
    JsonInterpreters {
        schema: SCHEMA,
        interpreters: interpreters
            .all()
            .iter()
            .zip(&provable.per_interpreter)
            .map(|(i, &caches)| JsonInterpreter {
                path: JsonPath(&i.path),
                resolved: JsonPath(&i.resolved),
                version: &i.version,
                implementation: &i.implementation,
                magic: i.magic_value(),
                magic_hex: hex(&i.magic),
                tag: i.cache_tag.as_deref(),
                found_via: i.origin.name(),
                caches,
            })
            .collect(),
        missing: provable
            .missing
            .iter()
            .map(|(who, &caches)| JsonMissing {
                interpreter: who,
                caches,
            })
            .collect(),
        rejected: interpreters
            .rejected
            .iter()
            .map(|r| JsonRejected {
                path: JsonPath(&r.path),
                found_via: r.origin.name(),
                message: &r.message,
            })
            .collect(),
    }
}
