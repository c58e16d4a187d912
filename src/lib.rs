//! pycguard: find every Python bytecode cache, judge it exactly as the interpreter that
//! wrote it would — and catch what the interpreter misses.
//!
//! Data flows one way: [`walk`] finds caches → [`facts`] reads them and stats their
//! sources → [`verdict`] judges (pure) → [`report`] collects → [`output`] prints. The
//! format knowledge lives in [`pyc`] and [`layout`], pure and heavily unit-tested.

pub mod actions;
pub mod app;
pub mod check;
pub mod cli;
pub mod config;
pub mod deep;
pub mod exit;
pub mod facts;
pub mod inspect;
pub mod interpreters;
pub mod layout;
pub mod memo;
pub mod messages;
pub mod output;
pub mod pyc;
pub mod read;
pub mod report;
pub mod stat;
pub mod timefmt;
pub mod verdict;
pub mod walk;
