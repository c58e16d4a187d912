//! `pycguard watch`: fix the PATHS once, then keep them fixed — every source that
//! changes gets its caches judged, proven and repaired once its writes settle, before a
//! reloader or the next test run imports it.
//!
//! Each round is the `fix` pipeline on a few PATHs ([`crate::watch::targets`]: the changed
//! source, or the caches of a deleted one, or a directory that appeared): [`scan::run`] →
//! [`prove::run`] → [`crate::actions::fix::run`], the same stages `fix` runs, with the
//! interpreters discovered once at the start. A recompile that found its source changing
//! under it ("changed while it was compiled") is not a failure here: the path is looked at
//! again once it settles. The caches the watch writes are remembered by identity
//! ([`Written`]) so that the events of its own writes do not make it prove them again.
//!
//! The loop waits in the kernel (the watcher's channel, with a timeout of at most
//! [`POLL`] so that Ctrl-C is noticed); it never ends on its own: SIGINT exits 130, SIGTERM
//! 143, a closed output pipe 0.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use crate::actions::fix::{self, Done, FixError, FixOutcome};
use crate::actions::recompile::WriteError;
use crate::commands::{discover, stop_if_interrupted, CommandError, CommandResult};
use crate::interpreters::Interpreters;
use crate::layout::lexically_absolute;
use crate::output::watch::{FirstFix, WatchPrinter};
use crate::prove;
use crate::report::{Entry, Report, ScanError};
use crate::scan::{self, Keep};
use crate::settings::{ScanConfig, WatchConfig};
use crate::signals::Interrupted;
use crate::verdict::State;
use crate::walk::Root;
use crate::watch::{self, Change, Pending, Scope, Target, Touch, TreeWatcher, Written};

/// The longest the loop waits before it looks at the interrupt flag again.
const POLL: Duration = Duration::from_millis(200);

/// Run `watch` (until a signal stops it).
pub fn run(config: &WatchConfig) -> CommandResult {
    let interpreters = discover(&config.discovery)?;
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = {
        let (dirs, files): (Vec<&Root>, Vec<&Root>) =
            config.scan.roots.iter().partition(|r| r.path.is_dir());
        (
            dirs.into_iter().map(|r| r.path.clone()).collect(),
            files.into_iter().map(|r| r.path.clone()).collect(),
        )
    };
    // Watch first, then fix: nothing that changes during the first fix is missed.
    let watcher =
        TreeWatcher::start(&dirs, &files, &config.write.cwd).map_err(CommandError::Watch)?;
    let printer = WatchPrinter {
        format: config.format,
        quiet: config.quiet,
    };
    let stdout = anstream::stdout();
    let mut out = stdout.lock();
    let mut state = Watching {
        config,
        interpreters,
        written: Written::default(),
        pending: Pending::default(),
        printer,
    };
    let first = state.round(config.scan.roots.clone(), &mut out)?;
    let paths: Vec<PathBuf> = config.scan.roots.iter().map(|r| r.path.clone()).collect();
    state.printer.watching(&mut out, &paths, &first)?;
    let scope = Scope {
        dirs: &dirs,
        files: &files,
        walk: &config.scan.walk,
    };
    loop {
        stop_if_interrupted()?;
        let wait = state
            .pending
            .next_due(Instant::now())
            .map_or(POLL, |due| due.min(POLL));
        let changes = watcher.wait(wait);
        let now = Instant::now();
        let mut rescan = false;
        for change in changes {
            match change {
                Change::Touched(path, touch) => state.pending.touch(path, touch, now),
                Change::Rescan => rescan = true,
                Change::Error(message) => state.printer.warning(&mut out, &message)?,
            }
        }
        if rescan {
            state.printer.warning(
                &mut out,
                "events were lost (the kernel's queue overflowed): looking at every PATH again",
            )?;
            state.pending = Pending::default();
            state.round(config.scan.roots.clone(), &mut out)?;
            continue;
        }
        let due = state.pending.take_due(now);
        if due.is_empty() {
            continue;
        }
        let prefix = config.scan.walk.pycache_prefix.as_deref();
        let cwd = &config.write.cwd;
        let mut targets: Vec<Target> = due
            .into_iter()
            .flat_map(|(path, touch)| {
                watch::targets(&path, touch, &scope, &mut state.written, prefix, cwd)
            })
            .collect();
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            continue;
        }
        let roots = targets.iter().map(|t| root(t.path(), cwd)).collect();
        state.round(roots, &mut out)?;
    }
}

