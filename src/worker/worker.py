# pycguard deep worker: embedded in the pycguard binary and run as
#   python -I -S -B -c <this program>      (2.7 and 3.3: -E -s -S -B)
# in the directory /, with an environment holding only LC_ALL=C.UTF-8 (see
# src/interpreters/child.rs). It compiles source bytes it is sent and compares the result
# with cache bodies it is sent. It never imports or executes user code: compile() and
# marshal.loads() only, and only standard-library modules are imported. The first two
# lines drop relative sys.path entries ('' comes first with -c on Python 2) before any
# import: only the built-in sys is used until then.
#
# Protocol (stdin -> stdout): frames of  u32 LE length + payload;  a payload is a list of
# fields, each  u32 LE length + bytes.  The first field is the operation:
#   worker -> pycguard at start:  H  version  magic(4 bytes)  implementation  major.minor
#                                 cache_tag (empty for none)  sys.executable  prefixes
#                                 (sys.prefix and sys.base_prefix, realpath, NUL-separated)
#                                 -- the probe's answer, which pycguard compares with the
#                                 one it remembered before it trusts this worker
#   P filename source body levels   prove: compile `source` at each optimisation level in
#                                   `levels` (one byte each) and compare with marshal.loads(body)
#   C filename source optimize(1) mode(1: 0 timestamp, 1 checked-hash, 2 unchecked-hash)
#     mtime(u32 LE) size(u32 LE)   compile: the complete .pyc this interpreter would write
# Answers:  E (equal) | D reason | S line message (SyntaxError; line may be empty)
#           | K pyc | F message (could not do it)
# File names are bytes end to end; nothing here decodes them except to pass them to
# compile() the way the importer does (os.fsdecode).
#
# TEST ONLY: with PYCGUARD_TEST_WORKER_FAULT=1 in the environment, a source containing
# PYCGUARD-TEST-CRASH makes the worker exit abruptly, PYCGUARD-TEST-HANG makes it hang, and
# PYCGUARD-TEST-CRASH-ONCE crashes only if the file named by PYCGUARD_TEST_WORKER_FLAG does
# not exist yet (it is created first). pycguard's own tests use this to kill workers.
import sys
sys.path[:] = [p for p in sys.path if p[:1] == '/']
import struct
import marshal
import os

try:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # pycguard decides when workers stop
except Exception:
    pass
try:
    import warnings
    warnings.simplefilter("ignore")  # SyntaxWarning etc. would only reach a terminal
except Exception:
    pass

PY3 = sys.version_info[0] >= 3
if PY3:
    STDIN = sys.stdin.buffer
    STDOUT = sys.stdout.buffer
else:
    STDIN = sys.stdin
    STDOUT = sys.stdout
CODE = type(compile("", "", "exec"))
CO_NEWLOCALS = 0x0002
FAULTS = os.environ.get("PYCGUARD_TEST_WORKER_FAULT") == "1"


def read_exact(n):
    chunks = []
    while n > 0:
        b = STDIN.read(n)
        if not b:
            raise EOFError
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_frame():
    head = STDIN.read(4)
    if not head:
        return None
    if len(head) < 4:
        head += read_exact(4 - len(head))
    (n,) = struct.unpack("<I", head)
    payload = read_exact(n)
    fields = []
    i = 0
    while i < len(payload):
        (l,) = struct.unpack_from("<I", payload, i)
        fields.append(payload[i + 4:i + 4 + l])
        i += 4 + l
    return fields


def write_frame(fields):
    parts = []
    for f in fields:
        if not isinstance(f, bytes):
            f = f.encode("utf-8", "replace")
        parts.append(struct.pack("<I", len(f)))
        parts.append(f)
    payload = b"".join(parts)
    STDOUT.write(struct.pack("<I", len(payload)) + payload)
    STDOUT.flush()


def text(x):
    if PY3:
        return str(x)
    try:
        return unicode(x)  # noqa: F821
    except Exception:
        return repr(x)


def fs_name(raw):
    if PY3:
        return os.fsdecode(raw)
    return raw


