//! Which file `import NAME` loads: the importer's order, component by component, over a
//! computed [`SysPath`]. Pure: written against [`FileView`].
//!
//! For each component of a dotted name (`a`, then `a.b` in `a.__path__`, …), the meta
//! path in CPython's order:
//! 1. builtin modules (`sys.builtin_module_names`, top level only), then frozen modules
//!    (the interpreter's frozen list: `os`, `site`… on 3.11+);
//! 2. the path finder, entry by entry: in each directory a package (`NAME/__init__` with
//!    an extension, source or bytecode suffix) before a module `NAME` + suffix, suffixes in
//!    the importer's order (extension modules, `.py`, then a legacy sourceless `.pyc`,
//!    which is imported — a ghost — only when no source is there); a directory without
//!    `__init__` is a namespace portion (3.3+), used only when no entry has a package or
//!    module of that name; a setuptools editable placeholder contributes its namespace
//!    directories;
//! 3. setuptools editable finders (appended to `sys.meta_path` by their `.pth` line, so
//!    consulted only when the path finder found nothing): the mapped package directory's
//!    `__init__.py`, else the mapped path with each suffix; a child of a mapped package
//!    through the path finder on that directory.
//!
//! Python 2 differs: packages need `__init__.py` (or `.pyc`/`.pyo`), no namespace
//! portions, suffixes in `imp.get_suffixes()` order. Every candidate that loses (a module
//! beside the winning package, a copy further down the path, a namespace portion beaten
//! by a package, an editable mapping never reached) is kept as [`Shadowed`]. A package
//! whose `__init__` changes `__path__` (`pkgutil.extend_path`,
//! `pkg_resources.declare_namespace`, assignments) is flagged: pycguard does not run it,
//! so it follows the static `__path__` only. Modules already in `sys.modules` at start-up
//! and zip archives on `sys.path` are not modelled (zip archives are named).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::syspath::SysPath;
use super::view::{FileView, Kind};

/// What the interpreter's import system is made of (from the probe).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub version: (u32, u32),
    pub builtin: BTreeSet<String>,
    pub frozen: BTreeSet<String>,
    /// `importlib.machinery.EXTENSION_SUFFIXES` (2.7: the `C_EXTENSION` suffixes).
    pub extension_suffixes: Vec<String>,
    /// `.py`.
    pub source_suffixes: Vec<String>,
    /// `.pyc` (Python 2 under `-O`: `.pyo`).
    pub bytecode_suffixes: Vec<String>,
}

impl Rules {
    fn namespaces(&self) -> bool {
        self.version >= (3, 3)
    }

    /// Suffixes in the path finder's order, each with what it loads.
    fn loaders(&self) -> Vec<(&str, FileKind)> {
        let ext = self
            .extension_suffixes
            .iter()
            .map(|s| (s.as_str(), FileKind::Extension));
        let src = self
            .source_suffixes
            .iter()
            .map(|s| (s.as_str(), FileKind::Source));
        let pyc = self
            .bytecode_suffixes
            .iter()
            .map(|s| (s.as_str(), FileKind::Sourceless));
        ext.chain(src).chain(pyc).collect()
    }

    /// The suffixes a package's `__init__` may have.
    fn init_loaders(&self) -> Vec<(&str, FileKind)> {
        if self.version >= (3, 0) {
            return self.loaders();
        }
        let src = self
            .source_suffixes
            .iter()
            .map(|s| (s.as_str(), FileKind::Source));
        let pyc = self
            .bytecode_suffixes
            .iter()
            .map(|s| (s.as_str(), FileKind::Sourceless));
        src.chain(pyc).collect()
    }

    /// `importlib.machinery.all_suffixes()`: source, bytecode, extension.
    fn all_suffixes(&self) -> Vec<(&str, FileKind)> {
        let ext = self
            .extension_suffixes
            .iter()
            .map(|s| (s.as_str(), FileKind::Extension));
        let src = self
            .source_suffixes
            .iter()
            .map(|s| (s.as_str(), FileKind::Source));
        let pyc = self
            .bytecode_suffixes
            .iter()
            .map(|s| (s.as_str(), FileKind::Sourceless));
        src.chain(pyc).chain(ext).collect()
    }
}

