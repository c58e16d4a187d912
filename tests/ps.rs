//! `pycguard ps` against real Python processes: a server loop that imported a package
//! keeps running while a source of that package changes; `ps` must name the process and
//! the file, leave out a process whose tree did not change and one of another
//! interpreter in a tree that was not asked about, follow `-m`, virtualenvs and a
//! `current` release symlink, and keep its JSON schema.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{pycguard, Interp, Tree};
use serde_json::Value;

/// The program every test process runs: import the package, say so, then loop.
const SERVER: &str = "import sys, time\nimport pkg\nopen(sys.argv[1], 'w').close()\nwhile True:\n    time.sleep(0.2)\n";

/// A running Python process, killed and reaped when dropped.
struct Server {
    child: Child,
}

impl Server {
    fn pid(&self) -> u64 {
        u64::from(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `cmd` (whose last argument must be the ready file) and wait until the process
/// has imported its package; then wait out the start time's resolution, so that what
/// changes from now on is certainly after its start.
fn start(mut cmd: Command, ready: &Path) -> Server {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let mut server = Server { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        if let Ok(Some(status)) = server.child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = server.child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the server exited ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "the server never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// A tree with `server.py` and `pkg/{__init__,mod,kept}.py`.
fn app_tree() -> Tree {
    let tree = Tree::new();
    tree.write("server.py", SERVER.as_bytes());
    tree.write("pkg/__init__.py", b"from . import mod, kept\n");
    tree.write("pkg/mod.py", b"TIMEOUT = 60\n");
    tree.write("pkg/kept.py", b"DELAY = 1.0\n");
    tree
}

fn serve(python: &Interp, tree: &Tree, ready: &Path) -> Server {
    let mut cmd = python.command(tree.path());
    cmd.arg("server.py").arg(ready);
    start(cmd, ready)
}

/// Wait until the start time's tolerance (1 s + a tick) has passed since the processes
/// became ready, with a margin.
fn settle() {
    std::thread::sleep(Duration::from_millis(1600));
}

fn ps_json(args: &[&Path]) -> (Value, i32) {
    let out = pycguard()
        .arg("--isolated")
        .args(["ps", "--output-format", "json"])
        .args(args)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (doc, out.status.code().unwrap_or(-1))
}

fn listed(doc: &Value, pid: u64) -> Option<&Value> {
    doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"].as_u64() == Some(pid))
}

fn changed_paths(process: &Value) -> Vec<(String, String, String)> {
    process["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_owned(),
                c["role"].as_str().unwrap().to_owned(),
                c["by"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Two distinct interpreters (the system python3 and a pyenv one when there are).
fn two_interpreters() -> Option<(Interp, Interp)> {
    let all: Vec<Interp> = common::interpreters()
        .into_iter()
        .filter(|i| i.at_least(3, 6))
        .collect();
    let first = all.last()?.clone();
    let second = all
        .iter()
        .rev()
        .find(|i| (i.major, i.minor) != (first.major, first.minor))?
        .clone();
    Some((first, second))
}

#[test]
fn names_the_process_started_before_a_change_and_only_it() {
    let Some((py_a, py_b)) = two_interpreters() else {
        eprintln!("SKIP: ps needs two Python 3 interpreters");
        return;
    };
    let ready = tempfile::tempdir().unwrap();
    let (changed, unchanged, elsewhere) = (app_tree(), app_tree(), app_tree());
    let mark = |n: &str| ready.path().join(n);
    let (s1, s2, s3) = std::thread::scope(|s| {
        let a = s.spawn(|| serve(&py_a, &changed, &mark("a")));
        let b = s.spawn(|| serve(&py_a, &unchanged, &mark("b")));
        let c = s.spawn(|| serve(&py_b, &elsewhere, &mark("c")));
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    settle();
    // A hot fix: one source edited, another replaced with its old mtime kept (as a
    // deploy that preserves timestamps does: only the ctime shows it).
    changed.write("pkg/mod.py", b"TIMEOUT = 300\n");
    let kept = changed.join("pkg/kept.py");
    let old = fs::metadata(&kept).unwrap().modified().unwrap();
    fs::write(&kept, b"DELAY = 9.0\n").unwrap();
    fs::File::options()
        .write(true)
        .open(&kept)
        .unwrap()
        .set_modified(old)
        .unwrap();
    // The tree of another interpreter's process changes too, but it is not asked about.
    elsewhere.write("pkg/mod.py", b"TIMEOUT = 1\n");

    let (doc, status) = ps_json(&[changed.path(), unchanged.path()]);
    assert_eq!(status, 1, "a process runs old code: {doc:#}");
    let process = listed(&doc, s1.pid()).unwrap_or_else(|| panic!("{doc:#}"));
    let files = changed_paths(process);
    let root = changed.path().display().to_string();
    assert!(
        files.contains(&(
            format!("{root}/pkg/mod.py"),
            "source".into(),
            "mtime".into()
        )),
        "{files:?}"
    );
    assert!(
        files.contains(&(
            format!("{root}/pkg/kept.py"),
            "source".into(),
            "ctime".into()
        )),
        "{files:?}"
    );
    assert_eq!(
        files.len(),
        2,
        "the caches it wrote itself are not news: {files:?}"
    );
    assert_eq!(process["script"], format!("{root}/server.py"));
    assert_eq!(process["stale"], true);
    assert!(listed(&doc, s2.pid()).is_none(), "unchanged: {doc:#}");
    assert!(listed(&doc, s3.pid()).is_none(), "not in PATHS: {doc:#}");
    // …and asked about its own tree, that other interpreter's process is named.
    let (doc, _) = ps_json(&[elsewhere.path()]);
    let other = listed(&doc, s3.pid()).unwrap_or_else(|| panic!("{} {doc:#}", py_b.version));
    assert!(changed_paths(other)[0].0.ends_with("pkg/mod.py"));

    // --all lists the unchanged one too, as not stale.
    let out = pycguard()
        .args(["--isolated", "ps", "--all", "--output-format", "json"])
        .arg(unchanged.path())
        .output()
        .unwrap();
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{all:#}");
    assert_eq!(listed(&all, s2.pid()).unwrap()["stale"], false);

    // The human report names the process and the file.
    let out = pycguard()
        .args(["--isolated", "ps"])
        .arg(changed.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("PID {}", s1.pid())), "{text}");
    assert!(
        text.contains(&format!("source {root}/pkg/mod.py")),
        "{text}"
    );
    assert!(!text.contains(&format!("PID {}", s2.pid())), "{text}");
    drop((s1, s2, s3));
}

#[test]
fn a_cache_rewritten_for_a_process_that_writes_none_is_named() {
    let Some((python, _)) = two_interpreters() else {
        eprintln!("SKIP: ps needs a Python 3 interpreter");
        return;
    };
    let ready = tempfile::tempdir().unwrap();
    let tree = app_tree();
    python.compile(tree.path(), &["pkg/mod.py"], "timestamp", 0);
    let tag = python.tag().unwrap();
    let mut cmd = python.command(tree.path());
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("server.py")
        .arg(ready.path().join("r"));
    let server = start(cmd, &ready.path().join("r"));
    settle();
    // Someone recompiles the cache (say, `pycguard fix` after a same-second edit).
    python.compile(tree.path(), &["pkg/mod.py"], "timestamp", 0);
    let (doc, status) = ps_json(&[tree.path()]);
    assert_eq!(status, 1, "{doc:#}");
    let files = changed_paths(listed(&doc, server.pid()).unwrap());
    let cache = format!("{}/pkg/__pycache__/mod.{tag}.pyc", tree.path().display());
    assert_eq!(files, vec![(cache, "cache".into(), "mtime".into())]);
}

#[test]
fn module_and_virtualenv_processes_belong_to_their_trees() {
    let Some((python, _)) = two_interpreters() else {
        eprintln!("SKIP: ps needs a Python 3 interpreter");
        return;
    };
    let ready = tempfile::tempdir().unwrap();
    // `python -m server` from the tree: found by its module and cwd.
    let tree = app_tree();
    let mut cmd = python.command(tree.path());
    cmd.args(["-m", "server"]).arg(ready.path().join("m"));
    let by_module = start(cmd, &ready.path().join("m"));
    // A virtualenv's python running from `/`: found only by its virtualenv.
    let venv_dir = tempfile::tempdir().unwrap();
    let venv = venv_dir.path().join("venv");
    let made = python
        .command(Path::new("/"))
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success());
    let site: PathBuf = fs::read_dir(venv.join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("site-packages");
    fs::create_dir_all(site.join("pkg")).unwrap();
    fs::write(site.join("pkg/__init__.py"), b"X = 1\n").unwrap();
    fs::write(venv_dir.path().join("server.py"), SERVER).unwrap();
    let mut cmd_venv = Command::new(venv.join("bin/python"));
    cmd_venv
        .current_dir("/")
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONPYCACHEPREFIX")
        .arg("-c")
        .arg(SERVER)
        .arg(ready.path().join("v"));
    let by_venv = start(cmd_venv, &ready.path().join("v"));
    settle();
    tree.write("pkg/mod.py", b"TIMEOUT = 2\n");
    fs::write(site.join("pkg/__init__.py"), b"X = 2\n").unwrap();

    let (doc, _) = ps_json(&[tree.path(), &venv]);
    let m = listed(&doc, by_module.pid()).unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(m["module"], "server");
    assert!(changed_paths(m)
        .iter()
        .any(|(p, _, _)| p.ends_with("pkg/mod.py")));
    let v = listed(&doc, by_venv.pid()).unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(v["venv"], venv.display().to_string());
    assert_eq!(v["cwd"], "/");
    let files = changed_paths(v);
    assert!(
        files
            .iter()
            .any(|(p, _, _)| p.ends_with("site-packages/pkg/__init__.py")),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|(p, _, _)| p.ends_with("pkg/mod.py")),
        "each process is compared with its own PATHs only: {files:?}"
    );
}

#[test]
fn a_process_in_an_old_release_is_named() {
    let Some((python, _)) = two_interpreters() else {
        eprintln!("SKIP: ps needs a Python 3 interpreter");
        return;
    };
    let ready = tempfile::tempdir().unwrap();
    let app = Tree::new();
    for release in ["releases/r1", "releases/r2"] {
        app.write(format!("{release}/server.py"), SERVER.as_bytes());
        app.write(format!("{release}/pkg/__init__.py"), b"X = 1\n");
    }
    std::os::unix::fs::symlink("releases/r1", app.join("current")).unwrap();
    let mut cmd = python.command(&app.join("current"));
    cmd.arg("server.py").arg(ready.path().join("r"));
    let server = start(cmd, &ready.path().join("r"));
    // The deploy switches `current` to the new release; nothing in r1 changes.
    fs::remove_file(app.join("current")).unwrap();
    std::os::unix::fs::symlink("releases/r2", app.join("current")).unwrap();
    let real = app.path().canonicalize().unwrap();
    let current = app.join("current");
    let (doc, status) = ps_json(&[&current]);
    assert_eq!(status, 1, "{doc:#}");
    let p = listed(&doc, server.pid()).unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(
        p["old_release"]["release"],
        real.join("releases/r1").display().to_string()
    );
    assert_eq!(
        p["old_release"]["points_to"],
        real.join("releases/r2").display().to_string()
    );
    assert!(p["changed"].as_array().unwrap().is_empty());
}

/// The schema, pinned: the machine-dependent values (pids, times, paths) replaced.
#[test]
fn json_schema() {
    let Some((python, _)) = two_interpreters() else {
        eprintln!("SKIP: ps needs a Python 3 interpreter");
        return;
    };
    let ready = tempfile::tempdir().unwrap();
    let tree = app_tree();
    let server = serve(&python, &tree, &ready.path().join("s"));
    settle();
    tree.write("pkg/mod.py", b"TIMEOUT = 5\n");
    let (mut doc, _) = ps_json(&[tree.path()]);
    let root = tree.path().display().to_string();
    let processes = doc["processes"].as_array_mut().unwrap();
    processes.retain(|p| p["pid"].as_u64() == Some(server.pid()));
    for p in processes.iter_mut() {
        p["pid"] = "[pid]".into();
        p["started_ns"] = "[ns]".into();
        p["exe"] = "[exe]".into();
        p["argv"][0] = "[python]".into();
        p["argv"][2] = "[ready]".into();
        p["unordered"] = "[n]".into();
        for c in p["changed"].as_array_mut().unwrap() {
            c["mtime_ns"] = "[ns]".into();
            c["ctime_ns"] = "[ns]".into();
        }
    }
    doc["hidden"] = "[n]".into();
    let text = serde_json::to_string_pretty(&doc)
        .unwrap()
        .replace(&root, "[tree]");
    insta::assert_snapshot!(text);
    drop(server);
}

/// A cgroup made for one test, named like a systemd unit; removed when dropped (after
/// the process in it is gone).
struct UnitCgroup {
    dir: PathBuf,
}

impl UnitCgroup {
    /// `…/pgt-ops-test.slice/NAME` in systemd's hierarchy (v1 `name=systemd` in a hybrid
    /// setup, else the unified one), when this test may make one.
    fn make(name: &str) -> Option<UnitCgroup> {
        for base in [
            "/sys/fs/cgroup/systemd",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ] {
            let base = Path::new(base);
            if !base.join("cgroup.procs").is_file() {
                continue;
            }
            let dir = base.join("pgt-ops-test.slice").join(name);
            if fs::create_dir_all(&dir).is_ok() && dir.join("cgroup.procs").is_file() {
                return Some(UnitCgroup { dir });
            }
        }
        None
    }
}

impl Drop for UnitCgroup {
    fn drop(&mut self) {
        // The process was killed and reaped first (its Server dropped before this).
        for _ in 0..50 {
            if fs::remove_dir(&self.dir).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = fs::remove_dir(self.dir.parent().unwrap());
    }
}

#[test]
fn the_systemd_unit_is_read_from_the_cgroup() {
    if !common::capability("root") {
        eprintln!("SKIP: needs root to make a cgroup");
        return;
    }
    let Some((python, _)) = two_interpreters() else {
        eprintln!("SKIP: ps needs a Python 3 interpreter");
        return;
    };
    let unit = format!("pgt-ops-test-{}.service", std::process::id());
    let Some(cgroup) = UnitCgroup::make(&unit) else {
        eprintln!("SKIP: no cgroup hierarchy this test may write");
        return;
    };
    let ready = tempfile::tempdir().unwrap();
    let tree = app_tree();
    let server = serve(&python, &tree, &ready.path().join("u"));
    fs::write(cgroup.dir.join("cgroup.procs"), server.pid().to_string()).unwrap();
    settle();
    tree.write("pkg/mod.py", b"TIMEOUT = 7\n");
    let (doc, _) = ps_json(&[tree.path()]);
    let p = listed(&doc, server.pid()).unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(p["unit"], unit.as_str());
    let out = pycguard()
        .args(["--isolated", "ps"])
        .arg(tree.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("unit {unit}")), "{text}");
    drop(server);
    drop(cgroup);
}
