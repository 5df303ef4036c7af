#!/usr/bin/env bash
# benches/peers.sh: contend side by side with wrk, oha, wrk2 and h2load, on
# the same target in the same run: plain HTTP/1.1, HTTPS and HTTP/2.
#
# What it does
#   1. Starts its own nginx on two free 127.0.0.1 ports: one worker, `return
#      204`, access log off, keep-alive for (practically) ever; the second port
#      with `ssl http2` on a certificate made for the run with openssl (a CA
#      and a server certificate for 127.0.0.1; contend trusts the CA, oha and
#      h2load are told not to check). It is stopped by its PID when the script
#      ends, however it ends.
#   2. Builds contend in release (`cargo build --release`, a no-op when fresh),
#      unless CONTEND=/path/to/contend is given.
#   3. For each tool present (contend; contend-1ms, contend with a 1 ms
#      pacing window (wrk2's grain) in the open-* cases; wrk; oha if on PATH;
#      wrk2 if WRK2=/path is given) runs every case, interleaved in rounds (round 1: case 1 with
#      tool A, B, ..., case 2 with A, B, ...; then round 2), so that drift of
#      the machine hits all tools alike:
#        open-R    open loop at R requests/s for DURATION, for R in RATES.
#                  wrk has no open loop: it runs closed loop with the same
#                  connection count instead, and its row says `closed-loop`.
#        closed-C  closed loop, CONNS connections, DURATION: the maximum rate
#                  (contend --connections C). wrk2 cannot run unpaced; it
#                  gets -R 10000000 (saturating).
#        https-R   HTTPS keep-alive (HTTP/1.1 over TLS), open loop at R/s
#                  (HTTPS_RATE): contend and oha.
#        h2-R      HTTP/2 over TLS, open loop at R/s (H2_RATE), H2_STREAMS
#                  streams per connection: contend, oha (--http2 -p) and
#                  h2load paced at the same rate (--rps, per connection:
#                  its timer runs on libev's 1 ms grain), H2_CONNS
#                  connections of H2_STREAMS streams.
#        h2closed-N HTTP/2 over TLS closed loop, N = H2_CONNS x H2_STREAMS
#                  requests in flight: contend (--connections N --http2)
#                  and h2load (-c H2_CONNS -m H2_STREAMS), the same shape.
#        window-W  contend alone, open loop at WINDOW_RATE with [client]
#                  pacing_window = W, for W in WINDOWS: the pacing-window
#                  curve (window against req/CPU-s, p50/p99, schedule lag;
#                  "auto" at the default lag_bound, its widest window shown).
#        storm-R   a new TLS connection per request (contend [client] reuse
#                  = false; oha --disable-keepalive) at R/s (STORM_RATE):
#                  the new connections per second sustained and the
#                  handshake's p99.
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
#   CASES [all]  which kinds of case to run: any of "open closed window https
#               h2 h2closed storm" (e.g. CASES="https h2 storm")
#   WINDOWS ["0s 25us 100us 250us 1ms auto"]  WINDOW_RATE [50000]  the window curve
#   HTTPS_RATE [20000]  H2_RATE [50000]  STORM_RATE [2000]
#   TLS_WINDOW [unset: contend's default]  contend's [client] pacing_window
#               in the https and h2 cases (e.g. 1ms, the grain of oha's timers;
#               lag_bound 5ms beside a duration, as in the window curve)
#   H2_STREAMS [100]  streams per HTTP/2 connection
#   H2_CONNS [1]  HTTP/2 connections of h2load (and of the h2closed case)
#   CONNS [64]  connections of every tool
#   CONTEND_MAX_CONNECTIONS [10000, contend's own default]  contend's
#               --max-connections: past it an arrival is counted `not_sent`
#               (an error) where wrk2 and oha queue it; below the cap contend
#               opens another connection, so open loop stays open
#   CONTEND_WAIT_AT_MAX [0]  1: contend --wait-at-max, so past the cap an
#               arrival waits for a free connection as in wrk2 and oha
#               (CONTEND_MAX_CONNECTIONS=64 CONTEND_WAIT_AT_MAX=1: their
#               -c 64, the same fixed connections)
#   CONTEND_THREADS [1]  contend's driver threads: on a 2-core machine the
#               target needs the other core
#   THREADS [nproc]  generator threads of wrk and wrk2 (contend and oha use
#                    every core by default)
#   OUT [reports/peers-<stamp>]  WRK2 [unset]
#   CONTEND [unset]  a contend binary to use as it is; unset, the script
#                    runs `cargo build --release` and uses target/release/contend
#
# Needs bash, nginx (with ssl and http2), openssl, python3 and cargo (or a
# built CONTEND). Uses 127.0.0.1 only. The whole default run is about
# (4 + 1 + 4) cases x tools x 3 rounds x 10 s.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