/// A PATH of one round, with the absolute forms the walk pairs prefix caches by.
fn root(path: &std::path::Path, cwd: &std::path::Path) -> Root {
    let lexical = lexically_absolute(cwd, path);
    let mut absolute_forms = vec![lexical.clone()];
    if let Ok(real) = std::fs::canonicalize(path) {
        if real != lexical {
            absolute_forms.push(real);
        }
    }
    Root {
        path: path.to_path_buf(),
        absolute_forms,
    }
}

/// What the watch carries from round to round.
struct Watching<'a> {
    config: &'a WatchConfig,
    interpreters: Interpreters,
    written: Written,
    pending: Pending,
    printer: WatchPrinter,
}

impl Watching<'_> {
    /// One round of `fix` on `roots`: scan, then prove and repair, then print each repair.
    /// The caches of each interpreter are proven and repaired on a thread of their own,
    /// so a source with caches of several Pythons waits for the slowest, not for all.
    fn round<W: Write>(&mut self, roots: Vec<Root>, out: &mut W) -> Result<FirstFix, CommandError> {
        let scan_config = ScanConfig {
            roots,
            walk: self.config.scan.walk.clone(),
            cache_dir: self.config.scan.cache_dir.clone(),
        };
        let mut report = scan::run(&scan_config, Keep::All);
        stop_if_interrupted()?;
        // A round's PATHs may overlap (a new directory and a file in it).
        report.entries.dedup_by(|a, b| a.path == b.path);
        let caches = report.entries.len();
        let mut errors = std::mem::take(&mut report.errors);
        let mut groups: BTreeMap<Option<String>, Vec<Entry>> = BTreeMap::new();
        for entry in report.entries {
            let key = entry.verdict.interpreter.map(|s| s.id());
            groups.entry(key).or_default().push(entry);
        }
        let (config, interpreters) = (self.config, &self.interpreters);
        let repaired: Vec<Result<(FixOutcome, Vec<ScanError>), Interrupted>> =
            std::thread::scope(|scope| {
                let threads: Vec<_> = groups
                    .into_values()
                    .map(|entries| scope.spawn(move || repair(entries, config, interpreters)))
                    .collect();
                threads
                    .into_iter()
                    .map(|t| t.join().unwrap_or(Err(Interrupted)))
                    .collect()
            });
        let mut done: Vec<Done> = Vec::new();
        for result in repaired {
            let (outcome, unreadable) = result?;
            done.extend(outcome.done);
            errors.extend(unreadable);
        }
        stop_if_interrupted()?;
        done.sort_by(|a, b| a.path.cmp(&b.path));
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        let outcome = FixOutcome {
            done,
            dirs_removed: Vec::new(),
        };
        let mut retried = 0;
        for done in &outcome.done {
            if changed_under_us(done) {
                // Still being written: look again once it settles.
                self.pending
                    .touch(done.path.clone(), Touch::default(), Instant::now());
                retried += 1;
                continue;
            }
            if done.error.is_none() && matches!(done.action, fix::Action::Recompile { .. }) {
                self.written.remember(&done.path);
            }
            self.printer.repair(out, done, &self.interpreters)?;
        }
        for error in &errors {
            // Gone by the time it was read: it was a change in progress, not a problem.
            if std::fs::symlink_metadata(&error.path).is_ok() {
                self.printer.unreadable(out, error)?;
            }
        }
        Ok(FirstFix {
            caches,
            repaired: outcome.repaired(),
            deleted: outcome.deleted(),
            failed: outcome.failed() - retried,
        })
    }
}

/// Prove and repair the caches of one interpreter: the `fix` pipeline after its scan.
fn repair(
    entries: Vec<Entry>,
    config: &WatchConfig,
    interpreters: &Interpreters,
) -> Result<(FixOutcome, Vec<ScanError>), Interrupted> {
    let mut report = Report {
        entries,
        ..Report::default()
    };
    let recall = prove::Recall::open(config.prove.cache_dir.as_deref(), interpreters);
    prove::run(&mut report, &config.prove, interpreters, &recall)?;
    let entries: Vec<Entry> = report
        .entries
        .into_iter()
        .filter(|e| e.verdict.state != State::Fresh)
        .collect();
    let outcome = fix::run(entries, interpreters, &config.options, &config.write);
    Ok((outcome, report.errors))
}

/// Did the repair fail only because the source changed while it was compiled?
fn changed_under_us(done: &Done) -> bool {
    matches!(
        done.error,
        Some(FixError::Write(
            WriteError::ChangedWhileRead
                | WriteError::ChangedWhileCompiled
                | WriteError::VanishedWhileCompiled(_)
        ))
    )
}
