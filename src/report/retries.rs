//! The retries section of summary.json: what a retry policy cost (attempts,
//! amplification, retries by reason, what the budget refused and what the
//! run's end cut) and the goodput left, from a run's totals or the sum of
//! a sharded run's summaries.
//!
//! Takes finished [`RetryTotals`]; hands on a [`RetrySummary`]. It knows
//! nothing of how retries were timed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::summary::round3;
use crate::outcome::Class;
use crate::record::RetryTotals;

/// What retrying cost in one run (present when a retry policy was on).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RetrySummary {
    /// Attempts dispatched: every arrival's first, and every retry
    /// (`attempts = arrivals + retries`).
    pub attempts: u64,
    /// Retries dispatched.
    pub retries: u64,
    /// Attempts per arrival: how much the callers multiplied the load.
    pub amplification: f64,
    /// Retries by the class of the attempt they followed (`504`,
    /// `client_timeout`, ...).
    pub by_reason: BTreeMap<String, u64>,
    /// Retries the budget refused (their attempt's outcome stood).
    pub budget_refused: u64,
    /// Arrivals that failed after every retry the policy allows.
    pub exhausted: u64,
    /// Retries not made because the run ended or was stopped first.
    pub cut_at_end: u64,
    /// 2xx answers per second of the run.
    pub goodput_per_s: f64,
}

impl RetrySummary {
    /// The summary of `t` for a run with `arrivals` arrivals, `ok` 2xx
    /// answers, over `duration_s`.
    pub fn of(t: &RetryTotals, arrivals: u64, ok: u64, duration_s: f64) -> RetrySummary {
        RetrySummary {
            attempts: t.attempts,
            retries: t.made,
            amplification: ratio(t.attempts, arrivals),
            by_reason: Class::ALL
                .iter()
                .filter(|c| t.by_reason[c.index()] > 0)
                .map(|c| (c.name().to_string(), t.by_reason[c.index()]))
                .collect(),
            budget_refused: t.budget_refused,
            exhausted: t.exhausted,
            cut_at_end: t.cut,
            goodput_per_s: round3(ok as f64 / duration_s.max(1e-9)),
        }
    }

    /// Shards' summaries added (counts summed, goodput per second summed:
    /// the shards ran at once), for `arrivals` in all.
    pub fn merged<'a>(
        shards: impl Iterator<Item = &'a RetrySummary>,
        arrivals: u64,
    ) -> RetrySummary {
        let mut m = RetrySummary::default();
        for s in shards {
            m.attempts += s.attempts;
            m.retries += s.retries;
            for (reason, n) in &s.by_reason {
                *m.by_reason.entry(reason.clone()).or_default() += n;
            }
            m.budget_refused += s.budget_refused;
            m.exhausted += s.exhausted;
            m.cut_at_end += s.cut_at_end;
            m.goodput_per_s = round3(m.goodput_per_s + s.goodput_per_s);
        }
        m.amplification = ratio(m.attempts, arrivals);
        m
    }

    /// The console's line.
    pub fn line(&self) -> String {
        let reasons: Vec<String> = self
            .by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        format!(
            "retries     {} ({}), {} attempts = x{:.2} amplification; budget refused {}, gave up after max {}, cut at the end {}; goodput {:.1}/s",
            self.retries,
            if reasons.is_empty() {
                "none".to_string()
            } else {
                reasons.join(", ")
            },
            self.attempts,
            self.amplification,
            self.budget_refused,
            self.exhausted,
            self.cut_at_end,
            self.goodput_per_s
        )
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        round3(a as f64 / b as f64)
    }
}
