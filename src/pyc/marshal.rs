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
//! Known limits (all documented where they apply):
//! * 3.0–3.5 and 3.14 have no interpreter on the test machine; their rules
//!   come from reading the sources and from their neighbours' behaviour.
//! * Out-of-memory outcomes never matter: every body whose declared sizes
//!   would make CPython allocate more than the body holds also fails later
//!   with an EOF, so the accept/reject answer does not depend on the machine.
//! * Undefined behaviour inside CPython (e.g. the one-unit out-of-bounds
//!   write when 3.12 quickens a truncated trailing instruction) is not
//!   modelled; such bodies are treated as CPython's well-defined path would.
//! * Equality comparisons during dict/set insertion never raise for
//!   marshal-able values except on self-containing structures, which are
//!   already rejected as unhashable.

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
static QUICKEN_312: [u8; 256] = quicken_table(&CACHES_312, &[253, 254]);
static QUICKEN_313: [u8; 256] = quicken_table(&CACHES_313, &[247, 254]);

/// As [`CACHES_311`] for 3.13 (which renumbered every opcode).
static CACHES_313: [u8; 256] = cache_table(
    b"0001010000000000000000000000000000000001300001000000030000110000\
      0000000010000100009000000004010001111000100040000000010000000000\
      0000000000000000000000111111111111333333333333333333331111111119\
      9999999999944110144411333333111000000000000000000011300001111100",
);

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
                f.quicken_crash = &[253, 254];
            }
            13 => {
                f.have_argument = 44;
                f.store_name = 114;
                f.store_global = 113;
                f.extended_arg = 71;
                f.inline_caches = Some(&CACHES_313);
                f.quicken_crash = &[247, 254];
            }
            14 => {
                // Not verified against an interpreter (none on the test
                // machine); numbers from CPython 3.14's opcode_ids.h.
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
/// would not produce a code object.  Every message carries the byte offset
/// into the body where the problem was found (for object-level problems the
/// offset of the object's type byte, for short reads the offset of the
/// read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarshalError {
    /// A type byte was expected but the body ended.
    #[error("EOF read where object expected (offset {offset})")]
    EofObject { offset: usize },
    /// A length, integer, string payload or other fixed-size field was cut
    /// short.
    #[error("marshal data too short (offset {offset})")]
    TooShort { offset: usize },
    /// A type byte this series does not know.
    #[error("bad marshal data (unknown type code 0x{code:02x} at offset {offset})")]
    UnknownType { code: u8, offset: usize },
    /// A negative size for a bytes/str/tuple/list/set object.
    #[error("bad marshal data ({what} size out of range at offset {offset})")]
    SizeOutOfRange { what: &'static str, offset: usize },
    /// A `'l'` long whose digit count is `INT_MIN`.
    #[error("bad marshal data (long size out of range at offset {offset})")]
    LongSizeOutOfRange { offset: usize },
    /// A 15-bit long digit with the top bit set.
    #[error("bad marshal data (digit out of range in long at offset {offset})")]
    LongDigitOutOfRange { offset: usize },
    /// A long whose most significant digit is zero.
    #[error("bad marshal data (unnormalized long data at offset {offset})")]
    UnnormalizedLong { offset: usize },
    /// An `'r'` index outside the reference list, or naming a slot that is
    /// reserved but not filled yet.
    #[error("bad marshal data (invalid reference {index} at offset {offset})")]
    InvalidReference { index: i32, offset: usize },
    /// A 2.7 `'R'` index outside the interned-string list.
    #[error("bad marshal data (string ref out of range {index} at offset {offset})")]
    StringRefOutOfRange { index: i32, offset: usize },
    /// More than 2^31 - 2 reference slots.
    #[error("bad marshal data (index list too large at offset {offset})")]
    IndexListTooLarge { offset: usize },
    /// Nesting deeper than `MAX_MARSHAL_STACK_DEPTH` (2000).
    #[error("recursion limit exceeded (offset {offset})")]
    RecursionLimit { offset: usize },
    /// A NULL (`'0'`, or a code object cut short by one) where an object is
    /// required.
    #[error("NULL object in marshal data for {container} (offset {offset})")]
    NullObject {
        container: &'static str,
        offset: usize,
    },
    /// A dict key or set element that cannot be hashed.
    #[error("unhashable type: '{kind}' (offset {offset})")]
    Unhashable { kind: &'static str, offset: usize },
    /// A text float (`'f'`/`'x'`) that `PyOS_string_to_double` refuses.
    #[error("could not convert string to float (offset {offset})")]
    BadFloat { offset: usize },
    /// A `'u'`/`'t'` payload that is not UTF-8 (lone surrogates are allowed,
    /// as with `surrogatepass`).
    #[error(
        "'utf-8' codec can't decode byte 0x{byte:02x} in position {position} (offset {offset})"
    )]
    BadUtf8 {
        byte: u8,
        position: usize,
        offset: usize,
    },
    /// The code-object constructor raises (SystemError "bad argument to
    /// internal function", ValueError "code: varnames is too small", ...).
    #[error("{reason} (offset {offset})")]
    BadCode { reason: &'static str, offset: usize },
    /// Loading this body crashes the interpreter (fatal error or segfault);
    /// the cache can never be imported.
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
    /// comprehensions included).
    pub code_objects: usize,
}

/// Fast path used on every cache of a tree: `Ok(())` iff CPython's
/// `marshal.loads` would return a code object for this body (what importlib
/// needs), otherwise the error CPython would hit first.
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
        }
    }
}

