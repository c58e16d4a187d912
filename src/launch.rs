//! What a command line will run, found without running it: for `pycguard run -- CMD
//! ARGS…`, the Python interpreter CMD starts, the options it gives it that decide which
//! caches are read (`-O`, `-I`/`-E`, `-X pycache_prefix`), and the trees its imports come
//! from.
//!
//! CMD is looked up on `PATH` as `execvp` does. It is a Python program when:
//! - its file name is an interpreter's (`python`, `python3.12`, `pypy3`…): the options and
//!   script follow in ARGS (`python -m app`, `python app.py`, `python -OO -c …`);
//! - or its first line is a `#!` naming one, directly (`#!/srv/venv/bin/python3`, what pip
//!   and uv write into a virtualenv's `bin/uvicorn`), through `/usr/bin/env [-S] python3`
//!   (looked up on `PATH`), or through pip's launcher for long paths (`#!/bin/sh` and
//!   `'''exec' /long/path/bin/python "$0" "$@"`); CMD itself is then the script.
//!
//! Nothing is executed and nothing but CMD's first 4 KiB (a regular file's) is read; a CMD
//! that is none of these (a shell script, a binary) is [`Launch::Other`], and `run` starts
//! it unchecked, saying so.
//!
//! The trees ([`Python::trees`]): the script's directory (`sys.path[0]`), the current
//! directory (`sys.path[0]` for `-m`, `-c` and stdin, and where a service's code usually
//! is) unless it is `/`, and the interpreter's virtualenv. A tree inside another is
//! dropped.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::layout::lexically_absolute;

/// What CMD is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    Python(Python),
    /// Not a Python program pycguard can recognise; why, for the message.
    Other {
        program: PathBuf,
        why: String,
    },
    /// CMD is not on `PATH` (or not there as given): exec will say so.
    NotFound,
}

/// A Python program CMD starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Python {
    /// The interpreter, as named (not resolved: a venv's `bin/python` is a symlink whose
    /// place says which environment it runs).
    pub interpreter: PathBuf,
    /// `-O` given N times, or `PYTHONOPTIMIZE` (unless `-E`/`-I`): the caches read are
    /// `.opt-N` ones.
    pub optimize: u8,
    /// `-E` or `-I`: the environment's `PYTHON*` variables are ignored.
    pub ignores_environment: bool,
    /// `-X pycache_prefix=DIR`, else `PYTHONPYCACHEPREFIX` (unless ignored), absolute.
    pub pycache_prefix: Option<PathBuf>,
    /// What is run: a script (absolute), `-m MODULE`, `-c`, or stdin/interactive.
    pub main: Main,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Main {
    Script(PathBuf),
    Module(String),
    /// `-c CODE`, `-` or nothing (interactive): `sys.path[0]` is the current directory.
    Inline,
}

/// What the environment says, as the settings read it.
#[derive(Clone, Debug, Default)]
pub struct LaunchEnvironment {
    pub cwd: PathBuf,
    /// `PATH`.
    pub path: Option<OsString>,
    /// `PYTHONOPTIMIZE`.
    pub python_optimize: Option<OsString>,
    /// `PYTHONPYCACHEPREFIX`.
    pub pycache_prefix: Option<PathBuf>,
}

/// The most of CMD's first line that is read.
const SHEBANG_BYTES: usize = 4096;

/// Find what `argv` runs (see the module docs).
pub fn resolve(argv: &[OsString], env: &LaunchEnvironment) -> Launch {
    let Some((cmd, args)) = argv.split_first() else {
        return Launch::NotFound;
    };
    let Some(program) = find_program(cmd, env) else {
        return Launch::NotFound;
    };
    if is_python_name(file_name(&program)) {
        return Launch::Python(parse_python(program, &[], args, env));
    }
    match interpreter_of_script(&program, env) {
        Ok((interpreter, options)) => {
            let mut rest: Vec<OsString> = Vec::with_capacity(args.len() + 1);
            rest.push(program.clone().into_os_string());
            rest.extend(args.iter().cloned());
            Launch::Python(parse_python(interpreter, &options, &rest, env))
        }
        Err(why) => Launch::Other { program, why },
    }
}

fn file_name(path: &Path) -> &OsStr {
    path.file_name().unwrap_or(OsStr::new(""))
}

