#!/usr/bin/env bash
# benches/gateways.sh: what the components contend starts cost per request,
# beside nginx and HAProxy on the same load.
#
# What it does
#   For each gateway kind (the reference gateway, nginx, HAProxy when
#   installed) and each round, `contend run` drives the same open-loop load
#   (RATE/s for DURATION) through it to the embedded mock upstream; the
#   gateway is pinned to CPU 1 (one thread or worker: nginx and HAProxy run
#   one worker by default), the mock to CPU 0 with a configured CPU of
#   MOCK_CPU per request. Each run's summary.json gives every component's
#   CPU per request from its own /proc times (components.*), so the table
#   sets side by side:
#     - the gateway's CPU per proxied request, and its ratio to nginx's
#       (the bar: the reference gateway within 1.5x of nginx);
#     - the mock upstream's CPU per request beyond its configured CPU (its
#       overhead: accepting, parsing, handing the work to a worker thread).
#   Kinds run interleaved per round so that drift hits all alike; figures
#   are medians over the rounds. Components are started and stopped by
#   contend (ephemeral loopback ports), as in any run.
#
# Usage
#   benches/gateways.sh                       # builds contend in release
#   CONTEND=target/release/contend ROUNDS=3 RATE=5000 benches/gateways.sh
#
# Environment (defaults in brackets)
#   CONTEND [cargo build]  the contend binary
#   RATE [2000]  DURATION [10s]  ROUNDS [2]  MOCK_CPU [50us]
#   KINDS ["reference nginx haproxy"]  OUT [reports/gateways-<time>]
#
# Writes OUT/gateways.md (the table) and OUT/runs/ (each run's folder).
set -euo pipefail

RATE=${RATE:-2000}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
MOCK_CPU=${MOCK_CPU:-50us}
KINDS=${KINDS:-"reference nginx haproxy"}
OUT=${OUT:-reports/gateways-$(date +%Y%m%d-%H%M%S)}
CONTEND=${CONTEND:-}

die() {
    echo "gateways.sh: $*" >&2
    exit 1
}

[[ $RATE =~ ^[1-9][0-9]*$ ]] || die "RATE must be a whole number per second, not '$RATE'"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive whole number, not '$ROUNDS'"
[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || die "DURATION must be whole seconds like 10s, not '$DURATION'"
[[ $MOCK_CPU =~ ^[0-9]+(us|ms)$ ]] || die "MOCK_CPU must be a duration like 50us or 1ms, not '$MOCK_CPU'"
command -v python3 >/dev/null || die "python3 is missing: apt-get install -y python3"
(($(nproc) >= 2)) || die "needs 2 cores (gateway on CPU 1, mock upstream on CPU 0); this machine has $(nproc)"

kinds=()
for kind in $KINDS; do
    case "$kind" in
    reference) kinds+=(reference) ;;
    nginx | haproxy)
        if command -v "$kind" >/dev/null; then
            kinds+=("$kind")
        else
            echo "gateways.sh: $kind is not installed (apt-get install -y $kind): left out" >&2
        fi
        ;;
    *) die "KINDS takes reference, nginx and haproxy, not '$kind'" ;;
    esac
done
[[ " ${kinds[*]} " == *" reference "* ]] || die "KINDS must include reference (the gateway measured)"

if [[ -z $CONTEND ]]; then
    command -v cargo >/dev/null || die "cargo is missing: install Rust, or pass CONTEND=/path/to/contend"
    echo "building contend (release)..."
    cargo build --release --quiet --bin contend ||
        die "cargo build --release failed: fix the build, or pass CONTEND=/path/to/contend"
    CONTEND=target/release/contend
fi
[[ -x $CONTEND ]] || die "CONTEND=$CONTEND is not an executable"

mkdir -p "$OUT/runs"
OUT=$(cd "$OUT" && pwd)

for round in $(seq "$ROUNDS"); do
    for kind in "${kinds[@]}"; do
        dir="$OUT/runs/r$round-$kind"
        mkdir -p "$dir"
        cat >"$dir/scenario.toml" <<EOF
