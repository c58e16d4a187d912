//! What an interpreter says about itself, and whether a remembered answer is believable.
//!
//! The probe ([`super::probe`]) and every worker's hello ([`crate::worker::protocol`]) report
//! the same facts: implementation, version, magic number, cache tag, `sys.executable` and
//! the installation prefixes. The probe's answer is remembered between runs
//! ([`super::memo`]); a remembered answer saves a process start, so it must never be able
//! to change a verdict. [`plausible`] is the gate: an answer is remembered, and a
//! remembered one is used, only when everything in it that can be checked without running
//! the interpreter agrees with pycguard's magic table and with the file it is about —
//!
//! - the magic number is one pycguard's table assigns to the series of the reported
//!   implementation and `major.minor` (2.7's magic for 2.7, 3495 for CPython 3.11…);
//! - the version string starts with that `major.minor`, and the cache tag is the series'
//!   own (`cpython-311`; none for Python 2);
//! - `sys.executable` is exactly the resolved file that was run, whose name carries the
//!   same `major.minor` (`python3.11`, `pypy3.10`);
//! - the prefixes are the installation root that file sits in (`ROOT/bin/python3.11`).
//!
//! So an answer remembered for one executable cannot describe another (a swapped or
//! edited memo fails the check and the interpreter is asked again), and what selects an
//! interpreter for a cache (magic, series, prefixes) is pinned by the file system, not by
//! the memo. What is left (the exact patch version) is confirmed by the worker's hello
//! before a proof or a written cache depends on it ([`crate::worker::pool`]). An answer that
//! fails the check is still used for the run in which the interpreter gave it (an odd
//! layout is not an error); it is only not remembered. Pure: no I/O.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pyc::magic::{self, Implementation, Series};

/// One interpreter's description of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// `sys.implementation.name`: `cpython`, `pypy`.
    pub implementation: String,
    /// `sys.version_info[:2]`.
    pub version_info: (u32, u32),
    /// `3.12.1` (the first word of `sys.version`).
    pub version: String,
    /// `importlib.util.MAGIC_NUMBER` (2.7: `imp.get_magic()`).
    pub magic: [u8; 4],
    /// `sys.implementation.cache_tag`; `None` for Python 2.
    pub cache_tag: Option<String>,
    /// `sys.executable`.
    pub executable: PathBuf,
    /// `sys.prefix` and `sys.base_prefix`, symlinks resolved, duplicates removed.
    pub prefixes: Vec<PathBuf>,
}

/// Why a remembered answer is not believed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Implausible {
    #[error("implementation {0:?} is not one pycguard knows")]
    Implementation(String),
    #[error("magic {magic:02x?} is not {series}'s")]
    Magic { magic: [u8; 4], series: String },
    #[error("version {version:?} is not {major}.{minor}")]
    Version {
        version: String,
        major: u32,
        minor: u32,
    },
    #[error("cache tag {found:?} is not {expected:?}")]
    Tag {
        found: Option<String>,
        expected: Option<String>,
    },
    #[error("sys.executable {} is not the file that was run", .0.display())]
    Executable(PathBuf),
    #[error("the file name {0:?} does not name Python {1}.{2}")]
    FileName(String, u32, u32),
    #[error("prefix {} is not the installation holding the executable", .0.display())]
    Prefix(PathBuf),
}

impl Answer {
    /// The series pycguard's magic table gives this answer's magic number.
    pub fn series(&self) -> Option<Series> {
        magic::lookup(self.magic).map(|m| m.series)
    }

    /// Everything but the version string agrees: the same build as far as choosing an
    /// interpreter for a cache goes (magic, series, tag, executable and prefixes).
    pub fn same_build(&self, other: &Answer) -> bool {
        Answer {
            version: other.version.clone(),
            ..self.clone()
        } == *other
    }
}

impl crate::store::probes::ProbeAnswer for Answer {
    fn plausible_for(&self, resolved: &Path) -> bool {
        plausible(self, resolved).is_ok()
    }
}