/// What a file is loaded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A `.py`: its cache is what runs, when the cache is accepted.
    Source,
    /// A shared library.
    Extension,
    /// A legacy `.pyc` loaded without a source (a ghost when it had one).
    Sourceless,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Source => "source",
            FileKind::Extension => "extension",
            FileKind::Sourceless => "sourceless",
        }
    }
}

/// What one component resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Builtin,
    Frozen,
    Module {
        file: PathBuf,
        kind: FileKind,
    },
    /// A regular package: its `__init__` and its `__path__`.
    Package {
        init: PathBuf,
        kind: FileKind,
        path: Vec<PathBuf>,
    },
    Namespace {
        portions: Vec<PathBuf>,
    },
}

impl Found {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Found::Builtin => "builtin",
            Found::Frozen => "frozen",
            Found::Module { .. } => "module",
            Found::Package { .. } => "package",
            Found::Namespace { .. } => "namespace",
        }
    }

    /// The file that is loaded, if any.
    pub fn file(&self) -> Option<(&Path, FileKind)> {
        match self {
            Found::Module { file, kind } => Some((file, *kind)),
            Found::Package { init, kind, .. } => Some((init, *kind)),
            _ => None,
        }
    }

    /// Where its submodules are searched.
    fn search_path(&self) -> Option<Vec<PathBuf>> {
        match self {
            Found::Package { path, .. } => Some(path.clone()),
            Found::Namespace { portions } => Some(portions.clone()),
            _ => None,
        }
    }
}

/// Which finder found a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum By {
    Builtin,
    Frozen,
    /// The path finder, in this entry of `sys.path` (index) or of the parent's `__path__`.
    PathEntry {
        entry: PathBuf,
        sys_path_index: Option<usize>,
    },
    /// Namespace portions collected by the path finder.
    PathNamespace,
    /// A setuptools editable finder (index into [`SysPath::finders`]).
    Editable {
        finder: usize,
    },
}

/// A candidate that lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shadowed {
    /// The dotted name it would have provided.
    pub name: String,
    pub path: PathBuf,
    pub what: &'static str,
    pub why: ShadowReason,
}

/// Why a candidate lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShadowReason {
    /// In the same directory, a package or an earlier suffix wins.
    SameDirectory,
    /// An earlier entry of the search path has it.
    EarlierEntry,
    /// A namespace portion: any package or module anywhere on the path wins.
    NamespacePortion,
    /// An editable finder maps the name here, but the path finder, which comes first,
    /// found it.
    EditableNotReached,
}

impl ShadowReason {
    pub fn name(self) -> &'static str {
        match self {
            ShadowReason::SameDirectory => "same-directory",
            ShadowReason::EarlierEntry => "earlier-entry",
            ShadowReason::NamespacePortion => "namespace-portion",
            ShadowReason::EditableNotReached => "editable-not-reached",
        }
    }
}

/// One component's resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The dotted name so far (`a`, `a.b`).
    pub name: String,
    pub found: Found,
    pub by: By,
}

/// How the resolution ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Every component was found; the last step is the module.
    Found,
    /// `ModuleNotFoundError` for this dotted name.
    NotFound { name: String },
    /// `a.b` where `a` is a module, not a package.
    NotAPackage { name: String, parent: String },
    /// Submodules of a builtin or frozen module: not followed.
    NotFollowed { name: String, parent: String },
}

/// Something pycguard did not follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A package whose `__init__` manipulates `__path__` at run time (line of the first
    /// hint).
    DynamicPath {
        package: String,
        init: PathBuf,
        line: usize,
        text: String,
    },
    /// A zip archive on the search path (zipimport is not modelled).
    ZipArchive { entry: PathBuf },
    /// An editable finder whose literals could not be read.
    UnreadableFinder { finder: usize },
}

