//! `pycguard compile`: a `python -m compileall` that compiles only what pycguard's own
//! judgement says is missing or not fresh (`--force`: everything), in parallel through the
//! worker pool, for every interpreter the tree already has caches for (or `--python`).
//! An up-to-date tree costs what `check` costs: no interpreter is even started.

use std::collections::BTreeSet;
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

/// What the source walk found: sources, cache tags already present, unreadable entries.
pub type FoundTree = (Vec<FoundSource>, BTreeSet<String>, Vec<(PathBuf, String)>);

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

/// Walk the sources and the caches under `config`: the tags already present, and every
/// source found.
pub fn find_sources(config: &ScanConfig) -> FoundTree {
    let sources = Mutex::new(Vec::new());
    let tags = Mutex::new(BTreeSet::new());
    let errors = Mutex::new(Vec::new());
    let mut options = config.walk.clone();
    options.report_sources = true;
    let sink = |event: WalkEvent| match event {
        WalkEvent::Source { root, path } => sources.lock().expect("poisoned").push((root, path)),
        WalkEvent::Cache(c) => {
            if let layout::CacheName::Tagged { tag, .. } = &c.name {
                if !tag.contains("-pytest-") {
                    tags.lock().expect("poisoned").insert(tag.clone());
                }
            }
        }
        WalkEvent::Error { path, message } => {
            errors.lock().expect("poisoned").push((path, message))
        }
        WalkEvent::Debris { .. } => {}
    };
    for root in &config.roots {
        walk::walk_root(root, &options, &sink);
    }
    let mut sources = sources.into_inner().expect("poisoned");
    sources.sort_by(|a, b| a.1.cmp(&b.1));
    (
        sources,
        tags.into_inner().expect("poisoned"),
        errors.into_inner().expect("poisoned"),
    )
}

/// Plan and (unless dry) compile.
pub fn run(
    config: &ScanConfig,
    sources: Vec<FoundSource>,
    interpreters: &[Interpreter],
    options: &CompileOptions,
    workers: usize,
    timeout: Duration,
) -> CompileOutcome {
    let mut outcome = CompileOutcome::default();
    let dirs = DirSources::default();
    let memo = match &config.cache_dir {
        Some(dir) => Memo::load(dir),
        None => Memo::disabled(),
    };
    for (root, source) in sources {
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
                    match walk::candidate_for_file(&cache, &cache, None)
                        .map(|c| check::judge_candidate(c, &dirs, &memo))
                    {
                        Some(Ok(entry)) if entry.verdict.state == State::Fresh => None,
                        Some(Ok(entry)) => Some(entry.verdict.state.name().to_owned()),
                        _ => Some("missing".to_owned()),
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
    memo.save();
    if options.dry_run {
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
