//! Arrival schedules: phases of offered load to intended send offsets.
//!
//! Takes the validated [`Phase`]s of a scenario and hands on, per driver
//! shard, an iterator of [`Arrival`]s: the intended send time of each arrival
//! as nanoseconds from the start of the run. It is pure, like vegeta's pacer:
//! no clock, no sleeping, no accumulated error; the driver adds the offsets to
//! its start instant. It does not decide what an arrival sends.
//!
//! The model: within a phase of length D the rate is linear,
//! `rate(t) = from + (to - from) * t / D`, and `Λ(t) = ∫₀ᵗ rate` counts the
//! arrivals expected by time t. Constant spacing puts global arrival k at
//! `Λ⁻¹(k)`; a Poisson process puts arrivals at `Λ⁻¹` of a running sum of
//! unit exponentials. Λ restarts at every phase start.
//!
//! Sharding: a run is split over N share-nothing shards. With constant
//! spacing shard s takes the global indices k ≡ s (mod N), counted over the
//! whole run, so the union of the shards is exactly the one-shard schedule.
//! With Poisson spacing each shard is an independent Poisson process at
//! rate/N (their superposition is a Poisson process at the full rate), seeded
//! from (seed, shard) so a seed always gives the same schedule.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp1};

use crate::scenario::{ArrivalKind, Phase, Rate};

const NS_PER_S: f64 = 1e9;

/// One intended send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Intended send time, in nanoseconds from the start of the run.
    pub offset_ns: u64,
    /// Index of the phase (in the scenario's list) this arrival belongs to.
    pub phase: usize,
}

/// One phase prepared for the hot path: only plain numbers.
#[derive(Debug, Clone)]
struct PhasePlan {
    /// Start of the phase, nanoseconds from the start of the run.
    start_ns: u64,
    /// Length of the phase in nanoseconds: every arrival's offset in the
    /// phase is below `start_ns + duration_ns`.
    duration_ns: u64,
    /// Rate at the phase start, per second.
    from_per_s: f64,
    /// Rate change per second, per second (0 for a constant rate).
    slope_per_s2: f64,
    /// Arrivals of the whole run (all shards) before this phase, for
    /// constant spacing; unused for Poisson.
    arrivals_before: u64,
    kind: ArrivalKind,
    /// False when the rate is not a usable number (never for a validated
    /// scenario): the phase then yields no arrival instead of panicking.
    usable: bool,
}

impl PhasePlan {
    /// `Λ⁻¹(count)`: seconds from the phase start at which `count` arrivals
    /// are expected, or `None` when the ramp never gets there.
    ///
    /// `Λ(t) = a t + b t² / 2`. The root is written as
    /// `2k / (a + sqrt(a² + 2 b k))`, which is the usual quadratic root with
    /// its cancellation removed: it is stable as b → 0 (it becomes k / a),
    /// works for ramps up and down, and for a = 0 (it becomes sqrt(2k / b)).
    #[inline]
    fn inverse_s(&self, count: f64) -> Option<f64> {
        if count <= 0.0 {
            return Some(0.0);
        }
        let a = self.from_per_s;
        let b = self.slope_per_s2;
        if b == 0.0 {
            return Some(count / a);
        }
        let disc = a * a + 2.0 * b * count;
        if disc.is_nan() || disc < 0.0 {
            // A ramp down whose integral peaks below `count`.
            return None;
        }
        let denominator = a + disc.sqrt();
        if denominator.is_nan() || denominator <= 0.0 {
            return None;
        }
        Some(2.0 * count / denominator)
    }

    /// Offset in nanoseconds from the phase start of the arrival at `count`,
    /// or `None` when it falls at or after the phase end.
    #[inline]
    fn offset_in_phase_ns(&self, count: f64) -> Option<u64> {
        let t_s = self.inverse_s(count)?;
        let t_ns = t_s * NS_PER_S;
        if t_ns.is_nan() || t_ns >= self.duration_ns as f64 {
            return None;
        }
        // Flooring keeps the offset strictly inside the phase.
        let ns = t_ns as u64;
        if ns >= self.duration_ns {
            None
        } else {
            Some(ns)
        }
    }

