#!/usr/bin/env bash
# benches/peers.sh: contend side by side with wrk, oha and wrk2, on the same
# target in the same run.
#
# What it does
#   1. Starts its own nginx on a free 127.0.0.1 port: one worker, `return 204`,
#      access log off, keep-alive for (practically) ever. It is stopped by its
#      PID when the script ends, however it ends.
#   2. Builds contend in release (`cargo build --release`, a no-op when fresh),
#      unless CONTEND=/path/to/contend is given.
#   3. For each tool present (contend; wrk; oha if on PATH; wrk2 if WRK2=/path
#      is given) runs every case, interleaved in rounds (round 1: case 1 with
#      tool A, B, ..., case 2 with A, B, ...; then round 2), so that drift of
#      the machine hits all tools alike:
#        open-R    open loop at R requests/s for DURATION, for R in RATES.
#                  wrk has no open loop: it runs closed loop with the same
#                  connection count instead, and its row says `closed-loop`.
#        closed-C  closed loop, CONNS connections, DURATION: the maximum rate
#                  (contend --connections C). wrk2 cannot run unpaced; it
#                  gets -R 10000000 (saturating).
#   4. Measures each run: achieved rate, p50/p99/max latency as the tool
#      reports it (in us), errors, the generator's CPU seconds (user+sys of
#      the tool's process, from bash's `time`), requests per CPU-second; and
#      per case the ratio of contend's requests per CPU-second to each peer's.
#   5. Writes OUT/peers.csv (one line per run), OUT/peers.md (medians over the
#      rounds, the machine, the notes) and each run's raw output in OUT/runs/.
#
# Latency is not the same quantity for every tool: contend counts from each
# request's intended send time, as do wrk2 and oha with --latency-correction
# (both free of coordinated omission); wrk's closed loop counts from the
# actual send, so its figures are service times and read low under queueing.
#
# Usage (from anywhere; paths are relative to the repository):
#   benches/peers.sh
#   ROUNDS=1 RATES="10000 25000" DURATION=3s benches/peers.sh     # quick check
#   WRK2=/opt/wrk2/wrk benches/peers.sh
#
# Environment (defaults in brackets):
#   ROUNDS [3]  RATES ["10000 25000 50000 75000"]  DURATION [10s]
#   CONNS [64]  connections of every tool
#   CONTEND_MAX_CONNECTIONS [10000, contend's own default]  contend's
#               --max-connections: past it an arrival is counted `not_sent`
#               (an error) where wrk2 and oha queue it; below the cap contend
#               opens another connection, so open loop stays open
#   CONTEND_THREADS [1]  contend's driver threads: on a 2-core machine the
#               target needs the other core
#   THREADS [nproc]  generator threads of wrk and wrk2 (contend and oha use
#                    every core by default)
#   OUT [reports/peers-<stamp>]  WRK2 [unset]
#   CONTEND [unset]  a contend binary to use as it is; unset, the script
#                    runs `cargo build --release` and uses target/release/contend
#
# Needs bash, nginx, python3 and cargo (or a built CONTEND). Uses 127.0.0.1
# only. The whole default run is about (4 + 1) cases x tools x 3 rounds x 10 s.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

ROUNDS=${ROUNDS:-3}
RATES=${RATES:-"10000 25000 50000 75000"}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
CONTEND_MAX_CONNECTIONS=${CONTEND_MAX_CONNECTIONS:-10000}
CONTEND_THREADS=${CONTEND_THREADS:-1}
THREADS=${THREADS:-$(nproc)}
stamp=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-reports/peers-$stamp}
CONTEND=${CONTEND:-}
WRK2=${WRK2:-}

die() {
    echo "peers.sh: $*" >&2
    exit 1
}

command -v nginx >/dev/null || die "nginx is missing: apt-get install -y nginx"
command -v python3 >/dev/null || die "python3 is missing: apt-get install -y python3"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive whole number, not '$ROUNDS'"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "CONNS must be a positive whole number, not '$CONNS'"
[[ $CONTEND_MAX_CONNECTIONS =~ ^[1-9][0-9]*$ ]] ||
    die "CONTEND_MAX_CONNECTIONS must be a positive whole number, not '$CONTEND_MAX_CONNECTIONS'"
for rate in $RATES; do
    [[ $rate =~ ^[1-9][0-9]*$ ]] || die "RATES must be whole numbers per second, not '$rate'"
