//! The Recorder: what a driver shard measured, in histograms and counters.
//!
//! Takes one event at a time from a shard (an arrival dispatched, a request
//! sent, an outcome) and keeps run totals plus the current interval. Finished
//! intervals are handed on as [`IntervalSnapshot`]s; the [`IntervalMerger`]
//! joins the shards' snapshots into [`IntervalRow`]s. Totals from several
//! shards merge exactly with [`Totals::merge`]. Nothing here knows about
//! sockets or files, and nothing allocates per event (a key's first sent
//! request, and a status code's first sighting, allocate once).
//!
//! Per API key only what a key needs is kept, so that a scenario may have
//! many thousands of keys: its outcome counts (statuses held sparsely), and
//! a latency histogram of [`KEY_HIST_SIGFIG`] significant digits (1%
//! resolution) allocated at its first sent request, and grown only to the
//! range its latencies reach. An idle key costs about 100 bytes.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};

use crate::outcome::{Class, Outcome};

mod addresses;
mod connections;
mod key_space;
mod retries;

pub use addresses::{AddressTotals, Addresses};
pub use connections::{Alpn, Connected, ConnectionTotals, Handshake, TlsVersion};
pub use key_space::{KeyPick, KeySpaceCounts};
pub use retries::RetryTotals;

/// Highest value the histograms track: one hour in microseconds.
pub const HIST_MAX_US: u64 = 3_600_000_000;
/// Significant digits the histograms keep.
pub const HIST_SIGFIG: u8 = 3;
/// Significant digits of each API key's latency histogram: a 1% bucket
/// width, a tenth of the run's own, for a tenth of its memory.
pub const KEY_HIST_SIGFIG: u8 = 2;

/// A microsecond histogram with the project's bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, HIST_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Outcome counts: by class and by exact status code. A run sees a few
/// status codes, so they are kept as a short sorted list.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Indexed by [`Class::index`].
    pub by_class: [u64; Class::ALL.len()],
    by_status: Vec<(u16, u64)>,
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        self.by_class[outcome.class().index()] += 1;
        if let Outcome::Response(code) = outcome {
            self.add_status(code, 1);
        }
    }

    fn add_status(&mut self, code: u16, n: u64) {
        match self.by_status.binary_search_by_key(&code, |&(c, _)| c) {
            Ok(at) => self.by_status[at].1 += n,
            Err(at) => self.by_status.insert(at, (code, n)),
        }
    }

    fn merge(&mut self, other: &Counts) {
        for (a, b) in self.by_class.iter_mut().zip(other.by_class) {
            *a += b;
        }
        for &(code, n) in &other.by_status {
            self.add_status(code, n);
        }
    }

    /// The count of one class.
    pub fn class(&self, class: Class) -> u64 {
        self.by_class[class.index()]
    }

    /// Every outcome counted.
    pub fn total(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// `(status, count)` for every status code seen, ascending.
    pub fn statuses(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.by_status.iter().copied()
    }
}

/// What one API key saw.
#[derive(Debug, Clone, Default)]
pub struct KeyTotals {
    /// Outcome counts of this key's arrivals.
    pub counts: Counts,
    /// Latency (from the intended send time) of this key's sent requests,
    /// us; `None` until the first.
    latency_us: Option<Box<Histogram<u64>>>,
}

impl KeyTotals {
    /// Latency of this key's sent requests, us, at [`KEY_HIST_SIGFIG`]
    /// digits; `None` when it sent none.
    pub fn latency_us(&self) -> Option<&Histogram<u64>> {
        self.latency_us.as_deref()
    }

    fn record_latency(&mut self, latency_us: u64) {
        let h = self.latency_us.get_or_insert_with(|| {
            // Auto-resizing: it grows to the largest latency recorded.
            Box::new(Histogram::new(KEY_HIST_SIGFIG).expect("constant precision is valid"))
        });
        // Within the run's bounds, so the resize stays bounded too.
        let _ = h.record(latency_us.clamp(1, HIST_MAX_US));
    }