/// Where `import NAME` leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub module: String,
    pub steps: Vec<Step>,
    pub end: End,
    pub shadowed: Vec<Shadowed>,
    pub notes: Vec<Note>,
}

impl Resolution {
    /// The module's own step when it was found.
    pub fn found(&self) -> Option<&Step> {
        match self.end {
            End::Found => self.steps.last(),
            _ => None,
        }
    }
}

/// Resolve `module` (dotted) over `sys_path`.
pub fn resolve(module: &str, sys_path: &SysPath, rules: &Rules, view: &dyn FileView) -> Resolution {
    let mut r = Resolution {
        module: module.to_owned(),
        steps: Vec::new(),
        end: End::Found,
        shadowed: Vec::new(),
        notes: Vec::new(),
    };
    for (i, f) in sys_path.finders.iter().enumerate() {
        if f.error.is_some() {
            r.notes.push(Note::UnreadableFinder { finder: i });
        }
    }
    let parts: Vec<&str> = module.split('.').collect();
    let mut search: Option<Vec<PathBuf>> = None;
    for (i, part) in parts.iter().enumerate() {
        let name = parts[..=i].join(".");
        if i > 0 {
            let parent = parts[..i].join(".");
            let prev = &r.steps[i - 1].found;
            match prev {
                Found::Builtin | Found::Frozen => {
                    r.end = End::NotFollowed { name, parent };
                    return r;
                }
                Found::Module { .. } => {
                    r.end = End::NotAPackage { name, parent };
                    return r;
                }
                _ => {}
            }
        }
        let Some(step) = find(
            &name,
            part,
            search.as_deref(),
            sys_path,
            rules,
            view,
            &mut r,
        ) else {
            r.end = End::NotFound { name };
            return r;
        };
        if let Found::Package {
            init,
            kind: FileKind::Source,
            ..
        } = &step.found
        {
            if let Some((line, text)) = view.read(init).as_deref().and_then(dynamic_path_hint) {
                r.notes.push(Note::DynamicPath {
                    package: name.clone(),
                    init: init.clone(),
                    line,
                    text,
                });
            }
        }
        search = step.found.search_path();
        r.steps.push(step);
    }
    r
}

/// One component through the meta path.
fn find(
    name: &str,
    tail: &str,
    search: Option<&[PathBuf]>,
    sys_path: &SysPath,
    rules: &Rules,
    view: &dyn FileView,
    r: &mut Resolution,
) -> Option<Step> {
    if search.is_none() && rules.builtin.contains(name) {
        return Some(Step {
            name: name.to_owned(),
            found: Found::Builtin,
            by: By::Builtin,
        });
    }
    if rules.frozen.contains(name) {
        return Some(Step {
            name: name.to_owned(),
            found: Found::Frozen,
            by: By::Frozen,
        });
    }
    // The entries searched: sys.path (with the placeholders editable finders appended),
    // or the parent's __path__.
    let entries: Vec<(PathBuf, Option<usize>)> = match search {
        None => sys_path
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.clone(), Some(i)))
            .collect(),
        Some(path) => path.iter().map(|p| (p.clone(), None)).collect(),
    };
    let found = path_finder(name, tail, &entries, sys_path, rules, view, r);
    // Editable finders come after the path finder.
    for (index, finder) in sys_path.finders.iter().enumerate() {
        let mapped = finder
            .mapping
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, p)| p.clone());
        let from_finder = match &mapped {
            Some(target) => editable_spec(target, rules, view),
            None => {
                let (parent, _) = name.rsplit_once('.').unwrap_or(("", name));
                match finder.mapping.iter().find(|(k, _)| k == parent) {
                    Some((_, dir)) if !parent.is_empty() => {
                        let mut scratch = Resolution {
                            module: name.to_owned(),
                            steps: Vec::new(),
                            end: End::Found,
                            shadowed: Vec::new(),
                            notes: Vec::new(),
                        };
                        path_finder(
                            name,
                            tail,
                            &[(dir.clone(), None)],
                            sys_path,
                            rules,
                            view,
                            &mut scratch,
                        )
                        .map(|s| s.found)
                    }
                    _ => None,
                }
            }
        };
        let Some(other) = from_finder else { continue };
        if found.is_some() {
            if let Some((file, _)) = other.file() {
                r.shadowed.push(Shadowed {
                    name: name.to_owned(),
                    path: file.to_path_buf(),
                    what: other.kind_name(),
                    why: ShadowReason::EditableNotReached,
                });
            }
            continue;
        }
        return Some(Step {
            name: name.to_owned(),
            found: other,
            by: By::Editable { finder: index },
        });
    }
    found
}

