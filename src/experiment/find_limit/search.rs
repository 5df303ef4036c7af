//! The find-limit search, pure: from the verdicts seen so far (which limit
//! broke, which held) to the next limit to try, or the answer. Bracket from
//! a start outward in doubling strides, bisect, then confirm the answer and
//! its neighbour above with repeated steps. Tested against fake step
//! functions; no clock, no load.

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// What a step was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// No limit: the collapse the limit prevents.
    Baseline,
    /// Widening the bracket around the cliff.
    Bracket,
    /// Halving the bracket.
    Bisect,
    /// Repeating the answer and its neighbour above.
    Confirm,
}

impl StepKind {
    /// The name in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Baseline => "baseline",
            StepKind::Bracket => "bracket",
            StepKind::Bisect => "bisect",
            StepKind::Confirm => "confirm",
        }
    }
}

/// The search's bounds: candidates `min..=max`, where to start, how many
/// runs confirm an answer, and the most steps it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchSpec {
    /// Smallest candidate.
    pub min: u32,
    /// Largest candidate.
    pub max: u32,
    /// First candidate tried (clamped into min..=max).
    pub start: u32,
    /// Runs the answer and its neighbour above get before the answer stands.
    pub repeats: u32,
    /// Most steps in all.
    pub max_steps: u32,
}

/// What the search does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run a step at this limit.
    Probe(u32, StepKind),
    /// The search is over.
    Done(Answer),
}

/// The search's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The largest limit that never broke (`None`: even `min` broke).
    pub limit: Option<u32>,
    /// The smallest limit that broke (`None`: none up to `max` did).
    pub first_break: Option<u32>,
    /// False when the step budget ran out before the answer was confirmed.
    pub confirmed: bool,
}

/// The next step of the search, given every `(limit, broke)` seen so far.
///
/// A limit is good when every run of it passed and broken when any run
/// broke: the answer must hold in every repeat. `good` is the largest good
/// limit below `bad`, the smallest broken one (a good limit above a broken
/// one is noise the monotone model ignores). While either is unknown the
/// bracket widens from `start` in strides of 1, 2, 4, ...; with both known
/// and apart it bisects; once they are neighbours each gets `repeats` runs
/// (a repeat that breaks `good` moves the bracket down and the search goes on).
pub fn next_probe(spec: &SearchSpec, seen: &[(u32, bool)]) -> Next {
    let start = spec.start.clamp(spec.min, spec.max);
    let broke_at = |l: u32| seen.iter().any(|&(x, b)| x == l && b);
    let runs = |l: u32| seen.iter().filter(|&&(x, _)| x == l).count() as u32;
    let bad = seen.iter().filter(|s| s.1).map(|s| s.0).min();
    let good = seen
        .iter()
        .filter(|&&(l, _)| !broke_at(l) && bad.is_none_or(|b| l < b))
        .map(|s| s.0)
        .max();
    let out_of_steps = seen.len() as u32 >= spec.max_steps;
    let done = |confirmed| {
        Next::Done(Answer {
            limit: good,
            first_break: bad,
            confirmed,
        })
    };
    if out_of_steps {
        return done(false);
    }
    match (good, bad) {
        (None, None) => Next::Probe(start, StepKind::Bracket),
        (None, Some(b)) if b <= spec.min => done(true),
        (None, Some(b)) => {
            let stride = start.saturating_sub(b) + 1;
            Next::Probe(b.saturating_sub(stride).max(spec.min), StepKind::Bracket)
        }
        (Some(g), None) if g >= spec.max => {
            if runs(g) < spec.repeats {
                Next::Probe(g, StepKind::Confirm)
            } else {
                done(true)
            }
        }
        (Some(g), None) => {
            let stride = g.saturating_sub(start) + 1;
            Next::Probe(g.saturating_add(stride).min(spec.max), StepKind::Bracket)
        }
        (Some(g), Some(b)) if b - g > 1 => Next::Probe(g + (b - g) / 2, StepKind::Bisect),
        (Some(g), Some(b)) => {
            if runs(g) < spec.repeats {
                Next::Probe(g, StepKind::Confirm)
            } else if runs(b) < spec.repeats {
                Next::Probe(b, StepKind::Confirm)
            } else {
                done(true)
            }
        }
    }
}

