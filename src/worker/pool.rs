//! A pool of long-lived worker processes of one interpreter, each running the embedded
//! `worker.py`, that prove caches against their sources and compile sources into caches.
//!
//! Every worker is started isolated as [`crate::interpreters::child`] describes (`python
//! -I -S -B -c WORKER`, 2.7/3.3: `-E -s -S -B`; the resolved executable, in `/`, with an
//! empty environment but for `LC_ALL=C.UTF-8`) in a process group of its own (a
//! terminal's Ctrl-C reaches pycguard, which then stops the workers itself), and talks the
//! length-prefixed protocol of [`super::protocol`] on its stdin and stdout.
//!
//! A worker's first frame is its hello: the same answer the probe gives. Before any job is
//! sent it is compared with the [`Interpreter`] the pool was started for, which may have
//! been remembered from an earlier run: an answer that differs only in the patch version
//! is corrected in place (the worker is right; nothing that chose this interpreter
//! depends on the version) and the remembered answer is discarded; any other difference
//! (magic, tag, executable, prefixes) means the remembered answer chose the wrong
//! interpreter, so it is discarded and the pool refuses to start, saying so — no verdict
//! is ever based on an answer the interpreter does not give.
//!
//! One job is in flight per worker. A worker that crashes or does not
//! answer within the per-file timeout is killed and reaped, a new one is started, and the
//! job is tried once more; a job that fails twice is answered with
//! [`JobOutcome::Failed`]. Nothing is left running: every child is waited for, on success,
//! on error, on interrupt and on drop.
//!
//! Used by `check --deep` (prove) and by the commands that write caches (compile).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::protocol;
use crate::interpreters::{Answer, Interpreter};

/// The worker program, embedded in the binary.
pub const WORKER_PY: &str = include_str!("worker.py");
/// How long a worker may take to start and say hello.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of a worker's stderr kept for error messages.
const STDERR_TAIL: usize = 2048;
/// A slot whose worker fails to start this many times in a row is given up.
const MAX_START_FAILURES: u32 = 3;

/// How the cache a [`Job::Compile`] builds is invalidated (PEP 552).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// The source's mtime (whole seconds, low 32 bits) and size, as importlib records them.
    Timestamp {
        mtime: u32,
        size: u32,
    },
    CheckedHash,
    UncheckedHash,
}

/// One unit of work for a worker. Sources and caches travel as bytes: the worker never
/// opens a user file and file names never cross the protocol as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// Compile `source` at each level in `optimize_levels` (with `dont_inherit=True`, as
    /// the importer does) and compare with the code object of `body` (the cache after its
    /// header). `filename` is only the compiled code's `co_filename`.
    Prove {
        source: Vec<u8>,
        filename: PathBuf,
        body: Vec<u8>,
        optimize_levels: Vec<u8>,
    },
    /// Returns the complete `.pyc` bytes built with the interpreter's own importlib helpers
    /// (`_code_to_timestamp_pyc` / `_code_to_hash_pyc`; 3.6 `_code_to_bytecode`; 2.7
    /// `imp.get_magic()` + mtime), so header and body are exactly what that interpreter
    /// would write. `filename` becomes `co_filename`.
    Compile {
        source: Vec<u8>,
        filename: PathBuf,
        optimize: u8,
        invalidation: Invalidation,
    },
}

/// The answer to one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// The cache's code equals (`equal`) the fresh compile at one of the levels; otherwise
    /// `difference` says what differs at the first level, when the worker could tell.
    Proven {
        equal: bool,
        difference: Option<String>,
    },
    /// The `.pyc` bytes of a [`Job::Compile`].
    Compiled { pyc: Vec<u8> },
    /// The source does not compile.
    SyntaxError { line: Option<u32>, message: String },
    /// The job could not be done (a damaged cache body, a worker that crashed or hung
    /// twice…); the message says why.
    Failed(String),
}

/// Why a pool could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("cannot start a worker with {interpreter}: {message}")]
    Start {
        interpreter: String,
        message: String,
    },
    #[error("interrupted")]
    Interrupted,
}

