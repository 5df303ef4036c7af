//! The abort audit end to end on loopback: short runs (about 2.5 s per
//! mode) of a `ui` key, an `exporter` key whose 200 ms requests outlive its
//! 40 ms client timeout and a `batch` key whose 3 s requests outlive the
//! gateway's 2 s upstream timeout, through each gateway mode in front of a
//! mock upstream that keeps working after its client has gone. Early
//! accounting must under-count the exporter by more than 2x, and each
//! aborted request, joined by its x-request-id across the client, the
//! gateway's log and the upstream, must be accounted about the client
//! timeout while the upstream worked the whole 200 ms; complete accounting
//! must agree with the upstream's truth within 10%; the 504s are their own
//! row, under-counted about 1.5x. The shipped scenario is run shortened:
//! near 6x early, near 1x complete. nginx and HAProxy modes are skipped,
//! saying why, when they are not installed. The runs burn real CPU on a shared
//! machine, so they take turns (`one_at_a_time`).

use std::path::Path;

use contend::analysis::accounting::{JoinedRequest, KeyAudit, ModeAudit, UnderCount};
use contend::experiment::Bench;
use contend::experiment::abort_audit::{self, AuditOutput};
use contend::scenario::{self, Overrides, Source};
use contend::shutdown::Stop;

use crate::util;

/// Held by each test that runs audit modes: two at once (or an audit and
/// a find-limit search) would share the cores and stretch every request's
/// wall time.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    util::one_measurement_at_a_time()
}

/// The audit scenario with `modes`; 200 ms / 40 ms is a work-to-timeout
/// ratio of 5, light enough (0.8 of a core for the exporter) that the
/// upstream's queue stays short on a shared two-core machine. The batch
/// key's work is a sleep (it holds a worker, not a core); 8 workers leave
/// room for it.
fn scenario_text(modes: &str) -> String {
    format!(
        "name = \"audit-test\"\nexperiment = \"abort-audit\"\n\
         [abort_audit]\nmodes = [{modes}]\nsettle = \"10s\"\n\
         [[phases]]\nrate = 56\nduration = \"2500ms\"\n\
         [upstream]\nworkers = 8\non_disconnect = \"run\"\n\
         [gateway]\nupstream_timeout = \"2s\"\n\
         [[keys]]\nname = \"ui\"\nweight = 50\npath = \"/work?cpu_ms=1\"\n\
         [[keys]]\nname = \"exporter\"\nweight = 4\npath = \"/work?cpu_ms=200\"\ntimeout = \"40ms\"\n\
         [[keys]]\nname = \"batch\"\nweight = 2\npath = \"/work?cpu_ms=0&sleep_ms=3000\"\ntimeout = \"5s\"\n\
         [client]\ntimeout = \"1s\"\nthreads = 1\nseed = 3\n"
    )
}

/// A mode's requests joined by id.
fn joined<'a>(out: &'a AuditOutput, mode: &str) -> &'a [JoinedRequest] {
    &out.joined
        .iter()
        .find(|(m, _)| m == mode)
        .unwrap_or_else(|| panic!("no joined requests for {mode}"))
        .1
}

/// Every request the client sent was found in the gateway's log and, but
/// for a few, in the upstream's: on a loaded machine a client can give up
/// before the gateway has forwarded its request, which then never reaches
/// the upstream.
fn assert_joined_whole(out: &AuditOutput, mode: &str) {
    let m = &out.audit.modes[mode];
    let stats = m.join.expect("join stats");
    assert!(stats.client_requests > 50, "{stats:?}");
    assert_eq!(stats.joined_gateway, stats.client_requests, "{stats:?}");
    assert!(
        stats.joined_upstream <= stats.client_requests
            && stats.joined_upstream + stats.client_requests / 20 >= stats.client_requests,
        "{stats:?}"
    );
    assert_eq!(
        (
            stats.client_dropped,
            stats.gateway_dropped,
            stats.upstream_dropped
        ),
        (0, 0, 0),
        "{stats:?}"
    );
}

