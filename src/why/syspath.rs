//! The `sys.path` a normal start of the interpreter would have, computed by pycguard
//! instead of by running `site` (which would execute `.pth` lines). Pure: written against
//! [`FileView`].
//!
//! In order, as CPython builds it:
//! 1. the script directory or current directory ([`SiteInputs::path0`]);
//! 2. `PYTHONPATH` entries (made absolute against the current directory, as
//!    `site.removeduppaths` does), then the interpreter's base path (asked once in
//!    isolation: `-I -S`, so no `site`), duplicates removed;
//! 3. what `site.main` adds: a virtualenv's site-packages when `pyvenv.cfg` sits beside
//!    the executable or one directory up (`include-system-site-packages` decides whether
//!    the system site-packages follow and, when false, disables the user site); the user
//!    site (`~/.local/lib/pythonX.Y/site-packages`, `PYTHONUSERBASE`; off with
//!    `PYTHONNOUSERSITE` and inside a virtualenv that excludes system packages); the
//!    system site-packages of the interpreter's prefixes (as its own `site` module names
//!    them, distribution patches included).
//!
//! Each site directory added is followed by its `.pth` files, sorted by name (3.13+ skips
//! names starting with `.`): path lines are added when they exist and are new, `import`
//! lines are never run but listed ([`PthEffect::WouldExecute`]); a setuptools editable
//! finder's import line is modelled from its `MAPPING`/`NAMESPACES` literals (it appends
//! a meta-path finder and, with namespaces, a path placeholder). Legacy `*.egg-link` files
//! are listed with their target: the target reaches `sys.path` through
//! `easy-install.pth`, which is a `.pth` like the others.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::literal;
use super::pth::{self, PthLine};
use super::view::FileView;
use crate::layout::lexically_absolute;

/// The prefix the probe's answer uses for a virtualenv's directory (see
/// [`Base::venv_site_packages`]).
pub const VENV_PLACEHOLDER: &str = "/@pycguard-venv@";

/// What the interpreter said about itself that `sys.path` depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Base {
    pub version: (u32, u32),
    /// `sys.path` under `-I -S` (2.7: `-E -s -S`, relative entries dropped).
    pub path: Vec<PathBuf>,
    /// The site-packages of its own prefixes (`site.getsitepackages()`).
    pub site_packages: Vec<PathBuf>,
    /// The site-packages of a virtualenv, under [`VENV_PLACEHOLDER`] for its directory.
    pub venv_site_packages: Vec<PathBuf>,
    /// `lib/pythonX.Y/site-packages`, relative to the user base.
    pub user_site_suffix: PathBuf,
}

/// What the caller knows about how the interpreter would be started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteInputs {
    /// The executable as the user runs it (a virtualenv's `bin/python`, not resolved).
    pub executable: PathBuf,
    /// `sys.path[0]`: the script's directory (`--path`, repeatable) or the current
    /// directory (`-c`, `-m`).
    pub path0: Vec<PathBuf>,
    /// The current directory of the process.
    pub cwd: PathBuf,
    /// `PYTHONPATH`, split.
    pub pythonpath: Vec<PathBuf>,
    /// The user base (`PYTHONUSERBASE`, else `~/.local`); `None` when unknown.
    pub user_base: Option<PathBuf>,
    /// `PYTHONNOUSERSITE` is set.
    pub no_user_site: bool,
}

/// Where a `sys.path` entry comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The script directory or current directory.
    Path0,
    PythonPath,
    /// The interpreter's own path (standard library, `lib-dynload`).
    Base,
    VenvSite,
    UserSite,
    SystemSite,
    /// A path line of a `.pth` file.
    Pth {
        file: PathBuf,
        line: usize,
    },
    /// The placeholder a setuptools editable finder with namespaces appends
    /// (index into [`SysPath::finders`]).
    EditablePlaceholder {
        finder: usize,
    },
}