    /// Number of constant-spaced arrivals (all shards) in this phase: the k
    /// with `Λ⁻¹(k)` inside the phase. Exact with respect to
    /// [`PhasePlan::offset_in_phase_ns`], which is what makes the shards'
    /// union equal the one-shard schedule across phase boundaries.
    fn constant_count(&self) -> u64 {
        if !self.usable {
            return 0;
        }
        let d_s = self.duration_ns as f64 / NS_PER_S;
        let integral = self.from_per_s * d_s + 0.5 * self.slope_per_s2 * d_s * d_s;
        if !integral.is_finite() || integral <= 0.0 {
            return 0;
        }
        // ceil(Λ(D)) is the answer up to rounding; step to the exact one.
        let mut n = integral.ceil() as u64;
        while n > 0 && self.offset_in_phase_ns((n - 1) as f64).is_none() {
            n -= 1;
        }
        while self.offset_in_phase_ns(n as f64).is_some() {
            n += 1;
        }
        n
    }
}

/// The intended send times of one shard, in order.
///
/// An `Iterator<Item = Arrival>`: offsets never decrease, and each lies
/// before the end of its phase. `next` does a few float operations and (for
/// Poisson) one random draw: no allocation, so it is fit for the driver's hot
/// path.
#[derive(Debug, Clone)]
pub struct Schedule {
    plans: Vec<PhasePlan>,
    shard: u64,
    shards: u64,
    /// Index into `plans` of the current phase.
    phase: usize,
    /// Constant spacing: the next global index within the current phase.
    next_k: u64,
    /// Poisson: the running Λ of this shard within the current phase.
    lambda: f64,
    /// Whether the current phase's cursor (`next_k` or `lambda`) is set up.
    phase_started: bool,
    /// Last offset handed out, to keep offsets non-decreasing even where
    /// float rounding of the ramp root would step back by a nanosecond.
    last_ns: u64,
    rng: StdRng,
}

impl Schedule {
    /// The schedule of shard `shard` out of `shards` for the given phases,
    /// which run back to back from offset 0. `seed` seeds the Poisson draws
    /// (mixed with the shard number); constant spacing ignores it.
    ///
    /// `shards = 0` is taken as 1; a `shard` not below `shards` yields nothing.
    pub fn new(phases: &[Phase], shard: usize, shards: usize, seed: u64) -> Schedule {
        let shards = shards.max(1) as u64;
        let shard = shard as u64;
        let mut plans = Vec::with_capacity(phases.len());
        let mut start_ns: u64 = 0;
        let mut arrivals_before: u64 = 0;
        for phase in phases {
            let duration_ns = u64::try_from(phase.duration.as_nanos()).unwrap_or(u64::MAX);
            let (from, to) = match phase.rate {
                Rate::Constant(r) => (r, r),
                Rate::Ramp { from, to } => (from, to),
            };
            let d_s = duration_ns as f64 / NS_PER_S;
            let usable = from.is_finite()
                && to.is_finite()
                && from >= 0.0
                && to >= 0.0
                && (from > 0.0 || to > 0.0)
                && duration_ns > 0;
            let plan = PhasePlan {
                start_ns,
                duration_ns,
                from_per_s: if usable { from } else { 0.0 },
                slope_per_s2: if usable { (to - from) / d_s } else { 0.0 },
                arrivals_before,
                kind: phase.arrival,
                usable,
            };
            arrivals_before = arrivals_before.saturating_add(plan.constant_count());
            start_ns = start_ns.saturating_add(duration_ns);
            plans.push(plan);
        }
        Schedule {
            plans,
            shard,
            shards,
            phase: if shard < shards { 0 } else { phases.len() },
            next_k: 0,
            lambda: 0.0,
            phase_started: false,
            last_ns: 0,
            rng: StdRng::seed_from_u64(mix_seed(seed, shard)),
        }
    }

    /// Sets the cursor of the current phase to its first arrival for this shard.
    fn start_phase(&mut self, plan_index: usize) {
        let plan = &self.plans[plan_index];
        // First local k with (arrivals_before + k) ≡ shard (mod shards).
        let before_mod = plan.arrivals_before % self.shards;
        self.next_k = (self.shard + self.shards - before_mod) % self.shards;
        self.lambda = 0.0;
        self.phase_started = true;
    }
}

impl Iterator for Schedule {
    type Item = Arrival;

