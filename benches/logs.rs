//! Times `contend logs` on the path every line takes: splitting a stream
//! into lines, reading each in its format and adding it to the tally (per
//! interval, route and key, the histograms, the scatter's sample), for
//! 100,000 generated lines in three nginx formats: `combined` (nginx's
//! default), `nginx-timed` (combined with the upstream timings, the common
//! format for this analysis) and `contend` (the harness's own line); and
//! reading one line alone, without the tally.
//!
//! It matters because a production log is gigabytes: at the target
//! of a million lines per second per core, a day of a busy gateway (100
//! million lines) reads in under two minutes.

use std::hint::black_box;

use contend::logs::format::{Format, compile};
use contend::logs::tally::{Has, Options, Tally};
use contend::logs::{has, line, lines};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const LINES: usize = 100_000;

fn options() -> Options {
    Options {
        interval_us: 1_000_000,
        slow_us: 500_000,
        seed: 1,
    }
}

/// `LINES` lines of `preset`: 20 keys, paths with ids, a 499 in ten.
fn log(preset: &str) -> Vec<u8> {
    let mut out = String::with_capacity(LINES * 220);
    for i in 0..LINES {
        let (status, us, urt) = if i % 10 == 0 {
            (499, "-".to_string(), "0.050".to_string())
        } else {
            (200, "200".to_string(), format!("0.{:03}", i % 1000))
        };
        let secs = i / 1000;
        let (min, sec) = (secs / 60, secs % 60);
        let path = format!("/api/v1/users/{}/orders?page={}", i % 5000, i % 7);
        let key = format!("key-{}", i % 20);
        let line = match preset {
            "combined" => format!(
                "10.0.{}.{} - - [31/Jan/2024:13:{min:02}:{sec:02} +0000] \"GET {path} HTTP/1.1\" {status} 512 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"",
                i % 256,
                i % 200
            ),
            "nginx-timed" => format!(
                "10.0.{}.{} - - [31/Jan/2024:13:{min:02}:{sec:02} +0000] \"GET {path} HTTP/1.1\" {status} 512 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" rt={urt} uct=\"0.000\" uht=\"{urt}\" urt=\"{urt}\"",
                i % 256,
                i % 200
            ),
            _ => format!(
                "2024-01-31T13:{min:02}:{sec:02}+00:00 key={key} method=GET path={path} status={status} rt={urt} us={us} urt={urt} acct={urt} id=-"
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.into_bytes()
}

fn read_all(format: &Format, text: &[u8], has: Has) -> Tally {
    let mut tally = Tally::new(options(), has);
    lines(text, "bench", format, &mut tally).expect("in memory");
    tally
}

fn bench_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("logs");
    group.sample_size(20);
    for preset in ["combined", "nginx-timed", "contend"] {
        let format = compile(preset, None).expect("a preset");
        let text = log(preset);
        let has = has(&format);
        let tally = read_all(&format, &text, has);
        assert_eq!(
            (tally.lines, tally.malformed),
            (LINES as u64, 0),
            "{preset}"
        );
        group.throughput(Throughput::Elements(LINES as u64));
        group.bench_function(format!("read_and_tally_100k_lines_{preset}"), |b| {
            b.iter(|| black_box(read_all(&format, black_box(&text), has)))
        });
        let one: Vec<&[u8]> = text.split(|&b| b == b'\n').take(1000).collect();
        group.throughput(Throughput::Elements(one.len() as u64));
        group.bench_function(format!("read_1k_lines_without_tally_{preset}"), |b| {
            b.iter(|| {
                for l in &one {
                    black_box(line::read(&format, black_box(l)).expect("in the format"));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_read);
criterion_main!(benches);
