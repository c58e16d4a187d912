//! `--output-format json-lines`: one JSON object per line, one per cache or action, for
//! `jq -c`, log shippers and line-by-line readers; nothing else on stdout.
//!
//! Each object is the element of the command's `--output-format json` document it stands
//! for (same keys, same path encoding), with a `"type"` key first naming which list it
//! comes from: `check` → `cache`, `error`; `fix` → `action`, `dir_removed`, `error`;
//! `clean` → `removed`, `debris_removed`, `dir_removed`, `failed`, `error`; `compile` →
//! `compiled`, `failed`, `error`; `inspect` → `file`; `interpreters` → `interpreter`,
//! `missing`, `rejected`. Objects whose document entry is a bare path are
//! `{"type": …, "path": P}`. There are no summary lines: count the objects.
//!
//! Shared by every command (a new one calls [`write`] for each of its records).

use std::io::{self, Write};

use serde::Serialize;

use crate::output::JsonPath;

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    item: &'a T,
}

/// Write one record: `{"type": kind, …item's keys}` and a newline. `item` must serialize
/// as a JSON object.
pub fn write<W: Write, T: Serialize>(out: &mut W, kind: &str, item: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &Line { kind, item }).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

#[derive(Serialize)]
struct PathOnly<'a> {
    path: JsonPath<'a>,
}

/// Write one `{"type": kind, "path": P}` record per path.
pub fn write_paths<W: Write>(out: &mut W, kind: &str, paths: &[JsonPath<'_>]) -> io::Result<()> {
    for path in paths {
        write(out, kind, &PathOnly { path: *path })?;
    }
    Ok(())
}

/// Write a record already serialized as a JSON object (`{…}`, one line), with the
/// `"type"` key put first.
pub fn write_raw<W: Write>(out: &mut W, kind: &str, object: &[u8]) -> io::Result<()> {
    let inner = object
        .strip_prefix(b"{")
        .ok_or_else(|| io::Error::other("not a JSON object"))?;
    write!(out, "{{\"type\": \"{kind}\"")?;
    if inner != b"}" {
        out.write_all(b", ")?;
    }
    out.write_all(inner)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    #[test]
    fn one_object_per_line_with_its_type_first() {
        let mut out = Vec::new();
        let path = Path::new(OsStr::from_bytes(b"caf\xe9.pyc"));
        write_paths(&mut out, "removed", &[JsonPath(path)]).unwrap();
        write_raw(&mut out, "cache", b"{\"path\": \"a\"}").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"type\":\"removed\",\"path\":\"caf\\udce9.pyc\"}\n{\"type\": \"cache\", \"path\": \"a\"}\n"
        );
    }
}
