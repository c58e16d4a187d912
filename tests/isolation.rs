//! No user code ever runs: every interpreter pycguard starts (probes, deep and compile
//! workers) is isolated from the directory pycguard runs in and from its environment.
//!
//! A "hostile" directory holds modules named like the standard-library modules the probe
//! and the worker import (and the ones Python imports at start-up), `sitecustomize`,
//! `usercustomize`, `site`, package shadows (`importlib/`, `encodings/`, `collections/`)
//! and a `.pth` file; each one, if executed, appends a marker file naming itself and the
//! interpreter that ran it. `check --deep`, `interpreters`, `fix --dry-run --deep`, `fix`,
//! `compile --dry-run` and `compile` then run on a tree with caches of every interpreter
//! on the machine, three times on identical trees: from a clean directory with a clean
//! environment, from the hostile directory, and with the hostile directory (and a hostile
//! user base, start-up file, home, locale…) in pycguard's own environment. Every run uses a
//! fresh pycguard cache directory, so every interpreter is really probed. Then: no marker
//! exists, nothing was written in the hostile directories, and every output is the same
//! as the clean run's (tree paths aside) — for every interpreter.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use common::{pycguard, set_mtime, snapshot, Interp, Tree};

/// Modules a shadow is planted for: what the probe and the worker import, what the
/// interpreters import while starting, and what `site` would run.
const SHADOWS: &[&str] = &[
    "binascii",
    "struct",
    "copyreg",
    "copy_reg",
    "_bootlocale",
    "sitecustomize",
    "usercustomize",
    "site",
    "os",
    "marshal",
    "imp",
    "signal",
    "warnings",
    "codecs",
    "io",
    "abc",
    "types",
    "stat",
    "posixpath",
    "genericpath",
    "_collections_abc",
    "_sitebuiltins",
    "zipimport",
    "linecache",
    "traceback",
    "re",
    "time",
    "locale",
    "functools",
    "keyword",
    "operator",
    "reprlib",
    "heapq",
    "enum",
    "tokenize",
    "token",
    "weakref",
    "_weakrefset",
    "copy",
    "string",
    "opcode",
    "dis",
    "inspect",
    "ast",
    "contextlib",
    "sre_compile",
    "sre_parse",
    "sre_constants",
    "fnmatch",
    "threading",
    "UserDict",
    "_abcoll",
    "__future__",
    "importlib/__init__",
    "importlib/util",
    "importlib/machinery",
    "importlib/_bootstrap_external",
    "encodings/__init__",
    "encodings/utf_8",
    "encodings/aliases",
    "encodings/ascii",
    "collections/__init__",
    "startup",
];

/// The code of a shadow module: record who ran it, using only the built-in `sys`.
fn shadow_code(markers: &Path, name: &str) -> String {
    format!(
        "import sys\nopen({:?} + '/' + {:?} + '@' + sys.version.split()[0], 'a').close()\n",
        markers.display().to_string(),
        name.replace('/', "."),
    )
}

/// The hostile directory (cwd variant) and a hostile user base with a `.pth`.
struct Hostile {
    dir: Tree,
    userbase: Tree,
    markers: Tree,
}

fn hostile(interps: &[Interp]) -> Hostile {
    let h = Hostile {
        dir: Tree::new(),
        userbase: Tree::new(),
        markers: Tree::new(),
    };
    for name in SHADOWS {
        h.dir.write(
            format!("{name}.py"),
            shadow_code(h.markers.path(), name).as_bytes(),
        );
    }
    let pth = format!(
        "import sys; open({:?} + '/pth@' + sys.version.split()[0], 'a').close()\n",
        h.markers.path().display().to_string()
    );
    h.dir.write("evil.pth", pth.as_bytes());
    for i in interps {
        let site = format!("lib/python{}.{}/site-packages", i.major, i.minor);
        h.userbase.write(format!("{site}/evil.pth"), pth.as_bytes());
        h.userbase.write(
            format!("{site}/usercustomize.py"),
            shadow_code(h.markers.path(), "usercustomize").as_bytes(),
        );
    }
    h
}

/// The hostile variables set in pycguard's own environment.
fn hostile_env(h: &Hostile) -> Vec<(&'static str, OsString)> {
    let dir = h.dir.path().as_os_str().to_owned();
    let mut startup = dir.clone();
    startup.push("/startup.py");
    vec![
        ("PYTHONPATH", dir.clone()),
        ("PYTHONHOME", dir.clone()),
        ("PYTHONSTARTUP", startup),
        ("PYTHONUSERBASE", h.userbase.path().as_os_str().to_owned()),
        ("PYTHONPLATLIBDIR", dir.clone()),
        ("PYTHONINSPECT", "1".into()),
        ("PYTHONWARNINGS", "error".into()),
        ("PYTHONIOENCODING", "ascii".into()),
        ("PYTHONOPTIMIZE", "2".into()),
        ("PYTHONCASEOK", "1".into()),
        ("PYTHONHASHSEED", "1".into()),
        ("LC_ALL", "POSIX".into()),
        ("LANG", "C".into()),
        ("LD_LIBRARY_PATH", dir),
    ]
}

