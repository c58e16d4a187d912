//! The worker protocol: length-prefixed binary frames, so any bytes (non-UTF-8 or newline
//! file names, NUL in sources) cross it unchanged. Pure encoding and decoding; the pool
//! does the I/O.
//!
//! A frame is `u32 LE length` + payload; a payload is a list of fields, each `u32 LE
//! length` + bytes. The first field names the operation (see `worker.py`, which holds the
//! other end):
//!
//! | direction | fields |
//! |---|---|
//! | worker → pycguard, once at start | `H` version magic(4) implementation major.minor cache-tag executable prefixes(NUL-separated) — the probe's [`Answer`] |
//! | prove | `P` filename source body levels(1 byte each) |
//! | compile | `C` filename source optimize(1) mode(1) mtime(u32 LE) size(u32 LE) |
//! | answers | `E` · `D` reason · `S` line message · `K` pyc · `F` message |

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;

use super::pool::{Invalidation, Job, JobOutcome};
use crate::interpreters::answer::{self, Answer};

/// No frame may be larger than this (a source or cache of a gigabyte is not Python).
pub const MAX_FRAME: usize = 1 << 30;

/// Encode a list of fields as one frame.
pub fn encode_frame(fields: &[&[u8]]) -> Vec<u8> {
    let payload_len: usize = fields.iter().map(|f| 4 + f.len()).sum();
    let mut out = Vec::with_capacity(4 + payload_len);
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    for field in fields {
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// Split a payload into its fields; `None` when the lengths do not add up.
pub fn decode_fields(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut fields = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let field = rest.get(4..4 + len)?;
        fields.push(field.to_vec());
        rest = &rest[4 + len..];
    }
    Some(fields)
}

/// Read one frame; `Ok(None)` at a clean end of stream (before any byte of a frame).
pub fn read_frame<R: Read>(reader: &mut R) -> io::Result<Option<Vec<Vec<u8>>>> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match reader.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload)?;
    decode_fields(&payload)
        .map(Some)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed frame"))
}

/// The request frame for a job.
pub fn encode_job(job: &Job) -> Vec<u8> {
    match job {
        Job::Prove {
            source,
            filename,
            body,
            optimize_levels,
        } => encode_frame(&[
            b"P",
            filename.as_os_str().as_bytes(),
            source,
            body,
            optimize_levels,
        ]),
        Job::Compile {
            source,
            filename,
            optimize,
            invalidation,
        } => {
            let (mode, mtime, size) = match *invalidation {
                Invalidation::Timestamp { mtime, size } => (0u8, mtime, size),
                Invalidation::CheckedHash => (1, 0, 0),
                Invalidation::UncheckedHash => (2, 0, 0),
            };
            encode_frame(&[
                b"C",
                filename.as_os_str().as_bytes(),
                source,
                &[*optimize],
                &[mode],
                &mtime.to_le_bytes(),
                &size.to_le_bytes(),
            ])
        }
    }
}

/// The worker's hello: what it says about itself, in the probe's terms.
pub fn decode_hello(fields: &[Vec<u8>]) -> Option<Answer> {
    match fields {
        [op, version, magic, implementation, version_info, tag, executable, prefixes]
            if op == b"H" =>
        {
            answer::from_fields(
                implementation,
                version_info,
                version,
                magic,
                tag,
                executable,
                prefixes,
            )
        }
        _ => None,
    }
}

