//! Times encoding one request: the plan turns each key's request into its
//! bytes on the wire once, and every arrival then writes those bytes as they
//! are. One case is the plain `--target`/`--rate` request, the other a keyed
//! request with an `x-api-key` and extra headers; the third times resolving a
//! whole plan (validation included).
//!
//! It matters because nothing is built per arrival: if encoding ever moved
//! onto the hot path, this is the cost every request would pay.

use std::hint::black_box;

use contend::driver::{Load, Plan, http1};
use contend::scenario::{self, Overrides, Rate, Source};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const TARGET: &str = "http://127.0.0.1:9";

fn bench_build(c: &mut Criterion) {
    let plain = scenario::from_overrides(&Overrides {
        target: Some(format!("{TARGET}/")),
        rate: Some(Rate::Constant(10_000.0)),
        ..Overrides::default()
    })
    .expect("flags make a scenario");
    let plain =
        Plan::new(&plain, TARGET, Load::Open(plain.phases().to_vec())).expect("plan from flags");

    let keyed_text = r#"
        [[phases]]
        rate = "10k"
        duration = "10s"

        [request]
        headers = { "accept" = "application/json" }

        [[keys]]
        name = "tenant-a"
        weight = 1
        path = "/v1/items?limit=10"
        headers = { "x-tenant" = "acme" }
    "#;
    let keyed = scenario::parse(
        keyed_text,
        &Source::Flags,
        &Overrides {
            target: Some(format!("{TARGET}/")),
            ..Overrides::default()
        },
    )
    .expect("keyed scenario parses");
    let keyed_scenario = keyed;

    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Elements(1));
    let headers = vec![
        ("accept".to_string(), "application/json".to_string()),
        ("x-tenant".to_string(), "acme".to_string()),
        ("x-api-key".to_string(), "tenant-a".to_string()),
    ];
    group.bench_function("request_encode_plain_get", |b| {
        b.iter(|| black_box(http1::encode_request("GET", "/", "127.0.0.1:9", &[], b"")))
    });
    group.bench_function("request_encode_keyed_get", |b| {
        b.iter(|| {
            black_box(http1::encode_request(
                "GET",
                "/v1/items?limit=10",
                "127.0.0.1:9",
                &headers,
                b"",
            ))
        })
    });
    group.bench_function("request_plan_keyed_scenario", |b| {
        b.iter(|| {
            black_box(
                Plan::new(
                    &keyed_scenario,
                    TARGET,
                    Load::Open(keyed_scenario.phases().to_vec()),
                )
                .expect("keyed plan"),
            )
        })
    });
    assert!(!plain.keys[0].request.bytes.is_empty());
    group.finish();
}

criterion_group!(benches, bench_build);
criterion_main!(benches);
