//! Times mock-upstream's CPU burn: the wall time of burning 1 ms of thread
//! CPU, the overhead of a 0 ms burn call, and (printed before the timings)
//! the overshoot over 200 calls: CPU actually used minus CPU asked.
//!
//! It matters because the mock upstream's whole point is that a request's
//! CPU cost is exact: the overshoot is the error in every "cpu = ..." a
//! scenario sets, and the 0 ms overhead is what a "no work" request costs.
//! On an idle core the 1 ms burn's wall time should be close to 1 ms; more
//! means the machine is stealing the core (the burn's CPU stays exact).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use contend::sys::thread_cpu_ns;
use mock_upstream::burn;

const ASKED: Duration = Duration::from_millis(1);
const CALLS: usize = 200;

/// Burns `ASKED` CALLS times and prints the overshoot distribution, both as
/// the burn reports it and as the thread CPU clock sees it around the call.
fn print_overshoot() {
    let mut reported = Vec::with_capacity(CALLS);
    let mut outside = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let before_ns = thread_cpu_ns();
        let report = burn::burn_cpu(ASKED, || false);
        let used_ns = thread_cpu_ns() - before_ns;
        reported.push(report.cpu_used.as_nanos() as i128 - ASKED.as_nanos() as i128);
        outside.push(used_ns as i128 - ASKED.as_nanos() as i128);
    }
    let line = |label: &str, v: &mut Vec<i128>| {
        v.sort_unstable();
        let mean = v.iter().sum::<i128>() as f64 / v.len() as f64;
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        println!(
            "burn_1ms_overshoot {label}: mean {:.1} us, p50 {:.1} us, p99 {:.1} us, max {:.1} us (over {CALLS} calls)",
            mean / 1e3,
            at(0.5) as f64 / 1e3,
            at(0.99) as f64 / 1e3,
            at(1.0) as f64 / 1e3,
        );
    };
    line("as reported (cpu_used - asked)", &mut reported);
    line("thread CPU clock around the call", &mut outside);
}

fn bench_burn(c: &mut Criterion) {
    print_overshoot();
    let mut group = c.benchmark_group("burn");
    group.bench_function("burn_1ms_cpu_wall", |b| {
        b.iter(|| black_box(burn::burn_cpu(black_box(ASKED), || false)))
    });
    group.bench_function("burn_0ms_call_overhead", |b| {
        b.iter(|| black_box(burn::burn_cpu(black_box(Duration::ZERO), || false)))
    });
    group.finish();
}

criterion_group!(benches, bench_burn);
criterion_main!(benches);
