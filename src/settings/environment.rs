//! The process environment, read once.
//!
//! Every environment variable pycguard uses, and its current directory, are read here and
//! nowhere else: [`Environment::from_process`] runs once at startup, and the settings
//! layer hands what each part needs to it as plain values (a [`Discovery`]'s search
//! paths, a cache directory, a pycache prefix, a default invalidation mode). Below
//! `settings` no module calls `std::env`. The only variables read elsewhere are
//! `NO_COLOR` and `CLICOLOR_FORCE`, which `anstream` honours itself.
//!
//! | variable | used for |
//! |---|---|
//! | `HOME` | `~/.cache/pycguard`, `~/.pyenv`, `~/.local/share/uv/python` |
//! | `PATH` | interpreters on `PATH`; the `python3` a tree without caches is compiled for |
//! | `XDG_CACHE_HOME` | `$XDG_CACHE_HOME/pycguard` |
//! | `XDG_DATA_HOME` | `$XDG_DATA_HOME/uv/python` (uv-managed Pythons) |
//! | `PYCGUARD_CACHE_DIR` | pycguard's cache directory |
//! | `PYTHONPYCACHEPREFIX` | the pycache prefix in effect |
//! | `PYTHONOPTIMIZE` | `run`: the optimisation level of the command's interpreter (unless it is given `-E` or `-I`) |
//! | `SOURCE_DATE_EPOCH` | set: written caches default to checked-hash, as with `py_compile` |
//! | `PYTHONDONTWRITEBYTECODE`, `PYTHONOPTIMIZE`, `PYTHONPATH` | `doctor`: what they change for the interpreters run from this environment |
//! | `PYENV_ROOT`, `PYENV_VERSION` | pyenv's versions, and the one its shims select |
//! | `UV_PYTHON_INSTALL_DIR` | uv-managed Pythons |
//! | `PYTHONPATH` | `why`: the entries it puts on `sys.path` |
//! | `PYTHONUSERBASE`, `PYTHONNOUSERSITE` | `why`: the user site directory, and whether it is used |
//! | `PYTHONSAFEPATH` | `why`: 3.11+ puts no script or current directory first on `sys.path` |
//! | `PYTHONOPTIMIZE` | `why`: the optimisation level, and so the cache name, the interpreter would use |
//! | `PYCGUARD_WALK_ENGINE` | the walk engine: `getdents` (Linux default) or `portable` |
//! | `PYCGUARD_TEST_WORKER_*`, `PYCGUARD_TEST_MARKER` | fault injection in pycguard's own tests |
//!
//! A variable set to the empty string counts as unset (as Python and the XDG spec treat
//! them).
//!
//! [`Discovery`]: crate::interpreters::Discovery

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use crate::interpreters::{child, SearchPath};