/// `_EditableFinder._find_spec`: `TARGET/__init__.py`, else TARGET with each suffix.
fn editable_spec(target: &Path, rules: &Rules, view: &dyn FileView) -> Option<Found> {
    let init = target.join("__init__.py");
    if view.exists(&init) {
        return Some(Found::Package {
            init,
            kind: FileKind::Source,
            path: vec![target.to_path_buf()],
        });
    }
    for (suffix, kind) in rules.all_suffixes() {
        let candidate = with_suffix(target, suffix);
        if view.exists(&candidate) {
            return Some(Found::Module {
                file: candidate,
                kind,
            });
        }
    }
    None
}

/// `pathlib.Path.with_suffix`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return path.to_path_buf();
    };
    let stem = match name.rfind('.') {
        Some(dot) if dot > 0 => &name[..dot],
        _ => name,
    };
    path.with_file_name(format!("{stem}{suffix}"))
}

/// What one directory holds for a name.
enum InDir {
    Hit(Found),
    Portion(PathBuf),
    Nothing,
}

/// `FileFinder.find_spec` (3.x) / `find_module` (2.7) in one directory; candidates that
/// lose within it are pushed to `shadowed`.
fn in_directory(
    name: &str,
    dir: &Path,
    tail: &str,
    rules: &Rules,
    view: &dyn FileView,
    shadowed: &mut Vec<Shadowed>,
) -> InDir {
    let base = dir.join(tail);
    let mut package = None;
    let mut portion = false;
    if view.is_dir(&base) {
        for (suffix, kind) in rules.init_loaders() {
            let init = base.join(format!("__init__{suffix}"));
            if view.is_file(&init) {
                package = Some(Found::Package {
                    init,
                    kind,
                    path: vec![base.clone()],
                });
                break;
            }
        }
        portion = package.is_none() && rules.namespaces();
    }
    let mut modules = Vec::new();
    for (suffix, kind) in rules.loaders() {
        let file = dir.join(format!("{tail}{suffix}"));
        if view.is_file(&file) {
            modules.push((file, kind));
        }
    }
    // A Python 3 legacy .pyc beside its source is not a candidate at all (the source
    // wins; the .pyc is never read), and Python 2's is the source's cache.
    let has_source = modules.iter().any(|(_, k)| *k == FileKind::Source);
    if has_source {
        modules.retain(|(_, k)| *k != FileKind::Sourceless);
    }
    if let Some(found) = package {
        for (file, kind) in modules {
            shadowed.push(Shadowed {
                name: name.to_owned(),
                path: file,
                what: kind.name(),
                why: ShadowReason::SameDirectory,
            });
        }
        return InDir::Hit(found);
    }
    let mut modules = modules.into_iter();
    if let Some((file, kind)) = modules.next() {
        for (file, kind) in modules {
            shadowed.push(Shadowed {
                name: name.to_owned(),
                path: file,
                what: kind.name(),
                why: ShadowReason::SameDirectory,
            });
        }
        if portion {
            shadowed.push(Shadowed {
                name: name.to_owned(),
                path: base,
                what: "namespace",
                why: ShadowReason::SameDirectory,
            });
        }
        return InDir::Hit(Found::Module { file, kind });
    }
    if portion {
        return InDir::Portion(base);
    }
    InDir::Nothing
}