    fn merge(&mut self, other: &KeyTotals) {
        self.counts.merge(&other.counts);
        if let Some(theirs) = other.latency_us() {
            match &mut self.latency_us {
                Some(mine) => {
                    // Both auto-resize, so adding cannot fail for want of range.
                    let _ = mine.add(theirs);
                }
                None => self.latency_us = Some(Box::new(theirs.clone())),
            }
        }
    }
}

/// Run totals of one shard, or of several merged.
#[derive(Debug, Clone)]
pub struct Totals {
    /// Arrivals dispatched (each gets exactly one outcome).
    pub arrivals: u64,
    /// Requests written to a connection.
    pub sent: u64,
    /// Outcomes of all arrivals.
    pub counts: Counts,
    /// Latency from the intended send time of every request that was sent
    /// (all classes but `not_sent` and `connect_error`), us.
    pub latency_us: Histogram<u64>,
    /// Latency per outcome class (including time-to-failure of
    /// `connect_error` and the ~0 of `not_sent`), us.
    pub latency_by_class_us: Vec<Histogram<u64>>,
    /// Completion minus actual send time, of sent requests, us.
    pub service_us: Histogram<u64>,
    /// Actual send minus intended send time, of sent requests, us: the
    /// generator's own lateness plus the wait for a connection.
    pub schedule_lag_us: Histogram<u64>,
    /// Dispatch minus intended send time, of every arrival, us: the
    /// generator's own lateness alone (its timer and its CPU). The rest of
    /// the schedule lag is the wait for a connection to the target, which
    /// a target that does not accept or answer makes long.
    pub generator_lag_us: Histogram<u64>,
    /// Per key, in scenario order; empty when the scenario has no keys.
    pub keys: Vec<KeyTotals>,
    /// Per key of a generated key space (empty without one).
    pub key_space: KeySpaceCounts,
    /// Per address of a target driven at several (`[target] urls`), in
    /// the driver's order; empty with one address.
    pub addresses: Addresses,
    /// CPU time the driver threads used, ns.
    pub driver_cpu_ns: u64,
    /// When the last request was sent (CLOCK_MONOTONIC ns; 0: none was).
    pub last_sent_ns: u64,
    /// Why the first failed connect failed, when one did.
    pub first_connect_error: Option<String>,
    /// The connections opened and their handshakes.
    pub connections: ConnectionTotals,
    /// Why the first connection that failed after its TCP connect did
    /// (TLS or the HTTP/2 preface), in the TLS library's or h2's words.
    pub first_handshake_error: Option<String>,
    /// Attempts and retries (all zero without a retry policy).
    pub retries: RetryTotals,
    /// The widest pacing window any shard's pacer used, ns (see
    /// `driver::pacing`).
    pub pacing_window_widest_ns: u64,
    /// Arrivals still waiting for a connection when the run was stopped,
    /// counted `not_sent` (see `driver::shard`).
    pub not_sent_at_stop: u64,
}

impl Totals {
    /// Empty totals for `keys` API keys.
    pub fn new(keys: usize) -> Self {
        Totals {
            arrivals: 0,
            sent: 0,
            counts: Counts::default(),
            latency_us: new_histogram(),
            latency_by_class_us: Class::ALL.iter().map(|_| new_histogram()).collect(),
            service_us: new_histogram(),
            schedule_lag_us: new_histogram(),
            generator_lag_us: new_histogram(),
            keys: vec![KeyTotals::default(); keys],
            key_space: KeySpaceCounts::default(),
            addresses: Addresses::new(),
            driver_cpu_ns: 0,
            last_sent_ns: 0,
            first_connect_error: None,
            connections: ConnectionTotals::new(),
            first_handshake_error: None,
            retries: RetryTotals::default(),
            pacing_window_widest_ns: 0,
            not_sent_at_stop: 0,
        }
    }

