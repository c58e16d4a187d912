//! Where caches live and which source each one belongs to (PEP 3147, PEP 488, `sys.pycache_prefix`).
//!
//! `importlib.util.cache_from_source` maps `d/name.py` to `d/__pycache__/name.TAG[.opt-N].pyc`
//! (keeping every dot of `name`), to `PREFIX/<abs d>/name.TAG[.opt-N].pyc` under a pycache
//! prefix, and Python 2 / `compileall -b` put `name.pyc` beside the source. This module
//! parses cache file names and maps between the two sides, in both directions. It works on
//! raw name bytes, so non-UTF-8 file names round-trip. Pure; no I/O.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// The directory name of PEP 3147 caches.
pub const PYCACHE_DIR: &str = "__pycache__";

/// Tool caches `clean --debris` removes: regenerable caches only, never build outputs,
/// virtual environments or anything holding user data.
pub const DEBRIS_DIRS: &[&str] = &[
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".pytype",
    ".pyre",
];

/// What a file's name and place say about it, before its bytes are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheName {
    /// `STEM.TAG[.opt-N].pyc` inside `__pycache__` or under a pycache prefix.
    Tagged {
        stem: OsString,
        tag: String,
        optimization: u8,
    },
    /// `STEM.pyc` / `STEM.pyo` beside where its source is (or was).
    Legacy { stem: OsString, pyo: bool },
    /// A tagged name outside `__pycache__` and any prefix: no importer looks for it there.
    TaggedOutOfPlace { stem: OsString, tag: String },
    /// `NAME.TAG.pyc.DIGITS`: the temporary file of a cache write that never completed.
    PartialWrite,
    /// A `.pyc` inside `__pycache__` whose name is not `STEM.TAG.pyc`.
    Misnamed,
    /// `STEM.TAG.opt-LEVEL.pyc` with a level no importer spells that way: `opt-0` (level 0
    /// has no suffix: `cache_from_source` gives `STEM.TAG.pyc`, and `py_compile` and
    /// `compileall` never pass 0), a level with leading zeros or one that is not a number.
    /// The importer asks for `.opt-{sys.flags.optimize}` only when that is not 0, so no
    /// interpreter ever reads this file.
    UnreadLevel {
        stem: OsString,
        tag: String,
        /// The text after `opt-` (lossy when not UTF-8).
        level: String,
    },
}

impl CacheName {
    /// The tag in the name, if any.
    pub fn tag(&self) -> Option<&str> {
        match self {
            CacheName::Tagged { tag, .. }
            | CacheName::TaggedOutOfPlace { tag, .. }
            | CacheName::UnreadLevel { tag, .. } => Some(tag),
            _ => None,
        }
    }

    /// The optimisation level the name records (`None` for legacy names, which carry none).
    pub fn optimization(&self) -> Option<u8> {
        match self {
            CacheName::Tagged { optimization, .. } => Some(*optimization),
            _ => None,
        }
    }

    /// True for a pytest assertion-rewritten cache (`…-pytest-X.Y.Z`).
    pub fn is_pytest(&self) -> bool {
        self.tag().is_some_and(|t| t.contains("-pytest-"))
    }

    /// The pytest version in a pytest cache's tag (`cpython-312-pytest-9.2.0` → 9.2), when
    /// it starts with `MAJOR.MINOR` (pytest writes its own `__version__` there).
    pub fn pytest_version(&self) -> Option<(u32, u32)> {
        pytest_version_of_tag(self.tag()?)
    }
}

/// `MAJOR.MINOR` of the pytest version in a tag (`cpython-312-pytest-9.2.0rc1` → (9, 2)).
pub fn pytest_version_of_tag(tag: &str) -> Option<(u32, u32)> {
    let (_, version) = tag.split_once("-pytest-")?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor_text = parts.next()?;
    let digits = minor_text.bytes().take_while(u8::is_ascii_digit).count();
    let minor = minor_text[..digits].parse().ok()?;
    Some((major, minor))
}