/// `PathFinder.find_spec` over `entries`: the first package or module wins, else the
/// namespace portions; every later candidate is shadowed.
fn path_finder(
    name: &str,
    tail: &str,
    entries: &[(PathBuf, Option<usize>)],
    sys_path: &SysPath,
    rules: &Rules,
    view: &dyn FileView,
    r: &mut Resolution,
) -> Option<Step> {
    let mut winner: Option<Step> = None;
    let mut portions: Vec<PathBuf> = Vec::new();
    let mut later: Vec<Shadowed> = Vec::new();
    for (entry, index) in entries {
        // A setuptools placeholder (on sys.path, or on a namespace's __path__): the
        // editable namespace finder's path hook answers for it, since it is no directory.
        if let Some(finder) = sys_path
            .finders
            .iter()
            .find(|f| !f.namespaces.is_empty() && f.placeholder == *entry)
        {
            if let Some((_, dirs)) = finder.namespaces.iter().find(|(k, _)| k == name) {
                // `_EditableNamespaceFinder._paths`: its directories (else the mapped
                // one), then the placeholder again.
                let mut dirs: Vec<PathBuf> = if dirs.is_empty() {
                    finder
                        .mapping
                        .iter()
                        .filter(|(k, _)| k == name)
                        .map(|(_, p)| p.clone())
                        .collect()
                } else {
                    dirs.clone()
                };
                dirs.push(finder.placeholder.clone());
                if winner.is_none() {
                    portions.extend(dirs);
                }
            }
            continue;
        }
        match view.kind(entry) {
            Some(Kind::Dir) => {}
            Some(Kind::File) => {
                if index.is_some() {
                    r.notes.push(Note::ZipArchive {
                        entry: entry.clone(),
                    });
                }
                continue;
            }
            _ => continue,
        }
        let mut same_dir = Vec::new();
        let hit = in_directory(name, entry, tail, rules, view, &mut same_dir);
        match (hit, winner.is_some()) {
            (InDir::Hit(found), false) => {
                r.shadowed.append(&mut same_dir);
                winner = Some(Step {
                    name: name.to_owned(),
                    found,
                    by: By::PathEntry {
                        entry: entry.clone(),
                        sys_path_index: *index,
                    },
                });
            }
            (InDir::Hit(found), true) => {
                if let Some((file, _)) = found.file() {
                    later.push(Shadowed {
                        name: name.to_owned(),
                        path: file.to_path_buf(),
                        what: found.kind_name(),
                        why: ShadowReason::EarlierEntry,
                    });
                }
            }
            (InDir::Portion(dir), false) => portions.push(dir),
            (InDir::Portion(dir), true) => later.push(Shadowed {
                name: name.to_owned(),
                path: dir,
                what: "namespace",
                why: ShadowReason::NamespacePortion,
            }),
            (InDir::Nothing, _) => {}
        }
    }
    if let Some(step) = winner {
        for dir in portions {
            r.shadowed.push(Shadowed {
                name: name.to_owned(),
                path: dir,
                what: "namespace",
                why: ShadowReason::NamespacePortion,
            });
        }
        r.shadowed.extend(later);
        return Some(step);
    }
    if portions.is_empty() {
        return None;
    }
    // The editable placeholder stays on a namespace's __path__ (setuptools adds it), so
    // nested namespaces reach the finder again; directories are what matter here.
    Some(Step {
        name: name.to_owned(),
        found: Found::Namespace { portions },
        by: By::PathNamespace,
    })
}

