//! pycguard: find every Python bytecode cache, judge it exactly as the interpreter that
//! wrote it would — and catch what the interpreter misses.
//!
//! Data flows one way: [`walk`] finds caches → [`facts`] reads them and stats their
//! sources → [`verdict`] judges (pure) → [`report`] collects → [`output`] prints. The
//! format knowledge lives in [`pyc`] and [`layout`], pure and heavily unit-tested.

pub mod actions;
pub mod cli;
pub mod commands;
pub mod exit;
pub mod facts;
pub mod inspect;
pub mod interpreters;
pub mod layout;
pub mod memo;
pub mod output;
// The proof store stays in deep/ until the store lane moves it into store/ (issue 10).
#[path = "deep/store.rs"]
pub mod proof_store;
pub mod prove;
pub mod pyc;
pub mod read;
pub mod report;
pub mod scan;
pub mod settings;
pub mod signals;
pub mod stat;
pub mod timefmt;
pub mod verdict;
pub mod walk;
pub mod worker;
