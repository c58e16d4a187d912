//! Writing caches: compile sources through an interpreter's worker pool and put the
//! result in place safely. Shared by `fix` (repairs) and `compile` (fills a tree).
//!
//! ## How a written cache's owner and mode are decided
//!
//! This is the one place that decides them, for `fix` and `compile` alike:
//! - **invalidation mode** ([`Mode`]): `--invalidation-mode` (or the config file's
//!   `invalidation-mode`) when given; else, for a repair, the mode the cache had
//!   ([`Mode::for_repair`]: a checked-hash cache stays checked-hash); else the default,
//!   checked-hash when `SOURCE_DATE_EPOCH` is set and timestamp otherwise, as
//!   `py_compile` does;
//! - **optimisation level**: the one in the cache's name (`fix`), or `-O`/`-OO`
//!   (`compile`);
//! - **file mode**: what importlib gives — the source's mode with the owner's write bit
//!   (`| 0o200`), `& 0o666`, minus the umask ([`job_for`]);
//! - **owner and group**, only when running as root: those of the source's directory
//!   ([`owner_for`]), i.e. the user whose interpreter would have written the cache; the
//!   source is then opened with that user's credentials, see below.
//!
//! The source is stat'ed before it is read and again after the worker answers; if it
//! changed in between, no cache is written (py_compile's race would leave a cache whose
//! header names the new source but whose code is the old one). The `.pyc` bytes come from
//! the interpreter's own importlib helpers; pycguard only writes them, atomically, with
//! the mode importlib gives (`source mode | 0o200`, `& 0o666`, minus the umask) and, when
//! running as root, the owner and group of the source's directory — so `sudo pycguard fix`
//! never leaves root-owned caches the service user cannot replace.
//!
//! Root writes nothing the cache's owner could not have written by running the interpreter
//! themselves: a source whose cache goes to another user is opened with that user's
//! credentials ([`as_owner`]), and one they cannot read (a symlink to a root-only file) is
//! not compiled — "not written: its owner uid N cannot read the source", counted as
//! failed. The source is read from the descriptor that check opened, never by its path
//! again, and must be a regular file (a FIFO put in its place is not waited on).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::actions::as_owner::{self, AsOwnerError};
use crate::actions::safe_fs;
use crate::facts::source_stat;
use crate::interpreters::Interpreter;
use crate::pyc::magic;
use crate::read::io_message;
use crate::worker::pool::{Invalidation, Job, JobOutcome, Pool, PoolError};

/// How a written cache is invalidated (`--invalidation-mode`): the modes a header records.
pub use crate::pyc::header::InvalidationMode as Mode;

impl Mode {
    /// The mode a repaired cache is written in: the one asked for, else the one it had
    /// (its header's, `had`), else `default` (no readable header).
    pub fn for_repair(asked: Option<Mode>, had: Option<Mode>, default: Mode) -> Mode {
        asked.or(had).unwrap_or(default)
    }
}

/// How the caches of one run are written.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Worker processes per interpreter.
    pub workers: usize,
    /// Per-file time limit of a worker.
    pub timeout: Duration,
    /// The current directory: a relative source is compiled under its absolute name
    /// (`co_filename`), as the importer names it.
    pub cwd: PathBuf,
    /// Grows by the tasks of each [`write_all`] and moves on as each is done (see
    /// [`crate::progress`]; [`indicatif::ProgressBar::hidden`] when none is drawn).
    pub progress: indicatif::ProgressBar,
}

/// Why a cache was not written.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WriteError {
    #[error("not attempted")]
    NotAttempted,
    /// Root: the cache's owner may not read the source.
    #[error("not written: {0}")]
    OwnerCannotRead(Arc<AsOwnerError>),
    #[error("{0}")]
    AsOwner(Arc<AsOwnerError>),
    #[error("cannot read source: {}", io_message(.0))]
    ReadSource(Arc<io::Error>),
    #[error("cannot stat source: {}", io_message(.0))]
    StatSource(Arc<io::Error>),
    #[error("the source is not a regular file")]
    NotRegular,
    #[error("the source is too large to compile ({0} bytes)")]
    TooLarge(u64),
    #[error("the source changed while it was read; run again to repair it")]
    ChangedWhileRead,
    #[error("the source changed while it was compiled; run again to repair it")]
    ChangedWhileCompiled,
    #[error("the source vanished while it was compiled: {}", io_message(.0))]
    VanishedWhileCompiled(Arc<io::Error>),
    /// Named as compilers and editors name a place: `source.py:LINE`.
    #[error("{}:{line}: SyntaxError: {message}", .file.display())]
    SyntaxError {
        file: PathBuf,
        line: u32,
        message: String,
    },
    #[error("the source does not compile: {0}")]
    DoesNotCompile(String),
    /// The worker could not answer (crashed or hung twice…), as it said.
    #[error("{0}")]
    Worker(String),
    #[error("unexpected answer from the worker")]
    UnexpectedAnswer,
    #[error("{0}")]
    Pool(Arc<PoolError>),
    #[error("cache path has no file name")]
    NoFileName,
    #[error("cannot write {}: {err}", crate::escape::path(.path))]
    Write {
        path: PathBuf,
        err: Arc<safe_fs::SafeFsError>,
    },
}

