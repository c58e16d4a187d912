//! The one question `why` asks the interpreter, isolated as every child is
//! ([`crate::interpreters::child`]: `-I -S -B`, 2.7 `-E -s -S -B` with relative entries
//! dropped, in `/`, environment reduced): its base `sys.path` (no `site`, so no `.pth`
//! line runs), `sys.builtin_module_names`, its frozen modules, the import suffixes, and —
//! on 3.x, where importing `site` under `-S` defines functions without running
//! `site.main()` — what `site.getsitepackages()` names for its prefixes and for a
//! virtualenv (computed with a placeholder prefix). Python 2's `site` runs `main()` when
//! imported, so there pycguard computes site-packages itself.
//!
//! The answer is lines `KEY =HEX =HEX…` (each value hex-encoded file-system bytes), so
//! any path survives the trip.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::importer::Rules;
use super::syspath::{Base, VENV_PLACEHOLDER};
use crate::interpreters::{child, Interpreter};

/// How long the probe may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The probe program (after [`child::PATH_GUARD`]); 2.7 and every 3.x.
const PROGRAM: &str = r#"import binascii
def enc(s):
    if isinstance(s, bytes):
        return s
    import os
    return os.fsencode(s)
out = []
def put(key, values):
    out.append(key + "".join([" =" + binascii.hexlify(enc(v)).decode("ascii") for v in values]))
v = sys.version_info
put("version", ["%d.%d" % (v[0], v[1])])
put("path", sys.path)
put("builtin", list(sys.builtin_module_names))
put("prefixes", [sys.prefix, sys.exec_prefix])
put("abiflags", [getattr(sys, "abiflags", "")])
candidates = ["_frozen_importlib", "_frozen_importlib_external", "zipimport", "__hello__", "__phello__", "__phello__.spam"]
if v[0] >= 3:
    import _imp
    if hasattr(_imp, "_frozen_module_names"):
        frozen = list(_imp._frozen_module_names())
    else:
        frozen = [n for n in candidates if _imp.is_frozen(n)]
    import importlib.machinery as m
    put("frozen", frozen)
    put("extension", m.EXTENSION_SUFFIXES)
    put("source", m.SOURCE_SUFFIXES)
    put("bytecode", m.BYTECODE_SUFFIXES)
    import site
    put("site", site.getsitepackages([sys.prefix, sys.exec_prefix]))
    placeholder = "@VENV@"
    saved = sys.prefix, sys.exec_prefix
    sys.prefix = sys.exec_prefix = placeholder
    try:
        put("venv-site", site.getsitepackages([placeholder]))
    finally:
        sys.prefix, sys.exec_prefix = saved
else:
    import imp
    put("frozen", [n for n in candidates if imp.is_frozen(n)])
    put("extension", [s for s, mode, kind in imp.get_suffixes() if kind == imp.C_EXTENSION])
    put("source", [s for s, mode, kind in imp.get_suffixes() if kind == imp.PY_SOURCE])
    put("bytecode", [s for s, mode, kind in imp.get_suffixes() if kind == imp.PY_COMPILED])
text = "pycguard-why-1\n" + "\n".join(out) + "\n"
if v[0] >= 3:
    sys.stdout.buffer.write(text.encode("ascii"))
else:
    sys.stdout.write(text)
"#;

/// Why the probe gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot run {}: {}", .0.display(), .1)]
    Spawn(PathBuf, String),
    #[error("{} gave no answer within {} s", .0.display(), TIMEOUT.as_secs())]
    Timeout(PathBuf),
    #[error("{} failed: {}", .0.display(), .1)]
    Failed(PathBuf, String),
    #[error("{} gave an answer pycguard cannot read", .0.display())]
    Unreadable(PathBuf),
}

/// What the probe learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub base: Base,
    pub rules: Rules,
}

/// Ask `interpreter` (see the module docs).
pub fn ask(interpreter: &Interpreter) -> Result<Facts, ProbeError> {
    let exe = interpreter.resolved.clone();
    let program = format!("{}{PROGRAM}", child::PATH_GUARD).replace("@VENV@", VENV_PLACEHOLDER);
    let mut process = interpreter
        .command(&program)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ProbeError::Spawn(exe.clone(), crate::read::io_message(&e)))?;
    let mut stdout = process.stdout.take().expect("piped");
    let mut stderr = process.stderr.take().expect("piped");
    let out = std::thread::spawn(move || read_limited(&mut stdout));
    let err = std::thread::spawn(move || read_limited(&mut stderr));
    let started = Instant::now();
    let status = loop {
        match process.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > TIMEOUT || crate::signals::interrupted() => {
                let _ = process.kill();
                let _ = process.wait();
                return Err(ProbeError::Timeout(exe));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(ProbeError::Failed(exe, e.to_string())),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        let err = String::from_utf8_lossy(&err);
        return Err(ProbeError::Failed(
            exe,
            format!("{status}: {}", err.lines().last().unwrap_or("").trim()),
        ));
    }
    parse(&out).ok_or(ProbeError::Unreadable(exe))
}