def compile_source(source, filename, level):
    if PY3:
        # The importer compiles with optimize=-1, i.e. the interpreter's own level
        # (sys.flags.optimize: one per -O or PYTHONOPTIMIZE=N, written as .opt-N). The
        # compiler treats every level from 2 up alike (asserts and docstrings removed,
        # __debug__ false), but compile() accepts only -1..2: level N >= 3 is compiled
        # at 2, which gives the very code `python -OOO` writes (checked on every 3.x).
        return compile(source, filename, "exec", dont_inherit=True, optimize=min(level, 2))
    return compile(source, filename, "exec", 0, True)


# ---------------------------------------------------------------- comparison

def ckey(x):
    """A key for a constant that mirrors code.__eq__'s constant key, except NaN == NaN."""
    t = type(x)
    if t is float:
        if x != x:
            return ("float", "nan")
        return ("float", repr(x))
    if t is complex:
        return ("complex", ckey(x.real), ckey(x.imag))
    if t is tuple:
        return ("tuple",) + tuple(ckey(e) for e in x)
    if t is frozenset:
        return ("frozenset", frozenset(ckey(e) for e in x))
    if t is CODE:
        return ("code", x.co_name)
    return (t.__name__, x)


def show(x):
    if type(x) is CODE:
        return x.co_name
    r = repr(x)
    if len(r) > 60:
        r = r[:57] + "..."
    return r


def plain(x):
    return x


def seq_diff(what, old, new, keyf, loc):
    ko = [keyf(v) for v in old]
    kn = [keyf(v) for v in new]
    if ko == kn:
        return None
    removed = [v for v, k in zip(old, ko) if k not in kn]
    added = [v for v, k in zip(new, kn) if k not in ko]
    if len(removed) == 1 and len(added) == 1:
        return "%s %s became %s %s" % (what, show(removed[0]), show(added[0]), loc)
    if added and not removed:
        return "%s %s added %s" % (what, ", ".join(show(a) for a in added[:3]), loc)
    if removed and not added:
        return "%s %s removed %s" % (what, ", ".join(show(a) for a in removed[:3]), loc)
    if removed and added:
        return "%d %ss differ %s (e.g. %s became %s)" % (
            max(len(removed), len(added)), what, loc, show(removed[0]), show(added[0]))
    return "%ss differ in order or number %s" % (what, loc)


def location(code, chain):
    if not chain:
        return "at module level"
    kind = "function" if code.co_flags & CO_NEWLOCALS else "class"
    return "in %s %s" % (kind, ".".join(chain))


SIGNATURE = ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount")
OTHER = ("co_nlocals", "co_stacksize", "co_exceptiontable", "co_name", "co_qualname")


def diff_code(a, b, chain):
    """None when equal (ignoring file name and line numbers), else what differs."""
    if a.co_name != "<module>" or chain:
        chain = chain + [a.co_name]
    loc = location(a, chain)
    ca = [c for c in a.co_consts if type(c) is not CODE]
    cb = [c for c in b.co_consts if type(c) is not CODE]
    d = seq_diff("constant", ca, cb, ckey, loc)
    if d:
        return d
    for attr, what in (("co_names", "name"), ("co_varnames", "local variable"),
                       ("co_freevars", "free variable"), ("co_cellvars", "cell variable")):
        d = seq_diff(what, getattr(a, attr), getattr(b, attr), plain, loc)
        if d:
            return d
    for attr in SIGNATURE:
        if getattr(a, attr, None) != getattr(b, attr, None):
            return "the signature changed %s" % loc
    qa = [c for c in a.co_consts if type(c) is CODE]
    qb = [c for c in b.co_consts if type(c) is CODE]
    d = seq_diff("code block", qa, qb, lambda c: c.co_name, loc)
    if d:
        return d
    for x, y in zip(qa, qb):
        d = diff_code(x, y, chain)
        if d:
            return d
    if a.co_code != b.co_code:
        return "the bytecode differs %s" % loc
    if a.co_flags != b.co_flags:
        return "the code flags differ %s" % loc
    for attr in OTHER:
        if getattr(a, attr, None) != getattr(b, attr, None):
            return "%s differs %s" % (attr, loc)
    return None


# ---------------------------------------------------------------- operations

def syntax_error(e):
    line = getattr(e, "lineno", None)
    msg = getattr(e, "msg", None) or text(e)
    return [b"S", str(line).encode("ascii") if line else b"", text(msg)]


