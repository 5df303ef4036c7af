//! The streaming tally of a log: every line read is added to counts and
//! histograms per interval, per route and per key, and to a bounded sample
//! for the scatter; nothing of the line is kept.
//!
//! Takes [`Line`]s one at a time; hands on a [`Tally`] whose size is
//! bounded whatever the log's length: at most [`MAX_KEYS`] keys and
//! [`MAX_ROUTES`] routes by name (later ones are summed under `(other)`),
//! at most [`MAX_INTERVALS`] intervals (the interval doubles when a log
//! spans more), [`SCATTER_POINTS`] points and [`MALFORMED_SAMPLES`]
//! malformed lines. Histograms (HdrHistogram, 2 significant figures,
//! 0.1 ms to 1 h: the gateways log milliseconds) are made for a key or
//! route once it has a value to hold: about 20 KiB each, at most six per
//! key and two per route.
//!
//! How a line ended ([`Ending`]) is decided here, from its status, its
//! upstream status and HAProxy's termination state; what that means for
//! the key's accounting is the analysis's.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::line::Line;

/// Keys counted by name; the rest are summed under [`OTHER`].
pub const MAX_KEYS: usize = 1000;
/// Routes counted by name; the rest are summed under [`OTHER`].
pub const MAX_ROUTES: usize = 1000;
/// Most intervals kept: past it, the interval doubles.
pub const MAX_INTERVALS: usize = 10_000;
/// Requests sampled (uniformly, seeded) for the scatter.
pub const SCATTER_POINTS: usize = 20_000;
/// Malformed lines kept as examples (the first ones).
pub const MALFORMED_SAMPLES: usize = 10;
/// The name the keys or routes past the cap are summed under.
pub const OTHER: &str = "(other)";

/// Smallest value the histograms tell apart, us (a tenth of the logs' millisecond).
const HIST_LOW_US: u64 = 100;
/// Largest value a histogram holds, us (longer ones are recorded as this).
const HIST_HIGH_US: u64 = 3_600_000_000;

/// How a request ended, as its line tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The upstream answered (any status): its upstream time is its work.
    Completed,
    /// The client left first: nginx's `499`, HAProxy's `C`/`c`
    /// termination states, or nginx's `404` with `$upstream_status` `-`
    /// after upstream time (a `post_action` quirk). Its upstream time is
    /// where the log stopped watching: the work's true length is longer.
    ClientAbort,
    /// The gateway's own upstream timeout: `504`, HAProxy's `s` states.
    /// Cut the same way.
    GatewayTimeout,
    /// No upstream time was logged: the gateway answered itself (a 429, a
    /// cache hit) or nginx wrote `-`.
    NoUpstream,
}

/// nginx's 499, or a HAProxy termination state of the client's side.
fn client_left(line: &Line<'_>) -> bool {
    line.status == Some(499) || matches!(line.termination.first(), Some(b'C' | b'c'))
}

/// How `line` ended.
pub fn ending(line: &Line<'_>) -> Ending {
    let state = line.termination.first().copied();
    let cut = line.upstream_time_us.is_some();
    if client_left(line) {
        return if cut {
            Ending::ClientAbort
        } else {
            Ending::NoUpstream
        };
    }
    if line.status == Some(404) && line.upstream_status_missing && cut {
        return Ending::ClientAbort;
    }
    if line.status == Some(504) || state == Some(b's') {
        return if cut {
            Ending::GatewayTimeout
        } else {
            Ending::NoUpstream
        };
    }
    if cut {
        Ending::Completed
    } else {
        Ending::NoUpstream
    }
}

/// What the format logs, so the report says what it cannot show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Has {
    /// A time of day (intervals and rates).
    pub time: bool,
    /// A key.
    pub key: bool,
    /// A request time.
    pub request_time: bool,
    /// An upstream time.
    pub upstream_time: bool,
    /// An upstream status.
    pub upstream_status: bool,
}

/// A histogram made when it is first given a value.
#[derive(Debug, Clone, Default)]
pub struct Hist(Option<Histogram<u64>>);

