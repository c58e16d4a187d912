//! A small reader of Python literals: the `MAPPING` and `NAMESPACES` dictionaries that
//! setuptools writes into an editable install's `__editable___*_finder.py`, read without
//! executing the file (nothing of the user's ever runs).
//!
//! Only what `repr()` of a `dict[str, str]` or `dict[str, list[str]]` produces is
//! understood: dicts, lists, tuples and strings (single or double quotes, the escapes
//! `repr` writes, `\udcXX` surrogates standing for undecodable file-name bytes as
//! surrogateescape decoding makes them). Anything else is an error, never a guess. Pure.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// A literal value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Literal {
    /// A string, as the file-name bytes it stands for (surrogateescape undone).
    Str(Vec<u8>),
    List(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
}

/// Why a literal could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LiteralError {
    #[error("no assignment to {0} found")]
    Missing(String),
    #[error("unexpected {found:?} at offset {offset}")]
    Unexpected { found: String, offset: usize },
    #[error("the literal ends early")]
    Truncated,
    #[error("not a dict of strings")]
    Shape,
}

/// The value assigned to `name` at the start of a line (`NAME = …` or `NAME: T = …`).
pub fn assignment(text: &str, name: &str) -> Result<Literal, LiteralError> {
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let rest = rest.trim_start();
        let value = if let Some(annotated) = rest.strip_prefix(':') {
            match annotated.split_once('=') {
                Some((_, value)) => value,
                None => continue,
            }
        } else if let Some(value) = rest.strip_prefix('=') {
            if value.starts_with('=') {
                continue;
            }
            value
        } else {
            continue;
        };
        return parse(value);
    }
    Err(LiteralError::Missing(name.to_owned()))
}

/// Parse one literal (trailing whitespace and a comment allowed; strings may be joined
/// with `+`).
pub fn parse(text: &str) -> Result<Literal, LiteralError> {
    let mut p = Parser {
        chars: text.char_indices().collect(),
        at: 0,
    };
    let mut value = p.value()?;
    p.skip_space();
    // `'a' + "b"`: string concatenation (setuptools' PATH_PLACEHOLDER).
    while p.peek() == Some('+') {
        p.at += 1;
        let next = p.value()?;
        match (&mut value, next) {
            (Literal::Str(a), Literal::Str(b)) => a.extend_from_slice(&b),
            _ => return Err(LiteralError::Shape),
        }
        p.skip_space();
    }
    match p.peek() {
        None | Some('#') => Ok(value),
        Some(c) => Err(p.unexpected(c)),
    }
}

/// A `dict[str, str]` as (key, path) pairs.
pub fn string_map(value: &Literal) -> Result<Vec<(String, OsString)>, LiteralError> {
    let Literal::Dict(pairs) = value else {
        return Err(LiteralError::Shape);
    };
    pairs
        .iter()
        .map(|(k, v)| match (k, v) {
            (Literal::Str(k), Literal::Str(v)) => Ok((key(k)?, OsString::from_vec(v.clone()))),
            _ => Err(LiteralError::Shape),
        })
        .collect()
}

/// A `dict[str, list[str]]` as (key, paths) pairs.
pub fn list_map(value: &Literal) -> Result<Vec<(String, Vec<OsString>)>, LiteralError> {
    let Literal::Dict(pairs) = value else {
        return Err(LiteralError::Shape);
    };
    pairs
        .iter()
        .map(|(k, v)| {
            let (Literal::Str(k), Literal::List(items)) = (k, v) else {
                return Err(LiteralError::Shape);
            };
            let paths = items
                .iter()
                .map(|i| match i {
                    Literal::Str(s) => Ok(OsString::from_vec(s.clone())),
                    _ => Err(LiteralError::Shape),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((key(k)?, paths))
        })
        .collect()
}

fn key(bytes: &[u8]) -> Result<String, LiteralError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| LiteralError::Shape)
}

