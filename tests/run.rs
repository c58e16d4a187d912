//! `pycguard run -- CMD`: with real interpreters and real processes. CMD is exec'ed (its
//! pid, exit status and death by signal are its own); a hidden-stale cache (a same-size
//! edit whose mtime is put back) is repaired before CMD imports it, for `python app.py`
//! and for a virtualenv's console script found by its `#!` line; a problem that cannot be
//! repaired never stops the start unless `--strict`; `--timeout` starts CMD anyway; and a
//! real supervisord from PyPI restarting `command=pycguard run -- python app.py` runs the
//! new code where a plain `command=python app.py` runs the old.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{pycguard, set_mtime, tools, Interp, Tree};

const T: u64 = 1_700_000_000;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Rewrite `path` with same-size `content` and put its mtime back.
fn hidden_edit(path: &Path, content: &str) {
    assert_eq!(std::fs::metadata(path).unwrap().len(), content.len() as u64);
    let (secs, nanos) = common::mtime(path);
    std::fs::write(path, content).unwrap();
    set_mtime(path, secs as u64, nanos as u32);
}

/// `pycguard run ARGS` in `dir`, the interpreter's cache variables cleared as for
/// [`Interp::command`] (CMD inherits this environment).
fn run(dir: &Path, args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = pycguard();
    cmd.current_dir(dir)
        .arg("--isolated")
        .arg("run")
        .args(args)
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .env_remove("PYTHONOPTIMIZE")
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME");
    cmd
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// An app whose `app.py` prints `settings.VALUE`, compiled by `interp`, then edited
/// invisibly: `interp app.py` prints the old value.
fn stale_app(interp: &Interp) -> (Tree, PathBuf) {
    let tree = Tree::new();
    tree.write(
        "app/app.py",
        b"import settings\nimport sys\nsys.stdout.write('VALUE=%s\\n' % settings.VALUE)\n",
    );
    let settings = tree.write("app/settings.py", b"VALUE = 111\n");
    set_mtime(&settings, T, 0);
    let app = tree.join("app");
    let mode = if interp.major == 2 {
        "legacy"
    } else {
        "timestamp"
    };
    interp.compile(&app, &["settings.py"], mode, 0);
    hidden_edit(&settings, "VALUE = 222\n");
    let plain = interp
        .command(&app)
        .arg("app.py")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "VALUE=111\n",
        "{}: without pycguard the old cache runs: {}",
        interp.version,
        text(&plain)
    );
    (tree, app)
}

/// A virtualenv of `base` at `venv` (no pip: nothing is installed into it).
fn make_virtualenv(base: &Interp, venv: &Path) {
    let made = Command::new(&base.path)
        .args(["-m", "venv", "--without-pip"])
        .arg(venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
}

/// The command ran the edited code (`VALUE=222`) after pycguard recompiled its cache.
fn assert_repaired_then_ran(out: &Output) {
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "VALUE=222\n",
        "{}",
        text(out)
    );
    assert!(text(out).contains("pycguard: recompiled "), "{}", text(out));
}

#[test]
fn exec_keeps_the_pid_the_exit_status_and_the_signal() {
    let Some(interp) = common::interpreters_from(3, 0).into_iter().last() else {
        eprintln!("SKIP: no Python 3 interpreter");
        return;
    };
    let tree = Tree::new();
    let python = interp.path.as_os_str();
    let mut child = run(tree.path(), &[
        os("--"),
        python,
        os("-c"),
        os("import os, sys; sys.stdout.write('%d\\n' % os.getpid()); sys.stdout.flush(); sys.exit(sys.stdin.read().count('x'))"),
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), child.id().to_string(), "the same process");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"xxxxxxx").unwrap();
    }
    assert_eq!(child.wait().unwrap().code(), Some(7), "CMD's exit status");

    // A signal reaches CMD itself, and its death by the signal is the status.
    let mut child = run(
        tree.path(),
        &[
            os("--"),
            python,
            os("-c"),
            os("import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(60)"),
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "up\n");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(15));

    // A CMD that does not exist: 127, as a shell says.
    let out = run(tree.path(), &[os("--"), os("no-such-command-pgw")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
}

#[test]
fn a_hidden_stale_edit_is_repaired_before_the_command_imports_it() {
    let interps = common::interpreters();
    std::thread::scope(|scope| {
        for interp in &interps {
            scope.spawn(move || {
                let (_tree, app) = stale_app(interp);
                let out = run(&app, &[os("--"), interp.path.as_os_str(), os("app.py")])
                    .output()
                    .unwrap();
                assert_eq!(out.status.code(), Some(0), "{}", text(&out));
                assert_eq!(
                    String::from_utf8_lossy(&out.stdout),
                    "VALUE=222\n",
                    "{}: {}",
                    interp.version,
                    text(&out)
                );
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    err.lines().any(|l| l.starts_with("pycguard: recompiled ")
                        && l.contains("settings.")
                        && l.contains("(hidden-stale; with Python")),
                    "{}: one line per problem on stderr: {err}",
                    interp.version
                );
            });
        }
    });
}