/// Early, per request: each exporter request the client abandoned was
/// logged as a client abort (499; HAProxy's `CH`) and accounted about the
/// client timeout, while the upstream worked its full 200 ms of CPU for a
/// client that had gone.
fn assert_early_per_request(requests: &[JoinedRequest]) {
    let aborted: Vec<&JoinedRequest> = requests
        .iter()
        .filter(|r| r.key == "exporter" && r.client_outcome == "client_timeout")
        .collect();
    assert!(aborted.len() >= 3, "{requests:?}");
    for r in aborted {
        assert!(r.gateway_client_abort, "{r:?}");
        let accounted = r.accounted_s.expect("a gateway line");
        // At most the client's wait; less (down to 0) when the request
        // reached the upstream late (a loaded machine); never its work.
        assert!(accounted < 0.12, "accounted {accounted}: {r:?}");
        assert_eq!(r.upstream_outcome.as_deref(), Some("abandoned"), "{r:?}");
        let cpu = r.upstream_cpu_s.expect("an upstream entry");
        assert!(cpu >= 0.195, "the upstream stopped early: {r:?}");
        assert!(r.upstream_wall_s.unwrap() >= 3.0 * accounted, "{r:?}");
    }
}

/// Complete, per request: each exporter request is accounted its upstream
/// time (queue wait and work), the key's sum within 10% (each request
/// within 25%: a loaded gateway reads a response a little late).
fn assert_complete_per_request(requests: &[JoinedRequest]) {
    let (mut n, mut accounted_sum, mut upstream_sum) = (0, 0.0, 0.0);
    for r in requests.iter().filter(|r| r.key == "exporter") {
        n += 1;
        assert_eq!(r.gateway_status, Some(200), "{r:?}");
        let accounted = r.accounted_s.unwrap();
        let upstream = r.upstream_wall_s.unwrap() + r.upstream_queue_wait_s.unwrap();
        assert!(
            (accounted - upstream).abs() <= 0.25 * upstream,
            "accounted {accounted} s for {upstream} s upstream: {r:?}"
        );
        accounted_sum += accounted;
        upstream_sum += upstream;
    }
    assert!(n >= 3, "{requests:?}");
    assert!(
        (accounted_sum - upstream_sum).abs() <= 0.1 * upstream_sum,
        "accounted {accounted_sum} s for {upstream_sum} s upstream"
    );
}

/// The batch key's 504s are their own row (HAProxy's `504 sH`): the
/// gateway accounted its 2 s timeout while the upstream slept the whole 3 s.
fn assert_gateway_timeouts(mode: &ModeAudit) {
    let row = mode
        .logged
        .iter()
        .find(|l| l.key == "batch" && l.logged.starts_with("504"))
        .unwrap_or_else(|| panic!("no 504 row: {:?}", mode.logged));
    assert!(row.requests >= 1 && row.joined == row.requests, "{row:?}");
    let per_request = row.accounted_s / row.joined as f64;
    assert!((1.95..2.5).contains(&per_request), "{row:?}");
    let factor = row.under_count.unwrap();
    assert!((1.2..1.7).contains(&factor), "{row:?}");
}

fn audit(modes: &str) -> AuditOutput {
    let s = scenario::parse(
        &scenario_text(modes),
        &Source::File("audit.toml".into()),
        &Overrides::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let exe = Path::new(env!("CARGO_BIN_EXE_contend"));
    let stop = Stop::never();
    let bench = Bench {
        scenario: &s,
        exe,
        stop: &stop,
        cgroup: None,
    };
    abort_audit::run(&bench, &spec(&s), &mut |_| {}).unwrap_or_else(|e| panic!("{e}"))
}

/// The scenario's `[abort_audit]` spec (with its phases).
fn spec(s: &scenario::Scenario) -> scenario::AbortAuditSpec {
    match &s.experiment {
        scenario::Experiment::AbortAudit(spec) => spec.clone(),
        other => panic!("not an abort audit: {other:?}"),
    }
}

fn row<'a>(mode: &'a ModeAudit, key: &str) -> &'a KeyAudit {
    mode.keys
        .get(key)
        .unwrap_or_else(|| panic!("no row for {key}: {mode:?}"))
}

/// Early: the exporter's aborts are logged 499 at about the client timeout
/// while the upstream works the whole 200 ms; the factor is over 2.
fn assert_early(mode: &ModeAudit) {
    let exporter = row(mode, "exporter");
    let lines = exporter.gateway_lines;
    assert!(
        lines >= 3,
        "too few exporter requests to judge: {exporter:?}"
    );
    assert_eq!(
        exporter.logged_client_aborts, lines,
        "every exporter request is an abort: {exporter:?}"
    );
    // A request can time out before it reaches the gateway, never after
    // the gateway answered it.
    assert!(exporter.client_abandoned >= lines, "{exporter:?}");
    let per_request_s = exporter.accounted_s.unwrap() / lines as f64;
    assert!(
        (0.03..0.15).contains(&per_request_s),
        "accounted {per_request_s} s per abort: {exporter:?}"
    );
    assert_eq!(
        exporter.upstream.abandoned, exporter.upstream.started,
        "{exporter:?}"
    );
    assert_eq!(exporter.under_count_status, UnderCount::Ratio);
    let factor = exporter.under_count.unwrap();
    assert!(
        factor > 2.0,
        "early under-counts by only {factor}x: {exporter:?}"
    );
    assert!(
        exporter.true_cpu_s.unwrap() >= 0.19 * exporter.upstream.started as f64,
        "{exporter:?}"
    );
}