/// Runs the search with `step` as the experiment: `step(limit, kind)`
/// returns whether that limit broke, or `None` to stop (interrupted).
/// Returns the answer and the `(limit, broke)` of every step, in order.
pub fn search(
    spec: &SearchSpec,
    step: &mut dyn FnMut(u32, StepKind) -> Result<Option<bool>>,
) -> Result<(Answer, Vec<(u32, bool)>)> {
    let mut seen = Vec::new();
    loop {
        match next_probe(spec, &seen) {
            Next::Done(answer) => return Ok((answer, seen)),
            Next::Probe(limit, kind) => match step(limit, kind)? {
                Some(broke) => seen.push((limit, broke)),
                None => {
                    let Next::Done(mut answer) = next_probe(
                        &SearchSpec {
                            max_steps: 0,
                            ..*spec
                        },
                        &seen,
                    ) else {
                        unreachable!("a search out of steps is done")
                    };
                    answer.confirmed = false;
                    return Ok((answer, seen));
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search against a fake step function that breaks at and
    /// above `cliff` (and at `flaky`, once, when given).
    fn against_cliff(spec: SearchSpec, cliff: u32) -> (Answer, Vec<(u32, bool)>) {
        search(&spec, &mut |l, _| Ok(Some(l >= cliff))).expect("no error")
    }

    fn spec(min: u32, max: u32, start: u32) -> SearchSpec {
        SearchSpec {
            min,
            max,
            start,
            repeats: 2,
            max_steps: 40,
        }
    }

    #[test]
    fn find_limit_search_finds_the_cliff_in_few_steps() {
        // (min, max, start, cliff, most steps allowed)
        let cases = [
            (1, 64, 1, 24, 14), // from the bottom: 1,2,4,8,16,32 then bisect 24..32
            (1, 64, 5, 6, 6),   // started at the model's answer: 5, 6, then confirm
            (1, 64, 20, 6, 12), // started too high: down 19, 17, 13, 5, then up
            (1, 64, 64, 2, 14),
            (1, 1000, 1, 700, 26),
            (3, 9, 3, 5, 8),
        ];
        for (min, max, start, cliff, most) in cases {
            let (answer, seen) = against_cliff(spec(min, max, start), cliff);
            assert_eq!(
                answer.limit,
                Some(cliff - 1),
                "cliff {cliff} from {start}: {seen:?}"
            );
            assert_eq!(answer.first_break, Some(cliff), "{seen:?}");
            assert!(answer.confirmed);
            assert!(
                seen.len() <= most,
                "cliff {cliff} from {start}: {} steps {seen:?}",
                seen.len()
            );
            // The answer and its neighbour each ran `repeats` times.
            assert_eq!(
                seen.iter().filter(|s| s.0 == cliff - 1).count(),
                2,
                "{seen:?}"
            );
            assert_eq!(seen.iter().filter(|s| s.0 == cliff).count(), 2, "{seen:?}");
        }
    }

    #[test]
    fn find_limit_search_edges_of_the_range() {
        // Even the smallest limit breaks: no answer.
        let (answer, seen) = against_cliff(spec(1, 16, 4), 1);
        assert_eq!(
            (answer.limit, answer.first_break),
            (None, Some(1)),
            "{seen:?}"
        );
        // Nothing breaks up to max: max, confirmed.
        let (answer, seen) = against_cliff(spec(1, 16, 4), 100);
        assert_eq!(
            (answer.limit, answer.first_break),
            (Some(16), None),
            "{seen:?}"
        );
        assert_eq!(seen.iter().filter(|s| s.0 == 16).count(), 2);
    }

    #[test]
    fn find_limit_search_a_failed_repeat_moves_the_answer_down() {
        // 6 passes its first run and breaks its second: the answer is 5.
        let mut runs_of_6 = 0;
        let (answer, seen) = search(&spec(1, 64, 6), &mut |l, _| {
            if l == 6 {
                runs_of_6 += 1;
                return Ok(Some(runs_of_6 >= 2));
            }
            Ok(Some(l >= 7))
        })
        .unwrap();
        assert_eq!(
            (answer.limit, answer.first_break),
            (Some(5), Some(6)),
            "{seen:?}"
        );
    }

    #[test]
    fn find_limit_search_stops_within_its_budget_and_on_interrupt() {
        let (answer, seen) = against_cliff(
            SearchSpec {
                max_steps: 3,
                ..spec(1, 1000, 1)
            },
            700,
        );
        assert_eq!(seen.len(), 3);
        assert!(!answer.confirmed);
        let mut n = 0;
        let (answer, seen) = search(&spec(1, 64, 5), &mut |l, _| {
            n += 1;
            Ok(if n > 2 { None } else { Some(l >= 6) })
        })
        .unwrap();
        assert_eq!(seen, vec![(5, false), (6, true)]);
        assert_eq!((answer.limit, answer.confirmed), (Some(5), false));
    }

    #[test]
    fn find_limit_next_probe_names_its_phase() {
        let s = spec(1, 64, 5);
        assert_eq!(next_probe(&s, &[]), Next::Probe(5, StepKind::Bracket));
        assert_eq!(
            next_probe(&s, &[(5, false)]),
            Next::Probe(6, StepKind::Bracket)
        );
        assert_eq!(
            next_probe(&s, &[(5, false), (6, false), (8, true)]),
            Next::Probe(7, StepKind::Bisect)
        );
        assert_eq!(
            next_probe(&s, &[(5, false), (6, true)]),
            Next::Probe(5, StepKind::Confirm)
        );
    }
}
