//! What a proof means for a verdict: the state, severity and evidence a cache gets once
//! its code has been compared with a fresh compile of its source. Pure; `messages` words
//! the evidence.

use crate::store::proofs::Proof;
use crate::verdict::{Checked, Evidence, Severity, State, Verdict};

/// Upgrade a header verdict (fresh or suspect: the interpreter accepts the cache) with a
/// proof made by `prover` (e.g. `Python 3.12.1`).
/// [`apply`] to an entry: a syntax error is then named `source.py:LINE`.
pub fn apply_to(entry: &mut crate::report::Entry, proof: &Proof, prover: &str) {
    apply(&mut entry.verdict, proof, prover);
    if let Some(Evidence::SourceSyntaxError { source_name, .. }) =
        entry.verdict.evidence.as_deref_mut()
    {
        *source_name = entry
            .source
            .as_deref()
            .and_then(std::path::Path::file_name)
            .map(ToOwned::to_owned);
    }
}

pub fn apply(verdict: &mut Verdict, proof: &Proof, prover: &str) {
    let reader_series = verdict.interpreter;
    let was = verdict.state;
    verdict.checked = Checked::Deep;
    let evidence = match proof {
        Proof::Equal => {
            verdict.state = State::Fresh;
            verdict.severity = Severity::Ok;
            if was != State::Suspect {
                return;
            }
            Evidence::ProvenSame {
                prover: prover.to_owned(),
            }
        }
        Proof::Different(difference) => {
            verdict.state = State::HiddenStale;
            verdict.severity = Severity::Error;
            Evidence::CodeDiffers {
                difference: difference.clone(),
                prover: prover.to_owned(),
                reader_series,
            }
        }
        Proof::SyntaxError { line, message } => {
            verdict.state = State::HiddenStale;
            verdict.severity = Severity::Error;
            Evidence::SourceSyntaxError {
                line: *line,
                message: message.clone(),
                reader_series,
                source_name: None,
            }
        }
    };
    // The proof's evidence replaces the header's (and any note from an earlier attempt).
    verdict.evidence = Some(Box::new(evidence));
    verdict.unproven = None;
}

/// Note on a cache that stays judged by its header: `why` it could not be proven.
pub fn not_proven(verdict: &mut Verdict, why: &str) {
    verdict.unproven = Some(why.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{self, reason};
    use crate::pyc::header::InvalidationMode;
    use crate::pyc::magic::Series;
    use crate::verdict::Reader;

    /// What made the suspect verdict below suspect.
    fn modified_after() -> Evidence {
        Evidence::SourceNewerThanCache {
            source_ns: 1_700_000_000_500_000_000,
            cache_ns: 1_700_000_000_200_000_000,
            sized: true,
            reader: Reader::Importer,
            reader_series: Series::cpython(3, 11),
        }
    }

    fn header_verdict(state: State) -> Verdict {
        Verdict {
            state,
            severity: if state == State::Fresh {
                Severity::Ok
            } else {
                Severity::Warning
            },
            evidence: (state == State::Suspect).then(|| Box::new(modified_after())),
            unproven: None,
            interpreter: Some(Series::cpython(3, 11)),
            tag: Some("cpython-311".into()),
            invalidation: Some(InvalidationMode::Timestamp),
            optimization: Some(0),
            checked: Checked::Header,
            future_source_mtime: None,
        }
    }

    #[test]
    fn equal_is_fresh_and_deep() {
        let mut v = header_verdict(State::Fresh);
        apply(&mut v, &Proof::Equal, "Python 3.11.7");
        assert_eq!(
            (v.state, v.severity, v.checked),
            (State::Fresh, Severity::Ok, Checked::Deep)
        );
        assert_eq!(reason(&v), None);
        let mut v = header_verdict(State::Suspect);
        apply(&mut v, &Proof::Equal, "Python 3.11.7");
        assert_eq!(v.state, State::Fresh);
        assert_eq!(
            v.evidence.as_deref(),
            Some(&Evidence::ProvenSame {
                prover: "Python 3.11.7".into()
            })
        );
        assert!(reason(&v).unwrap().contains("compiles to the same code"));
    }

    #[test]
    fn different_is_hidden_stale_and_says_what() {
        let mut v = header_verdict(State::Suspect);
        apply(
            &mut v,
            &Proof::Different(Some(
                "constant 60 became 300 in function get_timeout".into(),
            )),
            "Python 3.11.7",
        );
        assert_eq!(
            (v.state, v.severity, v.checked),
            (State::HiddenStale, Severity::Error, Checked::Deep)
        );
        assert!(matches!(
            v.evidence.as_deref(),
            Some(Evidence::CodeDiffers { difference: Some(d), .. }) if d.contains("constant 60")
        ));
        let reason = reason(&v).unwrap();
        assert!(
            reason.contains("constant 60 became 300 in function get_timeout"),
            "{reason}"
        );
        assert!(reason.contains("Python 3.11 runs the old code"), "{reason}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let mut v = header_verdict(State::Fresh);
        apply(
            &mut v,
            &Proof::SyntaxError {
                line: Some(7),
                message: "invalid syntax".into(),
            },
            "Python 3.11.7",
        );
        assert_eq!(v.state, State::HiddenStale);
        assert_eq!(
            reason(&v).unwrap(),
            "Python 3.11 will run the old code; the source does not compile: line 7: SyntaxError: invalid syntax"
        );
    }

    #[test]
    fn not_proven_keeps_the_verdict() {
        let mut v = header_verdict(State::Suspect);
        not_proven(&mut v, "no Python 3.11 interpreter found");
        assert_eq!(v.state, State::Suspect);
        assert_eq!(v.checked, Checked::Header);
        assert_eq!(v.evidence.as_deref(), Some(&modified_after()));
        assert_eq!(
            reason(&v).unwrap(),
            format!(
                "{} (not proven: no Python 3.11 interpreter found; judged by header only)",
                messages::evidence(&modified_after())
            )
        );
        let mut fresh = header_verdict(State::Fresh);
        not_proven(&mut fresh, "pytest rewrites it");
        assert_eq!(
            reason(&fresh).as_deref(),
            Some("not proven: pytest rewrites it; judged by header only")
        );
    }
}
