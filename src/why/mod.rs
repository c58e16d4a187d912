//! `pycguard why MODULE`: which file `import MODULE` loads, and which cache is then
//! executed — found without executing anything of the user's.
//!
//! Three steps, the first the only one that starts a process:
//! 1. [`probe`]: the interpreter, isolated (`-I -S -B` in `/`, environment reduced), says
//!    its base `sys.path`, builtin and frozen modules, import suffixes and what its `site`
//!    module names as site-packages;
//! 2. [`syspath`]: pycguard computes what `site` would add (virtualenv, user site,
//!    site-packages, `.pth` files — their `import` lines listed, never run; setuptools
//!    editable finders read from their literals by [`literal`]; legacy egg-links);
//! 3. [`importer`]: the importer's order over that path, component by component, keeping
//!    every candidate that lost.
//!
//! [`locate`] does all three and names the cache the interpreter would load for the
//! winning file ([`CacheLocation`]: tag, optimisation level, pycache prefix). Judging and
//! proving that cache is the command's business (`commands::why`), through the
//! scan and prove pipelines every other command uses. Other commands that need a
//! module's location (`pycguard run -m MODULE`) call [`locate`].

pub mod importer;
pub mod literal;
pub mod probe;
pub mod pth;
pub mod syspath;
pub mod view;

use std::path::{Path, PathBuf};

use crate::interpreters::Interpreter;
use crate::layout;
pub use importer::{FileKind, Found, Resolution};
pub use syspath::SysPath;

/// How the interpreter would be started, as far as finding a module goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Search {
    /// The executable as the user runs it (a virtualenv's `bin/python`, unresolved: its
    /// `pyvenv.cfg` is found from there); `None`: the interpreter's own path.
    pub executable: Option<PathBuf>,
    /// `sys.path[0]`: the script's directory, or the current directory for `-c`/`-m`.
    pub path0: Vec<PathBuf>,
    /// The process's current directory (relative `PYTHONPATH` entries).
    pub cwd: PathBuf,
    /// `PYTHONPATH`, split.
    pub pythonpath: Vec<PathBuf>,
    /// `PYTHONUSERBASE`, else `~/.local`.
    pub user_base: Option<PathBuf>,
    /// `PYTHONNOUSERSITE`.
    pub no_user_site: bool,
    /// `PYTHONSAFEPATH` (3.11+: no `sys.path[0]`).
    pub safe_path: bool,
    /// `-O` count / `PYTHONOPTIMIZE`.
    pub optimize: u8,
    /// `PYTHONPYCACHEPREFIX` / `-X pycache_prefix` (absolute).
    pub pycache_prefix: Option<PathBuf>,
}

/// Where the interpreter looks for the cached code of the winning file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheLocation {
    pub path: PathBuf,
    /// The cache tag in its name (`None` for Python 2's `.pyc` beside the source).
    pub tag: Option<String>,
    pub optimization: u8,
    /// The pycache prefix it lies under.
    pub prefix: Option<PathBuf>,
    /// The winning file is itself the cache (a sourceless `.pyc`).
    pub is_the_module: bool,
}

/// Everything `why` learned.
#[derive(Clone, Debug)]
pub struct Located {
    pub sys_path: SysPath,
    pub resolution: Resolution,
    /// `None` when no cached code is involved (builtin, frozen, extension, namespace,
    /// not found).
    pub cache: Option<CacheLocation>,
    pub version: (u32, u32),
}

