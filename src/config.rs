//! The resolved, immutable configuration of a run: paths checked to exist, globs compiled,
//! the pycache prefix made absolute, thread count fixed. Everything after this point takes
//! a `&…Config` and never looks at the command line or the environment again.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSetBuilder};

use crate::cli::{CacheArgs, CheckArgs, Format, WalkArgs};
use crate::walk::{Engine, Root, UnknownEngine, WalkOptions};

/// A command line that cannot run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {}", crate::output::escape::path(.path), crate::read::io_message(.err))]
    UnreadableRoot { path: PathBuf, err: std::io::Error },
    #[error("invalid --exclude glob {glob:?}")]
    BadGlob {
        glob: String,
        #[source]
        err: globset::Error,
    },
    #[error("{} is {}: give a directory, a cache file (.pyc, .pyo) or a source file (.py)", crate::output::escape::path(.path), .what)]
    NotScannable { path: PathBuf, what: &'static str },
    #[error("--jobs must be at least 1")]
    ZeroJobs,
    #[error(transparent)]
    WalkEngine(#[from] UnknownEngine),
    #[error("cannot determine the current directory")]
    NoCurrentDir(#[source] std::io::Error),
}

/// What to scan and how.
#[derive(Clone, Debug)]
pub struct ScanConfig {
    pub roots: Vec<Root>,
    pub walk: WalkOptions,
    /// pycguard's cache directory; `None` with `--no-cache` (or when no home is known).
    pub cache_dir: Option<PathBuf>,
}

/// `pycguard check`.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    pub scan: ScanConfig,
    pub format: Format,
    pub quiet: bool,
    pub strict: bool,
    pub exit_zero: bool,
}

impl CheckConfig {
    pub fn resolve(args: &CheckArgs) -> Result<CheckConfig, ConfigError> {
        Ok(CheckConfig {
            scan: ScanConfig::resolve(&args.walk)?,
            format: args.format,
            quiet: args.quiet,
            strict: args.strict,
            exit_zero: args.exit_zero,
        })
    }
}

impl ScanConfig {
    pub fn resolve(args: &WalkArgs) -> Result<ScanConfig, ConfigError> {
        let cwd = std::env::current_dir().map_err(ConfigError::NoCurrentDir)?;
        let mut roots = Vec::with_capacity(args.paths.len());
        for path in &args.paths {
            // stat only (never an open): a FIFO given as PATH cannot block.
            let meta = std::fs::metadata(path).map_err(|err| ConfigError::UnreadableRoot {
                path: path.clone(),
                err,
            })?;
            if !meta.is_dir() && !names_a_cache_or_source(path) {
                use std::os::unix::fs::MetadataExt;
                return Err(ConfigError::NotScannable {
                    path: path.clone(),
                    what: match crate::read::FileKind::from_mode(meta.mode()) {
                        crate::read::FileKind::Regular => {
                            "a file that is neither a cache nor a source"
                        }
                        kind => kind.describe(),
                    },
                });
            }
            let lexical = lexically_absolute(&cwd, path);
            let mut absolute_forms = vec![lexical.clone()];
            if let Ok(real) = std::fs::canonicalize(path) {
                if real != lexical {
                    absolute_forms.push(real);
                }
            }
            roots.push(Root {
                path: path.clone(),
                absolute_forms,
            });
        }
        let mut globs = GlobSetBuilder::new();
        for glob in &args.exclude {
            globs.add(Glob::new(glob).map_err(|err| ConfigError::BadGlob {
                glob: glob.clone(),
                err,
            })?);
        }
        let excludes = globs.build().map_err(|err| ConfigError::BadGlob {
            glob: args.exclude.join(" "),
            err,
        })?;
        let threads = match args.jobs {
            Some(0) => return Err(ConfigError::ZeroJobs),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        Ok(ScanConfig {
            roots,
            walk: WalkOptions {
                engine: Engine::from_setting(std::env::var_os("PYCGUARD_WALK_ENGINE").as_deref())?,
                interrupt: crate::deep::interrupt_flag(),
                threads,
                excludes,
                pycache_prefix: pycache_prefix(args.pycache_prefix.as_deref(), &cwd),
                report_debris: false,
                report_sources: false,
                include_envs: args.include_venvs,
            },
            cache_dir: cache_dir(&args.cache, &cwd),
        })
    }
}

/// Can a file of this name be a cache or a source (a PATH that is not a directory)?
fn names_a_cache_or_source(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    path.file_name().is_some_and(|name| {
        name.as_bytes().ends_with(b".py")
            || crate::layout::classify(name, true).is_some()
            || crate::layout::classify(name, false).is_some()
    })
}

/// pycguard's own cache directory: `--cache-dir`, else `$PYCGUARD_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/pycguard`, else `~/.cache/pycguard`; `None` with `--no-cache`.
pub fn cache_dir(args: &CacheArgs, cwd: &Path) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    let env = |name| {
        std::env::var_os(name)
            .filter(|v: &OsString| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = args
        .cache_dir
        .clone()
        .or_else(|| env("PYCGUARD_CACHE_DIR"))
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("pycguard")))
        .or_else(|| env("HOME").map(|h| h.join(".cache").join("pycguard")))?;
    Some(lexically_absolute(cwd, &dir))
}

/// The pycache prefix: the flag, else a non-empty `$PYTHONPYCACHEPREFIX`, made absolute
/// against the current directory as Python does at startup.
pub fn pycache_prefix(flag: Option<&Path>, cwd: &Path) -> Option<PathBuf> {
    let raw: PathBuf = match flag {
        Some(p) => p.to_path_buf(),
        None => {
            let env = std::env::var_os("PYTHONPYCACHEPREFIX").filter(|v| !v.is_empty())?;
            PathBuf::from(env)
        }
    };
    Some(lexically_absolute(cwd, &raw))
}

/// `cwd/path` with `.` and `..` folded, without touching the file system (Python's
/// `os.path.abspath`).
pub fn lexically_absolute(cwd: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let mut out: Vec<OsString> = Vec::new();
    for c in joined.components() {
        match c {
            Component::Normal(part) => out.push(part.to_os_string()),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let mut result = PathBuf::from("/");
    result.extend(out);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abspath_folds_like_python() {
        let cwd = Path::new("/home/u/app");
        assert_eq!(
            lexically_absolute(cwd, Path::new(".")),
            Path::new("/home/u/app")
        );
        assert_eq!(
            lexically_absolute(cwd, Path::new("../x/./y")),
            Path::new("/home/u/x/y")
        );
        assert_eq!(
            lexically_absolute(cwd, Path::new("/a/b/../c")),
            Path::new("/a/c")
        );
        assert_eq!(lexically_absolute(cwd, Path::new("/..")), Path::new("/"));
    }

    #[test]
    fn prefix_flag_wins_and_is_absolute() {
        let cwd = Path::new("/w");
        assert_eq!(
            pycache_prefix(Some(Path::new("cache")), cwd),
            Some(PathBuf::from("/w/cache"))
        );
    }
}