/// Check a remembered (or to-be-remembered) answer about the executable `resolved`
/// (symlinks resolved; the file that is run). See the module docs.
pub fn plausible(answer: &Answer, resolved: &Path) -> Result<(), Implausible> {
    let implementation = match answer.implementation.as_str() {
        "cpython" => Implementation::CPython,
        "pypy" => Implementation::PyPy,
        other => return Err(Implausible::Implementation(other.to_owned())),
    };
    let (major, minor) = answer.version_info;
    let expected = Series {
        implementation,
        major: u8::try_from(major).unwrap_or(u8::MAX),
        minor: u8::try_from(minor).unwrap_or(u8::MAX),
    };
    if answer.series() != Some(expected) {
        return Err(Implausible::Magic {
            magic: answer.magic,
            series: expected.to_string(),
        });
    }
    // A final release writes its series' release magic (a pre-release one, with a
    // version such as 3.13.0rc1, any magic of the series' range).
    let release = answer.version.split('.').count() == 3
        && answer
            .version
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.');
    let value = u16::from_le_bytes([answer.magic[0], answer.magic[1]]);
    if let Some(magics) = magic::release_magics(expected).filter(|_| release) {
        if !magics.contains(&value) {
            return Err(Implausible::Magic {
                magic: answer.magic,
                series: format!("a final {expected}"),
            });
        }
    }
    let mut parts = answer.version.split('.');
    if parts.next() != Some(major.to_string().as_str())
        || parts.next() != Some(minor.to_string().as_str())
    {
        return Err(Implausible::Version {
            version: answer.version.clone(),
            major,
            minor,
        });
    }
    if answer.cache_tag != expected.cache_tag() {
        return Err(Implausible::Tag {
            found: answer.cache_tag.clone(),
            expected: expected.cache_tag(),
        });
    }
    if answer.executable != resolved {
        return Err(Implausible::Executable(answer.executable.clone()));
    }
    let name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = match implementation {
        Implementation::CPython => "python",
        Implementation::PyPy => "pypy",
    };
    if file_name_version(&name, stem) != Some((major, minor)) {
        return Err(Implausible::FileName(name, major, minor));
    }
    let root = resolved.parent().and_then(Path::parent);
    if answer.prefixes.is_empty() {
        return Err(Implausible::Prefix(PathBuf::new()));
    }
    if let Some(p) = answer.prefixes.iter().find(|p| Some(p.as_path()) != root) {
        return Err(Implausible::Prefix(p.clone()));
    }
    Ok(())
}

/// `python3.12` → (3, 12); ABI suffixes are allowed (`python3.6m`, `python3.13t`).
fn file_name_version(name: &str, stem: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix(stem)?;
    let (major, rest) = rest.split_once('.')?;
    let digits = rest.trim_end_matches(|c: char| c.is_ascii_lowercase());
    if major.is_empty()
        || digits.is_empty()
        || !major.bytes().all(|b| b.is_ascii_digit())
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((major.parse().ok()?, digits.parse().ok()?))
}

/// First line of the probe's answer (see [`super::PROBE`]); a different first line is not
/// an answer.
pub const PROBE_HEADER: &str = "pycguard-probe-3";

/// Parse the probe's output: lines `PROBE_HEADER`, implementation, `major.minor`, version,
/// magic (hex), cache tag (empty for none), `sys.executable`, prefixes (NUL-separated).
pub fn parse_probe(out: &[u8]) -> Option<Answer> {
    let mut lines = out.split(|&b| b == b'\n');
    if lines.next()? != PROBE_HEADER.as_bytes() {
        return None;
    }
    let implementation = lines.next()?;
    let version_info = lines.next()?;
    let version = lines.next()?;
    let hex = std::str::from_utf8(lines.next()?).ok()?;
    if hex.len() != 8 {
        return None;
    }
    let mut magic = [0u8; 4];
    for (i, b) in magic.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let tag = lines.next()?;
    let executable = lines.next()?;
    let prefixes = lines.next()?;
    from_fields(
        implementation,
        version_info,
        version,
        &magic,
        tag,
        executable,
        prefixes,
    )
}