ROUNDS=${ROUNDS:-3}
RATES=${RATES:-"10000 25000 50000 75000"}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
CONTEND_MAX_CONNECTIONS=${CONTEND_MAX_CONNECTIONS:-10000}
CONTEND_WAIT_AT_MAX=${CONTEND_WAIT_AT_MAX:-0}
CONTEND_THREADS=${CONTEND_THREADS:-1}
THREADS=${THREADS:-$(nproc)}
stamp=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-reports/peers-$stamp}
CONTEND=${CONTEND:-}
WRK2=${WRK2:-}
CASES=${CASES:-"open closed window https h2 h2closed storm"}
WINDOWS=${WINDOWS:-"0s 25us 100us 250us 1ms auto"}
WINDOW_RATE=${WINDOW_RATE:-50000}
HTTPS_RATE=${HTTPS_RATE:-20000}
H2_RATE=${H2_RATE:-50000}
STORM_RATE=${STORM_RATE:-2000}
H2_STREAMS=${H2_STREAMS:-100}
H2_CONNS=${H2_CONNS:-1}

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
[[ $CONTEND_WAIT_AT_MAX == 0 || $CONTEND_WAIT_AT_MAX == 1 ]] ||
    die "CONTEND_WAIT_AT_MAX is 0 or 1, not '$CONTEND_WAIT_AT_MAX'"
for rate in $RATES; do
    [[ $rate =~ ^[1-9][0-9]*$ ]] || die "RATES must be whole numbers per second, not '$rate'"