/// `python`, `python3`, `python3.12`, `python3.13t`, `pypy3.10`…
pub fn is_python_name(name: &OsStr) -> bool {
    let name = name.as_bytes();
    let rest = if let Some(rest) = name.strip_prefix(b"python") {
        rest
    } else if let Some(rest) = name.strip_prefix(b"pypy") {
        rest
    } else {
        return false;
    };
    let rest = rest.strip_suffix(b"t").unwrap_or(rest);
    rest.iter().all(|b| b.is_ascii_digit() || *b == b'.')
}

/// CMD as `execvp` finds it: a name with a `/` as is (relative to the current directory),
/// else the first executable file of that name on `PATH`.
fn find_program(cmd: &OsStr, env: &LaunchEnvironment) -> Option<PathBuf> {
    if cmd.as_bytes().contains(&b'/') {
        let path = lexically_absolute(&env.cwd, Path::new(cmd));
        return path.is_file().then_some(path);
    }
    on_path(cmd, env)
}

fn on_path(name: &OsStr, env: &LaunchEnvironment) -> Option<PathBuf> {
    let path = env.path.as_ref()?;
    std::env::split_paths(path).find_map(|dir| {
        let dir = if dir.as_os_str().is_empty() {
            env.cwd.clone()
        } else {
            lexically_absolute(&env.cwd, &dir)
        };
        let candidate = dir.join(name);
        let meta = std::fs::metadata(&candidate).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
    })
}

/// The interpreter (and its options) a script's `#!` line names; why not, otherwise.
fn interpreter_of_script(
    program: &Path,
    env: &LaunchEnvironment,
) -> Result<(PathBuf, Vec<OsString>), String> {
    let mut head = Vec::with_capacity(SHEBANG_BYTES);
    let file = std::fs::File::open(program).map_err(|e| crate::read::io_message(&e))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err("not a regular file".into());
    }
    file.take(SHEBANG_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| crate::read::io_message(&e))?;
    let Some(first) = head.strip_prefix(b"#!") else {
        return Err("neither an interpreter nor a script with a #! line".into());
    };
    let mut lines = first.split(|b| *b == b'\n');
    let line = lines.next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let words: Vec<&[u8]> = line
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|w| !w.is_empty())
        .collect();
    let Some((interpreter, rest)) = words.split_first() else {
        return Err("an empty #! line".into());
    };
    let interpreter = Path::new(OsStr::from_bytes(interpreter));
    let name = file_name(interpreter);
    if is_python_name(name) {
        return Ok((interpreter.to_path_buf(), os_strings(rest)));
    }
    if name == "env" {
        // `env [-S] [-i] [NAME=VALUE…] PROGRAM [ARGS…]`
        let mut words = rest.iter().copied().peekable();
        while let Some(word) = words.peek() {
            if word.starts_with(b"-") || word.contains(&b'=') {
                words.next();
            } else {
                break;
            }
        }
        let Some(program) = words.next() else {
            return Err("#!/usr/bin/env names no program".into());
        };
        let program = OsStr::from_bytes(program);
        if !is_python_name(file_name(Path::new(program))) {
            return Err(format!(
                "its #! line runs {}, not Python",
                program.to_string_lossy()
            ));
        }
        let found = if program.as_bytes().contains(&b'/') {
            Some(PathBuf::from(program))
        } else {
            on_path(program, env)
        };
        let Some(found) = found else {
            return Err(format!(
                "its #! line runs {}, which is not on PATH",
                program.to_string_lossy()
            ));
        };
        return Ok((found, os_strings(&words.collect::<Vec<_>>())));
    }
    if matches!(name.as_bytes(), b"sh" | b"bash") {
        // pip's launcher for interpreters whose path is too long for a #! line.
        if let Some(second) = lines.next() {
            if let Some(rest) = second.strip_prefix(b"'''exec' ") {
                let path = match rest.strip_prefix(b"\"") {
                    Some(quoted) => quoted.split(|b| *b == b'"').next().unwrap_or_default(),
                    None => rest.split(|b| *b == b' ').next().unwrap_or_default(),
                };
                let path = Path::new(OsStr::from_bytes(path));
                if is_python_name(file_name(path)) {
                    return Ok((path.to_path_buf(), Vec::new()));
                }
            }
        }
    }
    Err(format!(
        "its #! line runs {}, not Python",
        interpreter.to_string_lossy()
    ))
}

