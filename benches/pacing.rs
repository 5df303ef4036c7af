//! Times the pacing window's look, which a driver shard makes once per
//! pacer wake (`contend::driver::pacing::Window::look`, with the wake's
//! monotonic time):
//!
//! - `pacing_look_fixed_window`: a fixed window (`pacing_window = "25us"`),
//!   which returns at once;
//! - `pacing_look_adaptive_within_period`: an adaptive window (25 us to
//!   500 us) looked at within its period, as most wakes do;
//! - `pacing_look_adaptive_new_period`: a look in a new period, which reads
//!   the thread's CPU clock and adjusts the window (once per `PERIOD_NS`);
//! - `pacing_look_adaptive_wakes_25us_apart`: the mix a shard pays at its
//!   narrowest window, wakes 25 us apart on the monotonic clock, so one look
//!   in 400 is a new period.
//!
//! It matters because the look is on the pacer's every wake, at up to 40,000
//! wakes per second per thread at the narrowest window: its cost comes out
//! of the CPU the window is there to save.

use std::hint::black_box;

use contend::driver::pacing::{PERIOD_NS, Window};
use contend::sys;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The default adaptive window's narrowest and widest, ns.
const NARROWEST_NS: u64 = 25_000;
const WIDEST_NS: u64 = 500_000;

fn bench_look(c: &mut Criterion) {
    let mut group = c.benchmark_group("pacing");
    group.throughput(Throughput::Elements(1));

    let mut fixed = Window::new(NARROWEST_NS, NARROWEST_NS);
    let now_ns = sys::monotonic_ns();
    group.bench_function("pacing_look_fixed_window", |b| {
        b.iter(|| {
            fixed.look(black_box(now_ns));
            black_box(fixed.ns())
        })
    });

    // The first look only starts the clocks: the ones timed fall within
    // the period it began.
    let mut adaptive = Window::new(NARROWEST_NS, WIDEST_NS);
    let start_ns = sys::monotonic_ns();
    adaptive.look(start_ns);
    let within_ns = start_ns + PERIOD_NS / 2;
    group.bench_function("pacing_look_adaptive_within_period", |b| {
        b.iter(|| {
            adaptive.look(black_box(within_ns));
            black_box(adaptive.ns())
        })
    });

    let mut wall_ns = start_ns;
    group.bench_function("pacing_look_adaptive_new_period", |b| {
        b.iter(|| {
            wall_ns += PERIOD_NS;
            adaptive.look(black_box(wall_ns));
            black_box(adaptive.ns())
        })
    });

    let mut wall_ns = wall_ns + PERIOD_NS;
    group.bench_function("pacing_look_adaptive_wakes_25us_apart", |b| {
        b.iter(|| {
            wall_ns += NARROWEST_NS;
            adaptive.look(black_box(wall_ns));
            black_box(adaptive.ns())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_look);
criterion_main!(benches);
