//! `pycguard watch` against real interpreters and real file-system events: a module
//! rewritten again and again with same-size edits whose mtime is put back, in place or by
//! atomic saves (what the interpreter cannot see) is imported with its current value within a second of the last
//! write; directories created, removed and created again stay watched; a deleted source's
//! legacy cache (a ghost the interpreter would import) is deleted; Ctrl-C exits 130; an
//! idle watch uses next to no CPU; `--output-format json` writes one object per line.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{pycguard, set_mtime, Interp, Tree};

const T: u64 = 1_700_000_000;

/// How long the first fix (and interpreter discovery) may take before `watching`.
const STARTUP: Duration = Duration::from_secs(120);

/// A running `pycguard watch`, its stdout read line by line.
struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    /// Start `pycguard watch ARGS` in `dir` and wait for its `watching` line.
    fn start(dir: &Path, args: &[&str]) -> Watch {
        let mut child = pycguard()
            .current_dir(dir)
            .args(["watch", "--isolated"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pycguard watch");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut watch = Watch {
            child,
            lines,
            seen: Vec::new(),
        };
        watch.wait_for(STARTUP, |l| {
            l.starts_with("watching ") || l.contains("\"event\":\"watching\"")
        });
        watch
    }

    /// Wait until a new line satisfies `pred`; panics with what was seen after `limit`.
    fn wait_for(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no such line within {limit:?}; watch printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Every line printed so far.
    fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGINT and wait for the exit status.
    fn interrupt(mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "watch did not stop after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The interpreters to run the edit loop with: a few 3.x series, old to new.
fn loop_interpreters() -> Vec<Interp> {
    let wanted = [(3, 8), (3, 11), (3, 13)];
    let found = common::interpreters_from(3, 0);
    let mut chosen: Vec<Interp> = wanted
        .iter()
        .filter_map(|(a, b)| {
            found
                .iter()
                .find(|i| (i.major, i.minor) == (*a, *b))
                .cloned()
        })
        .collect();
    if chosen.is_empty() {
        chosen.extend(found.into_iter().next());
    }
    chosen
}

/// Rewrite `path` with same-size `content` and put its mtime back: neither the
/// interpreter (header: mtime and size) nor a `stat` comparison sees the change.
fn hidden_edit(path: &Path, content: &str) {
    assert_eq!(
        std::fs::metadata(path).unwrap().len(),
        content.len() as u64,
        "the edit must keep the size"
    );
    let (secs, nanos) = common::mtime(path);
    std::fs::write(path, content).unwrap();
    set_mtime(path, secs as u64, nanos as u32);
}

/// The same, as an editor's atomic save does it: a new file renamed over the old one.
fn hidden_atomic_save(path: &Path, content: &str) {
    let (secs, nanos) = common::mtime(path);
    let tmp = path.with_extension("py.swp");
    std::fs::write(&tmp, content).unwrap();
    set_mtime(&tmp, secs as u64, nanos as u32);
    std::fs::rename(&tmp, path).unwrap();
}

fn module(value: u32) -> String {
    format!("VALUE = {value}\n")
}

#[test]
fn a_module_rewritten_in_a_loop_is_imported_current_within_a_second() {
    let interps = loop_interpreters();
    if interps.is_empty() {
        eprintln!("SKIP: no Python 3 interpreter");
        return;
    }
    let tree = Tree::new();
    let app = tree.join("app");
    let source = tree.write("app/settings.py", module(1000).as_bytes());
    set_mtime(&source, T, 0);
    for interp in &interps {
        interp.compile(&app, &["settings.py"], "timestamp", 0);
    }
    // Without pycguard the edit is invisible: every interpreter runs the old code.
    hidden_edit(&source, &module(1001));
    for interp in &interps {
        assert_eq!(
            interp.import_value(&app, "settings"),
            Ok("1000".into()),
            "{}: a same-size edit with its mtime put back is not seen",
            interp.version
        );
    }
    let mut watch = Watch::start(tree.path(), &[]);
    // The first fix already repaired the edit made before the watch started.
    for interp in &interps {
        assert_eq!(interp.import_value(&app, "settings"), Ok("1001".into()));
    }
    let mut last = 1001;
    for round in 0..3 {
        // A burst of rewrites, as a formatter or an editor's save loop makes them.
        for _ in 0..15 {
            last += 1;
            // Round 1 saves atomically (write, then rename over the source).
            if round == 1 {
                hidden_atomic_save(&source, &module(last));
            } else {
                hidden_edit(&source, &module(last));
            }
            std::thread::sleep(Duration::from_millis(25 + (last % 3) as u64 * 20));
        }
        let written = Instant::now();
        let want = last.to_string();
        // Latency as one interpreter sees it (for the report), then the promise itself.
        let first = &interps[0];
        let seen = loop {
            if first.import_value(&app, "settings").as_deref() == Ok(want.as_str()) {
                break written.elapsed();
            }
            assert!(
                written.elapsed() < Duration::from_secs(1),
                "round {round}: {} still imports an old value a second after the last write; watch printed:\n{}",
                first.version,
                watch.drain().join("\n")
            );
        };
        if let Some(wait) = Duration::from_secs(1).checked_sub(written.elapsed()) {
            std::thread::sleep(wait);
        }
        for interp in &interps {
            assert_eq!(
                interp.import_value(&app, "settings"),
                Ok(want.clone()),
                "round {round}: {} a second after the last write",
                interp.version
            );
        }
        common::tools::report(&format!(
            "WATCH: round {round}: {} imported the current value {:.0} ms after the last write ({} interpreters checked at 1 s)\n",
            first.version,
            seen.as_secs_f64() * 1000.0,
            interps.len()
        ));
        // Then a pause, as when the user reads the result.
        std::thread::sleep(Duration::from_millis(300));
    }
    let lines = watch.drain().to_vec();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("recompiled ./app/__pycache__/settings.")
                && l.contains("(hidden-stale; with Python")),
        "one line per repair:\n{}",
        lines.join("\n")
    );
    assert!(
        !lines.iter().any(|l| l.contains("failed to repair")),
        "no failures:\n{}",
        lines.join("\n")
    );
    let (code, _) = watch.interrupt();
    assert_eq!(code, Some(130));
}

#[test]
fn directories_created_and_removed_stay_watched_and_ghosts_are_deleted() {
    let Some(interp) = loop_interpreters().into_iter().next() else {
        eprintln!("SKIP: no Python 3 interpreter");
        return;
    };
    let tree = Tree::new();
    tree.write("keep.txt", b"");
    let mut watch = Watch::start(tree.path(), &[]);
    for generation in 0..3u32 {
        // A package appears (git checkout of a branch that has it), is compiled by the
        // interpreter, then edited invisibly.
        let pkg = tree.join("new/deeper");
        let source = tree.write("new/deeper/mod.py", module(2000 + generation).as_bytes());
        set_mtime(&source, T, 0);
        interp.compile(&pkg, &["mod.py"], "timestamp", 0);
        assert_eq!(
            interp.import_value(&pkg, "mod"),
            Ok((2000 + generation).to_string())
        );
        // Let the watch see the new caches settle before the edit.
        std::thread::sleep(Duration::from_millis(400));
        hidden_edit(&source, &module(2100 + generation));
        // (Latency is the edit loop's test; here: that the new directory is watched.)
        watch.wait_for(Duration::from_secs(20), |l| {
            l.contains("recompiled ./new/deeper/__pycache__/mod.")
        });
        assert_eq!(
            interp.import_value(&pkg, "mod"),
            Ok((2100 + generation).to_string()),
            "generation {generation}: a package in a directory created after the watch started; watch printed:\n{}",
            watch.drain().join("\n")
        );
        // The branch is left: the whole directory goes.
        std::fs::remove_dir_all(tree.join("new")).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    // A deleted module: its Python 3 caches are orphans, and Python 2's cache beside it is
    // a ghost that Python 2 still imports.
    let lib = tree.join("lib");
    let source = tree.write("lib/old.py", module(3000).as_bytes());
    // (A directory without any source left would hold a sourceless distribution.)
    tree.write("lib/other.py", b"");
    interp.compile(&lib, &["old.py"], "timestamp", 0);
    let py2 = common::interpreters().into_iter().find(|i| i.major == 2);
    match &py2 {
        Some(py2) => py2.compile(&lib, &["old.py"], "timestamp", 0),
        None => eprintln!("SKIP: no Python 2.7: the ghost part of this test"),
    }
    std::thread::sleep(Duration::from_millis(400));
    std::fs::remove_file(&source).unwrap();
    let tag = interp.tag().unwrap();
    // One round deletes both (its lines sorted by path: the orphan's first).
    let last = if py2.is_some() {
        "deleted ./lib/old.pyc (ghost;".to_owned()
    } else {
        format!("deleted ./lib/__pycache__/old.{tag}.pyc (orphan;")
    };
    watch.wait_for(Duration::from_secs(20), |l| l.contains(&last));
    assert!(
        !lib.join(format!("__pycache__/old.{tag}.pyc")).exists(),
        "the orphan is deleted; watch printed:\n{}",
        watch.drain().join("\n")
    );
    if let Some(py2) = &py2 {
        assert!(
            !lib.join("old.pyc").exists(),
            "the ghost is deleted; watch printed:\n{}",
            watch.drain().join("\n")
        );
        let imported = py2.import_value(&lib, "old");
        assert!(
            imported.as_ref().is_err_and(|e| e.contains("ImportError")),
            "{imported:?}"
        );
    }
    let lines = watch.drain().to_vec();
    let deleted = |what: &str| lines.iter().any(|l| l.contains(what));
    assert!(
        deleted(&format!("deleted ./lib/__pycache__/old.{tag}.pyc (orphan;")),
        "{}",
        lines.join("\n")
    );
    assert!(
        py2.is_none() || deleted("deleted ./lib/old.pyc (ghost;"),
        "{}",
        lines.join("\n")
    );
    assert!(
        !lines.iter().any(|l| l.contains("failed to repair")),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn ctrl_c_exits_130_promptly() {
    let tree = Tree::new();
    tree.write("a.py", b"A = 1\n");
    let watch = Watch::start(tree.path(), &[]);
    let (code, took) = watch.interrupt();
    assert_eq!(code, Some(130));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

/// Clock ticks of user and system CPU time the process has used (`/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may hold spaces: count fields after its `)`.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after `)`.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn an_idle_watch_uses_next_to_no_cpu() {
    if !Path::new("/proc/self/stat").exists() {
        eprintln!("SKIP: no /proc to read CPU times from");
        return;
    }
    let tree = Tree::new();
    for i in 0..200 {
        tree.write(format!("pkg{}/m{i}.py", i % 20), b"X = 1\n");
    }
    let watch = Watch::start(tree.path(), &[]);
    let before = cpu_ticks(watch.pid());
    let span = Duration::from_secs(5);
    std::thread::sleep(span);
    let used = cpu_ticks(watch.pid()) - before;
    // Clock ticks are (almost always) 10 ms: 5 ticks in 5 s is 1 % of a core.
    common::tools::report(&format!(
        "WATCH: idle for {span:?}: {used} clock ticks of CPU\n"
    ));
    assert!(
        used <= 5,
        "an idle watch used {used} clock ticks in {span:?}"
    );
    let (code, _) = watch.interrupt();
    assert_eq!(code, Some(130));
}

#[test]
fn json_output_is_one_object_per_line() {
    let Some(interp) = loop_interpreters().into_iter().next() else {
        eprintln!("SKIP: no Python 3 interpreter");
        return;
    };
    let tree = Tree::new();
    let app = tree.join("app");
    let source = tree.write("app/conf.py", module(4000).as_bytes());
    set_mtime(&source, T, 0);
    interp.compile(&app, &["conf.py"], "timestamp", 0);
    let mut watch = Watch::start(tree.path(), &["--output-format", "json"]);
    hidden_edit(&source, &module(4001));
    let line = watch.wait_for(Duration::from_secs(10), |l| {
        l.contains("\"event\":\"repair\"")
    });
    let lines = watch.drain().to_vec();
    let mut objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.contains(&line));
    for o in &mut objects {
        assert!(o["time"].as_f64().is_some_and(|t| t > T as f64), "{o}");
        o["time"] = "<time>".into();
        if o["event"] == "repair" {
            assert_eq!(
                o["interpreter"].as_str(),
                Some(format!("Python {}", interp.version).as_str())
            );
            o["interpreter"] = "<interpreter>".into();
            let tag = interp.tag().unwrap();
            assert_eq!(
                o["path"].as_str(),
                Some(format!("./app/__pycache__/conf.{tag}.pyc").as_str())
            );
            o["path"] = "<path>".into();
        }
    }
    insta::assert_snapshot!(objects
        .iter()
        .map(|o| serde_json::to_string(o).unwrap())
        .collect::<Vec<_>>()
        .join("\n"));
    assert_eq!(interp.import_value(&app, "conf"), Ok("4001".into()));
}
