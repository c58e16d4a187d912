//! The command-line habits of ruff and uv, in every command (issue 11 §5): `-q` prints the
//! problems and nothing else, `-qq`/`--silent` nothing, `-v` also the fresh caches and what
//! was skipped; the output formats; completions, man page and help examples; the progress
//! bar; messages; filters that cannot match; `clean --dry-run`.
//!
//! Most fixtures need no interpreter: PyPy 3.10 caches (their bodies are never walked)
//! judged by header. Where an interpreter must compile, the first one found is used, and
//! the test prints `SKIP:` without one.

mod common;

use std::process::Output;

use common::{pycguard, set_mtime, Tree};

const T: u64 = 1_700_000_000;

/// A PyPy 3.10 cache (magic 384) whose header records a source of `mtime` and `size`.
fn pypy310_cache_at(mtime: u32, size: u8) -> Vec<u8> {
    let mut bytes = vec![0x80, 0x01, 0x0d, 0x0a, 0, 0, 0, 0];
    bytes.extend_from_slice(&mtime.to_le_bytes());
    bytes.extend_from_slice(&[size, 0, 0, 0]);
    bytes.extend_from_slice(b"\xe3body");
    bytes
}

/// A fresh cache, a stale one, an orphan, and a virtualenv the walk skips.
fn fixture() -> Tree {
    let tree = Tree::new();
    let source = tree.write("app/s.py", b"changed source\n");
    set_mtime(&source, T, 0);
    tree.write("app/__pycache__/s.pypy310.pyc", &pypy310_cache_at(0, 1));
    let fresh = tree.write("app/f.py", b"fresh\n");
    set_mtime(&fresh, T, 0);
    tree.write(
        "app/__pycache__/f.pypy310.pyc",
        &pypy310_cache_at(T as u32, 6),
    );
    tree.write("app/__pycache__/gone.cpython-39.pyc", b"not a cache");
    tree.write(".venv/pyvenv.cfg", b"home = /usr/bin\n");
    tree.write(".venv/lib/__pycache__/x.cpython-312.pyc", b"x");
    tree
}

const FRESH: &str = "app/__pycache__/f.pypy310.pyc";
const STALE: &str = "app/__pycache__/s.pypy310.pyc";
const ORPHAN: &str = "app/__pycache__/gone.cpython-39.pyc";