done
[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || die "DURATION must be whole seconds like 10s, not '$DURATION'"
for n in "$HTTPS_RATE" "$H2_RATE" "$STORM_RATE" "$H2_STREAMS" "$H2_CONNS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "HTTPS_RATE, H2_RATE, STORM_RATE, H2_STREAMS and H2_CONNS must be positive whole numbers, not '$n'"
done
for kind in $CASES; do
    [[ $kind =~ ^(open|closed|window|https|h2|h2closed|storm)$ ]] ||
        die "CASES takes open, closed, window, https, h2, h2closed and storm, not '$kind'"
done
[[ $WINDOW_RATE =~ ^[1-9][0-9]*$ ]] || die "WINDOW_RATE must be a whole number per second, not '$WINDOW_RATE'"
for w in $WINDOWS; do
    [[ $w =~ ^[0-9]+(ns|us|ms)$|^0s$|^auto$ ]] || die "WINDOWS takes durations like 0s, 25us or 1ms, and auto, not '$w'"
done
TLS_WINDOW=${TLS_WINDOW:-}
[[ -z $TLS_WINDOW || $TLS_WINDOW =~ ^[0-9]+(ns|us|ms)$|^0s$|^auto$ ]] ||
    die "TLS_WINDOW takes a duration like 25us or 1ms, or auto, not '$TLS_WINDOW'"
wants() { [[ " $CASES " == *" $1 "* ]]; }
tls_cases=false
for kind in https h2 h2closed storm; do wants "$kind" && tls_cases=true; done
if $tls_cases; then
    command -v openssl >/dev/null || die "openssl is missing (it makes the run's certificate): apt-get install -y openssl"
fi

# --- tools ------------------------------------------------------------------
tools=(contend contend-1ms)
missing=()
if command -v wrk >/dev/null; then tools+=(wrk); else missing+=("wrk: apt-get install -y wrk"); fi
if command -v oha >/dev/null; then tools+=(oha); else missing+=("oha: cargo install oha"); fi
if command -v h2load >/dev/null; then tools+=(h2load); else missing+=("h2load: apt-get install -y nghttp2-client"); fi
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
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
tls_port=$(free_port)
while [[ $tls_port == "$port" ]]; do tls_port=$(free_port); done
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
# The run's certificate: a CA, and a server certificate for 127.0.0.1 it signed.
tls_server=""
if $tls_cases; then
    (
        cd "$work" &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
                -subj "/CN=peers.sh CA $stamp" -keyout ca.key -out ca.pem &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -subj "/CN=127.0.0.1" -keyout server.key -out server.csr &&
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
                -extfile san.ext -out server.pem
    ) >"$work/openssl.log" 2>&1 || die "openssl could not make the run's certificate: $(cat "$work/openssl.log")"
    tls_server="
    server {
        listen 127.0.0.1:$tls_port ssl http2;
        ssl_certificate $work/server.pem;
        ssl_certificate_key $work/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:peers:10m;
        http2_max_requests 1000000000;
        http2_max_concurrent_streams $H2_STREAMS;
        location / { return 204; }
    }"
fi
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
    }$tls_server
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
tls_url="https://127.0.0.1:$tls_port/"
echo "nginx (pid $nginx_pid) answers 204 on $url"
if $tls_cases; then
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null && break
        sleep 0.1
    done
    echo "and with TLS and HTTP/2 on $tls_url"
    # contend trusts the run's CA through a scenario file; flags give the rest.
    for http in 1.1 2; do
        printf '[client]\nhttp = "%s"\ntls.ca = "%s"\n' "$http" "$work/ca.pem" >"$work/tls-$http.toml"
        if [[ $TLS_WINDOW == auto ]]; then
            printf 'pacing_window = "auto"\n' >>"$work/tls-$http.toml"
        elif [[ -n $TLS_WINDOW ]]; then
            # As in the window curve: the window below lag_bound.
            printf 'pacing_window = "%s"\nlag_bound = "5ms"\n' "$TLS_WINDOW" >>"$work/tls-$http.toml"
        fi
    done
    printf '[client]\nreuse = false\ntls.ca = "%s"\n' "$work/ca.pem" >"$work/storm.toml"
fi

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
if wants open; then for rate in $RATES; do cases+=("open-$rate"); done; fi
if wants closed; then cases+=("closed-$CONNS"); fi
if wants https; then cases+=("https-$HTTPS_RATE"); fi
if wants h2; then cases+=("h2-$H2_RATE"); fi
if wants h2closed; then cases+=("h2closed-$((H2_CONNS * H2_STREAMS))"); fi
if wants window; then for w in $WINDOWS; do cases+=("window-$w"); done; fi
if wants storm; then cases+=("storm-$STORM_RATE"); fi

