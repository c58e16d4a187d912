//! `pycguard inspect`: everything known about one cache file — magic and series, flags and
//! invalidation mode, header mtime/size/hash, where its source is, the verdict, and from the
//! body the `co_filename` recorded at compile time and the names the module binds. Answers
//! "which code is this, really?" without importing anything.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::check;
use crate::facts::DirSources;
use crate::memo::Memo;
use crate::output::escape;
use crate::output::human::severity_style;
use crate::output::json::{write_path, write_str};
use crate::pyc::header::{self, Header, Invalidation};
use crate::pyc::marshal::{self, CodeSummary};
use crate::pyc::source_hash::stored_hex;
use crate::read;
use crate::report::Entry;
use crate::timefmt;
use crate::walk;

/// What `inspect` learned about one file.
pub struct Inspection {
    pub path: PathBuf,
    pub size: Option<u64>,
    pub header: Result<Header, header::HeaderError>,
    /// The judged entry, when the file is named like a cache and could be read.
    pub entry: Option<Entry>,
    pub not_a_cache_name: bool,
    pub read_error: Option<String>,
    pub source_exists: bool,
    pub code: Option<Result<CodeSummary, marshal::MarshalError>>,
}

/// Inspect one file. I/O errors are kept in the result, never raised.
pub fn inspect(path: &Path, absolute: &Path, prefix: Option<&Path>) -> Inspection {
    let candidate = walk::candidate_for_file(path, absolute, prefix);
    // A FIFO or device is never opened (opening a device can do things); anything else
    // is read without blocking, through a link, and at most MAX_FILE_BYTES of it.
    let bytes = match candidate.as_ref().map(|c| c.found_as) {
        Some(walk::FoundAs::Special(kind)) => Err(read::ReadError::NotRegular {
            kind,
            what: "the file",
        }),
        _ => read::read(path, read::Follow::Yes, "the file", read::MAX_FILE_BYTES),
    };
    let (bytes, read_error, not_a_file) = match bytes {
        Ok(b) => (b, None, false),
        Err(e) => {
            let not_a_file = e.not_regular().is_some() || e.is_dangling();
            (Vec::new(), Some(e.to_string()), not_a_file)
        }
    };
    let header = header::parse(&bytes);
    let not_a_cache_name = candidate.is_none();
    let mut entry = None;
    let mut source_exists = false;
    // What is not a file still gets its verdict: what the importer does with it.
    if let (Some(candidate), true) = (candidate, read_error.is_none() || not_a_file) {
        source_exists = candidate.source.as_deref().is_some_and(Path::is_file);
        match check::judge_candidate(candidate, &DirSources::default(), &Memo::disabled()) {
            Ok(e) => entry = Some(e),
            Err(e) => return failed(path, e.message, header),
        }
    }
    let code = header.as_ref().ok().and_then(|h| {
        let dialect = marshal::Dialect::cpython(h.magic.value)?;
        Some(marshal::summarize(&bytes[h.byte_len()..], dialect))
    });
    Inspection {
        path: path.to_path_buf(),
        size: read_error.is_none().then_some(bytes.len() as u64),
        header,
        entry,
        not_a_cache_name,
        read_error,
        source_exists,
        code,
    }
}

fn failed(path: &Path, message: String, header: Result<Header, header::HeaderError>) -> Inspection {
    Inspection {
        path: path.to_path_buf(),
        size: None,
        header,
        entry: None,
        not_a_cache_name: false,
        read_error: Some(message),
        source_exists: false,
        code: None,
    }
}

impl Inspection {
    /// Does this inspection show an error-severity problem (or an unreadable file)?
    pub fn is_error(&self) -> bool {
        self.read_error.is_some()
            || self
                .entry
                .as_ref()
                .is_some_and(|e| e.verdict.severity == crate::verdict::Severity::Error)
    }
}

const LABEL: anstyle::Style = anstyle::Style::new().bold();