impl Origin {
    pub fn name(&self) -> &'static str {
        match self {
            Origin::Path0 => "script-or-cwd",
            Origin::PythonPath => "pythonpath",
            Origin::Base => "interpreter",
            Origin::VenvSite => "venv-site-packages",
            Origin::UserSite => "user-site-packages",
            Origin::SystemSite => "site-packages",
            Origin::Pth { .. } => "pth",
            Origin::EditablePlaceholder { .. } => "editable-placeholder",
        }
    }
}

/// One `sys.path` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub origin: Origin,
}

/// What one line of a `.pth` file does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PthEffect {
    /// The directory was appended to `sys.path`.
    Added(PathBuf),
    /// Already on `sys.path`: nothing added.
    Duplicate(PathBuf),
    /// Does not exist: nothing added.
    Missing(PathBuf),
    /// `site` would execute this line; pycguard did not. `finder` names the editable
    /// finder it installs, when it is one (modelled from its literals).
    WouldExecute { code: String, finder: Option<usize> },
}

/// A `.pth` file and what each of its lines does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PthFile {
    pub path: PathBuf,
    pub lines: Vec<(usize, PthEffect)>,
    /// Not valid UTF-8: `site` raises `UnicodeDecodeError` (under a UTF-8 locale) and the
    /// interpreter does not start. Its lines are read as far as they decode.
    pub undecodable: bool,
}

/// A setuptools editable finder (`__editable___NAME_finder.py`), read from its literals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditableFinder {
    /// The `.pth` file whose import line installs it.
    pub pth: PathBuf,
    pub module: String,
    /// The module file read; `None` when it was not found on `sys.path`.
    pub file: Option<PathBuf>,
    /// Top-level name → package directory or module file.
    pub mapping: Vec<(String, PathBuf)>,
    /// Namespace name → its directories.
    pub namespaces: Vec<(String, Vec<PathBuf>)>,
    /// Why its literals could not be read (then it maps nothing).
    pub error: Option<String>,
    /// The `sys.path` entry it appends when it has namespaces (`PATH_PLACEHOLDER`).
    pub placeholder: PathBuf,
}

/// A legacy `*.egg-link` (from `setup.py develop` / old `pip install -e`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EggLink {
    pub file: PathBuf,
    /// Its first line: the project directory.
    pub target: PathBuf,
}

/// The virtualenv `site` recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Venv {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub include_system_site_packages: bool,
}

/// The computed `sys.path` and everything learned on the way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SysPath {
    pub entries: Vec<Entry>,
    pub pth_files: Vec<PthFile>,
    /// Editable finders, in the order they would be appended to `sys.meta_path` (after
    /// the path finder).
    pub finders: Vec<EditableFinder>,
    pub egg_links: Vec<EggLink>,
    pub venv: Option<Venv>,
    /// The user site directory and whether it was added.
    pub user_site: Option<(PathBuf, bool)>,
}

impl SysPath {
    /// The import lines `site` would execute, with their file and line.
    pub fn would_execute(&self) -> impl Iterator<Item = (&Path, usize, &str)> {
        self.pth_files.iter().flat_map(|f| {
            f.lines.iter().filter_map(move |(n, effect)| match effect {
                PthEffect::WouldExecute { code, .. } => Some((f.path.as_path(), *n, code.as_str())),
                _ => None,
            })
        })
    }
}

