//! Native reader for the marshal-serialized body of a CPython `.pyc` file.
//!
//! # What it is for
//!
//! `pycguard` has to decide, for every cache in a tree of possibly 100 000
//! files, whether the interpreter that owns the cache's magic number would
//! actually load it: `importlib` calls `marshal.loads(data[16:])` (2.7's
//! `import.c` does the same through `PyMarshal_ReadLastObjectFromFile`) and
//! raises `ImportError("Non-code object ...")` unless that returns a code
//! object.  Starting an interpreter per cache is far too slow and executing
//! anything from an untrusted cache is out of the question, so this module
//! walks the body natively and mirrors, per CPython series, what
//! `Python/marshal.c:r_object` and the code-object constructor
//! (`PyCode_New` / `PyCode_NewWithPosOnlyArgs` / `_PyCode_Validate` +
//! `_PyCode_New` in `Objects/codeobject.c`) accept or reject.
//!
//! [`validate`] is the fast path (no allocation per object, an explicit stack
//! instead of recursion, so hostile input can neither overflow the Rust stack
//! nor make it allocate by a declared size); [`summarize`] runs the very same
//! walker and additionally extracts a few facts for `pycguard inspect`.
//!
//! # Why it is shaped like this
//!
//! Acceptance is not just syntax.  `marshal.loads` builds real objects, so a
//! body is also rejected when a dict key or set element is unhashable, when a
//! code object's fields have the wrong types or counts, or when building the
//! object would crash the interpreter outright (CPython 2.7–3.8 abort with
//! `Py_FatalError` on a non-`str` in a name tuple; every 3.x segfaults on a
//! self-containing constant tuple; 3.12/3.13 segfault when quickening meets
//! an `INSTRUMENTED_LINE`/`INSTRUMENTED_INSTRUCTION` opcode).  The walker
//! therefore tracks, for every value, its type, whether it is hashable,
//! whether it (transitively through tuples) contains a reference to a tuple
//! that is still being built, and whether a tuple holds only identifier
//! strings.  Behaviour was read from CPython's sources and then pinned down
//! against real 2.7 and 3.6–3.13 interpreters (`tests/oracle.rs`).
//!
//! # Fidelity and its limits
//!
//! * For 2.7 and 3.6–3.13 both the answer (loads a code object or not) and
//!   the kind of failure (CPython's exception class, a non-code object of the
//!   same type, or an interpreter crash) match the real interpreters on every
//!   hand-built edge case, every `.pyc` they ship and tens of thousands of
//!   mutated bodies (`tests/oracle.rs`).
//! * 3.0–3.5 and 3.14 have no interpreter on the test machine; their rules
//!   come from CPython's sources: 3.0–3.3 share the pre-3.4 reader with 2.7
//!   (no references; integers read past the end are garbage rather than an
//!   EOFError; a NULL dict value skips the pair), 3.4/3.5 intern only the top
//!   level of `co_consts`, and 3.14 adds `':'` slices.  3.14's opcode
//!   numbering is unverified and its quickening is not modelled.
//! * MemoryError: CPython allocates a tuple, list, bytes or long of the
//!   declared size before reading its contents, so a huge declared size may
//!   raise MemoryError (depending on the machine) where we report the first
//!   problem in the contents.  Such a body holds far fewer items than it
//!   declares and is rejected either way.
//! * Where CPython keeps reading after an error (2.7's dict loop after an
//!   unhashable key) we stop at that error: same rejection, possibly a
//!   different final exception.
//! * Undefined behaviour inside CPython (e.g. the one-unit out-of-bounds
//!   write when 3.12 quickens a code object whose last instruction lacks its
//!   inline caches) is not modelled.
//! * Equality comparisons during dict/set insertion never raise for
//!   marshal-able values, except on self-containing tuples, which are already
//!   reported as crashing when hashed.

use std::fmt;

/// CPython's `MAX_MARSHAL_STACK_DEPTH` on non-Windows builds (every series
/// from 2.7 to 3.14).  Checked against the oracles: depth 2000 loads, 2001
/// raises "recursion limit exceeded".
const MAX_DEPTH: usize = 2000;

/// `FLAG_REF`: in 3.4+ a type byte with this bit set registers the object in
/// the reference list that `'r'` indexes.
const FLAG_REF: u8 = 0x80;

const NO_SLOT: u32 = u32::MAX;

// Value flags.
/// `hash(value)` succeeds.
const HASHABLE: u8 = 1;
/// The value (through tuples/slices only) contains a reference to a tuple
/// that was still being built: interning constants recurses forever and
/// hashing dereferences a NULL item, so CPython crashes on it.
const CYCLIC: u8 = 2;
/// A tuple whose items are all identifier strings (`str` in 3.x, `str`
/// a.k.a. bytes in 2.7): what `intern_strings` requires of name tuples.
const NAMES: u8 = 4;
/// A reference slot that was reserved (frozenset, code, slice) but is not
/// filled yet; `'r'` to it is "invalid reference".
const RESERVED: u8 = 8;
/// A `str` read from an ASCII type code (`a`, `A`, `z`, `Z`): its bytes are
/// Latin-1 code points, not UTF-8.
const LATIN1: u8 = 16;
/// A reference to a tuple that is still being built (its items are NULL).
/// Unlike [`CYCLIC`] this does not propagate to containers.
const INCOMPLETE: u8 = 32;

/// Which code-object field layout a series marshals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeLayout {
    /// 2.7: argcount, nlocals, stacksize, flags, code, consts, names,
    /// varnames, freevars, cellvars, filename, name, firstlineno, lnotab.
    Py27,
    /// 3.0–3.7: as 2.7 plus kwonlyargcount after argcount.
    Py30,
    /// 3.8–3.10: as 3.0 plus posonlyargcount after argcount.
    Py38,
    /// 3.11+: argcount, posonlyargcount, kwonlyargcount, stacksize, flags,
    /// code, consts, names, localsplusnames, localspluskinds, filename, name,
    /// qualname, firstlineno, linetable, exceptiontable.
    Py311,
}

/// The marshal dialect of one CPython series (and its pre-releases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect {
    magic: u16,
    major: u8,
    minor: u8,
}

/// Opcode facts a dialect needs to scan bytecode: the numbers of the few
/// opcodes [`summarize`] looks for and the inline-cache layout.
///
/// The tables describe the final release of each series; alpha builds of a
/// series that renumbered opcodes mid-cycle are not modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpcodeFacts {
    /// 2-byte instruction units (3.6+); otherwise 1-byte opcodes followed by
    /// a 2-byte argument when `opcode >= have_argument`.
    pub wordcode: bool,
    /// `dis.HAVE_ARGUMENT`.
    pub have_argument: u8,
    /// `dis.opmap["STORE_NAME"]`.
    pub store_name: u8,
    /// `dis.opmap["STORE_GLOBAL"]`.
    pub store_global: u8,
    /// `dis.opmap["EXTENDED_ARG"]`.
    pub extended_arg: u8,
    /// For 3.11–3.13: number of inline `CACHE` units that follow each opcode
    /// (specialised and instrumented opcodes mapped to their base opcode),
    /// exactly as CPython's quickening and `dis` skip them.  `None` where no
    /// caches exist (before 3.11) or where no verified table is available
    /// (3.14: `CACHE` units, opcode 0, are skipped instead).
    pub inline_caches: Option<&'static [u8; 256]>,
    /// Opcodes that make CPython segfault while it quickens a freshly
    /// unmarshalled code object (3.12: `INSTRUMENTED_INSTRUCTION` 253 and
    /// `INSTRUMENTED_LINE` 254; 3.13: 247 and 254).  Verified per opcode
    /// against the interpreters.
    pub quicken_crash: &'static [u8],
}

/// Decode a table of base-36 digits (one per opcode) at compile time.
const fn cache_table(s: &[u8; 256]) -> [u8; 256] {
    let mut out = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = s[i];
        out[i] = if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
        i += 1;
    }
    out
}

/// `opcode._inline_cache_entries` of CPython 3.11 indexed by raw opcode
/// (specialised opcodes mapped to their base); base 36, one digit per opcode.
static CACHES_311: [u8; 256] = cache_table(
    b"00011111100001101444444444222200000000044444000550000005aaaa10aa\
      1111000011001111110000000000100400000000004200000100500001100001\
      00000000000001010000000004400044a0000010111400000111100000000000\
      0000000000000000000000000000000000000000000000000000000000000000",
);
/// As [`CACHES_311`] for 3.12 (instrumented opcodes mapped to their base).
static CACHES_312: [u8; 256] = cache_table(
    b"0000001110100110101111133100330000300033333333333000000031111011\
      1111009099009999999000000000110400000000009100044400400000110000\
      0000000000000100000040000400000111000011100300000000000000000000\
      0000000000000000000000000000000000000000000001000300000010000000",
);
/// As [`CACHES_311`] for 3.13 (which renumbered every opcode).
static CACHES_313: [u8; 256] = cache_table(
    b"0001010000000000000000000000000000000001300001000000030000110000\
      0000000010000100009000000004010001111000100040000000010000000000\
      0000000000000000000000111111111111333333333333333333331111111119\
      9999999999944110144411333333111000000000000000000011300001111100",
);

/// Quickening step table: cache units to skip after each opcode, or
/// [`CRASH`] for an opcode that segfaults quickening.
const fn quicken_table(caches: &[u8; 256], crash: &[u8]) -> [u8; 256] {
    let mut out = *caches;
    let mut i = 0;
    while i < crash.len() {
        out[crash[i] as usize] = CRASH;
        i += 1;
    }
    out
}
const CRASH: u8 = u8::MAX;
/// 3.12: `INSTRUMENTED_INSTRUCTION`, `INSTRUMENTED_LINE`.
const CRASH_312: [u8; 2] = [253, 254];
/// 3.13: `INSTRUMENTED_INSTRUCTION`, `INSTRUMENTED_LINE`.
const CRASH_313: [u8; 2] = [247, 254];
static QUICKEN_TABLE_312: [u8; 256] = quicken_table(&CACHES_312, &CRASH_312);
static QUICKEN_TABLE_313: [u8; 256] = quicken_table(&CACHES_313, &CRASH_313);
static QUICKEN_312: Quicken = Quicken {
    table: &QUICKEN_TABLE_312,
    crash: CRASH_312,
};
static QUICKEN_313: Quicken = Quicken {
    table: &QUICKEN_TABLE_313,
    crash: CRASH_313,
};

/// How 3.12/3.13 walk a new code object's instructions when quickening it.
struct Quicken {
    /// Cache units to skip after each opcode, or [`CRASH`].
    table: &'static [u8; 256],
    /// The opcodes marked [`CRASH`] in `table`.
    crash: [u8; 2],
}

impl Dialect {
    /// The marshal dialect that the CPython build with this magic number
    /// reads, including pre-release/alpha magics that fall inside a series'
    /// range; `None` for a magic of no CPython.
    ///
    /// Recognised: 2.7 (62171–62211 in steps of ten, each also `+1` for
    /// `python -U`), 3.0b1 (3131) through 3.14 (3600–3649).  Deliberately
    /// `None`: 3.0 development magics 3000–3130 (their string types were
    /// still in flux), the 3.11a1 magics 3450–3459 whose code-object layouts
    /// existed only between alpha commits, 2.6 and older, and 3.15+ (no
    /// release yet: its marshal format is not final).
    pub fn cpython(magic: u16) -> Option<Dialect> {
        let (major, minor) = match magic {
            62171 | 62172 | 62181 | 62182 | 62191 | 62192 | 62201 | 62202 | 62211 | 62212 => (2, 7),
            3131..=3140 => (3, 0),
            3141..=3159 => (3, 1),
            3160..=3189 => (3, 2),
            3190..=3249 => (3, 3),
            3250..=3319 => (3, 4),
            3320..=3359 => (3, 5),
            3360..=3389 => (3, 6),
            3390..=3399 => (3, 7),
            3400..=3419 => (3, 8),
            3420..=3429 => (3, 9),
            3430..=3449 => (3, 10),
            3460..=3499 => (3, 11),
            3500..=3549 => (3, 12),
            3550..=3599 => (3, 13),
            3600..=3649 => (3, 14),
            _ => return None,
        };
        Some(Dialect {
            magic,
            major,
            minor,
        })
    }

    /// The code-object field layout this dialect marshals.
    pub fn code_layout(&self) -> CodeLayout {
        if self.major == 2 {
            CodeLayout::Py27
        } else if self.magic < 3410 {
            // 3.8a1 magics 3400/3401 predate posonlyargcount (3410).
            CodeLayout::Py30
        } else if self.magic < 3450 {
            CodeLayout::Py38
        } else {
            CodeLayout::Py311
        }
    }

    /// The magic number this dialect was created from.
    pub fn magic(&self) -> u16 {
        self.magic
    }

    /// `(major, minor)` of the CPython series, e.g. `(3, 12)`.
    pub fn version(&self) -> (u8, u8) {
        (self.major, self.minor)
    }

    fn at_least(&self, minor: u8) -> bool {
        self.major == 3 && self.minor >= minor
    }

    /// Opcode numbers and inline-cache layout used to scan bytecode.
    pub fn opcode_facts(&self) -> OpcodeFacts {
        let mut f = OpcodeFacts {
            wordcode: false,
            have_argument: 90,
            store_name: 90,
            store_global: 97,
            extended_arg: 144,
            inline_caches: None,
            quicken_crash: &[],
        };
        if self.major == 2 {
            // SETUP_WITH took 143 at 62191 and EXTENDED_ARG moved to 145.
            f.extended_arg = if self.magic >= 62191 { 145 } else { 143 };
            return f;
        }
        // 3.0/3.1 kept EXTENDED_ARG at 143; 3.2 (3160, SETUP_WITH) moved it.
        if self.magic < 3160 {
            f.extended_arg = 143;
        }
        // 16-bit wordcode since 3.6a2 (3370).
        f.wordcode = self.magic >= 3370;
        match self.minor {
            11 => f.inline_caches = Some(&CACHES_311),
            12 => {
                f.inline_caches = Some(&CACHES_312);
                f.quicken_crash = &CRASH_312;
            }
            13 => {
                f.have_argument = 44;
                f.store_name = 114;
                f.store_global = 113;
                f.extended_arg = 71;
                f.inline_caches = Some(&CACHES_313);
                f.quicken_crash = &CRASH_313;
            }
            14 => {
                // Not verified against an interpreter (none on the test
                // machine): the 3.14 numbering as published in the xdis
                // project's opcode table.  3.14's inline-cache table and
                // quickening behaviour are not modelled.
                f.have_argument = 44;
                f.store_name = 116;
                f.store_global = 115;
                f.extended_arg = 69;
            }
            _ => {}
        }
        f
    }
}