name = "gateways-$kind"

[[phases]]
rate = "$RATE"
duration = "$DURATION"

[upstream]
kind = "mock"
cpu = "$MOCK_CPU"
cpus = "0"

[gateway]
kind = "$kind"
cpus = "1"

[request]
path = "/work"
EOF
        echo "round $round  $kind"
        "$CONTEND" run "$dir/scenario.toml" --out "$dir/report" --no-progress >"$dir/stdout" 2>"$dir/stderr" ||
            die "contend run failed for $kind (exit $?): $(tail -n 3 "$dir/stderr")"
    done
done

python3 - "$OUT" "$RATE" "$DURATION" "$MOCK_CPU" "${kinds[@]}" <<'EOF'
import json, os, re, statistics, sys

out, rate, duration, mock_cpu, kinds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
m = re.fullmatch(r"(\d+)(us|ms)", mock_cpu)
configured_us = int(m.group(1)) * (1000 if m.group(2) == "ms" else 1)
rows = {}
for name in sorted(os.listdir(os.path.join(out, "runs"))):
    kind = name.split("-", 1)[1]
    s = json.load(open(os.path.join(out, "runs", name, "report", "summary.json")))
    c = s.get("components", {})
    g, u = c.get("gateway", {}), c.get("upstream", {})
    rows.setdefault(kind, []).append({
        "achieved": s["achieved_rate_per_s"],
        "p50": s["latency_us"]["p50"],
        "p99": s["latency_us"]["p99"],
        "gw": g.get("cpu_per_request_us"),
        "gw_user_s": g.get("cpu_user_s"),
        "gw_sys_s": g.get("cpu_system_s"),
        "up": u.get("cpu_per_request_us"),
        "bound": s.get("generator_bound"),
    })

def med(kind, field):
    values = [r[field] for r in rows[kind] if r[field] is not None]
    return statistics.median(values) if values else None

def us(v):
    return "-" if v is None else f"{v:,.0f}"

def secs(v):
    return "-" if v is None else f"{v:.2f}"

lines = [
    f"# Gateway and mock upstream CPU per request ({len(rows['reference'])} round(s))",
    "",
    f"- Load: open loop, {rate}/s for {duration}, `GET /work`; mock upstream with `cpu = \"{mock_cpu}\"` "
    "pinned to CPU 0, the gateway pinned to CPU 1 (one thread or worker).",
    "- CPU per request: the component's user+system CPU time (/proc) over the responses it served; "
    "medians over the rounds.",
    "",
    "| gateway | achieved /s | p50 us | p99 us | gateway CPU us/req | user s | system s | vs nginx | mock CPU us/req | mock overhead us/req |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
nginx = med("nginx", "gw") if "nginx" in rows else None
for kind in kinds:
    gw, up = med(kind, "gw"), med(kind, "up")
    ratio = f"{gw / nginx:.2f}x" if gw and nginx else "-"
    overhead = None if up is None else up - configured_us
    lines.append(
        f"| {kind} | {us(med(kind, 'achieved'))} | {us(med(kind, 'p50'))} | {us(med(kind, 'p99'))} | "
        f"{us(gw)} | {secs(med(kind, 'gw_user_s'))} | {secs(med(kind, 'gw_sys_s'))} | {ratio} | {us(up)} | {us(overhead)} |")
lines.append("")
if nginx and med("reference", "gw"):
    r = med("reference", "gw") / nginx
    verdict = "met" if r <= 1.5 else "not met"
    lines.append(f"The bar: the reference gateway's CPU per request is {r:.2f}x nginx's (bar 1.5x: {verdict}).")
else:
    lines.append("The bar: not measured (nginx is not installed).")
if any(r["bound"] for rs in rows.values() for r in rs):
    lines.append("WARNING: some runs were generator-bound: see their summary.json.")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "gateways.md"), "w").write(text)
print()
print(text)
print(f"wrote {os.path.join(out, 'gateways.md')}")
EOF
