//! `pycguard fix`: repair exactly what the check found wrong, and nothing else.
//!
//! | state | action |
//! |---|---|
//! | hidden-stale, stale, suspect, corrupt | recompile with the interpreter the cache is for, keeping its invalidation mode and optimisation level; delete when that interpreter is absent, with `--delete`, or for pytest's rewritten caches |
//! | ghost, orphan | delete |
//! | sourceless, unknown | leave, unless `--include` names them (then delete) |
//! | fresh | never touched |
//!
//! Planning ([`plan`]) is pure; execution goes through [`super::safe_fs`] and
//! [`super::recompile`], so only caches are ever written or deleted. The invalidation
//! mode, file mode, owner and group of a recompiled cache are decided in
//! [`super::recompile`] (its "How a written cache's owner and mode are decided").

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::actions::clean::remove_dir_if_empty;
use crate::actions::recompile::{self, Mode, Task, WriteError, WriteOptions};
use crate::actions::safe_fs::{self, SafeFsError};
use crate::interpreters::Interpreters;
use crate::layout::{self, CacheName};
use crate::pyc::magic;
use crate::report::Entry;
use crate::verdict::State;

/// How to repair.
#[derive(Clone, Debug, Default)]
pub struct FixOptions {
    /// Delete what would be recompiled (`--delete`).
    pub delete: bool,
    /// States left alone by default that should be deleted (`--include sourceless,unknown`).
    pub include: Vec<State>,
    /// Write recompiled caches in this mode instead of the one they had.
    pub mode: Option<Mode>,
    /// The mode for a cache whose header says none (`SOURCE_DATE_EPOCH`: checked-hash).
    pub default_mode: Mode,
    pub dry_run: bool,
}

/// Why a planned repair failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum FixError {
    #[error("{0}")]
    Delete(Arc<SafeFsError>),
    #[error("no file name")]
    NoFileName,
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What to do with one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Recompile with `interpreter` (an index into the interpreters list).
    Recompile {
        interpreter: usize,
        optimize: u8,
        mode: Mode,
    },
    Delete {
        why: String,
    },
    /// Not touched. `failure` when it needed a repair that cannot be made.
    Leave {
        why: String,
        failure: bool,
    },
}

/// Decide what to do with one (non-fresh) entry.
pub fn plan(entry: &Entry, interpreters: &Interpreters, options: &FixOptions) -> Option<Action> {
    let v = &entry.verdict;
    let state = v.state;
    match state {
        State::Fresh => None,
        State::Ghost => Some(Action::Delete {
            why: "its source is gone; the interpreter would import it".into(),
        }),
        State::Orphan => Some(Action::Delete {
            why: "no interpreter uses it".into(),
        }),
        State::Sourceless | State::Unknown => Some(if options.include.contains(&state) {
            Action::Delete {
                why: format!("--include {state} names it"),
            }
        } else {
            Action::Leave {
                why: format!("--include {state} removes it"),
                failure: false,
            }
        }),
        State::Stale | State::Suspect | State::HiddenStale | State::Corrupt => {
            if options.delete {
                return Some(Action::Delete {
                    why: "--delete".into(),
                });
            }
            if entry.name.is_pytest() {
                return Some(Action::Delete {
                    why: "pytest rewrites its own caches".into(),
                });
            }
            let Some(source) = &entry.source else {
                return Some(Action::Leave {
                    why: "no source to recompile it from".into(),
                    failure: true,
                });
            };
            if !source.is_file() {
                return Some(Action::Leave {
                    why: format!(
                        "its source {} is gone; --delete removes it",
                        crate::escape::path(source)
                    ),
                    failure: true,
                });
            }
            // The interpreter the cache is for: named by its tag, else by its magic.
            let series = match &entry.name {
                CacheName::Tagged { tag, .. } => magic::series_of_tag(tag),
                _ => v.interpreter,
            };
            let optimize = match &entry.name {
                CacheName::Tagged { optimization, .. } => *optimization,
                CacheName::Legacy { pyo, .. } => u8::from(*pyo),
                _ => 0,
            };
            let mode = Mode::for_repair(options.mode, v.invalidation, options.default_mode);
            // Of the builds of that series, the one whose installation holds the cache.
            let found = series
                .and_then(|s| interpreters.for_series(s))
                .and_then(|first| interpreters.for_cache(first.magic, &entry.path));
            Some(match found {
                Some(interpreter) => Action::Recompile {
                    interpreter,
                    optimize,
                    mode,
                },
                None => Action::Delete {
                    why: format!(
                        "no {} found to recompile it",
                        series.map_or_else(|| "interpreter".to_owned(), |s| s.to_string())
                    ),
                },
            })
        }
    }
}