impl Hist {
    /// Records `us` (clamped to the histogram's range).
    pub fn record(&mut self, us: u64) {
        let h = self.0.get_or_insert_with(|| {
            Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, 2).expect("valid bounds")
        });
        h.saturating_record(us.min(HIST_HIGH_US));
    }

    /// The histogram, `None` when nothing was recorded.
    pub fn get(&self) -> Option<&Histogram<u64>> {
        self.0.as_ref().filter(|h| !h.is_empty())
    }

    /// Adds `other` in.
    pub fn add(&mut self, other: &Hist) {
        if let Some(o) = &other.0 {
            match &mut self.0 {
                Some(h) => h.add(o).expect("same bounds"),
                None => self.0 = Some(o.clone()),
            }
        }
    }
}

/// The counts of one group of lines: a key, a route, or all.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Lines.
    pub requests: u64,
    /// Lines per status (`0`: no status logged).
    pub by_status: BTreeMap<u16, u64>,
    /// `$request_time`, us.
    pub request_time: Hist,
    /// Upstream time of every line that has one, us.
    pub upstream_time: Hist,
    /// Sum of what the lines charged (accounted, else upstream time), us.
    pub charged_us: u64,
    /// Sum of upstream times, us.
    pub upstream_us: u64,
    /// Sum of request times, us.
    pub request_us: u64,
    /// Lines whose request time is over `--slow`.
    pub slow: u64,
    /// Lines with more than one upstream attempt (`0.5, 0.3`).
    pub retried: u64,
    /// Lines per [`Ending`], in its order.
    pub endings: [u64; 4],
    /// Of the client aborts, the `404`s with `$upstream_status` `-`.
    pub abort_404: u64,
    /// Client aborts with no upstream time logged (`499 urt=-`: nginx
    /// before 1.15.7, or a client gone before the upstream was asked):
    /// left out of the fit, since their work cannot be told from none.
    pub abort_no_time: u64,
    /// Upstream time of completed lines that did not fail, us (the
    /// censored fit's events).
    pub completed: Hist,
    /// Upstream time of client aborts and gateway timeouts, us (the fit's
    /// censored times: the work went on past them).
    pub censored: Hist,
    /// What client aborts charged, us (where they stand on the scatter).
    pub abort_charged: Hist,
    /// What gateway timeouts charged, us.
    pub timeout_charged: Hist,
    /// Exact sums for the fit: completed upstream time, us.
    pub completed_us: u64,
    /// Censored upstream time, us.
    pub censored_us: u64,
    /// Completed requests that failed (a 5xx: the upstream refused, reset
    /// or erred): their time is logged whole, but they are no sample of
    /// the key's work, so the fit leaves them out.
    pub failed: u64,
    /// Their upstream time, us.
    pub failed_us: u64,
    /// What client aborts and timeouts charged, us.
    pub cut_charged_us: u64,
}

impl Group {
    /// Adds one line (its ending already decided), `slow_us` the threshold.
    fn add(&mut self, line: &Line<'_>, ending: Ending, slow_us: u64, fit: bool) {
        self.requests += 1;
        *self.by_status.entry(line.status.unwrap_or(0)).or_default() += 1;
        if let Some(rt) = line.request_time_us {
            self.request_time.record(rt);
            self.request_us += rt;
            self.slow += u64::from(rt > slow_us);
        }
        if let Some(ut) = line.upstream_time_us {
            self.upstream_time.record(ut);
            self.upstream_us += ut;
        }
        let charged = line.charged_us();
        self.charged_us += charged;
        self.retried += u64::from(line.upstream_attempts > 1);
        self.endings[ending as usize] += 1;
        if ending == Ending::ClientAbort && line.status == Some(404) {
            self.abort_404 += 1;
        }
        if ending == Ending::NoUpstream && client_left(line) {
            self.abort_no_time += 1;
        }
        if !fit {
            return;
        }
        let ut = line.upstream_time_us.unwrap_or(0);
        match ending {
            Ending::Completed if line.status.is_some_and(|s| s >= 500) => {
                self.failed += 1;
                self.failed_us += ut;
            }
            Ending::Completed => {
                self.completed.record(ut);
                self.completed_us += ut;
            }
            Ending::ClientAbort | Ending::GatewayTimeout => {
                self.censored.record(ut);
                self.censored_us += ut;
                self.cut_charged_us += charged;
                if ending == Ending::ClientAbort {
                    self.abort_charged.record(charged);
                } else {
                    self.timeout_charged.record(charged);
                }
            }
            Ending::NoUpstream => {}
        }
    }