# runs_case TOOL CASE: whether TOOL takes part in CASE.
runs_case() {
    local tool=$1 kind=${2%%-*}
    [[ $tool == contend-1ms ]] && { [[ $kind == open ]]; return; }
    case "$kind" in
    window) [[ $tool == contend ]] ;;
    open | closed) [[ $tool != h2load ]] ;;
    https | storm) [[ $tool == contend || $tool == oha ]] ;;
    h2) [[ $tool == contend || $tool == oha || $tool == h2load ]] ;;
    h2closed) [[ $tool == contend || $tool == h2load ]] ;;
    esac
}

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
    [[ $kind == closed || $kind == h2closed ]] && mode=closed-loop
    local target=$url
    [[ $kind == https || $kind == h2 || $kind == h2closed || $kind == storm ]] && target=$tls_url
    local cmd=()
    case "$tool" in
    contend | contend-1ms)
        cmd=("$CONTEND" run)
        # A window must stay below lag_bound (else holding arrivals for it
        # would read as the generator falling behind).
        if [[ $tool == contend-1ms ]]; then
            printf '[client]\npacing_window = "1ms"\nlag_bound = "3ms"\n' >"$work/window-1ms.toml"
            cmd+=("$work/window-1ms.toml")
        elif [[ $kind == window ]]; then
            if [[ $value == auto ]]; then
                printf '[client]\npacing_window = "auto"\n' >"$work/window-$value.toml"
            else
                printf '[client]\npacing_window = "%s"\nlag_bound = "5ms"\n' "$value" >"$work/window-$value.toml"
            fi
            cmd+=("$work/window-$value.toml")
        fi
        case "$kind" in
        https) cmd+=("$work/tls-1.1.toml") ;;
        h2 | h2closed) cmd+=("$work/tls-2.toml") ;;
        storm) cmd+=("$work/storm.toml") ;;
        esac
        cmd+=(--target "$target" --duration "$DURATION" --threads "$CONTEND_THREADS"
            --out "$dir/report" --no-progress --name "$case")
        if [[ $kind == closed || $kind == h2closed ]]; then
            cmd+=(--connections "$value")
        elif [[ $kind == window ]]; then
            cmd+=(--rate "$WINDOW_RATE" --max-connections "$CONTEND_MAX_CONNECTIONS")
        else
            cmd+=(--rate "$value" --max-connections "$CONTEND_MAX_CONNECTIONS")
        fi
        if [[ $CONTEND_WAIT_AT_MAX == 1 && $kind != closed && $kind != h2closed ]]; then
            cmd+=(--wait-at-max)
        fi
        ;;
    h2load)
        local seconds=${DURATION%s}
        cmd=(h2load -D "$seconds" -c "$H2_CONNS" -m "$H2_STREAMS" -t 1)
        if [[ $kind == h2 ]]; then
            # --rps is per client (connection): the case's rate over them.
            cmd+=("--rps=$(( (value + H2_CONNS - 1) / H2_CONNS ))")
        else
            mode=closed-loop
        fi
        cmd+=("$target")
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
        cmd=(oha --no-tui "${oha_json[@]}" -z "$DURATION")
        case "$kind" in
        h2) cmd+=(--http2 --insecure -c "$H2_CONNS" -p "$H2_STREAMS") ;;
        https) cmd+=(--insecure -c "$CONNS") ;;
        storm) cmd+=(--insecure --disable-keepalive -c "$CONNS") ;;
        *) cmd+=(-c "$CONNS") ;;
        esac
        [[ $kind != closed ]] && cmd+=(-q "$value" --latency-correction)
        cmd+=("$target")
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
            runs_case "$tool" "$case" && run_one "$round" "$case" "$tool"
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
    CONTEND_MAX_CONNECTIONS=$CONTEND_MAX_CONNECTIONS CONTEND_WAIT_AT_MAX=$CONTEND_WAIT_AT_MAX \
    CONTEND_THREADS=$CONTEND_THREADS \
    H2_STREAMS=$H2_STREAMS WINDOW_RATE=$WINDOW_RATE TLS_WINDOW=$TLS_WINDOW \
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
    if tool.startswith("contend"):
        s = json.load(open(os.path.join(d, "report", "summary.json")))
        o = s["outcomes"]
        responses = sum(o["responses"].values())
        errors = sum(n for c, n in o["classes"].items() if c != "2xx")
        lat = s["latency_us"]
        # The reasons (with their figures) are in the run's summary.json.
        note = "generator-bound" if s.get("generator_bound") else ""
        c = s.get("connections", {})
        extra = {"conns_per_s": c.get("opened_per_s"),
                 "lag_p50_us": s["schedule_lag_us"]["p50"],
                 # The generator's own share of the schedule lag (the rest
                 # is waiting for a connection to a target behind).
                 "gen_lag_p99_us": s.get("generator_lag_us", {}).get("p99"),
                 # An adaptive window says how wide it went.
                 "window_us": max(s.get("driver", {}).get("pacing_window_us") or 0,
                                  s.get("driver", {}).get("pacing_window_widest_us") or 0),
                 "handshake_p99_us": s.get("tls_handshake_us", {}).get("p99") if c.get("tls") else None,
                 "http": c.get("http")}
        return (s["achieved_rate_per_s"], lat["p50"], lat["p99"], lat["max"], responses, errors, note,
                s["schedule_lag_us"]["p99"], extra)
    if tool in ("wrk", "wrk2"):
        text = open(os.path.join(d, "stdout")).read()
        m = re.search(r"^PEERS (.*)$", text, re.M)
        if not m:
            raise ValueError("no PEERS line in the output")
        f = {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
        rate = f["requests"] / (f["duration_us"] / 1e6)
        return (rate, f["p50_us"], f["p99_us"], f["max_us"], int(f["requests"]), int(f["errors"]), "", None, {})
    if tool == "oha":
        s = json.load(open(os.path.join(d, "stdout")))
        codes = {int(k): v for k, v in s.get("statusCodeDistribution", {}).items()}
        responses = sum(codes.values())
        errors = sum(s.get("errorDistribution", {}).values()) + sum(
            v for k, v in codes.items() if not 200 <= k < 300)
        p = s["latencyPercentiles"]
        us = lambda x: None if x is None else x * 1e6
        return (s["summary"]["requestsPerSec"], us(p["p50"]), us(p["p99"]),
                us(s["summary"]["slowest"]), responses, errors, "", None, {})
    if tool == "h2load":
        # h2load prints no percentiles of request time: p50/p99 stay empty.
        text = open(os.path.join(d, "stdout")).read()
        m = re.search(r"finished in ([0-9.]+)(m?s), ([0-9.]+) req/s", text)
        r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
        t = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", text)
        if not m or not r:
            raise ValueError("no h2load summary in the output")
        def to_us(v):
            for unit, k in (("us", 1), ("ms", 1e3), ("s", 1e6)):
                if v.endswith(unit):
                    return float(v[: -len(unit)]) * k
            return None
        errors = int(r.group(5)) + int(r.group(6)) + int(r.group(7))
        return (float(m.group(3)), None, None, to_us(t.group(2)) if t else None, int(r.group(4)),
                errors, "no percentiles (h2load)", None, {})
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
        achieved, p50, p99, mx, requests, errors, note, lag, extra = parse(tool, d)
        row.update(achieved_per_s=achieved, p50_us=p50, p99_us=p99, max_us=mx,
                   requests=requests, errors=errors, note=note, lag_p99_us=lag, **extra)
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
          "contend_ratio", "lag_p50_us", "lag_p99_us", "gen_lag_p99_us", "window_us", "conns_per_s", "handshake_p99_us", "http", "note"]