/// Classify a file by its name. `in_cache_dir` is true inside `__pycache__` and under a
/// pycache prefix. `None`: the file is not a bytecode cache at all and pycguard never
/// touches it.
pub fn classify(file_name: &OsStr, in_cache_dir: bool) -> Option<CacheName> {
    let name = file_name.as_bytes();
    if in_cache_dir && is_partial_write(name) {
        return Some(CacheName::PartialWrite);
    }
    let (base, pyo) = if let Some(b) = name.strip_suffix(b".pyc") {
        (b, false)
    } else if let Some(b) = name.strip_suffix(b".pyo") {
        (b, true)
    } else {
        return None;
    };
    if base.is_empty() {
        return if in_cache_dir {
            Some(CacheName::Misnamed)
        } else {
            None
        };
    }
    let tagged = if pyo { None } else { split_tagged(base) };
    match (tagged, in_cache_dir) {
        (Some((stem, tag, Level::Read(optimization))), true) => Some(CacheName::Tagged {
            stem: OsString::from_vec(stem.to_vec()),
            tag,
            optimization,
        }),
        (Some((stem, tag, Level::Unread(level))), true) => Some(CacheName::UnreadLevel {
            stem: OsString::from_vec(stem.to_vec()),
            tag,
            level,
        }),
        (None, true) => Some(CacheName::Misnamed),
        (Some((stem, tag, _)), false) => Some(CacheName::TaggedOutOfPlace {
            stem: OsString::from_vec(stem.to_vec()),
            tag,
        }),
        (None, false) => Some(CacheName::Legacy {
            stem: OsString::from_vec(base.to_vec()),
            pyo,
        }),
    }
}