    /// Lines that ended `ending`.
    pub fn ended(&self, ending: Ending) -> u64 {
        self.endings[ending as usize]
    }
}

/// Groups by name, at most `cap` of them; the rest summed under [`OTHER`].
#[derive(Debug, Clone, Default)]
pub struct Groups {
    index: HashMap<Box<[u8]>, usize>,
    /// The groups by name, in the order first seen.
    pub named: Vec<(String, Group)>,
    /// The lines of names past the cap (which are not remembered: memory
    /// stays bounded however many names a log has).
    pub other: Group,
    cap: usize,
}

impl Groups {
    fn new(cap: usize) -> Self {
        Groups {
            cap,
            ..Groups::default()
        }
    }

    /// The group of `name` and its index in `named` (`u32::MAX`: `other`).
    fn get(&mut self, name: &[u8]) -> (u32, &mut Group) {
        if let Some(&i) = self.index.get(name) {
            return (i as u32, &mut self.named[i].1);
        }
        if self.named.len() >= self.cap {
            return (u32::MAX, &mut self.other);
        }
        let i = self.named.len();
        self.index.insert(name.into(), i);
        self.named
            .push((String::from_utf8_lossy(name).into_owned(), Group::default()));
        (i as u32, &mut self.named[i].1)
    }

    /// Every group with its name, `(other)` last when it has lines.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Group)> {
        self.named
            .iter()
            .map(|(n, g)| (n.as_str(), g))
            .chain((self.other.requests > 0).then_some((OTHER, &self.other)))
    }
}

/// One interval of the log.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    /// Lines.
    pub requests: u64,
    /// Lines by status class: 1xx to 5xx at 1..=5, no status at 0.
    pub classes: [u64; 6],
    /// Client aborts.
    pub aborts: u64,
    /// Sum of request times, us.
    pub request_us: u64,
    /// Longest request time, us.
    pub max_request_us: u64,
    /// Lines over `--slow`.
    pub slow: u64,
    /// Sum of what the lines charged, us.
    pub charged_us: u64,
}

impl Bucket {
    fn add(&mut self, other: &Bucket) {
        self.requests += other.requests;
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        self.aborts += other.aborts;
        self.request_us += other.request_us;
        self.max_request_us = self.max_request_us.max(other.max_request_us);
        self.slow += other.slow;
        self.charged_us += other.charged_us;
    }
}

/// The log's intervals: by index (time / width), the width doubling when
/// there would be more than [`MAX_INTERVALS`].
#[derive(Debug, Clone)]
pub struct Intervals {
    /// The interval's length, us.
    pub width_us: u64,
    /// Buckets by index from the epoch (`time_us / width_us`).
    pub buckets: BTreeMap<i64, Bucket>,
}

impl Intervals {
    fn bucket(&mut self, time_us: i64) -> &mut Bucket {
        let index = time_us.div_euclid(self.width_us as i64);
        // One lookup while there is room; a second only when full.
        if self.buckets.len() >= MAX_INTERVALS && !self.buckets.contains_key(&index) {
            self.coarsen();
            return self.bucket(time_us);
        }
        self.buckets.entry(index).or_default()
    }

    /// Doubles the width, merging each pair of buckets.
    fn coarsen(&mut self) {
        self.width_us *= 2;
        let old = std::mem::take(&mut self.buckets);
        for (index, bucket) in old {
            self.buckets
                .entry(index.div_euclid(2))
                .or_default()
                .add(&bucket);
        }
    }
}

/// One sampled request for the scatter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// What the gateway charged, us.
    pub charged_us: u64,
    /// Its upstream time, us.
    pub upstream_us: u64,
    /// How it ended.
    pub ending: Ending,
    /// Its key's index in [`Tally::keys`] (`u32::MAX`: `(other)`).
    pub key: u32,
}