fn run(tree: &Tree, args: &[&str]) -> Output {
    pycguard()
        .current_dir(tree.path())
        .arg("--isolated")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `-qq` and `--silent` (and `-s`) print nothing and exit as the normal run does.
fn assert_silent(tree: &Tree, args: &[&str], status: Option<i32>) {
    for flag in ["-qq", "--silent", "-s"] {
        let mut with: Vec<&str> = args.to_vec();
        with.push(flag);
        let out = run(tree, &with);
        assert_eq!(out.status.code(), status, "{with:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{with:?} printed on stdout");
        assert_eq!(stderr(&out), "", "{with:?} printed on stderr");
    }
}

#[test]
fn check_verbosity_levels() {
    let tree = fixture();
    let normal = run(&tree, &["check"]);
    assert_eq!(normal.status.code(), Some(0), "{}", stderr(&normal));
    let text = stdout(&normal);
    assert!(text.contains("caches checked in"), "{text}");
    assert!(text.contains(STALE) && text.contains(ORPHAN), "{text}");
    assert!(
        !text.contains(FRESH),
        "a fresh cache listed without -v: {text}"
    );
    assert!(text.contains("1 virtual environment"), "{text}");

    // -q: the problems and nothing else.
    let quiet = run(&tree, &["check", "-q"]);
    assert_eq!(quiet.status.code(), Some(0));
    let q = stdout(&quiet);
    assert!(q.contains(STALE) && q.contains(ORPHAN), "{q}");
    assert!(!q.contains("checked in"), "-q printed the summary: {q}");
    assert!(!q.contains("virtual environment"), "-q printed a note: {q}");
    assert!(!q.contains("--deep"), "-q printed the hint: {q}");
    // `pycguard -q check` is the same.
    assert_eq!(stdout(&run(&tree, &["-q", "check"])), q);

    // --strict: the stale cache fails the run; -qq says so by the status alone.
    assert_silent(&tree, &["check"], Some(0));
    assert_silent(&tree, &["check", "--strict"], Some(1));
    assert_silent(&tree, &["check", "--output-format", "json"], Some(0));

    // -v: the fresh caches too, and each directory skipped.
    let verbose = run(&tree, &["check", "-v"]);
    let v = stdout(&verbose);
    assert!(v.contains(FRESH), "{v}");
    assert!(v.contains("fresh (1)"), "{v}");
    assert!(v.contains("skipped ./.venv/"), "{v}");
    assert!(v.contains("caches checked in"), "{v}");

    // -q and -v contradict each other: a usage error.
    assert_eq!(run(&tree, &["check", "-q", "-v"]).status.code(), Some(2));
}

#[test]
fn fix_verbosity_levels() {
    let tree = fixture();
    let args = ["fix", "--shallow", "--dry-run"];
    let normal = run(&tree, &args);
    assert_eq!(normal.status.code(), Some(0), "{}", stderr(&normal));
    let text = stdout(&normal);
    assert!(text.contains(&format!("would delete ./{STALE}")), "{text}");
    assert!(text.contains("would have repaired 0, deleted 2"), "{text}");
    assert!(!text.contains(FRESH), "{text}");

    let quiet = run(&tree, &[&args[..], &["-q"]].concat());
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(stdout(&quiet), "", "nothing failed, so -q prints nothing");
    assert_silent(&tree, &args, Some(0));

    let v = stdout(&run(&tree, &[&args[..], &["-v"]].concat()));
    assert!(v.contains(&format!("fresh ./{FRESH}")), "{v}");
    assert!(v.contains("skipped ./.venv/"), "{v}");
}

#[test]
fn clean_verbosity_levels() {
    let tree = fixture();
    let normal = run(&tree, &["clean", "--state", "orphan"]);
    assert_eq!(normal.status.code(), Some(0), "{}", stderr(&normal));
    let text = stdout(&normal);
    assert!(text.starts_with("removed 1 cache"), "{text}");
    assert!(!text.contains(&format!("removed ./{ORPHAN}")), "{text}");

    let tree = fixture();
    let quiet = run(&tree, &["clean", "--state", "orphan", "-q"]);
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(stdout(&quiet), "", "nothing failed, so -q prints nothing");
    assert!(!tree.join(ORPHAN).exists(), "-q still removes");

    let tree = fixture();
    assert_silent(&tree, &["clean", "--dry-run"], Some(0));
    let v = stdout(&run(&tree, &["clean", "--state", "orphan", "-v"]));
    assert!(v.contains(&format!("removed ./{ORPHAN}")), "{v}");
    assert!(v.contains("skipped ./.venv/"), "{v}");
}

#[test]
fn compile_verbosity_levels() {
    let Some(python) = common::interpreters().into_iter().find(|i| i.major == 3) else {
        eprintln!("SKIP: no Python 3 to compile with");
        return;
    };
    let py = python.path.to_str().unwrap().to_owned();
    let tree = Tree::new();
    tree.write("pkg/a.py", b"A = 1\n");
    let normal = run(&tree, &["compile", "--dry-run", "--python", &py]);
    assert_eq!(normal.status.code(), Some(0), "{}", stderr(&normal));
    let text = stdout(&normal);
    assert!(text.contains("compiling for"), "{text}");
    assert!(text.contains("would compile 1,"), "{text}");

    let quiet = run(&tree, &["compile", "--python", &py, "-q"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    assert_eq!(stdout(&quiet), "", "nothing failed, so -q prints nothing");
    assert!(tree
        .join(format!("pkg/__pycache__/a.{}.pyc", python.tag().unwrap()))
        .is_file());
    assert_silent(&tree, &["compile", "--python", &py, "--force"], Some(0));

    let v = stdout(&run(&tree, &["compile", "--python", &py, "--force", "-v"]));
    assert!(v.contains("compiled ./pkg/a.py -> "), "{v}");
}

#[test]
fn inspect_and_interpreters_verbosity_levels() {
    let tree = fixture();
    let both = ["inspect", FRESH, STALE];
    let normal = stdout(&run(&tree, &both));
    assert!(normal.contains(FRESH) && normal.contains(STALE), "{normal}");
    let quiet = stdout(&run(&tree, &[&both[..], &["-q"]].concat()));
    assert!(quiet.contains(STALE), "{quiet}");
    assert!(!quiet.contains(FRESH), "-q showed a fresh cache: {quiet}");
    assert_silent(&tree, &both, Some(0));

    let Some(python) = common::interpreters().into_iter().find(|i| i.major == 3) else {
        eprintln!("SKIP: no Python 3 for `interpreters`");
        return;
    };
    let py = python.path.to_str().unwrap();
    let normal = stdout(&run(&tree, &["interpreters", "--python", py]));
    assert!(normal.contains("FOUND VIA"), "{normal}");
    assert!(normal.contains("need PyPy 3.10"), "{normal}");
    let quiet = stdout(&run(&tree, &["interpreters", "--python", py, "-q"]));
    assert!(
        !quiet.contains("FOUND VIA"),
        "-q printed the table: {quiet}"
    );
    assert!(quiet.contains("need PyPy 3.10"), "{quiet}");
    assert_silent(&tree, &["interpreters", "--python", py], Some(0));
}

/// Every line of `out` parsed as one JSON object with a `"type"`.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
            assert!(v["type"].is_string(), "no type: {line}");
            v
        })
        .collect()
}