    #[inline]
    fn next(&mut self) -> Option<Arrival> {
        while self.phase < self.plans.len() {
            if !self.phase_started {
                self.start_phase(self.phase);
            }
            let plan = &self.plans[self.phase];
            let offset = if !plan.usable {
                None
            } else {
                match plan.kind {
                    ArrivalKind::Constant => {
                        let found = plan.offset_in_phase_ns(self.next_k as f64);
                        self.next_k = self.next_k.saturating_add(self.shards);
                        found
                    }
                    ArrivalKind::Poisson => {
                        // Each shard runs at rate/N: its Λ steps N times as far.
                        let gap: f64 = Exp1.sample(&mut self.rng);
                        self.lambda += gap * self.shards as f64;
                        plan.offset_in_phase_ns(self.lambda)
                    }
                }
            };
            match offset {
                Some(in_phase_ns) => {
                    let ns = plan.start_ns.saturating_add(in_phase_ns).max(self.last_ns);
                    self.last_ns = ns;
                    return Some(Arrival {
                        offset_ns: ns,
                        phase: self.phase,
                    });
                }
                None => {
                    self.phase += 1;
                    self.phase_started = false;
                }
            }
        }
        None
    }
}

/// Arrivals the phases offer on average: the sum over phases of the integral
/// of the rate (`(from + to) / 2 × duration`). Constant spacing schedules
/// this many, rounded up, per phase.
pub fn expected_arrivals(phases: &[Phase]) -> f64 {
    phases
        .iter()
        .map(|phase| {
            let (from, to) = match phase.rate {
                Rate::Constant(r) => (r, r),
                Rate::Ramp { from, to } => (from, to),
            };
            0.5 * (from + to) * phase.duration.as_secs_f64()
        })
        .sum()
}

/// Length of the whole run: the sum of the phase durations (saturating).
pub fn total_duration(phases: &[Phase]) -> Duration {
    phases.iter().fold(Duration::ZERO, |sum, phase| {
        sum.saturating_add(phase.duration)
    })
}

