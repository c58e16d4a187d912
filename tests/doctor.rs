//! `pycguard doctor` with real interpreters, a real service user and a real process:
//! story 03's replay (`doctor --user svc` names the cache directories the service user
//! cannot write, with the measured compile cost, and the root-owned caches in its own
//! tree — checked against what the interpreter run as that user actually writes), the
//! environment that changes cache behaviour (checked against the interpreter's own
//! `__cached__`), caches of a Python that is not installed (and that the remedy removes
//! exactly them), a proven hidden-stale cache, a process running old code, and the JSON
//! schema.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{pycguard, set_mtime, snapshot, Interp, Tree};
use serde_json::Value;

/// The service account of these tests (the lane's name in it, made idempotently).
const SERVICE_USER: &str = "pgt-ops-svc";

fn service_user() -> u32 {
    let id = |_: ()| {
        Command::new("id")
            .args(["-u", SERVICE_USER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
    };
    if let Some(uid) = id(()) {
        return uid;
    }
    // Several tests may race to make it; one of them wins.
    let _ = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ])
        .status();
    id(()).expect("useradd made the service user")
}

fn system_python() -> Option<Interp> {
    common::interpreters()
        .into_iter()
        .find(|i| i.path == Path::new("/usr/bin/python3"))
}

/// Run `code` with `python` as the service user, in `dir`, environment cleared as the
/// tests do for every interpreter.
fn run_as_service(python: &Interp, dir: &Path, code: &str) -> Output {
    let out = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid",
            SERVICE_USER,
            "--regid",
            SERVICE_USER,
            "--clear-groups",
        ])
        .arg(&python.path)
        .args(["-c", code])
        .current_dir(dir)
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .env_remove("PYTHONPYCACHEPREFIX")
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONOPTIMIZE")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    common::exercised(python.major, python.minor);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

/// `doctor` with a clean cache environment (the machine exports PYTHONDONTWRITEBYTECODE).
fn doctor(args: &[&str], paths: &[&Path], env: &[(&str, &str)]) -> (Value, i32, String) {
    let mut cmd = pycguard();
    cmd.args(["--isolated", "doctor"])
        .args(args)
        .args(paths)
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .env_remove("PYTHONOPTIMIZE")
        .env_remove("PYTHONPATH")
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let json = cmd.arg("--output-format").arg("json").output().unwrap();
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&json.stdout),
            String::from_utf8_lossy(&json.stderr)
        )
    });
    (doc, json.status.code().unwrap_or(-1), String::new())
}