/// Why CPython's `marshal.loads` (followed by importlib's code-object check)
/// would not produce a code object.
///
/// Every message carries the byte offset into the body where the problem was
/// found: for short reads the offset of the read, for problems with an
/// object (sizes, references, hashing, code-object checks) the offset of its
/// type byte.  Each variant names the exception CPython raises for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarshalError {
    /// A type byte was expected but the body ended (EOFError).
    #[error("EOF read where object expected (offset {offset})")]
    EofObject { offset: usize },
    /// A length, integer, string payload or other fixed-size field was cut
    /// short (EOFError).
    #[error("marshal data too short (offset {offset})")]
    TooShort { offset: usize },
    /// A type byte this series does not know (ValueError).
    #[error("bad marshal data (unknown type code 0x{code:02x} at offset {offset})")]
    UnknownType { code: u8, offset: usize },
    /// A negative size for a bytes/str/tuple/list/set object (ValueError).
    #[error("bad marshal data ({what} size out of range at offset {offset})")]
    SizeOutOfRange { what: &'static str, offset: usize },
    /// A `'l'` long whose digit count is `INT_MIN` (ValueError).
    #[error("bad marshal data (long size out of range at offset {offset})")]
    LongSizeOutOfRange { offset: usize },
    /// A 15-bit long digit with the top bit set (ValueError).
    #[error("bad marshal data (digit out of range in long at offset {offset})")]
    LongDigitOutOfRange { offset: usize },
    /// A long whose most significant digit is zero (ValueError).
    #[error("bad marshal data (unnormalized long data at offset {offset})")]
    UnnormalizedLong { offset: usize },
    /// An `'r'` index outside the reference list, or naming a slot that is
    /// reserved but not filled yet (ValueError).
    #[error("bad marshal data (invalid reference {index} at offset {offset})")]
    InvalidReference { index: i32, offset: usize },
    /// A 2.7 `'R'` index outside the interned-string list (ValueError).
    #[error("bad marshal data (string ref out of range {index} at offset {offset})")]
    StringRefOutOfRange { index: i32, offset: usize },
    /// More than 2^31 - 2 reference slots (ValueError).
    #[error("bad marshal data (index list too large at offset {offset})")]
    IndexListTooLarge { offset: usize },
    /// Nesting deeper than `MAX_MARSHAL_STACK_DEPTH` (2000) (ValueError).
    #[error("recursion limit exceeded (offset {offset})")]
    RecursionLimit { offset: usize },
    /// A NULL (`'0'`, or a code object cut short by one) where an object is
    /// required (TypeError).
    #[error("NULL object in marshal data for {container} (offset {offset})")]
    NullObject {
        container: &'static str,
        offset: usize,
    },
    /// A dict key or set element that cannot be hashed (TypeError).
    #[error("unhashable type: '{kind}' (offset {offset})")]
    Unhashable { kind: &'static str, offset: usize },
    /// A text float (`'f'`/`'x'`) that `PyOS_string_to_double` refuses
    /// (ValueError).
    #[error("could not convert string to float (offset {offset})")]
    BadFloat { offset: usize },
    /// A `'u'`/`'t'` payload that is not UTF-8; lone surrogates are allowed,
    /// as with `surrogatepass` (UnicodeDecodeError).
    #[error(
        "'utf-8' codec can't decode byte 0x{byte:02x} in position {position} (offset {offset})"
    )]
    BadUtf8 {
        byte: u8,
        position: usize,
        offset: usize,
    },
    /// The code-object constructor raises: SystemError for reasons starting
    /// "bad argument" or "non-string", OverflowError for "code: co_code
    /// larger than INT_MAX", ValueError for the other "code: ..." reasons.
    #[error("{reason} (offset {offset})")]
    BadCode { reason: &'static str, offset: usize },
    /// Loading this body crashes the interpreter (`Py_FatalError` abort or
    /// segfault); the cache can never be imported.
    #[error("CPython would crash loading this: {reason} (offset {offset})")]
    WouldCrash { reason: &'static str, offset: usize },
    /// marshal returned something, but not a code object: importlib raises
    /// `ImportError("Non-code object ...")`.
    #[error("top-level object is a {kind}, not a code object (offset {offset})")]
    NotCode { kind: &'static str, offset: usize },
}

impl MarshalError {
    /// Byte offset into the body that the error refers to.
    pub fn offset(&self) -> usize {
        match *self {
            MarshalError::EofObject { offset }
            | MarshalError::TooShort { offset }
            | MarshalError::UnknownType { offset, .. }
            | MarshalError::SizeOutOfRange { offset, .. }
            | MarshalError::LongSizeOutOfRange { offset }
            | MarshalError::LongDigitOutOfRange { offset }
            | MarshalError::UnnormalizedLong { offset }
            | MarshalError::InvalidReference { offset, .. }
            | MarshalError::StringRefOutOfRange { offset, .. }
            | MarshalError::IndexListTooLarge { offset }
            | MarshalError::RecursionLimit { offset }
            | MarshalError::NullObject { offset, .. }
            | MarshalError::Unhashable { offset, .. }
            | MarshalError::BadFloat { offset }
            | MarshalError::BadUtf8 { offset, .. }
            | MarshalError::BadCode { offset, .. }
            | MarshalError::WouldCrash { offset, .. }
            | MarshalError::NotCode { offset, .. } => offset,
        }
    }
}

/// Facts about the top-level code object of a body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeSummary {
    /// `co_filename` of the top-level code object (lossy UTF-8).
    pub filename: String,
    /// `co_name` (normally `<module>`).
    pub name: String,
    /// `co_names` of the top-level code object, in order.
    pub names: Vec<String>,
    /// Names the module binds at top level: operands of `STORE_NAME` and
    /// `STORE_GLOBAL` in the top-level bytecode, de-duplicated, in order of
    /// first occurrence.
    pub stored_names: Vec<String>,
    /// Number of code objects in the whole body (nested functions, classes,
    /// comprehensions included): every code object built while loading, so
    /// one reached twice through a reference counts once.
    pub code_objects: usize,
}

/// Fast path used on every cache of a tree: `Ok(())` iff CPython's
/// `marshal.loads` would return a code object for this body (what importlib
/// needs), otherwise the error CPython would hit first.  Trailing bytes after
/// the top-level object are ignored, as `marshal.loads` ignores them.
pub fn validate(body: &[u8], dialect: Dialect) -> Result<(), MarshalError> {
    Walker::new(body, dialect).run_top().map(|_| ())
}

/// Same acceptance as [`validate`], plus the facts in [`CodeSummary`].
pub fn summarize(body: &[u8], dialect: Dialect) -> Result<CodeSummary, MarshalError> {
    let mut w = Walker::new(body, dialect);
    let top = w.run_top()?;
    Ok(w.summary(&top))
}

// ---------------------------------------------------------------------------
// Values and rules
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    None,
    Bool,
    StopIter,
    Ellipsis,
    Int,
    Float,
    Complex,
    /// 3.x `bytes`; 2.7 `str`.
    Bytes,
    /// 3.x `str`; 2.7 `unicode`.
    Str,
    Tuple,
    List,
    Dict,
    Set,
    FrozenSet,
    Code,
    Slice,
    /// 2.7 `long` (`'l'`); 3.x reads `'l'` as [`Kind::Int`].
    Long,
}

impl Kind {
    fn name(self, py2: bool) -> &'static str {
        match self {
            Kind::None => "NoneType",
            Kind::Bool => "bool",
            Kind::StopIter => "type",
            Kind::Ellipsis => "ellipsis",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Complex => "complex",
            Kind::Bytes if py2 => "str",
            Kind::Bytes => "bytes",
            Kind::Str if py2 => "unicode",
            Kind::Str => "str",
            Kind::Tuple => "tuple",
            Kind::List => "list",
            Kind::Dict => "dict",
            Kind::Set => "set",
            Kind::FrozenSet => "frozenset",
            Kind::Code => "code",
            Kind::Slice => "slice",
            Kind::Long => "long",
        }
    }
}

/// Every kind, indexed by its discriminant (padded to 32 so that a 5-bit
/// field always indexes it).
const KINDS: [Kind; 32] = {
    let all = [
        Kind::None,
        Kind::Bool,
        Kind::StopIter,
        Kind::Ellipsis,
        Kind::Int,
        Kind::Float,
        Kind::Complex,
        Kind::Bytes,
        Kind::Str,
        Kind::Tuple,
        Kind::List,
        Kind::Dict,
        Kind::Set,
        Kind::FrozenSet,
        Kind::Code,
        Kind::Slice,
        Kind::Long,
    ];
    let mut table = [Kind::None; 32];
    let mut i = 0;
    while i < all.len() {
        table[all[i] as usize] = all[i];
        i += 1;
    }
    table
};

/// What the walker knows about one unmarshalled object.
///
/// Packed into two words (payload length, kind, flags and culprit share
/// `info`) so that handing values around never mixes narrow stores with wide
/// loads.
#[derive(Clone, Copy, Debug)]
struct Val {
    /// Bytes/str: offset of the payload.  Tuples: offset of the first item.
    /// Everything else: offset of the type byte.
    pos: usize,
    /// Bits 0-31: payload length (bytes/str) or item count (tuple/list/set);
    /// 32-39: kind; 40-47: flags; 48-55: the innermost kind that makes the
    /// value unhashable.
    info: u64,
}

impl Val {
    const fn new(kind: Kind, pos: usize, len: u32, flags: u8) -> Val {
        Val {
            pos,
            info: len as u64 | (kind as u64) << 32 | (flags as u64) << 40 | (kind as u64) << 48,
        }
    }
    const PLACEHOLDER: Val = Val::new(Kind::None, 0, 0, 0);

    fn len(&self) -> u32 {
        self.info as u32
    }
    fn kind(&self) -> Kind {
        KINDS[((self.info >> 32) & 0x1f) as usize]
    }
    fn flags(&self) -> u8 {
        (self.info >> 40) as u8
    }
    fn culprit(&self) -> Kind {
        KINDS[((self.info >> 48) & 0x1f) as usize]
    }
    fn has(&self, flag: u8) -> bool {
        self.flags() & flag != 0
    }
    fn with(self, flags: u8, culprit: Kind) -> Val {
        Val {
            pos: self.pos,
            info: (self.info & 0xff_ffff_ffff) | (flags as u64) << 40 | (culprit as u64) << 48,
        }
    }
}

/// Series-specific switches, computed once per walk.
#[derive(Clone, Copy)]
struct Rules {
    py2: bool,
    /// 3.4+: FLAG_REF, `'r'`, `'t'`, `'a'`, `'A'`, `'z'`, `'Z'`, `')'`.
    refs: bool,
    /// 3.14: `':'` slice objects.
    slice: bool,
    /// The pre-3.4 reader (2.7, 3.0-3.3): a NULL dict value skips the pair
    /// instead of ending the dict, and integers read past the end of the data
    /// are garbage instead of an EOFError.
    old_reader: bool,
    /// Interning constants recurses into nested tuples and frozensets (3.6+);
    /// 3.4/3.5 only look at the items of `co_consts` itself.
    intern_recurses: bool,
    /// A NULL code field raises (3.11+); earlier series silently return NULL.
    code_null_is_error: bool,
    /// A non-identifier in a name tuple is `Py_FatalError` (2.7, 3.0–3.8)
    /// rather than SystemError (3.9+).
    names_fatal: bool,
    layout: CodeLayout,
    /// The kind `intern_strings` requires of name tuple items.
    ident: Kind,
    /// Quickening of 3.12/3.13.
    quicken: Option<&'static Quicken>,
}

impl Rules {
    fn new(d: Dialect) -> Rules {
        let quicken = match (d.major, d.minor) {
            (3, 12) => Some(&QUICKEN_312),
            (3, 13) => Some(&QUICKEN_313),
            _ => None,
        };
        Rules {
            py2: d.major == 2,
            refs: d.at_least(4),
            slice: d.at_least(14),
            old_reader: !d.at_least(4),
            intern_recurses: d.at_least(6),
            code_null_is_error: d.at_least(11),
            names_fatal: !d.at_least(9),
            layout: d.code_layout(),
            ident: if d.major == 2 { Kind::Bytes } else { Kind::Str },
            quicken,
        }
    }
}

// ---------------------------------------------------------------------------
// Code-object field layouts
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Field {
    Int(usize),
    Obj(usize),
}

const I_ARGC: usize = 0;
const I_POSONLY: usize = 1;
const I_KWONLY: usize = 2;
const I_NLOCALS: usize = 3;
const I_STACK: usize = 4;
const I_FLAGS: usize = 5;
const I_FIRSTLINE: usize = 6;

const O_CODE: usize = 0;
const O_CONSTS: usize = 1;
const O_NAMES: usize = 2;
const O_VARNAMES: usize = 3;
const O_FREEVARS: usize = 4;
const O_CELLVARS: usize = 5;
const O_FILENAME: usize = 6;
const O_NAME: usize = 7;
const O_QUALNAME: usize = 8;
const O_LNOTAB: usize = 9;
const O_EXCTABLE: usize = 10;
const O_LPNAMES: usize = 11;
const O_LPKINDS: usize = 12;

use Field::{Int as FI, Obj as FO};

const LAYOUT_27: &[Field] = &[
    FI(I_ARGC),
    FI(I_NLOCALS),
    FI(I_STACK),
    FI(I_FLAGS),
    FO(O_CODE),
    FO(O_CONSTS),
    FO(O_NAMES),
    FO(O_VARNAMES),
    FO(O_FREEVARS),
    FO(O_CELLVARS),
    FO(O_FILENAME),
    FO(O_NAME),
    FI(I_FIRSTLINE),
    FO(O_LNOTAB),
];
const LAYOUT_30: &[Field] = &[
    FI(I_ARGC),
    FI(I_KWONLY),
    FI(I_NLOCALS),
    FI(I_STACK),
    FI(I_FLAGS),
    FO(O_CODE),
    FO(O_CONSTS),
    FO(O_NAMES),
    FO(O_VARNAMES),
    FO(O_FREEVARS),
    FO(O_CELLVARS),
    FO(O_FILENAME),
    FO(O_NAME),
    FI(I_FIRSTLINE),
    FO(O_LNOTAB),
];
const LAYOUT_38: &[Field] = &[
    FI(I_ARGC),
    FI(I_POSONLY),
    FI(I_KWONLY),
    FI(I_NLOCALS),
    FI(I_STACK),
    FI(I_FLAGS),
    FO(O_CODE),
    FO(O_CONSTS),
    FO(O_NAMES),
    FO(O_VARNAMES),
    FO(O_FREEVARS),
    FO(O_CELLVARS),
    FO(O_FILENAME),
    FO(O_NAME),
    FI(I_FIRSTLINE),
    FO(O_LNOTAB),
];
const LAYOUT_311: &[Field] = &[
    FI(I_ARGC),
    FI(I_POSONLY),
    FI(I_KWONLY),
    FI(I_STACK),
    FI(I_FLAGS),
    FO(O_CODE),
    FO(O_CONSTS),
    FO(O_NAMES),
    FO(O_LPNAMES),
    FO(O_LPKINDS),
    FO(O_FILENAME),
    FO(O_NAME),
    FO(O_QUALNAME),
    FI(I_FIRSTLINE),
    FO(O_LNOTAB),
    FO(O_EXCTABLE),
];

fn layout_fields(layout: CodeLayout) -> &'static [Field] {
    match layout {
        CodeLayout::Py27 => LAYOUT_27,
        CodeLayout::Py30 => LAYOUT_30,
        CodeLayout::Py38 => LAYOUT_38,
        CodeLayout::Py311 => LAYOUT_311,
    }
}

/// A code object whose fields are being read.
#[derive(Clone, Copy)]
struct CodeState {
    start: usize,
    slot: u32,
    step: u8,
    ints: [i32; 7],
    objs: [Val; 13],
}

// CPython's CO_VARARGS / CO_VARKEYWORDS and the 3.11+ CO_FAST_LOCAL kind.
const CO_VARARGS: i32 = 0x04;
const CO_VARKEYWORDS: i32 = 0x08;
const CO_FAST_LOCAL: u8 = 0x20;

// ---------------------------------------------------------------------------
// The walker
// ---------------------------------------------------------------------------

/// An open container: one active `r_object` call of CPython.
enum Frame {
    /// Tuple, list, set or frozenset with `remaining` items still to read.
    Seq {
        kind: Kind,
        remaining: u32,
        len: u32,
        slot: u32,
        flags: u8,
        culprit: Kind,
        items: usize,
        start: usize,
    },
    /// Dict; `key` holds the pending key (hashable?, culprit, offset).
    Dict {
        key: Option<(bool, Kind, usize)>,
        start: usize,
    },
    /// Code object; its fields live in `Walker::codes`.
    Code,
    /// 3.14 slice with `have` of its three parts read.
    Slice {
        have: u8,
        flags: u8,
        culprit: Kind,
        slot: u32,
        start: usize,
    },
}

enum Started {
    /// A complete object (`None` = NULL without an error set).
    Value(Option<Val>),
    /// A container frame was pushed and waits for its children.
    Opened,
}

struct Walker<'a> {
    body: &'a [u8],
    pos: usize,
    dialect: Dialect,
    r: Rules,
    /// 3.4+ reference list (`p->refs`).
    slots: Vec<Val>,
    /// 2.7 interned-string list (`p->strings`).
    interned: Vec<Val>,
    frames: Vec<Frame>,
    codes: Vec<CodeState>,
    code_count: usize,
    top_code: Option<CodeState>,
}

type Res<T> = Result<T, MarshalError>;