/// Compute the `sys.path` (see the module docs).
pub fn build(base: &Base, inputs: &SiteInputs, view: &dyn FileView) -> SysPath {
    let mut builder = Builder {
        out: SysPath::default(),
        known: HashSet::new(),
        processed: HashSet::new(),
        view,
        version: base.version,
    };
    let cwd = &inputs.cwd;
    for p in &inputs.path0 {
        builder.out.entries.push(Entry {
            path: lexically_absolute(cwd, p),
            origin: Origin::Path0,
        });
    }
    // removeduppaths: PYTHONPATH and the base path, absolute, duplicates dropped.
    let early = inputs
        .pythonpath
        .iter()
        .map(|p| (p, Origin::PythonPath))
        .chain(base.path.iter().map(|p| (p, Origin::Base)));
    for (p, origin) in early {
        let path = lexically_absolute(cwd, p);
        if builder.known.insert(path.clone()) {
            builder.out.entries.push(Entry { path, origin });
        }
    }
    let mut user_site_enabled = !inputs.no_user_site;
    let mut system_prefix_sites = base.site_packages.clone();
    if base.version >= (3, 3) {
        if let Some(venv) = find_venv(&inputs.executable, view) {
            let sites: Vec<PathBuf> = base
                .venv_site_packages
                .iter()
                .map(|p| in_venv(p, &venv.dir))
                .collect();
            for site in &sites {
                builder.add_site_packages(site, Origin::VenvSite);
            }
            if venv.include_system_site_packages {
                let mut all = sites;
                all.extend(system_prefix_sites);
                system_prefix_sites = all;
            } else {
                system_prefix_sites = sites;
                user_site_enabled = false;
            }
            builder.out.venv = Some(venv);
        }
    }
    if let Some(user_base) = &inputs.user_base {
        let user_site = user_base.join(&base.user_site_suffix);
        let added = user_site_enabled && view.is_dir(&user_site);
        if added {
            builder.add_site_packages(&user_site, Origin::UserSite);
        }
        builder.out.user_site = Some((user_site, added));
    }
    for site in &system_prefix_sites {
        builder.add_site_packages(site, Origin::SystemSite);
    }
    builder.out
}

/// A venv-relative path of the probe's answer, for `venv`.
fn in_venv(path: &Path, venv: &Path) -> PathBuf {
    match path.strip_prefix(VENV_PLACEHOLDER) {
        Ok(rest) => venv.join(rest),
        Err(_) => path.to_path_buf(),
    }
}

/// `site.venv`: `pyvenv.cfg` beside the executable, else one directory up.
fn find_venv(executable: &Path, view: &dyn FileView) -> Option<Venv> {
    let exe_dir = executable.parent()?;
    let site_prefix = exe_dir.parent()?;
    let config = [exe_dir.join("pyvenv.cfg"), site_prefix.join("pyvenv.cfg")]
        .into_iter()
        .find(|c| view.is_file(c))?;
    let parsed = pth::parse_pyvenv_cfg(&view.read(&config).unwrap_or_default());
    Some(Venv {
        dir: site_prefix.to_path_buf(),
        config,
        include_system_site_packages: parsed.include_system_site_packages,
    })
}

struct Builder<'a> {
    out: SysPath,
    known: HashSet<PathBuf>,
    processed: HashSet<PathBuf>,
    view: &'a dyn FileView,
    version: (u32, u32),
}

