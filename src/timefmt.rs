//! Human-readable times for verdict reasons (written in `messages`) and `inspect`, in the
//! local time zone like `ls -l`. Printers only: the judge records instants as numbers.

use chrono::{DateTime, Local, TimeZone};

/// `2026-11-21 15:30:02` for seconds since the epoch; the raw number when out of range.
pub fn seconds(secs: i64) -> String {
    match Local.timestamp_opt(secs, 0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => format!("{secs} s after the epoch"),
    }
}

/// `2026-11-21 15:30:02.123456789` for nanoseconds since the epoch.
pub fn nanos(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let sub = ns.rem_euclid(1_000_000_000) as u32;
    match i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, sub))
    {
        Some(t) => t
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S%.9f")
            .to_string(),
        None => format!("{ns} ns after the epoch"),
    }
}

/// `15:30:02`: the local time now, for the lines of a long-running command (`watch`).
pub fn clock_now() -> String {
    Local::now().format("%H:%M:%S").to_string()
}