/// The first line of an `__init__.py` that changes `__path__` at run time.
fn dynamic_path_hint(source: &[u8]) -> Option<(usize, String)> {
    let text = String::from_utf8_lossy(source);
    for (n, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        if code.contains("extend_path")
            || code.contains("declare_namespace")
            || code.contains("__path__")
        {
            return Some((n + 1, line.trim().to_owned()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::why::syspath::{EditableFinder, Entry, Origin};
    use crate::why::view::MemFiles;

    fn rules(version: (u32, u32)) -> Rules {
        Rules {
            version,
            builtin: ["sys", "_imp"].into_iter().map(String::from).collect(),
            frozen: ["os", "zipimport"].into_iter().map(String::from).collect(),
            extension_suffixes: vec![
                ".cpython-312-x86_64-linux-gnu.so".into(),
                ".abi3.so".into(),
                ".so".into(),
            ],
            source_suffixes: vec![".py".into()],
            bytecode_suffixes: vec![".pyc".into()],
        }
    }

    fn sys_path(dirs: &[&str]) -> SysPath {
        SysPath {
            entries: dirs
                .iter()
                .map(|d| Entry {
                    path: PathBuf::from(d),
                    origin: Origin::Base,
                })
                .collect(),
            ..SysPath::default()
        }
    }

    fn file_of(r: &Resolution) -> Option<PathBuf> {
        r.found()
            .and_then(|s| s.found.file())
            .map(|(p, _)| p.to_path_buf())
    }

    #[test]
    fn package_before_module_and_earlier_entries_first() {
        let view = MemFiles::new()
            .file("/a/app/__init__.py", "")
            .file("/a/app.py", "")
            .file("/a/app/core.py", "")
            .file("/a/app/core.cpython-312-x86_64-linux-gnu.so", "")
            .file("/b/app/__init__.py", "");
        let r = resolve("app.core", &sys_path(&["/a", "/b"]), &rules((3, 12)), &view);
        assert_eq!(r.end, End::Found);
        assert_eq!(r.steps[0].found.kind_name(), "package");
        // The extension module comes before the source in the same directory.
        assert_eq!(
            file_of(&r),
            Some(PathBuf::from("/a/app/core.cpython-312-x86_64-linux-gnu.so"))
        );
        let shadowed: Vec<_> = r
            .shadowed
            .iter()
            .map(|s| (s.path.display().to_string(), s.why))
            .collect();
        assert!(shadowed.contains(&("/a/app.py".into(), ShadowReason::SameDirectory)));
        assert!(shadowed.contains(&("/b/app/__init__.py".into(), ShadowReason::EarlierEntry)));
        assert!(shadowed.contains(&("/a/app/core.py".into(), ShadowReason::SameDirectory)));
    }

    #[test]
    fn ghosts_namespaces_builtins() {
        let view = MemFiles::new()
            .file("/a/gone.pyc", "")
            .file("/a/kept.py", "")
            .file("/a/kept.pyc", "")
            .dir("/a/ns/x")
            .dir("/b/ns")
            .file("/b/ns/y.py", "")
            .dir("/a/both")
            .file("/b/both/__init__.py", "");
        let sp = sys_path(&["/a", "/b"]);
        let r312 = rules((3, 12));
        assert_eq!(
            resolve("gone", &sp, &r312, &view).found().unwrap().found,
            Found::Module {
                file: "/a/gone.pyc".into(),
                kind: FileKind::Sourceless
            }
        );
        let kept = resolve("kept", &sp, &r312, &view);
        assert_eq!(file_of(&kept), Some(PathBuf::from("/a/kept.py")));
        assert!(kept.shadowed.is_empty(), "{:?}", kept.shadowed);
        let ns = resolve("ns.y", &sp, &r312, &view);
        assert_eq!(
            ns.steps[0].found,
            Found::Namespace {
                portions: vec!["/a/ns".into(), "/b/ns".into()]
            }
        );
        assert_eq!(file_of(&ns), Some(PathBuf::from("/b/ns/y.py")));
        // A regular package later on the path beats a namespace portion earlier.
        let both = resolve("both", &sp, &r312, &view);
        assert_eq!(file_of(&both), Some(PathBuf::from("/b/both/__init__.py")));
        assert_eq!(both.shadowed[0].why, ShadowReason::NamespacePortion);
        assert_eq!(
            resolve("sys", &sp, &r312, &view).steps[0].found,
            Found::Builtin
        );
        assert_eq!(
            resolve("os", &sp, &r312, &view).steps[0].found,
            Found::Frozen
        );
        assert!(matches!(
            resolve("os.path", &sp, &r312, &view).end,
            End::NotFollowed { .. }
        ));
        assert!(matches!(
            resolve("kept.x", &sp, &r312, &view).end,
            End::NotAPackage { .. }
        ));
        assert_eq!(
            resolve("nothing", &sp, &r312, &view).end,
            End::NotFound {
                name: "nothing".into()
            }
        );
        // Python 2: no namespace packages.
        let r27 = Rules {
            version: (2, 7),
            frozen: BTreeSet::new(),
            ..r312
        };
        assert!(matches!(
            resolve("ns.y", &sp, &r27, &view).end,
            End::NotFound { .. }
        ));
    }

    #[test]
    fn editable_finders_come_after_the_path_finder() {
        let view = MemFiles::new()
            .file("/proj/app/__init__.py", "")
            .file("/proj/app/sub.py", "")
            .file("/proj/tool.py", "")
            .dir("/cwd/app");
        let mut sp = sys_path(&["/cwd"]);
        sp.finders.push(EditableFinder {
            pth: "/sp/__editable__.app-1.pth".into(),
            module: "__editable___app_1_finder".into(),
            file: Some("/sp/__editable___app_1_finder.py".into()),
            mapping: vec![
                ("app".into(), "/proj/app".into()),
                ("tool".into(), "/proj/tool.py".into()),
            ],
            namespaces: Vec::new(),
            error: None,
            placeholder: PathBuf::from("__editable__.app-1.finder.__path_hook__"),
        });
        let r = rules((3, 12));
        // A bare `app` directory in the current directory is a namespace package: the
        // path finder returns it and the editable finder is never asked.
        let shadowed = resolve("app", &sp, &r, &view);
        assert_eq!(shadowed.steps[0].found.kind_name(), "namespace");
        assert_eq!(shadowed.shadowed[0].why, ShadowReason::EditableNotReached);
        let plain = SysPath {
            entries: Vec::new(),
            ..sp.clone()
        };
        let app = resolve("app.sub", &plain, &r, &view);
        assert_eq!(app.steps[0].by, By::Editable { finder: 0 });
        assert_eq!(file_of(&app), Some(PathBuf::from("/proj/app/sub.py")));
        assert_eq!(
            file_of(&resolve("tool", &plain, &r, &view)),
            Some(PathBuf::from("/proj/tool.py"))
        );
    }

    #[test]
    fn editable_namespaces_go_through_the_placeholder() {
        let view = MemFiles::new().file("/proj/nsroot/pkg/__init__.py", "");
        let placeholder = PathBuf::from("__editable__.ns-1.finder.__path_hook__");
        let mut sp = sys_path(&["/cwd"]);
        sp.entries.push(Entry {
            path: placeholder.clone(),
            origin: Origin::EditablePlaceholder { finder: 0 },
        });
        sp.finders.push(EditableFinder {
            pth: "/sp/__editable__.ns-1.pth".into(),
            module: "__editable___ns_1_finder".into(),
            file: None,
            mapping: vec![("nsroot.pkg".into(), "/proj/nsroot/pkg".into())],
            namespaces: vec![("nsroot".into(), Vec::new())],
            error: None,
            placeholder: placeholder.clone(),
        });
        let r = resolve("nsroot.pkg", &sp, &rules((3, 12)), &view);
        assert_eq!(
            r.steps[0].found,
            Found::Namespace {
                portions: vec![placeholder]
            }
        );
        assert_eq!(r.steps[1].by, By::Editable { finder: 0 });
        assert_eq!(
            file_of(&r),
            Some(PathBuf::from("/proj/nsroot/pkg/__init__.py"))
        );
    }

    #[test]
    fn dynamic_path_is_flagged() {
        let view = MemFiles::new().file(
            "/a/pkg/__init__.py",
            "# __path__ in a comment\nfrom pkgutil import extend_path\n__path__ = extend_path(__path__, __name__)\n",
        );
        let r = resolve("pkg", &sys_path(&["/a"]), &rules((3, 12)), &view);
        assert!(
            matches!(&r.notes[..], [Note::DynamicPath { line: 2, .. }]),
            "{:?}",
            r.notes
        );
    }
}