impl Builder<'_> {
    /// `addsitepackages` for one directory: added when it is a directory.
    fn add_site_packages(&mut self, dir: &Path, origin: Origin) {
        if self.view.is_dir(dir) {
            self.add_site_dir(dir, origin);
        }
    }

    /// `site.addsitedir`: the directory, then its `.pth` files in sorted order.
    fn add_site_dir(&mut self, dir: &Path, origin: Origin) {
        let dir = lexically_absolute(Path::new("/"), dir);
        if self.known.insert(dir.clone()) {
            self.out.entries.push(Entry {
                path: dir.clone(),
                origin,
            });
        }
        // A directory processed twice (a venv's, again among the system prefixes) adds
        // nothing new; its import lines are listed once.
        if !self.processed.insert(dir.clone()) {
            return;
        }
        let mut names: Vec<OsString> = self
            .view
            .list(&dir)
            .into_iter()
            .filter(|n| n.as_bytes().ends_with(b".pth"))
            .filter(|n| self.version < (3, 13) || !n.as_bytes().starts_with(b"."))
            .collect();
        names.sort();
        for name in names {
            self.add_pth(&dir, &dir.join(name));
        }
        let mut links: Vec<OsString> = self
            .view
            .list(&dir)
            .into_iter()
            .filter(|n| n.as_bytes().ends_with(b".egg-link"))
            .collect();
        links.sort();
        for name in links {
            let file = dir.join(name);
            let Some(bytes) = self.view.read(&file) else {
                continue;
            };
            let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
            let first = first.strip_suffix(b"\r").unwrap_or(first);
            let target = PathBuf::from(OsString::from_vec(first.to_vec()));
            self.out.egg_links.push(EggLink {
                file,
                target: lexically_absolute(&dir, &target),
            });
        }
    }

    /// `site.addpackage`.
    fn add_pth(&mut self, site_dir: &Path, file: &Path) {
        if !self.view.is_file(file) {
            return;
        }
        let Some(bytes) = self.view.read(file) else {
            return;
        };
        let mut lines = Vec::new();
        for (n, line) in pth::parse_pth(&bytes, self.version) {
            let effect = match line {
                PthLine::Import(code) => {
                    let finder = pth::editable_finder_module(&code)
                        .map(|module| self.install_finder(file, module));
                    PthEffect::WouldExecute { code, finder }
                }
                PthLine::Path(p) => {
                    let path = lexically_absolute(site_dir, Path::new(&p));
                    if self.known.contains(&path) {
                        PthEffect::Duplicate(path)
                    } else if !self.view.exists(&path) {
                        PthEffect::Missing(path)
                    } else {
                        self.known.insert(path.clone());
                        self.out.entries.push(Entry {
                            path: path.clone(),
                            origin: Origin::Pth {
                                file: file.to_path_buf(),
                                line: n,
                            },
                        });
                        PthEffect::Added(path)
                    }
                }
            };
            lines.push((n, effect));
        }
        let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
        self.out.pth_files.push(PthFile {
            path: file.to_path_buf(),
            lines,
            undecodable: std::str::from_utf8(text).is_err(),
        });
    }

    /// Model `import MODULE; MODULE.install()` of a setuptools editable finder: read its
    /// literals from the first `MODULE.py` on `sys.path` so far.
    fn install_finder(&mut self, pth: &Path, module: &str) -> usize {
        let file = self
            .out
            .entries
            .iter()
            .map(|e| e.path.join(format!("{module}.py")))
            .find(|f| self.view.is_file(f));
        let mut finder = EditableFinder {
            pth: pth.to_path_buf(),
            module: module.to_owned(),
            file: file.clone(),
            mapping: Vec::new(),
            namespaces: Vec::new(),
            error: None,
            placeholder: PathBuf::from(format!("{module}.__path_hook__")),
        };
        match file.as_deref().and_then(|f| self.view.read(f)) {
            None => finder.error = Some(format!("{module}.py not found on sys.path")),
            Some(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                if let Ok(literal::Literal::Str(p)) = literal::assignment(&text, "PATH_PLACEHOLDER")
                {
                    finder.placeholder = PathBuf::from(OsString::from_vec(p));
                }
                let parsed = literal::assignment(&text, "MAPPING")
                    .and_then(|m| literal::string_map(&m))
                    .and_then(|mapping| {
                        let namespaces = match literal::assignment(&text, "NAMESPACES") {
                            Ok(n) => literal::list_map(&n)?,
                            Err(literal::LiteralError::Missing(_)) => Vec::new(),
                            Err(e) => return Err(e),
                        };
                        Ok((mapping, namespaces))
                    });
                match parsed {
                    Ok((mapping, namespaces)) => {
                        finder.mapping = mapping
                            .into_iter()
                            .map(|(k, v)| (k, PathBuf::from(v)))
                            .collect();
                        finder.namespaces = namespaces
                            .into_iter()
                            .map(|(k, v)| (k, v.into_iter().map(PathBuf::from).collect()))
                            .collect();
                    }
                    Err(e) => finder.error = Some(e.to_string()),
                }
            }
        }
        let index = self.out.finders.len();
        // install(): the meta-path finder once per module; with namespaces, the
        // placeholder entry once.
        if let Some(existing) = self.out.finders.iter().position(|f| f.module == module) {
            return existing;
        }
        if !finder.namespaces.is_empty() {
            let placeholder = finder.placeholder.clone();
            if !self.out.entries.iter().any(|e| e.path == placeholder) {
                self.out.entries.push(Entry {
                    path: placeholder,
                    origin: Origin::EditablePlaceholder { finder: index },
                });
            }
        }
        self.out.finders.push(finder);
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::why::view::MemFiles;

    fn base() -> Base {
        Base {
            version: (3, 12),
            path: vec![
                PathBuf::from("/py/lib/python312.zip"),
                PathBuf::from("/py/lib/python3.12"),
                PathBuf::from("/py/lib/python3.12/lib-dynload"),
                PathBuf::from("/py/lib/python3.12"),
            ],
            site_packages: vec![PathBuf::from("/py/lib/python3.12/site-packages")],
            venv_site_packages: vec![PathBuf::from(format!(
                "{VENV_PLACEHOLDER}/lib/python3.12/site-packages"
            ))],
            user_site_suffix: PathBuf::from("lib/python3.12/site-packages"),
        }
    }

    fn paths(sys_path: &SysPath) -> Vec<String> {
        sys_path
            .entries
            .iter()
            .map(|e| e.path.display().to_string())
            .collect()
    }

    #[test]
    fn order_of_a_plain_start() {
        let view = MemFiles::new()
            .dir("/py/lib/python3.12/lib-dynload")
            .dir("/py/lib/python3.12/site-packages")
            .dir("/home/u/.local/lib/python3.12/site-packages")
            .dir("/w/extra");
        let inputs = SiteInputs {
            executable: PathBuf::from("/py/bin/python3.12"),
            path0: vec![PathBuf::from("/w")],
            cwd: PathBuf::from("/w"),
            pythonpath: vec![PathBuf::from("extra"), PathBuf::from("/py/lib/python3.12")],
            user_base: Some(PathBuf::from("/home/u/.local")),
            no_user_site: false,
        };
        let sys_path = build(&base(), &inputs, &view);
        assert_eq!(
            paths(&sys_path),
            [
                "/w",
                "/w/extra",
                "/py/lib/python3.12",
                "/py/lib/python312.zip",
                "/py/lib/python3.12/lib-dynload",
                "/home/u/.local/lib/python3.12/site-packages",
                "/py/lib/python3.12/site-packages",
            ]
        );
        assert_eq!(sys_path.entries[1].origin, Origin::PythonPath);
        assert_eq!(sys_path.entries[5].origin, Origin::UserSite);
        // PYTHONNOUSERSITE: no user site.
        let off = build(
            &base(),
            &SiteInputs {
                no_user_site: true,
                ..inputs
            },
            &view,
        );
        assert!(!paths(&off).iter().any(|p| p.starts_with("/home")));
        assert_eq!(
            off.user_site,
            Some((
                PathBuf::from("/home/u/.local/lib/python3.12/site-packages"),
                false
            ))
        );
    }

    #[test]
    fn venvs_follow_pyvenv_cfg() {
        let isolated = MemFiles::new()
            .file(
                "/v/pyvenv.cfg",
                "home = /py/bin\ninclude-system-site-packages = false\n",
            )
            .dir("/v/lib/python3.12/site-packages")
            .dir("/py/lib/python3.12/site-packages")
            .dir("/home/u/.local/lib/python3.12/site-packages");
        let inputs = SiteInputs {
            executable: PathBuf::from("/v/bin/python"),
            cwd: PathBuf::from("/"),
            user_base: Some(PathBuf::from("/home/u/.local")),
            ..SiteInputs::default()
        };
        let sys_path = build(&base(), &inputs, &isolated);
        let p = paths(&sys_path);
        assert_eq!(p.last().unwrap(), "/v/lib/python3.12/site-packages");
        assert!(!p
            .iter()
            .any(|p| p.starts_with("/home") || p == "/py/lib/python3.12/site-packages"));
        assert_eq!(sys_path.venv.as_ref().unwrap().dir, PathBuf::from("/v"));
        // include-system-site-packages = true: the system ones follow, and the user site.
        let shared = isolated
            .clone()
            .file("/v/pyvenv.cfg", "include-system-site-packages = true\n");
        let p = paths(&build(&base(), &inputs, &shared));
        assert_eq!(
            &p[p.len() - 3..],
            [
                "/v/lib/python3.12/site-packages",
                "/home/u/.local/lib/python3.12/site-packages",
                "/py/lib/python3.12/site-packages"
            ]
        );
    }

    #[test]
    fn pth_files_as_site_processes_them() {
        let sp = "/py/lib/python3.12/site-packages";
        let view = MemFiles::new()
            .dir("/src/a")
            .dir("/src/b")
            .file(&format!("{sp}/b.pth"), "/src/b\n# comment\n/src/a\n/missing\nimport evil; evil.run()\n")
            .file(&format!("{sp}/a.pth"), "/src/a\n")
            .file(&format!("{sp}/.hidden.pth"), "/src/hidden\n")
            .dir("/src/hidden")
            .file(&format!("{sp}/proj.egg-link"), "/src/proj\n.")
            .file(
                &format!("{sp}/__editable__.app-1.0.pth"),
                "import __editable___app_1_0_finder; __editable___app_1_0_finder.install()",
            )
            .file(
                &format!("{sp}/__editable___app_1_0_finder.py"),
                "MAPPING: dict[str, str] = {'app': '/proj/app'}\nNAMESPACES: dict[str, list[str]] = {'ns': ['/proj/ns']}\nPATH_PLACEHOLDER = '__editable__.app-1.0.finder' + \".__path_hook__\"\n",
            );
        let inputs = SiteInputs {
            executable: PathBuf::from("/py/bin/python3.12"),
            cwd: PathBuf::from("/"),
            ..SiteInputs::default()
        };
        let sys_path = build(&base(), &inputs, &view);
        let p = paths(&sys_path);
        // Sorted: .hidden.pth (3.12 still reads it), __editable__…, a.pth, b.pth.
        assert_eq!(
            &p[p.len() - 5..],
            [
                sp,
                "/src/hidden",
                "__editable__.app-1.0.finder.__path_hook__",
                "/src/a",
                "/src/b"
            ]
        );
        let b = sys_path
            .pth_files
            .iter()
            .find(|f| f.path.ends_with("b.pth"))
            .unwrap();
        assert_eq!(
            b.lines,
            vec![
                (1, PthEffect::Added(PathBuf::from("/src/b"))),
                (3, PthEffect::Duplicate(PathBuf::from("/src/a"))),
                (4, PthEffect::Missing(PathBuf::from("/missing"))),
                (
                    5,
                    PthEffect::WouldExecute {
                        code: "import evil; evil.run()".into(),
                        finder: None
                    }
                ),
            ]
        );
        assert_eq!(sys_path.would_execute().count(), 2);
        let finder = &sys_path.finders[0];
        assert_eq!(
            finder.mapping,
            vec![("app".into(), PathBuf::from("/proj/app"))]
        );
        assert_eq!(finder.namespaces[0].1, vec![PathBuf::from("/proj/ns")]);
        assert_eq!(finder.error, None);
        assert_eq!(sys_path.egg_links[0].target, PathBuf::from("/src/proj"));
        // 3.13 skips hidden .pth files.
        let modern = Base {
            version: (3, 13),
            ..base()
        };
        assert!(!paths(&build(&modern, &inputs, &view)).contains(&"/src/hidden".to_string()));
    }
}
