//! `--output-format github`: GitHub Actions workflow commands, one annotation per problem
//! (`::error file=app/a.py,line=3,title=pycguard%3A hidden-stale::message`), so a CI
//! step's problems show up on the run's summary page and beside the file.
//!
//! What is annotated is what `-q` prints (see [`super::verbosity`]): the problems, never
//! what went well. Severity error → `::error`, warning → `::warning`, info → `::notice`.
//! `line` is given when it is known (a source's syntax error), else the annotation is on
//! the whole file.
//!
//! Values are escaped as the Actions toolkit (`@actions/core`, `toCommandValue`/
//! `escapeData`/`escapeProperty`) does: in the message `%` → `%25`, CR → `%0D`, LF →
//! `%0A`; in a property value also `:` → `%3A` and `,` → `%2C`. File names that are not
//! UTF-8 are written lossily (an annotation is for a person to read; the JSON formats
//! keep the exact bytes).
//!
//! Shared by every command (a new one builds [`Annotation`]s and calls [`write`]).

use std::io::{self, Write};
use std::path::Path;

use crate::verdict::Severity;

/// The kind of annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }

    /// The annotation of a verdict's severity; `None` for a fresh cache.
    pub fn of(severity: Severity) -> Option<Level> {
        match severity {
            Severity::Error => Some(Level::Error),
            Severity::Warning => Some(Level::Warning),
            Severity::Info => Some(Level::Notice),
            Severity::Ok => None,
        }
    }
}

/// One annotation.
#[derive(Clone, Copy, Debug)]
pub struct Annotation<'a> {
    pub level: Level,
    pub file: Option<&'a Path>,
    pub line: Option<u32>,
    pub title: Option<&'a str>,
    pub message: &'a str,
}

impl<'a> Annotation<'a> {
    /// An annotation on `file` (no line).
    pub fn on(level: Level, file: &'a Path, title: &'a str, message: &'a str) -> Annotation<'a> {
        Annotation {
            level,
            file: Some(file),
            line: None,
            title: Some(title),
            message,
        }
    }
}

/// Write one annotation and a newline.
pub fn write<W: Write>(out: &mut W, a: &Annotation<'_>) -> io::Result<()> {
    let mut properties = Vec::new();
    if let Some(file) = a.file {
        let name = file.to_string_lossy();
        let name = name.strip_prefix("./").unwrap_or(&name);
        properties.push(format!("file={}", escape_property(name)));
    }
    if let Some(line) = a.line {
        properties.push(format!("line={line}"));
    }
    if let Some(title) = a.title {
        properties.push(format!("title={}", escape_property(title)));
    }
    let properties = if properties.is_empty() {
        String::new()
    } else {
        format!(" {}", properties.join(","))
    };
    writeln!(
        out,
        "::{}{properties}::{}",
        a.level.command(),
        escape_data(a.message)
    )
}

/// A message, escaped as `@actions/core`'s `escapeData`.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value, escaped as `@actions/core`'s `escapeProperty`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_the_actions_toolkit() {
        assert_eq!(escape_data("100% a\r\nb: c, d"), "100%25 a%0D%0Ab: c, d");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn writes_one_workflow_command() {
        let mut out = Vec::new();
        write(
            &mut out,
            &Annotation {
                level: Level::Error,
                file: Some(Path::new("./app/a,b.py")),
                line: Some(3),
                title: Some("pycguard: failed"),
                message: "SyntaxError: bad\nsecond line",
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "::error file=app/a%2Cb.py,line=3,title=pycguard%3A failed::SyntaxError: bad%0Asecond line\n"
        );
        let mut out = Vec::new();
        write(
            &mut out,
            &Annotation {
                level: Level::Warning,
                file: None,
                line: None,
                title: None,
                message: "m",
            },
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "::warning::m\n");
    }
}