impl<'a> Walker<'a> {
    fn new(body: &'a [u8], dialect: Dialect) -> Walker<'a> {
        Walker {
            body,
            pos: 0,
            dialect,
            r: Rules::new(dialect),
            // Real bodies register roughly one object per 20-40 bytes.
            slots: Vec::with_capacity((body.len() / 32).min(1 << 16)),
            interned: Vec::new(),
            frames: Vec::new(),
            codes: Vec::new(),
            code_count: 0,
            top_code: None,
        }
    }

    // -- primitive reads ----------------------------------------------------

    #[inline]
    fn take(&mut self, n: usize) -> Res<usize> {
        let start = self.pos;
        if self.body.len() - start < n {
            return Err(MarshalError::TooShort { offset: start });
        }
        self.pos = start + n;
        Ok(start)
    }

    #[inline]
    fn read_u8(&mut self) -> Res<u8> {
        let p = self.take(1)?;
        Ok(self.body[p])
    }

    /// `r_long`.
    #[inline]
    fn read_i32(&mut self) -> Res<i32> {
        let p = self.pos;
        match self.body.get(p..p + 4) {
            Some(b) => {
                self.pos = p + 4;
                Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            None => self.read_i32_at_eof(),
        }
    }

    /// 3.4+ raise EOFError.  The older reader's `r_long` (2.7, 3.0-3.3) does
    /// not notice the end of the data: it ORs `EOF` (-1) shifted into place
    /// for every missing byte, so all bits from the first missing byte
    /// upwards are set, and reading goes on with that (negative) value.
    #[cold]
    fn read_i32_at_eof(&mut self) -> Res<i32> {
        let rest = &self.body[self.pos..];
        if !self.r.old_reader {
            return Err(MarshalError::TooShort { offset: self.pos });
        }
        let mut x = u32::MAX << (8 * rest.len());
        for (i, &b) in rest.iter().enumerate() {
            x |= u32::from(b) << (8 * i);
        }
        self.pos = self.body.len();
        Ok(x as i32)
    }

    /// A 4-byte size that must not be negative.
    fn read_size(&mut self, what: &'static str, start: usize) -> Res<usize> {
        let n = self.read_i32()?;
        usize::try_from(n).map_err(|_| MarshalError::SizeOutOfRange {
            what,
            offset: start,
        })
    }

    // -- reference slots ----------------------------------------------------

    fn push_slot(&mut self, v: Val, start: usize) -> Res<u32> {
        let idx = self.slots.len();
        if idx >= 0x7fff_fffe {
            return Err(MarshalError::IndexListTooLarge { offset: start });
        }
        self.slots.push(v);
        Ok(idx as u32)
    }

    fn fill_slot(&mut self, slot: u32, v: Val) {
        if slot != NO_SLOT {
            self.slots[slot as usize] = v;
        }
    }

    fn reserve(&mut self, flag: bool, start: usize) -> Res<u32> {
        if flag {
            self.push_slot(Val::new(Kind::None, start, 0, RESERVED), start)
        } else {
            Ok(NO_SLOT)
        }
    }

    // -- driving loop -------------------------------------------------------

    fn run_top(&mut self) -> Res<CodeState> {
        match self.run()? {
            None => Err(MarshalError::NullObject {
                container: "object",
                offset: 0,
            }),
            Some(v) if v.kind() == Kind::Code => match self.top_code {
                Some(cs) => Ok(cs),
                // Unreachable: a top-level code value always records itself.
                None => Err(MarshalError::NotCode {
                    kind: "code",
                    offset: 0,
                }),
            },
            Some(v) => Err(MarshalError::NotCode {
                kind: v.kind().name(self.r.py2),
                offset: 0,
            }),
        }
    }

    /// Read the top-level object; `None` is a NULL without an error.
    fn run(&mut self) -> Res<Option<Val>> {
        loop {
            let mut item_start = self.pos;
            let mut res = match self.start_object()? {
                Started::Value(v) => v,
                Started::Opened => continue,
            };
            loop {
                if self.frames.is_empty() {
                    return Ok(res);
                }
                match self.deliver(res, item_start)? {
                    Some((v, start)) => {
                        res = v;
                        item_start = start;
                    }
                    None => break,
                }
            }
        }
    }

    /// `r_object` up to the point where a container waits for children.
    fn start_object(&mut self) -> Res<Started> {
        let start = self.pos;
        let depth = self.frames.len() + 1;
        let Some(&code) = self.body.get(start) else {
            // 2.7 bumps the depth before noticing EOF; 3.x the other way
            // round.  Either way the load fails.
            if self.r.py2 && depth > MAX_DEPTH {
                return Err(MarshalError::RecursionLimit { offset: start });
            }
            return Err(MarshalError::EofObject { offset: start });
        };
        if depth > MAX_DEPTH {
            return Err(MarshalError::RecursionLimit { offset: start });
        }
        self.pos += 1;
        let (flag, ty) = if self.r.refs {
            (code & FLAG_REF != 0, code & !FLAG_REF)
        } else {
            (false, code)
        };
        let simple = |kind| Val::new(kind, start, 0, HASHABLE);
        let v = match ty {
            b'0' => return Ok(Started::Value(None)),
            // Singletons are never registered, even with FLAG_REF.
            b'N' => return Ok(Started::Value(Some(simple(Kind::None)))),
            b'F' | b'T' => return Ok(Started::Value(Some(simple(Kind::Bool)))),
            b'S' => return Ok(Started::Value(Some(simple(Kind::StopIter)))),
            b'.' => return Ok(Started::Value(Some(simple(Kind::Ellipsis)))),
            b'i' => {
                self.read_i32()?;
                simple(Kind::Int)
            }
            b'I' if self.r.old_reader => {
                // r_long64 is two r_longs in the old reader.
                self.read_i32()?;
                self.read_i32()?;
                simple(Kind::Int)
            }
            b'I' => {
                self.take(8)?;
                simple(Kind::Int)
            }
            b'l' => {
                self.read_long(start)?;
                simple(if self.r.py2 { Kind::Long } else { Kind::Int })
            }
            b'f' => {
                self.read_float_str(start)?;
                simple(Kind::Float)
            }
            b'g' => {
                self.take(8)?;
                simple(Kind::Float)
            }
            b'x' => {
                self.read_float_str(start)?;
                self.read_float_str(start)?;
                simple(Kind::Complex)
            }
            b'y' => {
                self.take(16)?;
                simple(Kind::Complex)
            }
            b's' => {
                let what = if self.r.py2 { "string" } else { "bytes object" };
                let n = self.read_size(what, start)?;
                let p = self.take(n)?;
                Val::new(Kind::Bytes, p, n as u32, HASHABLE)
            }
            b't' if self.r.py2 => {
                let n = self.read_size("string", start)?;
                let p = self.take(n)?;
                let v = Val::new(Kind::Bytes, p, n as u32, HASHABLE);
                self.interned.push(v);
                v
            }
            b'R' if self.r.py2 => {
                let idx = self.read_i32()?;
                match usize::try_from(idx).ok().and_then(|i| self.interned.get(i)) {
                    Some(v) => *v,
                    None => {
                        return Err(MarshalError::StringRefOutOfRange {
                            index: idx,
                            offset: start,
                        })
                    }
                }
            }
            b'u' | b't' if ty == b'u' || self.r.refs => {
                let n = self.read_size("string", start)?;
                let p = self.take(n)?;
                check_utf8(&self.body[p..p + n], p)?;
                Val::new(Kind::Str, p, n as u32, HASHABLE)
            }
            b'a' | b'A' if self.r.refs => {
                let n = self.read_size("string", start)?;
                let p = self.take(n)?;
                Val::new(Kind::Str, p, n as u32, HASHABLE | LATIN1)
            }
            b'z' | b'Z' if self.r.refs => {
                let n = usize::from(self.read_u8()?);
                let p = self.take(n)?;
                Val::new(Kind::Str, p, n as u32, HASHABLE | LATIN1)
            }
            b'r' if self.r.refs => {
                let idx = self.read_i32()?;
                let v = usize::try_from(idx)
                    .ok()
                    .and_then(|i| self.slots.get(i))
                    .filter(|v| !v.has(RESERVED));
                return match v {
                    Some(v) => Ok(Started::Value(Some(*v))),
                    None => Err(MarshalError::InvalidReference {
                        index: idx,
                        offset: start,
                    }),
                };
            }
            b'(' => {
                let n = self.read_size("tuple", start)?;
                return self.open_seq(Kind::Tuple, n, flag, start);
            }
            b')' if self.r.refs => {
                let n = usize::from(self.read_u8()?);
                return self.open_seq(Kind::Tuple, n, flag, start);
            }
            b'[' => {
                let n = self.read_size("list", start)?;
                return self.open_seq(Kind::List, n, flag, start);
            }
            b'<' | b'>' => {
                let n = self.read_size("set", start)?;
                let kind = if ty == b'<' {
                    Kind::Set
                } else {
                    Kind::FrozenSet
                };
                return self.open_seq(kind, n, flag, start);
            }
            b'{' => {
                if flag {
                    self.push_slot(Val::new(Kind::Dict, start, 0, 0), start)?;
                }
                self.frames.push(Frame::Dict { key: None, start });
                return Ok(Started::Opened);
            }
            b'c' => {
                let slot = self.reserve(flag, start)?;
                self.codes.push(CodeState {
                    start,
                    slot,
                    step: 0,
                    ints: [0; 7],
                    objs: [Val::PLACEHOLDER; 13],
                });
                self.frames.push(Frame::Code);
                // The leading integer fields; every layout ends with an
                // object field, so this never completes the code object.
                self.code_advance()?;
                return Ok(Started::Opened);
            }
            b':' if self.r.slice => {
                let slot = self.reserve(flag, start)?;
                self.frames.push(Frame::Slice {
                    have: 0,
                    flags: HASHABLE,
                    culprit: Kind::Slice,
                    slot,
                    start,
                });
                return Ok(Started::Opened);
            }
            _ => {
                return Err(MarshalError::UnknownType {
                    code,
                    offset: start,
                })
            }
        };
        if flag {
            self.push_slot(v, start)?;
        }
        Ok(Started::Value(Some(v)))
    }

    fn open_seq(&mut self, kind: Kind, n: usize, flag: bool, start: usize) -> Res<Started> {
        let items = self.pos;
        // Sizes come from 31-bit fields or a byte, so they fit in u32.
        let len = n as u32;
        let (flags, culprit) = match kind {
            Kind::Tuple => (HASHABLE | NAMES, Kind::Tuple),
            Kind::FrozenSet => (HASHABLE, Kind::FrozenSet),
            _ => (0, kind),
        };
        let done = Val::new(kind, items, len, 0).with(flags, culprit);
        let slot = if !flag {
            NO_SLOT
        } else {
            match kind {
                // Tuples register before their items: an 'r' from inside
                // sees an incomplete tuple.
                Kind::Tuple if n > 0 => {
                    self.push_slot(done.with(CYCLIC | INCOMPLETE, Kind::Tuple), start)?
                }
                // Frozensets reserve a slot that is filled only afterwards
                // (the empty one is registered at once in CPython).
                Kind::FrozenSet if n > 0 => self.reserve(true, start)?,
                _ => self.push_slot(done, start)?,
            }
        };
        if n == 0 {
            return Ok(Started::Value(Some(done)));
        }
        self.frames.push(Frame::Seq {
            kind,
            remaining: len,
            len,
            slot,
            flags,
            culprit,
            items,
            start,
        });
        Ok(Started::Opened)
    }

    /// Hand a finished child to the innermost frame.  Returns the frame's own
    /// value (and start offset) when that completes it.
    fn deliver(&mut self, v: Option<Val>, item_start: usize) -> Res<Option<(Option<Val>, usize)>> {
        let py2 = self.r.py2;
        let ident = self.r.ident;
        let top = match self.frames.last_mut() {
            Some(f) => f,
            None => return Ok(Some((v, item_start))),
        };
        match top {
            Frame::Seq {
                kind,
                remaining,
                len,
                slot,
                flags,
                culprit,
                items,
                start,
            } => {
                let Some(v) = v else {
                    let container = match kind {
                        Kind::Tuple => "tuple",
                        Kind::List => "list",
                        _ => "set",
                    };
                    return Err(MarshalError::NullObject {
                        container,
                        offset: item_start,
                    });
                };
                match kind {
                    Kind::Tuple => {
                        if !v.has(HASHABLE) && *flags & HASHABLE != 0 {
                            *flags &= !HASHABLE;
                            *culprit = v.culprit();
                        }
                        if v.kind() != ident {
                            *flags &= !NAMES;
                        }
                        *flags |= v.flags() & CYCLIC;
                    }
                    Kind::Set | Kind::FrozenSet if !v.has(HASHABLE) => {
                        return Err(unhashable(v.culprit(), item_start, py2));
                    }
                    _ => {}
                }
                *remaining -= 1;
                if *remaining > 0 {
                    return Ok(None);
                }
                let done = Val::new(*kind, *items, *len, 0).with(*flags, *culprit);
                let (slot, start) = (*slot, *start);
                self.frames.pop();
                self.fill_slot(slot, done);
                Ok(Some((Some(done), start)))
            }
            Frame::Dict { key, start } => {
                let start = *start;
                match (key.take(), v) {
                    // A NULL key ends the dict.
                    (None, None) => {}
                    (None, Some(k)) => {
                        *key = Some((k.has(HASHABLE), k.culprit(), item_start));
                        return Ok(None);
                    }
                    // A NULL value: 3.4+ stop reading the dict; 2.7 skips the
                    // pair and reads the next key.
                    (Some(_), None) => {
                        if self.r.old_reader {
                            return Ok(None);
                        }
                    }
                    (Some((hashable, culprit, at)), Some(_)) => {
                        if !hashable {
                            // 2.7 keeps reading after the failed
                            // PyDict_SetItem but fails in the end anyway.
                            return Err(unhashable(culprit, at, py2));
                        }
                        return Ok(None);
                    }
                }
                self.frames.pop();
                Ok(Some((Some(Val::new(Kind::Dict, start, 0, 0)), start)))
            }
            Frame::Slice {
                have,
                flags,
                culprit,
                slot,
                start,
            } => {
                let start = *start;
                let Some(v) = v else {
                    // 3.14 returns NULL without an error, like pre-3.11 code.
                    self.frames.pop();
                    return Ok(Some((None, start)));
                };
                if !v.has(HASHABLE) && *flags & HASHABLE != 0 {
                    *flags &= !HASHABLE;
                    *culprit = v.culprit();
                }
                *flags |= v.flags() & CYCLIC;
                *have += 1;
                if *have < 3 {
                    return Ok(None);
                }
                let done = Val::new(Kind::Slice, start, 0, 0).with(*flags, *culprit);
                let slot = *slot;
                self.frames.pop();
                self.fill_slot(slot, done);
                Ok(Some((Some(done), start)))
            }
            Frame::Code => {
                let fields = layout_fields(self.r.layout);
                let Some(cs) = self.codes.last_mut() else {
                    return Ok(None);
                };
                let Some(v) = v else {
                    if self.r.code_null_is_error {
                        return Err(MarshalError::NullObject {
                            container: "code object",
                            offset: item_start,
                        });
                    }
                    // Before 3.11 a NULL field abandons the code object
                    // without an error; reading resumes right here.
                    let start = cs.start;
                    self.codes.pop();
                    self.frames.pop();
                    return Ok(Some((None, start)));
                };
                if let Some(FO(i)) = fields.get(usize::from(cs.step)) {
                    cs.objs[*i] = v;
                }
                cs.step += 1;
                if !self.code_advance()? {
                    return Ok(None);
                }
                let is_top = self.frames.len() == 1;
                self.frames.pop();
                let Some(cs) = self.codes.pop() else {
                    return Ok(None);
                };
                let v = self.finish_code(&cs)?;
                self.fill_slot(cs.slot, v);
                self.code_count += 1;
                if is_top {
                    self.top_code = Some(cs);
                }
                Ok(Some((Some(v), cs.start)))
            }
        }
    }

    /// Read integer fields of the innermost code object up to its next
    /// object field; `true` once every field has been read.
    #[inline]
    fn code_advance(&mut self) -> Res<bool> {
        let fields = layout_fields(self.r.layout);
        let Some(cs) = self.codes.last() else {
            return Ok(false);
        };
        let mut step = usize::from(cs.step);
        while let Some(&FI(i)) = fields.get(step) {
            let x = self.read_i32()?;
            if let Some(cs) = self.codes.last_mut() {
                cs.ints[i] = x;
                cs.step += 1;
            }
            step += 1;
        }
        Ok(step >= fields.len())
    }

    // -- scalars --------------------------------------------------------------

    /// `r_PyLong`: |n| 15-bit digits, each below 2^15, the last one non-zero.
    fn read_long(&mut self, start: usize) -> Res<()> {
        let n = self.read_i32()?;
        if n == i32::MIN {
            return Err(MarshalError::LongSizeOutOfRange { offset: start });
        }
        let count = n.unsigned_abs();
        // Each digit is read (and checked) in order, so a bad digit before
        // the end of the data is reported before the EOF; the loop is bounded
        // by the body length.
        for i in 0..count {
            let p = self.pos;
            let digit = match self.body.get(p..p + 2) {
                Some(d) => u16::from_le_bytes([d[0], d[1]]),
                // The old reader's r_short reads EOF as -1: a negative,
                // out-of-range digit.
                None if self.r.old_reader => 0xffff,
                None => return Err(MarshalError::TooShort { offset: p }),
            };
            self.pos = (p + 2).min(self.body.len());
            if digit >= 0x8000 {
                return Err(MarshalError::LongDigitOutOfRange { offset: start });
            }
            if digit == 0 && i + 1 == count {
                return Err(MarshalError::UnnormalizedLong { offset: start });
            }
        }
        Ok(())
    }

    /// `r_float_str`: a length byte and a decimal float for
    /// `PyOS_string_to_double(buf, NULL, NULL)`.
    fn read_float_str(&mut self, start: usize) -> Res<()> {
        let n = usize::from(self.read_u8()?);
        let p = self.take(n)?;
        if float_repr_ok(&self.body[p..p + n]) {
            Ok(())
        } else {
            Err(MarshalError::BadFloat { offset: start })
        }
    }

    // -- code objects -------------------------------------------------------

    fn finish_code(&self, cs: &CodeState) -> Res<Val> {
        let r = &self.r;
        let bad = |reason| MarshalError::BadCode {
            reason,
            offset: cs.start,
        };
        let o = |i: usize| cs.objs[i];
        let is = |i: usize, k: Kind| cs.objs[i].kind() == k;
        let argc = cs.ints[I_ARGC];
        let posonly = cs.ints[I_POSONLY];
        let kwonly = cs.ints[I_KWONLY];
        let nlocals = cs.ints[I_NLOCALS];
        let stack = cs.ints[I_STACK];
        let flags = cs.ints[I_FLAGS];
        let names_check = |i: usize| -> Res<()> {
            if o(i).has(NAMES) {
                Ok(())
            } else if r.names_fatal {
                Err(MarshalError::WouldCrash {
                    reason: "Fatal Python error: non-string found in code slot",
                    offset: cs.start,
                })
            } else {
                Err(bad("non-string found in code slot"))
            }
        };
        let consts_check = || -> Res<()> {
            // Interning string constants looks at every item of co_consts
            // (a NULL one when co_consts is a tuple still being built) and,
            // in 3.6+, recurses into nested tuples and frozensets, never
            // returning on a cycle.  Without references (2.7, 3.0-3.3) there
            // are no cycles.
            let consts = o(O_CONSTS);
            if consts.has(INCOMPLETE) || (r.intern_recurses && consts.has(CYCLIC)) {
                return Err(MarshalError::WouldCrash {
                    reason: "co_consts contains itself or is still being built",
                    offset: cs.start,
                });
            }
            Ok(())
        };
        match r.layout {
            CodeLayout::Py27 => {
                // PyCode_New: PyErr_BadInternalCall on a bad argument.
                if argc < 0 || nlocals < 0 {
                    return Err(bad(
                        "bad argument to internal function (negative co_argcount or co_nlocals)",
                    ));
                }
                if !(is(O_CODE, Kind::Bytes) || is(O_CODE, Kind::Str)) {
                    return Err(bad(
                        "bad argument to internal function (co_code is not a read buffer)",
                    ));
                }
                for i in [O_CONSTS, O_NAMES, O_VARNAMES, O_FREEVARS, O_CELLVARS] {
                    if !is(i, Kind::Tuple) {
                        return Err(bad(
                            "bad argument to internal function (a code tuple field is not a tuple)",
                        ));
                    }
                }
                for i in [O_NAME, O_FILENAME, O_LNOTAB] {
                    if !is(i, Kind::Bytes) {
                        return Err(bad("bad argument to internal function (co_name, co_filename or co_lnotab is not a str)"));
                    }
                }
                for i in [O_NAMES, O_VARNAMES, O_FREEVARS, O_CELLVARS] {
                    names_check(i)?;
                }
            }
            CodeLayout::Py30 | CodeLayout::Py38 => {
                let py38 = r.layout == CodeLayout::Py38;
                let bad_counts = if py38 {
                    argc < posonly
                        || posonly < 0
                        || kwonly < 0
                        || nlocals < 0
                        || stack < 0
                        || flags < 0
                } else {
                    argc < 0 || kwonly < 0 || nlocals < 0
                };
                if bad_counts {
                    return Err(bad(
                        "bad argument to internal function (negative count or flags)",
                    ));
                }
                if !is(O_CODE, Kind::Bytes) {
                    return Err(bad(
                        "bad argument to internal function (co_code is not bytes)",
                    ));
                }
                for i in [O_CONSTS, O_NAMES, O_VARNAMES, O_FREEVARS, O_CELLVARS] {
                    if !is(i, Kind::Tuple) {
                        return Err(bad(
                            "bad argument to internal function (a code tuple field is not a tuple)",
                        ));
                    }
                }
                if !is(O_NAME, Kind::Str) || !is(O_FILENAME, Kind::Str) {
                    return Err(bad(
                        "bad argument to internal function (co_name or co_filename is not a str)",
                    ));
                }
                if !is(O_LNOTAB, Kind::Bytes) {
                    return Err(bad(
                        "bad argument to internal function (co_lnotab is not bytes)",
                    ));
                }
                for i in [O_NAMES, O_VARNAMES, O_FREEVARS, O_CELLVARS] {
                    names_check(i)?;
                }
                consts_check()?;
                // "code: varnames is too small" (present in 3.6.15 and 3.7.16
                // too; assumed for 3.0-3.5, which would otherwise read out of
                // bounds when they have cell variables).
                let n_varnames = i64::from(o(O_VARNAMES).len());
                let total_args = if i64::from(argc) <= n_varnames && i64::from(kwonly) <= n_varnames
                {
                    i64::from(argc)
                        + i64::from(kwonly)
                        + i64::from(flags & CO_VARARGS != 0)
                        + i64::from(flags & CO_VARKEYWORDS != 0)
                } else {
                    n_varnames + 1
                };
                if total_args > n_varnames {
                    return Err(bad("code: varnames is too small"));
                }
            }
            CodeLayout::Py311 => {
                // _PyCode_Validate.
                if argc < posonly || posonly < 0 || kwonly < 0 || stack < 0 || flags < 0 {
                    return Err(bad(
                        "bad argument to internal function (negative count or flags)",
                    ));
                }
                let types_ok = is(O_CODE, Kind::Bytes)
                    && is(O_CONSTS, Kind::Tuple)
                    && is(O_NAMES, Kind::Tuple)
                    && is(O_LPNAMES, Kind::Tuple)
                    && is(O_LPKINDS, Kind::Bytes)
                    && o(O_LPNAMES).len() == o(O_LPKINDS).len()
                    && is(O_NAME, Kind::Str)
                    && is(O_QUALNAME, Kind::Str)
                    && is(O_FILENAME, Kind::Str)
                    && is(O_LNOTAB, Kind::Bytes)
                    && is(O_EXCTABLE, Kind::Bytes);
                if !types_ok {
                    return Err(bad("bad argument to internal function (code field of the wrong type, or localsplusnames/kinds length mismatch)"));
                }
                let code = self.data(&o(O_CODE));
                if code.len() > i32::MAX as usize {
                    return Err(bad("code: co_code larger than INT_MAX"));
                }
                if code.len() & 1 != 0 {
                    return Err(bad("code: co_code is malformed"));
                }
                let kinds = self.data(&o(O_LPKINDS));
                let nlocals = kinds.iter().filter(|&&k| k & CO_FAST_LOCAL != 0).count() as i32;
                // C int arithmetic; CPython builds with -fwrapv.
                let nplain = nlocals
                    .wrapping_sub(argc)
                    .wrapping_sub(kwonly)
                    .wrapping_sub(i32::from(flags & CO_VARARGS != 0))
                    .wrapping_sub(i32::from(flags & CO_VARKEYWORDS != 0));
                if nplain < 0 {
                    return Err(bad("code: co_varnames is too small"));
                }
                // _PyCode_New: intern_strings(names), constants, localsplus.
                names_check(O_NAMES)?;
                consts_check()?;
                names_check(O_LPNAMES)?;
                if let Some(q) = r.quicken {
                    if let Some(at) = quicken_crash_at(code, q) {
                        return Err(MarshalError::WouldCrash {
                            reason: "instrumented opcode in co_code segfaults quickening",
                            offset: o(O_CODE).pos + at,
                        });
                    }
                }
            }
        }
        // hash(code) hashes co_consts (every other hashed field is a tuple of
        // str, bytes or str).
        let consts = o(O_CONSTS);
        Ok(Val::new(Kind::Code, cs.start, 0, 0).with(consts.flags() & HASHABLE, consts.culprit()))
    }

    // -- summary ------------------------------------------------------------

    fn data(&self, v: &Val) -> &[u8] {
        let end = v.pos.saturating_add(v.len() as usize).min(self.body.len());
        &self.body[v.pos.min(end)..end]
    }

    fn text(&self, v: &Val) -> String {
        let bytes = self.data(v);
        if v.has(LATIN1) {
            bytes.iter().map(|&b| char::from(b)).collect()
        } else {
            String::from_utf8_lossy(bytes).into_owned()
        }
    }

    /// Re-read the items of a (validated) name tuple: each is a string object
    /// or a reference to one.
    fn name_tuple(&self, t: &Val) -> Vec<String> {
        let mut out = Vec::with_capacity(t.len() as usize);
        let mut p = t.pos;
        for _ in 0..t.len() {
            let Some((v, next)) = self.string_at(p) else {
                break;
            };
            out.push(self.text(&v));
            p = next;
        }
        out
    }

    /// The string object starting at `p` (following `'r'`/`'R'`).
    fn string_at(&self, p: usize) -> Option<(Val, usize)> {
        let b = self.body;
        let code = *b.get(p)?;
        let ty = if self.r.refs { code & !FLAG_REF } else { code };
        let i32_at = |q: usize| -> Option<i32> {
            let s = b.get(q..q + 4)?;
            Some(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        };
        match ty {
            b'r' if self.r.refs => {
                let i = usize::try_from(i32_at(p + 1)?).ok()?;
                Some((*self.slots.get(i)?, p + 5))
            }
            b'R' if self.r.py2 => {
                let i = usize::try_from(i32_at(p + 1)?).ok()?;
                Some((*self.interned.get(i)?, p + 5))
            }
            b'z' | b'Z' => {
                let n = *b.get(p + 1)?;
                let v = Val::new(Kind::Str, p + 2, u32::from(n), LATIN1);
                Some((v, p + 2 + usize::from(n)))
            }
            b'a' | b'A' | b'u' | b't' | b's' => {
                let n = usize::try_from(i32_at(p + 1)?).ok()?;
                let flags = if matches!(ty, b'a' | b'A') { LATIN1 } else { 0 };
                let v = Val::new(Kind::Str, p + 5, n as u32, flags);
                Some((v, p + 5 + n))
            }
            _ => None,
        }
    }

    fn summary(&self, cs: &CodeState) -> CodeSummary {
        let names = self.name_tuple(&cs.objs[O_NAMES]);
        let mut stored: Vec<String> = Vec::new();
        let code = self.data(&cs.objs[O_CODE]);
        for_each_store(code, &self.dialect.opcode_facts(), |arg| {
            if let Some(n) = names.get(arg as usize) {
                if !stored.contains(n) {
                    stored.push(n.clone());
                }
            }
        });
        CodeSummary {
            filename: self.text(&cs.objs[O_FILENAME]),
            name: self.text(&cs.objs[O_NAME]),
            names,
            stored_names: stored,
            code_objects: self.code_count,
        }
    }
}

/// The error of hashing an unhashable value whose first unhashable part is
/// `culprit`.  A tuple culprit is one that (transitively) contains itself or
/// is still being built: hashing it recurses without end or dereferences a
/// NULL item.
fn unhashable(culprit: Kind, offset: usize, py2: bool) -> MarshalError {
    if culprit == Kind::Tuple {
        MarshalError::WouldCrash {
            reason: "hashing a tuple that contains itself or is still being built",
            offset,
        }
    } else {
        MarshalError::Unhashable {
            kind: culprit.name(py2),
            offset,
        }
    }
}

/// Where (byte offset into `code`) 3.12/3.13's `_PyCode_Quicken` would meet
/// an opcode that dereferences monitoring data a fresh code object lacks.
fn quicken_crash_at(code: &[u8], q: &Quicken) -> Option<usize> {
    // Fast, vectorisable pre-check: most code objects contain no byte that
    // could be a crashing opcode at all (opcode or argument).
    let [x, y] = q.crash;
    let maybe = code
        .chunks(64)
        .any(|c| c.iter().fold(false, |acc, &b| acc | (b == x) | (b == y)));
    if !maybe {
        return None;
    }
    let mut i = 0;
    while let Some(&op) = code.get(i) {
        let step = q.table[usize::from(op)];
        if step == CRASH {
            return Some(i);
        }
        i += 2 * (1 + usize::from(step));
    }
    None
}

/// Call `f` with the argument of every `STORE_NAME`/`STORE_GLOBAL`, decoding
/// instructions the way `dis` does for the series.
fn for_each_store(code: &[u8], facts: &OpcodeFacts, mut f: impl FnMut(u32)) {
    let is_store = |op: u8| op == facts.store_name || op == facts.store_global;
    if !facts.wordcode {
        let mut i = 0;
        let mut ext: u32 = 0;
        while i < code.len() {
            let op = code[i];
            if op < facts.have_argument {
                i += 1;
                continue;
            }
            let (Some(&lo), Some(&hi)) = (code.get(i + 1), code.get(i + 2)) else {
                break;
            };
            let arg = u32::from(lo) | u32::from(hi) << 8 | ext;
            i += 3;
            if op == facts.extended_arg {
                ext = arg << 16;
                continue;
            }
            ext = 0;
            if is_store(op) {
                f(arg);
            }
        }
        return;
    }
    let units = code.len() / 2;
    let mut i = 0;
    let mut ext: u32 = 0;
    while i < units {
        let op = code[2 * i];
        let arg = u32::from(code[2 * i + 1]);
        i += 1;
        match facts.inline_caches {
            Some(t) => i += usize::from(t[usize::from(op)]),
            // No verified table (3.14): skip CACHE units, which marshal
            // always writes as opcode 0.
            None if op == 0 => continue,
            None => {}
        }
        if op == facts.extended_arg {
            ext = (ext | arg) << 8;
            continue;
        }
        let full = ext | arg;
        ext = 0;
        if op >= facts.have_argument && is_store(op) {
            f(full);
        }
    }
}

/// Python's strict UTF-8 decoder with `surrogatepass` (2.7's decoder accepts
/// the same set): RFC 3629 UTF-8 plus encoded lone surrogates `ED A0..BF xx`.
fn check_utf8(b: &[u8], offset: usize) -> Res<()> {
    let mut i = 0;
    loop {
        match std::str::from_utf8(&b[i..]) {
            Ok(_) => return Ok(()),
            Err(e) => {
                let j = i + e.valid_up_to();
                let surrogate = b.len() - j >= 3
                    && b[j] == 0xED
                    && (0xA0..=0xBF).contains(&b[j + 1])
                    && (0x80..=0xBF).contains(&b[j + 2]);
                if !surrogate {
                    return Err(MarshalError::BadUtf8 {
                        byte: b[j],
                        position: j,
                        offset: offset + j,
                    });
                }
                i = j + 3;
            }
        }
    }
}

/// `PyOS_string_to_double(s, NULL, NULL)` on the NUL-terminated buffer that
/// `r_float_str` builds: `_Py_dg_strtod` (no leading whitespace, no `_`, no
/// hex) must consume everything up to the first NUL, or else the whole text
/// must be `[+-](inf|infinity|nan)` in any case.  Overflow yields ±inf and is
/// accepted.
fn float_repr_ok(s: &[u8]) -> bool {
    let s = match s.iter().position(|&c| c == 0) {
        Some(i) => &s[..i],
        None => s,
    };
    let digits = |mut i: usize| {
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    let int_end = digits(i);
    let mut ndigits = int_end - i;
    i = int_end;
    if s.get(i) == Some(&b'.') {
        let frac_end = digits(i + 1);
        ndigits += frac_end - (i + 1);
        if ndigits > 0 {
            i = frac_end;
        }
    }
    if ndigits == 0 {
        return inf_or_nan(s);
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_end = digits(j);
        if exp_end > j {
            i = exp_end;
        }
    }
    i == s.len()
}

fn inf_or_nan(s: &[u8]) -> bool {
    let s = match s.first() {
        Some(b'+' | b'-') => &s[1..],
        _ => s,
    };
    s.eq_ignore_ascii_case(b"inf")
        || s.eq_ignore_ascii_case(b"infinity")
        || s.eq_ignore_ascii_case(b"nan")
}

impl fmt::Display for CodeLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodeLayout::Py27 => "2.7",
            CodeLayout::Py30 => "3.0-3.7",
            CodeLayout::Py38 => "3.8-3.10",
            CodeLayout::Py311 => "3.11+",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const M27: u16 = 62211;
    const M33: u16 = 3230;
    const M34: u16 = 3310;
    const M36: u16 = 3379;
    const M37: u16 = 3394;
    const M38: u16 = 3413;
    const M39: u16 = 3425;
    const M310: u16 = 3439;
    const M311: u16 = 3495;
    const M312: u16 = 3531;
    const M313: u16 = 3571;
    const M314: u16 = 3627;
    const ALL: [u16; 12] = [
        M27, M33, M34, M36, M37, M38, M39, M310, M311, M312, M313, M314,
    ];

    fn d(magic: u16) -> Dialect {
        Dialect::cpython(magic).expect("known magic")
    }

    fn le(n: i32) -> [u8; 4] {
        n.to_le_bytes()
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// Hand-built bodies for one dialect.
    struct B {
        d: Dialect,
    }

    #[derive(Clone)]
    struct Spec {
        argc: i32,
        posonly: i32,
        kwonly: i32,
        nlocals: i32,
        stack: i32,
        flags: i32,
        code: Option<Vec<u8>>,
        consts: Option<Vec<u8>>,
        names: Option<Vec<u8>>,
        varnames: Option<Vec<u8>>,
        cellvars: Option<Vec<u8>>,
        filename: Option<Vec<u8>>,
        name: Option<Vec<u8>>,
        qualname: Option<Vec<u8>>,
        lnotab: Option<Vec<u8>>,
        exctable: Option<Vec<u8>>,
        lpnames: Option<Vec<u8>>,
        lpkinds: Option<Vec<u8>>,
    }

    fn spec() -> Spec {
        Spec {
            argc: 0,
            posonly: 0,
            kwonly: 0,
            nlocals: 0,
            stack: 1,
            flags: 64,
            code: None,
            consts: None,
            names: None,
            varnames: None,
            cellvars: None,
            filename: None,
            name: None,
            qualname: None,
            lnotab: None,
            exctable: None,
            lpnames: None,
            lpkinds: None,
        }
    }

    impl B {
        fn new(magic: u16) -> B {
            B { d: d(magic) }
        }
        fn py2(&self) -> bool {
            self.d.version().0 == 2
        }
        fn bytes(&self, b: &[u8]) -> Vec<u8> {
            cat(&[b"s", &le(b.len() as i32), b])
        }
        fn text(&self, t: &[u8]) -> Vec<u8> {
            cat(&[b"u", &le(t.len() as i32), t])
        }
        fn ident(&self, t: &str) -> Vec<u8> {
            if self.py2() {
                self.bytes(t.as_bytes())
            } else {
                self.text(t.as_bytes())
            }
        }
        fn tuple(&self, items: &[Vec<u8>]) -> Vec<u8> {
            let mut v = cat(&[b"(", &le(items.len() as i32)]);
            for i in items {
                v.extend_from_slice(i);
            }
            v
        }
        fn list(&self, items: &[Vec<u8>]) -> Vec<u8> {
            let mut v = self.tuple(items);
            v[0] = b'[';
            v
        }
        fn nest(&self, depth: usize, leaf: &[u8]) -> Vec<u8> {
            let mut v = Vec::new();
            for _ in 0..depth {
                v.extend_from_slice(b"(");
                v.extend_from_slice(&le(1));
            }
            v.extend_from_slice(leaf);
            v
        }
        fn code(&self, s: &Spec) -> Vec<u8> {
            let o = |x: &Option<Vec<u8>>, dflt: Vec<u8>| x.clone().unwrap_or(dflt);
            let dflt_code = if self.py2() {
                self.bytes(b"d\x00\x00S")
            } else {
                self.bytes(b"d\x00S\x00")
            };
            let code = o(&s.code, dflt_code);
            let consts = o(&s.consts, self.tuple(&[b"N".to_vec()]));
            let names = o(&s.names, self.tuple(&[]));
            let filename = o(&s.filename, self.ident("f.py"));
            let name = o(&s.name, self.ident("<module>"));
            let lnotab = o(&s.lnotab, self.bytes(b""));
            let mut v = b"c".to_vec();
            let ints: Vec<i32> = match self.d.code_layout() {
                CodeLayout::Py27 => vec![s.argc, s.nlocals, s.stack, s.flags],
                CodeLayout::Py30 => vec![s.argc, s.kwonly, s.nlocals, s.stack, s.flags],
                CodeLayout::Py38 => vec![s.argc, s.posonly, s.kwonly, s.nlocals, s.stack, s.flags],
                CodeLayout::Py311 => vec![s.argc, s.posonly, s.kwonly, s.stack, s.flags],
            };
            for x in ints {
                v.extend_from_slice(&le(x));
            }
            v.extend_from_slice(&code);
            v.extend_from_slice(&consts);
            v.extend_from_slice(&names);
            if self.d.code_layout() == CodeLayout::Py311 {
                v.extend_from_slice(&o(&s.lpnames, self.tuple(&[])));
                v.extend_from_slice(&o(&s.lpkinds, self.bytes(b"")));
                v.extend_from_slice(&filename);
                v.extend_from_slice(&name);
                v.extend_from_slice(&o(&s.qualname, name.clone()));
                v.extend_from_slice(&le(1));
                v.extend_from_slice(&lnotab);
                v.extend_from_slice(&o(&s.exctable, self.bytes(b"")));
            } else {
                v.extend_from_slice(&o(&s.varnames, self.tuple(&[])));
                v.extend_from_slice(&self.tuple(&[]));
                v.extend_from_slice(&o(&s.cellvars, self.tuple(&[])));
                v.extend_from_slice(&filename);
                v.extend_from_slice(&name);
                v.extend_from_slice(&le(1));
                v.extend_from_slice(&lnotab);
            }
            v
        }
        /// A code object whose co_consts holds `value`.
        fn holding(&self, value: Vec<u8>) -> Vec<u8> {
            self.code(&Spec {
                consts: Some(self.tuple(&[value])),
                ..spec()
            })
        }
        fn check(&self, body: &[u8]) -> Result<(), MarshalError> {
            let r = validate(body, self.d);
            assert_eq!(
                r.is_ok(),
                summarize(body, self.d).is_ok(),
                "validate and summarize must agree"
            );
            r
        }
    }

    fn not_code(r: Result<(), MarshalError>) -> &'static str {
        match r {
            Err(MarshalError::NotCode { kind, offset: 0 }) => kind,
            other => panic!("expected NotCode, got {other:?}"),
        }
    }

    // -- dialects -----------------------------------------------------------

    #[test]
    fn magic_numbers_map_to_series_and_layouts() {
        let cases = [
            (62211, (2, 7), CodeLayout::Py27),
            (62212, (2, 7), CodeLayout::Py27),
            (62171, (2, 7), CodeLayout::Py27),
            (3131, (3, 0), CodeLayout::Py30),
            (3151, (3, 1), CodeLayout::Py30),
            (3180, (3, 2), CodeLayout::Py30),
            (3230, (3, 3), CodeLayout::Py30),
            (3310, (3, 4), CodeLayout::Py30),
            (3351, (3, 5), CodeLayout::Py30),
            (3379, (3, 6), CodeLayout::Py30),
            (3394, (3, 7), CodeLayout::Py30),
            (3401, (3, 8), CodeLayout::Py30),
            (3413, (3, 8), CodeLayout::Py38),
            (3425, (3, 9), CodeLayout::Py38),
            (3439, (3, 10), CodeLayout::Py38),
            (3495, (3, 11), CodeLayout::Py311),
            (3531, (3, 12), CodeLayout::Py311),
            (3571, (3, 13), CodeLayout::Py311),
            (3608, (3, 14), CodeLayout::Py311),
            (3627, (3, 14), CodeLayout::Py311),
        ];
        for (magic, version, layout) in cases {
            let dl = d(magic);
            assert_eq!(dl.version(), version, "magic {magic}");
            assert_eq!(dl.code_layout(), layout, "magic {magic}");
            assert_eq!(dl.magic(), magic);
        }
        for magic in [
            0, 1, 20121, 62161, 62213, 62210, 3000, 3130, 3450, 3459, 3650, 3700, 65535,
        ] {
            assert_eq!(Dialect::cpython(magic), None, "magic {magic}");
        }
        assert_eq!(CodeLayout::Py38.to_string(), "3.8-3.10");
    }

    #[test]
    fn opcode_facts_per_series() {
        let f = d(M27).opcode_facts();
        assert_eq!((f.wordcode, f.store_name, f.extended_arg), (false, 90, 145));
        assert_eq!(d(62171).opcode_facts().extended_arg, 143);
        assert_eq!(d(3131).opcode_facts().extended_arg, 143);
        assert_eq!(d(3310).opcode_facts().extended_arg, 144);
        assert!(!d(3361).opcode_facts().wordcode);
        assert!(d(3370).opcode_facts().wordcode);
        let f = d(M313).opcode_facts();
        assert_eq!(
            (
                f.store_name,
                f.store_global,
                f.extended_arg,
                f.have_argument
            ),
            (114, 113, 71, 44)
        );
        assert_eq!(f.quicken_crash, &[247, 254]);
        assert_eq!(d(M312).opcode_facts().quicken_crash, &[253, 254]);
        // LOAD_ATTR has 9 cache units in 3.12 (opcode 106), 10 in 3.11
        // LOAD_METHOD (160).
        assert_eq!(d(M312).opcode_facts().inline_caches.unwrap()[106], 9);
        assert_eq!(d(M311).opcode_facts().inline_caches.unwrap()[160], 10);
        assert!(d(M310).opcode_facts().inline_caches.is_none());
        assert!(d(M314).opcode_facts().inline_caches.is_none());
    }

    // -- real bodies ----------------------------------------------------------

    // SOURCE = "import os\ndef f(x, *a, **k):\n    global G\n    G = x\n
    //           return [i for i in a]\nclass C:\n    y = 1.5\nz = f(1)\n"
    // (magic, code objects, hex body)
    /// `marshal.dumps(compile(SOURCE, "m.py", "exec"))` from CPython 2.7.18.
    const REAL_27: (u16, usize, &str) = (
        62211,
        3,
        concat!(
            "630000000000000000030000004000000073380000006400006401006c00005a00006402008400005a01006403006406",
            "00640400840000830000595a02006501006405008301005a030064010053280700000069ffffffff4e63010000000400",
            "0000030000004f000000731d0000007c00006100006700007c0100445d0c007d03007c03005e0200710d005328010000",
            "004e2801000000740100000047280400000074010000007874010000006174010000006b740100000069280000000028",
            "0000000073040000006d2e70797401000000660200000073040000000002060174010000004363000000000000000001",
            "00000042000000730e0000006500005a01006400005a02005253280100000067000000000000f83f2803000000740800",
            "00005f5f6e616d655f5f740a0000005f5f6d6f64756c655f5f7401000000792800000000280000000028000000007304",
            "0000006d2e70795206000000060000007302000000060169010000002800000000280400000074020000006f73520500",
            "0000520600000074010000007a28000000002800000000280000000073040000006d2e707974080000003c6d6f64756c",
            "653e0100000073060000000c0109041302",
        ),
    );
    /// `marshal.dumps(compile(SOURCE, "m.py", "exec"))` from CPython 3.6.15.
    const REAL_36: (u16, usize, &str) = (
        3379,
        4,
        concat!(
            "e30000000000000000000000000300000040000000732a000000640064016c005a006402640384005a01470064046405",
            "8400640583025a026501640683015a03640153002907e9000000004e63010000000000000003000000020000004f0000",
            "0073120000007c0061006401640284007c0144008301530029034e630100000000000000020000000300000053000000",
            "731000000067007c005d087d017c01910271045300a90072020000002902da022e30da016972020000007202000000fa",
            "046d2e7079fa0a3c6c697374636f6d703e05000000730200000006007a15662e3c6c6f63616c733e2e3c6c697374636f",
            "6d703e2901da01472903da0178da0161da016b720200000072020000007205000000da01660200000073040000000002",
            "0401720b000000630000000000000000000000000100000040000000731000000065005a0164005a0264015a03640253",
            "002903da014367000000000000f83f4e2904da085f5f6e616d655f5fda0a5f5f6d6f64756c655f5fda0c5f5f7175616c",
            "6e616d655f5fda01797202000000720200000072020000007205000000720c0000000600000073020000000801720c00",
            "0000e9010000002904da026f73720b000000720c000000da017a7202000000720200000072020000007205000000da08",
            "3c6d6f64756c653e010000007306000000080108040e02",
        ),
    );
    /// `marshal.dumps(compile(SOURCE, "m.py", "exec"))` from CPython 3.8.18.
    const REAL_38: (u16, usize, &str) = (
        3413,
        4,
        concat!(
            "e3000000000000000000000000000000000300000040000000732a000000640064016c005a006402640384005a014700",
            "640464058400640583025a026501640683015a03640153002907e9000000004e63010000000000000000000000030000",
            "00020000004f00000073120000007c0061006401640284007c0144008301530029034e63010000000000000000000000",
            "020000000300000053000000731000000067007c005d087d017c01910271045300a90072020000002902da022e30da01",
            "6972020000007202000000fa046d2e7079da0a3c6c697374636f6d703e050000007304000000060002007a15662e3c6c",
            "6f63616c733e2e3c6c697374636f6d703e2901da01472903da0178da0161da016b720200000072020000007205000000",
            "da016602000000730400000000020401720b000000630000000000000000000000000000000001000000400000007310",
            "00000065005a0164005a0264015a03640253002903da014367000000000000f83f4e2904da085f5f6e616d655f5fda0a",
            "5f5f6d6f64756c655f5fda0c5f5f7175616c6e616d655f5fda0179720200000072020000007202000000720500000072",
            "0c0000000600000073020000000801720c000000e9010000002904da026f73720b000000720c000000da017a72020000",
            "00720200000072020000007205000000da083c6d6f64756c653e010000007306000000080108040e02",
        ),
    );
    /// `marshal.dumps(compile(SOURCE, "m.py", "exec"))` from CPython 3.11.7.
    const REAL_311: (u16, usize, &str) = (
        3495,
        4,
        concat!(
            "e30000000000000000000000000400000000000000f3440000009700640064016c005a00640284005a01020047006403",
            "84006404a6020000ab0200000000000000005a02020065016405a6010000ab0100000000000000005a03640153002906",
            "e9000000004e63010000000000000000000000020000000f000000f31e00000097007c006100640184007c014400a600",
            "0000ab000000000000000000530029024e630100000000000000000000000300000013000000f312000000970067007c",
            "005d047d017c0191028c055300a90072050000002902da022e30da016973020000002020fa046d2e7079fa0a3c6c6973",
            "74636f6d703e7a15662e3c6c6f63616c733e2e3c6c697374636f6d703e0500000073120000008000883e883e883e9021",
            "8841883e883e883ef3000000002901da01472903da0178da0161da016b73030000002020207208000000da0166720f00",
            "00000200000073170000008000e008098041d80b19883e9071883e893e8c3ed00419720a000000630000000000000000",
            "000000000100000000000000f312000000970065005a0164005a0264015a03640253002903da014367000000000000f8",
            "3f4e2904da085f5f6e616d655f5fda0a5f5f6d6f64756c655f5fda0c5f5f7175616c6e616d655f5fda01797205000000",
            "720a00000072080000007211000000721100000006000000731300000080008000800080008000d8080b804180418041",
            "720a0000007211000000e9010000002904da026f73720f0000007211000000da017a7205000000720a00000072080000",
            "00fa083c6d6f64756c653e7219000000010000007356000000f003010101d80009800980098009f00203011af0000301",
            "1af00003011af00801010cf00001010cf00001010cf00001010cf00001010cf10001010cf40001010cf00001010ce004",
            "058041806181448444800180018001720a000000",
        ),
    );
    /// `marshal.dumps(compile(SOURCE, "m.py", "exec"))` from CPython 3.12.1.
    const REAL_312: (u16, usize, &str) = (
        3531,
        3,
        concat!(
            "e30000000000000000000000000400000000000000f3360000009700640064016c005a00640284005a01020047006403",
            "84006404ab020000000000005a02020065016405ab010000000000005a0379012906e9000000004e6301000000000000",
            "0000000000040000000f000000f33000000097007c0061007c0144008f036302670063025d0400007d037c0391028c06",
            "040063027d0353006302010063027d03770029014e2901da01472904da0178da0161da016bda01697304000000202020",
            "20fa046d2e7079da0166720a0000000200000073180000008000e008098041d817188e3e90218a418a3ed00419f98a3e",
            "730400000087091304630000000000000000000000000100000000000000f310000000970065005a0164005a0264015a",
            "0379022903da014367000000000000f83f4e2904da085f5f6e616d655f5fda0a5f5f6d6f64756c655f5fda0c5f5f7175",
            "616c6e616d655f5fda0179a900f3000000007209000000720c000000720c0000000600000073070000008400d8080b81",
            "417212000000720c000000e9010000002904da026f73720a000000720c000000da017a72110000007212000000720900",
            "0000fa083c6d6f64756c653e7216000000010000007320000000f003010101db0009f20203011af70801010cf1000101",
            "0ce104058061834481017212000000",
        ),
    );
    /// `marshal.dumps(compile(SOURCE, "m.py", "exec"))` from CPython 3.13.0.
    const REAL_313: (u16, usize, &str) = (
        3571,
        3,
        concat!(
            "e30000000000000000000000000400000000000000f3360000009500530053014b00720053021a007201180022005303",
            "1a005304350200000000000072025c01220053053501000000000000720367012906e9000000004e6301000000000000",
            "0000000000040000000f000000f33200000095005500710055011300560373022f007302480400006f3350024d060000",
            "0b00200073026e0324007302200073026e03660029014e2901da01472904da0178da0161da016bda0169730400000020",
            "202020da046d2e7079da0166720a00000002000000731c0000008000e008098041d917188b3e917190218a419171893e",
            "d00419f98a3e7304000000870a1404630000000000000000000000000100000000000000f31800000095005c00720153",
            "00720253017203530272045303720567042905da0143e90600000067000000000000f83fa9004e2906da085f5f6e616d",
            "655f5fda0a5f5f6d6f64756c655f5fda0c5f5f7175616c6e616d655f5fda0f5f5f66697273746c696e656e6f5f5fda01",
            "79da155f5f7374617469635f617474726962757465735f5f720e000000f3000000007209000000720c000000720c0000",
            "000600000073070000008600d8080b83417215000000720c000000e9010000002904da026f73720a000000720c000000",
            "da017a720e00000072150000007209000000da083c6d6f64756c653e7219000000010000007320000000f003010101db",
            "0009f20203011af70801010cf10001010ce104058061834481017215000000",
        ),
    );

    const REAL: [(u16, usize, &str); 6] = [REAL_27, REAL_36, REAL_38, REAL_311, REAL_312, REAL_313];

    #[test]
    fn real_bodies_validate_and_summarize() {
        for (magic, codes, hex) in REAL {
            let body = unhex(hex);
            validate(&body, d(magic)).unwrap();
            let s = summarize(&body, d(magic)).unwrap();
            assert_eq!(s.filename, "m.py");
            assert_eq!(s.name, "<module>");
            assert_eq!(s.names, ["os", "f", "C", "z"]);
            assert_eq!(s.stored_names, ["os", "f", "C", "z"]);
            assert_eq!(s.code_objects, codes, "magic {magic}");
            // Trailing bytes after the top-level object are ignored.
            let mut longer = body.clone();
            longer.extend_from_slice(b"\x00garbage\xff");
            assert_eq!(summarize(&longer, d(magic)).unwrap(), s);
            // Any proper prefix is cut short.
            for cut in [0, 1, body.len() / 2, body.len() - 1] {
                assert!(validate(&body[..cut], d(magic)).is_err(), "cut {cut}");
            }
            // A real body read with the wrong series' layout is rejected.
            let other = if magic == M27 { M313 } else { M27 };
            assert!(validate(&body, d(other)).is_err());
        }
    }

    // -- type codes -----------------------------------------------------------

    #[test]
    fn every_scalar_type_code_parses() {
        let b = B::new(M313);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"N".to_vec(), "NoneType"),
            (b"F".to_vec(), "bool"),
            (b"T".to_vec(), "bool"),
            (b"S".to_vec(), "type"),
            (b".".to_vec(), "ellipsis"),
            (cat(&[b"i", &le(-5)]), "int"),
            (b"I\x01\x02\x03\x04\x05\x06\x07\x08".to_vec(), "int"),
            (cat(&[b"l", &le(0)]), "int"),
            (cat(&[b"l", &le(-2), b"\x01\x00\xff\x7f"]), "int"),
            (b"f\x031.5".to_vec(), "float"),
            (cat(&[b"g", &[0u8; 8]]), "float"),
            (b"x\x011\x04-inf".to_vec(), "complex"),
            (cat(&[b"y", &[0u8; 16]]), "complex"),
            (b.bytes(b"\x00\xff"), "bytes"),
            (b.text("é".as_bytes()), "str"),
            (cat(&[b"t", &le(1), b"a"]), "str"),
            (cat(&[b"a", &le(2), b"\xff\x80"]), "str"),
            (cat(&[b"A", &le(1), b"x"]), "str"),
            (b"z\x02ab".to_vec(), "str"),
            (b"Z\x00".to_vec(), "str"),
            (b.tuple(&[b"N".to_vec()]), "tuple"),
            (b")\x02NN".to_vec(), "tuple"),
            (b.list(&[b"N".to_vec()]), "list"),
            (b"{NN0".to_vec(), "dict"),
            (cat(&[b"<", &le(1), b"N"]), "set"),
            (cat(&[b">", &le(2), b"NT"]), "frozenset"),
            (cat(&[b">", &le(0)]), "frozenset"),
            (
                b.tuple(&[b"\xe9\x05\x00\x00\x00".to_vec(), cat(&[b"r", &le(0)])]),
                "tuple",
            ),
        ];
        for (body, kind) in cases {
            assert_eq!(not_code(b.check(&body)), kind, "{body:x?}");
        }
        assert_eq!(
            b.check(b"0"),
            Err(MarshalError::NullObject {
                container: "object",
                offset: 0
            })
        );
        // 2.7 names its string types differently and has 'R'.
        let b = B::new(M27);
        assert_eq!(not_code(b.check(&b.bytes(b"x"))), "str");
        assert_eq!(not_code(b.check(&b.text(b"x"))), "unicode");
        let r = b.tuple(&[cat(&[b"t", &le(1), b"a"]), cat(&[b"R", &le(0)])]);
        assert_eq!(not_code(b.check(&r)), "tuple");
        // 3.14 reads slices.
        assert_eq!(not_code(B::new(M314).check(b":NNN")), "slice");
        assert_eq!(
            not_code(B::new(M314).check(b":N\xe9\x01\x00\x00\x00N")),
            "slice"
        );
    }

    #[test]
    fn unknown_type_codes_per_series() {
        let unknown = |magic: u16, body: &[u8], code: u8, offset: usize| {
            assert_eq!(
                validate(body, d(magic)),
                Err(MarshalError::UnknownType { code, offset }),
                "magic {magic} body {body:x?}"
            );
        };
        for magic in ALL {
            unknown(magic, b"?", b'?', 0);
            unknown(magic, b"(\x01\x00\x00\x00Q", b'Q', 5);
        }
        for magic in [M27, M33] {
            for code in [b'a', b'A', b'z', b'Z', b')', b'r', 0xce, 0xa9] {
                unknown(magic, &[code, 0, 0, 0, 0, 0], code, 0);
            }
        }
        unknown(M33, b"t\x01\x00\x00\x00a", b't', 0);
        for magic in [M33, M36, M313] {
            unknown(magic, b"R\x00\x00\x00\x00", b'R', 0);
        }
        for magic in [M27, M36, M312, M313] {
            unknown(magic, b":NNN", b':', 0);
        }
    }

    #[test]
    fn flag_ref_semantics() {
        let b = B::new(M313);
        // Singletons and NULL ignore FLAG_REF: nothing is registered.
        assert_eq!(not_code(b.check(b"\xce")), "NoneType");
        assert!(matches!(
            b.check(b"\xb0"),
            Err(MarshalError::NullObject { .. })
        ));
        let r = b.tuple(&[b"\xd4".to_vec(), cat(&[b"r", &le(0)])]);
        assert_eq!(
            b.check(&r),
            Err(MarshalError::InvalidReference {
                index: 0,
                offset: 6
            })
        );
        // 'r' with FLAG_REF is still just a reference.
        let r = b.tuple(&[cat(&[b"\xe9", &le(5)]), cat(&[b"\xf2", &le(0)])]);
        assert_eq!(not_code(b.check(&r)), "tuple");
        // Out of range and negative indices.
        for idx in [1, -1, i32::MAX] {
            let r = b.tuple(&[cat(&[b"\xe9", &le(5)]), cat(&[b"r", &le(idx)])]);
            assert_eq!(
                b.check(&r),
                Err(MarshalError::InvalidReference {
                    index: idx,
                    offset: 10
                })
            );
        }
        // Code objects and frozensets reserve their slot until finished.
        let mut c = b.holding(cat(&[b"r", &le(0)]));
        c[0] |= FLAG_REF;
        assert!(matches!(
            b.check(&c),
            Err(MarshalError::InvalidReference { index: 0, .. })
        ));
        let fs = cat(&[b"\xbe", &le(1), b"r", &le(0)]);
        assert!(matches!(
            b.check(&fs),
            Err(MarshalError::InvalidReference { index: 0, .. })
        ));
        // ... and are referable afterwards.
        let mut c = b.code(&spec());
        c[0] |= FLAG_REF;
        assert_eq!(
            not_code(b.check(&b.tuple(&[c, cat(&[b"r", &le(0)])]))),
            "tuple"
        );
        let fs = b.tuple(&[cat(&[b"\xbe", &le(1), b"N"]), cat(&[b"r", &le(0)])]);
        assert_eq!(not_code(b.check(&fs)), "tuple");
        // Tuples, lists and dicts register before their items.
        assert_eq!(
            not_code(b.check(&cat(&[b"\xa8", &le(1), b"r", &le(0)]))),
            "tuple"
        );
        assert_eq!(
            not_code(b.check(&cat(&[b"\xdb", &le(1), b"r", &le(0)]))),
            "list"
        );
        assert_eq!(
            not_code(b.check(&cat(&[b"\xfb", &b.text(b"k"), b"r", &le(0), b"0"]))),
            "dict"
        );
        // A code object that was abandoned (NULL field, before 3.11) never
        // fills its slot.
        let b = B::new(M310);
        let mut c = b.code(&Spec {
            lnotab: Some(b"0".to_vec()),
            ..spec()
        });
        c[0] |= FLAG_REF;
        let body = b.tuple(&[cat(&[b"{", &b.text(b"k"), &c]), cat(&[b"r", &le(0)])]);
        assert!(matches!(
            b.check(&body),
            Err(MarshalError::InvalidReference { index: 0, .. })
        ));
    }

    #[test]
    fn stringref_2_7() {
        let b = B::new(M27);
        let t = cat(&[b"t", &le(1), b"a"]);
        for (idx, ok) in [(0, true), (1, false), (-1, false)] {
            let body = b.tuple(&[t.clone(), cat(&[b"R", &le(idx)])]);
            if ok {
                assert_eq!(not_code(b.check(&body)), "tuple");
            } else {
                assert_eq!(
                    b.check(&body),
                    Err(MarshalError::StringRefOutOfRange {
                        index: idx,
                        offset: 11
                    })
                );
            }
        }
        // Only 't' feeds the list, not 's'.
        let body = b.tuple(&[b.bytes(b"a"), cat(&[b"R", &le(0)])]);
        assert!(matches!(
            b.check(&body),
            Err(MarshalError::StringRefOutOfRange { .. })
        ));
        // Names given by string reference.
        let names = b.tuple(&[t, cat(&[b"R", &le(0)])]);
        let s = summarize(
            &b.code(&Spec {
                names: Some(names),
                ..spec()
            }),
            b.d,
        )
        .unwrap();
        assert_eq!(s.names, ["a", "a"]);
    }

    #[test]
    fn sizes_and_truncation() {
        let b = B::new(M313);
        for (body, what) in [
            (cat(&[b"(", &le(-1)]), "tuple"),
            (cat(&[b"[", &le(-1)]), "list"),
            (cat(&[b"<", &le(-1)]), "set"),
            (cat(&[b">", &le(i32::MIN)]), "set"),
            (cat(&[b"s", &le(-1)]), "bytes object"),
            (cat(&[b"u", &le(-1)]), "string"),
            (cat(&[b"a", &le(-7)]), "string"),
        ] {
            assert_eq!(
                b.check(&body),
                Err(MarshalError::SizeOutOfRange { what, offset: 0 })
            );
        }
        assert_eq!(
            B::new(M27).check(&cat(&[b"s", &le(-1)])),
            Err(MarshalError::SizeOutOfRange {
                what: "string",
                offset: 0
            })
        );
        // Hostile sizes fail at the end of the data, without allocating or
        // looping by the declared size.
        for body in [
            cat(&[b"(", &le(i32::MAX), b"NNN"]),
            cat(&[b"[", &le(i32::MAX), b"NNN"]),
            cat(&[b"<", &le(i32::MAX), b"NNN"]),
        ] {
            assert_eq!(b.check(&body), Err(MarshalError::EofObject { offset: 8 }));
        }
        for body in [
            cat(&[b"s", &le(i32::MAX), b"abc"]),
            cat(&[b"u", &le(0x7000_0000), b"abc"]),
            cat(&[b"l", &le(i32::MAX), b"\x01\x00"]),
        ] {
            assert!(matches!(b.check(&body), Err(MarshalError::TooShort { .. })));
        }
        assert_eq!(b.check(b""), Err(MarshalError::EofObject { offset: 0 }));
        assert_eq!(
            b.check(b"i\x01\x02"),
            Err(MarshalError::TooShort { offset: 1 })
        );
        assert_eq!(
            b.check(b"z\x05ab"),
            Err(MarshalError::TooShort { offset: 2 })
        );
        assert_eq!(b.check(b"z"), Err(MarshalError::TooShort { offset: 1 }));
        assert_eq!(b.check(b")"), Err(MarshalError::TooShort { offset: 1 }));
        assert_eq!(
            b.check(b"f\xff111"),
            Err(MarshalError::TooShort { offset: 2 })
        );
        assert_eq!(b.check(b"g\x00"), Err(MarshalError::TooShort { offset: 1 }));
        assert_eq!(
            b.check(b"I\x00\x00\x00\x00"),
            Err(MarshalError::TooShort { offset: 1 })
        );
        // A truncated code object header.
        assert_eq!(
            b.check(b"c\x00\x00"),
            Err(MarshalError::TooShort { offset: 1 })
        );
        let c = b.code(&spec());
        for cut in 1..c.len() {
            assert!(b.check(&c[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn eof_inside_integers_of_2_7() {
        // 2.7's r_long/r_short read missing bytes as EOF (-1) and go on.
        let b = B::new(M27);
        assert_eq!(not_code(b.check(b"i")), "int");
        assert_eq!(not_code(b.check(b"i\x01\x02")), "int");
        assert_eq!(not_code(b.check(b"I\x01\x02\x03\x04\x05")), "int");
        assert_eq!(
            not_code(b.check(&cat(&[b"l", &le(2), b"\x01\x00\x01\x00"]))),
            "long"
        );
        assert_eq!(
            b.check(b"l\x01\x00"),
            Err(MarshalError::LongDigitOutOfRange { offset: 0 })
        );
        assert_eq!(
            b.check(&cat(&[b"l", &le(2), b"\x01\x00\x01"])),
            Err(MarshalError::LongDigitOutOfRange { offset: 0 })
        );
        for body in [&b"s\x01\x00"[..], b"(", b"u\x05", b"[\x00\x00\x00"] {
            assert!(
                matches!(b.check(body), Err(MarshalError::SizeOutOfRange { .. })),
                "{body:x?}"
            );
        }
        assert!(matches!(
            b.check(b"R\x00"),
            Err(MarshalError::StringRefOutOfRange { index: -256, .. })
        ));
        // The junk value of a truncated field never completes a code object.
        let c = b.code(&spec());
        for cut in 1..c.len() {
            assert!(b.check(&c[..cut]).is_err(), "cut {cut}");
        }
        // So does the 3.0-3.3 reader, which predates the 3.4 rewrite.
        assert_eq!(not_code(B::new(M33).check(b"i\x01")), "int");
        // 3.4+ raise at once.
        let b = B::new(M36);
        assert_eq!(b.check(b"i\x01"), Err(MarshalError::TooShort { offset: 1 }));
        assert_eq!(
            b.check(b"l\x01\x00"),
            Err(MarshalError::TooShort { offset: 1 })
        );
        assert_eq!(
            b.check(&cat(&[b"l", &le(1), b"\x01"])),
            Err(MarshalError::TooShort { offset: 5 })
        );
    }

    #[test]
    fn longs() {
        let b = B::new(M313);
        let long = |n: i32, digits: &[u8]| cat(&[b"l", &le(n), digits]);
        assert_eq!(not_code(b.check(&long(1, b"\xff\x7f"))), "int");
        assert_eq!(
            not_code(b.check(&long(3, b"\x01\x00\x00\x00\x01\x00"))),
            "int"
        );
        assert_eq!(
            b.check(&long(1, b"\x00\x80")),
            Err(MarshalError::LongDigitOutOfRange { offset: 0 })
        );
        // The bad digit is found before the end of the data.
        assert_eq!(
            b.check(&long(5, b"\x01\x00\x00\x80")),
            Err(MarshalError::LongDigitOutOfRange { offset: 0 })
        );
        for (n, digits) in [
            (1, &b"\x00\x00"[..]),
            (-1, b"\x00\x00"),
            (2, b"\x01\x00\x00\x00"),
        ] {
            assert_eq!(
                b.check(&long(n, digits)),
                Err(MarshalError::UnnormalizedLong { offset: 0 })
            );
        }
        assert_eq!(
            b.check(&long(i32::MIN, b"\x01\x00")),
            Err(MarshalError::LongSizeOutOfRange { offset: 0 })
        );
        assert_eq!(
            b.check(&long(3, b"\x01\x00")),
            Err(MarshalError::TooShort { offset: 7 })
        );
        // A negative count other than INT_MIN is a negative number.
        assert_eq!(
            not_code(b.check(&long(-3, b"\x01\x00\x02\x00\x03\x00"))),
            "int"
        );
    }

    #[test]
    fn text_floats() {
        let ok = [
            &b"1"[..],
            b"inf",
            b"-Infinity",
            b"nan",
            b"+nan",
            b"-nAn",
            b"1e5",
            b"1e500",
            b".5",
            b"5.",
            b"1\x002",
            b"+1",
            b"1.5E-3",
            b"00012",
            b"1e-99999",
            b"INF",
            b"1e5\x00junk",
            b"1e+5",
            b"-0",
        ];
        let bad = [
            &b" 1"[..],
            b"1 ",
            b"1e",
            b".",
            b"",
            b"1_0",
            b"0x10",
            b"-",
            b"1e+",
            b"infinit",
            b"nanx",
            b"\t1",
            b"1d",
            b"-.e1",
            b"+-1",
            b"1.2.3",
            b"\x00",
            b"1E",
            b"e5",
            b"inf inity",
        ];
        for magic in [M27, M36, M313] {
            let b = B::new(magic);
            for f in ok {
                let body = cat(&[b"f", &[f.len() as u8], f]);
                assert_eq!(not_code(b.check(&body)), "float", "{f:?}");
            }
            for f in bad {
                let body = cat(&[b"f", &[f.len() as u8], f]);
                assert_eq!(
                    b.check(&body),
                    Err(MarshalError::BadFloat { offset: 0 }),
                    "{f:?}"
                );
            }
            assert_eq!(
                b.check(b"x\x011\x01z"),
                Err(MarshalError::BadFloat { offset: 0 })
            );
        }
    }

    #[test]
    fn utf8_with_surrogatepass() {
        let ok = [
            &b"\xed\xa0\x80"[..],
            b"\xf0\x90\x80\x80",
            b"\xed\xbf\xbf",
            b"\xed\x9f\xbf",
            b"\xf4\x8f\xbf\xbf",
            b"\xe2\x82\xac",
            b"\xed\xa0\x80\xed\xb0\x80",
            b"",
            b"plain",
        ];
        let bad = [
            (&b"\xc0\x80"[..], 0),
            (b"\xf4\x90\x80\x80", 0),
            (b"\xf8\x88\x80\x80\x80", 0),
            (b"\xe0\x80\x80", 0),
            (b"\xc2", 0),
            (b"\xff", 0),
            (b"a\xed\xa0", 1),
            (b"ok\xed\xa0\x80\x80", 5),
        ];
        for magic in [M27, M33, M36, M313] {
            let b = B::new(magic);
            for t in ok {
                assert!(
                    not_code(b.check(&b.text(t))).ends_with("str") || b.py2(),
                    "{t:x?}"
                );
                assert!(matches!(
                    b.check(&b.text(t)),
                    Err(MarshalError::NotCode { .. })
                ));
            }
            for (t, pos) in bad {
                assert_eq!(
                    b.check(&b.text(t)),
                    Err(MarshalError::BadUtf8 {
                        byte: t[pos],
                        position: pos,
                        offset: 5 + pos
                    }),
                    "{t:x?}"
                );
            }
        }
        // 't' decodes the same way in 3.4+; the ASCII types take any byte.
        let b = B::new(M313);
        assert!(matches!(
            b.check(&cat(&[b"t", &le(1), b"\xff"])),
            Err(MarshalError::BadUtf8 { .. })
        ));
        assert_eq!(not_code(b.check(b"z\x02\xff\x80")), "str");
    }

    #[test]
    fn nulls() {
        let b = B::new(M313);
        let null = |container, offset| Err(MarshalError::NullObject { container, offset });
        assert_eq!(b.check(&b.tuple(&[b"0".to_vec()])), null("tuple", 5));
        assert_eq!(
            b.check(&b.list(&[b"N".to_vec(), b"0".to_vec()])),
            null("list", 6)
        );
        assert_eq!(b.check(&cat(&[b"<", &le(1), b"0"])), null("set", 5));
        assert_eq!(b.check(b"0"), null("object", 0));
        // A NULL key ends a dict; so does a NULL value in 3.x ...
        assert_eq!(not_code(b.check(b"{0")), "dict");
        let body = b.tuple(&[cat(&[b"{", &b.text(b"k"), b"0"]), b"N".to_vec()]);
        assert_eq!(not_code(b.check(&body)), "tuple");
        // ... while 2.7 skips the pair and keeps reading the dict.
        let b2 = B::new(M27);
        let body = b2.tuple(&[cat(&[b"{", &b2.text(b"k"), b"0"]), b"N".to_vec()]);
        assert_eq!(b2.check(&body), Err(MarshalError::EofObject { offset: 14 }));
        let body = cat(&[b"{", &b2.text(b"k"), b"0", &b2.text(b"k2"), b"N0"]);
        assert_eq!(not_code(b2.check(&body)), "dict");
    }

    #[test]
    fn null_code_fields() {
        for magic in ALL {
            let b = B::new(magic);
            let broken = b.code(&Spec {
                code: Some(b"0".to_vec()),
                ..spec()
            });
            let as_key = cat(&[b"{", &broken, b"N0"]);
            let in_tuple = b.tuple(std::slice::from_ref(&broken));
            if d(magic).code_layout() == CodeLayout::Py311 {
                let err = Err(MarshalError::NullObject {
                    container: "code object",
                    offset: 2 + 4 * 5,
                });
                assert_eq!(b.check(&as_key), err);
                assert!(matches!(
                    b.check(&in_tuple),
                    Err(MarshalError::NullObject {
                        container: "code object",
                        ..
                    })
                ));
            } else {
                // The code object is abandoned without an error: reading
                // resumes right after the NULL field.
                assert_eq!(not_code(b.check(&as_key)), "dict", "magic {magic}");
                assert_eq!(
                    b.check(&in_tuple),
                    Err(MarshalError::NullObject {
                        container: "tuple",
                        offset: 5
                    })
                );
            }
            assert!(b.check(&broken).is_err());
        }
    }

    #[test]
    fn hashability() {
        for magic in [M27, M36, M313] {
            let b = B::new(magic);
            let unhashable = |kind| Err(MarshalError::Unhashable { kind, offset: 1 });
            assert_eq!(
                b.check(&cat(&[b"{", &b.list(&[]), b"N0"])),
                unhashable("list")
            );
            assert_eq!(b.check(&cat(&[b"{{0N0"])), unhashable("dict"));
            assert_eq!(
                b.check(&cat(&[
                    b"{",
                    &b.tuple(&[b"N".to_vec(), b.list(&[])]),
                    b"N0"
                ])),
                unhashable("list")
            );
            let err = Err(MarshalError::Unhashable {
                kind: "set",
                offset: 5,
            });
            assert_eq!(b.check(&cat(&[b">", &le(1), b"<", &le(0)])), err);
            // Code objects hash their constants.
            let c = b.holding(b.list(&[]));
            assert_eq!(b.check(&c), Ok(()));
            assert_eq!(
                b.check(&cat(&[b"<", &le(1), &c])),
                Err(MarshalError::Unhashable {
                    kind: "list",
                    offset: 5
                })
            );
            assert_eq!(
                not_code(b.check(&cat(&[b"<", &le(2), &b.code(&spec()), b"N"]))),
                "set"
            );
            // Everything else hashes.
            let fine = cat(&[
                b">",
                &le(9),
                b"NTS.",
                &cat(&[b"i", &le(1)]),
                b"f\x03nan",
                &b.bytes(b"x"),
                &b.text(b"y"),
                &cat(&[b">", &le(0)]),
            ]);
            assert_eq!(not_code(b.check(&fine)), "frozenset");
            // A NULL value means no insertion happens: no hash, no error.
            let body = cat(&[b"{", &b.list(&[]), b"00"]);
            if magic == M27 {
                // 2.7 goes on to read the next key.
                assert_eq!(not_code(b.check(&body)), "dict");
            } else {
                assert_eq!(not_code(b.check(&body)), "dict");
            }
        }
        // References carry hashability.
        let b = B::new(M313);
        let body = b.tuple(&[cat(&[b"\xdb", &le(0)]), cat(&[b"<", &le(1), b"r", &le(0)])]);
        assert!(matches!(
            b.check(&body),
            Err(MarshalError::Unhashable { kind: "list", .. })
        ));
        // 3.14 slices hash like their parts.
        let b = B::new(M314);
        assert_eq!(not_code(b.check(&cat(&[b"<", &le(1), b":NNN"]))), "set");
        assert!(matches!(
            b.check(&cat(&[b"<", &le(1), b":N", &b.list(&[]), b"N"])),
            Err(MarshalError::Unhashable { kind: "list", .. })
        ));
    }

    #[test]
    fn self_references_that_crash_cpython() {
        let b = B::new(M313);
        // Hashing a tuple that is still being built dereferences NULL.
        let body = cat(&[b"\xa8", &le(1), b"<", &le(1), b"r", &le(0)]);
        assert!(matches!(
            b.check(&body),
            Err(MarshalError::WouldCrash { offset: 10, .. })
        ));
        // So does hashing a finished tuple that contains itself.
        let body = b.tuple(&[
            cat(&[b"\xa8", &le(1), b"r", &le(0)]),
            cat(&[b"{r", &le(0), b"N0"]),
        ]);
        assert!(matches!(
            b.check(&body),
            Err(MarshalError::WouldCrash { offset: 16, .. })
        ));
        // Interning constants recurses forever on a self-containing tuple ...
        for consts in [
            cat(&[b"\xa8", &le(1), b"r", &le(0)]),
            b.tuple(&[cat(&[b"\xa8", &le(1), b")\x01r", &le(0)])]),
        ] {
            let body = b.code(&Spec {
                consts: Some(consts),
                ..spec()
            });
            assert!(matches!(
                b.check(&body),
                Err(MarshalError::WouldCrash { .. })
            ));
        }
        // ... but does not look into lists or dicts.
        for consts in [
            b.tuple(&[cat(&[b"\xdb", &le(1), &b.tuple(&[cat(&[b"r", &le(0)])])])]),
            cat(&[b"\xa8", &le(1), b"[", &le(1), b"r", &le(0)]),
            b.tuple(&[cat(&[
                b"{",
                &b.text(b"k"),
                b"\xa8",
                &le(1),
                b"r",
                &le(0),
                b"0",
            ])]),
        ] {
            let body = b.code(&Spec {
                consts: Some(consts),
                ..spec()
            });
            assert_eq!(b.check(&body), Ok(()));
        }
        // 3.4/3.5 intern only the top level of co_consts: a finished cycle
        // is harmless there, a co_consts still being built is not.
        let b34 = B::new(M34);
        let cyclic = b34.code(&Spec {
            consts: Some(cat(&[b"\xa8", &le(1), b"r", &le(0)])),
            ..spec()
        });
        assert_eq!(b34.check(&cyclic), Ok(()));
        let inner = b34.code(&Spec {
            consts: Some(cat(&[b"r", &le(0)])),
            ..spec()
        });
        let building = b34.code(&Spec {
            consts: Some(cat(&[b"\xa8", &le(1), &inner])),
            ..spec()
        });
        assert!(matches!(
            b34.check(&building),
            Err(MarshalError::WouldCrash { .. })
        ));
        // A name tuple that is still being built has NULL items.
        let inner = b.code(&Spec {
            names: Some(cat(&[b"r", &le(0)])),
            ..spec()
        });
        let body = b.code(&Spec {
            consts: Some(cat(&[b"\xa8", &le(1), &inner])),
            ..spec()
        });
        assert!(matches!(
            b.check(&body),
            Err(MarshalError::BadCode {
                reason: "non-string found in code slot",
                ..
            })
        ));
    }

    #[test]
    fn recursion_limit() {
        for magic in [M27, M36, M313] {
            let b = B::new(magic);
            assert_eq!(not_code(b.check(&b.nest(1999, b"N"))), "tuple");
            assert_eq!(
                b.check(&b.nest(2000, b"N")),
                Err(MarshalError::RecursionLimit { offset: 2000 * 5 })
            );
            let inside = |depth| {
                b.code(&Spec {
                    consts: Some(b.nest(depth, b"N")),
                    ..spec()
                })
            };
            assert_eq!(b.check(&inside(1998)), Ok(()));
            assert!(matches!(
                b.check(&inside(1999)),
                Err(MarshalError::RecursionLimit { .. })
            ));
        }
    }

    #[test]
    fn hostile_nesting_on_a_small_stack() {
        // A million nested tuples, lists, dicts and code objects must be
        // refused without recursion, on a thread with a 2 MiB stack.
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let mut results = Vec::new();
                for magic in [M27, M313] {
                    let b = B::new(magic);
                    let deep = b.nest(1_000_000, b"N");
                    results.push(validate(&deep, d(magic)));
                    results.push(summarize(&deep, d(magic)).map(|_| ()));
                    let lists = b"[\x01\x00\x00\x00".repeat(500_000);
                    results.push(validate(&lists, d(magic)));
                    let dicts = b"{N".repeat(500_000);
                    results.push(validate(&dicts, d(magic)));
                    let codes = b.code(&spec())[..b.code(&spec()).len()].to_vec();
                    let header = &codes[..codes.iter().position(|&c| c == b's').unwrap()];
                    let nested_codes = header.repeat(100_000);
                    results.push(validate(&nested_codes, d(magic)));
                }
                results
            })
            .unwrap();
        for r in handle.join().unwrap() {
            assert!(
                matches!(r, Err(MarshalError::RecursionLimit { .. })),
                "{r:?}"
            );
        }
    }

    // -- code objects ---------------------------------------------------------

    fn reason(r: Result<(), MarshalError>) -> &'static str {
        match r {
            Err(MarshalError::BadCode { reason, .. }) => reason,
            Err(MarshalError::WouldCrash { .. }) => "crash",
            Ok(()) => "ok",
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn code_counts_and_flags() {
        // (spec, accepted by: 2.7, 3.6/3.7, 3.8-3.10, 3.11+) as measured on
        // the real interpreters.
        let cases: Vec<(&str, Spec, [bool; 4])> = vec![
            ("plain", spec(), [true, true, true, true]),
            (
                "neg stacksize",
                Spec {
                    stack: -1,
                    ..spec()
                },
                [true, true, false, false],
            ),
            (
                "neg flags",
                Spec {
                    flags: -1,
                    ..spec()
                },
                [true, false, false, false],
            ),
            (
                "neg argcount",
                Spec { argc: -1, ..spec() },
                [false, false, false, false],
            ),
            (
                "neg nlocals",
                Spec {
                    nlocals: -1,
                    ..spec()
                },
                [false, false, false, true],
            ),
            (
                "neg kwonly",
                Spec {
                    kwonly: -1,
                    ..spec()
                },
                [true, false, false, false],
            ),
            (
                "neg posonly",
                Spec {
                    posonly: -1,
                    ..spec()
                },
                [true, true, false, false],
            ),
            (
                "posonly > argcount",
                Spec {
                    posonly: 1,
                    ..spec()
                },
                [true, true, false, false],
            ),
            (
                "varargs, no varnames",
                Spec {
                    flags: 64 | 4,
                    ..spec()
                },
                [true, false, false, false],
            ),
            (
                "varkw, no varnames",
                Spec {
                    flags: 64 | 8,
                    ..spec()
                },
                [true, false, false, false],
            ),
            (
                "huge stacksize",
                Spec {
                    stack: i32::MAX,
                    ..spec()
                },
                [true, true, true, true],
            ),
            (
                "argcount wraps",
                Spec {
                    argc: i32::MAX,
                    kwonly: i32::MAX,
                    ..spec()
                },
                [true, false, false, true],
            ),
            (
                "argcount 1",
                Spec { argc: 1, ..spec() },
                [true, false, false, false],
            ),
        ];
        for (label, s, want) in cases {
            for (i, magic) in [M27, M37, M310, M313].into_iter().enumerate() {
                let b = B::new(magic);
                assert_eq!(
                    b.check(&b.code(&s)).is_ok(),
                    want[i],
                    "{label} on magic {magic}"
                );
            }
        }
        // 3.6-3.10 count arguments against co_varnames.
        let b = B::new(M38);
        let a = b.tuple(&[b.ident("a")]);
        let with = |argc: i32, flags: i32| {
            b.code(&Spec {
                argc,
                flags,
                varnames: Some(a.clone()),
                ..spec()
            })
        };
        assert_eq!(reason(b.check(&with(1, 64))), "ok");
        assert_eq!(reason(b.check(&with(0, 64 | 4))), "ok");
        assert_eq!(
            reason(b.check(&with(1, 64 | 4))),
            "code: varnames is too small"
        );
        // 3.11+ count CO_FAST_LOCAL kinds instead.
        let b = B::new(M311);
        let a = b.tuple(&[b.ident("a")]);
        let lp = |kind: &[u8]| {
            b.code(&Spec {
                argc: 1,
                lpnames: Some(a.clone()),
                lpkinds: Some(b.bytes(kind)),
                ..spec()
            })
        };
        assert_eq!(reason(b.check(&lp(b"\x20"))), "ok");
        assert_eq!(reason(b.check(&lp(b"\x26"))), "ok");
        assert_eq!(
            reason(b.check(&lp(b"\x40"))),
            "code: co_varnames is too small"
        );
        assert_eq!(
            reason(b.check(&lp(b"\x80"))),
            "code: co_varnames is too small"
        );
    }

    #[test]
    fn code_field_types() {
        let n = || Some(b"N".to_vec());
        for magic in [M27, M36, M38, M39, M310, M311, M312, M313, M314] {
            let b = B::new(magic);
            let py2 = magic == M27;
            let l311 = d(magic).code_layout() == CodeLayout::Py311;
            let none = b.tuple(&[b"N".to_vec()]);
            let cases: Vec<(&str, Spec, bool)> = vec![
                (
                    "co_code text",
                    Spec {
                        code: Some(b.text(b"ab")),
                        ..spec()
                    },
                    py2,
                ),
                (
                    "co_code tuple",
                    Spec {
                        code: Some(b.tuple(&[])),
                        ..spec()
                    },
                    false,
                ),
                (
                    "co_code odd",
                    Spec {
                        code: Some(b.bytes(b"d\x00S")),
                        ..spec()
                    },
                    !l311,
                ),
                (
                    "co_code empty",
                    Spec {
                        code: Some(b.bytes(b"")),
                        ..spec()
                    },
                    true,
                ),
                (
                    "consts list",
                    Spec {
                        consts: Some(b.list(&[])),
                        ..spec()
                    },
                    false,
                ),
                (
                    "names list",
                    Spec {
                        names: Some(b.list(&[])),
                        ..spec()
                    },
                    false,
                ),
                (
                    "filename bytes",
                    Spec {
                        filename: Some(b.bytes(b"f")),
                        ..spec()
                    },
                    py2,
                ),
                (
                    "filename text",
                    Spec {
                        filename: Some(b.text(b"f")),
                        ..spec()
                    },
                    !py2,
                ),
                (
                    "name None",
                    Spec {
                        name: n(),
                        ..spec()
                    },
                    false,
                ),
                (
                    "lnotab text",
                    Spec {
                        lnotab: Some(b.text(b"")),
                        ..spec()
                    },
                    false,
                ),
                (
                    "lnotab None",
                    Spec {
                        lnotab: n(),
                        ..spec()
                    },
                    false,
                ),
                (
                    "exctable None",
                    Spec {
                        exctable: n(),
                        ..spec()
                    },
                    !l311,
                ),
                (
                    "qualname None",
                    Spec {
                        qualname: n(),
                        ..spec()
                    },
                    !l311,
                ),
                (
                    "lpkinds text",
                    Spec {
                        lpkinds: Some(b.text(b"")),
                        ..spec()
                    },
                    !l311,
                ),
                (
                    "lpkinds short",
                    Spec {
                        lpnames: Some(b.tuple(&[b.ident("a")])),
                        lpkinds: Some(b.bytes(b"")),
                        ..spec()
                    },
                    !l311,
                ),
                (
                    "names None",
                    Spec {
                        names: Some(none.clone()),
                        ..spec()
                    },
                    false,
                ),
                (
                    "varnames None",
                    Spec {
                        varnames: Some(none.clone()),
                        ..spec()
                    },
                    l311,
                ),
                (
                    "cellvars None",
                    Spec {
                        cellvars: Some(none.clone()),
                        ..spec()
                    },
                    l311,
                ),
                (
                    "lpnames None",
                    Spec {
                        lpnames: Some(none.clone()),
                        lpkinds: Some(b.bytes(b"\x00")),
                        ..spec()
                    },
                    !l311,
                ),
                (
                    "names bytes",
                    Spec {
                        names: Some(b.tuple(&[b.bytes(b"x")])),
                        ..spec()
                    },
                    py2,
                ),
                (
                    "names text",
                    Spec {
                        names: Some(b.tuple(&[b.text(b"x")])),
                        ..spec()
                    },
                    !py2,
                ),
                (
                    "consts anything",
                    Spec {
                        consts: Some(b.tuple(&[b.list(&[]), b"{0".to_vec()])),
                        ..spec()
                    },
                    true,
                ),
            ];
            for (label, s, ok) in cases {
                assert_eq!(b.check(&b.code(&s)).is_ok(), ok, "{label} on magic {magic}");
            }
        }
        // Non-identifiers in name tuples abort 2.7-3.8 and raise in 3.9+.
        for (magic, want) in [
            (M27, "crash"),
            (M37, "crash"),
            (M38, "crash"),
            (M39, "non-string found in code slot"),
            (M313, "non-string found in code slot"),
        ] {
            let b = B::new(magic);
            let s = Spec {
                names: Some(b.tuple(&[b"N".to_vec()])),
                ..spec()
            };
            assert_eq!(reason(b.check(&b.code(&s))), want, "magic {magic}");
        }
        let b = B::new(M311);
        assert_eq!(
            reason(b.check(&b.code(&Spec {
                code: Some(b.bytes(b"d")),
                ..spec()
            }))),
            "code: co_code is malformed"
        );
    }

    #[test]
    fn quickening_crash_opcodes() {
        for (magic, crash) in [(M312, [253u8, 254]), (M313, [247, 254])] {
            let b = B::new(magic);
            let with = |code: &[u8]| {
                b.code(&Spec {
                    code: Some(b.bytes(code)),
                    ..spec()
                })
            };
            for op in 0..=255u8 {
                let r = b.check(&with(&[
                    op, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ]));
                assert_eq!(r.is_err(), crash.contains(&op), "opcode {op} magic {magic}");
            }
            // Arguments and inline caches are not instructions ...
            assert_eq!(b.check(&with(&[9, crash[1]])), Ok(()));
            let caches = d(magic).opcode_facts().inline_caches.unwrap();
            let op = (0..=255u8).find(|&o| caches[usize::from(o)] == 9).unwrap();
            let mut code = vec![op, 0];
            code.extend_from_slice(&[crash[0], 0].repeat(9));
            assert_eq!(b.check(&with(&code)), Ok(()));
            // ... but the unit after them is.
            code.extend_from_slice(&[crash[0], 0]);
            let r = b.check(&with(&code));
            assert!(matches!(r, Err(MarshalError::WouldCrash { .. })), "{r:?}");
            assert_eq!(r.unwrap_err().offset(), 1 + 4 * 5 + 5 + 20);
        }
        // Other series do not quicken at creation.
        for magic in [M27, M310, M311, M314] {
            let b = B::new(magic);
            let s = Spec {
                code: Some(b.bytes(&[254, 0, 253, 0, 247, 0])),
                ..spec()
            };
            assert_eq!(b.check(&b.code(&s)), Ok(()), "magic {magic}");
        }
    }

    // -- summaries ------------------------------------------------------------

    #[test]
    fn stored_names_bytecode_2_7() {
        let b = B::new(M27);
        // STORE_NAME 0; EXTENDED_ARG 1; STORE_GLOBAL 1 (= 65537 -> ignored,
        // out of range); STORE_GLOBAL 2; STORE_NAME 0 again; LOAD_NAME 1.
        let code = [
            90, 0, 0, 145, 1, 0, 97, 1, 0, 97, 2, 0, 90, 0, 0, 101, 1, 0, 83,
        ];
        let names = b.tuple(&[b.ident("a"), b.ident("b"), b.ident("c")]);
        let s = summarize(
            &b.code(&Spec {
                code: Some(b.bytes(&code)),
                names: Some(names),
                ..spec()
            }),
            b.d,
        )
        .unwrap();
        assert_eq!(s.names, ["a", "b", "c"]);
        assert_eq!(s.stored_names, ["a", "c"]);
        assert_eq!(s.code_objects, 1);
    }

    #[test]
    fn stored_names_wordcode_and_caches() {
        let names: Vec<String> = (0..300).map(|i| format!("n{i}")).collect();
        for magic in [M36, M310, M311, M312, M313, M314] {
            let b = B::new(magic);
            let f = d(magic).opcode_facts();
            let tuple = b.tuple(&names.iter().map(|n| b.ident(n)).collect::<Vec<_>>());
            let mut code = vec![f.store_name, 5, f.extended_arg, 1, f.store_global, 0x2b];
            // An opcode followed by cache units that look like a store.
            if let Some(t) = f.inline_caches {
                // The first opcode with at least two inline caches; its cache
                // units look like `STORE_NAME 9` and must be skipped.
                let op = (1..=255u8).find(|&o| t[usize::from(o)] >= 2).unwrap();
                code.extend_from_slice(&[op, 0]);
                for _ in 0..t[usize::from(op)] {
                    code.extend_from_slice(&[f.store_name, 9]);
                }
            } else if magic == M314 {
                // Without a table, CACHE units (opcode 0) are skipped.
                code.extend_from_slice(&[0, 0, 0, 9]);
            }
            code.extend_from_slice(&[f.store_name, 5, f.store_name, 2]);
            let body = b.code(&Spec {
                code: Some(b.bytes(&code)),
                names: Some(tuple),
                ..spec()
            });
            let s = summarize(&body, b.d).unwrap_or_else(|e| panic!("magic {magic}: {e}"));
            assert_eq!(s.stored_names, ["n5", "n299", "n2"], "magic {magic}");
            assert_eq!(s.names.len(), 300);
        }
    }

    #[test]
    fn summary_of_nested_code_and_refs() {
        let b = B::new(M313);
        let inner = b.code(&Spec {
            name: Some(b.ident("inner")),
            ..spec()
        });
        let spam = b"\xda\x04spam".to_vec();
        let body = b.code(&Spec {
            consts: Some(b.tuple(&[inner.clone(), b.tuple(&[inner]), spam])),
            name: Some(cat(&[b"r", &le(0)])),
            filename: Some(b.text("dír/ü.py".as_bytes())),
            names: Some(b.tuple(&[cat(&[b"r", &le(0)]), b"z\x01\xe9".to_vec()])),
            ..spec()
        });
        let s = summarize(&body, b.d).unwrap();
        assert_eq!(s.code_objects, 3);
        assert_eq!(s.name, "spam");
        assert_eq!(s.filename, "dír/ü.py");
        assert_eq!(s.names, ["spam", "é"]);
    }

    #[test]
    fn error_messages_carry_offsets() {
        let b = B::new(M313);
        let msg = |body: &[u8]| b.check(body).unwrap_err().to_string();
        assert_eq!(
            msg(b"(\x01\x00\x00\x00?"),
            "bad marshal data (unknown type code 0x3f at offset 5)"
        );
        assert_eq!(
            msg(b"(\x01\x00\x00\x00"),
            "EOF read where object expected (offset 5)"
        );
        assert_eq!(msg(b"i\x00"), "marshal data too short (offset 1)");
        assert_eq!(
            msg(b"N"),
            "top-level object is a NoneType, not a code object (offset 0)"
        );
        assert_eq!(
            msg(&cat(&[b"{", &b.list(&[]), b"N0"])),
            "unhashable type: 'list' (offset 1)"
        );
        assert_eq!(
            msg(&cat(&[b"l", &le(1), b"\x00\x80"])),
            "bad marshal data (digit out of range in long at offset 0)"
        );
        assert!(msg(&b.nest(2001, b"N")).starts_with("recursion limit exceeded (offset "));
        let e = b
            .check(&b.code(&Spec {
                code: Some(b.bytes(b"d")),
                ..spec()
            }))
            .unwrap_err();
        assert_eq!(e.to_string(), "code: co_code is malformed (offset 0)");
        assert_eq!(e.offset(), 0);
    }

    // -- properties -----------------------------------------------------------

    fn all_dialects() -> impl Strategy<Value = Dialect> {
        prop::sample::select(ALL.to_vec()).prop_map(d)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics_on_arbitrary_bytes(
            dialect in all_dialects(),
            body in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let v = validate(&body, dialect);
            let s = summarize(&body, dialect);
            prop_assert_eq!(v.is_ok(), s.is_ok());
        }

        #[test]
        fn never_panics_on_typed_garbage(
            dialect in all_dialects(),
            body in prop::collection::vec(
                prop::sample::select(b"0NFTS.iIfgxylstrR()[]{}cu?<>aAzZ:\x00\x01\x02\xff\x80\xa8\xe3".to_vec()),
                0..200,
            ),
        ) {
            let v = validate(&body, dialect);
            let s = summarize(&body, dialect);
            prop_assert_eq!(v.is_ok(), s.is_ok());
        }

        #[test]
        fn never_panics_on_mutated_real_bodies(
            which in 0..REAL.len(),
            dialect in all_dialects(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..4u8), 1..6),
        ) {
            let mut body = unhex(REAL[which].2);
            for (at, byte, op) in edits {
                if body.is_empty() {
                    break;
                }
                let i = at.index(body.len());
                match op {
                    0 => body[i] = byte,
                    1 => body.truncate(i),
                    2 => { body.remove(i); }
                    _ => body.insert(i, byte),
                }
            }
            let v = validate(&body, dialect);
            let s = summarize(&body, dialect);
            prop_assert_eq!(v.is_ok(), s.is_ok());
            // The body's own series must still accept an untouched copy.
            let real = unhex(REAL[which].2);
            prop_assert!(validate(&real, d(REAL[which].0)).is_ok());
        }
    }

    /// Rough throughput check: `cargo test --release -- --ignored --nocapture bench`.
    #[test]
    #[ignore = "benchmark"]
    fn bench_validate_real_bodies() {
        let bodies: Vec<(Dialect, Vec<u8>)> =
            REAL.iter().map(|(m, _, h)| (d(*m), unhex(h))).collect();
        let per_round: usize = bodies.iter().map(|(_, b)| b.len()).sum();
        let rounds = 200_000_000 / per_round;
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            for (dl, b) in &bodies {
                assert!(validate(std::hint::black_box(b), *dl).is_ok());
            }
        }
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "validate: {:.0} MB/s",
            (per_round * rounds) as f64 / secs / 1e6
        );
    }
}