done
[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || die "DURATION must be whole seconds like 10s, not '$DURATION'"

# --- tools ------------------------------------------------------------------
tools=(contend)
missing=()
if command -v wrk >/dev/null; then tools+=(wrk); else missing+=("wrk: apt-get install -y wrk"); fi
if command -v oha >/dev/null; then tools+=(oha); else missing+=("oha: cargo install oha"); fi
if [[ -n $WRK2 ]]; then
    [[ -x $WRK2 ]] || die "WRK2=$WRK2 is not an executable"
    tools+=(wrk2)
else
    missing+=("wrk2: no Debian package; build wrk2 from source and pass WRK2=/path/to/its/wrk")
fi

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
work=$(mktemp -d "${TMPDIR:-/tmp}/peers.XXXXXX")
nginx_pid=""

cleanup() {
    if [[ -n $nginx_pid ]] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -TERM "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n 65536 2>/dev/null || true

# --- nginx ------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        location / { return 204; }
    }
}
EOF
nginx -p "$work/nginx" -e "$work/nginx/logs/error.log" -c "$work/nginx/nginx.conf" \
    -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx did not start: $(cat "$work/nginx/logs/error.log" 2>/dev/null)"
    sleep 0.1
done
exec 3<>"/dev/tcp/127.0.0.1/$port" || die "nginx is not accepting on 127.0.0.1:$port"
printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
status_line=$(head -n1 <&3)
exec 3>&-
[[ $status_line == *" 204"* ]] || die "nginx answered '$status_line', want 204"
url="http://127.0.0.1:$port/"
echo "nginx (pid $nginx_pid) answers 204 on $url"

# wrk and wrk2 print their figures through this script's done(); latency in us.
cat >"$work/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "PEERS requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f errors=%.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

oha_json=(-j)
if command -v oha >/dev/null && oha --help 2>&1 | grep -q -- '--output-format'; then
    oha_json=(--output-format json)
fi

# --- runs -------------------------------------------------------------------
cases=()
for rate in $RATES; do cases+=("open-$rate"); done
cases+=("closed-$CONNS")

# run_timed DIR CMD...: runs CMD with stdout/stderr into DIR, its CPU
# (user sys, seconds, of the process and its children) into DIR/cpu.
run_timed() {
    local dir=$1
    shift
    local TIMEFORMAT='%3U %3S'
    local rc=0
    { time "$@" >"$dir/stdout" 2>"$dir/stderr"; } 2>"$dir/cpu" || rc=$?
    echo "$rc" >"$dir/rc"
}

# run_one ROUND CASE TOOL: one run, its raw output in OUT/runs/.
run_one() {
    local round=$1 case=$2 tool=$3
    local kind=${case%%-*} value=${case#*-}
    local dir="$OUT/runs/r$round-$case-$tool"
    mkdir -p "$dir"
    local mode=open-loop
    [[ $kind == closed ]] && mode=closed-loop
    local cmd=()
    case "$tool" in
    contend)
        cmd=("$CONTEND" run --target "$url" --duration "$DURATION" --threads "$CONTEND_THREADS"
            --out "$dir/report" --no-progress)
        if [[ $kind == closed ]]; then
            cmd+=(--connections "$value")
        else
            cmd+=(--rate "$value" --max-connections "$CONTEND_MAX_CONNECTIONS")
        fi
        ;;
    wrk)
        mode=closed-loop
        cmd=(wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" -s "$work/report.lua" "$url")
        ;;
    wrk2)
        local rate=$value
        [[ $kind == closed ]] && rate=10000000
        cmd=("$WRK2" -t "$THREADS" -c "$CONNS" -d "$DURATION" -R "$rate" -s "$work/report.lua" "$url")
        ;;
    oha)
        cmd=(oha --no-tui "${oha_json[@]}" -z "$DURATION" -c "$CONNS")
        [[ $kind == open ]] && cmd+=(-q "$value" --latency-correction)
        cmd+=("$url")
        ;;
    esac
    printf '%s\n' "${cmd[*]}" >"$dir/command"
    echo "round $round  $case  $tool ($mode)"
    run_timed "$dir" "${cmd[@]}"
    printf '%s\t%s\t%s\t%s\n' "$round" "$case" "$tool" "$mode" >>"$OUT/runs/index.tsv"
    sleep 1
}

: >"$OUT/runs/index.tsv"
for round in $(seq "$ROUNDS"); do
    for case in "${cases[@]}"; do
        for tool in "${tools[@]}"; do
            run_one "$round" "$case" "$tool"
        done
    done
done

# --- report -----------------------------------------------------------------
model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
machine="$(nproc) cores, ${model:-unknown CPU}, Linux $(uname -r)"
nginx_version=$(nginx -v 2>&1 | sed 's/^nginx version: //')
missing_text=$(printf '%s\n' "${missing[@]+"${missing[@]}"}")

MACHINE=$machine NGINX_VERSION=$nginx_version MISSING=$missing_text URL=$url \
    ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS THREADS=$THREADS STAMP=$stamp \
    CONTEND_MAX_CONNECTIONS=$CONTEND_MAX_CONNECTIONS CONTEND_THREADS=$CONTEND_THREADS \
    python3 - "$OUT" <<'PY'
