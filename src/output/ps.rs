//! `pycguard ps`'s printer.
//!
//! Human: one block per process whose code may be older than the tree (with `--all`,
//! every process that runs code from PATHS): `PID unit started …`, its command line,
//! then each source or cache changed after it started, and an old release or deleted
//! working directory; then one line saying how many processes were looked at.
//!
//! JSON (`--output-format json`), one document:
//!
//! ```text
//! {"schema": 1,
//!  "start_tolerance_ns": N,          how far a start time may be off (1 s + one tick)
//!  "processes": [{"pid": N, "unit": "app.service" | null,
//!                 "started_ns": N,   start, ns since the epoch (± start_tolerance_ns)
//!                 "exe": P, "exe_deleted": bool, "argv": [S, …],
//!                 "cwd": P | null, "cwd_deleted": bool,
//!                 "script": P | null, "module": S | null, "venv": P | null,
//!                 "roots": [P, …],   the PATH arguments it runs code from
//!                 "stale": bool,     its code may be older than the tree
//!                 "changed": [{"path": P, "role": "source" | "cache",
//!                              "by": "mtime" | "ctime", "mtime_ns": N, "ctime_ns": N}, …],
//!                 "unordered": N,    files changed within the tolerance of its start
//!                 "old_release": {"release": P, "link": P, "points_to": P} | null}, …],
//!  "hidden": N,                      processes whose executable could not be read
//!  "unreadable": [{"pid": N, "message": M}, …],
//!  "errors": [{"path": P, "message": M}, …]}
//! ```
//!
//! Without `--all`, `processes` lists only the stale ones. Paths are as reached from the
//! PATH argument for `changed`, absolute elsewhere; `argv` entries are written like paths
//! (bytes that are not UTF-8 as `\udcXX`).

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::escape;
use crate::output::Format;
use crate::output::{write_json, JsonError, JsonPath, SCHEMA};
use crate::procs::running::{ChangedBy, Running, RunningOutcome};
use crate::procs::{Listing, Runs};
use crate::timefmt;

const BOLD: Style = Style::new().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const DIM: Style = Style::new().dimmed();

/// What `ps` found.
pub struct PsOutput<'a> {
    pub listing: &'a Listing,
    pub outcome: &'a RunningOutcome,
    pub tolerance_ns: i128,
    /// List every matching process, not only the stale ones.
    pub all: bool,
    pub format: Format,
}

/// Print what `ps` found.
pub fn print<W: Write>(out: &mut W, ps: &PsOutput<'_>) -> io::Result<()> {
    match ps.format {
        Format::Human => write_human(out, ps)?,
        Format::Json => write_json(out, &json(ps))?,
        Format::JsonLines => {
            for process in json(ps).processes {
                crate::output::json_lines::write(out, "process", &process)?;
            }
        }
        Format::Github => write_annotations(out, ps)?,
    }
    out.flush()
}

/// `--output-format github`: a warning per process that may run code older than the tree,
/// on the first file that changed after it started.
fn write_annotations<W: Write>(out: &mut W, ps: &PsOutput<'_>) -> io::Result<()> {
    use crate::output::github::{self, Annotation, Level};
    for r in shown(ps).filter(|r| r.is_stale()) {
        let mut block = Vec::new();
        write_process(&mut block, r, ps.tolerance_ns)?;
        let message = String::from_utf8_lossy(&strip_ansi(&block))
            .trim_end()
            .to_owned();
        let title = format!("pycguard ps: PID {} may run old code", r.process.pid);
        let file = r.changed.first().map(|c| c.path.as_path());
        github::write(
            out,
            &Annotation {
                level: Level::Warning,
                file,
                line: None,
                title: Some(&title),
                message: &message,
            },
        )?;
    }
    Ok(())
}

