//! The config file (`[tool.pycguard]` in `pyproject.toml`, `pycguard.toml`,
//! `.pycguard.toml`): which file is found, that flags override it, what every key does, and
//! the exact messages for a file that cannot be used (snapshots).
//!
//! Most trees here hold caches no interpreter is needed for: a `__pycache__/m.TAG.pyc`
//! whose source does not exist is an orphan (a warning) whatever its bytes, so these tests
//! run on any machine. The few keys whose effect needs an interpreter (`deep`,
//! `invalidation-mode`) use one if the machine has it and print `SKIP:` otherwise.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Output;

use common::{pycguard, Tree};
use serde_json::Value;

/// A tree with an orphan cache in each of `dirs` (`DIR/__pycache__/m.cpython-312.pyc`).
fn orphans(dirs: &[&str]) -> Tree {
    let tree = Tree::new();
    for dir in dirs {
        tree.write(
            format!("{dir}/__pycache__/m.cpython-312.pyc"),
            b"not a cache",
        );
    }
    tree
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    pycguard().current_dir(dir).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

/// The directories (first path component) of the caches `check --output-format json` lists.
fn listed(dir: &Path, args: &[&str]) -> BTreeSet<String> {
    let mut all = vec!["check", "--output-format", "json"];
    all.extend(args);
    let out = run_in(dir, &all);
    json(&out)["caches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let p = c["path"].as_str().unwrap();
            let p = p.strip_prefix("./").unwrap_or(p);
            p.split('/').next().unwrap().to_owned()
        })
        .collect()
}