    /// Adds another shard's totals; exact (histograms add bucket by bucket).
    pub fn merge(&mut self, other: &Totals) {
        self.arrivals += other.arrivals;
        self.sent += other.sent;
        self.counts.merge(&other.counts);
        add(&mut self.latency_us, &other.latency_us);
        for (a, b) in self
            .latency_by_class_us
            .iter_mut()
            .zip(&other.latency_by_class_us)
        {
            add(a, b);
        }
        add(&mut self.service_us, &other.service_us);
        add(&mut self.schedule_lag_us, &other.schedule_lag_us);
        add(&mut self.generator_lag_us, &other.generator_lag_us);
        for (a, b) in self.keys.iter_mut().zip(&other.keys) {
            a.merge(b);
        }
        self.key_space.merge(&other.key_space);
        addresses::merge(&mut self.addresses, &other.addresses);
        self.driver_cpu_ns += other.driver_cpu_ns;
        self.last_sent_ns = self.last_sent_ns.max(other.last_sent_ns);
        if self.first_connect_error.is_none() {
            self.first_connect_error
                .clone_from(&other.first_connect_error);
        }
        self.connections.merge(&other.connections);
        if self.first_handshake_error.is_none() {
            self.first_handshake_error
                .clone_from(&other.first_handshake_error);
        }
        self.retries.merge(&other.retries);
        self.pacing_window_widest_ns = self
            .pacing_window_widest_ns
            .max(other.pacing_window_widest_ns);
        self.not_sent_at_stop += other.not_sent_at_stop;
    }
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Same bounds everywhere, so addition cannot fail.
    into.add(from).expect("histograms share bounds");
}

fn ns_to_us(ns: u64) -> u64 {
    ns / 1_000
}

/// One shard's view of one interval, handed to the [`IntervalMerger`].
#[derive(Debug, Clone)]
pub struct IntervalSnapshot {
    /// Interval number from the run start.
    pub index: u64,
    /// Arrivals dispatched in the interval.
    pub offered: u64,
    /// Requests sent in the interval.
    pub sent: u64,
    /// Outcomes completed in the interval, by class.
    pub by_class: [u64; Class::ALL.len()],
    /// Latency of sent requests completed in the interval, us.
    pub latency_us: Histogram<u64>,
    /// Schedule lag of requests sent in the interval, us.
    pub schedule_lag_us: Histogram<u64>,
    /// Requests in flight when the interval closed.
    pub in_flight: u64,
    /// Driver CPU time used in the interval, ns.
    pub driver_cpu_ns: u64,
    /// When the interval closed, from the run start, ns: its end, or
    /// earlier for the last interval of a run.
    pub end_ns: u64,
    /// Connections opened in the interval.
    pub connections: u64,
    /// TCP connect time of the connections opened in the interval, us.
    pub connect_us: Histogram<u64>,
    /// TLS handshake time of the connections opened in the interval, us.
    pub tls_handshake_us: Histogram<u64>,
    /// Attempts dispatched in the interval (first attempts and retries).
    pub attempts: u64,
    /// Retries dispatched in the interval.
    pub retries: u64,
    /// Widest pacing window the shard's pacer used in the interval, ns (0:
    /// no pacer, a closed loop).
    pub pacing_window_ns: u64,
}

impl IntervalSnapshot {
    fn new(index: u64) -> Self {
        IntervalSnapshot {
            end_ns: 0,
            index,
            offered: 0,
            sent: 0,
            by_class: [0; Class::ALL.len()],
            latency_us: new_histogram(),
            schedule_lag_us: new_histogram(),
            in_flight: 0,
            driver_cpu_ns: 0,
            connections: 0,
            connect_us: new_histogram(),
            tls_handshake_us: new_histogram(),
            attempts: 0,
            retries: 0,
            pacing_window_ns: 0,
        }
    }

    fn merge(&mut self, other: &IntervalSnapshot) {
        self.offered += other.offered;
        self.sent += other.sent;
        for (a, b) in self.by_class.iter_mut().zip(other.by_class) {
            *a += b;
        }
        add(&mut self.latency_us, &other.latency_us);
        add(&mut self.schedule_lag_us, &other.schedule_lag_us);
        self.in_flight += other.in_flight;
        self.driver_cpu_ns += other.driver_cpu_ns;
        self.end_ns = self.end_ns.max(other.end_ns);
        self.connections += other.connections;
        add(&mut self.connect_us, &other.connect_us);
        add(&mut self.tls_handshake_us, &other.tls_handshake_us);
        self.attempts += other.attempts;
        self.retries += other.retries;
        self.pacing_window_ns = self.pacing_window_ns.max(other.pacing_window_ns);
    }
}