fn doctor_text(args: &[&str], paths: &[&Path]) -> (String, i32) {
    let out = pycguard()
        .args(["--isolated", "doctor"])
        .args(args)
        .args(paths)
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn findings<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

fn paths_of(f: &Value) -> Vec<String> {
    f["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn story_03_the_service_user_cannot_write_its_caches() {
    if !common::can_run_as_other_user() {
        eprintln!("SKIP: needs root and setpriv to run as a service user");
        return;
    }
    let Some(python) = system_python() else {
        eprintln!("SKIP: /usr/bin/python3 (runnable by a service user) not found");
        return;
    };
    let uid = service_user();
    let tree = Tree::new();
    fs::set_permissions(tree.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // /opt/lernmanager as deployed by root: config and models were compiled by root,
    // app and utils never were.
    for (name, body) in [
        ("app.py", "import config, models, utils\nVALUE = 1\n"),
        ("config.py", "VALUE = 2\n"),
        ("models.py", "VALUE = 3\n"),
        ("utils.py", "VALUE = 4\n"),
    ] {
        tree.write(format!("lernmanager/{name}"), body.as_bytes());
    }
    python.compile(
        &tree.join("lernmanager"),
        &["config.py", "models.py"],
        "timestamp",
        0,
    );
    // The service's own directory, with a cache root wrote into it (`sudo python …`),
    // and a package directory it owns without caches yet.
    tree.write("home/job.py", b"VALUE = 5\n");
    tree.write("home/fresh/task.py", b"VALUE = 6\n");
    python.compile(&tree.join("home"), &["job.py"], "timestamp", 0);
    for dir in ["home", "home/fresh"] {
        chown(&tree.join(dir), uid);
    }
    chown(&tree.join("home/job.py"), uid);
    chown(&tree.join("home/fresh/task.py"), uid);
    let tag = python.tag().unwrap();

    // The oracle: the interpreter run as the service user writes no cache for app and
    // utils (it cannot), and would write one in its own directory.
    run_as_service(&python, &tree.join("lernmanager"), "import app");
    assert!(!tree
        .join(format!("lernmanager/__pycache__/app.{tag}.pyc"))
        .exists());
    assert!(!tree
        .join(format!("lernmanager/__pycache__/utils.{tag}.pyc"))
        .exists());

    let before = snapshot(tree.path());
    let started = Instant::now();
    let (doc, status, _) = doctor(
        &["--user", SERVICE_USER, "--python", "/usr/bin/python3"],
        &[tree.path()],
        &[],
    );
    let took = started.elapsed();
    assert_eq!(snapshot(tree.path()), before, "doctor wrote nothing");
    assert_eq!(status, 0, "warnings only: {doc:#}");
    let root = tree.path().display().to_string();
    let unwritable = findings(&doc, "unwritable-cache-dir");
    let lern = unwritable
        .iter()
        .find(|f| f["cache_dir"] == format!("{root}/lernmanager/__pycache__"))
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(lern["severity"], "warning");
    assert_eq!(lern["user"], SERVICE_USER);
    assert_eq!(lern["count"], 2, "{lern:#}");
    let evidence: Vec<&str> = lern["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(evidence.contains(&format!("{root}/lernmanager/app.py").as_str()));
    assert!(evidence.contains(&format!("{root}/lernmanager/utils.py").as_str()));
    assert!(
        !evidence.iter().any(|e| e.ends_with("config.py")),
        "fresh: {evidence:?}"
    );
    let cost = lern["compile_ns"].as_u64().unwrap();
    assert!(
        cost > 0 && cost < took.as_nanos() as u64,
        "measured {cost} ns"
    );
    assert!(lern["remedy"]
        .as_str()
        .unwrap()
        .contains("pycguard compile"));
    // The root-owned __pycache__ in the user's home: unwritable, and its cache is root's.
    assert!(
        unwritable
            .iter()
            .any(|f| f["cache_dir"] == format!("{root}/home/__pycache__")),
        "{doc:#}"
    );
    let owned = findings(&doc, "root-owned-caches");
    assert_eq!(owned.len(), 1, "{doc:#}");
    assert_eq!(owned[0]["cache_dir"], format!("{root}/home/__pycache__"));
    assert_eq!(
        paths_of(owned[0]),
        vec![format!("{root}/home/__pycache__/job.{tag}.pyc")]
    );
    // The directory the user owns is writable: not named, and the interpreter run as
    // the user does write its cache there.
    assert!(
        !unwritable
            .iter()
            .any(|f| f["cache_dir"].as_str().unwrap().contains("fresh")),
        "{doc:#}"
    );
    run_as_service(&python, &tree.join("home/fresh"), "import task");
    assert!(tree
        .join(format!("home/fresh/__pycache__/task.{tag}.pyc"))
        .is_file());

    // The human report names them too, and --strict fails on the warnings.
    let (text, status) = doctor_text(
        &[
            "--user",
            SERVICE_USER,
            "--python",
            "/usr/bin/python3",
            "--strict",
        ],
        &[tree.path()],
    );
    assert_eq!(status, 1);
    assert!(
        text.contains(&format!(
            "{SERVICE_USER} cannot write {root}/lernmanager/__pycache__: each start compiles 2 modules again"
        )),
        "{text}"
    );
    assert!(text.contains("belongs to root"), "{text}");

    // The story's fix: a pycache prefix the service user owns. Then nothing under the
    // root-owned release is unwritable — and the interpreter run as the user with that
    // prefix does write its caches there.
    let prefix = tree.join("instance/tmp");
    fs::create_dir_all(&prefix).unwrap();
    chown(&tree.join("instance"), uid);
    chown(&prefix, uid);
    let (doc, _, _) = doctor(
        &[
            "--user",
            SERVICE_USER,
            "--python",
            "/usr/bin/python3",
            "--pycache-prefix",
        ],
        &[&prefix, &tree.join("lernmanager")],
        &[],
    );
    let lern = format!("{root}/lernmanager");
    assert!(
        !findings(&doc, "unwritable-cache-dir")
            .iter()
            .any(|f| f["paths"].to_string().contains(&lern)
                || f["cache_dir"].to_string().contains("lernmanager")),
        "{doc:#}"
    );
    let out = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid",
            SERVICE_USER,
            "--regid",
            SERVICE_USER,
            "--clear-groups",
        ])
        .arg(&python.path)
        .args(["-c", "import app"])
        .current_dir(tree.join("lernmanager"))
        .env("PYTHONPYCACHEPREFIX", &prefix)
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mirrored = prefix.join(tree.join("lernmanager").strip_prefix("/").unwrap());
    assert!(mirrored.join(format!("app.{tag}.pyc")).is_file());
    // With a prefix root owns instead, doctor names the prefix directory, and all four
    // modules: 3.8+ reads no `__pycache__` while a prefix is set.
    let (doc, _, _) = doctor(
        &[
            "--user",
            SERVICE_USER,
            "--python",
            "/usr/bin/python3",
            "--pycache-prefix",
        ],
        &[&tree.join("rootprefix"), &tree.join("lernmanager")],
        &[],
    );
    let under_prefix = format!("{root}/rootprefix/");
    let named = findings(&doc, "unwritable-cache-dir");
    assert!(
        named.iter().any(
            |f| f["cache_dir"].as_str().unwrap().starts_with(&under_prefix) && f["count"] == 4
        ),
        "{doc:#}"
    );
}

#[test]
fn an_unknown_user_is_a_usage_error() {
    let tree = Tree::new();
    let (text, status) = doctor_text(&["--user", "pgt-ops-no-such-user"], &[tree.path()]);
    assert_eq!(status, 2, "{text}");
}

#[test]
fn environment_that_changes_cache_behaviour() {
    let Some(python) = system_python() else {
        eprintln!("SKIP: /usr/bin/python3 not found");
        return;
    };
    let tree = Tree::new();
    tree.write("app/m.py", b"VALUE = 1\n");
    python.compile(&tree.join("app"), &["m.py"], "timestamp", 0);
    let prefix = tempfile::tempdir().unwrap();
    let prefix_s = prefix.path().display().to_string();
    let lib = tree.join("lib");
    fs::create_dir(&lib).unwrap();
    let python_path = format!("{}:/pgt-ops-missing", lib.display());
    // The oracle: with the prefix set, the interpreter's cache for m is under it.
    let cached = python.run(
        &tree.join("app"),
        "import sys, m; sys.stdout.write(m.__cached__)",
        &[],
    );
    assert!(cached.contains("__pycache__"));
    let out = python.try_run(
        &tree.join("app"),
        "import sys, m; sys.stdout.write(m.__cached__)",
        &[],
        &[("PYTHONPYCACHEPREFIX", &prefix_s)],
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&prefix_s));

    let (doc, _, _) = doctor(
        &["--python", "/usr/bin/python3"],
        &[tree.path()],
        &[
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("PYTHONPYCACHEPREFIX", &prefix_s),
            ("SOURCE_DATE_EPOCH", "1700000000"),
            ("PYTHONOPTIMIZE", "2"),
            ("PYTHONPATH", &python_path),
        ],
    );
    let env = findings(&doc, "environment");
    let of = |v: &str| {
        *env.iter()
            .find(|f| f["variable"] == v)
            .unwrap_or_else(|| panic!("{v}: {doc:#}"))
    };
    let dont = of("PYTHONDONTWRITEBYTECODE");
    assert_eq!(dont["severity"], "warning");
    assert!(dont["title"].as_str().unwrap().contains("still reads"));
    let pc = of("PYTHONPYCACHEPREFIX");
    assert_eq!(
        pc["count"], 1,
        "the __pycache__ cache 3.11 no longer reads: {pc:#}"
    );
    assert_eq!(paths_of(pc), vec![prefix_s.clone()]);
    // Both level-0 caches go unused at -OO: the __pycache__ one and the one the oracle
    // wrote under the prefix (which doctor finds as the tree's mirror there).
    assert_eq!(of("PYTHONOPTIMIZE")["count"], 2);
    of("SOURCE_DATE_EPOCH");
    let pp = of("PYTHONPATH");
    assert_eq!(pp["count"], 2);
    let ev = pp["evidence"].to_string();
    assert!(
        ev.contains("(under these paths)") && ev.contains("(does not exist)"),
        "{ev}"
    );
    // Without them, no environment finding at all.
    let (doc, _, _) = doctor(&["--python", "/usr/bin/python3"], &[tree.path()], &[]);
    assert!(findings(&doc, "environment").is_empty(), "{doc:#}");
}

/// A running server loop that imported `pkg` (killed when dropped).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn removed_python_hidden_stale_and_a_process_running_old_code() {
    let Some(python) = system_python() else {
        eprintln!("SKIP: /usr/bin/python3 not found");
        return;
    };
    let all = common::interpreters();
    if all.iter().any(|i| i.at_least(3, 14)) {
        eprintln!("SKIP: a Python 3.14 is installed: its caches are not a removed Python's");
        return;
    }
    let tree = Tree::new();
    tree.write("server.py", b"import sys, time\nimport pkg\nopen(sys.argv[1], 'w').close()\nwhile True:\n    time.sleep(0.2)\n");
    let mod_py = tree.write("pkg/__init__.py", b"VALUE = 60\n");
    set_mtime(&mod_py, 1_700_000_000, 0);
    python.compile(tree.path(), &["pkg/__init__.py"], "timestamp", 0);
    // Story 03's other Python: caches a 3.14 left (this machine has none).
    let other = tree.write(
        "pkg/__pycache__/__init__.cpython-314.pyc",
        b"\x2b\x0e\x0d\x0a\0\0\0\0",
    );
    let ready = tempfile::tempdir().unwrap();
    let mark = ready.path().join("up");
    let child = python
        .command(tree.path())
        .arg("server.py")
        .arg(&mark)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !mark.exists() {
        assert!(Instant::now() < deadline, "server never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1600));
    // The hot fix: same size, mtime restored (a deploy that keeps timestamps).
    fs::write(&mod_py, b"VALUE = 30\n").unwrap();
    set_mtime(&mod_py, 1_700_000_000, 0);
    assert_eq!(
        python.import_value(tree.path(), "pkg"),
        Ok("60".into()),
        "the interpreter runs the old code"
    );

    let (doc, status, _) = doctor(&["--python", "/usr/bin/python3"], &[tree.path()], &[]);
    assert_eq!(status, 1, "{doc:#}");
    let root = tree.path().display().to_string();
    let caches = findings(&doc, "caches");
    let hidden = caches
        .iter()
        .find(|f| f["state"] == "hidden-stale")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(hidden["severity"], "error");
    assert_eq!(
        paths_of(hidden),
        vec![format!(
            "{root}/pkg/__pycache__/__init__.{}.pyc",
            python.tag().unwrap()
        )]
    );
    assert!(hidden["evidence"].to_string().contains("60"), "{hidden:#}");
    let removed = findings(&doc, "no-interpreter");
    assert_eq!(removed.len(), 1, "{doc:#}");
    assert_eq!(removed[0]["tag"], "cpython-314");
    let remedy = removed[0]["remedy"].as_str().unwrap().to_owned();
    assert_eq!(remedy, format!("pycguard clean --tag cpython-314 {root}"));
    let process = findings(&doc, "process");
    assert_eq!(process.len(), 1, "{doc:#}");
    assert_eq!(process[0]["process"]["pid"], server.0.id());
    assert_eq!(
        paths_of(process[0]),
        vec![format!("{root}/pkg/__init__.py")]
    );
    assert!(findings(&doc, "interpreter")
        .iter()
        .any(|f| f["tag"] == python.tag().unwrap() && f["count"] == 1));

    // The remedy does what it says: exactly the other Python's cache goes.
    let words: Vec<&str> = remedy.split(' ').collect();
    let out = pycguard()
        .args(&words[1..])
        .arg("--isolated")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!other.exists());
    assert!(tree
        .join(format!(
            "pkg/__pycache__/__init__.{}.pyc",
            python.tag().unwrap()
        ))
        .exists());
    drop(server);
}

/// The schema, pinned on a tree whose findings do not depend on the machine.
#[test]
fn json_schema() {
    let Some(python) = system_python() else {
        eprintln!("SKIP: /usr/bin/python3 not found");
        return;
    };
    let tree = Tree::new();
    tree.write("app/a.py", b"A = 1\n");
    tree.write("app/b.py", b"B = 1\n");
    tree.write("app/__pycache__/gone.cpython-311.pyc", b"x");
    python.compile(&tree.join("app"), &["a.py"], "timestamp", 0);
    let (mut doc, status, _) = doctor(&["--python", "/usr/bin/python3"], &[tree.path()], &[]);
    assert_eq!(status, 0, "{doc:#}");
    doc["findings"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["kind"] != "interpreter" && f["kind"] != "interpreters-without-caches");
    let text = serde_json::to_string_pretty(&doc)
        .unwrap()
        .replace(&tree.path().display().to_string(), "[tree]")
        .replace(&format!("Python {}", python.version), "Python [version]");
    insta::assert_snapshot!(text);
}

/// A PyPy 3.10 cache (no such interpreter here: judged by header only) whose header
/// records a source of `mtime` and `size`.
fn pypy310_cache(mtime: u32, size: u8) -> Vec<u8> {
    let mut bytes = vec![0x80, 0x01, 0x0d, 0x0a, 0, 0, 0, 0];
    bytes.extend_from_slice(&mtime.to_le_bytes());
    bytes.extend_from_slice(&[size, 0, 0, 0]);
    bytes.extend_from_slice(b"\xe3body");
    bytes
}

#[test]
fn header_only_future_mtimes_and_replaced_sources() {
    let tree = Tree::new();
    let t = 1_700_000_000u32;
    // A source replaced after its cache was written, its mtime kept (only ctime moved).
    let replaced = tree.write("app/r.py", b"R = 1\n");
    set_mtime(&replaced, u64::from(t), 0);
    tree.write("app/__pycache__/r.pypy310.pyc", &pypy310_cache(t, 6));
    // Later than the cache's ctime by more than the judge's 2 s tolerance.
    std::thread::sleep(Duration::from_millis(2200));
    fs::write(&replaced, b"R = 2\n").unwrap();
    set_mtime(&replaced, u64::from(t), 0);
    // A source dated a day ahead of the clock, its cache matching that.
    let future = common::now_secs() + 86_400;
    let ahead = tree.write("app/f.py", b"F = 1\n");
    set_mtime(&ahead, future, 0);
    tree.write(
        "app/__pycache__/f.pypy310.pyc",
        &pypy310_cache(future as u32, 6),
    );

    let (doc, status, _) = doctor(&[], &[tree.path()], &[]);
    assert_eq!(status, 0, "warnings only: {doc:#}");
    let root = tree.path().display().to_string();
    let header_only = findings(&doc, "header-only");
    assert_eq!(header_only.len(), 1, "{doc:#}");
    assert_eq!(header_only[0]["count"], 2);
    assert!(
        header_only[0]["evidence"].to_string().contains("PyPy 3.10"),
        "{:#}",
        header_only[0]
    );
    let future_found = findings(&doc, "future-mtimes");
    assert_eq!(
        paths_of(future_found[0]),
        vec![format!("{root}/app/__pycache__/f.pypy310.pyc")]
    );
    let replaced_found = findings(&doc, "replaced-sources");
    assert_eq!(
        paths_of(replaced_found[0]),
        vec![format!("{root}/app/__pycache__/r.pypy310.pyc")]
    );
    assert_eq!(replaced_found[0]["severity"], "warning");
}

#[test]
fn the_cache_settings_a_service_runs_with() {
    let Some(python) = system_python() else {
        eprintln!("SKIP: /usr/bin/python3 not found");
        return;
    };
    let tree = Tree::new();
    tree.write("server.py", b"import sys, time\nimport pkg\nopen(sys.argv[1], 'w').close()\nwhile True:\n    time.sleep(0.2)\n");
    tree.write("pkg/__init__.py", b"VALUE = 1\n");
    let prefix = tempfile::tempdir().unwrap();
    let ready = tempfile::tempdir().unwrap();
    let mark = ready.path().join("up");
    let child = python
        .command(tree.path())
        .env("PYTHONPYCACHEPREFIX", prefix.path())
        .arg("-B")
        .arg("server.py")
        .arg(&mark)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !mark.exists() {
        assert!(Instant::now() < deadline, "server never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The oracle: it wrote no cache, beside the sources or under its prefix.
    assert!(!tree.join("pkg/__pycache__").exists());
    assert_eq!(fs::read_dir(prefix.path()).unwrap().count(), 0);
    let (doc, _, _) = doctor(&["--python", "/usr/bin/python3"], &[tree.path()], &[]);
    let settings = findings(&doc, "process-environment");
    let mine = settings
        .iter()
        .find(|f| {
            f["title"]
                .as_str()
                .unwrap()
                .starts_with(&format!("PID {} ", server.0.id()))
        })
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(mine["severity"], "warning");
    let title = mine["title"].as_str().unwrap();
    assert!(
        title.contains("-B") && title.contains("PYTHONPYCACHEPREFIX="),
        "{title}"
    );
    assert_eq!(paths_of(mine), vec![prefix.path().display().to_string()]);
    // Running unchanged code: no `process` finding for it.
    assert!(findings(&doc, "process").is_empty(), "{doc:#}");
    drop(server);
}