/// Build an answer from its fields as the probe and the worker's hello send them.
pub fn from_fields(
    implementation: &[u8],
    version_info: &[u8],
    version: &[u8],
    magic: &[u8],
    tag: &[u8],
    executable: &[u8],
    prefixes: &[u8],
) -> Option<Answer> {
    use std::os::unix::ffi::OsStrExt;
    let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
    let (major, minor) = std::str::from_utf8(version_info).ok()?.split_once('.')?;
    let mut unique: Vec<PathBuf> = Vec::new();
    for p in prefixes.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(std::ffi::OsStr::from_bytes(p));
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    Some(Answer {
        implementation: text(implementation)?,
        version_info: (major.parse().ok()?, minor.parse().ok()?),
        version: text(version)?,
        magic: magic.try_into().ok()?,
        cache_tag: Some(text(tag)?).filter(|t| !t.is_empty()),
        executable: PathBuf::from(std::ffi::OsStr::from_bytes(executable)),
        prefixes: unique,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const M311: [u8; 4] = [0xa7, 0x0d, 0x0d, 0x0a];
    const M312: [u8; 4] = [0xcb, 0x0d, 0x0d, 0x0a];
    const M27: [u8; 4] = [0x03, 0xf3, 0x0d, 0x0a];

    fn answer(version: &str, magic: [u8; 4], exe: &str) -> Answer {
        let mut parts = version.split('.');
        let major: u32 = parts.next().unwrap().parse().unwrap();
        let minor: u32 = parts.next().unwrap().parse().unwrap();
        Answer {
            implementation: "cpython".into(),
            version_info: (major, minor),
            version: version.into(),
            magic,
            cache_tag: (major >= 3).then(|| format!("cpython-{major}{minor}")),
            executable: exe.into(),
            prefixes: vec![Path::new(exe).parent().unwrap().parent().unwrap().into()],
        }
    }

    #[test]
    fn real_answers_are_plausible() {
        for (v, m, exe) in [
            (
                "3.11.7",
                M311,
                "/root/.pyenv/versions/3.11.7/bin/python3.11",
            ),
            ("3.11.2", M311, "/usr/bin/python3.11"),
            ("3.12.1", M312, "/opt/py/bin/python3.12"),
            ("2.7.18", M27, "/root/.pyenv/versions/2.7.18/bin/python2.7"),
            ("3.13.0rc1", [0xf3, 0x0d, 0x0d, 0x0a], "/x/bin/python3.13t"),
        ] {
            let a = answer(v, m, exe);
            assert_eq!(plausible(&a, Path::new(exe)), Ok(()), "{v}");
        }
        let mut pypy = answer("3.10.14", [0x80, 0x01, 0x0d, 0x0a], "/pp/bin/pypy3.10");
        pypy.implementation = "pypy".into();
        pypy.cache_tag = Some("pypy310".into());
        assert_eq!(plausible(&pypy, Path::new("/pp/bin/pypy3.10")), Ok(()));
    }

    #[test]
    fn swapped_answers_are_not() {
        // The case: two interpreters' answers swapped in the memo, same magic.
        let pyenv = Path::new("/root/.pyenv/versions/3.11.7/bin/python3.11");
        let debian = Path::new("/usr/bin/python3.11");
        let a = answer("3.11.2", M311, "/usr/bin/python3.11");
        assert!(matches!(
            plausible(&a, pyenv),
            Err(Implausible::Executable(_))
        ));
        let b = answer(
            "3.11.7",
            M311,
            "/root/.pyenv/versions/3.11.7/bin/python3.11",
        );
        assert!(plausible(&b, debian).is_err());
        // Different series swapped.
        let c = answer(
            "3.12.1",
            M312,
            "/root/.pyenv/versions/3.12.1/bin/python3.12",
        );
        assert!(plausible(&c, pyenv).is_err());
    }

    #[test]
    fn each_inconsistency_is_caught() {
        let exe = Path::new("/p/bin/python3.12");
        let good = answer("3.12.1", M312, "/p/bin/python3.12");
        assert_eq!(plausible(&good, exe), Ok(()));
        let bad = |f: &dyn Fn(&mut Answer)| {
            let mut a = good.clone();
            f(&mut a);
            plausible(&a, exe)
        };
        // The poisoned probe of the issue: magic 0.
        assert!(matches!(
            bad(&|a| a.magic = [0; 4]),
            Err(Implausible::Magic { .. })
        ));
        assert!(matches!(
            bad(&|a| a.magic = M311),
            Err(Implausible::Magic { .. })
        ));
        // A 3.12 pre-release magic for a final 3.12.1 (a lie that would hide the real
        // interpreter from the 3.12 caches); fine for a pre-release version.
        assert!(matches!(
            bad(&|a| a.magic = [0xca, 0x0d, 0x0d, 0x0a]),
            Err(Implausible::Magic { .. })
        ));
        assert_eq!(
            bad(&|a| {
                a.magic = [0xca, 0x0d, 0x0d, 0x0a];
                a.version = "3.12.0b4".into();
            }),
            Ok(())
        );
        assert!(matches!(
            bad(&|a| a.version = "3.11.7".into()),
            Err(Implausible::Version { .. })
        ));
        assert!(matches!(
            bad(&|a| a.version = "3.120.1".into()),
            Err(Implausible::Version { .. })
        ));
        assert!(matches!(
            bad(&|a| a.cache_tag = Some("cpython-311".into())),
            Err(Implausible::Tag { .. })
        ));
        assert!(matches!(
            bad(&|a| a.cache_tag = None),
            Err(Implausible::Tag { .. })
        ));
        assert!(matches!(
            bad(&|a| a.implementation = "pypy".into()),
            Err(Implausible::Magic { .. })
        ));
        assert!(matches!(
            bad(&|a| a.implementation = "jython".into()),
            Err(Implausible::Implementation(_))
        ));
        assert!(matches!(
            bad(&|a| a.executable = "/p/bin/python3".into()),
            Err(Implausible::Executable(_))
        ));
        assert!(matches!(
            bad(&|a| a.prefixes = vec!["/".into()]),
            Err(Implausible::Prefix(_))
        ));
        assert!(matches!(
            bad(&|a| a.prefixes.push("/usr".into())),
            Err(Implausible::Prefix(_))
        ));
        assert!(matches!(
            bad(&|a| a.prefixes.clear()),
            Err(Implausible::Prefix(_))
        ));
        // A file whose name does not say its version cannot be pinned: not remembered.
        let copy = Path::new("/venv/bin/python");
        let mut a = good.clone();
        a.executable = copy.into();
        a.prefixes = vec!["/venv".into()];
        assert!(matches!(
            plausible(&a, copy),
            Err(Implausible::FileName(..))
        ));
        let other = Path::new("/p/bin/python3.11");
        let mut a = good.clone();
        a.executable = other.into();
        assert!(matches!(
            plausible(&a, other),
            Err(Implausible::FileName(..))
        ));
    }

    #[test]
    fn same_build_ignores_only_the_version() {
        let a = answer("3.11.7", M311, "/p/bin/python3.11");
        let mut b = a.clone();
        b.version = "3.11.2".into();
        assert!(a.same_build(&b));
        b.prefixes = vec!["/usr".into()];
        assert!(!a.same_build(&b));
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name_version("python3.12", "python"), Some((3, 12)));
        assert_eq!(file_name_version("python3.6m", "python"), Some((3, 6)));
        assert_eq!(file_name_version("python2.7", "python"), Some((2, 7)));
        assert_eq!(file_name_version("python3", "python"), None);
        assert_eq!(file_name_version("python", "python"), None);
        assert_eq!(file_name_version("python3.", "python"), None);
        assert_eq!(file_name_version("python3.12-config", "python"), None);
        assert_eq!(file_name_version("pypy3.10", "pypy"), Some((3, 10)));
    }

    #[test]
    fn probe_answers_parse() {
        let p = parse_probe(
            b"pycguard-probe-3\ncpython\n3.12\n3.12.1\ncb0d0d0a\ncpython-312\n/usr/bin/python3.12\n/v\0/usr\n",
        )
        .unwrap();
        assert_eq!(p.magic, M312);
        assert_eq!(p.version_info, (3, 12));
        assert_eq!(p.cache_tag.as_deref(), Some("cpython-312"));
        assert_eq!(p.prefixes, [PathBuf::from("/v"), PathBuf::from("/usr")]);
        let p2 =
            parse_probe(b"pycguard-probe-3\ncpython\n2.7\n2.7.18\n03f30d0a\n\n/x/python\n/x\0/x\n")
                .unwrap();
        assert_eq!(p2.cache_tag, None);
        assert_eq!(p2.prefixes, [PathBuf::from("/x")]);
        assert!(parse_probe(b"Python 3.12.1\n").is_none());
        assert!(
            parse_probe(b"pycguard-probe-2\ncpython\n3.12\n3.12.1\ncb0d0d0a\n\n/x\n/x\n").is_none()
        );
        assert!(
            parse_probe(b"pycguard-probe-3\ncpython\n3.12\n3.12.1\ncb0d\n\n/x\n/x\n").is_none()
        );
    }
}
