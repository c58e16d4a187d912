//! Actions that change the tree: `fix`, `clean`, `compile`. They consume a scan's report
//! (or a source walk), plan per entry, and act only through [`safe_fs`], so that nothing
//! but a bytecode cache is ever written, moved or deleted.

pub mod as_owner;
pub mod clean;
pub mod compile;
pub mod fix;
pub mod recompile;
pub mod safe_fs;
