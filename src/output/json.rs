//! The `--format json` contract (schema 1). Fixed; pinned by tests in `tests/`.
//!
//! ```text
//! {"schema": 1,
//!  "summary": {"caches": N, "fresh": N, "stale": N, …},
//!  "caches": [{"path", "source", "state", "severity", "reason", "interpreter", "tag",
//!              "invalidation", "optimization", "checked", "future_source_mtime"}, …],
//!  "errors": [{"path", "message"}, …],
//!  "future_source_mtimes": N}
//! ```
//! `future_source_mtime` is the source's mtime in seconds (like `os.stat().st_mtime`) when
//! it is later than the clock at the check (clock skew, or set by a tool), else `null`;
//! `future_source_mtimes` counts those caches. Both were added within schema 1.
//! `reason` is the verdict's evidence in words (`crate::messages::reason`), the same text
//! the human report prints.
//! Paths are written as Python writes file names it cannot decode: bytes that are not
//! UTF-8 become lone surrogates `\udcXX` (PEP 383 surrogateescape), so
//! `os.fsencode(json.load(f)["caches"][0]["path"])` gives back the exact bytes.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::messages;
use crate::report::{Entry, Report, ScanError};
use crate::verdict::State;

/// Write a string value with JSON escaping.
pub fn write_str<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *out, s).map_err(io::Error::from)
}

/// Write a path as a JSON string, surrogate-escaping bytes that are not UTF-8.
pub fn write_path<W: Write>(out: &mut W, path: &Path) -> io::Result<()> {
    out.write_all(b"\"")?;
    let mut rest = path.as_os_str().as_bytes();
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                write_inner(out, valid)?;
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                write_inner(out, std::str::from_utf8(valid).expect("valid prefix"))?;
                let bad = e.error_len().unwrap_or(after.len());
                for b in &after[..bad] {
                    write!(out, "\\udc{b:02x}")?;
                }
                rest = &after[bad..];
            }
        }
    }
    out.write_all(b"\"")
}

/// A string's escaped JSON form without the quotes.
fn write_inner<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    let quoted = serde_json::to_string(s).map_err(io::Error::from)?;
    out.write_all(&quoted.as_bytes()[1..quoted.len() - 1])
}

fn write_opt_str<W: Write>(out: &mut W, s: Option<&str>) -> io::Result<()> {
    match s {
        Some(s) => write_str(out, s),
        None => out.write_all(b"null"),
    }
}

/// One cache object, on one line.
pub fn write_entry<W: Write>(out: &mut W, entry: &Entry) -> io::Result<()> {
    let v = &entry.verdict;
    out.write_all(b"{\"path\": ")?;
    write_path(out, &entry.path)?;
    out.write_all(b", \"source\": ")?;
    match &entry.source {
        Some(s) => write_path(out, s)?,
        None => out.write_all(b"null")?,
    }
    write!(
        out,
        ", \"state\": \"{}\", \"severity\": \"{}\", \"reason\": ",
        v.state.name(),
        v.severity.name()
    )?;
    write_opt_str(out, messages::reason(v).as_deref())?;
    out.write_all(b", \"interpreter\": ")?;
    write_opt_str(out, v.interpreter.map(|s| s.id()).as_deref())?;
    out.write_all(b", \"tag\": ")?;
    write_opt_str(out, v.tag.as_deref())?;
    out.write_all(b", \"invalidation\": ")?;
    write_opt_str(out, v.invalidation.map(|m| m.name()))?;
    out.write_all(b", \"optimization\": ")?;
    match v.optimization {
        Some(o) => write!(out, "{o}")?,
        None => out.write_all(b"null")?,
    }
    write!(out, ", \"checked\": \"{}\"", v.checked.name())?;
    out.write_all(b", \"future_source_mtime\": ")?;
    match v.future_source_mtime {
        Some(ns) => write_seconds(out, ns)?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b"}")
}

/// Nanoseconds since the epoch as a JSON number of seconds with nine decimals.
fn write_seconds<W: Write>(out: &mut W, ns: i128) -> io::Result<()> {
    let sign = if ns < 0 { "-" } else { "" };
    let abs = ns.unsigned_abs();
    write!(
        out,
        "{sign}{}.{:09}",
        abs / 1_000_000_000,
        abs % 1_000_000_000
    )
}

fn write_error<W: Write>(out: &mut W, error: &ScanError) -> io::Result<()> {
    out.write_all(b"{\"path\": ")?;
    write_path(out, &error.path)?;
    out.write_all(b", \"message\": ")?;
    write_str(out, &error.message)?;
    out.write_all(b"}")
}

/// The whole report.
pub fn write_report<W: Write>(out: &mut W, report: &Report) -> io::Result<()> {
    let s = &report.summary;
    write!(
        out,
        "{{\"schema\": 1,\n \"summary\": {{\"caches\": {}",
        s.total()
    )?;
    for state in State::ALL {
        write!(out, ", \"{}\": {}", state.name(), s.count(state))?;
    }
    out.write_all(b"},\n \"caches\": [")?;
    for (i, entry) in report.entries.iter().enumerate() {
        out.write_all(if i == 0 { b"\n  " } else { b",\n  " })?;
        write_entry(out, entry)?;
    }
    out.write_all(b"],\n \"errors\": [")?;
    for (i, error) in report.errors.iter().enumerate() {
        out.write_all(if i == 0 { b"\n  " } else { b",\n  " })?;
        write_error(out, error)?;
    }
    write!(
        out,
        "],\n \"future_source_mtimes\": {}}}\n",
        s.future_source_mtimes
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn path_json(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_path(&mut out, Path::new(OsStr::from_bytes(bytes))).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn seconds_are_json_numbers() {
        let text = |ns| {
            let mut out = Vec::new();
            write_seconds(&mut out, ns).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(34_359_738_368_000_000_001), "34359738368.000000001");
        assert_eq!(text(-1_500_000_000), "-1.500000000");
        let parsed: f64 = serde_json::from_str(&text(1_700_000_000_500_000_000)).unwrap();
        assert_eq!(parsed, 1_700_000_000.5);
    }

    #[test]
    fn paths_use_surrogateescape() {
        assert_eq!(path_json(b"a/b.pyc"), r#""a/b.pyc""#);
        assert_eq!(path_json(b"caf\xe9.pyc"), r#""caf\udce9.pyc""#);
        assert_eq!(path_json(b"\xff\xfe"), r#""\udcff\udcfe""#);
        assert_eq!(path_json("é\"\n".as_bytes()), "\"é\\\"\\n\"");
    }
}
