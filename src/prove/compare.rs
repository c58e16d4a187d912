//! What a proof means for a verdict: the state, severity and reason a cache gets once its
//! code has been compared with a fresh compile of its source. Pure.

use crate::store::proofs::Proof;
use crate::verdict::{Checked, Severity, State, Verdict};

/// Upgrade a header verdict (fresh or suspect: the interpreter accepts the cache) with a
/// proof made by `prover` (e.g. `Python 3.12.1`).
pub fn apply(verdict: &mut Verdict, proof: &Proof, prover: &str) {
    let reader = verdict
        .interpreter
        .map_or_else(|| "the interpreter".to_owned(), |s| s.to_string());
    let was = verdict.state;
    verdict.checked = Checked::Deep;
    match proof {
        Proof::Equal => {
            verdict.state = State::Fresh;
            verdict.severity = Severity::Ok;
            if was == State::Suspect {
                verdict.reason = Some(format!(
                    "the source changed after the cache was written, but it compiles to the same code (proven with {prover})"
                ));
            }
        }
        Proof::Different(difference) => {
            verdict.state = State::HiddenStale;
            verdict.severity = Severity::Error;
            verdict.reason = Some(match difference {
                Some(d) => format!(
                    "the cached code is not the source's: {d} (compiled with {prover}); the header matches, so {reader} runs the old code"
                ),
                None => format!(
                    "the cached code is not what the source compiles to (compiled with {prover}); the header matches, so {reader} runs the old code"
                ),
            });
        }
        Proof::SyntaxError { line, message } => {
            verdict.state = State::HiddenStale;
            verdict.severity = Severity::Error;
            verdict.reason = Some(match line {
                Some(n) => format!(
                    "{reader} will run the old code; the source has a SyntaxError at line {n} ({message})"
                ),
                None => format!("{reader} will run the old code; the source does not compile ({message})"),
            });
        }
    }
}

/// Note on a cache that stays judged by its header.
pub fn not_proven(verdict: &mut Verdict, why: &str) {
    let note = format!("not proven: {why}; judged by header only");
    verdict.reason = Some(match verdict.reason.take() {
        Some(reason) => format!("{reason} ({note})"),
        None => note,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyc::magic::Series;

    fn header_verdict(state: State) -> Verdict {
        Verdict {
            state,
            severity: if state == State::Fresh {
                Severity::Ok
            } else {
                Severity::Warning
            },
            reason: (state == State::Suspect).then(|| "modified after".to_owned()),
            interpreter: Some(Series::cpython(3, 11)),
            tag: Some("cpython-311".into()),
            invalidation: Some("timestamp"),
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
        assert_eq!(v.reason, None);
        let mut v = header_verdict(State::Suspect);
        apply(&mut v, &Proof::Equal, "Python 3.11.7");
        assert_eq!(v.state, State::Fresh);
        assert!(v.reason.unwrap().contains("compiles to the same code"));
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
        let reason = v.reason.unwrap();
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
            v.reason.unwrap(),
            "Python 3.11 will run the old code; the source has a SyntaxError at line 7 (invalid syntax)"
        );
    }

    #[test]
    fn not_proven_keeps_the_verdict() {
        let mut v = header_verdict(State::Suspect);
        not_proven(&mut v, "no Python 3.11 interpreter found");
        assert_eq!(v.state, State::Suspect);
        assert_eq!(v.checked, Checked::Header);
        assert!(v.reason.unwrap().starts_with("modified after (not proven"));
    }
}