/// A PyPy 3.10 cache (magic 384) whose header records a source of `size` bytes.
fn pypy310_cache(size: u8) -> Vec<u8> {
    let mut bytes = vec![
        0x80, 0x01, 0x0d, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, size, 0, 0, 0,
    ];
    bytes.extend_from_slice(b"\xe3body");
    bytes
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The message of a command that must fail with exit 2, the tree's path replaced by `[TREE]`.
fn usage_error(tree: &Tree, args: &[&str]) -> String {
    let out = run_in(tree.path(), args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let root = fs::canonicalize(tree.path()).unwrap();
    String::from_utf8(out.stderr)
        .unwrap()
        .replace(&root.display().to_string(), "[TREE]")
        .replace(&tree.path().display().to_string(), "[TREE]")
}

#[test]
fn one_file_per_directory_in_ruffs_order() {
    let tree = orphans(&["a", "b", "c", "d"]);
    tree.write(
        "pyproject.toml",
        b"[project]\nname = \"x\"\n\n[tool.pycguard]\nexclude = [\"c\"]\n",
    );
    tree.write("pycguard.toml", b"exclude = [\"b\"]\n");
    tree.write(".pycguard.toml", b"exclude = [\"a\"]\n");
    assert_eq!(listed(tree.path(), &[]), set(&["b", "c", "d"]));
    fs::remove_file(tree.join(".pycguard.toml")).unwrap();
    assert_eq!(listed(tree.path(), &[]), set(&["a", "c", "d"]));
    fs::remove_file(tree.join("pycguard.toml")).unwrap();
    assert_eq!(listed(tree.path(), &[]), set(&["a", "b", "d"]));
    // A pyproject.toml without [tool.pycguard] is not a config file: the search goes on.
    tree.write(
        "pyproject.toml",
        b"[project]\nname = \"x\"\n[tool.ruff]\nline-length = 99\n",
    );
    assert_eq!(listed(tree.path(), &[]), set(&["a", "b", "c", "d"]));
    // A directory named like a config file is not one.
    fs::create_dir(tree.join("pycguard.toml")).unwrap();
    assert_eq!(listed(tree.path(), &[]), set(&["a", "b", "c", "d"]));
}

#[test]
fn the_closest_file_above_the_first_path_wins_without_merging() {
    let tree = orphans(&["proj/a", "proj/b", "other/a", "other/b"]);
    tree.write("pycguard.toml", b"exclude = [\"a\"]\n");
    tree.write("proj/pycguard.toml", b"include-venvs = true\n");
    let sub = |rel: &str| {
        let mut names: BTreeSet<String> = BTreeSet::new();
        let out = run_in(
            Path::new("/"),
            &[
                "check",
                "--output-format",
                "json",
                tree.join(rel).to_str().unwrap(),
            ],
        );
        for c in json(&out)["caches"].as_array().unwrap() {
            let p = c["path"].as_str().unwrap();
            let rest = p.strip_prefix(tree.path().to_str().unwrap()).unwrap();
            names.insert(rest.split('/').nth(2).unwrap().to_owned());
        }
        names
    };
    // proj/pycguard.toml is the closest: the top file's exclude does not apply there.
    assert_eq!(sub("proj"), set(&["a", "b"]));
    // other/ has none of its own: the top file applies (the current directory is `/`).
    assert_eq!(sub("other"), set(&["b"]));
    // A file as the first PATH: the config at or above its directory.
    tree.write("third/x/__pycache__/m.cpython-312.pyc", b"not a cache");
    tree.write("third/pycguard.toml", b"output-format = \"json\"\n");
    let out = run_in(
        tree.path(),
        &["check", "third/x/__pycache__/m.cpython-312.pyc"],
    );
    assert_eq!(json(&out)["summary"]["caches"], 1, "{}", text(&out));
    // The first PATH decides for all of them.
    let out = run_in(
        tree.path(),
        &["check", "--output-format", "json", "proj", "other"],
    );
    let doc = json(&out);
    let all: Vec<&str> = doc["caches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(all.len(), 4, "{all:?}");
}

#[test]
fn flags_override_the_file_and_isolated_ignores_it() {
    let tree = orphans(&["a", "b"]);
    tree.write(
        "pycguard.toml",
        b"exclude = [\"a\"]\noutput-format = \"json\"\n\n[check]\nstrict = true\n",
    );
    // The file's output format, exclude and strict (an orphan is a warning).
    let out = run_in(tree.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(json(&out)["summary"]["caches"], 1);
    // Each flag wins over the file.
    let out = run_in(tree.path(), &["check", "--output-format", "human"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 cache checked"),
        "{}",
        text(&out)
    );
    let out = run_in(tree.path(), &["check", "--format", "human"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 cache checked"),
        "{}",
        text(&out)
    );
    assert_eq!(listed(tree.path(), &["--exclude", "b"]), set(&["a"]));
    let out = run_in(tree.path(), &["check", "--exit-zero"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // --isolated reads no file; --config reads the one named.
    let out = run_in(tree.path(), &["check", "--isolated"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 caches checked"),
        "{}",
        text(&out)
    );
    tree.write("elsewhere/custom.toml", b"exclude = [\"b\"]\n");
    tree.write(
        "elsewhere/pyproject.toml",
        b"[tool.pycguard]\nexclude = [\"a\", \"b\"]\n",
    );
    assert_eq!(
        listed(tree.path(), &["--config", "elsewhere/custom.toml"]),
        set(&["a"])
    );
    assert_eq!(
        listed(tree.path(), &["--config", "elsewhere/pyproject.toml"]),
        BTreeSet::new()
    );
    let out = run_in(tree.path(), &["check", "--config", "x.toml", "--isolated"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_command_table_overrides_the_top_level_for_that_command() {
    let tree = orphans(&["a", "b"]);
    tree.write(
        "pycguard.toml",
        b"output-format = \"json\"\nexclude = [\"a\"]\n# a top-level key clean has no flag for\ntimeout = 5\n\n[clean]\noutput-format = \"human\"\nexclude = [\"b\"]\n",
    );
    let out = run_in(tree.path(), &["check"]);
    assert_eq!(json(&out)["summary"]["caches"], 1, "{}", text(&out));
    let out = run_in(tree.path(), &["clean", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "would remove ./a/__pycache__/m.cpython-312.pyc\nwould remove ./a/__pycache__/\nwould remove 1 cache, 1 empty __pycache__ directory\n"
    );
}

/// Every key, by what it does (keys whose value is only checked are in
/// `bad_values_exit_2_naming_the_line`).
#[test]
fn every_key_does_what_its_flag_does() {
    // exclude, include-venvs
    let tree = orphans(&["a", "venv/pkg"]);
    tree.write("venv/pyvenv.cfg", b"home = /usr/bin\n");
    assert_eq!(listed(tree.path(), &[]), set(&["a"]));
    tree.write(
        "pycguard.toml",
        b"include-venvs = true\nexclude = [\"nothing\"]\n",
    );
    assert_eq!(listed(tree.path(), &[]), set(&["a", "venv"]));
    tree.write("pycguard.toml", b"exclude = [\"a\"]\njobs = 1\n");
    assert_eq!(listed(tree.path(), &[]), BTreeSet::new());

    // cache-dir (relative to the file, wherever pycguard runs), no-cache, and
    // PYCGUARD_CACHE_DIR above the file. The scan memo is written for a well-formed cache.
    match common::interpreters().into_iter().find(|i| i.major == 3) {
        None => eprintln!("SKIP: no Python 3 to write a cache the scan memo keeps"),
        Some(python) => {
            let tree = Tree::new();
            tree.write("proj/a.py", b"A = 1\n");
            python.compile(&tree.join("proj"), &["a.py"], "timestamp", 0);
            tree.write("proj/pycguard.toml", b"cache-dir = \"../memo\"\n");
            let check_from_root = |extra: &[(&str, &Path)]| {
                let mut cmd = pycguard();
                cmd.current_dir("/").env_remove("PYCGUARD_CACHE_DIR").args([
                    "check",
                    "-q",
                    tree.join("proj").to_str().unwrap(),
                ]);
                for (k, v) in extra {
                    cmd.env(k, v);
                }
                let out = cmd.output().unwrap();
                assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            };
            check_from_root(&[]);
            assert!(
                tree.join("memo").is_dir(),
                "cache-dir is resolved against the file"
            );
            let env_dir = tree.join("from-env");
            check_from_root(&[("PYCGUARD_CACHE_DIR", &env_dir)]);
            assert!(env_dir.is_dir(), "PYCGUARD_CACHE_DIR wins over the file");
            tree.write("proj/pycguard.toml", b"no-cache = true\n");
            let unused = tree.join("unused");
            check_from_root(&[("PYCGUARD_CACHE_DIR", &unused)]);
            assert!(!unused.exists(), "no-cache = true: nothing written");
        }
    }

    // pycache-prefix (relative to the file): its caches are found.
    let tree = Tree::new();
    tree.write("app/m.py", b"M = 1\n");
    let real = fs::canonicalize(tree.path()).unwrap();
    let mirror = format!("prefix{}/app/m.cpython-312.pyc", real.display());
    tree.write(&mirror, b"not a cache");
    let before = listed(tree.path(), &["app"]);
    assert!(before.is_empty(), "{before:?}");
    tree.write("pycguard.toml", b"pycache-prefix = \"prefix\"\n");
    let out = run_in(tree.path(), &["check", "--output-format", "json", "app"]);
    assert_eq!(json(&out)["summary"]["caches"], 1, "{}", text(&out));

    // python (relative to the file): an unusable one is a usage error naming it.
    tree.write("pycguard.toml", b"python = [\"bin/python9\"]\n");
    let out = run_in(Path::new("/"), &["check", tree.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains(&format!("{}/bin/python9", tree.path().display())),
        "{err}"
    );

    // output-format for every command; strict and exit-zero.
    let tree = orphans(&["a"]);
    tree.write("pycguard.toml", b"output-format = \"json\"\n");
    for args in [
        &["check"][..],
        &["clean", "-n"],
        &["inspect", "a/__pycache__/m.cpython-312.pyc"],
        &["fix", "-n", "--shallow"],
        &["interpreters"],
    ] {
        let out = run_in(tree.path(), args);
        json(&out);
    }
    tree.write("pycguard.toml", b"[check]\nstrict = true\n");
    assert_eq!(run_in(tree.path(), &["check"]).status.code(), Some(1));
    tree.write(
        "pycguard.toml",
        b"[check]\nstrict = true\nexit-zero = false\n",
    );
    assert_eq!(run_in(tree.path(), &["check"]).status.code(), Some(1));
    tree.write(
        "pycguard.toml",
        b"[check]\nstrict = false\nexit-zero = true\n",
    );
    assert_eq!(
        run_in(tree.path(), &["check", "--strict"]).status.code(),
        Some(1)
    );
    tree.write("a/gone.pyc", &pypy310_cache(0));
    tree.write("a/other.py", b"");
    // A ghost (an error) fails the check, unless exit-zero.
    assert_eq!(run_in(tree.path(), &["check"]).status.code(), Some(0));
    assert_eq!(
        run_in(tree.path(), &["check", "--isolated"]).status.code(),
        Some(1)
    );

    // [fix]: shallow, delete, include; [clean]: state, tag, debris.
    let tree = Tree::new();
    tree.write("app/s.py", b"changed source\n");
    // A PyPy 3.10 cache whose header names another size: stale, and no PyPy to
    // recompile it with.
    tree.write("app/__pycache__/s.pypy310.pyc", &pypy310_cache(1));
    // PyPy's bodies are not walked, so this one is not damaged: sourceless.
    tree.write("dist/lib.pyc", &pypy310_cache(0));
    tree.write("app/__pycache__/gone.cpython-39.pyc", b"x");
    tree.write(".pytest_cache/v/x", b"x");
    let fix_json = |tree: &Tree| {
        let out = run_in(tree.path(), &["fix", "-n", "--output-format", "json"]);
        let doc = json(&out);
        let actions: Vec<(String, String, String)> = doc["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["path"].as_str().unwrap().to_owned(),
                    a["action"].as_str().unwrap().to_owned(),
                    a["reason"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        (doc["deep"].clone(), actions)
    };
    tree.write(
        "pycguard.toml",
        b"[fix]\nshallow = true\ndelete = true\ninclude = [\"sourceless\"]\n",
    );
    let (deep, actions) = fix_json(&tree);
    assert_eq!(deep, Value::Null, "shallow = true: no proof");
    let by_path = |p: &str| actions.iter().find(|a| a.0 == p).cloned().unwrap();
    assert_eq!(by_path("./app/__pycache__/s.pypy310.pyc").2, "--delete");
    assert_eq!(by_path("./dist/lib.pyc").1, "delete");
    tree.write("pycguard.toml", b"[fix]\nshallow = true\n");
    let (_, actions) = fix_json(&tree);
    let by_path = |p: &str| actions.iter().find(|a| a.0 == p).cloned().unwrap();
    assert_eq!(
        by_path("./app/__pycache__/s.pypy310.pyc").2,
        "no PyPy 3.10 found to recompile it"
    );
    assert_eq!(by_path("./dist/lib.pyc").1, "leave");
    // --deep overrides the file's shallow = true.
    let out = run_in(
        tree.path(),
        &["fix", "-n", "--deep", "--output-format", "json"],
    );
    assert_ne!(json(&out)["deep"], Value::Null, "{}", text(&out));

    let clean = |tree: &Tree| {
        let out = run_in(tree.path(), &["clean", "-n", "--output-format", "json"]);
        let doc = json(&out);
        let mut paths: Vec<String> = doc["removed"]
            .as_array()
            .unwrap()
            .iter()
            .chain(doc["debris_removed"].as_array().unwrap())
            .map(|p| p.as_str().unwrap().to_owned())
            .collect();
        paths.sort();
        paths
    };
    tree.write(
        "pycguard.toml",
        b"[clean]\nstate = [\"orphan\", \"sourceless\"]\n",
    );
    assert_eq!(
        clean(&tree),
        ["./app/__pycache__/gone.cpython-39.pyc", "./dist/lib.pyc"]
    );
    tree.write(
        "pycguard.toml",
        b"[clean]\ntag = [\"pypy310\"]\ndebris = true\n",
    );
    assert_eq!(
        clean(&tree),
        ["./.pytest_cache", "./app/__pycache__/s.pypy310.pyc"]
    );
    // --tag replaces the file's list.
    let out = run_in(tree.path(), &["clean", "-n", "--tag", "cpython-39"]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("would remove ./app/__pycache__/gone.cpython-39.pyc\n"),
        "{}",
        text(&out)
    );
}

/// `deep` (check) and `invalidation-mode` (compile) need a real interpreter.
#[test]
fn deep_and_invalidation_mode_keys() {
    let Some(python) = common::interpreters()
        .into_iter()
        .find(|i| i.at_least(3, 7))
    else {
        eprintln!("SKIP: no Python 3.7+ for the deep and invalidation-mode keys");
        return;
    };
    let tree = Tree::new();
    tree.write("m.py", b"M = 1\n");
    python.compile(tree.path(), &["m.py"], "timestamp", 0);
    let py = python.path.to_str().unwrap().to_owned();
    tree.write(
        "pycguard.toml",
        format!("python = [\"{py}\"]\n\n[check]\ndeep = true\n\n[compile]\ninvalidation-mode = \"checked-hash\"\n").as_bytes(),
    );
    let out = run_in(tree.path(), &["check"]);
    assert!(
        text(&out).contains("deep: 1 cache proven"),
        "{}",
        text(&out)
    );
    let out = run_in(tree.path(), &["check", "--shallow"]);
    assert!(!text(&out).contains("deep:"), "{}", text(&out));
    let out = run_in(
        tree.path(),
        &["compile", "-n", "--force", "--output-format", "json"],
    );
    let doc = json(&out);
    let compiled = doc["compiled"].as_array().unwrap();
    assert!(!compiled.is_empty(), "{}", text(&out));
    assert!(
        compiled.iter().all(|c| c["invalidation"] == "checked-hash"),
        "{}",
        text(&out)
    );
    let out = run_in(
        tree.path(),
        &[
            "compile",
            "-n",
            "--force",
            "--output-format",
            "json",
            "--invalidation-mode",
            "unchecked-hash",
        ],
    );
    let doc = json(&out);
    assert!(
        doc["compiled"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["invalidation"] == "unchecked-hash"),
        "{}",
        text(&out)
    );
}

/// Each message names the file, line and column (and for an unknown key the keys
/// accepted there), exits 2, and prints nothing on stdout.
#[test]
fn bad_values_exit_2_naming_the_line() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "unknown_key",
            "pycguard.toml",
            "jobs = 2\njobz = 3\n",
            &["check"],
        ),
        (
            "unknown_key_in_a_command_table",
            "pycguard.toml",
            "[fix]\nshallow = true\nstrict = true\n",
            &["fix"],
        ),
        (
            "command_key_at_the_top_level",
            "pycguard.toml",
            "strict = true\n",
            &["check"],
        ),
        (
            "unknown_key_in_pyproject",
            "pyproject.toml",
            "[project]\nname = \"x\"\n\n[tool.pycguard]\nexclude = []\ncolor = \"always\"\n",
            &["check"],
        ),
        (
            "wrong_type",
            "pycguard.toml",
            "jobs = \"four\"\n",
            &["check"],
        ),
        (
            "jobs_not_an_integer",
            "pycguard.toml",
            "jobs = 2.5\n",
            &["check"],
        ),
        (
            "timeout_not_a_number",
            "pycguard.toml",
            "[fix]\ntimeout = \"1m\"\n",
            &["fix"],
        ),
        (
            "jobs_out_of_range",
            "pycguard.toml",
            "jobs = 0\n",
            &["check"],
        ),
        (
            "timeout_out_of_range",
            "pycguard.toml",
            "timeout = -1\n",
            &["check"],
        ),
        (
            "unknown_output_format",
            "pycguard.toml",
            "output-format = \"xml\"\n",
            &["check"],
        ),
        (
            "unknown_invalidation_mode",
            "pycguard.toml",
            "[compile]\ninvalidation-mode = \"sometimes\"\n",
            &["compile"],
        ),
        (
            "bad_glob",
            "pycguard.toml",
            "exclude = [\"a[\"]\n",
            &["check"],
        ),
        (
            "unknown_state",
            "pycguard.toml",
            "[clean]\nstate = [\"orphan\", \"nonsense\"]\n",
            &["clean"],
        ),
        (
            "malformed_tag",
            "pycguard.toml",
            "[clean]\ntag = [\"cpython-3.11\"]\n",
            &["clean"],
        ),
        (
            "contradicting_keys",
            "pycguard.toml",
            "[check]\nstrict = true\nexit-zero = true\n",
            &["check"],
        ),
        (
            "contradicting_cache_keys",
            "pycguard.toml",
            "no-cache = true\n\n[fix]\ncache-dir = \"x\"\n",
            &["fix"],
        ),
        ("not_toml", ".pycguard.toml", "jobs = = 2\n", &["check"]),
        (
            "broken_pyproject",
            "pyproject.toml",
            "[project\nname = 1\n",
            &["interpreters"],
        ),
    ];
    for (name, file, content, args) in cases {
        let tree = Tree::new();
        tree.write(file, content.as_bytes());
        let message = usage_error(&tree, args);
        insta::assert_snapshot!(*name, message);
    }
    // Even a command that would not use the bad key stops: the file is wrong.
    let tree = Tree::new();
    tree.write("pycguard.toml", b"[fix]\ninclude = [\"nonsense\"]\n");
    usage_error(&tree, &["check"]);
    // --config naming a file that is not there.
    let tree = Tree::new();
    let message = usage_error(&tree, &["check", "--config", "missing.toml"]);
    insta::assert_snapshot!("missing_config_file", message);
}

/// The command line's own values get the same checks, with their flag named.
#[test]
fn bad_flag_values_exit_2() {
    let tree = orphans(&["a"]);
    let message = usage_error(&tree, &["clean", "--tag", "cpython-3.11"]);
    insta::assert_snapshot!("malformed_tag_flag", message);
    let message = usage_error(&tree, &["clean", "--tag", "cpython-312-pytest-8.3.4"]);
    insta::assert_snapshot!("pytest_tag_flag", message);
}
