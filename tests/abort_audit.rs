//! The abort audit end to end on loopback: short runs (about 2.5 s per
//! mode) of a `ui` key and an `exporter` key whose 200 ms requests outlive
//! its 40 ms client timeout, through each gateway mode in front of a mock
//! upstream that keeps working after its client has gone. Early accounting
//! must under-count the exporter by more than 2x; complete accounting must
//! agree with the upstream's truth within 20%. nginx modes are skipped,
//! saying why, when nginx is not installed.

use std::path::Path;

use contend::analysis::accounting::{KeyAudit, ModeAudit, UnderCount};
use contend::experiment::abort_audit::{self, AuditOutput};
use contend::scenario::{self, Overrides, Source};
use contend::shutdown::Stop;

/// The audit scenario with `modes`; 200 ms / 40 ms is a work-to-timeout
/// ratio of 5, light enough (0.8 of a core for the exporter) that the
/// upstream's queue stays short on a shared two-core machine.
fn scenario_text(modes: &str) -> String {
    format!(
        "name = \"audit-test\"\nexperiment = \"abort-audit\"\n\
         [abort_audit]\nmodes = [{modes}]\nsettle = \"10s\"\n\
         [[phases]]\nrate = 54\nduration = \"2500ms\"\n\
         [upstream]\nworkers = 4\non_disconnect = \"run\"\n\
         [gateway]\nupstream_timeout = \"2s\"\n\
         [[keys]]\nname = \"ui\"\nweight = 50\npath = \"/work?cpu_ms=1\"\n\
         [[keys]]\nname = \"exporter\"\nweight = 4\npath = \"/work?cpu_ms=200\"\ntimeout = \"40ms\"\n\
         [client]\ntimeout = \"1s\"\nthreads = 1\nseed = 3\n"
    )
}

fn audit(modes: &str) -> AuditOutput {
    let s = scenario::parse(
        &scenario_text(modes),
        &Source::File("audit.toml".into()),
        &Overrides::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let exe = Path::new(env!("CARGO_BIN_EXE_contend"));
    abort_audit::run(&s, exe, &Stop::never(), &mut |_| {}, &mut |_| {})
        .unwrap_or_else(|e| panic!("{e}"))
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
    assert_eq!(exporter.client_abandoned, lines, "{exporter:?}");
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

/// Complete: the exporter is accounted its whole time, within 20% of the truth.
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
        (0.8..1.2).contains(&factor),
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
    let out = audit("\"reference-early\", \"reference-complete\"");
    assert_eq!(out.audit.order, ["reference-early", "reference-complete"]);
    assert_eq!(out.runs.len(), 2);
    for (_, run) in &out.runs {
        assert!(run.warnings.is_empty(), "{:?}", run.warnings);
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
}

#[test]
fn nginx_off_under_counts_the_exporter_and_on_agrees() {
    if let Err(e) = contend::topology::nginx::find() {
        eprintln!("SKIPPED nginx_off_under_counts_the_exporter_and_on_agrees: {e}");
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
}

/// `contend run` of the experiment through the binary: one mode, the
/// report folder with the mode's own report, `summary.json` (matching its
/// schema, with `abort_audit`) and `abort-audit.csv`, and the table printed.
#[test]
fn the_binary_writes_the_audit_report() {
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
    let csv = std::fs::read_to_string(out_dir.join("abort-audit.csv")).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("reference-early,exporter,")),
        "{csv}"
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
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_shipped_scenario_is_an_audit_of_all_four_modes() {
    let s = scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/client-abort.toml"),
        &Overrides::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.experiment, scenario::ExperimentKind::AbortAudit);
    assert_eq!(s.abort_audit.modes, scenario::AuditMode::ALL);
    let exporter = s.keys.iter().find(|k| k.name == "exporter").unwrap();
    assert_eq!(exporter.timeout, Some(std::time::Duration::from_millis(50)));
}