/// A shard's recorder. Times are CLOCK_MONOTONIC nanoseconds.
pub struct Recorder {
    start_ns: u64,
    interval_ns: u64,
    totals: Totals,
    current: IntervalSnapshot,
    interval_cpu_start_ns: u64,
    finished: Vec<IntervalSnapshot>,
    /// Set by [`Recorder::begin`] (or a start given to `new`).
    begun: bool,
    /// The pacing window in force, ns: where the next interval's starts.
    window_ns: u64,
}

impl Recorder {
    /// A recorder for a run starting at `start_ns` with intervals of
    /// `interval_ns`, for `keys` API keys.
    pub fn new(start_ns: u64, interval_ns: u64, keys: usize) -> Self {
        Recorder {
            start_ns,
            interval_ns: interval_ns.max(1),
            totals: Totals::new(keys),
            current: IntervalSnapshot::new(0),
            interval_cpu_start_ns: crate::sys::thread_cpu_ns(),
            finished: Vec::new(),
            begun: start_ns > 0,
            window_ns: 0,
        }
    }

    /// Keeps per-key counters for a generated space of `count` keys
    /// (allocated here, before the load, not on its first arrival).
    pub fn with_key_space(mut self, count: usize) -> Self {
        self.totals.key_space = KeySpaceCounts::new(count);
        self
    }

    /// Keeps per-address totals for a target driven at `count` addresses
    /// (nothing for one: its totals are the run's).
    pub fn with_addresses(mut self, count: usize) -> Self {
        if count > 1 {
            self.totals.addresses = vec![AddressTotals::new(); count];
        }
        self
    }

    /// Starts the clock at `start_ns`: everything recorded from now on is
    /// timed from it. A shard makes its recorder (and every per-key total)
    /// before the common start, so no allocation delays its first arrival.
    pub fn begin(&mut self, start_ns: u64) {
        self.start_ns = start_ns;
        self.begun = true;
        self.interval_cpu_start_ns = crate::sys::thread_cpu_ns();
    }

    /// An arrival was dispatched at `now_ns`, `lag_ns` after its intended
    /// time (0 in a closed loop, whose arrivals are made when sent).
    pub fn dispatched(&mut self, now_ns: u64, lag_ns: u64) {
        self.roll(now_ns);
        self.totals.arrivals += 1;
        self.current.offered += 1;
        self.totals.retries.attempts += 1;
        self.current.attempts += 1;
        self.totals
            .generator_lag_us
            .saturating_record(ns_to_us(lag_ns));
    }

    /// A request was written at `now_ns`, `lag_ns` after its intended time,
    /// on a connection to address `addr` (see [`Recorder::with_addresses`]).
    pub fn sent(&mut self, now_ns: u64, lag_ns: u64, addr: usize) {
        self.roll(now_ns);
        if let Some(a) = self.totals.addresses.get_mut(addr) {
            a.sent += 1;
        }
        self.totals.sent += 1;
        self.totals.last_sent_ns = now_ns;
        self.current.sent += 1;
        let lag_us = ns_to_us(lag_ns);
        self.totals.schedule_lag_us.saturating_record(lag_us);
        self.current.schedule_lag_us.saturating_record(lag_us);
    }

    /// A request counted as sent was refused unprocessed (an HTTP/2 stream
    /// above a GOAWAY's last stream, or refused with REFUSED_STREAM) and
    /// goes out again: it is not counted twice. (Its first schedule lag
    /// stays in the histogram.)
    pub fn unsent(&mut self, addr: usize) {
        if let Some(a) = self.totals.addresses.get_mut(addr) {
            a.sent = a.sent.saturating_sub(1);
        }
        self.totals.sent = self.totals.sent.saturating_sub(1);
        self.current.sent = self.current.sent.saturating_sub(1);
    }