/// Complete: the exporter is accounted its whole time, within 10% of the truth.
fn assert_complete(mode: &ModeAudit) {
    let exporter = row(mode, "exporter");
    assert!(exporter.gateway_lines >= 3, "{exporter:?}");
    assert_eq!(exporter.logged_client_aborts, 0, "{exporter:?}");
    assert_eq!(
        exporter.upstream.completed, exporter.upstream.started,
        "{exporter:?}"
    );
    let factor = exporter.under_count.unwrap();
    assert!(
        (0.9..1.1).contains(&factor),
        "complete is {factor}x off the truth: {exporter:?}"
    );
}

/// Every mode's upstream had drained when it was read, and the `ui` key
/// (nothing aborted) is accounted about what it cost either way.
fn assert_drained_and_ui_whole(mode: &ModeAudit) {
    for (key, r) in &mode.keys {
        let u = &r.upstream;
        assert_eq!(
            u.started,
            u.completed + u.abandoned + u.cancelled,
            "{key} not drained: {r:?}"
        );
    }
    let ui = row(mode, "ui");
    assert_eq!(ui.client_abandoned, 0, "{ui:?}");
    assert!(ui.gateway_lines > 50, "{ui:?}");
}

#[test]
fn reference_early_under_counts_the_exporter_and_complete_agrees() {
    let _turn = one_at_a_time();
    let out = audit("\"reference-early\", \"reference-complete\"");
    assert_eq!(out.audit.order, ["reference-early", "reference-complete"]);
    assert_eq!(out.runs.len(), 2);
    for (_, run) in &out.runs {
        // A saturated upstream may answer its metrics page late on a busy
        // machine: that costs the per-interval telemetry, not the audit.
        let audit_warnings: Vec<&String> = run
            .warnings
            .iter()
            .filter(|w| !w.contains("own metrics could not be read"))
            .collect();
        assert!(audit_warnings.is_empty(), "{audit_warnings:?}");
    }
    let early = &out.audit.modes["reference-early"];
    let complete = &out.audit.modes["reference-complete"];
    assert!(
        early.gateway.as_deref().unwrap().starts_with("contend "),
        "{early:?}"
    );
    assert_early(early);
    assert_complete(complete);
    assert_drained_and_ui_whole(early);
    assert_drained_and_ui_whole(complete);
    assert_joined_whole(&out, "reference-early");
    assert_joined_whole(&out, "reference-complete");
    assert_early_per_request(joined(&out, "reference-early"));
    assert_complete_per_request(joined(&out, "reference-complete"));
    assert_gateway_timeouts(early);
    assert_gateway_timeouts(complete);
    // The per-request logs were joined, then taken out of the runs.
    for (_, run) in &out.runs {
        assert!(run.upstream.is_some() && run.upstream_requests.is_none());
        assert!(run.gateway.is_some() && run.gateway_requests.lines.is_empty());
    }
}

#[test]
fn nginx_off_under_counts_the_exporter_and_on_agrees() {
    let _turn = one_at_a_time();
    if !util::component_present(
        "nginx_off_under_counts_the_exporter_and_on_agrees",
        contend::topology::nginx::find(),
    ) {
        let out = audit("\"nginx-off\", \"reference-early\"");
        // The skip is kept in the audit with its reason; the other mode runs.
        let skipped = out.audit.modes["nginx-off"].skipped.as_deref().unwrap();
        assert!(skipped.contains("nginx is not installed"), "{skipped}");
        return;
    }
    let out = audit("\"nginx-off\", \"nginx-on\"");
    let off = &out.audit.modes["nginx-off"];
    let on = &out.audit.modes["nginx-on"];
    assert!(
        off.gateway.as_deref().unwrap().starts_with("nginx/"),
        "{off:?}"
    );
    assert_early(off);
    // nginx logs no upstream status for its aborts.
    let exporter = row(off, "exporter");
    assert_eq!(
        exporter.logged_upstream_status_missing, exporter.gateway_lines,
        "{exporter:?}"
    );
    assert_complete(on);
    assert_drained_and_ui_whole(off);
    assert_drained_and_ui_whole(on);
    // The same per request, from nginx's own access log ($http_x_request_id).
    assert_joined_whole(&out, "nginx-off");
    assert_joined_whole(&out, "nginx-on");
    assert_early_per_request(joined(&out, "nginx-off"));
    assert_complete_per_request(joined(&out, "nginx-on"));
    assert_gateway_timeouts(off);
    assert_gateway_timeouts(on);
}

