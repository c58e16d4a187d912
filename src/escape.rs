//! Making file names and messages safe to print on a terminal: every human-readable line
//! pycguard writes (stdout and stderr, every command) passes the names and texts it shows
//! through here, so a file named `\x1b[2J` or `a\rb` cannot clear the screen, move the
//! cursor, set the window title or hide a line.
//!
//! Escaped: C0 controls (`\t`, `\n`, `\r` by name, the others as `\xNN`), DEL (`\x7f`),
//! C1 controls (`\u{9b}`), and the Unicode bidirectional overrides and isolates that can
//! reorder what a line appears to say (`\u{202e}`). In paths, bytes that are not UTF-8
//! are shown as `\xNN` (readable, and distinct from the U+FFFD a lossy conversion would
//! give) and a backslash is doubled, so every distinct name prints distinctly. Printable
//! text, including non-ASCII, is left as it is. JSON needs none of this: serde escapes
//! controls, and paths there use surrogateescape (see [`crate::output::json`]).

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Does this character need escaping on a terminal?
fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_char(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\t' => out.write_str("\\t"),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    }
}

/// Write `s` with control characters escaped; `backslash`: double backslashes too.
fn write_str(out: &mut impl fmt::Write, s: &str, backslash: bool) -> fmt::Result {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let special = needs_escape(c) || (backslash && c == '\\');
        if !special {
            continue;
        }
        out.write_str(&s[start..i])?;
        if c == '\\' {
            out.write_str("\\\\")?;
        } else {
            escape_char(out, c)?;
        }
        start = i + c.len_utf8();
    }
    out.write_str(&s[start..])
}

/// A message or reason with its control characters escaped (borrowed when there are none).
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let _ = write_str(&mut out, s, false);
    Cow::Owned(out)
}

/// Raw name bytes as a terminal-safe [`fmt::Display`].
#[derive(Clone, Copy)]
pub struct Bytes<'a>(pub &'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(valid) => return write_str(f, valid, true),
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // SAFETY-free: `valid_up_to` bytes are valid UTF-8 by definition.
                    write_str(f, std::str::from_utf8(valid).unwrap_or_default(), true)?;
                    let bad = e.error_len().unwrap_or(after.len());
                    for b in &after[..bad] {
                        write!(f, "\\x{b:02x}")?;
                    }
                    rest = &after[bad..];
                }
            }
        }
        Ok(())
    }
}

/// A path as a terminal-safe [`fmt::Display`] (use instead of `Path::display`).
pub fn path(p: &Path) -> Bytes<'_> {
    Bytes(p.as_os_str().as_bytes())
}

/// A path, escaped, as an owned string.
pub fn path_string(p: &Path) -> String {
    let mut s = String::new();
    let _ = write!(s, "{}", path(p));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn p(bytes: &[u8]) -> String {
        path(Path::new(OsStr::from_bytes(bytes))).to_string()
    }

    #[test]
    fn controls_are_escaped_and_printable_text_kept() {
        assert_eq!(
            p(b"pkg/__pycache__/a.cpython-312.pyc"),
            "pkg/__pycache__/a.cpython-312.pyc"
        );
        assert_eq!(
            p(b"\x1b[2J\x1b]0;owned\x07.pyc"),
            "\\x1b[2J\\x1b]0;owned\\x07.pyc"
        );
        assert_eq!(p(b"a\rb\nc\td\x7f"), "a\\rb\\nc\\td\\x7f");
        assert_eq!(p("caf\u{e9}\u{9b}2J".as_bytes()), "caf\u{e9}\\u{9b}2J");
        assert_eq!(p("x\u{202e}cyp.py".as_bytes()), "x\\u{202e}cyp.py");
        assert_eq!(p(b"caf\xe9\xff.pyc"), "caf\\xe9\\xff.pyc");
        // A literal backslash cannot be confused with an escape.
        assert_eq!(p(b"\\xff"), "\\\\xff");
        assert_ne!(p(b"\\xff"), p(b"\xff"));
        assert_eq!(text("plain é"), "plain é");
        assert!(matches!(text("plain"), Cow::Borrowed(_)));
        assert_eq!(text("bad\x1bname"), "bad\\x1bname");
        for b in 0u8..0x20 {
            assert!(!p(&[b]).bytes().any(|c| c < 0x20), "{b:#x}");
        }
    }
}
