//! `--output-format json` of every command, pinned by snapshots: the schemas documented in
//! `src/output/*.rs` and the README. (`check`'s schema 1 is pinned in `tests/cli.rs`.)
//!
//! The fixture needs no interpreter: PyPy 3.10 caches (their bodies are not walked) and
//! caches whose source does not exist. What depends on the machine (an interpreter's
//! version and path) is replaced by a placeholder before the snapshot, or, for
//! `interpreters`, only the document's shape (keys and value types) is pinned.

mod common;

use std::process::Output;

use common::{pycguard, set_mtime, Tree};
use serde_json::Value;

const T: u64 = 1_700_000_000;

/// A PyPy 3.10 cache (magic 384) whose header records a source of `size` bytes.
fn pypy310_cache(size: u8) -> Vec<u8> {
    pypy310_cache_at(0, size)
}

/// A PyPy 3.10 cache whose header records a source of `mtime` and `size`.
fn pypy310_cache_at(mtime: u32, size: u8) -> Vec<u8> {
    let mut bytes = vec![0x80, 0x01, 0x0d, 0x0a, 0, 0, 0, 0];
    bytes.extend_from_slice(&mtime.to_le_bytes());
    bytes.extend_from_slice(&[size, 0, 0, 0]);
    bytes.extend_from_slice(b"\xe3body");
    bytes
}

/// One cache in most states, a tool cache and a virtualenv.
fn fixture() -> Tree {
    let tree = Tree::new();
    let source = tree.write("app/s.py", b"changed source\n");
    set_mtime(&source, T, 0);
    tree.write("app/__pycache__/s.pypy310.pyc", &pypy310_cache(1));
    // Fresh by its header: PyPy 3.10 would run it, and no interpreter here proves it.
    let fresh = tree.write("app/f.py", b"fresh\n");
    set_mtime(&fresh, T, 0);
    tree.write(
        "app/__pycache__/f.pypy310.pyc",
        &pypy310_cache_at(T as u32, 6),
    );
    tree.write("app/__pycache__/gone.cpython-39.pyc", b"not a cache");
    tree.write("app/old.pyc", &pypy310_cache(0));
    tree.write("dist/lib.pyc", &pypy310_cache(0));
    tree.write(".pytest_cache/v/cache/lastfailed", b"{}");
    tree.write(".venv/pyvenv.cfg", b"home = /usr/bin\n");
    tree.write(".venv/lib/__pycache__/x.cpython-312.pyc", b"x");
    tree
}

fn run(tree: &Tree, args: &[&str]) -> Output {
    pycguard()
        .current_dir(tree.path())
        .arg("--isolated")
        .args(args)
        .output()
        .unwrap()
}

fn document(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn clean_json() {
    let tree = fixture();
    let out = run(
        &tree,
        &["clean", "--dry-run", "--debris", "--output-format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    document(&out);
    insta::assert_snapshot!(stdout(&out));
    let out = run(&tree, &["clean", "--format", "json", "--state", "orphan"]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("clean_json_removed", stdout(&out));
    assert!(!tree.join("app/__pycache__/gone.cpython-39.pyc").exists());
}

#[test]
fn fix_json() {
    let tree = fixture();
    let out = run(
        &tree,
        &["fix", "--dry-run", "--shallow", "--output-format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    document(&out);
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn inspect_json() {
    let tree = fixture();
    let out = run(
        &tree,
        &[
            "inspect",
            "--output-format",
            "json",
            "app/__pycache__/s.pypy310.pyc",
            "dist/lib.pyc",
            "app/missing.cpython-312.pyc",
        ],
    );
    // The missing file cannot be read: exit 1.
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let doc = document(&out);
    assert_eq!(doc.as_array().map(Vec::len), Some(3));
    insta::assert_snapshot!(stdout(&out));
}

/// Replace what depends on the machine's interpreter.
fn redact(text: &str, interp: &common::Interp) -> String {
    text.replace(interp.path.to_str().unwrap(), "[PYTHON]")
        .replace(&interp.version, "[VERSION]")
}

#[test]
fn compile_json() {
    let Some(python) = common::interpreters()
        .into_iter()
        .find(|i| i.major == 3 && i.minor == 11)
    else {
        eprintln!("SKIP: no Python 3.11 for the compile snapshot");
        return;
    };
    let tree = Tree::new();
    let a = tree.write("pkg/a.py", b"A = 1\n");
    let b = tree.write("pkg/b.py", b"B = 2\n");
    set_mtime(&a, T, 0);
    set_mtime(&b, T, 0);
    python.compile(tree.path(), &["pkg/a.py"], "timestamp", 0);
    let py = python.path.to_str().unwrap();
    let out = run(
        &tree,
        &[
            "compile",
            "--dry-run",
            "--python",
            py,
            "--output-format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    document(&out);
    insta::assert_snapshot!(redact(&stdout(&out), &python));
    let out = run(
        &tree,
        &["compile", "--python", py, "--output-format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    insta::assert_snapshot!("compile_json_written", redact(&stdout(&out), &python));
    assert!(tree.join("pkg/__pycache__/b.cpython-311.pyc").is_file());
}

/// Each value replaced by its JSON type (arrays by their first element's shape).
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().take(1).map(shape).collect()),
        Value::String(_) => Value::from("string"),
        Value::Number(_) => Value::from("number"),
        Value::Bool(_) => Value::from("bool"),
        Value::Null => Value::from("null"),
    }
}

#[test]
fn interpreters_json() {
    let tree = fixture();
    let Some(python) = common::interpreters().into_iter().find(|i| i.major == 3) else {
        eprintln!("SKIP: no Python 3 for the interpreters schema");
        return;
    };
    let out = run(
        &tree,
        &[
            "interpreters",
            "--python",
            python.path.to_str().unwrap(),
            "--output-format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let doc = document(&out);
    let first = &doc["interpreters"][0];
    assert_eq!(first["found_via"], "--python");
    assert_eq!(first["version"], python.version.as_str());
    // No interpreter proves the PyPy caches.
    assert_eq!(doc["missing"][0]["interpreter"], "PyPy 3.10", "{doc}");
    let mut pinned = shape(&doc);
    // `rejected` may be empty on a clean machine: its entries' shape is checked here.
    let rejected_shape = serde_json::json!({
        "path": "string", "found_via": "string", "message": "string"
    });
    for r in doc["rejected"].as_array().unwrap() {
        assert_eq!(shape(r), rejected_shape);
    }
    pinned["rejected"] = Value::Array(vec![rejected_shape]);
    insta::assert_snapshot!(serde_json::to_string_pretty(&pinned).unwrap());
}