/// One cache to write.
#[derive(Clone, Debug)]
pub struct Task {
    pub source: PathBuf,
    pub cache: PathBuf,
    /// The directory the cache's walk started from; writes stay beneath it.
    pub root: Arc<Path>,
    pub optimize: u8,
    pub mode: Mode,
}

/// What happened to one task.
pub type Written = Result<(), WriteError>;

/// A job as it was built, or why it could not be.
type Prepared = Result<Built, WriteError>;

/// What `finish` needs of a job that was sent.
#[derive(Clone, Copy)]
struct Built {
    /// The source as it was read.
    before: SourceStamp,
    /// The cache's mode (before the umask).
    mode: u32,
    /// Owner and group to give the cache (root only).
    owner: Option<(u32, u32)>,
}

/// The largest source sent to a worker (a frame holds at most [`MAX_FRAME`] bytes).
///
/// [`MAX_FRAME`]: crate::worker::protocol::MAX_FRAME
const MAX_SOURCE: u64 = (crate::worker::protocol::MAX_FRAME as u64) - (1 << 20);

/// How sources are opened: as the caller, or (root) as the owner of their cache.
struct SourceAccess {
    as_root: bool,
    opener: as_owner::Opener,
}

/// Where the source is and how it was when it was read.
#[derive(Clone, Copy, PartialEq, Eq)]
struct SourceStamp {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

fn stamp(meta: &fs::Metadata) -> SourceStamp {
    SourceStamp {
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: crate::stat::FileStat::from(meta).mtime_ns(),
        ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
    }
}

/// The owner and group a cache written as root gets: those of the source's directory.
fn owner_for(task: &Task) -> Option<(u32, u32)> {
    let dir = task.source.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    })?;
    fs::metadata(dir).ok().map(|m| (m.uid(), m.gid()))
}

/// Open the source as whoever will own its cache (see the module docs).
fn open_source(
    task: &Task,
    access: &mut SourceAccess,
) -> Result<(fs::File, Option<(u32, u32)>), WriteError> {
    let owner = if access.as_root {
        owner_for(task)
    } else {
        None
    };
    let fd = match owner {
        Some((uid, _)) if uid != safe_fs::effective_uid() => {
            access.opener.open(uid, &task.source).map_err(|e| match e {
                AsOwnerError::Denied { .. } => WriteError::OwnerCannotRead(Arc::new(e)),
                other => WriteError::AsOwner(Arc::new(other)),
            })?
        }
        _ => {
            use rustix::fs::{Mode, OFlags};
            rustix::fs::open(
                &task.source,
                OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
                Mode::empty(),
            )
            .map_err(|e| WriteError::ReadSource(Arc::new(io::Error::from(e))))?
        }
    };
    Ok((fs::File::from(fd), owner))
}

/// The compile job for a task, and what `finish` needs to write its result.
fn job_for(
    interpreter: &Interpreter,
    task: &Task,
    cwd: &Path,
    access: &mut SourceAccess,
) -> Result<(Job, Built), WriteError> {
    use std::io::Read;
    let (file, owner) = open_source(task, access)?;
    let meta = file
        .metadata()
        .map_err(|e| WriteError::StatSource(Arc::new(e)))?;
    if !meta.is_file() {
        return Err(WriteError::NotRegular);
    }
    if meta.size() > MAX_SOURCE {
        return Err(WriteError::TooLarge(meta.size()));
    }
    let before = stamp(&meta);
    let mut source = Vec::with_capacity(meta.size() as usize);
    file.take(MAX_SOURCE + 1)
        .read_to_end(&mut source)
        .map_err(|e| WriteError::ReadSource(Arc::new(e)))?;
    if source.len() as u64 != meta.size() {
        return Err(WriteError::ChangedWhileRead);
    }
    let rule = magic::lookup(interpreter.magic).map_or(magic::MtimeRule::Masked, |m| m.mtime_rule);
    let mtime = source_stat(&(&meta).into()).importer_mtime(rule);
    let invalidation = match task.mode {
        Mode::Timestamp => Invalidation::Timestamp {
            mtime: (mtime & 0xFFFF_FFFF) as u32,
            size: (meta.size() & 0xFFFF_FFFF) as u32,
        },
        Mode::CheckedHash => Invalidation::CheckedHash,
        Mode::UncheckedHash => Invalidation::UncheckedHash,
    };
    let filename = crate::layout::lexically_absolute(cwd, &task.source);
    let mode = (meta.mode() | 0o200) & 0o666;
    Ok((
        Job::Compile {
            source,
            filename,
            optimize: task.optimize,
            invalidation,
        },
        Built {
            before,
            mode,
            owner,
        },
    ))
}