/// HAProxy 2.6 with `option abortonclose` (early) and without (complete):
/// early logs every aborted exporter request `400` with termination state
/// `CH` and no upstream status, accounted about the 40 ms client timeout
/// while the upstream worked its 200 ms: a several-fold under-count, per
/// request and per key; complete serves each to its end and agrees with
/// the upstream's truth within 10%. The batch key's 504s (`sH`) under-count
/// as the other gateways' do. Skipped, saying why, when HAProxy is missing.
#[test]
fn haproxy_early_under_counts_an_aborted_request_and_complete_agrees() {
    let _turn = one_at_a_time();
    if !util::component_present(
        "haproxy_early_under_counts_an_aborted_request_and_complete_agrees",
        contend::topology::haproxy::find(),
    ) {
        let out = audit("\"haproxy-early\", \"reference-early\"");
        let skipped = out.audit.modes["haproxy-early"].skipped.as_deref().unwrap();
        assert!(skipped.contains("haproxy is not installed"), "{skipped}");
        assert!(skipped.contains("apt-get install haproxy"), "{skipped}");
        return;
    }
    let out = audit("\"haproxy-early\", \"haproxy-complete\"");
    for (_, run) in &out.runs {
        assert!(run.warnings.is_empty(), "{:?}", run.warnings);
        let acc = run.gateway.as_ref().expect("gateway accounting");
        assert_eq!((acc.kind.as_str(), acc.log.unparsed_lines), ("haproxy", 0));
    }
    let early = &out.audit.modes["haproxy-early"];
    let complete = &out.audit.modes["haproxy-complete"];
    assert!(
        early.gateway.as_deref().unwrap().starts_with("haproxy/"),
        "{early:?}"
    );
    assert_early(early);
    let exporter = row(early, "exporter");
    assert_eq!(
        exporter.logged_terminations.get("CH"),
        Some(&exporter.gateway_lines),
        "{exporter:?}"
    );
    assert_eq!(
        exporter.logged_upstream_status_missing, exporter.gateway_lines,
        "{exporter:?}"
    );
    assert!(
        exporter.under_count.unwrap() >= 3.0,
        "several-fold: {exporter:?}"
    );
    let aborts = early
        .logged
        .iter()
        .find(|l| l.key == "exporter" && l.logged == "400 CH")
        .unwrap_or_else(|| panic!("no `400 CH` row: {:?}", early.logged));
    assert!(aborts.under_count.unwrap() >= 3.0, "{aborts:?}");
    assert_complete(complete);
    assert_drained_and_ui_whole(early);
    assert_drained_and_ui_whole(complete);
    assert_joined_whole(&out, "haproxy-early");
    assert_joined_whole(&out, "haproxy-complete");
    assert_early_per_request(joined(&out, "haproxy-early"));
    assert_complete_per_request(joined(&out, "haproxy-complete"));
    assert_gateway_timeouts(early);
    assert_gateway_timeouts(complete);
}