import csv, json, os, re, statistics, sys

out = sys.argv[1]
runs = os.path.join(out, "runs")
env = os.environ

def cpu(d):
    try:
        user, sys_ = open(os.path.join(d, "cpu")).read().split()[-2:]
        return float(user), float(sys_)
    except (OSError, ValueError):
        return None, None

def parse(tool, d):
    """achieved/s, p50, p99, max (us), requests, errors, extra note."""
    if tool == "contend":
        s = json.load(open(os.path.join(d, "report", "summary.json")))
        o = s["outcomes"]
        responses = sum(o["responses"].values())
        errors = sum(n for c, n in o["classes"].items() if c != "2xx")
        lat = s["latency_us"]
        # The reasons (with their figures) are in the run's summary.json.
        note = "generator-bound" if s.get("generator_bound") else ""
        return (s["achieved_rate_per_s"], lat["p50"], lat["p99"], lat["max"], responses, errors, note,
                s["schedule_lag_us"]["p99"])
    if tool in ("wrk", "wrk2"):
        text = open(os.path.join(d, "stdout")).read()
        m = re.search(r"^PEERS (.*)$", text, re.M)
        if not m:
            raise ValueError("no PEERS line in the output")
        f = {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
        rate = f["requests"] / (f["duration_us"] / 1e6)
        return (rate, f["p50_us"], f["p99_us"], f["max_us"], int(f["requests"]), int(f["errors"]), "", None)
    if tool == "oha":
        s = json.load(open(os.path.join(d, "stdout")))
        codes = {int(k): v for k, v in s.get("statusCodeDistribution", {}).items()}
        responses = sum(codes.values())
        errors = sum(s.get("errorDistribution", {}).values()) + sum(
            v for k, v in codes.items() if not 200 <= k < 300)
        p = s["latencyPercentiles"]
        us = lambda x: None if x is None else x * 1e6
        return (s["summary"]["requestsPerSec"], us(p["p50"]), us(p["p99"]),
                us(s["summary"]["slowest"]), responses, errors, "", None)
    raise ValueError(tool)

rows = []
for line in open(os.path.join(runs, "index.tsv")):
    rnd, case, tool, mode = line.rstrip("\n").split("\t")
    d = os.path.join(runs, f"r{rnd}-{case}-{tool}")
    row = dict(round=int(rnd), case=case, tool=tool, mode=mode)
    user, sys_ = cpu(d)
    row.update(cpu_user_s=user, cpu_sys_s=sys_)
    try:
        rc = int(open(os.path.join(d, "rc")).read())
        achieved, p50, p99, mx, requests, errors, note, lag = parse(tool, d)
        row.update(achieved_per_s=achieved, p50_us=p50, p99_us=p99, max_us=mx,
                   requests=requests, errors=errors, note=note, lag_p99_us=lag)
        if rc != 0:
            row["note"] = (note + "; " if note else "") + f"exit {rc}"
        if user is not None:
            row["cpu_s"] = user + sys_
            if row["cpu_s"] > 0:
                row["requests_per_cpu_s"] = requests / row["cpu_s"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        row["note"] = f"failed: {e}; see {d}/stderr"
    rows.append(row)

fields = ["round", "case", "tool", "mode", "achieved_per_s", "p50_us", "p99_us", "max_us",
          "requests", "errors", "cpu_user_s", "cpu_sys_s", "cpu_s", "requests_per_cpu_s",
          "contend_ratio", "lag_p99_us", "note"]

def median(key, group):
    vals = [r[key] for r in group if r.get(key) is not None]
    return statistics.median(vals) if vals else None

# Per case and round: contend's requests per CPU-second over each peer's.
for r in rows:
    c = [x for x in rows if x["case"] == r["case"] and x["round"] == r["round"]
         and x["tool"] == "contend" and x.get("requests_per_cpu_s")]
    if c and r.get("requests_per_cpu_s") and r["tool"] != "contend":
        r["contend_ratio"] = c[0]["requests_per_cpu_s"] / r["requests_per_cpu_s"]

with open(os.path.join(out, "peers.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()})

def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"

cases, tools = [], []
for r in rows:
    if r["case"] not in cases:
        cases.append(r["case"])
    if r["tool"] not in tools:
        tools.append(r["tool"])

lines = [
    f"# contend side by side ({env['STAMP']})",
    "",
    f"- Machine: {env['MACHINE']}.",
    f"- Target: {env['NGINX_VERSION']}, one worker, `return 204`, access log off, "
    f"keep-alive, at {env['URL']} (on the same machine as the generators).",
    f"- {env['ROUNDS']} round(s), interleaved; each run {env['DURATION']}, {env['CONNS']} "
    f"connections (contend: at most {env['CONTEND_MAX_CONNECTIONS']}); wrk and wrk2 with {env['THREADS']} threads; contend with {env['CONTEND_THREADS']} driver thread(s); oha on every core.",
    "- Figures are medians over the rounds; CPU is user+sys of the generator's process; "
    "req/CPU-s counts completed responses; the ratio is contend's req/CPU-s over the "
    "tool's, in the same case.",
    "",
    "| case | tool | mode | achieved /s | p50 us | p99 us | max us | errors | CPU s | req/CPU-s | contend ÷ tool | note |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
]
for case in cases:
    for tool in tools:
        group = [r for r in rows if r["case"] == case and r["tool"] == tool]
        if not group:
            continue
        mode = group[0]["mode"]
        notes = sorted({r.get("note", "") for r in group if r.get("note")})
        ratio = median("contend_ratio", group)
        ratio_text = "1.00" if tool == "contend" else (f"{ratio:.2f}x" if ratio else "-")
        lines.append(
            f"| {case} | {tool} | {mode} | {fmt(median('achieved_per_s', group))} "
            f"| {fmt(median('p50_us', group))} | {fmt(median('p99_us', group))} "
            f"| {fmt(median('max_us', group))} | {fmt(median('errors', group))} "
            f"| {fmt(median('cpu_s', group), 2)} | {fmt(median('requests_per_cpu_s', group))} "
            f"| {ratio_text} | {'; '.join(notes)} |")
lines += [
    "",
    "Notes:",
    "- Latency: contend measures from each request's intended send time; wrk2 and oha "
    "(`--latency-correction`) correct for coordinated omission the same way; wrk's closed "
    "loop measures from the actual send (service time), so its figures read low under queueing.",
    "- wrk has no open loop: in the open-* cases it runs closed loop at the same connection "
    "count, so its rows there are its maximum, not the intended rate.",
    "- contend opens another connection for an arrival that finds every connection busy "
    "(at most 5000 new ones per second; past that the arrival waits for the next free "
    "one); only past --max-connections is it counted `not_sent` (an error). wrk2 and oha "
    "queue it on one of their fixed connections; every tool's latency includes the wait.",
    "- wrk2 cannot run unpaced: in the closed-* case it runs at -R 10000000 (saturating).",
    "- Generator and nginx share the machine's cores: a generator that uses more CPU leaves "
    "less to nginx.",
]

# The bar (at the highest open-loop rate tried up to 50k/s, and closed loop):
# contend achieves >= 99.5% of the intended rate with schedule lag p99 <= 1 ms,
# serves >= 1.0x wrk2's and >= 1.3x oha's requests per CPU-second, and reaches
# >= 0.9x wrk's closed-loop rate.
def med(case, tool, key):
    return median(key, [r for r in rows if r["case"] == case and r["tool"] == tool])
bar = []
open_cases = [c for c in cases if c.startswith("open-") and int(c[5:]) <= 50000]
if open_cases:
    case = max(open_cases, key=lambda c: int(c[5:]))
    rate = int(case[5:])
    got = med(case, "contend", "achieved_per_s")
    lag = med(case, "contend", "lag_p99_us")
    if got is not None:
        bar.append(f"- {case}: contend achieved {got / rate:.1%} of intended (bar 99.5%), "
                   f"schedule lag p99 {fmt(lag)} us (bar 1,000 us, median over rounds).")
    for tool, need in (("wrk2", 1.0), ("oha", 1.3)):
        ratio = med(case, tool, "contend_ratio")
        if ratio is not None:
            verdict = "met" if ratio >= need else "not met"
            bar.append(f"- {case}: contend's req/CPU-s is {ratio:.2f}x {tool}'s (bar {need:.1f}x: {verdict}).")
closed = [c for c in cases if c.startswith("closed-")]
if closed:
    c_rate, w_rate = med(closed[0], "contend", "achieved_per_s"), med(closed[0], "wrk", "achieved_per_s")
    if c_rate and w_rate:
        verdict = "met" if c_rate >= 0.9 * w_rate else "not met"
        bar.append(f"- {closed[0]}: contend reached {c_rate / w_rate:.2f}x wrk's rate (bar 0.9x: {verdict}).")
if bar:
    lines += ["", "The bar:"] + bar
missing = [m for m in env.get("MISSING", "").splitlines() if m]
if missing:
    lines += ["", "Missing tools (not run):"] + [f"- {m}" for m in missing]
open(os.path.join(out, "peers.md"), "w").write("\n".join(lines) + "\n")
PY

echo
cat "$OUT/peers.md"
echo
echo "wrote $OUT/peers.csv and $OUT/peers.md"