    /// An arrival ended at `now_ns` with `outcome`, `latency_ns` after its
    /// intended time; `service_ns` is set when the request was sent.
    /// `key` indexes the scenario's keys (ignored when it has none).
    pub fn outcome(
        &mut self,
        now_ns: u64,
        key: impl Into<KeyPick>,
        outcome: Outcome,
        latency_ns: u64,
        service_ns: Option<u64>,
    ) {
        self.outcome_at(now_ns, key, None, outcome, latency_ns, service_ns);
    }

    /// [`Recorder::outcome`], charged also to address `addr`: the one its
    /// connection went to, or its failed connect tried (`None`: no address,
    /// as for `not_sent`).
    pub fn outcome_at(
        &mut self,
        now_ns: u64,
        key: impl Into<KeyPick>,
        addr: Option<usize>,
        outcome: Outcome,
        latency_ns: u64,
        service_ns: Option<u64>,
    ) {
        self.final_outcome(
            now_ns,
            key.into(),
            addr,
            outcome,
            latency_ns,
            service_ns.is_some(),
            service_ns,
        );
    }

    /// An arrival's one outcome; `sent`: its last attempt was sent (its
    /// latency is then kept), `service_ns`: that attempt's service time
    /// when it is not kept yet.
    #[allow(clippy::too_many_arguments)] // each is one fact of the outcome
    fn final_outcome(
        &mut self,
        now_ns: u64,
        pick: KeyPick,
        addr: Option<usize>,
        outcome: Outcome,
        latency_ns: u64,
        sent: bool,
        service_ns: Option<u64>,
    ) {
        self.roll(now_ns);
        let class = outcome.class();
        let latency_us = ns_to_us(latency_ns);
        self.totals.counts.add(outcome);
        if let Outcome::TlsError(reason) = outcome {
            self.totals.connections.tls_errors[reason.index()] += 1;
        }
        self.current.by_class[class.index()] += 1;
        self.totals.latency_by_class_us[class.index()].saturating_record(latency_us);
        if sent {
            self.totals.latency_us.saturating_record(latency_us);
            self.current.latency_us.saturating_record(latency_us);
        }
        if let Some(service_ns) = service_ns {
            self.totals
                .service_us
                .saturating_record(ns_to_us(service_ns));
        }
        self.totals.key_space.add(pick.slot, outcome);
        if let Some(a) = addr.and_then(|i| self.totals.addresses.get_mut(i)) {
            a.outcome(outcome, latency_us, sent);
        }
        if let Some(k) = self.totals.keys.get_mut(pick.key) {
            k.counts.add(outcome);
            if sent {
                k.record_latency(latency_us);
            }
        }
    }

    /// A new connection was opened at `now_ns` (its handshakes done).
    /// One opened to warm up, before [`Recorder::begin`], counts in the
    /// totals only: no interval has begun.
    pub fn connected(&mut self, now_ns: u64, c: &Connected) {
        self.totals.connections.record(c);
        if let Some(a) = self.totals.addresses.get_mut(c.addr) {
            a.connections_opened += 1;
        }
        if !self.begun {
            return;
        }
        self.roll(now_ns);
        self.current.connections += 1;
        self.current
            .connect_us
            .saturating_record(ns_to_us(c.connect_ns));
        if let Some(h) = &c.tls {
            self.current
                .tls_handshake_us
                .saturating_record(ns_to_us(h.handshake_ns));
        }
    }

    /// The pacer's window is `window_ns` from `now_ns` on (called when it
    /// changes): each interval keeps the widest it used.
    pub fn pacing_window(&mut self, now_ns: u64, window_ns: u64) {
        self.roll(now_ns);
        self.window_ns = window_ns;
        self.current.pacing_window_ns = self.current.pacing_window_ns.max(window_ns);
    }

    /// Closes every interval that ended before `now_ns`; `in_flight` is
    /// stamped on them. Call it at least once per interval.
    pub fn tick(&mut self, now_ns: u64, in_flight: u64) {
        self.current.in_flight = in_flight;
        self.roll(now_ns);
    }

    /// Intervals closed since the last call, oldest first.
    pub fn take_finished(&mut self) -> Vec<IntervalSnapshot> {
        std::mem::take(&mut self.finished)
    }

