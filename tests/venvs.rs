//! Virtual environments are not the project: a directory holding `pyvenv.cfg` found
//! beneath a PATH, and `.tox`, `.nox`, `node_modules`, are skipped by every command (as
//! ruff and pyclean skip them), said in one line, and included with `--include-venvs`; a
//! PATH that is one is walked. And the interpreter a tree without caches is for: its
//! virtualenv, else the `python3` on `PATH` (through pyenv's shims too).
//!
//! The virtualenvs are real (`python -m venv --without-pip`), their caches written by the
//! interpreters; `PATH` is set by each test.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{pycguard, set_mtime, Interp, Tree};
use serde_json::Value;

const T: u64 = 1_700_000_000;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(dir: &Path, args: &[&str]) -> Output {
    pycguard().current_dir(dir).args(args).output().unwrap()
}

/// Python 3.8+ series, oldest first, one build each.
fn series() -> Vec<Interp> {
    let mut found: Vec<Interp> = common::interpreters_from(3, 8);
    found.sort_by_key(|i| (i.major, i.minor));
    found.dedup_by_key(|i| (i.major, i.minor));
    found
}

fn make_venv(interp: &Interp, dir: &Path) {
    let out = interp
        .command(Path::new("/"))
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "venv with {}: {}",
        interp.version,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A project with a module of its own, a real `.venv` holding an installed module, and
/// `.tox`, `.nox` and `node_modules` holding Python files; every source has a cache.
fn project(interp: &Interp) -> Tree {
    let tree = Tree::new();
    make_venv(interp, &tree.join("proj/.venv"));
    let site = format!(
        "proj/.venv/lib/python{}.{}/site-packages",
        interp.major, interp.minor
    );
    let files = [
        "proj/pkg/__init__.py".to_owned(),
        "proj/pkg/mod.py".to_owned(),
        format!("{site}/installed.py"),
        "proj/.tox/py312/lib/toxed.py".to_owned(),
        "proj/.nox/tests/noxed.py".to_owned(),
        "proj/node_modules/gyp/gyp.py".to_owned(),
    ];
    for f in &files {
        let p = tree.write(f, b"VALUE = 'old'\n");
        set_mtime(&p, T, 0);
    }
    let rel: Vec<&str> = files.iter().map(String::as_str).collect();
    interp.compile(tree.path(), &rel, "timestamp", 0);
    tree
}

fn count(out: &Output) -> u64 {
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad json ({e}): {}", text(out)));
    report["summary"]["caches"].as_u64().unwrap()
}

#[test]
fn environments_beneath_a_path_are_skipped_by_every_command() {
    let Some(interp) = series().pop() else {
        eprintln!("SKIP: no Python 3.8+ to make a virtualenv");
        return;
    };
    let tree = project(&interp);
    let proj = tree.join("proj");
    let python = interp.path.to_str().unwrap();
    let tag = interp.tag().unwrap();
    let installed = proj.join(format!(
        ".venv/lib/python{}.{}/site-packages/__pycache__/installed.{tag}.pyc",
        interp.major, interp.minor
    ));
    let line = "skipped 1 virtual environment (.venv) and 3 tool environment directories (.nox, .tox, node_modules); --include-venvs to include them";

    // check: the project's two caches only, and the line.
    let out = run(&proj, &["check"]);
    assert!(text(&out).contains("2 caches checked"), "{}", text(&out));
    assert!(text(&out).contains(line), "{}", text(&out));
    let out = run(&proj, &["check", "--format", "json"]);
    assert_eq!(count(&out), 2, "{}", text(&out));
    let out = run(&proj, &["check", "--format", "json", "--include-venvs"]);
    assert_eq!(count(&out), 6, "{}", text(&out));
    // Given as the PATH itself, an environment is walked.
    let out = run(&proj, &["check", "--format", "json", ".venv"]);
    assert_eq!(count(&out), 1, "{}", text(&out));
    let out = run(tree.path(), &["check", "--format", "json", "proj/.tox"]);
    assert_eq!(count(&out), 1, "{}", text(&out));

    // fix: the environments' stale caches are left.
    for f in [
        format!(
            ".venv/lib/python{}.{}/site-packages/installed.py",
            interp.major, interp.minor
        ),
        "pkg/mod.py".into(),
        ".tox/py312/lib/toxed.py".into(),
    ] {
        let p = proj.join(&f);
        fs::write(&p, b"VALUE = 'newer'\n").unwrap();
        set_mtime(&p, T + 60, 0);
    }
    let venv_before = fs::read(&installed).unwrap();
    let out = run(&proj, &["fix", "--python", python]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("repaired 1, deleted 0"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains(line), "{}", text(&out));
    assert_eq!(fs::read(&installed).unwrap(), venv_before);

    // compile: nothing inside the environments is compiled.
    fs::remove_file(&installed).unwrap();
    let out = run(&proj, &["compile", "--python", python]);
    assert!(
        text(&out).contains("compiled 0, 2 up to date"),
        "{}",
        text(&out)
    );
    assert!(!installed.exists());
    let out = run(&proj, &["compile", "--python", python, "--include-venvs"]);
    assert!(
        text(&out).contains("compiled 2, 4 up to date"),
        "{}",
        text(&out)
    );
    assert!(installed.is_file());

    // clean: the project's caches go, the environments' stay (pyclean removes the same).
    let out = run(&proj, &["clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("removed 2 caches"), "{}", text(&out));
    assert!(text(&out).contains(line), "{}", text(&out));
    assert!(installed.is_file());
    assert!(proj
        .join(format!(".tox/py312/lib/__pycache__/toxed.{tag}.pyc"))
        .is_file());
    assert!(!proj.join("pkg/__pycache__").exists());
    let out = run(&proj, &["clean", "--include-venvs"]);
    assert!(text(&out).contains("removed 4 caches"), "{}", text(&out));
    assert!(!installed.exists());
    assert!(!text(&out).contains("skipped"), "{}", text(&out));
}

/// The mirror of a virtualenv under a pycache prefix (a service running the venv's
/// Python with `PYTHONPYCACHEPREFIX` inside the tree) is skipped as the venv is.
#[test]
fn a_virtualenv_mirrored_under_a_prefix_is_skipped_too() {
    let Some(interp) = series().pop() else {
        eprintln!("SKIP: no Python 3.8+ to make a virtualenv");
        return;
    };
    let tree = project(&interp);
    let proj = tree.join("proj");
    let prefix = proj.join("instance/tmp");
    let out = Interp {
        path: proj.join(".venv/bin/python"),
        ..interp.clone()
    }
    .command(&proj)
    .env("PYTHONPYCACHEPREFIX", &prefix)
    .args(["-c", "import pkg.mod, installed"])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mirrored: Vec<PathBuf> = common::snapshot(&prefix)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains("/.venv/") && p.is_file())
        .collect();
    assert!(
        !mirrored.is_empty(),
        "the venv's module is cached under the prefix"
    );
    for args in [
        &["check"][..],
        &["check", "--pycache-prefix", prefix.to_str().unwrap()],
    ] {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let out = run(&proj, &all);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        for c in report["caches"].as_array().unwrap() {
            let path = c["path"].as_str().unwrap();
            assert!(!path.contains("/.venv/"), "{args:?}: {c}");
            assert_ne!(c["state"], "orphan", "{args:?}: {c}");
        }
        let out = run(&proj, args);
        assert!(
            text(&out).contains("skipped 1 virtual environment (.venv)"),
            "{args:?}: {}",
            text(&out)
        );
    }
    let out = run(&proj, &["check", "--format", "json", "--include-venvs"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let venv_mirrored = report["caches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["path"].as_str().unwrap().starts_with("./instance/tmp/")
                && c["path"].as_str().unwrap().contains("/.venv/")
        })
        .count();
    assert_eq!(venv_mirrored, mirrored.len(), "{report}");
}

/// A directory on `PATH` whose `python3` is `target`.
fn bin_with_python3(tree: &Tree, target: &Path) -> PathBuf {
    let bin = tree.join("bin");
    fs::create_dir_all(&bin).unwrap();
    symlink(target, bin.join("python3")).unwrap();
    bin
}

fn compile_with_path(dir: &Path, path: &str, extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = pycguard();
    cmd.current_dir(dir).env("PATH", path).arg("compile");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Does `dir/__pycache__` hold exactly one cache, of `tag`?
fn compiled_for(dir: &Path, tag: &str) -> bool {
    let names: Vec<String> = fs::read_dir(dir.join("__pycache__"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names == [format!("a.{tag}.pyc")]
}

#[test]
fn compile_is_for_the_virtualenv_in_the_tree_then_python3_on_path() {
    let all = series();
    if all.len() < 2 {
        eprintln!("SKIP: choosing an interpreter needs two Python 3.8+ series");
        return;
    }
    let (venv_python, path_python) = (&all[0], &all[all.len() - 1]);
    let tree = Tree::new();
    let bin = bin_with_python3(&tree, &path_python.path);
    let path = format!("{}:/usr/bin:/bin", bin.display());

    // No virtualenv: the python3 PATH runs (not /usr/bin/python3, not the first found).
    let plain = tree.join("plain");
    let p = tree.write("plain/a.py", b"VALUE = 'a'\n");
    set_mtime(&p, T, 0);
    let out = compile_with_path(&plain, &path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "compiling for Python {} ({}: the first python3 on PATH)",
            path_python.version,
            bin.join("python3").display()
        )),
        "{}",
        text(&out)
    );
    assert!(
        compiled_for(&plain, &path_python.tag().unwrap()),
        "{}",
        text(&out)
    );
    assert_eq!(path_python.import_value(&plain, "a"), Ok("a".into()));

    // A virtualenv inside the tree wins over PATH.
    let proj = tree.join("proj");
    make_venv(venv_python, &proj.join(".venv"));
    let p = tree.write("proj/a.py", b"VALUE = 'a'\n");
    set_mtime(&p, T, 0);
    let out = compile_with_path(&proj, &path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "compiling for Python {} (.venv/bin/python: the virtualenv in this tree)",
            venv_python.version
        )),
        "{}",
        text(&out)
    );
    assert!(
        compiled_for(&proj, &venv_python.tag().unwrap()),
        "{}",
        text(&out)
    );
    assert_eq!(venv_python.import_value(&proj, "a"), Ok("a".into()));
}

/// pyenv's shims on PATH stand for the version pyenv selects: nothing is run to learn it.
#[test]
fn compile_follows_pyenv_shims_to_the_selected_version() {
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let root = Path::new(&home).join(".pyenv");
    if !root.join("shims/python3").is_file() {
        eprintln!("SKIP: no pyenv shims in ~/.pyenv/shims");
        return;
    }
    let pyenv: Vec<Interp> = series()
        .into_iter()
        .filter(|i| i.path.starts_with(root.join("versions")))
        .collect();
    let Some(chosen) = pyenv.first() else {
        eprintln!("SKIP: no pyenv-installed Python 3.8+");
        return;
    };
    let version = chosen
        .path
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .file_name()
        .unwrap();
    let version = version.to_str().unwrap();
    let tree = Tree::new();
    let p = tree.write("a.py", b"VALUE = 'a'\n");
    set_mtime(&p, T, 0);
    let path = format!("{}:/usr/bin:/bin", root.join("shims").display());
    // A .python-version in the tree selects it, as pyenv reads it from the current directory.
    fs::write(tree.join(".python-version"), format!("{version}\n")).unwrap();
    let out = compile_with_path(tree.path(), &path, &[("PYENV_VERSION", "")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("compiling for Python {}", chosen.version))
            && text(&out).contains(&format!("pyenv {version} from")),
        "{}",
        text(&out)
    );
    assert!(
        compiled_for(tree.path(), &chosen.tag().unwrap()),
        "{}",
        text(&out)
    );
}