/// The result of one planned action.
#[derive(Clone, Debug)]
pub struct Done {
    pub path: PathBuf,
    pub state: State,
    pub action: Action,
    /// `None` when it succeeded (or in a dry run).
    pub error: Option<FixError>,
}

/// What a fix did.
#[derive(Debug, Default)]
pub struct FixOutcome {
    pub done: Vec<Done>,
    pub dirs_removed: Vec<PathBuf>,
}

impl FixOutcome {
    pub fn count(&self, f: impl Fn(&Done) -> bool) -> usize {
        self.done.iter().filter(|d| f(d)).count()
    }

    pub fn repaired(&self) -> usize {
        self.count(|d| d.error.is_none() && matches!(d.action, Action::Recompile { .. }))
    }

    pub fn deleted(&self) -> usize {
        self.count(|d| d.error.is_none() && matches!(d.action, Action::Delete { .. }))
    }

    pub fn left(&self) -> usize {
        self.count(|d| matches!(d.action, Action::Leave { failure: false, .. }))
    }

    pub fn failed(&self) -> usize {
        self.count(|d| d.error.is_some() || matches!(d.action, Action::Leave { failure: true, .. }))
    }
}

/// Carry out the plan for every non-fresh entry.
pub fn run(
    entries: Vec<Entry>,
    interpreters: &Interpreters,
    options: &FixOptions,
    write: &WriteOptions,
) -> FixOutcome {
    let all = interpreters.all();
    let mut outcome = FixOutcome::default();
    let mut recompiles: BTreeMap<usize, Vec<(usize, Task)>> = BTreeMap::new();
    let mut emptied: BTreeSet<(PathBuf, Arc<Path>)> = BTreeSet::new();
    for entry in entries {
        if crate::signals::interrupted() {
            break;
        }
        let Some(action) = plan(&entry, interpreters, options) else {
            continue;
        };
        let index = outcome.done.len();
        let mut error = None;
        match &action {
            Action::Delete { .. } if !options.dry_run => match delete(&entry.root, &entry.path) {
                Ok(()) => {
                    if let Some(dir) = entry
                        .path
                        .parent()
                        .filter(|d| d.file_name().is_some_and(layout::is_pycache_dir))
                    {
                        emptied.insert((dir.to_path_buf(), entry.root.clone()));
                    }
                }
                Err(e) => error = Some(e),
            },
            Action::Recompile {
                interpreter,
                optimize,
                mode,
            } if !options.dry_run => {
                recompiles.entry(*interpreter).or_default().push((
                    index,
                    Task {
                        source: entry.source.clone().expect("planned with a source"),
                        cache: entry.path.clone(),
                        root: entry.root.clone(),
                        optimize: *optimize,
                        mode: *mode,
                    },
                ));
            }
            _ => {}
        }
        outcome.done.push(Done {
            path: entry.path,
            state: entry.verdict.state,
            action,
            error,
        });
    }
    for (interpreter, tasks) in recompiles {
        let (indices, tasks): (Vec<usize>, Vec<Task>) = tasks.into_iter().unzip();
        let written = recompile::write_all(&all[interpreter], &tasks, write);
        for (index, w) in indices.into_iter().zip(written) {
            if let Err(e) = w {
                outcome.done[index].error = Some(e.into());
            }
        }
    }
    let mut dirs: Vec<_> = emptied.into_iter().collect();
    dirs.sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
    for (dir, root) in dirs {
        if let Ok(true) = remove_dir_if_empty(&root, &dir) {
            outcome.dirs_removed.push(dir);
        }
    }
    outcome
}