fn row<W: Write>(out: &mut W, label: &str, value: impl std::fmt::Display) -> io::Result<()> {
    writeln!(out, "  {LABEL}{label:<14}{LABEL:#}{value}")
}

pub fn write_human<W: Write>(out: &mut W, i: &Inspection) -> io::Result<()> {
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
        Ok(h) => {
            let m = &h.magic;
            row(
                out,
                "magic",
                format!(
                    "{} ({}) — {}",
                    m.value,
                    m.raw
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    m.series
                ),
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
                    row(
                        out,
                        "source hash",
                        format!(
                            "{} ({})",
                            stored_hex(hash),
                            if check_source {
                                "checked against the source on import"
                            } else {
                                "never checked on import"
                            }
                        ),
                    )?;
                }
            }
        }
        Err(e) => row(out, "header", e)?,
    }
    if i.not_a_cache_name {
        row(out, "name", "not a .pyc/.pyo name: no source or verdict")?;
    }
    if let Some(entry) = &i.entry {
        match &entry.source {
            Some(s) => row(
                out,
                "source",
                format!(
                    "{} ({})",
                    escape::path(s),
                    if i.source_exists { "exists" } else { "missing" }
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
    }
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
        None => {
            if i.header.is_ok() {
                row(
                    out,
                    "body",
                    "not decoded (marshal format of this interpreter is not known to pycguard)",
                )?;
            }
        }
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

fn key<W: Write>(out: &mut W, first: bool, name: &str) -> io::Result<()> {
    write!(out, "{}\"{name}\": ", if first { "{" } else { ", " })
}

fn value<W: Write>(out: &mut W, v: serde_json::Value) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &v).map_err(io::Error::from)
}

/// One JSON object per inspected file.
pub fn write_json<W: Write>(out: &mut W, i: &Inspection) -> io::Result<()> {
    use serde_json::json;
    key(out, true, "path")?;
    write_path(out, &i.path)?;
    key(out, false, "error")?;
    value(out, json!(i.read_error))?;
    key(out, false, "size")?;
    value(out, json!(i.size))?;
    let h = i.header.as_ref().ok();
    key(out, false, "magic")?;
    value(out, json!(h.map(|h| h.magic.value)))?;
    key(out, false, "header_interpreter")?;
    value(out, json!(h.map(|h| h.magic.series.id())))?;
    key(out, false, "header_error")?;
    value(out, json!(i.header.as_ref().err().map(ToString::to_string)))?;
    key(out, false, "flags")?;
    value(out, json!(h.map(|h| h.flags)))?;
    let (mtime, size, hash) = match h.map(|h| h.invalidation) {
        Some(Invalidation::Timestamp { mtime, size }) => (Some(mtime), size, None),
        Some(Invalidation::Hash { hash, .. }) => (None, None, Some(stored_hex(hash))),
        None => (None, None, None),
    };
    key(out, false, "header_mtime")?;
    value(out, json!(mtime))?;
    key(out, false, "header_size")?;
    value(out, json!(size))?;
    key(out, false, "header_hash")?;
    value(out, json!(hash))?;
    key(out, false, "cache")?;
    match &i.entry {
        Some(e) => crate::output::json::write_entry(out, e)?,
        None => out.write_all(b"null")?,
    }
    key(out, false, "source_exists")?;
    value(out, json!(i.source_exists))?;
    key(out, false, "code")?;
    match &i.code {
        Some(Ok(c)) => {
            out.write_all(b"{\"filename\": ")?;
            write_str(out, &c.filename)?;
            write!(out, ", \"name\": ")?;
            write_str(out, &c.name)?;
            write!(out, ", \"code_objects\": {}, \"defines\": ", c.code_objects)?;
            value(out, json!(c.stored_names))?;
            out.write_all(b", \"names\": ")?;
            value(out, json!(c.names))?;
            out.write_all(b"}")?;
        }
        _ => out.write_all(b"null")?,
    }
    key(out, false, "code_error")?;
    value(
        out,
        json!(match &i.code {
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        }),
    )?;
    out.write_all(b"}")
}
