//! Times arrival schedule generation: how long [`Schedule`] takes to hand out
//! one million intended send times, for constant spacing, Poisson spacing and
//! a linear ramp.
//!
//! It matters because the driver pulls every arrival from the schedule on its
//! hot path: at 75k arrivals/s per shard, 1 us per arrival would be 7.5% of a
//! core spent before a byte is sent. The figure to read is time per element
//! (criterion's throughput line gives arrivals per second).

use std::hint::black_box;
use std::time::Duration;

use contend::arrival::Schedule;
use contend::scenario::{ArrivalKind, Phase, Rate};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// One phase of ten seconds that offers about one million arrivals.
fn phase(rate: Rate, arrival: ArrivalKind) -> Vec<Phase> {
    vec![Phase {
        rate,
        duration: Duration::from_secs(10),
        arrival,
    }]
}

fn bench_schedules(c: &mut Criterion) {
    let cases = [
        (
            "schedule_constant_1m",
            phase(Rate::Constant(100_000.0), ArrivalKind::Constant),
        ),
        (
            "schedule_poisson_1m",
            phase(Rate::Constant(100_000.0), ArrivalKind::Poisson),
        ),
        (
            "schedule_ramp_1m",
            phase(
                Rate::Ramp {
                    from: 0.0,
                    to: 200_000.0,
                },
                ArrivalKind::Constant,
            ),
        ),
    ];
    let mut group = c.benchmark_group("arrival");
    group.sample_size(10);
    for (name, phases) in &cases {
        // Built once, outside the timing: the schedule's set-up and the count.
        let prototype = Schedule::new(phases, 0, 1, 42);
        let count = prototype.clone().count() as u64;
        group.throughput(Throughput::Elements(count));
        group.bench_function(*name, |b| {
            b.iter_batched(
                || prototype.clone(),
                |schedule| {
                    // Fold every offset so nothing is optimised away.
                    schedule.fold(0u64, |acc, a| acc.wrapping_add(black_box(a.offset_ns)))
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_schedules);
criterion_main!(benches);
