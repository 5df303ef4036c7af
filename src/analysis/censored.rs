//! What an access log alone can say about the work it did not see: the
//! upstream time of requests the log cut short (a client abort, the
//! gateway's own timeout) estimated from a censored-data fit, the
//! under-count factor that follows, and the knee where logged time stops.
//!
//! Takes one key's upstream times from a log as histograms and exact sums:
//! those of completed requests (events) and those of cut requests
//! (right-censored: the work went on past the time logged). Hands on a
//! [`Fit`] (Kaplan-Meier curve, exponential maximum-likelihood fit with
//! censoring and its interval), an [`Estimate`] of the key's true upstream
//! time against what the log charged it, and the [`Knee`]. Pure: no I/O.
//!
//! The assumption, stated wherever the estimate is shown ([`ASSUMPTION`]):
//! a cut request's work is drawn from the same distribution as the key's
//! completed requests (the cut does not depend on how long the work would
//! have run: non-informative censoring), and that distribution is
//! exponential (a constant hazard), so a cut request's work past its cut
//! is on average the fitted mean. The maximum-likelihood mean with
//! censoring is then the total time on test over the completed requests,
//! `(sum of every logged upstream time) / completed`, and a cut request's
//! expected work is its cut plus that mean. The interval is the usual
//! chi-square one for the exponential mean (`2 T / mean ~ chi2(2d)`,
//! exact when the log stops at a number of completions, close otherwise).
//! The Kaplan-Meier curve needs no assumption but cannot reach past the
//! longest logged time; the gap between it and the fit at the cut is kept
//! as a check of the exponential shape.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::round;

/// The assumption under every under-count estimate, as reports show it.
pub const ASSUMPTION: &str = "a cut request's upstream work is assumed drawn from the same distribution as the key's completed requests (the cut does not depend on how long the work would run) and that distribution exponential: a cut request worked on average its logged time plus the fitted mean (maximum likelihood with right-censoring; 90% chi-square interval). Few completed requests give a wide interval; a heavier tail than exponential makes the estimate low";

/// Level of the intervals.
pub const LEVEL: f64 = 0.90;

/// Most points kept of a Kaplan-Meier curve.
const MAX_CURVE_POINTS: usize = 300;

/// One key's upstream times as the log has them.
#[derive(Debug, Clone, Copy)]
pub struct Times<'a> {
    /// Upstream times of completed requests, us.
    pub completed: Option<&'a Histogram<u64>>,
    /// Upstream times of cut requests (where the log stopped), us.
    pub cut: Option<&'a Histogram<u64>>,
    /// Their exact sums, us.
    pub completed_us: u64,
    /// Sum of the cut times, us.
    pub cut_us: u64,
    /// Upstream time of requests that ended in an error, us: logged whole,
    /// no sample of the work (an upstream that refuses answers at once).
    pub failed_us: u64,
}

impl Times<'_> {
    fn completed_n(&self) -> u64 {
        self.completed.map_or(0, Histogram::len)
    }

    fn cut_n(&self) -> u64 {
        self.cut.map_or(0, Histogram::len)
    }
}

/// The censored-data fit of one key's upstream times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Completed requests (events).
    pub completed: u64,
    /// Cut requests (censored).
    pub cut: u64,
    /// Total time on test: every logged upstream time, s.
    pub time_on_test_s: f64,
    /// The exponential mean by maximum likelihood with censoring, s;
    /// `null` without a completed request.
    pub mean_s: Option<f64>,
    /// Its interval at [`LEVEL`], s.
    pub mean_interval_s: Option<[f64; 2]>,
    /// The Kaplan-Meier survival at the median cut: the share of requests
    /// still working there, without assuming a shape.
    pub km_survival_at_cut: Option<f64>,
    /// The fitted exponential's survival at the same time: far from the
    /// Kaplan-Meier value, the exponential shape is in doubt.
    pub fitted_survival_at_cut: Option<f64>,
    /// The median cut, s.
    pub median_cut_s: Option<f64>,
}

/// Why an estimate is or is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Cut requests and completed ones: the fit estimates the cut work.
    Estimated,
    /// Nothing was cut: the log holds all the upstream time (factor from it alone).
    NothingCut,
    /// Every request with an upstream time was cut: no completed request
    /// to fit, so the log cannot say how long the work ran (at least the
    /// logged time: a factor of 1 or more).
    NoCompleted,
    /// No line of the key logged an upstream time.
    NoUpstreamTime,
    /// The log charged the key nothing while its upstream worked.
    NothingCharged,
}