/// `NAME.pyc.DIGITS` — importlib's `_write_atomic` temp name is `'{}.{}'.format(path, id(path))`.
fn is_partial_write(name: &[u8]) -> bool {
    let Some(pos) = name.windows(5).rposition(|w| w == b".pyc.") else {
        return false;
    };
    let digits = &name[pos + 5..];
    pos > 0 && !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// The optimisation level a tagged name spells.
enum Level {
    /// One the importer asks for: none (0), or `opt-N` with N the decimal form of 1..=255.
    Read(u8),
    /// `opt-` followed by anything else (`opt-0`, `opt-01`, `opt-x`): never read.
    Unread(String),
}

/// Split `STEM.TAG[.opt-N]` (the name without `.pyc`) into its parts.
fn split_tagged(base: &[u8]) -> Option<(&[u8], String, Level)> {
    let (base, optimization) = match base.iter().rposition(|&b| b == b'.') {
        Some(dot) if base[dot + 1..].starts_with(b"opt-") => {
            let text = &base[dot + 5..];
            // `cache_from_source` writes `str(sys.flags.optimize)`: no sign, no leading zero.
            let level = std::str::from_utf8(text)
                .ok()
                .filter(|t| !t.starts_with('0') && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u8>().ok());
            let level = match level {
                Some(n) => Level::Read(n),
                None => Level::Unread(String::from_utf8_lossy(text).into_owned()),
            };
            (&base[..dot], level)
        }
        _ => (base, Level::Read(0)),
    };
    // The tag is the leftmost dotted tail that is tag-shaped; only a pytest version may
    // contain dots, so this finds `cpython-312` in `foo.bar.cpython-312`.
    for (dot, _) in base.iter().enumerate().filter(|(_, &b)| b == b'.') {
        if dot == 0 {
            continue;
        }
        let tail = &base[dot + 1..];
        if let Ok(tag) = std::str::from_utf8(tail) {
            if is_tag(tag) {
                return Some((&base[..dot], tag.to_owned(), optimization));
            }
        }
    }
    None
}

/// `IMPL[-]DIGITS…` (`cpython-312`, `pypy39`, `pypy3-71`), optionally `-pytest-VERSION`.
pub fn is_tag(tag: &str) -> bool {
    let (base, pytest_version) = match tag.split_once("-pytest-") {
        Some((b, v)) => (b, Some(v)),
        None => (tag, None),
    };
    if let Some(v) = pytest_version {
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        {
            return false;
        }
    }
    let letters = base.bytes().take_while(u8::is_ascii_alphabetic).count();
    let rest = base[letters..]
        .strip_prefix('-')
        .unwrap_or(&base[letters..]);
    letters > 0
        && rest.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The source a cache in `cache_dir` belongs to, given its parsed name. For a tagged name
/// `cache_dir` is the `__pycache__` directory (its parent holds the source); for a legacy
/// name it is the source's own directory. Prefix caches are mapped by [`prefix_source_dir`].
pub fn source_path(cache_dir: &Path, name: &CacheName) -> Option<PathBuf> {
    match name {
        CacheName::Tagged { stem, .. } => Some(join_py(cache_dir.parent()?, stem)),
        CacheName::Legacy { stem, .. } => Some(join_py(cache_dir, stem)),
        _ => None,
    }
}

/// `dir.join(stem + ".py")` with one allocation (this runs once per cache found).
fn join_py(dir: &Path, stem: &OsStr) -> PathBuf {
    let mut path = PathBuf::with_capacity(dir.as_os_str().len() + stem.len() + 4);
    path.push(dir);
    let mut name = std::mem::take(&mut path).into_os_string();
    if !name.is_empty() && !name.as_bytes().ends_with(b"/") {
        name.push("/");
    }
    name.push(stem);
    name.push(".py");
    PathBuf::from(name)
}

/// `importlib.util.cache_from_source(source)` for `tag` and an optimisation level.
pub fn cache_path(source: &Path, tag: &str, optimization: u8) -> Option<PathBuf> {
    let dir = source.parent()?;
    Some(
        dir.join(PYCACHE_DIR)
            .join(tagged_file_name(source.file_name()?, tag, optimization)),
    )
}

/// [`cache_path`] written into `out` (cleared first) as bytes, without allocating when
/// `out` is large enough; false when `source` has no file name.
pub fn write_cache_path(source: &Path, tag: &str, optimization: u8, out: &mut Vec<u8>) -> bool {
    out.clear();
    // Split at the last '/' by bytes when that is what `parent`/`file_name` would give (a
    // plain last component); they parse every component, which is slow in a hot loop.
    let bytes = source.as_os_str().as_bytes();
    let split = match bytes.iter().rposition(|&b| b == b'/') {
        Some(0) => Some((&b"/"[..], &bytes[1..])),
        Some(i) if bytes[i - 1] != b'/' => Some((&bytes[..i], &bytes[i + 1..])),
        Some(_) => None,
        None => Some((&b""[..], bytes)),
    };
    let (dir, name) = match split {
        Some((dir, name))
            if !name.is_empty()
                && name != b"."
                && name != b".."
                && dir != b"."
                && !dir.ends_with(b"/.") =>
        {
            (dir, name)
        }
        _ => {
            let (Some(dir), Some(name)) = (source.parent(), source.file_name()) else {
                return false;
            };
            (dir.as_os_str().as_bytes(), name.as_bytes())
        }
    };
    out.extend_from_slice(dir);
    if !dir.is_empty() && !dir.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(PYCACHE_DIR.as_bytes());
    out.push(b'/');
    push_tagged_file_name(name, tag, optimization, out);
    true
}

/// The cache of `source` under `sys.pycache_prefix` (`abs_source` must be absolute).
pub fn prefix_cache_path(
    prefix: &Path,
    abs_source: &Path,
    tag: &str,
    optimization: u8,
) -> Option<PathBuf> {
    let dir = prefix_mirror_dir(prefix, abs_source.parent()?);
    Some(dir.join(tagged_file_name(abs_source.file_name()?, tag, optimization)))
}

/// `STEM.TAG[.opt-N].pyc` for a source file name (`stem` keeps every dot but the last).
pub fn tagged_file_name(source_name: &OsStr, tag: &str, optimization: u8) -> OsString {
    let mut out = Vec::new();
    push_tagged_file_name(source_name.as_bytes(), tag, optimization, &mut out);
    OsString::from_vec(out)
}

fn push_tagged_file_name(source_name: &[u8], tag: &str, optimization: u8, out: &mut Vec<u8>) {
    let stem = match source_name.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => &source_name[..dot],
        _ => source_name,
    };
    out.extend_from_slice(stem);
    out.push(b'.');
    out.extend_from_slice(tag.as_bytes());
    if optimization > 0 {
        // Writing into a Vec cannot fail.
        let _ = write!(out, ".opt-{optimization}");
    }
    out.extend_from_slice(b".pyc");
}

/// The directory under `prefix` that mirrors the absolute directory `abs_dir`
/// (`PREFIX/a/b` for `/a/b`): importlib joins the prefix with the path minus its root.
pub fn prefix_mirror_dir(prefix: &Path, abs_dir: &Path) -> PathBuf {
    let mut out = prefix.to_path_buf();
    for c in abs_dir.components() {
        if let Component::Normal(part) = c {
            out.push(part);
        }
    }
    out
}

/// Does an interpreter of this `(major, minor)` read and write caches under a pycache
/// prefix when one is set (`sys.pycache_prefix`, new in 3.8)? Those that do use nothing
/// else: the `__pycache__` caches beside the sources are not even looked at.
pub fn reads_pycache_prefix(version: (u32, u32)) -> bool {
    version >= (3, 8)
}

/// True when `name` is a directory name pycguard treats as a cache directory.
pub fn is_pycache_dir(name: &OsStr) -> bool {
    name == PYCACHE_DIR
}

/// `cwd/path` with `.` and `..` folded, without touching the file system (Python's
/// `os.path.abspath`).
pub fn lexically_absolute(cwd: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let mut out: Vec<OsString> = Vec::new();
    for c in joined.components() {
        match c {
            Component::Normal(part) => out.push(part.to_os_string()),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let mut result = PathBuf::from("/");
    result.extend(out);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abspath_folds_like_python() {
        let cwd = Path::new("/home/u/app");
        assert_eq!(
            lexically_absolute(cwd, Path::new(".")),
            Path::new("/home/u/app")
        );
        assert_eq!(
            lexically_absolute(cwd, Path::new("../x/./y")),
            Path::new("/home/u/x/y")
        );
        assert_eq!(
            lexically_absolute(cwd, Path::new("/a/b/../c")),
            Path::new("/a/c")
        );
        assert_eq!(lexically_absolute(cwd, Path::new("/..")), Path::new("/"));
    }

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    #[test]
    fn join_py_is_join() {
        for dir in ["", "/", "a", "a/", "a/b", "./a", "a//b"] {
            for stem in ["m", "m.tar", ".hidden"] {
                let expected = Path::new(dir).join(format!("{stem}.py"));
                assert_eq!(join_py(Path::new(dir), OsStr::new(stem)), expected);
            }
        }
    }

    #[test]
    fn cache_path_written_in_place_is_cache_path() {
        let mut buf = Vec::new();
        let odd = OsString::from_vec(b"caf\xe9.py".to_vec());
        let sources: Vec<PathBuf> = vec![
            "m.py".into(),
            "./m.py".into(),
            "/m.py".into(),
            "a/b/m.py".into(),
            "a/b/m.tar.py".into(),
            "/abs/.hidden.py".into(),
            "a//b/m.py".into(),
            "a/b//m.py".into(),
            "./a/m.py".into(),
            "a/b/m.py/".into(),
            "a/b/m.py/.".into(),
            "//m.py".into(),
            "a/./m.py".into(),
            "../up/m.py".into(),
            "a/b/noext".into(),
            PathBuf::from("dir").join(&odd),
        ];
        for source in &sources {
            for (tag, level) in [
                ("cpython-312", 0),
                ("cpython-39", 1),
                ("pypy39-pp73", 2),
                ("x", 12),
            ] {
                let expected = cache_path(source, tag, level);
                let written = write_cache_path(source, tag, level, &mut buf);
                assert_eq!(written, expected.is_some(), "{source:?}");
                if let Some(expected) = expected {
                    assert_eq!(
                        OsStr::from_bytes(&buf),
                        expected.as_os_str(),
                        "{source:?} {tag} {level}"
                    );
                }
            }
        }
        assert!(!write_cache_path(
            Path::new("/"),
            "cpython-312",
            0,
            &mut buf
        ));
        assert!(!write_cache_path(
            Path::new("a/.."),
            "cpython-312",
            0,
            &mut buf
        ));
    }

    fn c(name: &str, in_cache: bool) -> Option<CacheName> {
        classify(OsStr::new(name), in_cache)
    }

    #[test]
    fn tagged_names() {
        assert_eq!(
            c("mod.cpython-312.pyc", true),
            Some(CacheName::Tagged {
                stem: os("mod"),
                tag: "cpython-312".into(),
                optimization: 0
            })
        );
        assert_eq!(
            c("mod.cpython-312.opt-2.pyc", true),
            Some(CacheName::Tagged {
                stem: os("mod"),
                tag: "cpython-312".into(),
                optimization: 2
            })
        );
        assert_eq!(
            c("foo.bar.cpython-312.pyc", true),
            Some(CacheName::Tagged {
                stem: os("foo.bar"),
                tag: "cpython-312".into(),
                optimization: 0
            })
        );
        let pytest = c("test_x.cpython-312-pytest-8.3.4.pyc", true).unwrap();
        assert_eq!(pytest.tag(), Some("cpython-312-pytest-8.3.4"));
        assert!(pytest.is_pytest());
        assert_eq!(c("m.pypy39.pyc", true).unwrap().tag(), Some("pypy39"));
        assert_eq!(c("m.pypy3-71.pyc", true).unwrap().tag(), Some("pypy3-71"));
        assert_eq!(
            c("__init__.cpython-36.pyc", true).unwrap().tag(),
            Some("cpython-36")
        );
    }

    #[test]
    fn levels_the_importer_never_asks_for() {
        for (name, level) in [
            ("mod.cpython-312.opt-0.pyc", "0"),
            ("mod.cpython-312.opt-01.pyc", "01"),
            ("mod.cpython-312.opt-.pyc", ""),
            ("mod.cpython-312.opt-x.pyc", "x"),
            ("mod.cpython-312.opt--1.pyc", "-1"),
        ] {
            assert_eq!(
                c(name, true),
                Some(CacheName::UnreadLevel {
                    stem: os("mod"),
                    tag: "cpython-312".into(),
                    level: level.into()
                }),
                "{name}"
            );
        }
        let unread = c("mod.cpython-312.opt-0.pyc", true).unwrap();
        assert_eq!(unread.tag(), Some("cpython-312"));
        assert_eq!(unread.optimization(), None);
        // `-OOO` and PYTHONOPTIMIZE=42 are real levels.
        for (name, level) in [
            ("m.cpython-312.opt-3.pyc", 3),
            ("m.cpython-312.opt-42.pyc", 42),
        ] {
            assert_eq!(c(name, true).unwrap().optimization(), Some(level), "{name}");
        }
        // Without a tag it is just misnamed.
        assert_eq!(c("mod.opt-0.pyc", true), Some(CacheName::Misnamed));
    }

    #[test]
    fn pytest_versions() {
        assert_eq!(
            pytest_version_of_tag("cpython-312-pytest-9.2.0"),
            Some((9, 2))
        );
        assert_eq!(
            pytest_version_of_tag("cpython-312-pytest-8.3.4"),
            Some((8, 3))
        );
        assert_eq!(
            pytest_version_of_tag("cpython-313-pytest-10.0.0rc1"),
            Some((10, 0))
        );
        assert_eq!(
            pytest_version_of_tag("cpython-313-pytest-9.2rc1"),
            Some((9, 2))
        );
        assert_eq!(pytest_version_of_tag("cpython-313-pytest-unknown"), None);
        assert_eq!(pytest_version_of_tag("cpython-313"), None);
        let name = c("test_a.cpython-312-pytest-9.2.0.pyc", true).unwrap();
        assert_eq!(name.pytest_version(), Some((9, 2)));
    }

    #[test]
    fn other_names() {
        assert_eq!(c("mod.py", true), None);
        assert_eq!(c("README", false), None);
        assert_eq!(c("mod.pyc", true), Some(CacheName::Misnamed));
        assert_eq!(c(".pyc", true), Some(CacheName::Misnamed));
        assert_eq!(c(".pyc", false), None);
        assert_eq!(
            c("mod.pyc", false),
            Some(CacheName::Legacy {
                stem: os("mod"),
                pyo: false
            })
        );
        assert_eq!(
            c("mod.pyo", false),
            Some(CacheName::Legacy {
                stem: os("mod"),
                pyo: true
            })
        );
        assert_eq!(
            c("mod.cpython-312.pyc", false),
            Some(CacheName::TaggedOutOfPlace {
                stem: os("mod"),
                tag: "cpython-312".into()
            })
        );
        assert_eq!(
            c("mod.cpython-312.pyc.140234", true),
            Some(CacheName::PartialWrite)
        );
        assert_eq!(c("mod.cpython-312.pyc.140234", false), None);
        assert_eq!(c("mod.cpython-312.pyc.12a", true), None);
        // A dotted legacy name whose tail is not tag-shaped stays legacy.
        assert_eq!(
            c("foo.bar.pyc", false),
            Some(CacheName::Legacy {
                stem: os("foo.bar"),
                pyo: false
            })
        );
    }

    #[test]
    fn non_utf8_names_round_trip() {
        let raw = OsString::from_vec(b"caf\xe9.cpython-311.pyc".to_vec());
        let name = classify(&raw, true).unwrap();
        assert_eq!(
            name,
            CacheName::Tagged {
                stem: OsString::from_vec(b"caf\xe9".to_vec()),
                tag: "cpython-311".into(),
                optimization: 0
            }
        );
        let src = source_path(Path::new("d/__pycache__"), &name).unwrap();
        assert_eq!(src.as_os_str().as_bytes(), b"d/caf\xe9.py");
        assert_eq!(
            cache_path(&src, "cpython-311", 0)
                .unwrap()
                .as_os_str()
                .as_bytes(),
            b"d/__pycache__/caf\xe9.cpython-311.pyc"
        );
    }

    #[test]
    fn source_and_cache_paths_are_inverse() {
        for (src, tag, opt) in [
            ("pkg/mod.py", "cpython-312", 0u8),
            ("pkg/foo.bar.py", "cpython-39", 1),
            ("a/b/__init__.py", "pypy39", 2),
        ] {
            let cache = cache_path(Path::new(src), tag, opt).unwrap();
            let name = classify(cache.file_name().unwrap(), true).unwrap();
            assert_eq!(name.tag(), Some(tag));
            assert_eq!(name.optimization(), Some(opt));
            assert_eq!(
                source_path(cache.parent().unwrap(), &name).unwrap(),
                Path::new(src)
            );
        }
        assert_eq!(
            cache_path(Path::new("d/foo.bar.py"), "cpython-312", 1).unwrap(),
            Path::new("d/__pycache__/foo.bar.cpython-312.opt-1.pyc")
        );
        let legacy = classify(OsStr::new("m.pyc"), false).unwrap();
        assert_eq!(
            source_path(Path::new("x"), &legacy).unwrap(),
            Path::new("x/m.py")
        );
    }

    #[test]
    fn prefix_mirror() {
        assert_eq!(
            prefix_mirror_dir(Path::new("/tmp/pfx"), Path::new("/opt/app/pkg")),
            Path::new("/tmp/pfx/opt/app/pkg")
        );
        assert_eq!(
            prefix_cache_path(
                Path::new("/tmp/pfx"),
                Path::new("/opt/app/mod.py"),
                "cpython-312",
                0
            )
            .unwrap(),
            Path::new("/tmp/pfx/opt/app/mod.cpython-312.pyc")
        );
    }
}
