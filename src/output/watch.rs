//! `pycguard watch`'s printer: a stream, one line per event, flushed as it happens (a
//! watch runs for hours; its output is read as it comes, by a person or a program).
//!
//! Human: `HH:MM:SS recompiled PATH (STATE; with Python 3.12.1)`, `HH:MM:SS deleted PATH
//! (STATE; why)`, `HH:MM:SS failed to repair PATH (STATE): why`, `HH:MM:SS unreadable
//! PATH: why`, `HH:MM:SS warning: what` (the watcher's own trouble), and once the watches
//! are in place and the first fix is done, `watching N paths (C caches checked; R
//! repaired, F failed); Ctrl-C stops` (not with `-q`). Caches left alone on purpose
//! (sourceless, unknown) are not repairs and print nothing.
//!
//! JSON (`--output-format json`): one object per line (JSON Lines), each with `"schema": 1`,
//! `"event"` and `"time"` (seconds since the epoch, like `time.time()`):
//!
//! ```text
//! {"schema": 1, "event": "watching", "time": T, "paths": [P, …], "caches": N,
//!  "repaired": N, "deleted": N, "failed": N}
//! {"schema": 1, "event": "repair", "time": T, "path": P, "state": "hidden-stale",
//!  "action": "recompile" | "delete" | "leave",
//!  "interpreter": "Python 3.12.1" | null, "optimization": 0 | null,
//!  "invalidation": "timestamp" | "checked-hash" | "unchecked-hash" | null,
//!  "reason": "why" | null, "failed": false, "error": "why it failed" | null}
//! {"schema": 1, "event": "unreadable", "time": T, "path": P, "message": M}
//! {"schema": 1, "event": "warning", "time": T, "message": M}
//! ```
//!
//! A `repair` object has the keys of an action of `fix`'s JSON; `"action": "leave"` with
//! `"failed": true` is a repair that cannot be made (`reason` says why). `watching`
//! counts the first fix of PATHS (its repairs are `repair` events before it).

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;

use crate::actions::fix::{Action, Done};
use crate::escape;
use crate::interpreters::Interpreters;
use crate::output::fix::mode_name;
use crate::output::human::severity_style;
use crate::output::Format;
use crate::output::{JsonPath, SCHEMA};
use crate::report::ScanError;
use crate::verdict::Severity;

/// What the first fix of the watched PATHS found, for the `watching` line.
#[derive(Clone, Copy, Debug, Default)]
pub struct FirstFix {
    pub caches: usize,
    pub repaired: usize,
    pub deleted: usize,
    pub failed: usize,
}

/// The watch's printer.
pub struct WatchPrinter {
    pub format: Format,
    pub quiet: bool,
}

impl WatchPrinter {
    /// Once: the watches are in place.
    pub fn watching<W: Write>(
        &self,
        out: &mut W,
        paths: &[PathBuf],
        first: &FirstFix,
    ) -> io::Result<()> {
        match self.format {
            Format::Json => line(
                out,
                &JsonWatching {
                    schema: SCHEMA,
                    event: "watching",
                    time: now(),
                    paths: paths.iter().map(|p| JsonPath(p)).collect(),
                    caches: first.caches,
                    repaired: first.repaired,
                    deleted: first.deleted,
                    failed: first.failed,
                },
            ),
            Format::Human | Format::JsonLines | Format::Github if self.quiet => Ok(()),
            // json-lines is resolved to json, github refused, by the settings.
            Format::Human | Format::JsonLines | Format::Github => {
                writeln!(
                    out,
                    "watching {} {} ({} {} checked; {} repaired, {} deleted, {} failed); Ctrl-C stops",
                    paths.len(),
                    if paths.len() == 1 { "path" } else { "paths" },
                    first.caches,
                    if first.caches == 1 { "cache" } else { "caches" },
                    first.repaired,
                    first.deleted,
                    first.failed,
                )?;
                out.flush()
            }
        }
    }