/// Why a module could not be looked for.
#[derive(Debug, thiserror::Error)]
pub enum WhyError {
    #[error("{0:?} is not a module name (dotted identifiers, as `import` takes them)")]
    BadName(String),
    #[error(transparent)]
    Probe(#[from] probe::ProbeError),
}

/// Is `name` something `import name` accepts (absolute, dotted identifiers)?
pub fn valid_module_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

/// Find which file `import module` loads with `interpreter` started as `search` says, and
/// the cache it would load for it (see the module docs). Starts one isolated process.
pub fn locate(
    module: &str,
    interpreter: &Interpreter,
    search: &Search,
) -> Result<Located, WhyError> {
    if !valid_module_name(module) {
        return Err(WhyError::BadName(module.to_owned()));
    }
    let facts = probe::ask(interpreter)?;
    Ok(locate_with(
        module,
        interpreter,
        &facts,
        search,
        &view::RealFiles,
    ))
}

/// [`locate`] with the probe's answer given and any file view (pure but for the view).
pub fn locate_with(
    module: &str,
    interpreter: &Interpreter,
    facts: &probe::Facts,
    search: &Search,
    files: &dyn view::FileView,
) -> Located {
    let version = facts.base.version;
    let safe_path = search.safe_path && version >= (3, 11);
    let inputs = syspath::SiteInputs {
        executable: search
            .executable
            .clone()
            .unwrap_or_else(|| interpreter.path.clone()),
        path0: if safe_path {
            Vec::new()
        } else {
            search.path0.clone()
        },
        cwd: search.cwd.clone(),
        pythonpath: search.pythonpath.clone(),
        user_base: search.user_base.clone(),
        no_user_site: search.no_user_site,
    };
    let sys_path = syspath::build(&facts.base, &inputs, files);
    let mut rules = facts.rules.clone();
    if version.0 < 3 && search.optimize > 0 {
        rules.bytecode_suffixes = vec![".pyo".into()];
    }
    let resolution = importer::resolve(module, &sys_path, &rules, files);
    let cache = resolution
        .found()
        .and_then(|step| step.found.file())
        .and_then(|(file, kind)| {
            cache_for(
                file,
                kind,
                version,
                interpreter.cache_tag.as_deref(),
                search,
            )
        });
    Located {
        sys_path,
        resolution,
        cache,
        version,
    }
}

/// The cache the interpreter of `version` and `tag` reads for `file`.
pub fn cache_for(
    file: &Path,
    kind: FileKind,
    version: (u32, u32),
    tag: Option<&str>,
    search: &Search,
) -> Option<CacheLocation> {
    match kind {
        FileKind::Extension => None,
        FileKind::Sourceless => Some(CacheLocation {
            path: file.to_path_buf(),
            tag: None,
            optimization: search.optimize,
            prefix: None,
            is_the_module: true,
        }),
        FileKind::Source if version.0 < 3 => {
            let mut name = file.file_stem()?.to_os_string();
            name.push(if search.optimize > 0 { ".pyo" } else { ".pyc" });
            Some(CacheLocation {
                path: file.with_file_name(name),
                tag: None,
                optimization: search.optimize,
                prefix: None,
                is_the_module: false,
            })
        }
        FileKind::Source => {
            let tag = tag?;
            let prefix = search
                .pycache_prefix
                .clone()
                .filter(|_| layout::reads_pycache_prefix(version));
            let absolute = layout::lexically_absolute(&search.cwd, file);
            let path = match &prefix {
                Some(p) => layout::prefix_cache_path(p, &absolute, tag, search.optimize)?,
                None => layout::cache_path(file, tag, search.optimize)?,
            };
            Some(CacheLocation {
                path,
                tag: Some(tag.to_owned()),
                optimization: search.optimize,
                prefix,
                is_the_module: false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        for ok in ["a", "ingest.rss", "_x.y_2", "café"] {
            assert!(valid_module_name(ok), "{ok}");
        }
        for bad in ["", ".rel", "a..b", "a/b", "1a", "a.", "a-b", "../etc"] {
            assert!(!valid_module_name(bad), "{bad}");
        }
    }

    #[test]
    fn caches_the_interpreter_reads() {
        let search = Search {
            cwd: PathBuf::from("/w"),
            optimize: 2,
            ..Search::default()
        };
        let src = Path::new("/srv/app/rss.py");
        let c = cache_for(src, FileKind::Source, (3, 12), Some("cpython-312"), &search).unwrap();
        assert_eq!(
            c.path,
            PathBuf::from("/srv/app/__pycache__/rss.cpython-312.opt-2.pyc")
        );
        let prefixed = Search {
            pycache_prefix: Some(PathBuf::from("/cache")),
            optimize: 0,
            ..search.clone()
        };
        let c = cache_for(
            src,
            FileKind::Source,
            (3, 12),
            Some("cpython-312"),
            &prefixed,
        )
        .unwrap();
        assert_eq!(c.path, PathBuf::from("/cache/srv/app/rss.cpython-312.pyc"));
        // 3.7 does not know the prefix.
        let c = cache_for(src, FileKind::Source, (3, 7), Some("cpython-37"), &prefixed).unwrap();
        assert_eq!(
            c.path,
            PathBuf::from("/srv/app/__pycache__/rss.cpython-37.pyc")
        );
        assert_eq!(c.prefix, None);
        let c = cache_for(src, FileKind::Source, (2, 7), None, &search).unwrap();
        assert_eq!(c.path, PathBuf::from("/srv/app/rss.pyo"));
        assert!(cache_for(
            src,
            FileKind::Extension,
            (3, 12),
            Some("cpython-312"),
            &search
        )
        .is_none());
        let ghost = cache_for(
            Path::new("/a/gone.pyc"),
            FileKind::Sourceless,
            (3, 12),
            None,
            &search,
        )
        .unwrap();
        assert!(ghost.is_the_module);
    }
}