/// Write every task with `interpreter`'s worker pool; one outcome per task, in order.
pub fn write_all(
    interpreter: &Interpreter,
    tasks: &[Task],
    options: &WriteOptions,
) -> Vec<Written> {
    let mut results: Vec<Written> = vec![Err(WriteError::NotAttempted); tasks.len()];
    if tasks.is_empty() {
        return results;
    }
    let progress = &options.progress;
    crate::progress::add_work(progress, tasks.len() as u64);
    let mut pool = match Pool::start(
        interpreter,
        options.workers.min(tasks.len()),
        options.timeout,
    ) {
        Ok(mut pool) => {
            // Ctrl-C stops and reaps the workers; unfinished tasks are reported.
            pool.set_interrupt(crate::signals::interrupt_flag());
            pool
        }
        Err(e) => {
            let e = Arc::new(e);
            return tasks
                .iter()
                .map(|_| Err(WriteError::Pool(e.clone())))
                .collect();
        }
    };
    let umask = safe_fs::umask();
    let mut access = SourceAccess {
        as_root: safe_fs::effective_uid() == 0,
        opener: as_owner::Opener::new(),
    };
    // Sources that cannot even be stat'ed fail before any worker is asked.
    let runnable: Vec<usize> = (0..tasks.len())
        .filter(|&i| match fs::metadata(&tasks[i].source) {
            Ok(_) => true,
            Err(e) => {
                results[i] = Err(WriteError::StatSource(Arc::new(e)));
                progress.inc(1);
                false
            }
        })
        .collect();
    // Jobs are made when a worker is free; each remembers the stamp it was built from.
    let prepared: RefCell<BTreeMap<usize, Prepared>> = RefCell::new(BTreeMap::new());
    let results = RefCell::new(results);
    let outcome = pool.run_with(
        runnable.len(),
        |k| {
            let i = runnable[k];
            match job_for(interpreter, &tasks[i], &options.cwd, &mut access) {
                Ok((job, built)) => {
                    prepared.borrow_mut().insert(i, Ok(built));
                    Some(job)
                }
                Err(e) => {
                    // The source vanished since the check above, is not a regular file,
                    // or its cache's owner may not read it: nothing to send.
                    prepared.borrow_mut().insert(i, Err(e));
                    None
                }
            }
        },
        |k, outcome| {
            let i = runnable[k];
            let written = match (prepared.borrow().get(&i), outcome) {
                (Some(Ok(built)), JobOutcome::Compiled { pyc }) => {
                    finish(&tasks[i], &pyc, built, umask)
                }
                (_, JobOutcome::SyntaxError { line, message }) => Err(match line {
                    Some(line) => WriteError::SyntaxError {
                        file: tasks[i].source.clone(),
                        line,
                        message,
                    },
                    None => WriteError::DoesNotCompile(message),
                }),
                (_, JobOutcome::Failed(message)) => Err(WriteError::Worker(message)),
                _ => Err(WriteError::UnexpectedAnswer),
            };
            results.borrow_mut()[i] = written;
            progress.inc(1);
        },
    );
    let mut results = results.into_inner();
    // Jobs that could not be made were not sent (and not answered): their reason stands.
    for (i, prepared) in prepared.into_inner() {
        if let Err(e) = prepared {
            results[i] = Err(e);
        }
    }
    if let Err(e) = outcome {
        let e = Arc::new(e);
        for r in &mut results {
            if matches!(r, Err(WriteError::NotAttempted)) {
                *r = Err(WriteError::Pool(e.clone()));
            }
        }
    }
    results
}

/// Re-check the source, then write the cache beneath its root.
fn finish(task: &Task, pyc: &[u8], built: &Built, umask: u32) -> Written {
    match fs::metadata(&task.source) {
        Ok(meta) if stamp(&meta) == built.before => {}
        Ok(_) => return Err(WriteError::ChangedWhileCompiled),
        Err(e) => return Err(WriteError::VanishedWhileCompiled(Arc::new(e))),
    }
    let (Some(dir), Some(name)) = (task.cache.parent(), task.cache.file_name()) else {
        return Err(WriteError::NoFileName);
    };
    let owner = built.owner;
    safe_fs::open_dir_beneath(&task.root, dir, Some(owner))
        .and_then(|d| d.write_atomically(name, pyc, built.mode & !umask, owner))
        .map_err(|err| WriteError::Write {
            path: task.cache.clone(),
            err: Arc::new(err),
        })
}