    /// One repair (or failure to repair). Caches left alone on purpose print nothing.
    pub fn repair<W: Write>(
        &self,
        out: &mut W,
        done: &Done,
        interpreters: &Interpreters,
    ) -> io::Result<()> {
        let failed =
            done.error.is_some() || matches!(done.action, Action::Leave { failure: true, .. });
        if !failed && matches!(done.action, Action::Leave { .. }) {
            return Ok(());
        }
        if self.format == Format::Json {
            return line(out, &JsonRepair::of(done, interpreters, failed));
        }
        let err = severity_style(Severity::Error);
        let path = escape::path(&done.path);
        let clock = crate::timefmt::clock_now();
        match (&done.error, &done.action) {
            (Some(e), _) => writeln!(
                out,
                "{clock} {err}failed{err:#} to repair {path} ({}): {}",
                done.state,
                escape::text(&e.to_string())
            )?,
            (None, Action::Leave { why, .. }) => writeln!(
                out,
                "{clock} {err}failed{err:#} to repair {path} ({}): {}",
                done.state,
                escape::text(why)
            )?,
            (None, Action::Recompile { interpreter, .. }) => writeln!(
                out,
                "{clock} recompiled {path} ({}; with {})",
                done.state,
                escape::text(&interpreters.all()[*interpreter].display_name())
            )?,
            (None, Action::Delete { why }) => writeln!(
                out,
                "{clock} deleted {path} ({}; {})",
                done.state,
                escape::text(why)
            )?,
        }
        out.flush()
    }

    /// An entry that could not be read.
    pub fn unreadable<W: Write>(&self, out: &mut W, error: &ScanError) -> io::Result<()> {
        if self.format == Format::Json {
            return line(
                out,
                &JsonMessage {
                    schema: SCHEMA,
                    event: "unreadable",
                    time: now(),
                    path: Some(JsonPath(&error.path)),
                    message: &error.message,
                },
            );
        }
        let err = severity_style(Severity::Error);
        writeln!(
            out,
            "{} {err}unreadable{err:#} {}: {}",
            crate::timefmt::clock_now(),
            escape::path(&error.path),
            escape::text(&error.message)
        )?;
        out.flush()
    }

    /// The watcher's own trouble (lost events, a directory it cannot watch).
    pub fn warning<W: Write>(&self, out: &mut W, message: &str) -> io::Result<()> {
        if self.format == Format::Json {
            return line(
                out,
                &JsonMessage {
                    schema: SCHEMA,
                    event: "warning",
                    time: now(),
                    path: None,
                    message,
                },
            );
        }
        let warn = severity_style(Severity::Warning);
        writeln!(
            out,
            "{} {warn}warning{warn:#}: {}",
            crate::timefmt::clock_now(),
            escape::text(message)
        )?;
        out.flush()
    }
}

/// One JSON object on one line, flushed.
fn line<W: Write, T: Serialize>(out: &mut W, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Seconds since the epoch, as `time.time()` gives them.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Serialize)]
struct JsonWatching<'a> {
    schema: u32,
    event: &'static str,
    time: f64,
    paths: Vec<JsonPath<'a>>,
    caches: usize,
    repaired: usize,
    deleted: usize,
    failed: usize,
}

#[derive(Serialize)]
struct JsonRepair<'a> {
    schema: u32,
    event: &'static str,
    time: f64,
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

impl<'a> JsonRepair<'a> {
    fn of(done: &'a Done, interpreters: &Interpreters, failed: bool) -> JsonRepair<'a> {
        let (action, interpreter, optimization, invalidation, reason) = match &done.action {
            Action::Recompile {
                interpreter,
                optimize,
                mode,
            } => (
                "recompile",
                Some(interpreters.all()[*interpreter].display_name()),
                Some(*optimize),
                Some(mode_name(*mode)),
                None,
            ),
            Action::Delete { why } => ("delete", None, None, None, Some(why.as_str())),
            Action::Leave { why, .. } => ("leave", None, None, None, Some(why.as_str())),
        };
        JsonRepair {
            schema: SCHEMA,
            event: "repair",
            time: now(),
            path: JsonPath(&done.path),
            state: done.state.name(),
            action,
            interpreter,
            optimization,
            invalidation,
            reason,
            failed,
            error: done.error.as_ref().map(ToString::to_string),
        }
    }
}

#[derive(Serialize)]
struct JsonMessage<'a> {
    schema: u32,
    event: &'static str,
    time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<JsonPath<'a>>,
    message: &'a str,
}