/// Delete one cache (a symlink: the link only). A cache another run removed first is
/// deleted as far as this run is concerned: the result is what was asked for.
fn delete(root: &Path, path: &Path) -> Result<(), FixError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(FixError::NoFileName);
    };
    let result = safe_fs::open_dir_beneath(root, parent, None).and_then(|d| d.remove_file(name));
    match result {
        Err(SafeFsError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(|e| FixError::Delete(Arc::new(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpreters::{Interpreter, Origin};
    use crate::pyc::magic::Series;
    use crate::verdict::{Checked, Severity, Verdict};

    fn interp(minor: u8) -> Interpreter {
        let magic = match minor {
            12 => [0xcb, 0x0d, 0x0d, 0x0a],
            _ => [0xa7, 0x0d, 0x0d, 0x0a],
        };
        Interpreter {
            path: PathBuf::from(format!("/usr/bin/python3.{minor}")),
            resolved: PathBuf::from(format!("/usr/bin/python3.{minor}")),
            stamp: Default::default(),
            version: format!("3.{minor}.0"),
            series: Some(Series::cpython(3, minor)),
            magic,
            cache_tag: Some(format!("cpython-3{minor}")),
            implementation: "cpython".into(),
            version_info: (3, u32::from(minor)),
            origin: Origin::Path,
            executable: PathBuf::from(format!("/usr/bin/python3.{minor}")),
            prefixes: vec![PathBuf::from("/usr")],
            venv: None,
            remembered_in: None,
        }
    }

    fn entry(
        state: State,
        name: CacheName,
        source: Option<&Path>,
        invalidation: Option<&'static str>,
    ) -> Entry {
        Entry {
            path: PathBuf::from("p/__pycache__/m.cpython-312.pyc"),
            root: Arc::from(Path::new("p")),
            name,
            source: source.map(Path::to_path_buf),
            identities: None,
            verdict: Verdict {
                state,
                severity: Severity::Warning,
                evidence: None,
                unproven: None,
                interpreter: Some(Series::cpython(3, 12)),
                tag: Some("cpython-312".into()),
                invalidation: invalidation.map(|n| Mode::from_name(n).expect("a mode name")),
                optimization: Some(0),
                checked: Checked::Header,
                future_source_mtime: None,
            },
        }
    }

    fn tagged(tag: &str, optimization: u8) -> CacheName {
        CacheName::Tagged {
            stem: "m".into(),
            tag: tag.into(),
            optimization,
        }
    }

    #[test]
    fn plans_follow_the_state_table() {
        let src = tempfile::NamedTempFile::new().unwrap();
        let interps = Interpreters::from_list(vec![interp(11), interp(12)]);
        let o = FixOptions::default();
        let p = |state, name, inv| plan(&entry(state, name, Some(src.path()), inv), &interps, &o);
        assert_eq!(p(State::Fresh, tagged("cpython-312", 0), None), None);
        assert_eq!(
            p(State::Stale, tagged("cpython-312", 2), Some("timestamp")),
            Some(Action::Recompile {
                interpreter: 1,
                optimize: 2,
                mode: Mode::Timestamp
            })
        );
        assert_eq!(
            p(
                State::HiddenStale,
                tagged("cpython-312", 0),
                Some("unchecked-hash")
            ),
            Some(Action::Recompile {
                interpreter: 1,
                optimize: 0,
                mode: Mode::UncheckedHash
            })
        );
        assert!(matches!(
            p(State::Ghost, tagged("cpython-312", 0), None),
            Some(Action::Delete { .. })
        ));
        assert!(matches!(
            p(State::Orphan, tagged("cpython-312", 0), None),
            Some(Action::Delete { .. })
        ));
        assert!(matches!(
            p(State::Sourceless, tagged("cpython-312", 0), None),
            Some(Action::Leave { failure: false, .. })
        ));
        // No Python 3.9 here: delete rather than leave stale code behind.
        assert!(matches!(
            p(State::Stale, tagged("cpython-39", 0), Some("timestamp")),
            Some(Action::Delete { .. })
        ));
        // pytest caches are never recompiled by a plain compile.
        assert!(matches!(
            p(
                State::Stale,
                tagged("cpython-312-pytest-8.3.4", 0),
                Some("timestamp")
            ),
            Some(Action::Delete { .. })
        ));
    }

    #[test]
    fn options_change_the_plan() {
        let src = tempfile::NamedTempFile::new().unwrap();
        let interps = Interpreters::from_list(vec![interp(12)]);
        let e = entry(
            State::Stale,
            tagged("cpython-312", 0),
            Some(src.path()),
            Some("timestamp"),
        );
        let delete = FixOptions {
            delete: true,
            ..FixOptions::default()
        };
        assert!(matches!(
            plan(&e, &interps, &delete),
            Some(Action::Delete { .. })
        ));
        let hash = FixOptions {
            mode: Some(Mode::CheckedHash),
            ..FixOptions::default()
        };
        assert_eq!(
            plan(&e, &interps, &hash),
            Some(Action::Recompile {
                interpreter: 0,
                optimize: 0,
                mode: Mode::CheckedHash
            })
        );
        let include = FixOptions {
            include: vec![State::Sourceless],
            ..FixOptions::default()
        };
        let s = entry(State::Sourceless, tagged("cpython-312", 0), None, None);
        assert!(matches!(
            plan(&s, &interps, &include),
            Some(Action::Delete { .. })
        ));
        // A stale cache whose source vanished cannot be repaired.
        let gone = entry(
            State::Stale,
            tagged("cpython-312", 0),
            Some(Path::new("/nonexistent/m.py")),
            None,
        );
        assert!(matches!(
            plan(&gone, &interps, &FixOptions::default()),
            Some(Action::Leave { failure: true, .. })
        ));
    }
}