fn os_strings(words: &[&[u8]]) -> Vec<OsString> {
    words
        .iter()
        .map(|w| OsStr::from_bytes(w).to_os_string())
        .collect()
}

/// Read the interpreter's command line the way it does (the options that decide which
/// caches it reads; the rest are skipped).
fn parse_python(
    interpreter: PathBuf,
    shebang_options: &[OsString],
    args: &[OsString],
    env: &LaunchEnvironment,
) -> Python {
    let mut optimize_flags: u8 = 0;
    let mut ignores_environment = false;
    let mut x_prefix: Option<PathBuf> = None;
    let mut main = Main::Inline;
    let all: Vec<&OsStr> = shebang_options
        .iter()
        .chain(args)
        .map(OsString::as_os_str)
        .collect();
    let mut i = 0;
    while i < all.len() {
        let arg = all[i].as_bytes();
        i += 1;
        if arg == b"--" {
            if let Some(script) = all.get(i) {
                main = Main::Script(lexically_absolute(&env.cwd, Path::new(script)));
            }
            break;
        }
        if arg == b"-" {
            break;
        }
        if arg.starts_with(b"--") {
            // --check-hash-based-pycs MODE, --help-env…: a value follows only the first.
            if arg == b"--check-hash-based-pycs" {
                i += 1;
            }
            continue;
        }
        let Some(cluster) = arg.strip_prefix(b"-") else {
            main = Main::Script(lexically_absolute(&env.cwd, Path::new(all[i - 1])));
            break;
        };
        let mut j = 0;
        let mut stop = false;
        while j < cluster.len() {
            let flag = cluster[j];
            j += 1;
            match flag {
                b'O' => optimize_flags = optimize_flags.saturating_add(1),
                b'E' | b'I' => ignores_environment = true,
                b'c' | b'm' | b'W' | b'X' => {
                    // The value is the rest of the cluster, or the next argument.
                    let value: Option<&[u8]> = if j < cluster.len() {
                        Some(&cluster[j..])
                    } else {
                        i += 1;
                        all.get(i - 1).map(|v| v.as_bytes())
                    };
                    match (flag, value) {
                        (b'm', Some(module)) => {
                            main = Main::Module(String::from_utf8_lossy(module).into_owned());
                            stop = true;
                        }
                        (b'c', _) => stop = true,
                        (b'X', Some(option)) => {
                            if let Some(dir) = option.strip_prefix(b"pycache_prefix=") {
                                x_prefix = Some(lexically_absolute(
                                    &env.cwd,
                                    Path::new(OsStr::from_bytes(dir)),
                                ));
                            }
                        }
                        _ => {}
                    }
                    break;
                }
                _ => {}
            }
        }
        if stop {
            break;
        }
    }
    let from_env = |v: &Option<OsString>| v.clone().filter(|_| !ignores_environment);
    let env_optimize = from_env(&env.python_optimize).map_or(0, |v| {
        // As Python reads it: a number is the level, any other non-empty value is 1.
        v.to_str()
            .and_then(|s| s.trim().parse::<u8>().ok())
            .unwrap_or(1)
    });
    let pycache_prefix = x_prefix.or_else(|| {
        env.pycache_prefix
            .clone()
            .filter(|_| !ignores_environment)
            .map(|p| lexically_absolute(&env.cwd, &p))
    });
    Python {
        interpreter,
        optimize: optimize_flags.max(env_optimize).min(2),
        ignores_environment,
        pycache_prefix,
        main,
    }
}