/// Turn an answer frame into an outcome.
pub fn decode_answer(fields: Vec<Vec<u8>>) -> JobOutcome {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut fields = fields.into_iter();
    let op = fields.next().unwrap_or_default();
    let rest: Vec<Vec<u8>> = fields.collect();
    match (op.as_slice(), rest.as_slice()) {
        (b"E", []) => JobOutcome::Proven {
            equal: true,
            difference: None,
        },
        (b"D", [reason]) => JobOutcome::Proven {
            equal: false,
            difference: Some(text(reason)).filter(|r| !r.is_empty()),
        },
        (b"S", [line, message]) => JobOutcome::SyntaxError {
            line: std::str::from_utf8(line).ok().and_then(|l| l.parse().ok()),
            message: text(message),
        },
        (b"K", [pyc]) => JobOutcome::Compiled { pyc: pyc.clone() },
        (b"F", [message]) => JobOutcome::Failed(text(message)),
        _ => JobOutcome::Failed(format!(
            "the worker sent an answer pycguard does not understand ({:?})",
            text(&op)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::path::PathBuf;

    #[test]
    fn frames_round_trip_any_bytes() {
        let name = b"dir/\xff\xfe new\nline\0.py".as_slice();
        let frame = encode_frame(&[b"P", name, b"", &[0, 1, 2]]);
        let mut reader = frame.as_slice();
        let fields = read_frame(&mut reader).unwrap().unwrap();
        assert_eq!(
            fields,
            vec![b"P".to_vec(), name.to_vec(), vec![], vec![0, 1, 2]]
        );
        assert!(read_frame(&mut reader).unwrap().is_none(), "clean end");
    }

    #[test]
    fn truncated_and_malformed_frames_are_errors() {
        let frame = encode_frame(&[b"E"]);
        let mut cut = &frame[..frame.len() - 1];
        assert!(read_frame(&mut cut).is_err());
        let mut half_head = &frame[..2];
        assert!(read_frame(&mut half_head).is_err());
        // A field length pointing past the payload.
        let bad = [5, 0, 0, 0, 9, 0, 0, 0, b'x'];
        assert!(read_frame(&mut bad.as_slice()).is_err());
        assert!(decode_fields(&[1, 0, 0]).is_none());
    }

    #[test]
    fn jobs_encode_their_fields_in_order() {
        use std::os::unix::ffi::OsStrExt;
        let job = Job::Compile {
            source: b"x = 1\n".to_vec(),
            filename: PathBuf::from(OsStr::from_bytes(b"/a/\xffm.py")),
            optimize: 2,
            invalidation: Invalidation::Timestamp {
                mtime: 0x01020304,
                size: 6,
            },
        };
        let frame = encode_job(&job);
        let fields = decode_fields(&frame[4..]).unwrap();
        assert_eq!(fields[0], b"C");
        assert_eq!(fields[1], b"/a/\xffm.py");
        assert_eq!(fields[3], [2]);
        assert_eq!(fields[4], [0]);
        assert_eq!(fields[5], [4, 3, 2, 1]);
        assert_eq!(fields[6], [6, 0, 0, 0]);
        let prove = Job::Prove {
            source: vec![],
            filename: PathBuf::from("m.py"),
            body: vec![0xe3],
            optimize_levels: vec![0, 1, 2],
        };
        let fields = decode_fields(&encode_job(&prove)[4..]).unwrap();
        assert_eq!(fields.len(), 5);
        assert_eq!(fields[4], [0, 1, 2]);
    }

    #[test]
    fn answers_decode() {
        let f = |v: &[&[u8]]| v.iter().map(|x| x.to_vec()).collect::<Vec<_>>();
        assert!(matches!(
            decode_answer(f(&[b"E"])),
            JobOutcome::Proven { equal: true, .. }
        ));
        match decode_answer(f(&[b"D", b"constant 60 became 300 at module level"])) {
            JobOutcome::Proven {
                equal: false,
                difference: Some(d),
            } => assert!(d.contains("300")),
            other => panic!("{other:?}"),
        }
        match decode_answer(f(&[b"S", b"12", b"invalid syntax"])) {
            JobOutcome::SyntaxError { line, message } => {
                assert_eq!(line, Some(12));
                assert_eq!(message, "invalid syntax");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode_answer(f(&[b"S", b"", b"null bytes"])),
            JobOutcome::SyntaxError { line: None, .. }
        ));
        assert!(
            matches!(decode_answer(f(&[b"K", b"\x42\x0d\x0d\x0a"])), JobOutcome::Compiled { pyc } if pyc.len() == 4)
        );
        assert!(matches!(decode_answer(f(&[b"Z"])), JobOutcome::Failed(_)));
        let hello = decode_hello(&f(&[
            b"H",
            b"3.12.1",
            b"\xcb\x0d\x0d\x0a",
            b"cpython",
            b"3.12",
            b"cpython-312",
            b"/p/bin/python3.12",
            b"/p\0/p",
        ]))
        .unwrap();
        assert_eq!(hello.version, "3.12.1");
        assert_eq!(hello.magic, [0xcb, 0x0d, 0x0d, 0x0a]);
        assert_eq!(hello.version_info, (3, 12));
        assert_eq!(hello.cache_tag.as_deref(), Some("cpython-312"));
        assert_eq!(hello.prefixes, [PathBuf::from("/p")]);
        // The old three-field hello is not an answer.
        assert!(decode_hello(&f(&[b"H", b"3.12.1", b"\xcb\x0d\x0d\x0a"])).is_none());
    }
}