/// The jobs of one run: waiting, failed attempts per job, not yet answered.
struct Jobs {
    queue: VecDeque<usize>,
    failures: Vec<u8>,
    remaining: usize,
}

enum Event {
    Frame {
        slot: usize,
        generation: u64,
        fields: Vec<Vec<u8>>,
    },
    Closed {
        slot: usize,
        generation: u64,
        error: Option<String>,
    },
}

#[derive(Clone, Copy, Debug)]
enum Status {
    Starting(Instant),
    Idle,
    Busy { job: usize, since: Instant },
}

struct Worker {
    child: Child,
    input: Option<Sender<Vec<u8>>>,
    generation: u64,
    status: Status,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// Worker processes of one interpreter.
pub struct Pool {
    interpreter: Interpreter,
    timeout: Duration,
    slots: Vec<Option<Worker>>,
    start_failures: Vec<u32>,
    last_start_error: Option<String>,
    events: Receiver<Event>,
    sender: Sender<Event>,
    generation: u64,
    interrupt: Option<Arc<AtomicBool>>,
}

impl Pool {
    /// Start `workers` worker processes (at least one) and wait until each has said hello
    /// with the interpreter's magic number.
    pub fn start(
        interpreter: &Interpreter,
        workers: usize,
        timeout: Duration,
    ) -> Result<Pool, PoolError> {
        let (sender, events) = mpsc::channel();
        let mut pool = Pool {
            interpreter: interpreter.clone(),
            timeout,
            slots: Vec::new(),
            start_failures: vec![0; workers.max(1)],
            last_start_error: None,
            events,
            sender,
            generation: 0,
            interrupt: None,
        };
        for slot in 0..workers.max(1) {
            let worker = pool
                .spawn(slot)
                .map_err(|message| pool.start_error(message))?;
            pool.slots.push(Some(worker));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while pool.slots.iter().any(|w| {
            matches!(
                w,
                Some(Worker {
                    status: Status::Starting(_),
                    ..
                })
            )
        }) {
            let left = deadline.saturating_duration_since(Instant::now());
            match pool.events.recv_timeout(left) {
                Ok(Event::Frame {
                    slot,
                    generation,
                    fields,
                }) => {
                    if let Err(message) = pool.hello(slot, generation, &fields) {
                        return Err(pool.start_error(message));
                    }
                }
                Ok(Event::Closed { slot, error, .. }) => {
                    let message = pool.reap(slot, error);
                    return Err(pool.start_error(message));
                }
                Err(_) => {
                    return Err(pool.start_error(format!(
                        "no worker answered within {} s",
                        START_TIMEOUT.as_secs()
                    )))
                }
            }
        }
        Ok(pool)
    }

    /// Stop early (killing and reaping every worker) when `flag` becomes true; `run` then
    /// returns [`PoolError::Interrupted`].
    pub fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    pub fn interpreter(&self) -> &Interpreter {
        &self.interpreter
    }

    /// Run every job; `on_done(index, outcome)` is called once per job, in completion order.
    pub fn run<F: FnMut(usize, JobOutcome)>(
        &mut self,
        jobs: Vec<Job>,
        on_done: F,
    ) -> Result<(), PoolError> {
        self.run_frames(
            jobs.len(),
            |i| Some(protocol::encode_job(&jobs[i])),
            on_done,
        )
    }

    /// Like [`Pool::run`], but each job is made only when a worker is free for it (and made
    /// again for its retry), so the bytes of thousands of files are never held at once.
    /// `make` returns `None` for a job that cannot be made (its file vanished…): it is
    /// not sent, counts as done, and `on_done` is not called for it (the caller knows why).
    pub fn run_with<M, F>(&mut self, count: usize, mut make: M, on_done: F) -> Result<(), PoolError>
    where
        M: FnMut(usize) -> Option<Job>,
        F: FnMut(usize, JobOutcome),
    {
        self.run_frames(
            count,
            |i| make(i).map(|job| protocol::encode_job(&job)),
            on_done,
        )
    }

    fn run_frames<M, F>(
        &mut self,
        count: usize,
        mut make: M,
        mut on_done: F,
    ) -> Result<(), PoolError>
    where
        M: FnMut(usize) -> Option<Vec<u8>>,
        F: FnMut(usize, JobOutcome),
    {
        let mut jobs = Jobs {
            queue: (0..count).collect(),
            failures: vec![0u8; count],
            remaining: count,
        };
        let name = self.interpreter.display_name();
        while jobs.remaining > 0 {
            if self.interrupted() {
                self.shutdown(true);
                return Err(PoolError::Interrupted);
            }
            for slot in 0..self.slots.len() {
                if self.slots[slot].is_none() && self.start_failures[slot] < MAX_START_FAILURES {
                    self.restart(slot);
                }
            }
            if self.slots.iter().all(Option::is_none) {
                // No worker can be started any more: answer what is left.
                let why = self
                    .last_start_error
                    .clone()
                    .unwrap_or_else(|| "no worker could be started".into());
                // Jobs in flight died with their workers and were queued again.
                for job in jobs.queue.drain(..) {
                    on_done(job, JobOutcome::Failed(format!("{name}: {why}")));
                }
                return Ok(());
            }
            self.dispatch(&mut jobs, &mut make);
            if jobs.remaining == 0 {
                // The last jobs could not be made: nothing is in flight.
                break;
            }
            let wait = self.next_wake();
            let event = match self.events.recv_timeout(wait) {
                Ok(event) => Some(event),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => unreachable!("the pool holds a sender"),
            };
            if let Some(event) = event {
                self.handle(event, &mut jobs, &mut on_done, &name);
            }
            self.enforce_deadlines(&mut jobs, &mut on_done, &name);
        }
        Ok(())
    }

    /// Give every idle worker the next job that can be made (one that cannot is done).
    fn dispatch<M: FnMut(usize) -> Option<Vec<u8>>>(&mut self, jobs: &mut Jobs, make: &mut M) {
        for slot in 0..self.slots.len() {
            let Some(worker) = &mut self.slots[slot] else {
                continue;
            };
            if !matches!(worker.status, Status::Idle) {
                continue;
            }
            let next = loop {
                let Some(job) = jobs.queue.pop_front() else {
                    break None;
                };
                match make(job) {
                    Some(frame) => break Some((job, frame)),
                    None => jobs.remaining -= 1,
                }
            };
            let Some((job, frame)) = next else {
                break;
            };
            worker.status = Status::Busy {
                job,
                since: Instant::now(),
            };
            if let Some(input) = &worker.input {
                // A closed pipe shows up as the worker closing its stdout.
                let _ = input.send(frame);
            }
        }
    }

    /// A worker's frame (its hello, or an answer) or the end of its output.
    fn handle<F: FnMut(usize, JobOutcome)>(
        &mut self,
        event: Event,
        jobs: &mut Jobs,
        on_done: &mut F,
        name: &str,
    ) {
        match event {
            Event::Frame {
                slot,
                generation,
                fields,
            } => {
                let Some(status) = self.current(slot, generation) else {
                    return;
                };
                match status {
                    Status::Starting(_) => {
                        if let Err(message) = self.hello(slot, generation, &fields) {
                            self.kill(slot);
                            self.note_start_failure(slot, message);
                        }
                    }
                    Status::Busy { job, .. } => {
                        self.set_status(slot, Status::Idle);
                        on_done(job, protocol::decode_answer(fields));
                        jobs.remaining -= 1;
                    }
                    Status::Idle => {
                        self.kill(slot);
                    }
                }
            }
            Event::Closed {
                slot,
                generation,
                error,
            } => {
                let Some(status) = self.current(slot, generation) else {
                    return;
                };
                let message = self.reap(slot, error);
                match status {
                    Status::Busy { job, .. } => {
                        self.retry_or_fail(job, jobs, on_done, || {
                            format!("the {name} worker died on this file twice ({message})")
                        });
                    }
                    Status::Starting(_) => self.note_start_failure(slot, message),
                    Status::Idle => {}
                }
            }
        }
    }

    /// Stop hung jobs and workers that never said hello.
    fn enforce_deadlines<F: FnMut(usize, JobOutcome)>(
        &mut self,
        jobs: &mut Jobs,
        on_done: &mut F,
        name: &str,
    ) {
        let now = Instant::now();
        for slot in 0..self.slots.len() {
            let Some(worker) = &self.slots[slot] else {
                continue;
            };
            match worker.status {
                Status::Busy { job, since } if now.duration_since(since) >= self.timeout => {
                    self.kill(slot);
                    let secs = self.timeout.as_secs_f64();
                    self.retry_or_fail(job, jobs, on_done, || {
                        format!("the {name} worker gave no answer within {secs} s, twice; it was stopped")
                    });
                }
                Status::Starting(since) if now.duration_since(since) >= START_TIMEOUT => {
                    self.kill(slot);
                    self.note_start_failure(slot, "the worker did not start".into());
                }
                _ => {}
            }
        }
    }

    fn retry_or_fail<F: FnMut(usize, JobOutcome)>(
        &self,
        job: usize,
        jobs: &mut Jobs,
        on_done: &mut F,
        message: impl FnOnce() -> String,
    ) {
        jobs.failures[job] += 1;
        if jobs.failures[job] >= 2 {
            on_done(job, JobOutcome::Failed(message()));
            jobs.remaining -= 1;
        } else {
            jobs.queue.push_front(job);
        }
    }

    fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// How long to wait for the next event: until the earliest deadline, at most 50 ms
    /// (so an interrupt is noticed promptly).
    fn next_wake(&self) -> Duration {
        let now = Instant::now();
        let mut wait = Duration::from_millis(50);
        for worker in self.slots.iter().flatten() {
            let deadline = match worker.status {
                Status::Busy { since, .. } => since + self.timeout,
                Status::Starting(since) => since + START_TIMEOUT,
                Status::Idle => continue,
            };
            wait = wait.min(deadline.saturating_duration_since(now));
        }
        wait
    }

    fn current(&self, slot: usize, generation: u64) -> Option<Status> {
        match &self.slots[slot] {
            Some(w) if w.generation == generation => Some(w.status),
            _ => None,
        }
    }

    fn set_status(&mut self, slot: usize, status: Status) {
        if let Some(w) = &mut self.slots[slot] {
            w.status = status;
        }
    }

    fn hello(&mut self, slot: usize, generation: u64, fields: &[Vec<u8>]) -> Result<(), String> {
        if self.current(slot, generation).is_none() {
            return Ok(());
        }
        let Some(answer) = protocol::decode_hello(fields) else {
            return Err("the worker did not say hello".into());
        };
        let expected = self.interpreter.answer();
        if answer != expected {
            if let Some(dir) = &self.interpreter.remembered_in {
                crate::store::probes::forget_in::<Answer>(dir, &self.interpreter.resolved);
            }
            if !answer.same_build(&expected) {
                return Err(format!(
                    "it is not the interpreter pycguard remembered: it reports {} {} (magic \
                     {:02x?}, tag {}, executable {}, prefixes {}), not {} {} (magic {:02x?}, \
                     tag {}, executable {}, prefixes {}); the remembered answer was \
                     discarded, run again",
                    answer.implementation,
                    answer.version,
                    answer.magic,
                    answer.cache_tag.as_deref().unwrap_or("-"),
                    answer.executable.display(),
                    join_paths(&answer.prefixes),
                    expected.implementation,
                    expected.version,
                    expected.magic,
                    expected.cache_tag.as_deref().unwrap_or("-"),
                    expected.executable.display(),
                    join_paths(&expected.prefixes),
                ));
            }
            self.interpreter.adopt_version(&answer);
        }
        self.start_failures[slot] = 0;
        self.set_status(slot, Status::Idle);
        Ok(())
    }

    fn note_start_failure(&mut self, slot: usize, message: String) {
        self.start_failures[slot] += 1;
        self.last_start_error = Some(message);
    }

    fn start_error(&mut self, message: String) -> PoolError {
        self.shutdown(true);
        PoolError::Start {
            interpreter: format!(
                "{} ({})",
                self.interpreter.display_name(),
                self.interpreter.path.display()
            ),
            message,
        }
    }

    fn restart(&mut self, slot: usize) {
        match self.spawn(slot) {
            Ok(worker) => self.slots[slot] = Some(worker),
            Err(message) => self.note_start_failure(slot, message),
        }
    }

    fn spawn(&mut self, slot: usize) -> Result<Worker, String> {
        self.generation += 1;
        let generation = self.generation;
        let mut child = self
            .interpreter
            .command(WORKER_PY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| crate::read::io_message(&e))?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr_pipe = child.stderr.take().expect("piped");
        let (input, frames) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            for frame in frames {
                if stdin
                    .write_all(&frame)
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    break;
                }
            }
        });
        let sender = self.sender.clone();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::with_capacity(64 * 1024, &mut stdout);
            loop {
                match protocol::read_frame(&mut reader) {
                    Ok(Some(fields)) => {
                        if sender
                            .send(Event::Frame {
                                slot,
                                generation,
                                fields,
                            })
                            .is_err()
                        {
                            break;
                        }
                    }
                    Ok(None) => {
                        let _ = sender.send(Event::Closed {
                            slot,
                            generation,
                            error: None,
                        });
                        break;
                    }
                    Err(e) => {
                        let _ = sender.send(Event::Closed {
                            slot,
                            generation,
                            error: Some(e.to_string()),
                        });
                        break;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let tail = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = tail.lock().expect("poisoned");
                t.extend_from_slice(&buf[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        });
        Ok(Worker {
            child,
            input: Some(input),
            generation,
            status: Status::Starting(Instant::now()),
            stderr,
        })
    }

    /// Kill a worker (if it still runs) and wait for it; the slot becomes empty.
    fn kill(&mut self, slot: usize) {
        if let Some(mut worker) = self.slots[slot].take() {
            worker.input = None;
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
    }

    /// Wait for a worker whose output closed; say how it ended.
    fn reap(&mut self, slot: usize, error: Option<String>) -> String {
        let Some(mut worker) = self.slots[slot].take() else {
            return "the worker is gone".into();
        };
        worker.input = None;
        // Its stdout closed: it has exited or is about to; do not wait on a hung one.
        let deadline = Instant::now() + Duration::from_millis(500);
        let status = loop {
            match worker.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                _ => {
                    let _ = worker.child.kill();
                    break worker.child.wait().ok();
                }
            }
        };
        // Give the stderr reader a moment to collect the last words.
        std::thread::sleep(Duration::from_millis(5));
        let tail = worker.stderr.lock().map(|t| t.clone()).unwrap_or_default();
        let tail = String::from_utf8_lossy(&tail);
        let last = tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let mut message = match status {
            Some(s) => describe_exit(s),
            None => "it could not be waited for".into(),
        };
        if let Some(e) = error {
            message = format!("{message}; {e}");
        }
        if !last.is_empty() {
            message = format!("{message}: {}", last.trim());
        }
        message
    }

    /// Stop every worker: politely (close stdin, give it a moment) or at once.
    fn shutdown(&mut self, now: bool) {
        for worker in self.slots.iter_mut().flatten() {
            worker.input = None;
            if now {
                let _ = worker.child.kill();
            }
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        for mut worker in self.slots.drain(..).flatten() {
            loop {
                match worker.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    _ => {
                        let _ = worker.child.kill();
                        let _ = worker.child.wait();
                        break;
                    }
                }
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown(false);
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "killed (signal 9)".into(),
        (None, Some(11)) => "crashed (segmentation fault)".into(),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker drops relative `sys.path` entries before it imports anything but `sys`
    /// (Python 2 puts `''`, the working directory, first with `-c`).
    #[test]
    fn the_worker_guards_sys_path_before_any_import() {
        let code: Vec<&str> = WORKER_PY
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .collect();
        let guard: Vec<&str> = crate::interpreters::child::PATH_GUARD.lines().collect();
        assert_eq!(code[..guard.len()], guard[..]);
    }
}