/// A malformed line kept as an example.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MalformedLine {
    /// The file (as given; `-` is stdin).
    pub file: String,
    /// Its line number in that file, from 1.
    pub line: u64,
    /// What is wrong.
    pub reason: String,
    /// The line, cut at 300 bytes.
    pub text: String,
}

/// What `contend logs` counts as it streams.
#[derive(Debug, Clone)]
pub struct Options {
    /// The first interval's length, us.
    pub interval_us: u64,
    /// Request time over which a line is slow, us.
    pub slow_us: u64,
    /// Seed of the scatter's sample.
    pub seed: u64,
}

/// Everything counted over the log.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Lines read, blank ones left out.
    pub lines: u64,
    /// Lines not in the format.
    pub malformed: u64,
    /// The first few of them.
    pub malformed_samples: Vec<MalformedLine>,
    /// Earliest and latest time logged, us since the epoch.
    pub span_us: Option<(i64, i64)>,
    /// Some time logged has a fraction of a second (else the log's times
    /// are whole seconds, and its last second is a whole one).
    pub subsecond: bool,
    /// Per interval.
    pub intervals: Intervals,
    /// All lines together.
    pub totals: Group,
    /// Per key.
    pub keys: Groups,
    /// Per route.
    pub routes: Groups,
    /// The scatter's sample.
    pub points: Vec<Point>,
    /// What the format logs.
    pub has: Has,
    /// The options it counted with.
    pub options: Options,
    /// Lines offered to the sample so far.
    sampled: u64,
    rng: StdRng,
    route: Vec<u8>,
}

impl Tally {
    /// An empty tally for a format that logs `has`.
    pub fn new(options: Options, has: Has) -> Self {
        Tally {
            lines: 0,
            malformed: 0,
            malformed_samples: Vec::new(),
            span_us: None,
            subsecond: false,
            intervals: Intervals {
                width_us: options.interval_us.max(1),
                buckets: BTreeMap::new(),
            },
            totals: Group::default(),
            keys: Groups::new(MAX_KEYS),
            routes: Groups::new(MAX_ROUTES),
            points: Vec::new(),
            has,
            rng: StdRng::seed_from_u64(options.seed),
            options,
            sampled: 0,
            route: Vec::with_capacity(256),
        }
    }

    /// Counts a line that is not in the format, keeping the first few.
    pub fn malformed(
        &mut self,
        file: &str,
        line_number: u64,
        reason: impl FnOnce() -> String,
        text: &[u8],
    ) {
        self.lines += 1;
        self.malformed += 1;
        if self.malformed_samples.len() < MALFORMED_SAMPLES {
            let cut = &text[..text.len().min(300)];
            self.malformed_samples.push(MalformedLine {
                file: file.to_string(),
                line: line_number,
                reason: reason(),
                text: String::from_utf8_lossy(cut).into_owned(),
            });
        }
    }

    /// Adds one line read in the format.
    pub fn add(&mut self, line: &Line<'_>) {
        self.lines += 1;
        let ending = ending(line);
        let slow_us = self.options.slow_us;
        self.totals.add(line, ending, slow_us, false);
        super::route::template(line.method, line.path, &mut self.route);
        self.routes
            .get(&self.route)
            .1
            .add(line, ending, slow_us, false);
        let key: &[u8] = if line.key.is_empty() { b"-" } else { line.key };
        let (key_index, group) = self.keys.get(key);
        group.add(line, ending, slow_us, true);
        if let Some(t) = line.time_us {
            self.subsecond |= t % 1_000_000 != 0;
            self.span_us = Some(match self.span_us {
                Some((a, b)) => (a.min(t), b.max(t)),
                None => (t, t),
            });
            let bucket = self.intervals.bucket(t);
            bucket.requests += 1;
            let class = line.status.map_or(0, |s| usize::from(s / 100).min(5));
            bucket.classes[class] += 1;
            bucket.aborts += u64::from(ending == Ending::ClientAbort);
            let rt = line.request_time_us.unwrap_or(0);
            bucket.request_us += rt;
            bucket.max_request_us = bucket.max_request_us.max(rt);
            bucket.slow += u64::from(rt > slow_us);
            bucket.charged_us += line.charged_us();
        }
        if let Some(upstream_us) = line.upstream_time_us {
            self.sample(Point {
                charged_us: line.charged_us(),
                upstream_us,
                ending,
                key: key_index,
            });
        }
    }