/// One key's upstream time estimated against what the log charged it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// What the log charged the key (accounted, else upstream time), s.
    pub charged_s: f64,
    /// The upstream time logged (completed, failed and cut alike), s.
    pub logged_upstream_s: f64,
    /// Completed requests' logged upstream time plus each cut request's
    /// expected work, s; `null` unless `status` is `estimated` or `nothing_cut`.
    pub estimated_true_s: Option<f64>,
    /// Its interval at [`LEVEL`], s.
    pub estimated_true_interval_s: Option<[f64; 2]>,
    /// `estimated_true_s / charged_s`: above 1 the log under-counts.
    pub under_count: Option<f64>,
    /// Its interval at [`LEVEL`].
    pub under_count_interval: Option<[f64; 2]>,
    /// Why it is or is not a number.
    pub status: Status,
    /// The fit it came from.
    pub fit: Fit,
}

/// Where a key's logged time stops: its cut requests stand in a column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    /// `client_timeout` (client aborts) or `gateway_timeout`.
    pub kind: String,
    /// The median charged time of the cut requests, s: the timeout.
    pub at_s: f64,
    /// Their interquartile range, s.
    pub spread_s: f64,
    /// Cut requests in the column.
    pub requests: u64,
    /// Completed requests logged past it (+10%): 0 when the logged time
    /// really stops there.
    pub completed_past: u64,
}

/// The Kaplan-Meier survival curve of `times` as (time s, survival) steps,
/// from 1 at 0 down at each completed request's time; ties put
/// completions before cuts, as usual.
pub fn kaplan_meier(times: &Times<'_>) -> Vec<(f64, f64)> {
    let events = recorded(times.completed);
    let cuts = recorded(times.cut);
    let mut at_risk = (times.completed_n() + times.cut_n()) as f64;
    let mut curve = vec![(0.0, 1.0)];
    let mut survival = 1.0;
    let (mut i, mut j) = (0, 0);
    while i < events.len() || j < cuts.len() {
        let t = match (events.get(i), cuts.get(j)) {
            (Some(e), Some(c)) => e.0.min(c.0),
            (Some(e), None) => e.0,
            (None, Some(c)) => c.0,
            (None, None) => break,
        };
        let mut died = 0;
        let mut left = 0;
        while i < events.len() && events[i].0 == t {
            died += events[i].1;
            i += 1;
        }
        while j < cuts.len() && cuts[j].0 == t {
            left += cuts[j].1;
            j += 1;
        }
        if died > 0 && at_risk > 0.0 {
            survival *= 1.0 - died as f64 / at_risk;
            curve.push((t as f64 / 1e6, survival));
        }
        at_risk -= (died + left) as f64;
    }
    thin(curve)
}