/// `contend run` of the experiment through the binary: one mode, the
/// report folder with the mode's own report, `summary.json` (matching its
/// schema, with `abort_audit` and its rows), `accounting.csv`,
/// `requests.csv` and the scatter, and the table printed.
#[test]
fn the_binary_writes_the_audit_report() {
    let _turn = one_at_a_time();
    let dir = std::env::temp_dir().join(format!("contend-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("audit.toml");
    let text =
        scenario_text("\"reference-early\"").replace("duration = \"2500ms\"", "duration = \"1s\"");
    std::fs::write(&file, text).unwrap();
    let out_dir = dir.join("report");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_contend"))
        .args(["run", "--no-progress", "--out"])
        .arg(&out_dir)
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Abort audit:") && stdout.contains("exporter"),
        "{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    crate::reports::assert_matches_schema(&summary);
    let exporter = &summary["abort_audit"]["modes"]["reference-early"]["keys"]["exporter"];
    assert!(
        exporter["accounted_s"].is_number() && exporter["true_s"].is_number(),
        "{exporter}"
    );
    let rows = summary["abort_audit"]["rows"].as_array().expect("rows");
    let row = rows
        .iter()
        .find(|r| r["key"] == "exporter" && r["logged"] == "all")
        .expect("the exporter's row");
    assert_eq!(row["mode"], "reference-early");
    for field in ["accounted_s", "true_s", "under_count"] {
        assert!(row[field].is_number(), "{field}: {row}");
    }
    let csv = std::fs::read_to_string(out_dir.join("accounting.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("reference-early,exporter,all,")),
        "{csv}"
    );
    assert!(!out_dir.join("abort-audit.csv").exists());
    let requests = std::fs::read_to_string(out_dir.join("requests.csv")).unwrap();
    assert!(
        requests
            .lines()
            .any(|l| l.starts_with("reference-early,") && l.contains(",exporter,")),
        "{requests}"
    );
    // The mode's own summary keeps its accounting without the per-request logs.
    let mode_summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("reference-early").join("summary.json")).unwrap(),
    )
    .unwrap();
    assert!(
        mode_summary["upstream_accounting"]
            .get("requests")
            .is_none()
    );
    assert!(
        out_dir
            .join("reference-early")
            .join("summary.json")
            .is_file()
    );
    for plot in ["accounting.svg", "accounting.png"] {
        assert!(out_dir.join(plot).is_file(), "{plot} missing");
    }
    crate::binary::assert_only_contend_files(&out_dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_shipped_scenario_is_an_audit_of_all_six_modes() {
    let s = scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/client-abort.toml"),
        &Overrides::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.experiment.kind(), scenario::ExperimentKind::AbortAudit);
    assert_eq!(spec(&s).modes, scenario::AuditMode::ALL);
    let exporter = s.keys.iter().find(|k| k.name == "exporter").unwrap();
    assert_eq!(exporter.timeout, Some(std::time::Duration::from_millis(50)));
    assert!(s.client.request_ids, "the audit joins requests by id");
}

/// The shipped scenario, shortened to 5 s per mode: the exporter's
/// under-count is near its work over its client timeout (300 ms / 50 ms,
/// about 6; the truth is wall time, which contention on a shared machine
/// stretches, hence the wide bound) in the early modes and near 1 in the
/// complete modes; the budget refuses the exporter sooner, and after less
/// true work, when its whole work is accounted.
#[test]
fn the_shipped_scenario_under_counts_about_six_times_early_and_not_complete() {
    let _turn = one_at_a_time();
    let s = scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/client-abort.toml"),
        &Overrides {
            duration: Some(std::time::Duration::from_secs(5)),
            ..Overrides::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut audit = spec(&s);
    audit.settle = std::time::Duration::from_secs(15);
    let exe = Path::new(env!("CARGO_BIN_EXE_contend"));
    let stop = Stop::never();
    let bench = Bench {
        scenario: &s,
        exe,
        stop: &stop,
        cgroup: None,
    };
    let out = abort_audit::run(&bench, &audit, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let nginx = util::component_present(
        "the shipped scenario's nginx modes",
        contend::topology::nginx::find(),
    );
    let haproxy = util::component_present(
        "the shipped scenario's haproxy modes",
        contend::topology::haproxy::find(),
    );
    let factor = |mode: &str| {
        let row = row(&out.audit.modes[mode], "exporter");
        row.under_count
            .unwrap_or_else(|| panic!("{mode}: no factor: {row:?}"))
    };
    let mut early = vec!["reference-early"];
    let mut complete = vec!["reference-complete"];
    if nginx {
        early.push("nginx-off");
        complete.push("nginx-on");
    }
    if haproxy {
        early.push("haproxy-early");
        complete.push("haproxy-complete");
    }
    for mode in &early {
        // Work over accounted time, in CPU (exact however loaded the
        // machine is) and in wall time (the factor: at least as large).
        let row = row(&out.audit.modes[*mode], "exporter");
        let cpu_factor = row.true_cpu_s.unwrap() / row.accounted_s.unwrap();
        assert!(
            (3.0..12.0).contains(&cpu_factor),
            "{mode}: {cpu_factor}x CPU, want near 6: {row:?}"
        );
        let f = factor(mode);
        assert!(f >= 0.9 * cpu_factor, "{mode}: {f}x: {row:?}");
    }
    for mode in &complete {
        // Near 1; a machine loaded by other work stretches this wall-time
        // factor (1.3x and 1.8x seen at a load average of 7-18 on 2 cores),
        // still well apart from the early modes' 3x and more.
        let f = factor(mode);
        assert!((0.6..2.0).contains(&f), "{mode}: {f}x, want near 1");
    }
    // Every audit row carries the fields the issue names.
    assert!(
        out.audit
            .rows
            .iter()
            .any(|r| r.mode == "reference-early" && r.key == "exporter")
    );
}