def fault(source):
    if not FAULTS:
        return
    if b"PYCGUARD-TEST-CRASH-ONCE" in source:
        flag = os.environ.get("PYCGUARD_TEST_WORKER_FLAG")
        if flag:
            try:
                fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
            except OSError:
                return
            os._exit(3)
    elif b"PYCGUARD-TEST-CRASH" in source:
        os._exit(3)
    if b"PYCGUARD-TEST-HANG" in source:
        import time
        while True:
            time.sleep(3600)


def prove(filename, source, body, levels):
    fault(source)
    try:
        old = marshal.loads(body)
    except Exception as e:
        return [b"F", "the cache body does not unmarshal: %s" % text(e)]
    if type(old) is not CODE:
        return [b"F", "the cache body is not a code object"]
    first = None
    # Compiled under the file name the cache records, an unchanged source gives the very
    # bytes of the body (marshal is deterministic for one build), and comparing bytes
    # costs a tenth of diff_code; anything else falls back to diff_code, which ignores
    # file names and line numbers.
    name = old.co_filename
    if not isinstance(name, str):
        name = fs_name(filename)
    for level in bytearray(levels):
        try:
            new = compile_source(source, name, level)
        except SyntaxError as e:
            return syntax_error(e)
        except (ValueError, TypeError) as e:  # e.g. null bytes before 3.12
            return [b"S", b"", text(e)]
        if marshal.dumps(new) == body:
            return [b"E"]
        d = diff_code(old, new, [])
        if d is None:
            return [b"E"]
        if first is None:
            first = d
    return [b"D", first]


def compile_pyc(filename, source, optimize, mode, mtime, size):
    fault(source)
    name = fs_name(filename)
    try:
        code = compile_source(source, name, optimize)
    except SyntaxError as e:
        return syntax_error(e)
    except (ValueError, TypeError) as e:
        return [b"S", b"", text(e)]
    if not PY3:
        import imp
        return [b"K", imp.get_magic() + struct.pack("<I", mtime & 0xFFFFFFFF) + marshal.dumps(code)]
    import importlib._bootstrap_external as be
    if hasattr(be, "_code_to_timestamp_pyc"):
        if mode == 0:
            data = be._code_to_timestamp_pyc(code, mtime, size)
        else:
            import importlib.util
            data = be._code_to_hash_pyc(code, importlib.util.source_hash(source), mode == 1)
    elif mode == 0:
        data = be._code_to_bytecode(code, mtime, size)
    else:
        return [b"F", "hash-based caches need Python 3.7 or later"]
    return [b"K", bytes(data)]


def magic():
    if PY3:
        import importlib.util
        return importlib.util.MAGIC_NUMBER
    import imp
    return imp.get_magic()


def fs_bytes(name):
    if PY3:
        return os.fsencode(name)
    return name


def hello():
    impl = getattr(sys, "implementation", None)
    if impl:
        name = impl.name
    else:
        name = "pypy" if "__pypy__" in sys.builtin_module_names else "cpython"
    tag = (impl.cache_tag if impl else None) or ""
    v = sys.version_info
    prefixes = [os.path.realpath(p) for p in (sys.prefix, getattr(sys, "base_prefix", sys.prefix))]
    return [b"H", sys.version.split()[0], magic(), name, "%d.%d" % (v[0], v[1]), tag,
            fs_bytes(sys.executable), b"\0".join(fs_bytes(p) for p in prefixes)]


def main():
    write_frame(hello())
    while True:
        fields = read_frame()
        if fields is None:
            return
        op = fields[0]
        try:
            if op == b"P":
                answer = prove(fields[1], fields[2], fields[3], fields[4])
            elif op == b"C":
                (mtime,) = struct.unpack("<I", fields[5])
                (size,) = struct.unpack("<I", fields[6])
                answer = compile_pyc(fields[1], fields[2], bytearray(fields[3])[0],
                                     bytearray(fields[4])[0], mtime, size)
            else:
                answer = [b"F", "unknown operation"]
        except MemoryError:
            answer = [b"F", "out of memory"]
        except RecursionError if PY3 else RuntimeError as e:  # noqa: F821
            answer = [b"F", "too deeply nested: %s" % text(e)]
        except Exception as e:
            answer = [b"F", "%s: %s" % (type(e).__name__, text(e))]
        write_frame(answer)


main()