fn read_limited(pipe: &mut impl std::io::Read) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    let _ = pipe.take(1 << 20).read_to_end(&mut out);
    out
}

/// Parse the probe's answer.
pub fn parse(out: &[u8]) -> Option<Facts> {
    let text = std::str::from_utf8(out).ok()?;
    let mut lines = text.lines();
    if lines.next()? != "pycguard-why-1" {
        return None;
    }
    let mut fields: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
    for line in lines {
        let mut parts = line.split(' ');
        let key = parts.next()?;
        let values = parts
            .map(|p| unhex(p.strip_prefix('=')?))
            .collect::<Option<Vec<_>>>()?;
        fields.push((key, values));
    }
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    };
    let strings = |key: &str| -> Option<Vec<String>> {
        get(key)?
            .into_iter()
            .map(|v| String::from_utf8(v).ok())
            .collect()
    };
    let paths = |key: &str| -> Option<Vec<PathBuf>> {
        Some(
            get(key)?
                .into_iter()
                .map(|v| PathBuf::from(OsString::from_vec(v)))
                .collect(),
        )
    };
    let version = strings("version")?.into_iter().next()?;
    let (major, minor) = version.split_once('.')?;
    let version = (major.parse().ok()?, minor.parse().ok()?);
    let prefixes = paths("prefixes")?;
    let abiflags = strings("abiflags")?.into_iter().next().unwrap_or_default();
    let short = format!(
        "python{}.{}{}",
        version.0,
        version.1,
        if abiflags.contains('t') { "t" } else { "" }
    );
    let (site_packages, venv_site_packages) = if version.0 >= 3 {
        (paths("site")?, paths("venv-site")?)
    } else {
        // Python 2's site.getsitepackages, for each distinct prefix.
        let mut sites = Vec::new();
        let mut seen = Vec::new();
        for p in &prefixes {
            if seen.contains(p) {
                continue;
            }
            seen.push(p.clone());
            sites.push(p.join("lib").join(&short).join("site-packages"));
            sites.push(p.join("lib/site-python"));
        }
        (sites, Vec::new())
    };
    Some(Facts {
        base: Base {
            version,
            path: paths("path")?,
            site_packages,
            venv_site_packages,
            user_site_suffix: PathBuf::from("lib").join(&short).join("site-packages"),
        },
        rules: Rules {
            version,
            builtin: strings("builtin")?.into_iter().collect::<BTreeSet<_>>(),
            frozen: strings("frozen")?.into_iter().collect(),
            extension_suffixes: strings("extension")?,
            source_suffixes: strings("source")?,
            bytecode_suffixes: strings("bytecode")?,
        },
    })
}

/// Hex text to bytes.
fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(key: &str, values: &[&str]) -> String {
        let mut s = key.to_owned();
        for v in values {
            s.push_str(" =");
            for b in v.bytes() {
                s.push_str(&format!("{b:02x}"));
            }
        }
        s
    }

    #[test]
    fn parses_an_answer() {
        let text = [
            "pycguard-why-1".to_owned(),
            line("version", &["3.12"]),
            line("path", &["/py/lib/python312.zip", "/py/lib/python3.12"]),
            line("builtin", &["sys", "_imp"]),
            line("prefixes", &["/py", "/py"]),
            line("abiflags", &[""]),
            line("frozen", &["os"]),
            line("extension", &[".so"]),
            line("source", &[".py"]),
            line("bytecode", &[".pyc"]),
            line("site", &["/py/lib/python3.12/site-packages"]),
            line(
                "venv-site",
                &["/@pycguard-venv@/lib/python3.12/site-packages"],
            ),
        ]
        .join("\n");
        let facts = parse(text.as_bytes()).unwrap();
        assert_eq!(facts.base.version, (3, 12));
        assert_eq!(facts.base.path.len(), 2);
        assert_eq!(
            facts.base.user_site_suffix,
            PathBuf::from("lib/python3.12/site-packages")
        );
        assert!(facts.rules.frozen.contains("os"));
        assert!(parse(b"something else\n").is_none());
        assert!(parse(b"pycguard-why-1\nversion =zz\n").is_none());
    }
}