#[test]
fn json_lines_of_every_command() {
    let tree = fixture();
    let out = run(&tree, &["check", "--output-format", "json-lines"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let (doc, _) = common::check_json(tree.path(), &["--isolated"]);
    assert_eq!(lines.len(), doc["caches"].as_array().unwrap().len());
    for (line, cache) in lines.iter().zip(doc["caches"].as_array().unwrap()) {
        assert_eq!(line["type"], "cache");
        let mut line = line.clone();
        line.as_object_mut().unwrap().remove("type");
        assert_eq!(
            &line, cache,
            "a json-lines cache is the JSON report's cache"
        );
    }
    insta::assert_snapshot!("check_json_lines", stdout(&out));

    let out = run(&tree, &["fix", "-n", "--shallow", "--format", "json-lines"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "one object per action");
    insta::assert_snapshot!("fix_json_lines", stdout(&out));

    let out = run(&tree, &["clean", "-n", "--output-format", "json-lines"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kinds: Vec<_> = json_lines(&out)
        .iter()
        .map(|v| v["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.iter().filter(|k| *k == "removed").count() == 3,
        "{kinds:?}"
    );
    insta::assert_snapshot!("clean_json_lines", stdout(&out));

    let out = run(
        &tree,
        &["inspect", "--output-format", "json-lines", FRESH, STALE],
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|v| v["type"] == "file"));
}

#[test]
fn github_annotations() {
    let tree = fixture();
    // Property values escape ':' and ',' (and '%'); the message '%', CR and LF.
    tree.write("app/__pycache__/we,ird:100%.cpython-39.pyc", b"x");
    let out = run(&tree, &["check", "--output-format", "github"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines().all(|l| l.starts_with("::warning ")
            || l.starts_with("::error ")
            || l.starts_with("::notice ")),
        "{text}"
    );
    assert!(
        !text.contains("f.pypy310.pyc"),
        "a fresh cache annotated: {text}"
    );
    assert!(
        text.contains("file=app/__pycache__/we%2Cird%3A100%25.cpython-39.pyc,title=pycguard%3A orphan cache::"),
        "{text}"
    );
    insta::assert_snapshot!("check_github", text);
    // --format is the same flag.
    assert_eq!(stdout(&run(&tree, &["check", "--format", "github"])), text);
    // A problem-free run prints no annotation.
    let clean = Tree::new();
    let out = run(&clean, &["check", "--output-format", "github"]);
    assert_eq!(stdout(&out), "");
}

#[test]
fn github_annotation_of_a_syntax_error_names_its_line() {
    let Some(python) = common::interpreters().into_iter().find(|i| i.major == 3) else {
        eprintln!("SKIP: no Python 3 to compile with");
        return;
    };
    let tree = Tree::new();
    tree.write("pkg/ok.py", b"A = 1\n");
    tree.write("pkg/bad.py", b"A = 1\n\ndef f(:\n    pass\n");
    let py = python.path.to_str().unwrap();
    let out = run(
        &tree,
        &["compile", "--python", py, "--output-format", "github"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("::error file=pkg/bad.py,line=3,title=pycguard%3A failed to compile::"),
        "{text}"
    );
    let out = run(
        &tree,
        &["compile", "--python", py, "--output-format", "json-lines"],
    );
    let lines = json_lines(&out);
    assert_eq!(lines.iter().filter(|v| v["type"] == "failed").count(), 1);
}

/// The commands as `pycguard --help` lists them (every one has examples and a man page).
const COMMANDS: [&str; 8] = [
    "check",
    "inspect",
    "interpreters",
    "clean",
    "fix",
    "compile",
    "completions",
    "man",
];

/// The subcommands `pycguard --help` lists (but `help`): new commands are held to the
/// same rules.
fn listed_commands() -> Vec<String> {
    let out = pycguard().arg("--help").output().unwrap();
    let text = stdout(&out);
    let (_, after) = text.split_once("Commands:\n").expect("a Commands section");
    let names: Vec<String> = after
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect();
    for command in COMMANDS {
        assert!(names.iter().any(|n| n == command), "{command} not listed");
    }
    names
}

#[test]
fn every_help_ends_with_examples() {
    let tree = Tree::new();
    let commands = listed_commands();
    let mut pages: Vec<Vec<&str>> = vec![vec!["--help"], vec!["-h"]];
    for command in &commands {
        pages.push(vec![command, "--help"]);
        pages.push(vec![command, "-h"]);
    }
    for args in pages {
        let out = run(&tree, &args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = stdout(&out);
        let (_, examples) = text
            .rsplit_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("{args:?} has no examples:\n{text}"));
        let lines: Vec<&str> = examples.lines().collect();
        assert!(
            (2..=3).contains(&lines.len()),
            "{args:?}: two or three examples, then nothing: {lines:?}"
        );
        for line in lines {
            assert!(
                line.starts_with("  pycguard ") || line.starts_with("  sudo pycguard "),
                "{args:?}: {line:?}"
            );
            if args.len() == 2 {
                assert!(
                    line.contains(&format!("pycguard {} ", args[0])),
                    "{args:?}: {line}"
                );
            }
        }
    }
}

#[test]
fn shell_completions() {
    let tree = Tree::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&tree, &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for word in COMMANDS
            .iter()
            .chain(&["output-format", "json-lines", "silent"])
        {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        let checker = std::process::Command::new(shell)
            .arg("-n")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let Ok(mut checker) = checker else {
            eprintln!("SKIP: no {shell} to check the syntax of its completion script");
            continue;
        };
        use std::io::Write;
        checker
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let done = checker.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "{shell} -n: {}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    assert_eq!(run(&tree, &["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_pages() {
    let tree = Tree::new();
    let out = run(&tree, &["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH pycguard 1"), "{page}");
    for command in COMMANDS {
        assert!(
            page.contains(command),
            "pycguard(1) does not name {command}"
        );
    }
    for command in COMMANDS {
        let out = run(&tree, &["man", command]);
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        let page = stdout(&out);
        assert!(
            page.contains(&format!(".TH pycguard-{command} 1")),
            "{page}"
        );
    }
    let check = stdout(&run(&tree, &["man", "check"]));
    assert!(check.contains("\\-\\-deep") && check.contains("\\-\\-output\\-format"));
    // groff renders it without a warning.
    let rendered = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    match rendered {
        Ok(mut groff) => {
            use std::io::Write;
            groff
                .stdin
                .take()
                .unwrap()
                .write_all(page.as_bytes())
                .unwrap();
            let done = groff.wait_with_output().unwrap();
            assert!(done.status.success());
            assert_eq!(String::from_utf8_lossy(&done.stderr), "", "groff warned");
        }
        Err(_) => eprintln!("SKIP: no groff to render the man page"),
    }
    let out = run(&tree, &["man", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no command \"nosuch\""),
        "{}",
        stderr(&out)
    );
}

/// Run `args` of pycguard in `dir` on a pseudo-terminal (util-linux `script`), returning
/// what the terminal received and the exit status; `interrupt_when` sends SIGINT to
/// pycguard once the terminal shows that text. `None` without `script`.
fn on_terminal(
    dir: &std::path::Path,
    args: &[&str],
    interrupt_when: Option<&str>,
) -> Option<(String, Option<i32>)> {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: no `script` to give pycguard a terminal");
        return None;
    }
    let bin = pycguard().get_program().to_owned();
    let mut line = format!("exec {}", bin.to_str().unwrap());
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    // The same environment, on a terminal: `script` runs the line in a shell that execs
    // pycguard.
    let template = pycguard();
    let mut cmd = std::process::Command::new("script");
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.args(["-qfec", &line, "/dev/null"])
        .current_dir(dir)
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let mut script = cmd.spawn().unwrap();
    let mut stdout = script.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    if let Some(text) = interrupt_when {
        let started = std::time::Instant::now();
        while !String::from_utf8_lossy(&seen.lock().unwrap()).contains(text) {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "the terminal never showed {text:?}: {:?}",
                String::from_utf8_lossy(&seen.lock().unwrap())
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let pid = child_of(script.id()).expect("pycguard under script");
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    }
    let status = script.wait().unwrap();
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    Some((text, status.code().or(status.signal().map(|s| 128 + s))))
}

/// The pid of a child of `parent` (from /proc).
fn child_of(parent: u32) -> Option<u32> {
    for _ in 0..500 {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
            let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
            let ppid = after
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) {
                return Some(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// What the terminal shows after the last line-clear: the bar must not be left there.
fn after_last_clear(text: &str) -> &str {
    text.rsplit_once("\x1b[2K").map_or(text, |(_, after)| after)
}

/// A tree of `n` sources, for work that takes long enough to show a bar.
fn many_sources(n: usize) -> Tree {
    let tree = Tree::new();
    for i in 0..n {
        tree.write(format!("pkg/m{i}.py"), format!("X = {i}\n").as_bytes());
    }
    tree
}

#[test]
fn progress_bars_on_a_terminal_are_labelled_and_cleared() {
    let Some(python) = common::interpreters().into_iter().find(|i| i.major == 3) else {
        eprintln!("SKIP: no Python 3 to compile with");
        return;
    };
    let py = python.path.to_str().unwrap();
    let tree = many_sources(300);
    let Some((text, status)) = on_terminal(
        tree.path(),
        &["--isolated", "compile", "--python", py, "-j1", "--no-cache"],
        None,
    ) else {
        return;
    };
    assert_eq!(status, Some(0), "{text}");
    assert!(
        text.contains("compiling ["),
        "no bar on the terminal: {text:?}"
    );
    assert!(
        text.contains(" left)") || text.contains("estimating time left"),
        "no time-estimate label: {text:?}"
    );
    let end = after_last_clear(&text);
    assert!(
        !end.contains('['),
        "the bar was left on the terminal: {end:?}"
    );
    assert!(end.starts_with("compiled 300,"), "{end:?}");
    // Not into a pipe, not with -q.
    let piped = run(&tree, &["compile", "--python", py, "-f"]);
    assert!(
        !stderr(&piped).contains("compiling ["),
        "{}",
        stderr(&piped)
    );
    let (quiet, _) = on_terminal(
        tree.path(),
        &["--isolated", "compile", "--python", py, "-f", "-q"],
        None,
    )
    .unwrap();
    assert!(!quiet.contains("compiling ["), "a bar with -q: {quiet:?}");

    // fix: the proof's bar, then the repair's; each cleared.
    for i in 0..300 {
        tree.write(
            format!("pkg/m{i}.py"),
            format!("X = {}\n", i + 1000).as_bytes(),
        );
    }
    let (text, status) = on_terminal(
        tree.path(),
        &["--isolated", "fix", "--python", py, "-j1", "--no-cache"],
        None,
    )
    .unwrap();
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains("recompiling ["), "{text:?}");
    let end = after_last_clear(&text);
    assert!(
        !end.contains(" left)"),
        "the bar was left on the terminal: {end:?}"
    );
}

#[test]
fn ctrl_c_clears_the_progress_bar() {
    let Some(python) = common::interpreters().into_iter().find(|i| i.major == 3) else {
        eprintln!("SKIP: no Python 3 to compile with");
        return;
    };
    let py = python.path.to_str().unwrap();
    let tree = many_sources(2000);
    let Some((text, status)) = on_terminal(
        tree.path(),
        &["--isolated", "compile", "--python", py, "-j1", "--no-cache"],
        Some("compiling ["),
    ) else {
        return;
    };
    assert_eq!(status, Some(130), "{text:?}");
    let end = after_last_clear(&text);
    assert!(
        !end.contains("compiling ["),
        "the bar was left on the terminal: {end:?}"
    );
    assert!(end.contains("pycguard: interrupted"), "{end:?}");
}

/// Lines of `text` in which a word follows itself ("stale; stale", "the the").
fn repeated_words(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| {
            let words: Vec<String> = line
                .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_')
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            // Numbers may repeat ("compiled 0, 0 up to date"); words may not.
            words
                .windows(2)
                .any(|w| w[0] == w[1] && w[0].chars().any(char::is_alphabetic))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn messages_count_in_the_right_number_and_never_repeat_a_word() {
    let tree = fixture();
    tree.write(".pytest_cache/v/cache/lastfailed", b"{}");
    let fix = stdout(&run(&tree, &["fix", "--shallow", "-n"]));
    assert!(
        fix.contains(&format!(
            "would delete ./{STALE} (stale; no PyPy 3.10 found to recompile it)"
        )),
        "{fix}"
    );
    let clean = run(&tree, &["clean", "--debris"]);
    let clean = stdout(&clean);
    assert!(
        clean
            .starts_with("removed 3 caches, 1 empty __pycache__ directory, 1 tool-cache directory"),
        "{clean}"
    );
    for text in [&fix, &clean] {
        assert_eq!(repeated_words(text), Vec::<String>::new(), "{text}");
    }
    // A sourceless cache kept: "1 sourceless cache ... remove it".
    let tree = Tree::new();
    tree.write("dist/lib.pyc", &pypy310_cache_at(0, 0));
    let kept = stdout(&run(&tree, &["clean"]));
    assert!(
        kept.contains("kept 1 sourceless cache (use --state sourceless to remove it)"),
        "{kept}"
    );
}

#[test]
fn a_deep_summary_names_each_missing_interpreter_once() {
    let tree = Tree::new();
    for name in ["f", "g"] {
        let source = tree.write(format!("app/{name}.py"), b"fresh\n");
        set_mtime(&source, T, 0);
        // Fresh by header for PyPy 3.10 and PyPy 3.9 (magic 336), whose bodies are not
        // read: no interpreter here proves them.
        tree.write(
            format!("app/__pycache__/{name}.pypy310.pyc"),
            &pypy310_cache_at(T as u32, 6),
        );
        let mut pypy39 = pypy310_cache_at(T as u32, 6);
        pypy39[0] = 0x50;
        tree.write(format!("app/__pycache__/{name}.pypy39.pyc"), &pypy39);
    }
    let out = run(&tree, &["check", "--deep"]);
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("could not be proven"))
        .unwrap_or_else(|| panic!("no unproven line: {text}"));
    assert_eq!(line.matches("PyPy 3.10").count(), 1, "{line}");
    assert_eq!(line.matches("PyPy 3.9").count(), 1, "{line}");
    assert!(line.matches("not found").count() <= 1, "{line}");
    assert!(
        line.contains(
            "4 need interpreters that were not found (2 PyPy 3.10, 2 PyPy 3.9; add --python PATH)"
        ),
        "{line}"
    );
    assert_eq!(repeated_words(&text), Vec::<String>::new(), "{text}");
}

#[test]
fn a_syntax_error_names_source_and_line_and_levels_share_a_line() {
    let Some(python) = common::interpreters()
        .into_iter()
        .find(|i| i.major == 3 && i.minor >= 8)
    else {
        eprintln!("SKIP: no Python 3.8+ to compile with");
        return;
    };
    let py = python.path.to_str().unwrap();
    let tree = Tree::new();
    let a = tree.write("pkg/a.py", b"VALUE = 1\n");
    set_mtime(&a, T, 0);
    for level in 0..=2 {
        python.compile(tree.path(), &["pkg/a.py"], "timestamp", level);
    }
    let a = tree.write("pkg/a.py", b"VALUE = 2\n");
    set_mtime(&a, T + 10, 0);
    let tag = python.tag().unwrap();
    let first = format!("./pkg/__pycache__/a.{tag}.pyc + .opt-1, .opt-2");
    let check = stdout(&run(&tree, &["check"]));
    assert!(check.contains(&format!("  {first}\n")), "{check}");
    let fix = stdout(&run(&tree, &["fix", "-n", "--python", py]));
    assert!(
        fix.contains(&format!("would recompile {first} (stale; with ")),
        "{fix}"
    );
    // A source that no longer compiles: its repair and its compile name source.py:LINE.
    tree.write("pkg/a.py", b"VALUE = 1\n\ndef f(:\n    pass\n");
    let fix = stdout(&run(&tree, &["fix", "--python", py]));
    assert!(fix.contains("./pkg/a.py:3: SyntaxError: "), "{fix}");
    let compile = stdout(&run(&tree, &["compile", "--python", py]));
    assert!(compile.contains("./pkg/a.py:3: SyntaxError: "), "{compile}");
    for text in [&check, &fix, &compile] {
        assert_eq!(repeated_words(text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn clean_dry_run_lists_and_counts_the_directories_the_real_run_removes() {
    let tree = fixture();
    // A __pycache__ that keeps a file that is not a cache stays.
    tree.write("lib/__pycache__/x.cpython-39.pyc", b"x");
    tree.write("lib/__pycache__/notes.txt", b"not a cache");
    let before = common::snapshot(tree.path());
    let dry = run(&tree, &["clean", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let text = stdout(&dry);
    assert!(text.contains("would remove ./app/__pycache__/\n"), "{text}");
    assert!(!text.contains("./lib/__pycache__/\n"), "{text}");
    assert!(
        text.contains("would remove 4 caches, 1 empty __pycache__ directory"),
        "{text}"
    );
    assert_eq!(
        common::snapshot(tree.path()),
        before,
        "a dry run changed the tree"
    );
    let dry_json = run(&tree, &["clean", "--dry-run", "--output-format", "json"]);
    let dry_doc: serde_json::Value = serde_json::from_slice(&dry_json.stdout).unwrap();
    let real = run(&tree, &["clean", "--output-format", "json"]);
    let real_doc: serde_json::Value = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(dry_doc["dirs_removed"], real_doc["dirs_removed"]);
    assert_eq!(dry_doc["removed"], real_doc["removed"]);
    assert_eq!(
        real_doc["dirs_removed"],
        serde_json::json!(["./app/__pycache__"])
    );
    assert!(!tree.join("app/__pycache__").exists());
    assert!(tree.join("lib/__pycache__/notes.txt").exists());
}

/// Exit 2 and the message, for a command line that cannot be used.
fn usage_error(tree: &Tree, args: &[&str]) -> String {
    let out = run(tree, args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "", "{args:?} printed a result");
    stderr(&out)
}

#[test]
fn filters_that_cannot_match_are_errors() {
    let tree = fixture();
    let before = common::snapshot(tree.path());
    for (tag, says) in [
        ("", "is empty"),
        (",", "is empty"),
        (" ", "is empty"),
        ("cpython39", "CPython's tags are spelled cpython-39"),
        ("CPython-39", "cache tags are lowercase: cpython-39"),
        ("pypy-310", "PyPy's tags are spelled pypy310"),
    ] {
        let message = usage_error(&tree, &["clean", "--tag", tag]);
        assert!(message.contains(says), "--tag {tag:?}: {message}");
    }
    // Config-file tags are held to the same rule.
    tree.write("pycguard.toml", b"[clean]\ntag = [\"cpython39\"]\n");
    let out = pycguard()
        .current_dir(tree.path())
        .args(["clean"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    std::fs::remove_file(tree.join("pycguard.toml")).unwrap();

    // A state clean never produces (it judges by header), states fix already repairs.
    let message = usage_error(&tree, &["clean", "--state", "orphan,hidden-stale"]);
    assert!(message.contains("--state hidden-stale"), "{message}");
    assert!(message.contains("pycguard fix"), "{message}");
    for state in ["stale", "fresh", "ghost"] {
        let message = usage_error(&tree, &["fix", "--include", state]);
        assert!(message.contains(&format!("--include {state}")), "{message}");
    }
    assert_eq!(
        common::snapshot(tree.path()),
        before,
        "a refused command changed the tree"
    );
    // What can match still works.
    assert_eq!(
        run(&tree, &["clean", "-n", "--tag", "pypy310"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&tree, &["fix", "-n", "--include", "sourceless"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn compile_invalidation_mode_converts_fresh_caches_of_another_mode() {
    let Some(python) = common::interpreters()
        .into_iter()
        .find(|i| i.major == 3 && i.minor >= 7)
    else {
        eprintln!("SKIP: no Python 3.7+ for hash-based caches");
        return;
    };
    let py = python.path.to_str().unwrap();
    let tree = Tree::new();
    tree.write("pkg/a.py", b"A = 1\n");
    tree.write("pkg/b.py", b"B = 1\n");
    python.compile(tree.path(), &["pkg/a.py", "pkg/b.py"], "timestamp", 0);
    let cache = tree.join(format!("pkg/__pycache__/a.{}.pyc", python.tag().unwrap()));
    let flags = |p: &std::path::Path| {
        u32::from_le_bytes(std::fs::read(p).unwrap()[4..8].try_into().unwrap())
    };
    assert_eq!(flags(&cache), 0);
    let out = run(
        &tree,
        &[
            "compile",
            "--python",
            py,
            "--invalidation-mode",
            "checked-hash",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("compiled 2, 0 up to date"), "{text}");
    assert_eq!(flags(&cache), 3, "not converted to checked-hash");
    // Now they are in that mode: nothing left to do; without the flag nothing converts back.
    let again = stdout(&run(
        &tree,
        &[
            "compile",
            "--python",
            py,
            "--invalidation-mode",
            "checked-hash",
        ],
    ));
    assert!(again.contains("compiled 0, 2 up to date"), "{again}");
    let plain = stdout(&run(&tree, &["compile", "--python", py]));
    assert!(plain.contains("compiled 0, 2 up to date"), "{plain}");
    assert_eq!(flags(&cache), 3);
    // The dry run says why.
    python.compile(tree.path(), &["pkg/a.py"], "timestamp", 0);
    let dry = stdout(&run(
        &tree,
        &[
            "compile",
            "-n",
            "--python",
            py,
            "--invalidation-mode",
            "checked-hash",
        ],
    ));
    assert!(dry.contains("(was timestamp)"), "{dry}");
}

/// The commands added with the server work follow the same habit: `-qq` prints nothing
/// and keeps the exit status; `doctor -q` keeps its warnings and errors and drops notes.
#[test]
fn doctor_ps_and_why_verbosity_levels() {
    let tree = Tree::new();
    tree.write("pkg/__init__.py", b"");
    tree.write("pkg/mod.py", b"X = 1\n");
    let normal = run(&tree, &["doctor", "."]);
    let status = normal.status.code();
    assert!(
        stdout(&normal).lines().any(|l| l.starts_with("info:")),
        "doctor lists notes: {}",
        stdout(&normal)
    );
    let quiet = run(&tree, &["doctor", "-q", "."]);
    assert_eq!(quiet.status.code(), status, "{}", stderr(&quiet));
    assert!(
        !stdout(&quiet).lines().any(|l| l.starts_with("info:")),
        "doctor -q printed a note: {}",
        stdout(&quiet)
    );
    let warnings = |s: &str| s.lines().filter(|l| l.starts_with("warning:")).count();
    assert_eq!(warnings(&stdout(&quiet)), warnings(&stdout(&normal)));
    assert_silent(&tree, &["doctor", "."], status);
    let ps = run(&tree, &["ps", "."]);
    assert!(!stdout(&ps).is_empty(), "ps says what it found");
    assert_silent(&tree, &["ps", "."], ps.status.code());
    let why = run(&tree, &["why", "pkg.mod"]);
    assert!(stdout(&why).contains("mod.py"), "{}", stdout(&why));
    assert_silent(&tree, &["why", "pkg.mod"], why.status.code());
}
