//! What `site` reads besides directories: `.pth` files and a virtualenv's `pyvenv.cfg`,
//! parsed exactly as `site` parses them, and nothing of them executed. Pure.
//!
//! A `.pth` line is, as `site.addpackage` decides: a comment (`#` first), blank, an
//! `import` line (`import ` or `import\t` first: `site` would `exec` it — pycguard only
//! lists it), or a path (trailing whitespace stripped, joined to the site directory). How
//! the bytes become lines depends on the version: 3.13+ decodes `utf-8-sig` (a BOM is
//! dropped) and splits with `str.splitlines`; older versions read in the locale's
//! encoding (UTF-8 assumed here, a BOM stays part of the first line) with universal
//! newlines.

/// One line of a `.pth` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PthLine {
    /// A directory to add (relative to the site directory unless absolute).
    Path(String),
    /// Code `site` would execute.
    Import(String),
}

/// The meaningful lines of a `.pth` file, numbered from 1.
pub fn parse_pth(bytes: &[u8], version: (u32, u32)) -> Vec<(usize, PthLine)> {
    let modern = version >= (3, 13);
    let bytes = match bytes.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) if modern => rest,
        _ => bytes,
    };
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = if modern {
        splitlines(&text)
    } else {
        universal_lines(&text)
    };
    let mut out = Vec::new();
    for (n, line) in lines.into_iter().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with("import ") || line.starts_with("import\t") {
            out.push((n + 1, PthLine::Import(line.trim_end().to_owned())));
        } else {
            out.push((n + 1, PthLine::Path(line.trim_end().to_owned())));
        }
    }
    out
}

/// `str.splitlines()`: every line boundary Python knows.
fn splitlines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let boundary = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if boundary {
            out.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = chars.peek() {
                    chars.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Lines as a text file opened with universal newlines gives them (`\n`, `\r\n`, `\r`).
fn universal_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// What `site.venv` takes from `pyvenv.cfg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VenvConfig {
    /// `include-system-site-packages` (lowercased; `site` compares it with `"true"`).
    pub include_system_site_packages: bool,
    /// `home`.
    pub home: Option<String>,
}

/// Parse `pyvenv.cfg` as `site.venv` does: `key = value` lines, keys stripped and
/// lowercased; `include-system-site-packages` defaults to true.
pub fn parse_pyvenv_cfg(bytes: &[u8]) -> VenvConfig {
    let text = String::from_utf8_lossy(bytes);
    let mut config = VenvConfig {
        include_system_site_packages: true,
        home: None,
    };
    for line in universal_lines(&text) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_lowercase();
        let value = value.trim();
        match key.as_str() {
            "include-system-site-packages" => {
                config.include_system_site_packages = value.to_lowercase() == "true";
            }
            "home" => config.home = Some(value.to_owned()),
            _ => {}
        }
    }
    config
}

/// The module an `import` line of a setuptools editable install loads and installs:
/// `import __editable___NAME_finder; __editable___NAME_finder.install()` → that module
/// name.
pub fn editable_finder_module(import_line: &str) -> Option<&str> {
    let rest = import_line.strip_prefix("import")?.trim_start();
    let name = rest
        .split(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .next()?;
    (name.starts_with("__editable___") && name.ends_with("_finder")).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_site_reads_them() {
        let pth = b"# comment\n\n/abs/dir  \nrel/dir\r\nimport os; os.system('x')\nimport\tsys\n  # indented is a path\n";
        assert_eq!(
            parse_pth(pth, (3, 12)),
            vec![
                (3, PthLine::Path("/abs/dir".into())),
                (4, PthLine::Path("rel/dir".into())),
                (5, PthLine::Import("import os; os.system('x')".into())),
                (6, PthLine::Import("import\tsys".into())),
                (7, PthLine::Path("  # indented is a path".into())),
            ]
        );
        // A BOM: dropped by 3.13 (utf-8-sig), part of the first line before.
        let bom = b"\xef\xbb\xbf/a\n";
        assert_eq!(
            parse_pth(bom, (3, 13)),
            vec![(1, PthLine::Path("/a".into()))]
        );
        assert_eq!(
            parse_pth(bom, (3, 12)),
            vec![(1, PthLine::Path("\u{feff}/a".into()))]
        );
        // 3.13 splits at every line boundary str.splitlines knows.
        assert_eq!(
            parse_pth(b"/a\x0c/b", (3, 13)),
            vec![
                (1, PthLine::Path("/a".into())),
                (2, PthLine::Path("/b".into()))
            ]
        );
        assert_eq!(
            parse_pth(b"/a\x0c/b", (3, 12)),
            vec![(1, PthLine::Path("/a\x0c/b".into()))]
        );
        // "importlib" is not an import line.
        assert_eq!(
            parse_pth(b"importlib", (3, 12)),
            vec![(1, PthLine::Path("importlib".into()))]
        );
    }

    #[test]
    fn pyvenv_cfg() {
        let cfg = parse_pyvenv_cfg(
            b"home = /usr/bin\nInclude-System-Site-Packages = TRUE\nversion = 3.11.2\n",
        );
        assert!(cfg.include_system_site_packages);
        assert_eq!(cfg.home.as_deref(), Some("/usr/bin"));
        assert!(
            !parse_pyvenv_cfg(b"include-system-site-packages = false\n")
                .include_system_site_packages
        );
        assert!(parse_pyvenv_cfg(b"").include_system_site_packages);
    }

    #[test]
    fn editable_finder_lines() {
        assert_eq!(
            editable_finder_module(
                "import __editable___app_0_1_finder; __editable___app_0_1_finder.install()"
            ),
            Some("__editable___app_0_1_finder")
        );
        assert_eq!(editable_finder_module("import os"), None);
        assert_eq!(editable_finder_module("import _distutils_hack"), None);
    }
}
