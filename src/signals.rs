//! Signals: SIGINT and SIGTERM stop every command promptly.
//!
//! [`install_signal_handlers`] is called once, first thing; the first signal sets the
//! process's interrupt flag, which every walk, fix loop and worker pool polls
//! ([`interrupted`], [`interrupt_flag`]) and then stops, and the command exits 130 (SIGINT)
//! or 143 (SIGTERM). [`Interrupted`] is the one error every layer returns for "stopped by
//! a signal".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The run was stopped by SIGINT or SIGTERM; whatever it started is stopped and reaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// How long the process may take, after SIGINT or SIGTERM, to stop its work itself
/// (walkers stop at the next directory, pools kill and reap their workers, the command
/// returns and exits 130 or 143); after that it exits without waiting for the rest.
pub const SIGNAL_GRACE: Duration = Duration::from_secs(2);

/// The signal that stopped the run (0: none yet).
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

fn flag() -> &'static Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Catch SIGINT and SIGTERM for the whole run (call once, first thing). The first one sets
/// the [`interrupt_flag`]: every walk, fix loop and worker pool checks it and stops, and
/// the command exits 130 (SIGINT) or 143 (SIGTERM), 128 + the signal as shells report a
/// process killed by it. Should anything still be running [`SIGNAL_GRACE`] later (a
/// system call that does not return), the process exits with that status anyway; a second
/// signal exits at once. Either way workers see their stdin close and end.
pub fn install_signal_handlers() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if SIGNAL
                        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                        .is_err()
                    {
                        std::process::exit(128 + sig);
                    }
                    flag().store(true, Ordering::SeqCst);
                    let _ = std::thread::Builder::new()
                        .name("signal-grace".into())
                        .spawn(move || {
                            std::thread::sleep(SIGNAL_GRACE);
                            std::process::exit(128 + sig);
                        });
                }
            });
    });
}

/// The process's interrupt flag (see [`install_signal_handlers`]). Give it to
/// [`Pool::set_interrupt`] so that a pool stops (killing and reaping its workers).
pub fn interrupt_flag() -> Arc<AtomicBool> {
    install_signal_handlers();
    Arc::clone(flag())
}

/// Has SIGINT or SIGTERM been received?
pub fn interrupted() -> bool {
    flag().load(Ordering::Relaxed)
}

/// The signal received, if any (`SIGINT`, `SIGTERM`).
pub fn received_signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}