/// The text of a block written with styles, without its escape sequences.
fn strip_ansi(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b && bytes.get(i + 1) == Some(&b'[') {
            i += 2;
            while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                i += 1;
            }
            i += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn shown<'a>(ps: &'a PsOutput<'_>) -> impl Iterator<Item = &'a Running> {
    ps.outcome
        .running
        .iter()
        .filter(move |r| ps.all || r.is_stale())
}

/// One process's block, also used by `doctor`.
pub fn write_process<W: Write>(out: &mut W, r: &Running, tolerance_ns: i128) -> io::Result<()> {
    let p = &r.process;
    write!(out, "{BOLD}PID {}{BOLD:#}", p.pid)?;
    if let Some(unit) = &p.unit {
        write!(out, "  unit {}", escape::text(unit))?;
    }
    writeln!(
        out,
        "  started {} (±{:.2} s)",
        timefmt::nanos(p.started_ns).get(..19).unwrap_or_default(),
        tolerance_ns as f64 / 1e9
    )?;
    let argv: Vec<String> = p
        .argv
        .iter()
        .map(|a| escape::path_string(std::path::Path::new(a)))
        .collect();
    writeln!(out, "  {}", argv.join(" "))?;
    let mut place = Vec::new();
    if let Some(cwd) = &p.cwd {
        place.push(format!(
            "cwd {}{}",
            escape::path(cwd),
            if p.cwd_deleted { " (deleted)" } else { "" }
        ));
    }
    if let Some(venv) = &p.venv {
        place.push(format!("venv {}", escape::path(venv)));
    }
    if let Runs::Module(m) = &p.command.runs {
        place.push(format!("module {}", escape::text(m)));
    }
    if !place.is_empty() {
        writeln!(out, "  {DIM}{}{DIM:#}", place.join(", "))?;
    }
    if !r.changed.is_empty() {
        writeln!(
            out,
            "  {WARN}changed after it started{WARN:#} ({}; the running code may be older):",
            count(r.changed.len(), "file", "files")
        )?;
        for c in &r.changed {
            let when = match c.by {
                ChangedBy::Modified => format!("modified {}", timefmt::nanos(c.mtime_ns)),
                ChangedBy::Replaced => format!(
                    "replaced {} (its mtime {} was kept)",
                    timefmt::nanos(c.ctime_ns),
                    timefmt::nanos(c.mtime_ns)
                ),
            };
            writeln!(
                out,
                "    {} {}  {DIM}{when}{DIM:#}",
                c.role.name(),
                escape::path(&c.path)
            )?;
        }
    }
    if r.unordered > 0 {
        writeln!(
            out,
            "  {DIM}{} changed within {:.2} s of its start: cannot tell whether before or after{DIM:#}",
            count(r.unordered, "file", "files"),
            tolerance_ns as f64 / 1e9
        )?;
    }
    if let Some(old) = &r.old_release {
        writeln!(
            out,
            "  {WARN}old release{WARN:#}: runs in {}, but {} points to {}",
            escape::path(&old.release),
            escape::path(&old.link),
            escape::path(&old.points_to)
        )?;
    } else if p.cwd_deleted {
        writeln!(
            out,
            "  {WARN}its working directory was deleted{WARN:#} (an old release?)"
        )?;
    }
    if p.exe_deleted {
        writeln!(
            out,
            "  {DIM}its interpreter {} was replaced or deleted since it started{DIM:#}",
            escape::path(&p.exe)
        )?;
    }
    Ok(())
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn write_human<W: Write>(out: &mut W, ps: &PsOutput<'_>) -> io::Result<()> {
    let mut listed = 0;
    for r in shown(ps) {
        if listed > 0 {
            writeln!(out)?;
        }
        write_process(out, r, ps.tolerance_ns)?;
        listed += 1;
    }
    let stale = ps.outcome.running.iter().filter(|r| r.is_stale()).count();
    let matching = ps.outcome.running.len();
    if listed > 0 {
        writeln!(out)?;
    }
    writeln!(
        out,
        "{} running code from these paths ({} Python {} in all): {stale} may run code older than the tree",
        count(matching, "process", "processes"),
        ps.listing.processes.len(),
        if ps.listing.processes.len() == 1 { "process" } else { "processes" },
    )?;
    if ps.listing.hidden > 0 {
        writeln!(
            out,
            "{DIM}{} could not be looked at (their executable is hidden: permission denied){DIM:#}",
            count(ps.listing.hidden, "process", "processes")
        )?;
    }
    for u in &ps.listing.unreadable {
        writeln!(
            out,
            "{DIM}PID {}: {}{DIM:#}",
            u.pid,
            escape::text(&u.message)
        )?;
    }
    for e in &ps.outcome.errors {
        writeln!(
            out,
            "{DIM}cannot read {}: {}{DIM:#}",
            escape::path(&e.path),
            escape::text(&e.message)
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonPs<'a> {
    schema: u32,
    start_tolerance_ns: i128,
    processes: Vec<JsonProcess<'a>>,
    hidden: usize,
    unreadable: Vec<JsonUnreadable<'a>>,
    errors: Vec<JsonError<'a>>,
}

/// One process in JSON (also `doctor`'s).
#[derive(Serialize)]
pub struct JsonProcess<'a> {
    pid: u32,
    unit: Option<&'a str>,
    started_ns: i128,
    exe: JsonPath<'a>,
    exe_deleted: bool,
    argv: Vec<JsonPath<'a>>,
    cwd: Option<JsonPath<'a>>,
    cwd_deleted: bool,
    script: Option<JsonPath<'a>>,
    module: Option<&'a str>,
    venv: Option<JsonPath<'a>>,
    roots: Vec<JsonPath<'a>>,
    stale: bool,
    changed: Vec<JsonChanged<'a>>,
    unordered: usize,
    old_release: Option<JsonOldRelease<'a>>,
}

#[derive(Serialize)]
struct JsonChanged<'a> {
    path: JsonPath<'a>,
    role: &'static str,
    by: &'static str,
    mtime_ns: i128,
    ctime_ns: i128,
}

#[derive(Serialize)]
struct JsonOldRelease<'a> {
    release: JsonPath<'a>,
    link: JsonPath<'a>,
    points_to: JsonPath<'a>,
}

#[derive(Serialize)]
struct JsonUnreadable<'a> {
    pid: u32,
    message: &'a str,
}