    /// Ends recording: closes the current (partial) interval and returns the
    /// totals and the intervals not yet taken.
    pub fn finish(mut self, now_ns: u64, in_flight: u64) -> (Totals, Vec<IntervalSnapshot>) {
        self.roll(now_ns);
        self.current.in_flight = in_flight;
        let end_ns = now_ns.saturating_sub(self.start_ns);
        self.close_current(end_ns);
        (self.totals, self.finished)
    }

    fn roll(&mut self, now_ns: u64) {
        let index = now_ns.saturating_sub(self.start_ns) / self.interval_ns;
        while self.current.index < index {
            self.close_current((self.current.index + 1) * self.interval_ns);
            self.current.index += 1;
        }
    }

    /// Moves the current interval to `finished`, closed at `end_ns` (from
    /// the run start); a fresh one with the same index takes its place.
    fn close_current(&mut self, end_ns: u64) {
        let cpu_ns = crate::sys::thread_cpu_ns();
        self.current.driver_cpu_ns = cpu_ns.saturating_sub(self.interval_cpu_start_ns);
        self.current.end_ns = end_ns;
        self.interval_cpu_start_ns = cpu_ns;
        self.totals.driver_cpu_ns += self.current.driver_cpu_ns;
        let mut next = IntervalSnapshot::new(self.current.index);
        // In flight carries over until the next tick says otherwise, the
        // window until the pacer changes it.
        next.in_flight = self.current.in_flight;
        next.pacing_window_ns = self.window_ns;
        self.finished
            .push(std::mem::replace(&mut self.current, next));
    }
}

/// One interval of the whole run (all shards), ready for reports.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IntervalRow {
    /// Interval number from the run start.
    pub index: u64,
    /// Start of the interval from the run start, s.
    pub start_s: f64,
    /// Length of the interval, s (the last may be shorter).
    pub duration_s: f64,
    /// Arrivals dispatched.
    pub offered: u64,
    /// Requests sent.
    pub sent: u64,
    /// Outcomes completed, by class.
    #[serde(skip)]
    pub by_class: [u64; Class::ALL.len()],
    /// Latency percentiles of completions in the interval, us.
    pub p50_us: u64,
    /// 90th percentile, us.
    pub p90_us: u64,
    /// 99th percentile, us.
    pub p99_us: u64,
    /// 99.9th percentile, us.
    pub p999_us: u64,
    /// Maximum, us.
    pub max_us: u64,
    /// Schedule lag p99 of requests sent in the interval, us.
    pub lag_p99_us: u64,
    /// Requests in flight at the interval's end.
    pub in_flight: u64,
    /// Driver CPU used in the interval, as a share of one core (1.0 = 100%).
    pub driver_cpu_cores: f64,
    /// Connections opened in the interval.
    pub new_connections: u64,
    /// TCP connect time p99 of the connections opened in the interval, us.
    pub connect_p99_us: u64,
    /// TLS handshake time p99 of the connections opened in the interval, us.
    pub tls_handshake_p99_us: u64,
    /// Attempts dispatched in the interval: first attempts and retries.
    pub attempts: u64,
    /// Retries dispatched in the interval.
    pub retries: u64,
    /// Attempts per arrival offered in the interval (1 without retries; 0
    /// when nothing was offered).
    pub amplification: f64,
    /// 2xx answers per second completed in the interval.
    pub goodput_per_s: f64,
    /// Widest pacing window a shard used in the interval, us.
    pub pacing_window_us: u64,
    /// The interval's latency histogram, V2-deflate encoded (for `.hlog`).
    #[serde(skip)]
    pub latency_hist_v2: Vec<u8>,
}

/// Joins shard snapshots of the same interval into [`IntervalRow`]s, in order.
pub struct IntervalMerger {
    shards: usize,
    interval_ns: u64,
    pending: std::collections::BTreeMap<u64, (usize, IntervalSnapshot)>,
}

impl IntervalMerger {
    /// A merger expecting one snapshot per interval from each of `shards`.
    pub fn new(shards: usize, interval_ns: u64) -> Self {
        IntervalMerger {
            shards,
            interval_ns,
            pending: Default::default(),
        }
    }