/// The (value, count) pairs of a histogram, ascending.
fn recorded(h: Option<&Histogram<u64>>) -> Vec<(u64, u64)> {
    h.map(|h| {
        h.iter_recorded()
            .map(|v| {
                (
                    h.median_equivalent(v.value_iterated_to()),
                    v.count_at_value(),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Keeps at most [`MAX_CURVE_POINTS`] of a curve, its ends included.
fn thin(curve: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if curve.len() <= MAX_CURVE_POINTS {
        return curve;
    }
    let step = curve.len() as f64 / (MAX_CURVE_POINTS - 1) as f64;
    let mut out: Vec<(f64, f64)> = (0..MAX_CURVE_POINTS - 1)
        .map(|k| curve[(k as f64 * step) as usize])
        .collect();
    out.push(*curve.last().expect("not empty"));
    out
}

/// The Kaplan-Meier survival just after `t_s`.
fn survival_at(curve: &[(f64, f64)], t_s: f64) -> f64 {
    curve
        .iter()
        .take_while(|(t, _)| *t <= t_s)
        .last()
        .map_or(1.0, |(_, s)| *s)
}

/// The exponential fit with censoring of `times`.
pub fn fit(times: &Times<'_>) -> Fit {
    let completed = times.completed_n();
    let cut = times.cut_n();
    let time_on_test_s = (times.completed_us + times.cut_us) as f64 / 1e6;
    let mean_s = (completed > 0).then(|| time_on_test_s / completed as f64);
    let mean_interval_s = mean_s.map(|_| {
        let alpha = 1.0 - LEVEL;
        [
            2.0 * time_on_test_s / chi2_quantile(1.0 - alpha / 2.0, completed),
            2.0 * time_on_test_s / chi2_quantile(alpha / 2.0, completed),
        ]
    });
    let median_cut_s = times
        .cut
        .filter(|h| !h.is_empty())
        .map(|h| h.value_at_quantile(0.5) as f64 / 1e6);
    let curve = kaplan_meier(times);
    let km_survival_at_cut = median_cut_s
        .filter(|_| completed > 0)
        .map(|c| round(survival_at(&curve, c), 3));
    let fitted_survival_at_cut = median_cut_s
        .zip(mean_s)
        .map(|(c, m)| round((-c / m).exp(), 3));
    Fit {
        completed,
        cut,
        time_on_test_s: round(time_on_test_s, 6),
        mean_s: mean_s.map(|m| round(m, 6)),
        mean_interval_s: mean_interval_s.map(|[a, b]| [round(a, 6), round(b, 6)]),
        km_survival_at_cut,
        fitted_survival_at_cut,
        median_cut_s: median_cut_s.map(|c| round(c, 6)),
    }
}

/// One key's under-count estimate: its upstream times and what the log
/// charged it in all, us.
pub fn estimate(times: &Times<'_>, charged_us: u64) -> Estimate {
    let fit = fit(times);
    let charged_s = charged_us as f64 / 1e6;
    let failed_s = times.failed_us as f64 / 1e6;
    let logged = fit.time_on_test_s + failed_s;
    let cut = fit.cut as f64;
    let status = if fit.completed + fit.cut == 0 && times.failed_us == 0 {
        Status::NoUpstreamTime
    } else if fit.cut == 0 {
        Status::NothingCut
    } else if fit.completed == 0 {
        Status::NoCompleted
    } else {
        Status::Estimated
    };
    // Memoryless: each cut request worked its cut plus the mean.
    let true_s = match status {
        Status::NothingCut => Some(logged),
        Status::Estimated => fit.mean_s.map(|m| logged + cut * m),
        _ => None,
    };
    let true_interval = match status {
        Status::NothingCut => Some([logged, logged]),
        Status::Estimated => fit
            .mean_interval_s
            .map(|[a, b]| [logged + cut * a, logged + cut * b]),
        _ => None,
    };
    let status = if charged_s <= 0.0 && true_s.is_some_and(|t| t > 0.0) {
        Status::NothingCharged
    } else {
        status
    };
    let ratio = |t: f64| (charged_s > 0.0).then(|| round(t / charged_s, 3));
    Estimate {
        charged_s: round(charged_s, 6),
        logged_upstream_s: round(logged, 6),
        estimated_true_s: true_s.map(|t| round(t, 6)),
        estimated_true_interval_s: true_interval.map(|[a, b]| [round(a, 6), round(b, 6)]),
        under_count: true_s.and_then(ratio),
        under_count_interval: true_interval.and_then(|[a, b]| Some([ratio(a)?, ratio(b)?])),
        status,
        fit,
    }
}

/// The column cut requests stand in: `charged` their charged times, us,
/// and `completed` the key's completed upstream times. A knee needs at
/// least 3 cut requests whose middle half spans at most half their median
/// (2 ms at least: the logs write milliseconds). A timeout cuts them all
/// near one time, spread only by the client's and the gateway's delays;
/// clients that leave at random (a user's stop button) spread them as
/// widely as the work (an exponential's middle half spans 1.6 medians).
pub fn knee(
    kind: &str,
    charged: Option<&Histogram<u64>>,
    completed: Option<&Histogram<u64>>,
) -> Option<Knee> {
    let h = charged.filter(|h| h.len() >= 3)?;
    // The middle of each value's bucket, as the percentiles are shown.
    let at = |q: f64| h.median_equivalent(h.value_at_quantile(q));
    let median = at(0.5);
    let spread = at(0.75).saturating_sub(at(0.25));
    if median == 0 || spread as f64 > (0.5 * median as f64).max(2_000.0) {
        return None;
    }
    let past = (median as f64 * 1.1) as u64 + 1_000;
    let completed_past = completed.map_or(0, |c| {
        c.iter_recorded()
            .filter(|v| v.value_iterated_to() > past)
            .map(|v| v.count_at_value())
            .sum()
    });
    Some(Knee {
        kind: kind.to_string(),
        at_s: round(median as f64 / 1e6, 6),
        spread_s: round(spread as f64 / 1e6, 6),
        requests: h.len(),
        completed_past,
    })
}

/// The `p` quantile of the chi-square distribution with `2 d` degrees of
/// freedom: exact (bisection on its Poisson form) up to `d` = 100, the
/// Wilson-Hilferty approximation past it.
pub fn chi2_quantile(p: f64, d: u64) -> f64 {
    let nu = 2.0 * d as f64;
    if d > 100 {
        let z = super::ps_model::normal_quantile(p);
        let c = 2.0 / (9.0 * nu);
        return nu * (1.0 - c + z * c.sqrt()).powi(3);
    }
    let (mut lo, mut hi) = (0.0, nu + 20.0 * nu.sqrt() + 20.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if chi2_cdf(mid, d) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// P(chi2(2d) <= x) = P(Poisson(x/2) >= d).
fn chi2_cdf(x: f64, d: u64) -> f64 {
    let half = x / 2.0;
    let mut term = (-half).exp();
    let mut below = 0.0;
    for k in 0..d {
        if k > 0 {
            term *= half / k as f64;
        }
        below += term;
    }
    (1.0 - below).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Exp};

    fn hist() -> Histogram<u64> {
        Histogram::new_with_bounds(100, 3_600_000_000, 2).unwrap()
    }

    /// Exponential work of `mean_ms` cut at `cut_ms`, `n` requests:
    /// (completed, cut, sums, true total us).
    fn censored_sample(
        n: usize,
        mean_ms: f64,
        cut_ms: f64,
        seed: u64,
    ) -> (Histogram<u64>, Histogram<u64>, u64, u64, u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let exp = Exp::new(1.0 / mean_ms).unwrap();
        let (mut done, mut cut) = (hist(), hist());
        let (mut done_us, mut cut_us, mut truth_us) = (0, 0, 0);
        for _ in 0..n {
            let work_us = (exp.sample(&mut rng) * 1000.0).round() as u64;
            truth_us += work_us;
            let cut_us_here = (cut_ms * 1000.0) as u64;
            if work_us < cut_us_here {
                done.record(work_us).unwrap();
                done_us += work_us;
            } else {
                cut.record(cut_us_here).unwrap();
                cut_us += cut_us_here;
            }
        }
        (done, cut, done_us, cut_us, truth_us)
    }

    #[test]
    fn chi_square_quantiles_match_the_tables() {
        // (p, d: 2d degrees of freedom, table value)
        let cases = [
            (0.05, 1, 0.1026),
            (0.95, 1, 5.9915),
            (0.05, 2, 0.7107),
            (0.95, 2, 9.4877),
            (0.95, 10, 31.4104),
            (0.05, 50, 77.9295),
            (0.95, 200, 447.6325),
        ];
        for (p, d, want) in cases {
            let got = chi2_quantile(p, d);
            assert!(
                (got - want).abs() / want < 2e-3,
                "p {p} d {d}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn the_fit_finds_the_true_work_of_cut_requests() {
        // 300 ms work, a 50 ms client timeout: about 85% cut, as in the
        // client-abort scenario, with enough requests to pin it down.
        let (done, cut, done_us, cut_us, truth_us) = censored_sample(20_000, 300.0, 50.0, 7);
        let times = Times {
            completed: Some(&done),
            cut: Some(&cut),
            completed_us: done_us,
            cut_us,
            failed_us: 0,
        };
        let charged = done_us + cut_us;
        let e = estimate(&times, charged);
        assert_eq!(e.status, Status::Estimated);
        let truth = truth_us as f64 / charged as f64;
        let got = e.under_count.unwrap();
        assert!((got / truth - 1.0).abs() < 0.05, "{got} vs {truth}");
        let [lo, hi] = e.under_count_interval.unwrap();
        assert!(lo < truth && truth < hi, "{lo}..{hi} misses {truth}");
        let mean = e.fit.mean_s.unwrap();
        assert!((mean - 0.3).abs() < 0.02, "{mean}");
        // The shape check agrees for exponential work.
        let (km, fitted) = (
            e.fit.km_survival_at_cut.unwrap(),
            e.fit.fitted_survival_at_cut.unwrap(),
        );
        assert!((km - fitted).abs() < 0.02, "{km} vs {fitted}");
    }

    #[test]
    fn the_interval_covers_the_truth_as_often_as_it_says() {
        // 200 small logs of 40 requests each: the 90% interval should
        // hold the true factor in roughly 90% of them.
        let mut covered = 0;
        let mut tried = 0;
        for seed in 0..200 {
            let (done, cut, done_us, cut_us, truth_us) = censored_sample(40, 300.0, 50.0, seed);
            if done.is_empty() {
                continue;
            }
            tried += 1;
            let times = Times {
                completed: Some(&done),
                cut: Some(&cut),
                completed_us: done_us,
                cut_us,
                failed_us: 0,
            };
            let e = estimate(&times, done_us + cut_us);
            let truth = truth_us as f64 / (done_us + cut_us) as f64;
            let [lo, hi] = e.under_count_interval.unwrap();
            covered += usize::from(lo <= truth && truth <= hi);
        }
        let share = covered as f64 / tried as f64;
        assert!((0.8..=0.97).contains(&share), "{covered} of {tried}");
    }

    #[test]
    fn what_cannot_be_estimated_says_why() {
        let (mut done, mut cut) = (hist(), hist());
        fn times<'a>(
            done: &'a Histogram<u64>,
            cut: &'a Histogram<u64>,
            d: u64,
            c: u64,
        ) -> Times<'a> {
            Times {
                completed: Some(done),
                cut: Some(cut),
                completed_us: d,
                cut_us: c,
                failed_us: 0,
            }
        }
        assert_eq!(
            estimate(&times(&done, &cut, 0, 0), 0).status,
            Status::NoUpstreamTime
        );
        cut.record(2_000_000).unwrap();
        let e = estimate(&times(&done, &cut, 0, 2_000_000), 2_000_000);
        assert_eq!((e.status, e.under_count), (Status::NoCompleted, None));
        let mut only_done = hist();
        only_done.record(100_000).unwrap();
        let e = estimate(&times(&only_done, &hist(), 100_000, 0), 50_000);
        assert_eq!((e.status, e.under_count), (Status::NothingCut, Some(2.0)));
        done.record(10_000).unwrap();
        let e = estimate(&times(&done, &cut, 10_000, 2_000_000), 0);
        assert_eq!((e.status, e.under_count), (Status::NothingCharged, None));
    }

    #[test]
    fn failed_requests_count_whole_but_stay_out_of_the_fit() {
        let (mut done, mut cut) = (hist(), hist());
        done.record(100_000).unwrap();
        cut.record(50_000).unwrap();
        let base = Times {
            completed: Some(&done),
            cut: Some(&cut),
            completed_us: 100_000,
            cut_us: 50_000,
            failed_us: 0,
        };
        let with_failures = Times {
            failed_us: 30_000,
            ..base
        };
        let (a, b) = (estimate(&base, 150_000), estimate(&with_failures, 180_000));
        assert_eq!(a.fit, b.fit, "the fit is the same");
        // Mean 0.15 s: 0.1 + 0.05 + 0.15 = 0.3 s; with 0.03 s of failures, 0.33 s.
        assert_eq!(a.estimated_true_s, Some(0.3));
        assert_eq!(b.estimated_true_s, Some(0.33));
    }

    #[test]
    fn kaplan_meier_steps_down_at_completions_only() {
        let (mut done, mut cut) = (hist(), hist());
        for ms in [10, 20, 30] {
            done.record(ms * 1000).unwrap();
        }
        // Two cut at 25 ms: at risk 5, 4, then 1.
        cut.record_n(25_000, 2).unwrap();
        let times = Times {
            completed: Some(&done),
            cut: Some(&cut),
            completed_us: 60_000,
            cut_us: 50_000,
            failed_us: 0,
        };
        let curve = kaplan_meier(&times);
        let s: Vec<f64> = curve.iter().map(|(_, s)| round(*s, 4)).collect();
        assert_eq!(s, [1.0, 0.8, 0.6, 0.0]);
        assert!((curve[1].0 - 0.010).abs() < 1e-4);
    }

    #[test]
    fn a_column_of_cut_requests_is_the_knee() {
        let mut charged = hist();
        for ms in [49, 50, 50, 51, 52, 50] {
            charged.record(ms * 1000).unwrap();
        }
        let mut completed = hist();
        for ms in [5, 16, 40] {
            completed.record(ms * 1000).unwrap();
        }
        let k = knee("client_timeout", Some(&charged), Some(&completed)).unwrap();
        assert!((k.at_s - 0.050).abs() < 0.001, "{k:?}");
        assert_eq!((k.requests, k.completed_past), (6, 0));
        // Spread out: no column.
        let mut spread = hist();
        for ms in [10, 50, 200, 900] {
            spread.record(ms * 1000).unwrap();
        }
        assert_eq!(knee("client_timeout", Some(&spread), None), None);
        assert_eq!(knee("client_timeout", None, None), None);
    }
}
