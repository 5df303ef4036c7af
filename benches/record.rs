//! Times the per-shard [`Recorder`]: recording one outcome of each class (a
//! 2xx response, a client timeout, an arrival never sent), recording a million
//! outcomes into fresh 3-significant-digit histograms, closing an interval
//! (`tick` across a boundary), and merging the totals of two shards.
//!
//! It matters because every arrival ends in exactly one `outcome` call on the
//! driver's hot path, so its cost caps the rate one shard can record; rollover
//! and merging run once per interval and once per run, and must stay small
//! enough not to show as a lag spike at interval boundaries.

use std::hint::black_box;

use contend::outcome::Outcome;
use contend::record::{Recorder, Totals};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const MS: u64 = 1_000_000;
/// An interval so long that no per-outcome bench crosses a boundary.
const NO_ROLLOVER_NS: u64 = u64::MAX / 4;

/// Latencies (ns) spread over three decades, so records land in many buckets
/// as they do in a real run rather than hitting one cached counter.
fn latencies_ns(n: usize) -> Vec<u64> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // 50 us .. 50 ms, log-uniform.
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            (50_000.0 * 1000f64.powf(u)) as u64
        })
        .collect()
}

fn bench_outcome_per_class(c: &mut Criterion) {
    let lat = latencies_ns(4096);
    let mask = lat.len() - 1;
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    let cases: [(&str, Outcome, bool); 3] = [
        ("record_outcome_2xx", Outcome::Response(200), true),
        (
            "record_outcome_client_timeout",
            Outcome::ClientTimeout,
            true,
        ),
        ("record_outcome_not_sent", Outcome::NotSent, false),
    ];
    for (name, outcome, sent) in cases {
        let mut recorder = Recorder::new(0, NO_ROLLOVER_NS, 0);
        let mut i = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                let latency = if sent { lat[i & mask] } else { 0 };
                let service = sent.then_some(latency / 2);
                recorder.outcome(black_box(5 * MS), 0, black_box(outcome), latency, service);
                i = i.wrapping_add(1);
            })
        });
    }
    group.finish();
}

fn bench_1m_outcomes(c: &mut Criterion) {
    let lat = latencies_ns(1_000_000);
    let mut group = c.benchmark_group("record");
    group.sample_size(10);
    group.throughput(Throughput::Elements(lat.len() as u64));
    group.bench_function("record_1m_outcomes_3sig", |b| {
        b.iter_batched(
            // A fresh recorder (its histograms allocated) per sample, untimed.
            || Recorder::new(0, NO_ROLLOVER_NS, 0),
            |mut recorder| {
                for &l in &lat {
                    recorder.outcome(5 * MS, 0, Outcome::Response(200), l, Some(l / 2));
                }
                recorder
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn bench_interval_rollover(c: &mut Criterion) {
    let interval_ns = 1_000 * MS;
    let mut group = c.benchmark_group("record");
    let mut recorder = Recorder::new(0, interval_ns, 0);
    // Some content in the interval being closed, as in a run.
    for &l in &latencies_ns(1000) {
        recorder.outcome(1, 0, Outcome::Response(200), l, Some(l / 2));
    }
    let mut now_ns = 0u64;
    group.bench_function("record_tick_interval_rollover", |b| {
        b.iter(|| {
            // Each tick crosses exactly one boundary: one interval closes (a
            // CPU-clock read, a fresh snapshot with two histograms) and the
            // shard takes it, as the driver does once per interval.
            now_ns += interval_ns;
            recorder.tick(now_ns, 16);
            black_box(recorder.take_finished())
        })
    });
    group.finish();
}

fn bench_merge(c: &mut Criterion) {
    let lat = latencies_ns(100_000);
    let shard = |seed: usize| {
        let mut r = Recorder::new(0, 1_000 * MS, 0);
        for (i, &l) in lat.iter().enumerate() {
            let outcome = if (i + seed) % 50 == 0 {
                Outcome::Response(503)
            } else {
                Outcome::Response(204)
            };
            r.dispatched(i as u64 * 10_000, 0);
            r.sent(i as u64 * 10_000, l / 100, 0);
            r.outcome(i as u64 * 10_000, 0, outcome, l, Some(l / 2));
        }
        r.finish(lat.len() as u64 * 10_000, 0).0
    };
    let shards = [shard(0), shard(1)];
    let mut group = c.benchmark_group("record");
    group.bench_function("record_merge_totals_2_shards", |b| {
        b.iter_batched(
            || Totals::new(0),
            |mut all| {
                for s in &shards {
                    all.merge(s);
                }
                all
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_outcome_per_class,
    bench_1m_outcomes,
    bench_interval_rollover,
    bench_merge
);
criterion_main!(benches);