    /// Adds a snapshot; returns the rows that every shard has now reported.
    pub fn add(&mut self, snapshot: IntervalSnapshot) -> Vec<IntervalRow> {
        match self.pending.entry(snapshot.index) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let (n, merged) = e.get_mut();
                *n += 1;
                merged.merge(&snapshot);
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert((1, snapshot));
            }
        }
        let mut rows = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if entry.get().0 < self.shards {
                break;
            }
            let (_, merged) = entry.remove();
            rows.push(self.row(merged));
        }
        rows
    }

    /// Rows for what is left when the run ends: intervals some shards never
    /// reached because they finished earlier.
    pub fn finish(mut self) -> Vec<IntervalRow> {
        let pending = std::mem::take(&mut self.pending);
        pending.into_values().map(|(_, s)| self.row(s)).collect()
    }

    fn row(&self, s: IntervalSnapshot) -> IntervalRow {
        let start_ns = s.index * self.interval_ns;
        let len_ns = s.end_ns.saturating_sub(start_ns).clamp(1, self.interval_ns);
        let q = |h: &Histogram<u64>, q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        let mut encoded = Vec::new();
        // Encoding into memory fails only on an internal error; an empty
        // buffer then marks the interval as unencodable in the hlog.
        let _ = V2DeflateSerializer::new().serialize(&s.latency_us, &mut encoded);
        IntervalRow {
            index: s.index,
            start_s: start_ns as f64 / 1e9,
            duration_s: len_ns as f64 / 1e9,
            offered: s.offered,
            sent: s.sent,
            by_class: s.by_class,
            p50_us: q(&s.latency_us, 0.5),
            p90_us: q(&s.latency_us, 0.9),
            p99_us: q(&s.latency_us, 0.99),
            p999_us: q(&s.latency_us, 0.999),
            max_us: s.latency_us.max(),
            lag_p99_us: q(&s.schedule_lag_us, 0.99),
            in_flight: s.in_flight,
            driver_cpu_cores: s.driver_cpu_ns as f64 / len_ns as f64,
            new_connections: s.connections,
            connect_p99_us: q(&s.connect_us, 0.99),
            tls_handshake_p99_us: q(&s.tls_handshake_us, 0.99),
            attempts: s.attempts,
            retries: s.retries,
            amplification: if s.offered == 0 {
                0.0
            } else {
                s.attempts as f64 / s.offered as f64
            },
            goodput_per_s: s.by_class[Class::Success.index()] as f64 / (len_ns as f64 / 1e9),
            pacing_window_us: s.pacing_window_ns / 1_000,
            latency_hist_v2: encoded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn outcomes_count_once_and_only_sent_requests_enter_latency() {
        let mut r = Recorder::new(0, 1000 * MS, 2);
        r.dispatched(1, 0);
        r.sent(2, 1_000, 0);
        r.outcome(5 * MS, 0, Outcome::Response(200), 5 * MS, Some(4 * MS));
        r.dispatched(6 * MS, 0);
        r.outcome(6 * MS, 1, Outcome::NotSent, 0, None);
        let (t, intervals) = r.finish(7 * MS, 0);
        assert_eq!(t.arrivals, 2);
        assert_eq!(t.sent, 1);
        assert_eq!(t.counts.total(), 2);
        assert_eq!(t.counts.class(Class::NotSent), 1);
        assert_eq!(t.latency_us.len(), 1);
        assert_eq!(t.keys[0].counts.class(Class::Success), 1);
        assert_eq!(t.keys[1].counts.class(Class::NotSent), 1);
        assert_eq!(t.counts.statuses().collect::<Vec<_>>(), vec![(200, 1)]);
        assert_eq!(intervals.len(), 1);
        assert_eq!(intervals[0].offered, 2);
    }

    #[test]
    fn connections_before_the_start_count_in_totals_only() {
        let connected = Connected {
            connect_ns: 100_000,
            tls: None,
            addr: 0,
        };
        let mut r = Recorder::new(0, 1000 * MS, 0);
        // Warm-up, on the monotonic clock long before the run's start.
        r.connected(8_000_000 * MS, &connected);
        r.begin(9_000_000 * MS);
        r.connected(9_000_500 * MS, &connected);
        let (t, intervals) = r.finish(9_001_000 * MS, 0);
        assert_eq!(t.connections.opened, 2);
        assert_eq!(t.connections.connect_us.len(), 2);
        assert_eq!(intervals.len(), 2, "no interval before the start");
        assert_eq!(intervals.iter().map(|i| i.connections).sum::<u64>(), 1);
    }

    #[test]
    fn intervals_roll_over_and_empty_ones_are_kept() {
        let mut r = Recorder::new(0, 1000 * MS, 0);
        r.dispatched(10 * MS, 0);
        r.dispatched(3500 * MS, 0);
        let (_, intervals) = r.finish(3600 * MS, 0);
        let offered: Vec<u64> = intervals.iter().map(|i| i.offered).collect();
        assert_eq!(offered, vec![1, 0, 0, 1]);
        let idx: Vec<u64> = intervals.iter().map(|i| i.index).collect();
        assert_eq!(idx, vec![0, 1, 2, 3]);
    }

    #[test]
    fn merging_shards_keeps_every_count() {
        let mut shards = Vec::new();
        for s in 0..3u64 {
            let mut r = Recorder::new(0, 1000 * MS, 1);
            for i in 0..(100 + s) {
                r.dispatched(i * MS, 0);
                r.sent(i * MS, 0, 0);
                r.outcome(
                    i * MS + MS,
                    0,
                    Outcome::Response(204),
                    (i + 1) * 1_000,
                    Some(1_000),
                );
            }
            shards.push(r.finish(200 * MS, 0).0);
        }
        let mut all = Totals::new(1);
        for t in &shards {
            all.merge(t);
        }
        assert_eq!(all.arrivals, 303);
        assert_eq!(all.latency_us.len(), 303);
        assert_eq!(all.keys[0].latency_us().map_or(0, |h| h.len()), 303);
        assert_eq!(all.counts.statuses().collect::<Vec<_>>(), vec![(204, 303)]);
    }

    #[test]
    fn an_interval_keeps_the_widest_window_and_the_next_starts_from_the_one_in_force() {
        let mut r = Recorder::new(0, 1000 * MS, 0);
        r.pacing_window(MS, 25_000);
        r.pacing_window(300 * MS, 100_000);
        // Narrowed before the interval ends: the next starts from 50 us.
        r.pacing_window(600 * MS, 50_000);
        r.dispatched(1500 * MS, 0);
        r.pacing_window(2500 * MS, 200_000);
        let (_, intervals) = r.finish(3200 * MS, 0);
        let windows: Vec<u64> = intervals.iter().map(|i| i.pacing_window_ns).collect();
        assert_eq!(windows, [100_000, 50_000, 200_000, 200_000]);
        assert_eq!(
            Recorder::new(0, 1000 * MS, 0).finish(10 * MS, 0).1[0].pacing_window_ns,
            0,
            "no pacer (a closed loop), no window"
        );
    }

    #[test]
    fn merged_shards_show_the_widest_window_of_any() {
        let mut m = IntervalMerger::new(3, 1000 * MS);
        let snap = |pacing_window_ns| IntervalSnapshot {
            pacing_window_ns,
            end_ns: 1000 * MS,
            ..IntervalSnapshot::new(0)
        };
        assert!(m.add(snap(25_000)).is_empty());
        assert!(m.add(snap(400_000)).is_empty());
        let rows = m.add(snap(50_000));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].pacing_window_us, 400);
    }

    #[test]
    fn merger_emits_rows_in_order_once_all_shards_reported() {
        let mut m = IntervalMerger::new(2, 1000 * MS);
        let snap = |i, offered, end_ns| IntervalSnapshot {
            offered,
            end_ns,
            ..IntervalSnapshot::new(i)
        };
        assert!(m.add(snap(0, 1, 1000 * MS)).is_empty());
        assert!(m.add(snap(1, 2, 1500 * MS)).is_empty());
        let rows = m.add(snap(0, 3, 1000 * MS));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].offered, 4);
        assert!((rows[0].duration_s - 1.0).abs() < 1e-9);
        let rest = m.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].offered, 2);
        assert!((rest[0].duration_s - 0.5).abs() < 1e-9);
    }
}