impl Python {
    /// The trees the program imports from (see the module docs); `venv` is the
    /// interpreter's virtualenv, when it has one.
    pub fn trees(&self, cwd: &Path, venv: Option<&Path>) -> Vec<PathBuf> {
        let mut trees: Vec<PathBuf> = Vec::new();
        if let Main::Script(script) = &self.main {
            if let Some(dir) = script.parent() {
                trees.push(dir.to_path_buf());
            }
        }
        if cwd != Path::new("/") {
            trees.push(cwd.to_path_buf());
        }
        if let Some(venv) = venv {
            trees.push(venv.to_path_buf());
        }
        trees.sort_by_key(|t| t.components().count());
        let mut kept: Vec<PathBuf> = Vec::new();
        for tree in trees {
            if !kept.iter().any(|k| tree.starts_with(k)) && tree.is_dir() {
                kept.push(tree);
            }
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(cwd: &Path, path: &Path) -> LaunchEnvironment {
        LaunchEnvironment {
            cwd: cwd.to_path_buf(),
            path: Some(path.as_os_str().to_os_string()),
            python_optimize: None,
            pycache_prefix: None,
        }
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    fn executable(path: &Path, content: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn interpreter_names() {
        for yes in [
            "python",
            "python3",
            "python3.12",
            "python3.13t",
            "pypy3",
            "pypy3.10",
        ] {
            assert!(is_python_name(OsStr::new(yes)), "{yes}");
        }
        for no in ["pythonw-x", "uvicorn", "py", "python-config", "ipython"] {
            assert!(!is_python_name(OsStr::new(no)), "{no}");
        }
    }

    #[test]
    fn python_options_scripts_and_modules() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        executable(&bin.join("python3"), "");
        let mut e = env(tmp.path(), &bin);
        let python = |words: &[&str], e: &LaunchEnvironment| match resolve(&argv(words), e) {
            Launch::Python(p) => p,
            other => panic!("{other:?}"),
        };
        let p = python(&["python3", "-OO", "app.py", "-O"], &e);
        assert_eq!(p.interpreter, bin.join("python3"));
        assert_eq!(p.optimize, 2);
        assert_eq!(p.main, Main::Script(tmp.path().join("app.py")));
        let p = python(
            &[
                "python3",
                "-X",
                "pycache_prefix=pc",
                "-m",
                "uvicorn",
                "app:app",
            ],
            &e,
        );
        assert_eq!(p.main, Main::Module("uvicorn".into()));
        assert_eq!(p.pycache_prefix, Some(tmp.path().join("pc")));
        e.python_optimize = Some("1".into());
        e.pycache_prefix = Some("/envprefix".into());
        let p = python(&["python3", "-c", "import app"], &e);
        assert_eq!((p.optimize, p.main), (1, Main::Inline));
        assert_eq!(p.pycache_prefix, Some(PathBuf::from("/envprefix")));
        // -I (in a cluster) ignores both variables; -W takes a value.
        let p = python(&["python3", "-W", "ignore", "-sI", "srv.py"], &e);
        assert_eq!(
            (p.optimize, p.pycache_prefix, p.ignores_environment),
            (0, None, true)
        );
        assert_eq!(p.main, Main::Script(tmp.path().join("srv.py")));
    }

    #[test]
    fn scripts_by_their_shebang() {
        let tmp = tempfile::tempdir().unwrap();
        let venv = tmp.path().join("venv");
        let bin = venv.join("bin");
        executable(&bin.join("python"), "");
        executable(
            &bin.join("uvicorn"),
            &format!("#!{}\nimport sys\n", bin.join("python").display()),
        );
        executable(&bin.join("viaenv"), "#!/usr/bin/env -S python -O\n");
        executable(
            &bin.join("long"),
            &format!(
                "#!/bin/sh\n'''exec' \"{}\" \"$0\" \"$@\"\n' '''\n",
                bin.join("python").display()
            ),
        );
        executable(&bin.join("tool.sh"), "#!/bin/sh\necho hi\n");
        let e = env(tmp.path(), &bin);
        let Launch::Python(p) = resolve(&argv(&["uvicorn", "app:app"]), &e) else {
            panic!()
        };
        assert_eq!(p.interpreter, bin.join("python"));
        assert_eq!(p.main, Main::Script(bin.join("uvicorn")));
        assert_eq!(
            p.trees(tmp.path(), Some(&venv)),
            vec![tmp.path().to_path_buf()]
        );
        assert_eq!(p.trees(Path::new("/"), Some(&venv)), vec![venv.clone()]);
        let Launch::Python(p) = resolve(&argv(&["viaenv"]), &e) else {
            panic!()
        };
        assert_eq!((p.interpreter, p.optimize), (bin.join("python"), 1));
        let Launch::Python(p) = resolve(&argv(&["long"]), &e) else {
            panic!()
        };
        assert_eq!(p.interpreter, bin.join("python"));
        assert!(matches!(
            resolve(&argv(&["tool.sh"]), &e),
            Launch::Other { .. }
        ));
        assert_eq!(resolve(&argv(&["nosuch"]), &e), Launch::NotFound);
    }
}