/// Every kind, indexed by its discriminant.
const KINDS: [Kind; 16] = [
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
];

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
        KINDS[((self.info >> 32) & 0xf) as usize]
    }
    fn flags(&self) -> u8 {
        (self.info >> 40) as u8
    }
    fn culprit(&self) -> Kind {
        KINDS[((self.info >> 48) & 0xf) as usize]
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
    /// A NULL dict value ends the dict (3.4+); 2.7 just skips the pair.
    dict_null_value_ends: bool,
    /// A NULL code field raises (3.11+); earlier series silently return NULL.
    code_null_is_error: bool,
    /// A non-identifier in a name tuple is `Py_FatalError` (2.7, 3.0–3.8)
    /// rather than SystemError (3.9+).
    names_fatal: bool,
    layout: CodeLayout,
    /// The kind `intern_strings` requires of name tuple items.
    ident: Kind,
    /// Quickening table of 3.12/3.13 (see [`quicken_table`]).
    quicken: Option<&'static [u8; 256]>,
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
            dict_null_value_ends: d.at_least(4),
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
            slots: Vec::new(),
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

    #[inline]
    fn read_i32(&mut self) -> Res<i32> {
        let p = self.take(4)?;
        let b = &self.body[p..p + 4];
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
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
        let unknown = MarshalError::UnknownType {
            code,
            offset: start,
        };
        let v = match ty {
            b'0' => return Ok(Started::Value(None)),
            // Singletons are never registered, even with FLAG_REF.
            b'N' => return Ok(Started::Value(Some(simple(Kind::None)))),
            b'F' | b'T' => return Ok(Started::Value(Some(simple(Kind::Bool)))),
            b'S' => return Ok(Started::Value(Some(simple(Kind::StopIter)))),
            b'.' => return Ok(Started::Value(Some(simple(Kind::Ellipsis)))),
            b'i' => {
                self.take(4)?;
                simple(Kind::Int)
            }
            b'I' => {
                self.take(8)?;
                simple(Kind::Int)
            }
            b'l' => {
                self.read_long(start)?;
                simple(Kind::Int)
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
            _ => return Err(unknown),
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
                Kind::Tuple if n > 0 => self.push_slot(done.with(CYCLIC, Kind::Tuple), start)?,
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
                        return Err(MarshalError::Unhashable {
                            kind: v.culprit().name(py2),
                            offset: item_start,
                        });
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
                        if !self.r.dict_null_value_ends {
                            return Ok(None);
                        }
                    }
                    (Some((hashable, culprit, at)), Some(_)) => {
                        if !hashable {
                            // 2.7 keeps reading after the failed
                            // PyDict_SetItem but fails in the end anyway.
                            return Err(MarshalError::Unhashable {
                                kind: culprit.name(py2),
                                offset: at,
                            });
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
    fn code_advance(&mut self) -> Res<bool> {
        let fields = layout_fields(self.r.layout);
        loop {
            let step = match self.codes.last() {
                Some(cs) => usize::from(cs.step),
                None => return Ok(false),
            };
            match fields.get(step) {
                None => return Ok(true),
                Some(FO(_)) => return Ok(false),
                Some(FI(i)) => {
                    let x = self.read_i32()?;
                    if let Some(cs) = self.codes.last_mut() {
                        cs.ints[*i] = x;
                        cs.step += 1;
                    }
                }
            }
        }
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
            let p = self.take(2)?;
            let digit = u16::from_le_bytes([self.body[p], self.body[p + 1]]);
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
            // 2.7 only interns the top level of co_consts; 3.x recurses into
            // nested tuples and frozensets and never returns on a cycle.
            if !r.py2 && o(O_CONSTS).has(CYCLIC) {
                return Err(MarshalError::WouldCrash {
                    reason: "co_consts contains itself (unbounded recursion)",
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
                if code.len() % 2 != 0 {
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
                if let Some(table) = r.quicken {
                    if let Some(at) = quicken_crash_at(code, table) {
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

/// Where (byte offset into `code`) 3.12/3.13's `_PyCode_Quicken` would meet
/// an opcode that dereferences monitoring data a fresh code object lacks.
fn quicken_crash_at(code: &[u8], table: &[u8; 256]) -> Option<usize> {
    let mut i = 0;
    while let Some(&op) = code.get(i) {
        let step = table[usize::from(op)];
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