def median(key, group):
    vals = [r[key] for r in group if r.get(key) is not None]
    return statistics.median(vals) if vals else None

# Per case and round: contend's requests per CPU-second over each peer's.
for r in rows:
    c = [x for x in rows if x["case"] == r["case"] and x["round"] == r["round"]
         and x["tool"] == "contend" and x.get("requests_per_cpu_s")]
    if c and r.get("requests_per_cpu_s") and not r["tool"].startswith("contend"):
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
    f"keep-alive, at {env['URL']} (on the same machine as the generators); the https-, h2-, "
    f"h2closed- and storm- cases on its `ssl http2` port ({env['H2_STREAMS']} streams per "
    f"HTTP/2 connection)" + (f"; contend's pacing window there {env['TLS_WINDOW']}."
                              if env.get("TLS_WINDOW") else "."),
    f"- {env['ROUNDS']} round(s), interleaved; each run {env['DURATION']}, {env['CONNS']} "
    f"connections (contend: at most {env['CONTEND_MAX_CONNECTIONS']}"
    + (", then waiting for a free one" if env.get("CONTEND_WAIT_AT_MAX") == "1" else "")
    + f"); wrk and wrk2 with {env['THREADS']} threads; contend with {env['CONTEND_THREADS']} driver thread(s); oha on every core.",
    "- Figures are medians over the rounds; CPU is user+sys of the generator's process; "
    "req/CPU-s counts completed responses; the ratio is contend's req/CPU-s over the "
    "tool's, in the same case.",
    "",
    "| case | tool | mode | achieved /s | p50 us | p99 us | max us | errors | CPU s | req/CPU-s | contend ÷ tool | lag p99 us | conns/s | handshake p99 us | note |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
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
        if tool == "contend-1ms":
            ratio_text = "(1 ms window)"
        lines.append(
            f"| {case} | {tool} | {mode} | {fmt(median('achieved_per_s', group))} "
            f"| {fmt(median('p50_us', group))} | {fmt(median('p99_us', group))} "
            f"| {fmt(median('max_us', group))} | {fmt(median('errors', group))} "
            f"| {fmt(median('cpu_s', group), 2)} | {fmt(median('requests_per_cpu_s', group))} "
            f"| {ratio_text} | {fmt(median('lag_p99_us', group))} | {fmt(median('conns_per_s', group))} "
            f"| {fmt(median('handshake_p99_us', group))} | {'; '.join(notes)} |")