struct Parser {
    chars: Vec<(usize, char)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).map(|&(_, c)| c)
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn unexpected(&self, c: char) -> LiteralError {
        LiteralError::Unexpected {
            found: c.to_string(),
            offset: self.chars.get(self.at).map_or(0, |&(i, _)| i),
        }
    }

    fn value(&mut self) -> Result<Literal, LiteralError> {
        self.skip_space();
        match self.peek().ok_or(LiteralError::Truncated)? {
            '{' => {
                self.at += 1;
                let mut pairs = Vec::new();
                loop {
                    self.skip_space();
                    if self.peek() == Some('}') {
                        self.at += 1;
                        return Ok(Literal::Dict(pairs));
                    }
                    let k = self.value()?;
                    self.skip_space();
                    match self.next() {
                        Some(':') => {}
                        Some(c) => {
                            self.at -= 1;
                            return Err(self.unexpected(c));
                        }
                        None => return Err(LiteralError::Truncated),
                    }
                    let v = self.value()?;
                    pairs.push((k, v));
                    if !self.separator('}')? {
                        self.at += 1;
                        return Ok(Literal::Dict(pairs));
                    }
                }
            }
            open @ ('[' | '(') => {
                self.at += 1;
                let close = if open == '[' { ']' } else { ')' };
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    if self.peek() == Some(close) {
                        self.at += 1;
                        return Ok(Literal::List(items));
                    }
                    items.push(self.value()?);
                    if !self.separator(close)? {
                        self.at += 1;
                        return Ok(Literal::List(items));
                    }
                }
            }
            quote @ ('\'' | '"') => {
                self.at += 1;
                self.string(quote)
            }
            c => Err(self.unexpected(c)),
        }
    }

    /// After an item: `,` (true: more may follow) or the closing bracket (false; not
    /// consumed).
    fn separator(&mut self, close: char) -> Result<bool, LiteralError> {
        self.skip_space();
        match self.peek() {
            Some(',') => {
                self.at += 1;
                Ok(true)
            }
            Some(c) if c == close => Ok(false),
            Some(c) => Err(self.unexpected(c)),
            None => Err(LiteralError::Truncated),
        }
    }

    fn hex(&mut self, digits: usize) -> Result<u32, LiteralError> {
        let mut value = 0u32;
        for _ in 0..digits {
            let c = self.next().ok_or(LiteralError::Truncated)?;
            let d = c.to_digit(16).ok_or(LiteralError::Unexpected {
                found: c.to_string(),
                offset: self.at,
            })?;
            value = value * 16 + d;
        }
        Ok(value)
    }

    fn string(&mut self, quote: char) -> Result<Literal, LiteralError> {
        let mut out = Vec::new();
        loop {
            let c = self.next().ok_or(LiteralError::Truncated)?;
            match c {
                c if c == quote => return Ok(Literal::Str(out)),
                '\\' => {
                    let e = self.next().ok_or(LiteralError::Truncated)?;
                    let code = match e {
                        '\\' | '\'' | '"' => e as u32,
                        'n' => 0x0a,
                        'r' => 0x0d,
                        't' => 0x09,
                        'x' => self.hex(2)?,
                        'u' => self.hex(4)?,
                        'U' => self.hex(8)?,
                        other => {
                            self.at -= 1;
                            return Err(self.unexpected(other));
                        }
                    };
                    push_code(&mut out, code)?;
                }
                c => push_code(&mut out, c as u32)?,
            }
        }
    }
}

/// Append a code point as UTF-8, or a lone surrogate U+DC80..U+DCFF as the byte it
/// escapes (surrogateescape).
fn push_code(out: &mut Vec<u8>, code: u32) -> Result<(), LiteralError> {
    if (0xdc80..=0xdcff).contains(&code) {
        out.push((code - 0xdc00) as u8);
        return Ok(());
    }
    let c = char::from_u32(code).ok_or(LiteralError::Shape)?;
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_setuptools_writes() {
        let text = "from __future__ import annotations\nimport sys\n\nMAPPING: dict[str, str] = {'app': '/srv/proj/app', \"it's\": '/srv/it\\'s/x', 'caf': '/srv/caf\\udce9'}\nNAMESPACES: dict[str, list[str]] = {'ns': ['/a/ns', '/b/ns'], 'empty': []}\nPATH_PLACEHOLDER = '__editable__.app-0.1.finder' + \".__path_hook__\"\n";
        let mapping = string_map(&assignment(text, "MAPPING").unwrap()).unwrap();
        assert_eq!(
            mapping,
            vec![
                ("app".to_owned(), OsString::from("/srv/proj/app")),
                ("it's".to_owned(), OsString::from("/srv/it's/x")),
                (
                    "caf".to_owned(),
                    OsString::from_vec(b"/srv/caf\xe9".to_vec())
                ),
            ]
        );
        let ns = list_map(&assignment(text, "NAMESPACES").unwrap()).unwrap();
        assert_eq!(
            ns[0].1,
            vec![OsString::from("/a/ns"), OsString::from("/b/ns")]
        );
        assert!(ns[1].1.is_empty());
        // Older setuptools wrote no annotation.
        assert_eq!(
            string_map(&assignment("MAPPING = {'a': '/x'}\n", "MAPPING").unwrap()).unwrap(),
            vec![("a".to_owned(), OsString::from("/x"))]
        );
    }

    #[test]
    fn refuses_what_is_not_a_plain_literal() {
        assert!(matches!(
            assignment("MAPPING = dict(a=1)\n", "MAPPING"),
            Err(LiteralError::Unexpected { .. })
        ));
        assert_eq!(
            assignment("X = {}\n", "MAPPING"),
            Err(LiteralError::Missing("MAPPING".into()))
        );
        assert_eq!(parse("{'a': '/x'"), Err(LiteralError::Truncated));
        assert!(parse("{'a': '/x'} + evil()").is_err());
        assert_eq!(
            parse("'__editable__.a-1.finder' + \".__path_hook__\"").unwrap(),
            Literal::Str(b"__editable__.a-1.finder.__path_hook__".to_vec())
        );
        assert_eq!(parse("{} + {}"), Err(LiteralError::Shape));
        assert_eq!(
            string_map(&parse("{'a': ['/x']}").unwrap()),
            Err(LiteralError::Shape)
        );
        assert_eq!(
            parse("{'a': '/x',}").unwrap(),
            parse("{'a': '/x'}").unwrap()
        );
        // `MAPPING == …` is a comparison, not an assignment.
        assert!(assignment("MAPPING == {}\n", "MAPPING").is_err());
    }
}
