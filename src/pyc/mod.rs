//! The bytecode cache format, as pure functions over bytes: the magic-number table, header
//! parsing and the importer's comparison rules, the source hash, and the marshal walk.
//! Nothing here touches the file system.

pub mod header;
pub mod magic;
pub mod marshal;
pub mod source_hash;