/// A tree with, per interpreter, a fresh cache, a same-size edit with the mtime restored
/// (hidden-stale under --deep), a stale cache, a source without cache and (3.x) a
/// non-ASCII module without cache. Identical (but for its path) each time it is built.
fn build_tree(interps: &[Interp], t: u64) -> Tree {
    let tree = Tree::new();
    for i in interps {
        let d = dir_of(i);
        let mut files = vec!["fresh.py", "edited.py", "stale.py"];
        for f in &files {
            let p = tree.write(format!("{d}/{f}"), b"VALUE = 'old'\n");
            set_mtime(&p, t, 0);
        }
        i.compile(&tree.join(&d), &files, "timestamp", 0);
        files.clear();
        if i.major >= 3 {
            // No cache: `compile` writes it, naming the source as the importer would.
            let p = tree.write(format!("{d}/na\u{ef}ve.py"), b"VALUE = 'old'\n");
            set_mtime(&p, t, 0);
        }
        let p = tree.write(format!("{d}/edited.py"), b"VALUE = 'new'\n");
        set_mtime(&p, t, 0);
        let p = tree.write(format!("{d}/stale.py"), b"VALUE = 'newer'\n");
        set_mtime(&p, t + 10, 0);
        let p = tree.write(format!("{d}/missing.py"), b"VALUE = 'no cache'\n");
        set_mtime(&p, t, 0);
    }
    tree
}

fn dir_of(i: &Interp) -> String {
    format!("v{}", i.version.replace('.', "_"))
}

/// One pycguard run: `args` then the tree, from `cwd`, with `env` added and a fresh cache
/// directory. Returns (exit code, stdout + stderr with the tree path replaced by TREE).
fn run(cwd: &Path, env: &[(&str, OsString)], args: &[&str], tree: &Path) -> (i32, String) {
    let cache = Tree::new();
    let mut cmd = pycguard();
    cmd.current_dir(cwd)
        .env("PYCGUARD_CACHE_DIR", cache.path())
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .args(args)
        .arg(tree);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text
        .replace(&tree.display().to_string(), "TREE")
        .lines()
        .filter(|l| !l.contains(" checked in ")) // timings
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    (out.status.code().unwrap_or(-1), text)
}

const COMMANDS: &[&[&str]] = &[
    &["check", "--deep"],
    &["check", "--deep", "--format", "json"],
    &["interpreters"],
    &["fix", "--dry-run", "--deep"],
    &["fix"],
    &["compile", "--dry-run"],
    &["compile"],
    &["check", "--deep", "--format", "json"],
];

/// Run every command in order on `tree`; the outputs by step.
fn run_all(cwd: &Path, env: &[(&str, OsString)], tree: &Path) -> Vec<(String, i32, String)> {
    COMMANDS
        .iter()
        .map(|args| {
            let (code, out) = run(cwd, env, args, tree);
            (args.join(" "), code, out)
        })
        .collect()
}

/// Markers found, by interpreter version.
fn markers(h: &Hostile) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in fs::read_dir(h.markers.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let (module, version) = name.split_once('@').unwrap_or((&name, "?"));
        by.entry(version.to_owned())
            .or_default()
            .push(module.to_owned());
    }
    by
}

/// Whether the `co_filename` in a cache is `source` as an interpreter in a UTF-8 locale
/// names it (`os.fsdecode`): "True" or what it is instead. Read in a clean environment.
fn co_filename_matches(i: &Interp, cache: &Path, source: &Path) -> String {
    let code = "import sys, marshal, os\n\
        d = open(sys.argv[1], 'rb').read()\n\
        c = marshal.loads(d[16 if sys.version_info >= (3, 7) else 12:])\n\
        sys.stdout.write('True' if c.co_filename == os.fsdecode(sys.argv[2]) else ascii(c.co_filename))\n";
    i.run(
        Path::new("/"),
        code,
        &[cache.as_os_str(), source.as_os_str()],
    )
    .trim()
    .to_owned()
}