/// Mixes the run's seed with a shard number so shards draw independent
/// streams (splitmix64 finalisers; any fixed bijection would do).
fn mix_seed(seed: u64, shard: u64) -> u64 {
    fn splitmix64(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    splitmix64(seed ^ splitmix64(shard))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(rate: Rate, duration: Duration, arrival: ArrivalKind) -> Phase {
        Phase {
            rate,
            duration,
            arrival,
        }
    }

    fn constant(rate_per_s: f64, secs: f64) -> Phase {
        phase(
            Rate::Constant(rate_per_s),
            Duration::from_secs_f64(secs),
            ArrivalKind::Constant,
        )
    }

    fn ramp(from: f64, to: f64, secs: f64, arrival: ArrivalKind) -> Phase {
        phase(
            Rate::Ramp { from, to },
            Duration::from_secs_f64(secs),
            arrival,
        )
    }

    fn offsets(phases: &[Phase], shard: usize, shards: usize, seed: u64) -> Vec<u64> {
        Schedule::new(phases, shard, shards, seed)
            .map(|a| a.offset_ns)
            .collect()
    }
    #[test]
    fn processes_sharing_a_load_offer_the_single_process_schedule() {
        // Thread t of process I of N is shard I + N t of N T (as the driver
        // numbers them): whatever threads each process has, the processes'
        // threads together offer exactly the single-process schedule, and
        // no two of them send at the same instant.
        let phases = [
            constant(300.0, 2.0),
            ramp(300.0, 900.0, 1.0, ArrivalKind::Constant),
        ];
        let whole = offsets(&phases, 0, 1, 1);
        for processes in [2, 3] {
            for threads in [[1, 1, 2], [2, 1, 3]] {
                let mut union = Vec::new();
                for (process, &t) in threads.iter().enumerate().take(processes) {
                    for thread in 0..t {
                        union.extend(offsets(
                            &phases,
                            process + processes * thread,
                            processes * t,
                            1,
                        ));
                    }
                }
                union.sort_unstable();
                assert_eq!(union, whole, "{processes} processes, threads {threads:?}");
                assert!(
                    union.windows(2).all(|w| w[0] < w[1]),
                    "two sends at one instant"
                );
            }
        }
    }

    /// Union of all shards, sorted.
    fn union(phases: &[Phase], shards: usize, seed: u64) -> Vec<u64> {
        let mut all: Vec<u64> = (0..shards)
            .flat_map(|s| offsets(phases, s, shards, seed))
            .collect();
        all.sort_unstable();
        all
    }

    fn assert_well_formed(phases: &[Phase], shards: usize, seed: u64) {
        let mut ends_ns = Vec::new();
        let mut end = 0u64;
        for p in phases {
            end += p.duration.as_nanos() as u64;
            ends_ns.push(end);
        }
        for shard in 0..shards {
            let mut last = 0u64;
            for a in Schedule::new(phases, shard, shards, seed) {
                assert!(
                    a.offset_ns >= last,
                    "offsets decrease: {} after {last}",
                    a.offset_ns
                );
                assert!(
                    a.offset_ns < ends_ns[a.phase],
                    "offset {} past its phase end",
                    a.offset_ns
                );
                let start = if a.phase == 0 {
                    0
                } else {
                    ends_ns[a.phase - 1]
                };
                assert!(
                    a.offset_ns >= start,
                    "offset {} before its phase start",
                    a.offset_ns
                );
                last = a.offset_ns;
            }
        }
    }

    #[test]
    fn constant_rate_gives_rate_times_duration() {
        // (rate per s, duration s)
        let cases: &[(f64, f64)] = &[
            (1.0, 1.0),
            (10.0, 1.0),
            (1000.0, 2.0),
            (20_000.0, 1.0),
            (50_000.0, 0.5),
            (3.0, 0.7),
            (333.3, 3.0),
            (7.0, 10.0),
            (0.5, 5.0),
        ];
        for &(rate, secs) in cases {
            let phases = [constant(rate, secs)];
            let want = rate * secs;
            for shards in 1..=3 {
                let all = union(&phases, shards, 1);
                let n = all.len() as f64;
                assert!(
                    (n - want).abs() <= 1.0,
                    "rate {rate} for {secs}s, {shards} shards: {n} arrivals, want {want}"
                );
                assert_eq!(
                    all,
                    offsets(&phases, 0, 1, 1),
                    "rate {rate}, {shards} shards: union differs"
                );
                assert_well_formed(&phases, shards, 1);
            }
        }
    }

    #[test]
    fn constant_rate_offsets_are_k_over_rate() {
        let got = offsets(&[constant(4.0, 1.0)], 0, 1, 0);
        assert_eq!(got, vec![0, 250_000_000, 500_000_000, 750_000_000]);
        // Shard 1 of 2 takes the odd indices.
        assert_eq!(
            offsets(&[constant(4.0, 1.0)], 1, 2, 0),
            vec![250_000_000, 750_000_000]
        );
    }

    #[test]
    fn ramp_count_matches_integral() {
        // (from, to, duration s)
        let cases: &[(f64, f64, f64)] = &[
            (0.0, 1000.0, 2.0),
            (1000.0, 0.0, 2.0),
            (100.0, 10_000.0, 1.0),
            (10_000.0, 100.0, 1.0),
            (500.0, 500.0, 1.0),
            (1.0, 1.000_000_1, 3.0),
            (0.0, 3.0, 1.0),
            (1000.0, 20_000.0, 5.0),
        ];
        for &(from, to, secs) in cases {
            let phases = [ramp(from, to, secs, ArrivalKind::Constant)];
            let want = expected_arrivals(&phases);
            assert!((want - 0.5 * (from + to) * secs).abs() < 1e-9);
            for shards in 1..=3 {
                let all = union(&phases, shards, 1);
                let n = all.len() as f64;
                assert!(
                    (n - want).abs() <= 1.0,
                    "ramp {from}->{to} over {secs}s, {shards} shards: {n}, want {want}"
                );
                assert_eq!(all, offsets(&phases, 0, 1, 1));
                assert_well_formed(&phases, shards, 1);
            }
        }
    }

    #[test]
    fn ramp_spacing_follows_rate() {
        // Ramp 0 -> 2000/s over 1 s: the second half holds 3/4 of the arrivals.
        let all = offsets(&[ramp(0.0, 2000.0, 1.0, ArrivalKind::Constant)], 0, 1, 0);
        let late = all.iter().filter(|&&ns| ns >= 500_000_000).count();
        assert!((late as f64 - 750.0).abs() <= 1.0, "{late}");
    }

    #[test]
    fn poisson_gaps_have_exponential_moments() {
        // (rate per s, shards): gaps of the merged process.
        let cases: &[(f64, usize)] = &[(1000.0, 1), (20_000.0, 1), (20_000.0, 2), (50_000.0, 3)];
        for &(rate, shards) in cases {
            let draws = 100_000.0;
            let secs = draws / rate;
            let phases = [phase(
                Rate::Constant(rate),
                Duration::from_secs_f64(secs),
                ArrivalKind::Poisson,
            )];
            let all = union(&phases, shards, 7);
            let gaps_s: Vec<f64> = all
                .windows(2)
                .map(|w| (w[1] - w[0]) as f64 / NS_PER_S)
                .collect();
            let n = gaps_s.len() as f64;
            assert!(n > 0.9 * draws, "{n}");
            let mean = gaps_s.iter().sum::<f64>() / n;
            let var = gaps_s.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
            let cv = var.sqrt() / mean;
            let want_mean = 1.0 / rate;
            assert!(
                (mean - want_mean).abs() / want_mean < 0.05,
                "rate {rate}x{shards}: mean gap {mean}"
            );
            assert!((cv - 1.0).abs() < 0.05, "rate {rate}x{shards}: cv {cv}");
            assert_well_formed(&phases, shards, 7);
        }
    }

    #[test]
    fn poisson_count_matches_integral() {
        // (phase, tolerance as a share of the expected count)
        let cases = [
            (
                phase(
                    Rate::Constant(20_000.0),
                    Duration::from_secs(2),
                    ArrivalKind::Poisson,
                ),
                0.02,
            ),
            (ramp(0.0, 20_000.0, 2.0, ArrivalKind::Poisson), 0.03),
            (ramp(20_000.0, 1_000.0, 2.0, ArrivalKind::Poisson), 0.03),
        ];
        for (p, tolerance) in cases {
            let phases = [p];
            let want = expected_arrivals(&phases);
            for shards in 1..=3 {
                let n = union(&phases, shards, 3).len() as f64;
                assert!(
                    (n - want).abs() / want < tolerance,
                    "{:?} x{shards}: {n}, want {want}",
                    phases[0].rate
                );
            }
        }
    }

    #[test]
    fn phases_concatenate() {
        let phases = [
            constant(10.0, 1.0),
            ramp(0.0, 20.0, 1.0, ArrivalKind::Constant),
            constant(5.0, 2.0),
            phase(
                Rate::Constant(1000.0),
                Duration::from_secs(1),
                ArrivalKind::Poisson,
            ),
        ];
        assert_eq!(total_duration(&phases), Duration::from_secs(5));
        assert!((expected_arrivals(&phases) - (10.0 + 10.0 + 10.0 + 1000.0)).abs() < 1e-9);
        let one: Vec<Arrival> = Schedule::new(&phases, 0, 1, 5).collect();
        let count = |i| one.iter().filter(|a| a.phase == i).count();
        assert_eq!([count(0), count(1), count(2)], [10, 10, 10]);
        assert!((count(3) as f64 - 1000.0).abs() < 150.0);
        // Phase starts: each phase's first constant arrival is at its start.
        let first = |i| one.iter().find(|a| a.phase == i).map(|a| a.offset_ns);
        assert_eq!(first(0), Some(0));
        assert_eq!(first(1), Some(1_000_000_000));
        assert_eq!(first(2), Some(2_000_000_000));
        for shards in 1..=3 {
            assert_well_formed(&phases, shards, 5);
        }
        // The constant part of the shards' union is the one-shard schedule.
        let constant_part = &phases[..3];
        for shards in 2..=3 {
            assert_eq!(
                union(constant_part, shards, 0),
                offsets(constant_part, 0, 1, 0)
            );
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let phases = [
            phase(
                Rate::Constant(5000.0),
                Duration::from_secs(1),
                ArrivalKind::Poisson,
            ),
            ramp(100.0, 3000.0, 1.0, ArrivalKind::Poisson),
        ];
        for shards in 1..=3 {
            for shard in 0..shards {
                assert_eq!(
                    offsets(&phases, shard, shards, 42),
                    offsets(&phases, shard, shards, 42)
                );
            }
        }
        assert_ne!(offsets(&phases, 0, 1, 42), offsets(&phases, 0, 1, 43));
        assert_ne!(offsets(&phases, 0, 2, 42), offsets(&phases, 1, 2, 42));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let cases = [
            constant(0.0, 1.0),
            constant(-5.0, 1.0),
            constant(f64::NAN, 1.0),
            constant(f64::INFINITY, 1.0),
            ramp(0.0, 0.0, 1.0, ArrivalKind::Poisson),
            phase(Rate::Constant(10.0), Duration::ZERO, ArrivalKind::Constant),
        ];
        for p in cases {
            assert_eq!(
                Schedule::new(std::slice::from_ref(&p), 0, 1, 0).count(),
                0,
                "{p:?}"
            );
        }
        // Shard numbers out of range.
        assert_eq!(Schedule::new(&[constant(10.0, 1.0)], 0, 0, 0).count(), 10);
        assert_eq!(Schedule::new(&[constant(10.0, 1.0)], 3, 2, 0).count(), 0);
        assert_eq!(Schedule::new(&[], 0, 1, 0).count(), 0);
    }
}