impl<'a> JsonProcess<'a> {
    pub fn of(r: &'a Running) -> JsonProcess<'a> {
        let p = &r.process;
        JsonProcess {
            pid: p.pid,
            unit: p.unit.as_deref(),
            started_ns: p.started_ns,
            exe: JsonPath(&p.exe),
            exe_deleted: p.exe_deleted,
            argv: p
                .argv
                .iter()
                .map(|a| JsonPath(std::path::Path::new(a)))
                .collect(),
            cwd: p.cwd.as_deref().map(JsonPath),
            cwd_deleted: p.cwd_deleted,
            script: p.script.as_deref().map(JsonPath),
            module: match &p.command.runs {
                Runs::Module(m) => Some(m),
                _ => None,
            },
            venv: p.venv.as_deref().map(JsonPath),
            roots: r.roots.iter().map(|p| JsonPath(p)).collect(),
            stale: r.is_stale(),
            changed: r
                .changed
                .iter()
                .map(|c| JsonChanged {
                    path: JsonPath(&c.path),
                    role: c.role.name(),
                    by: c.by.name(),
                    mtime_ns: c.mtime_ns,
                    ctime_ns: c.ctime_ns,
                })
                .collect(),
            unordered: r.unordered,
            old_release: r.old_release.as_ref().map(|o| JsonOldRelease {
                release: JsonPath(&o.release),
                link: JsonPath(&o.link),
                points_to: JsonPath(&o.points_to),
            }),
        }
    }
}

fn json<'a>(ps: &'a PsOutput<'a>) -> JsonPs<'a> {
    JsonPs {
        schema: SCHEMA,
        start_tolerance_ns: ps.tolerance_ns,
        processes: shown(ps).map(JsonProcess::of).collect(),
        hidden: ps.listing.hidden,
        unreadable: ps
            .listing
            .unreadable
            .iter()
            .map(|u| JsonUnreadable {
                pid: u.pid,
                message: &u.message,
            })
            .collect(),
        errors: JsonError::scan(&ps.outcome.errors),
    }
}