#[test]
fn no_user_code_runs_from_the_directory_or_the_environment() {
    let interps = common::interpreters();
    if interps.is_empty() {
        eprintln!("SKIP: no interpreter found");
        return;
    }
    let h = hostile(&interps);
    let clean_cwd = Tree::new();
    let before_dir = snapshot(h.dir.path());
    let before_userbase = snapshot(h.userbase.path());
    let t = common::now_secs() - 1000;
    let trees = [
        build_tree(&interps, t),
        build_tree(&interps, t),
        build_tree(&interps, t),
    ];
    let hostile_vars = hostile_env(&h);
    let (clean, (from_dir, from_env)) = std::thread::scope(|s| {
        let clean = s.spawn(|| run_all(clean_cwd.path(), &[], trees[0].path()));
        let from_dir = s.spawn(|| run_all(h.dir.path(), &[], trees[1].path()));
        let from_env = run_all(clean_cwd.path(), &hostile_vars, trees[2].path());
        (clean.join().unwrap(), (from_dir.join().unwrap(), from_env))
    });
    let hit = markers(&h);
    let mut failures = Vec::new();
    for i in &interps {
        let markers = hit.get(&i.version).cloned().unwrap_or_default();
        let listed = clean[2]
            .2
            .lines()
            .any(|l| l.contains(&format!(" {} ", i.version)));
        eprintln!(
            "isolation: Python {} ({}): {} marker(s){}; listed by `interpreters`: {listed}",
            i.version,
            i.path.display(),
            markers.len(),
            if markers.is_empty() {
                String::new()
            } else {
                format!(" ({})", markers.join(", "))
            }
        );
        if !markers.is_empty() {
            failures.push(format!(
                "Python {} executed {}",
                i.version,
                markers.join(", ")
            ));
        }
        if !listed {
            failures.push(format!("Python {} not listed:\n{}", i.version, clean[2].2));
        }
    }
    if let Some(other) = hit
        .keys()
        .find(|v| !interps.iter().any(|i| &i.version == *v))
    {
        failures.push(format!("markers of {other}: {:?}", hit[other]));
    }
    for (variant, runs) in [
        ("from the hostile directory", &from_dir),
        ("with the hostile environment", &from_env),
    ] {
        for ((cmd, code, out), (_, clean_code, clean_out)) in runs.iter().zip(&clean) {
            if code != clean_code || out != clean_out {
                failures.push(format!(
                    "`{cmd}` {variant} differs (exit {code} vs {clean_code}):\n--- clean\n{clean_out}--- {variant}\n{out}"
                ));
            }
        }
    }
    // The clean run did prove and repair something (so the comparisons mean something).
    assert!(clean[0].2.contains("hidden-stale"), "{}", clean[0].2);
    assert!(clean[4].2.contains("recompiled"), "{}", clean[4].2);
    // Nothing was written in the hostile directories (no cache of any shadow module).
    if snapshot(h.dir.path()) != before_dir {
        failures.push("the hostile directory changed (caches written?)".into());
    }
    if snapshot(h.userbase.path()) != before_userbase {
        failures.push("the hostile user base changed".into());
    }
    // Caches compiled with a hostile locale name the source the way a clean run does.
    for i in interps.iter().filter(|i| i.major >= 3) {
        let tag = i.tag().unwrap();
        for tree in [&trees[0], &trees[2]] {
            let source = tree.join(dir_of(i)).join("na\u{ef}ve.py");
            let cache = tree
                .join(dir_of(i))
                .join("__pycache__")
                .join(format!("na\u{ef}ve.{tag}.pyc"));
            let named = co_filename_matches(i, &cache, &source);
            if named != "True" {
                failures.push(format!(
                    "Python {}: the compiled co_filename is {named}, not {}",
                    i.version,
                    source.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The explicit --python error is the same for every command, and nothing is run.
#[test]
fn unusable_python_flags_are_usage_errors_for_every_command() {
    let tree = Tree::new();
    tree.write("pkg/m.py", b"X = 1\n");
    let not_exec = tree.write("notexec", b"#!/bin/sh\n");
    let private = Tree::new();
    let marker = private.join("ran");
    let writable = private.write(
        "python3",
        format!("#!/bin/sh\ntouch {}\n", marker.display()).as_bytes(),
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o777)).unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (tree.path().to_path_buf(), "is a directory"),
        (not_exec, "not executable"),
        (tree.join("no-such-python"), "does not exist"),
        (writable.clone(), "writable by everyone"),
    ];
    for (python, why) in &cases {
        for cmd in [
            &["check"][..],
            &["check", "--deep"],
            &["fix"],
            &["fix", "--dry-run"],
            &["compile"],
            &["compile", "--dry-run"],
            &["interpreters"],
        ] {
            let out = pycguard()
                .current_dir(tree.path())
                .args(cmd)
                .arg("--python")
                .arg(python)
                .arg(".")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd:?} {}: {err}",
                python.display()
            );
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(
                err.starts_with("pycguard: error: --python ") && err.contains(why),
                "{cmd:?}: {err}"
            );
        }
    }
    assert!(!marker.exists(), "the writable --python was run");
    assert!(!tree.join("pkg/__pycache__").exists());
}
