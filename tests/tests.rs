//! The integration tests, one binary. Modules:
//!
//! - `util`: loopback test servers and driver helpers.
//! - `binary`: running the `contend` binary and reading its report back.
//! - `deploy`: the Kubernetes manifests rendered (kubectl kustomize),
//!   schema-checked (kubernetes-validate), and their Jobs' commands run here.
//! - `scenario_files`: broken and good scenario files and their messages.
//! - `driver`: the open-loop driver against servers that stall, refuse,
//!   reset, never answer, or run out of connections.
//! - `cli`: the `contend` binary end to end: exit codes, messages, signals,
//!   the report folder's rules (made ready first, `--force`, whole files).
//! - `gateway`: the reference gateway's policies and abort accounting, its
//!   binary, and nginx and HAProxy as the gateway under test.
//! - `preflight`: resource limits (the fd limit raised, a run that cannot fit
//!   refused, descriptors running out mid-run), `contend doctor`, and a port
//!   in use or nginx or HAProxy missing or failing its config test.
//! - `reports`: the report folder's files against their formats and schema.
//! - `gate`: thresholds (and those refused before the run), `compare`,
//!   `--repeat` and JUnit through the binary.
//! - `abort_audit`: the abort-audit experiment: accounted against true worker time per mode.
//! - `logs`: `contend logs` on generated access logs with known answers,
//!   bad input, stdin, and a run's own gateway log read back.
//! - `faults`: `[[faults]] action = "slow"` on the mock upstream and the
//!   reference gateway, and where it is refused.
//! - `find_limit`: the find-limit experiment: `[find_limit]`, refusals, a short real search
//!   through the reference gateway and one through HAProxy.
//! - `robustness`: failing targets (huge, endless, cut, reset, garbage,
//!   stalled), a component dying mid-run or never ready (a killed nginx
//!   master, a killed HAProxy), the second signal, `kill -9` and the
//!   interval files written as the run goes.
//! - `scenario_fuzz`: the scenario parser under random edits and bytes
//!   (proptest, bounded): no panic, every error a message and exit code 2.
//! - `shards`: sharded runs (`--shard`, `--start-at`) and `contend merge`.
//! - `tls`: HTTPS and HTTP/2: responses over TLS and h2, failed handshakes
//!   by reason, misbehaving h2 servers, one handshake per connection, the
//!   embedded gateway and nginx with TLS and HTTP/2.
//! - `telemetry`: the system under test per interval: sampled CPU against a
//!   known burn, components' counters against the driver's, a component
//!   dying, `[[scrape]]` targets, quota classes and their cgroups on every
//!   way out, `--metrics-addr`.
//! - `retries`: the client's retry policy against servers that record when
//!   each attempt came: attempts add up, backoff, budget, `Retry-After`,
//!   retries cut at the run's end and at a stop.
//! - `retry_compare`: `--retries compare`: a sweep and a find-limit with
//!   their retry policy and without, side by side; `--retries` refused; a
//!   `[[variants]]` folder's page; retries over h2c to the reference
//!   gateway, every attempt in its log.
//! - `quota`: distributed quotas against real redis-server: replicas
//!   sharing one quota, a paused store failing open or closed, a store
//!   killed mid-run by `[[faults]]`, faults refused before the run, the
//!   local cache's sync in one round trip and its script reloaded.
//! - `sweep`: the sweep experiment: `[sweep]` parsing, a short real sweep, its
//!   rows, plots, report.html and `contend report DIR`, stopping early, and
//!   a sweep through HAProxy gated by thresholds.

mod abort_audit;
mod binary;
mod cli;
mod deploy;
mod driver;
mod faults;
mod find_limit;
mod gate;
mod gateway;
mod key_space;
mod logs;
mod preflight;
mod quota;
mod reports;
mod retries;
mod retry_compare;
mod robustness;
mod scenario_files;
mod scenario_fuzz;
mod shards;
mod sweep;
mod telemetry;
mod tls;
mod util;
