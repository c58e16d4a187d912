//! Printers, one per command, each in human text (colour on a terminal, names escaped)
//! and JSON (`--output-format json`), and nothing else prints a result.
//!
//! [`human`] and [`json`] are `check`'s report (JSON schema 1); [`check`] puts them
//! together. The other commands have a module each ([`fix`], [`clean`], [`compile`],
//! [`inspect`], [`interpreters`]) whose doc gives its JSON schema. Every JSON document is
//! written whole to stdout (nothing else goes there); paths in it are written as Python
//! writes file names it cannot decode (surrogateescape, see [`json::write_path`]), so
//! `os.fsencode(value)` gives back the exact bytes.
//!
//! Shared by every command (and meant for new ones): [`verbosity`] (`-q`, `-qq`/`--silent`,
//! `-v`: what each level prints, and a stdout that is a sink when silent), [`json_lines`]
//! (`--output-format json-lines`: one typed object per record), [`github`]
//! (`--output-format github`: Actions annotations, escaped as the toolkit does) and
//! [`progress`] (the one progress bar of every long command, cleared on Ctrl-C).

pub mod check;
pub mod clean;
pub mod compile;
pub mod doctor;
pub mod fix;
pub mod github;
pub mod human;
pub mod inspect;
pub mod interpreters;
pub mod json;
pub mod json_lines;
pub mod ps;
pub mod run;
pub mod verbosity;
pub mod watch;
pub mod why;

/// The escaping of names and messages lives at the bottom ([`crate::escape`]); the check
/// printers name it through here.
pub(crate) use crate::escape;

use std::io::{self, Write};
use std::path::Path;

use serde::{Serialize, Serializer};

use crate::report::ScanError;
use crate::walk::WalkSummary;

/// Was this write error a closed pipe (`pycguard check | head`)? Then exit quietly.
pub fn is_broken_pipe(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}

/// The version of every JSON document's layout (`"schema": 1`).
pub const SCHEMA: u32 = 1;

/// Write `value` as an indented JSON document and a newline.
pub fn write_json<W: Write, T: Serialize>(out: &mut W, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// A path in a JSON document, written as `check`'s JSON writes it (surrogateescape).
#[derive(Clone, Copy, Debug)]
pub struct JsonPath<'a>(pub &'a Path);

impl Serialize for JsonPath<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = Vec::new();
        json::write_path(&mut text, self.0).map_err(serde::ser::Error::custom)?;
        let text = String::from_utf8(text).map_err(serde::ser::Error::custom)?;
        serde_json::value::RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

/// `{"path": …, "message": …}`: an entry that could not be read, or an action that failed.
#[derive(Serialize)]
pub struct JsonError<'a> {
    pub path: JsonPath<'a>,
    pub message: String,
}

impl<'a> JsonError<'a> {
    pub fn new(path: &'a Path, message: impl ToString) -> JsonError<'a> {
        JsonError {
            path: JsonPath(path),
            message: message.to_string(),
        }
    }

    /// The entries a scan could not read.
    pub fn scan(errors: &'a [ScanError]) -> Vec<JsonError<'a>> {
        errors
            .iter()
            .map(|e| JsonError::new(&e.path, &e.message))
            .collect()
    }
}

/// `{"path": …, "venv": true}`: a directory the walk did not enter.
#[derive(Serialize)]
pub struct JsonSkipped<'a> {
    pub path: JsonPath<'a>,
    /// A virtual environment (`pyvenv.cfg`), else a `.tox`, `.nox` or `node_modules`.
    pub venv: bool,
}

impl<'a> JsonSkipped<'a> {
    pub fn all(walk: &'a WalkSummary) -> Vec<JsonSkipped<'a>> {
        walk.skipped
            .iter()
            .map(|s| JsonSkipped {
                path: JsonPath(&s.path),
                venv: s.venv,
            })
            .collect()
    }
}

/// Paths as a JSON list.
pub fn json_paths(paths: &[std::path::PathBuf]) -> Vec<JsonPath<'_>> {
    paths.iter().map(|p| JsonPath(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn json_paths_keep_their_bytes() {
        let path = Path::new(OsStr::from_bytes(b"caf\xe9/\"q\".pyc"));
        let text = serde_json::to_string(&JsonPath(path)).unwrap();
        assert_eq!(text, r#""caf\udce9/\"q\".pyc""#);
    }
}

/// `--output-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for a person (colour on a terminal)
    #[default]
    Human,
    /// One JSON document (schemas in the README)
    Json,
    /// One JSON object per line, one per cache or action
    JsonLines,
    /// GitHub Actions annotations, one per problem
    Github,
}

impl Format {
    /// Is this a format for a program, not a person (notes then go to stderr)?
    pub fn is_machine(self) -> bool {
        self != Format::Human
    }
}