/// Everything pycguard takes from its environment.
#[derive(Debug)]
pub struct Environment {
    /// The current directory (relative PATHs, `--pycache-prefix` and config-file
    /// discovery are resolved against it).
    pub cwd: io::Result<PathBuf>,
    pub home: Option<PathBuf>,
    pub path: Option<OsString>,
    pub xdg_cache_home: Option<PathBuf>,
    pub xdg_data_home: Option<PathBuf>,
    pub pycguard_cache_dir: Option<PathBuf>,
    pub pycache_prefix: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH` is set (reproducible builds): checked-hash is the default mode.
    pub source_date_epoch: bool,
    /// `PYTHONDONTWRITEBYTECODE` is set (`doctor`: Python run from here writes no caches).
    pub python_dont_write_bytecode: bool,
    /// `PYTHONOPTIMIZE` as set (`doctor` shows it, `run` reads it as the command's
    /// interpreter would; [`Environment::python_optimize`] is the level it means here).
    pub python_optimize_raw: Option<String>,
    /// `PYTHONPATH`, unsplit (`why`: the entries it puts on `sys.path`; `doctor`: the
    /// directories put before site-packages).
    pub python_path: Option<OsString>,
    pub pyenv_root: Option<PathBuf>,
    pub pyenv_version: Option<String>,
    pub uv_python_install_dir: Option<PathBuf>,
    /// The variables passed on to child processes when pycguard's tests inject faults
    /// (`PYCGUARD_TEST_WORKER_FAULT=1`); empty otherwise.
    pub test_variables: Vec<(OsString, OsString)>,
    /// `PYCGUARD_WALK_ENGINE`: the directory-reading engine (`getdents`, `portable`).
    pub walk_engine: Option<OsString>,
    /// `PYTHONUSERBASE`.
    pub python_user_base: Option<PathBuf>,
    /// `PYTHONNOUSERSITE` is set.
    pub python_no_user_site: bool,
    /// `PYTHONSAFEPATH` is set.
    pub python_safe_path: bool,
    /// `PYTHONOPTIMIZE`: an integer level, or 1 for any other non-empty value (as Python
    /// reads it).
    pub python_optimize: u8,
}

impl Environment {
    /// Read the process environment (once, at startup).
    pub fn from_process() -> Environment {
        Environment::from_lookup(std::env::current_dir(), |name| std::env::var_os(name))
    }

    /// An environment from a lookup function (tests build their own).
    pub fn from_lookup(
        cwd: io::Result<PathBuf>,
        var: impl Fn(&str) -> Option<OsString>,
    ) -> Environment {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        let dir = |name: &str| set(name).map(PathBuf::from);
        let test_variables = if set("PYCGUARD_TEST_WORKER_FAULT").is_some_and(|v| v == "1") {
            child::TEST_VARIABLES
                .iter()
                .filter_map(|name| var(name).map(|value| (OsString::from(name), value)))
                .collect()
        } else {
            Vec::new()
        };
        Environment {
            cwd,
            home: dir("HOME"),
            path: set("PATH"),
            xdg_cache_home: dir("XDG_CACHE_HOME"),
            xdg_data_home: dir("XDG_DATA_HOME"),
            pycguard_cache_dir: dir("PYCGUARD_CACHE_DIR"),
            pycache_prefix: dir("PYTHONPYCACHEPREFIX"),
            source_date_epoch: set("SOURCE_DATE_EPOCH").is_some(),
            python_dont_write_bytecode: set("PYTHONDONTWRITEBYTECODE").is_some(),
            python_optimize_raw: set("PYTHONOPTIMIZE").map(|v| v.to_string_lossy().into_owned()),
            python_path: set("PYTHONPATH"),
            pyenv_root: dir("PYENV_ROOT"),
            pyenv_version: set("PYENV_VERSION").and_then(|v| v.into_string().ok()),
            uv_python_install_dir: dir("UV_PYTHON_INSTALL_DIR"),
            test_variables,
            walk_engine: set("PYCGUARD_WALK_ENGINE"),
            python_user_base: dir("PYTHONUSERBASE"),
            python_no_user_site: set("PYTHONNOUSERSITE").is_some(),
            python_safe_path: set("PYTHONSAFEPATH").is_some(),
            python_optimize: set("PYTHONOPTIMIZE").map_or(0, |v| {
                v.to_str()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .map_or(1, |n| n.min(u64::from(u8::MAX)) as u8)
            }),
        }
    }

    /// The current directory, or the error that kept it from being known.
    pub fn cwd(&self) -> Result<&PathBuf, io::Error> {
        self.cwd
            .as_ref()
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))
    }

    /// The current directory, or `/` when it cannot be known (for uses where any
    /// absolute directory will do, such as naming a compiled file's `co_filename`).
    pub fn cwd_or_root(&self) -> PathBuf {
        self.cwd
            .as_ref()
            .cloned()
            .unwrap_or_else(|_| PathBuf::from("/"))
    }

    /// pycguard's default cache directory: `$XDG_CACHE_HOME/pycguard`, else
    /// `~/.cache/pycguard` (`PYCGUARD_CACHE_DIR` overrides a config file, and so is
    /// applied on its own).
    pub fn default_cache_dir(&self) -> Option<PathBuf> {
        self.xdg_cache_home
            .as_ref()
            .map(|d| d.join("pycguard"))
            .or_else(|| {
                self.home
                    .as_ref()
                    .map(|h| h.join(".cache").join("pycguard"))
            })
    }

    /// Where interpreters are looked for.
    pub fn search_path(&self) -> SearchPath {
        SearchPath {
            cwd: self.cwd_or_root(),
            home: self.home.clone(),
            path: self.path.clone(),
            pyenv_root: self.pyenv_root.clone(),
            pyenv_version: self.pyenv_version.clone(),
            uv_python_install_dir: self.uv_python_install_dir.clone(),
            xdg_data_home: self.xdg_data_home.clone(),
        }
    }
}

/// Is `name` one of the variables read here? (For the tests of this module.)
#[cfg(test)]
fn is_read(name: &std::ffi::OsStr) -> bool {
    let env = Environment::from_lookup(Ok(PathBuf::from("/")), |n| {
        (n == name).then(|| OsString::from("1"))
    });
    env.home.is_some()
        || env.path.is_some()
        || env.xdg_cache_home.is_some()
        || env.xdg_data_home.is_some()
        || env.pycguard_cache_dir.is_some()
        || env.pycache_prefix.is_some()
        || env.python_optimize > 0
        || env.source_date_epoch
        || env.python_dont_write_bytecode
        || env.python_optimize_raw.is_some()
        || env.python_path.is_some()
        || env.pyenv_root.is_some()
        || env.pyenv_version.is_some()
        || env.uv_python_install_dir.is_some()
        || !env.test_variables.is_empty()
        || env.walk_engine.is_some()
        || env.python_user_base.is_some()
        || env.python_no_user_site
        || env.python_safe_path
        || env.python_optimize > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_unset() {
        let env = Environment::from_lookup(Ok(PathBuf::from("/w")), |name| match name {
            "HOME" => Some(OsString::from("/home/u")),
            "XDG_CACHE_HOME" | "SOURCE_DATE_EPOCH" | "PYTHONPYCACHEPREFIX" => Some(OsString::new()),
            _ => None,
        });
        assert_eq!(
            env.default_cache_dir(),
            Some(PathBuf::from("/home/u/.cache/pycguard"))
        );
        assert!(!env.source_date_epoch);
        assert_eq!(env.pycache_prefix, None);
    }

    #[test]
    fn every_documented_variable_is_read() {
        for name in [
            "HOME",
            "PATH",
            "XDG_CACHE_HOME",
            "XDG_DATA_HOME",
            "PYCGUARD_CACHE_DIR",
            "PYTHONPYCACHEPREFIX",
            "PYTHONOPTIMIZE",
            "SOURCE_DATE_EPOCH",
            "PYENV_ROOT",
            "PYENV_VERSION",
            "UV_PYTHON_INSTALL_DIR",
            "PYCGUARD_TEST_WORKER_FAULT",
            "PYCGUARD_WALK_ENGINE",
            "PYTHONPATH",
            "PYTHONUSERBASE",
            "PYTHONNOUSERSITE",
            "PYTHONSAFEPATH",
            "PYTHONOPTIMIZE",
            "PYTHONDONTWRITEBYTECODE",
        ] {
            assert!(is_read(std::ffi::OsStr::new(name)), "{name}");
        }
        assert!(!is_read(std::ffi::OsStr::new("PYTHONHOME")));
    }
}