    /// Reservoir sampling (Vitter's algorithm R): every request with an
    /// upstream time has the same chance to be drawn.
    fn sample(&mut self, point: Point) {
        self.sampled += 1;
        if self.points.len() < SCATTER_POINTS {
            self.points.push(point);
            return;
        }
        let j = self.rng.random_range(0..self.sampled);
        if (j as usize) < SCATTER_POINTS {
            self.points[j as usize] = point;
        }
    }

    /// Lines read in the format.
    pub fn parsed(&self) -> u64 {
        self.lines - self.malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(status: u16, upstream_us: Option<u64>, us_missing: bool) -> Line<'static> {
        Line {
            status: Some(status),
            upstream_time_us: upstream_us,
            upstream_status_missing: us_missing,
            request_time_us: Some(upstream_us.unwrap_or(1000)),
            key: b"k",
            ..Line::default()
        }
    }

    #[test]
    fn endings_follow_the_status_and_the_termination_state() {
        // (status, upstream time, upstream status `-`, termination, ending)
        let cases = [
            (200, Some(5), false, "", Ending::Completed),
            (502, Some(5), false, "", Ending::Completed),
            (499, Some(5), true, "", Ending::ClientAbort),
            (499, None, true, "", Ending::NoUpstream),
            (404, Some(5), true, "", Ending::ClientAbort),
            (404, Some(5), false, "", Ending::Completed),
            (404, None, true, "", Ending::NoUpstream),
            (504, Some(5), false, "", Ending::GatewayTimeout),
            (400, Some(5), false, "CH--", Ending::ClientAbort),
            (200, Some(5), false, "CD--", Ending::ClientAbort),
            (504, Some(5), false, "sH--", Ending::GatewayTimeout),
            (200, Some(5), false, "----", Ending::Completed),
            (429, None, true, "", Ending::NoUpstream),
        ];
        for (status, upstream, missing, state, want) in cases {
            let mut l = line(status, upstream, missing);
            l.termination = state.as_bytes();
            assert_eq!(ending(&l), want, "{status} {upstream:?} {missing} {state}");
        }
    }

    #[test]
    fn intervals_coarsen_instead_of_growing() {
        let mut intervals = Intervals {
            width_us: 1_000_000,
            buckets: BTreeMap::new(),
        };
        for s in 0..(MAX_INTERVALS as i64 * 3) {
            intervals.bucket(s * 1_000_000).requests += 1;
        }
        assert!(intervals.buckets.len() <= MAX_INTERVALS);
        assert_eq!(intervals.width_us, 4_000_000);
        let total: u64 = intervals.buckets.values().map(|b| b.requests).sum();
        assert_eq!(total, MAX_INTERVALS as u64 * 3, "no line is lost");
    }

    #[test]
    fn keys_past_the_cap_are_summed_and_the_sample_is_bounded() {
        let options = Options {
            interval_us: 1_000_000,
            slow_us: 500_000,
            seed: 1,
        };
        let mut tally = Tally::new(options, Has::default());
        let names: Vec<String> = (0..MAX_KEYS + 5).map(|i| format!("key{i}")).collect();
        for name in &names {
            for _ in 0..30 {
                let mut l = line(200, Some(2_000), false);
                l.key = name.as_bytes();
                tally.add(&l);
            }
        }
        assert_eq!(tally.keys.named.len(), MAX_KEYS);
        assert_eq!(tally.keys.other.requests, 5 * 30);
        assert_eq!(tally.points.len(), SCATTER_POINTS);
        assert!(tally.points.iter().any(|p| p.key == u32::MAX));
        assert_eq!(tally.totals.requests, (MAX_KEYS as u64 + 5) * 30);
        assert_eq!(tally.routes.named.len(), 1, "one route: -");
    }
}
