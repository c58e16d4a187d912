//! `pycguard compile`: a `python -m compileall` that compiles only what pycguard's own
//! judgement says is missing or not fresh (`--force`: everything), in parallel through the
//! worker pool, for every interpreter the tree already has caches for (or `--python`).
//! An up-to-date tree costs what `check` costs: no interpreter is even started.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::actions::recompile::{self, Mode, Task, Written};
use crate::check;
use crate::config::ScanConfig;
use crate::facts::DirSources;
use crate::interpreters::Interpreter;
use crate::layout;
use crate::memo::Memo;
use crate::verdict::State;
use crate::walk::{self, WalkEvent};

/// A source found by the walk, with the root it was found under.
pub type FoundSource = (Arc<Path>, PathBuf);

/// What the walk found: sources, the verdict of every cache already there (judged on the
/// walker's threads, as `check` does), the cache tags present, and unreadable entries.
#[derive(Debug, Default)]
pub struct FoundTree {
    pub sources: Vec<FoundSource>,
    pub caches: HashMap<PathBuf, State>,
    pub tags: BTreeSet<String>,
    pub errors: Vec<(PathBuf, String)>,
}

/// What to compile.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Optimisation levels (0, 1, 2).
    pub levels: Vec<u8>,
    pub mode: Mode,
    pub force: bool,
    pub dry_run: bool,
}

/// One source × interpreter × level that needs a cache.
#[derive(Clone, Debug)]
pub struct Planned {
    pub task: Task,
    pub interpreter: usize,
    /// Why: `missing` or the state of the existing cache.
    pub why: String,
}

/// What a compile did.
#[derive(Debug, Default)]
pub struct CompileOutcome {
    pub planned: Vec<Planned>,
    pub up_to_date: usize,
    pub failed: Vec<(PathBuf, String)>,
    pub scan_errors: Vec<(PathBuf, String)>,
    /// Cache tags found in the tree (to choose default interpreters).
    pub tags_seen: BTreeSet<String>,
}

/// Walk the sources and the caches under `config`, judging each cache as it is found.
pub fn find_sources(config: &ScanConfig) -> FoundTree {
    let found = Mutex::new(FoundTree::default());
    let dirs = DirSources::default();
    let memo = match &config.cache_dir {
        Some(dir) => Memo::load(dir),
        None => Memo::disabled(),
    };
    let mut options = config.walk.clone();
    options.report_sources = true;
    let sink = |event: WalkEvent| match event {
        WalkEvent::Source { root, path } => {
            found.lock().expect("poisoned").sources.push((root, path))
        }
        WalkEvent::Cache(c) => {
            let tag = match &c.name {
                layout::CacheName::Tagged { tag, .. } if !tag.contains("-pytest-") => {
                    Some(tag.clone())
                }
                _ => None,
            };
            let judged = check::judge_candidate(c, &dirs, &memo);
            let mut found = found.lock().expect("poisoned");
            if let Some(tag) = tag {
                found.tags.insert(tag);
            }
            match judged {
                Ok(entry) => {
                    found.caches.insert(entry.path, entry.verdict.state);
                }
                Err(e) => found.errors.push((e.path, e.message)),
            }
        }
        WalkEvent::Error { path, message } => {
            found.lock().expect("poisoned").errors.push((path, message))
        }
        WalkEvent::Debris { .. } => {}
    };
    for root in &config.roots {
        walk::walk_root(root, &options, &sink);
    }
    memo.save();
    // Unsorted: the order of compile jobs does not matter (listings are sorted instead).
    found.into_inner().expect("poisoned")
}

/// Plan and (unless dry) compile.
pub fn run(
    found: FoundTree,
    interpreters: &[Interpreter],
    options: &CompileOptions,
    workers: usize,
    timeout: Duration,
) -> CompileOutcome {
    let mut outcome = CompileOutcome {
        tags_seen: found.tags,
        ..CompileOutcome::default()
    };
    for (root, source) in found.sources {
        for (index, interpreter) in interpreters.iter().enumerate() {
            let Some(tag) = &interpreter.cache_tag else {
                continue;
            };
            for &level in &options.levels {
                let Some(cache) = layout::cache_path(&source, tag, level) else {
                    continue;
                };
                let why = if options.force {
                    Some("forced".to_owned())
                } else {
                    match found.caches.get(&cache) {
                        Some(State::Fresh) => None,
                        Some(state) => Some(state.name().to_owned()),
                        None => Some("missing".to_owned()),
                    }
                };
                match why {
                    None => outcome.up_to_date += 1,
                    Some(why) => outcome.planned.push(Planned {
                        task: Task {
                            source: source.clone(),
                            cache,
                            root: root.clone(),
                            optimize: level,
                            mode: options.mode,
                        },
                        interpreter: index,
                        why,
                    }),
                }
            }
        }
    }
    if options.dry_run {
        outcome
            .planned
            .sort_by(|a, b| a.task.source.as_os_str().cmp(b.task.source.as_os_str()));
        return outcome;
    }
    for (index, interpreter) in interpreters.iter().enumerate() {
        let (planned, tasks): (Vec<&Planned>, Vec<Task>) = outcome
            .planned
            .iter()
            .filter(|p| p.interpreter == index)
            .map(|p| (p, p.task.clone()))
            .unzip();
        let written = recompile::write_all(interpreter, &tasks, workers, timeout);
        for (p, w) in planned.into_iter().zip(written) {
            if let Written::Failed(message) = w {
                outcome.failed.push((p.task.cache.clone(), message));
            }
        }
    }
    outcome.failed.sort();
    outcome
}
