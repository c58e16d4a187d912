//! How pycguard starts an interpreter: isolated, so that nothing of the user's runs.
//!
//! Every child process pycguard starts (the probe, the deep/compile workers) is an
//! interpreter running a program embedded in pycguard, built here:
//!
//! - flags `-I -S -B` where the interpreter has `-I` (3.4+): no script directory or
//!   current directory on `sys.path`, no `PYTHON*` variables, no user site, no `site`
//!   (so no `sitecustomize`, `usercustomize` or `.pth` line), no cache written. Python 2
//!   and 3.0–3.3 get `-E -s -S -B`, and the embedded programs start with [`PATH_GUARD`],
//!   which drops `sys.path[0]` (`''` with `-c`) before anything is imported;
//! - the resolved executable is run (never the symlink it was found as: a venv's
//!   `bin/python` would make the interpreter read that venv's `pyvenv.cfg`);
//! - working directory `/` (no user controls it);
//! - stdin closed (the workers get a pipe: it carries their protocol);
//! - the environment cleared and rebuilt with only `LC_ALL=C.UTF-8`, so that every
//!   version decodes file names the same way (3.6 would otherwise fall back to ASCII in
//!   an empty environment). Nothing else is needed: no `PATH` (no program is looked up),
//!   no `HOME` (no user site), no `LD_*` (an interpreter that needs `LD_LIBRARY_PATH` to
//!   start is not one pycguard can run safely). pycguard's own tests inject faults into
//!   workers with `PYCGUARD_TEST_WORKER_FAULT=1`; only when that is set are it,
//!   `PYCGUARD_TEST_WORKER_FLAG` and `PYCGUARD_TEST_MARKER` passed on (the settings
//!   layer reads them and hands them over with [`pass_test_variables`]).

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};

/// Python source that must open every embedded program: drops relative entries (the `''`
/// that `-c` puts first on Python 2) from `sys.path` using only the built-in `sys`.
pub const PATH_GUARD: &str = "import sys\nsys.path[:] = [p for p in sys.path if p[:1] == '/']\n";

/// The variables passed on when fault injection is on (tests only; see `worker.py`).
pub const TEST_VARIABLES: &[&str] = &[
    "PYCGUARD_TEST_WORKER_FAULT",
    "PYCGUARD_TEST_WORKER_FLAG",
    "PYCGUARD_TEST_MARKER",
];

/// Which isolation flags the interpreter understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flags {
    /// `-I -S -B` (3.4+).
    Isolated,
    /// `-E -s -S -B` (2.x, 3.0–3.3).
    Legacy,
}

impl Flags {
    pub fn for_version(version_info: (u32, u32)) -> Flags {
        if version_info >= (3, 4) {
            Flags::Isolated
        } else {
            Flags::Legacy
        }
    }

    pub fn args(self) -> &'static [&'static str] {
        match self {
            Flags::Isolated => &["-I", "-S", "-B"],
            Flags::Legacy => &["-E", "-s", "-S", "-B"],
        }
    }
}

/// `executable FLAGS -c PROGRAM`, isolated (see the module docs). stdin is closed; the
/// caller sets stdout and stderr (and may make stdin a pipe for a protocol).
pub fn command(executable: &Path, flags: Flags, program: &str) -> Command {
    let mut cmd = Command::new(executable);
    cmd.args(flags.args())
        .arg("-c")
        .arg(program)
        .current_dir("/")
        .env_clear()
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null());
    if let Some(variables) = TEST_ENVIRONMENT.get() {
        cmd.envs(variables.iter().map(|(k, v)| (k, v)));
    }
    cmd
}

/// The fault-injection variables to pass on (see [`pass_test_variables`]).
static TEST_ENVIRONMENT: std::sync::OnceLock<Vec<(OsString, OsString)>> =
    std::sync::OnceLock::new();

/// Pass these variables on to every child (pycguard's own tests inject faults into
/// workers this way; [`crate::settings::Environment`] collects them, once, only when
/// `PYCGUARD_TEST_WORKER_FAULT=1`). Set once per process; an empty list passes nothing.
pub fn pass_test_variables(variables: Vec<(OsString, OsString)>) {
    if !variables.is_empty() {
        let _ = TEST_ENVIRONMENT.set(variables);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_isolated() {
        let cmd = command(Path::new("/usr/bin/python3.11"), Flags::Isolated, "pass");
        let args: Vec<_> = cmd.get_args().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(args, ["-I", "-S", "-B", "-c", "pass"]);
        assert_eq!(cmd.get_current_dir(), Some(Path::new("/")));
        let env: Vec<_> = cmd.get_envs().filter(|(_, v)| v.is_some()).collect();
        assert_eq!(env.len(), 1, "{env:?}");
        assert_eq!(env[0].0, "LC_ALL");
        assert_eq!(Flags::for_version((2, 7)).args(), ["-E", "-s", "-S", "-B"]);
        assert_eq!(Flags::for_version((3, 4)), Flags::Isolated);
        assert!(PATH_GUARD.starts_with("import sys\n"));
    }
}