#[test]
fn a_virtualenv_console_script_is_found_by_its_shebang() {
    let Some(base) = tools::default_python() else {
        eprintln!("SKIP: no Python 3.12 to make a virtualenv with");
        return;
    };
    let (tree, app) = stale_app(&base);
    let venv = tree.join("venv");
    make_virtualenv(&base, &venv);
    // What pip writes for a console script: the venv's python in the #! line.
    let script = venv.join("bin/serve");
    std::fs::write(
        &script,
        format!(
            "#!{}\nimport runpy, sys\nsys.path.insert(0, {:?})\nrunpy.run_path({:?}, run_name='__main__')\n",
            venv.join("bin/python").display(),
            app.display().to_string(),
            app.join("app.py").display().to_string()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(&app, &[os("--"), os("serve")])
        .env("PATH", path)
        .output()
        .unwrap();
    assert_repaired_then_ran(&out);
}

/// `python -m PKG` where PKG is found through a `.pth` file of the virtualenv (as an
/// editable install puts it), outside the current directory and the virtualenv: the
/// package's tree is found as `pycguard why` finds it, and its hidden-stale cache is
/// repaired before the command imports it.
#[test]
fn a_module_run_with_dash_m_is_found_where_import_finds_it() {
    let Some(base) = tools::default_python() else {
        eprintln!("SKIP: no Python 3.12 to make a virtualenv with");
        return;
    };
    let tree = Tree::new();
    tree.write("src/srvapp/__init__.py", b"");
    tree.write(
        "src/srvapp/__main__.py",
        b"import sys\nfrom srvapp import settings\nsys.stdout.write('VALUE=%s\\n' % settings.VALUE)\n",
    );
    let settings = tree.write("src/srvapp/settings.py", b"VALUE = 111\n");
    set_mtime(&settings, T, 0);
    let pkg = tree.join("src/srvapp");
    base.compile(&pkg, &["settings.py"], "timestamp", 0);
    hidden_edit(&settings, "VALUE = 222\n");
    let venv = tree.join("venv");
    make_virtualenv(&base, &venv);
    let site = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .map(|e| e.unwrap().path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("the venv's site-packages");
    std::fs::write(
        site.join("srvapp.pth"),
        format!("{}\n", tree.join("src").display()),
    )
    .unwrap();
    let python = venv.join("bin/python");
    let plain = Command::new(&python)
        .current_dir("/")
        .args(["-m", "srvapp"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPYCACHEPREFIX")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "VALUE=111\n",
        "without pycguard the old cache runs: {}",
        text(&plain)
    );
    let out = run(
        Path::new("/"),
        &[os("--"), python.as_os_str(), os("-m"), os("srvapp")],
    )
    .env_remove("PYTHONPYCACHEPREFIX")
    .output()
    .unwrap();
    assert_repaired_then_ran(&out);
}

#[test]
fn the_optimisation_level_of_the_command_decides_which_caches_are_repaired() {
    let Some(interp) = common::interpreters_from(3, 5).into_iter().last() else {
        eprintln!("SKIP: no Python 3.5+ interpreter");
        return;
    };
    let tree = Tree::new();
    let app = tree.join("app");
    tree.write(
        "app/app.py",
        b"import settings, sys\nsys.stdout.write('VALUE=%s\\n' % settings.VALUE)\n",
    );
    let settings = tree.write("app/settings.py", b"VALUE = 1\n");
    set_mtime(&settings, T, 0);
    interp.compile(&app, &["settings.py"], "timestamp", 0);
    interp.compile(&app, &["settings.py"], "timestamp", 1);
    hidden_edit(&settings, "VALUE = 2\n");
    let tag = interp.tag().unwrap();
    let level0 = app.join(format!("__pycache__/settings.{tag}.pyc"));
    let before = std::fs::read(&level0).unwrap();
    // PYTHONOPTIMIZE=1: the interpreter reads .opt-1 caches only; those are repaired.
    let out = run(&app, &[os("--"), interp.path.as_os_str(), os("app.py")])
        .env("PYTHONOPTIMIZE", "1")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "VALUE=2\n",
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains(".opt-1.pyc (hidden-stale"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(&level0).unwrap(),
        before,
        "the level-0 cache is another run's"
    );
    // -E ignores PYTHONOPTIMIZE: now the level-0 cache is the one read.
    let out = run(
        &app,
        &[os("--"), interp.path.as_os_str(), os("-E"), os("app.py")],
    )
    .env("PYTHONOPTIMIZE", "1")
    .output()
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "VALUE=2\n",
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!("settings.{tag}.pyc (hidden-stale")),
        "{}",
        text(&out)
    );
}

/// A module whose edit gives it a syntax error (same size, mtime put back): its cache
/// cannot be repaired.
fn unrepairable(tree: &Tree, interp: &Interp) {
    let stray = tree.write("app/stray.py", b"X = 1\n");
    set_mtime(&stray, T, 0);
    interp.compile(&tree.join("app"), &["stray.py"], "timestamp", 0);
    hidden_edit(&stray, "X = (\n");
}

#[test]
fn only_strict_blocks_the_start_on_what_cannot_be_repaired() {
    let Some(interp) = common::interpreters_from(3, 0).into_iter().last() else {
        eprintln!("SKIP: no Python 3 interpreter");
        return;
    };
    let (tree, app) = stale_app(&interp);
    unrepairable(&tree, &interp);
    let python = interp.path.as_os_str();
    let out = run(&app, &[os("--"), python, os("app.py")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "VALUE=222\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pycguard: failed to repair ") && err.contains("stray."),
        "{err}"
    );
    // The same again with --strict: the command does not start.
    hidden_edit(&tree.join("app/settings.py"), "VALUE = 333\n");
    let out = run(&app, &[os("--strict"), os("--"), python, os("app.py")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "not started");
    assert!(
        text(&out).contains("1 problem remains (--strict): not starting the command"),
        "{}",
        text(&out)
    );
    // --check reports and starts; --check --strict blocks too.
    let out = run(&app, &[os("--check"), os("--"), python, os("app.py")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("pycguard: hidden-stale "),
        "{}",
        text(&out)
    );
    let out = run(
        &app,
        &[
            os("--check"),
            os("--strict"),
            os("--"),
            python,
            os("app.py"),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn the_time_budget_starts_the_command_anyway() {
    let Some(interp) = common::interpreters_from(3, 0).into_iter().last() else {
        eprintln!("SKIP: no Python 3 interpreter");
        return;
    };
    let (tree, app) = stale_app(&interp);
    // A source whose proof hangs the worker (pycguard's test fault injection).
    let hang = tree.write("app/hang.py", b"X = 'PYCGUARD-TEST-HANG'\n");
    set_mtime(&hang, T, 0);
    interp.compile(&app, &["hang.py"], "timestamp", 0);
    let python = interp.path.as_os_str();
    let started = Instant::now();
    let out = run(
        &app,
        &[os("--timeout"), os("2"), os("--"), python, os("app.py")],
    )
    .env("PYCGUARD_TEST_WORKER_FAULT", "1")
    .output()
    .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("did not finish within 2 s; starting the command anyway"),
        "{}",
        text(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("VALUE="));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let out = run(
        &app,
        &[
            os("--strict"),
            os("--timeout"),
            os("2"),
            os("--"),
            python,
            os("app.py"),
        ],
    )
    .env("PYCGUARD_TEST_WORKER_FAULT", "1")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

/// A running `supervisord -n` with a config in `dir`.
struct Supervisor {
    child: std::process::Child,
    venv: tools::ToolVenv,
    conf: PathBuf,
}

impl Supervisor {
    fn ctl(&self, args: &[&str]) -> Output {
        tools::output_with_timeout(
            self.venv
                .command(self.venv.bin("supervisorctl"), Path::new("/"))
                .arg("-c")
                .arg(&self.conf)
                .args(args),
            Duration::from_secs(60),
        )
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.ctl(&["shutdown"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until `path` has `n` lines, the last being `want`; the content otherwise.
fn line_becomes(path: &Path, n: usize, want: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let content = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = content.lines().collect();
        if lines.len() >= n {
            return if lines[n - 1] == want {
                Ok(())
            } else {
                Err(content)
            };
        }
        if Instant::now() > deadline {
            return Err(content);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn supervisor_restart_runs_the_new_code() {
    let Some(venv) = tools::venv("supervisor-4.3", &["supervisor==4.3.0"]) else {
        return;
    };
    let Some(interp) = common::interpreters_from(3, 0)
        .into_iter()
        .find(|i| i.at_least(3, 8))
    else {
        eprintln!("SKIP: no Python 3.8+ for the supervised app");
        return;
    };
    let tree = Tree::new();
    let dir = tree.path();
    // Two copies of one app: one started through pycguard run, one plainly.
    let app_py = "import sys, time\nimport settings\nsys.stdout.write('VALUE=%s\\n' % settings.VALUE)\nsys.stdout.flush()\ntime.sleep(3600)\n";
    for name in ["guarded", "plain"] {
        tree.write(format!("{name}/app.py"), app_py.as_bytes());
        let settings = tree.write(format!("{name}/settings.py"), b"VALUE = 1\n");
        set_mtime(&settings, T, 0);
    }
    let pycguard_bin = env!("CARGO_BIN_EXE_pycguard");
    let python = interp.path.display();
    let conf = dir.join("supervisord.conf");
    std::fs::write(
        &conf,
        format!(
            "[unix_http_server]\nfile={d}/supervisor.sock\n\n\
             [supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\nchildlogdir={d}\n\n\
             [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
             [supervisorctl]\nserverurl=unix://{d}/supervisor.sock\n\n\
             [program:guarded]\ncommand={pycguard_bin} --isolated run -- {python} app.py\ndirectory={d}/guarded\n\
             startsecs=0\nautorestart=false\nstopsignal=TERM\nstopwaitsecs=5\n\
             stdout_logfile={d}/guarded.out\nstderr_logfile={d}/guarded.err\n\n\
             [program:plain]\ncommand={python} app.py\ndirectory={d}/plain\n\
             startsecs=0\nautorestart=false\nstopwaitsecs=5\n\
             stdout_logfile={d}/plain.out\nstderr_logfile={d}/plain.err\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = venv
        .command(venv.bin("supervisord"), Path::new("/"))
        .arg("-n")
        .arg("-c")
        .arg(&conf)
        .env("PYCGUARD_CACHE_DIR", common::test_cache_dir())
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let supervisor = Supervisor {
        child,
        venv: venv.clone(),
        conf,
    };
    let limit = Duration::from_secs(60);
    for name in ["guarded", "plain"] {
        line_becomes(&dir.join(format!("{name}.out")), 1, "VALUE=1", limit)
            .unwrap_or_else(|out| panic!("{name} did not start: {out}"));
    }
    // The first run wrote its caches; now a same-size edit in the same second.
    for name in ["guarded", "plain"] {
        let tag = interp.tag().unwrap();
        assert!(
            dir.join(format!("{name}/__pycache__/settings.{tag}.pyc"))
                .exists(),
            "the app's first run wrote its cache"
        );
        hidden_edit(&dir.join(format!("{name}/settings.py")), "VALUE = 2\n");
    }
    for name in ["guarded", "plain"] {
        let out = supervisor.ctl(&["restart", name]);
        assert!(
            out.status.success(),
            "supervisorctl restart {name}: {}",
            text(&out)
        );
    }
    line_becomes(&dir.join("guarded.out"), 2, "VALUE=2", limit).unwrap_or_else(|out| {
        panic!(
            "after supervisorctl restart, pycguard run starts the new code: {out}\n{}",
            std::fs::read_to_string(dir.join("guarded.err")).unwrap_or_default()
        )
    });
    line_becomes(&dir.join("plain.out"), 2, "VALUE=1", limit)
        .unwrap_or_else(|out| panic!("without pycguard the old code runs again: {out}"));
    let err = std::fs::read_to_string(dir.join("guarded.err")).unwrap_or_default();
    assert!(err.contains("pycguard: recompiled "), "{err}");
    // supervisord's process is the app itself (exec): its pid runs app.py.
    let pid = String::from_utf8(supervisor.ctl(&["pid", "guarded"]).stdout).unwrap();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("app.py")
            && !String::from_utf8_lossy(&cmdline).contains("pycguard"),
        "pid {pid}: {:?}",
        String::from_utf8_lossy(&cmdline)
    );
    drop(supervisor);
}

/// The code block of the README that follows `heading`, with the machine's paths in.
fn readme_block(heading: &str, tree: &Path) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let after = &readme[readme
        .find(heading)
        .unwrap_or_else(|| panic!("README: {heading}"))..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let block = &body[..body.find("```").unwrap()];
    block
        .replace("/usr/local/bin/pycguard", env!("CARGO_BIN_EXE_pycguard"))
        .replace("/opt/app", &tree.display().to_string())
        .replace(" /app", &format!(" {}", tree.display()))
}

/// The README's service recipes, as far as this machine can run them: the systemd unit
/// passes `systemd-analyze verify` and its `ExecStartPre=` repairs; the Dockerfile step
/// compiles checked-hash caches the interpreter then verifies itself; the cron line is
/// silent on a healthy tree and lists what it cannot repair. (The supervisor recipe is
/// `supervisor_restart_runs_the_new_code`.)
#[test]
fn the_readme_service_recipes_work() {
    let Some(interp) = common::interpreters_from(3, 8).into_iter().last() else {
        eprintln!("SKIP: no Python 3.8+ interpreter");
        return;
    };
    // systemd
    let (tree, app) = stale_app(&interp);
    let unit = readme_block("### systemd", &app);
    let gunicorn = app.join("venv/bin/gunicorn");
    std::fs::create_dir_all(gunicorn.parent().unwrap()).unwrap();
    std::fs::write(&gunicorn, "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gunicorn, std::fs::Permissions::from_mode(0o755)).unwrap();
    if tools::have_program("systemd-analyze") {
        let unit_file = tree.join("pgw-watch-app.service");
        std::fs::write(&unit_file, format!("[Unit]\nDescription=app\n\n{unit}")).unwrap();
        let out = tools::output_with_timeout(
            Command::new("systemd-analyze")
                .arg("verify")
                .arg(&unit_file),
            Duration::from_secs(60),
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("bad unit file setting")
                && !String::from_utf8_lossy(&out.stderr).contains("Neither a valid executable"),
            "systemd-analyze verify:\n{}\n{unit}",
            text(&out)
        );
    } else {
        eprintln!("SKIP: no systemd-analyze to verify the README's unit with");
    }
    let pre = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStartPre=+"))
        .expect("the unit's ExecStartPre=+");
    let words: Vec<&str> = pre.split_whitespace().collect();
    let out = Command::new(words[0])
        .args(&words[1..])
        .env("PYCGUARD_CACHE_DIR", common::test_cache_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{pre}: {}", text(&out));
    assert_eq!(
        interp.import_value(&app, "settings"),
        Ok("222".into()),
        "{pre}"
    );

    // Docker: a tree without caches, python3 on PATH being `interp`.
    let docker = Tree::new();
    let settings = docker.write("settings.py", b"VALUE = 1\n");
    set_mtime(&settings, T, 0);
    let bin = Tree::new();
    std::os::unix::fs::symlink(&interp.path, bin.join("python3")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pycguard"), bin.join("pycguard")).unwrap();
    let step = readme_block("### Docker", docker.path());
    let step = step
        .trim()
        .strip_prefix("RUN ")
        .expect("a RUN step")
        .replace("\\\n", " ");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = pycguard_env(Command::new("sh").arg("-c").arg(&step))
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{step}: {}", text(&out));
    let tag = interp.tag().unwrap();
    let cache = std::fs::read(docker.join(format!("__pycache__/settings.{tag}.pyc"))).unwrap();
    assert_eq!(cache[4] & 0b11, 0b11, "a checked-hash cache");
    hidden_edit(&settings, "VALUE = 2\n");
    assert_eq!(
        interp.import_value(docker.path(), "settings"),
        Ok("2".into()),
        "the interpreter verifies checked-hash caches itself"
    );

    // cron: silent when all is well, the failures listed when not.
    let healthy = Tree::new();
    healthy.write("ok.py", b"X = 1\n");
    let cron_line = |tree: &Path| {
        let line = readme_block("### cron", tree);
        // Five time fields and the user, then the command.
        let mut rest = line.trim();
        for _ in 0..6 {
            rest = rest.trim_start();
            rest = &rest[rest.find(char::is_whitespace).unwrap()..];
        }
        rest.trim().to_owned()
    };
    let command = cron_line(healthy.path());
    let out = pycguard_env(Command::new("sh").arg("-c").arg(&command))
        .output()
        .unwrap();
    assert!(out.status.success(), "{command}: {}", text(&out));
    assert_eq!(text(&out), "", "cron mails nothing");
    let broken = Tree::new();
    unrepairable(&broken, &interp);
    let command = cron_line(broken.path());
    let out = pycguard_env(Command::new("sh").arg("-c").arg(&command))
        .output()
        .unwrap();
    assert!(
        text(&out).contains("failed to repair"),
        "{command}: {}",
        text(&out)
    );
}

/// A shell command running pycguard, with the test's cache directory.
fn pycguard_env(cmd: &mut Command) -> &mut Command {
    cmd.env("PYCGUARD_CACHE_DIR", common::test_cache_dir())
        .env("NO_COLOR", "1")
        .env_remove("PYTHONPYCACHEPREFIX")
        .env_remove("SOURCE_DATE_EPOCH")
}