lines += [
    "",
    "Notes:",
    "- Latency: contend measures from each request's intended send time; wrk2 and oha "
    "(`--latency-correction`) correct for coordinated omission the same way; wrk's closed "
    "loop measures from the actual send (service time), so its figures read low under queueing.",
    "- wrk has no open loop: in the open-* cases it runs closed loop at the same connection "
    "count, so its rows there are its maximum, not the intended rate.",
    "- contend opens another connection for an arrival that finds every connection busy "
    "(at most 5000 new ones per second, 500 over TLS with keep-alive, where each costs a "
    "handshake; past that the arrival waits for the next free "
    "one); only past --max-connections is it counted `not_sent` (an error)"
    + (", or here (CONTEND_WAIT_AT_MAX=1) waits for the next free one" if env.get("CONTEND_WAIT_AT_MAX") == "1" else "")
    + ". wrk2 and oha queue it on one of their fixed connections; every tool's latency includes the wait.",
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
# HTTPS keep-alive and HTTP/2: achieved >= 99.5% with lag p99 <= 1 ms, and
# requests per CPU-second >= 1.3x oha's (and, for HTTP/2, >= h2load's).
for prefix, peers in (("https-", (("oha", 1.3),)), ("h2-", (("oha", 1.3), ("h2load", 1.0))),
                      ("h2closed-", (("h2load", 1.0),))):
    for case in [c for c in cases if c.startswith(prefix)]:
        got = med(case, "contend", "achieved_per_s")
        lag = med(case, "contend", "lag_p99_us")
        if got is not None and prefix != "h2closed-":
            rate = int(case[len(prefix):])
            ok = got / rate >= 0.995 and lag is not None and lag <= 1000
            bar.append(f"- {case}: contend achieved {got / rate:.1%} of intended, schedule lag p99 "
                       f"{fmt(lag)} us (bar 99.5% and 1,000 us: {'met' if ok else 'not met'}).")
        for tool, need in peers:
            ratio = med(case, tool, "contend_ratio")
            if ratio is not None:
                verdict = "met" if ratio >= need else "not met"
                bar.append(f"- {case}: contend's req/CPU-s is {ratio:.2f}x {tool}'s (bar {need:.1f}x: {verdict}).")
# A new TLS connection per request: at least 2,000 per second sustained,
# with the 99.5 % the other bars allow for (opened per second counts over
# the run and its drain, so 2,000/s offered reads a hair under 2,000).
for case in [c for c in cases if c.startswith("storm-")]:
    conns = med(case, "contend", "conns_per_s")
    hs = med(case, "contend", "handshake_p99_us")
    if conns is not None:
        verdict = "met" if conns >= 0.995 * 2000 else "not met"
        bar.append(f"- {case}: contend sustained {fmt(conns)} new TLS connections/s, handshake p99 "
                   f"{fmt(hs)} us (bar 2,000/s: {verdict}).")
closed = [c for c in cases if c.startswith("closed-")]
if closed:
    c_rate, w_rate = med(closed[0], "contend", "achieved_per_s"), med(closed[0], "wrk", "achieved_per_s")
    if c_rate and w_rate:
        verdict = "met" if c_rate >= 0.9 * w_rate else "not met"
        bar.append(f"- {closed[0]}: contend reached {c_rate / w_rate:.2f}x wrk's rate (bar 0.9x: {verdict}).")
# The pacing window (issue 17): contend's req/CPU-s over wrk2's in the same
# round, median over rounds; with a 1 ms window (wrk2's grain) >= 1.2x at
# 50k and 75k; with the default window >= 1.0x with p50 under 100 us; at
# 75k with the default window not generator-bound and lag p99 <= 1 ms.
def round_ratio(case, tool, peer):
    ratios = []
    for rnd in sorted({r["round"] for r in rows}):
        a = [r for r in rows if (r["case"], r["tool"], r["round"]) == (case, tool, rnd)]
        b = [r for r in rows if (r["case"], r["tool"], r["round"]) == (case, peer, rnd)]
        if a and b and a[0].get("requests_per_cpu_s") and b[0].get("requests_per_cpu_s"):
            ratios.append(a[0]["requests_per_cpu_s"] / b[0]["requests_per_cpu_s"])
    return statistics.median(ratios) if ratios else None
for case in [c for c in cases if c.startswith("open-")]:
    rate = int(case[5:])
    wide = round_ratio(case, "contend-1ms", "wrk2")
    if wide is not None and rate >= 50000:
        bar.append(f"- {case}: contend with a 1 ms window serves {wide:.2f}x wrk2's req/CPU-s "
                   f"(bar 1.2x: {'met' if wide >= 1.2 else 'not met'}).")
    narrow = round_ratio(case, "contend", "wrk2")
    p50 = med(case, "contend", "p50_us")
    if narrow is not None:
        ok = narrow >= 1.0 and p50 is not None and p50 < 100
        bar.append(f"- {case}: contend with the default window serves {narrow:.2f}x wrk2's req/CPU-s "
                   f"at p50 {fmt(p50)} us (bar 1.0x and p50 < 100 us: {'met' if ok else 'not met'}).")
    if rate == 75000:
        group = [r for r in rows if r["case"] == case and r["tool"] == "contend"]
        bound = sum(1 for r in group if r.get("note", "").startswith("generator-bound"))
        lag = med(case, "contend", "lag_p99_us")
        gen_lag = med(case, "contend", "gen_lag_p99_us")
        ok = bound == 0 and lag is not None and lag <= 1000
        bar.append(f"- {case}: contend (default window, one thread) generator-bound in {bound} of "
                   f"{len(group)} round(s), schedule lag p99 {fmt(lag)} us, of it the generator's "
                   f"own p99 {fmt(gen_lag)} us (bar: never, and schedule lag <= 1,000 us: "
                   f"{'met' if ok else 'not met'}).")
curve = [c for c in cases if c.startswith("window-")]
if curve:
    lines += ["", f"The pacing-window curve (contend alone, open loop at {env['WINDOW_RATE']}/s, "
              "medians over the rounds):", "",
              "| pacing_window | req/CPU-s | p50 us | p99 us | lag p50 us | lag p99 us | note |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for case in curve:
        group = [r for r in rows if r["case"] == case and r["tool"] == "contend"]
        notes = sorted({r.get("note", "") for r in group if r.get("note")})
        lines.append(f"| {case[7:]} | {fmt(median('requests_per_cpu_s', group))} "
                     f"| {fmt(median('p50_us', group))} | {fmt(median('p99_us', group))} "
                     f"| {fmt(median('lag_p50_us', group))} | {fmt(median('lag_p99_us', group))} "
                     f"| {'; '.join(notes)} |")
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
