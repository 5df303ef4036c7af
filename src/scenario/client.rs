//! The client's settings (`[client]`): timeouts, connections, threads,
//! the shard of a split load, the HTTP version it speaks and how it speaks
//! TLS (`http`, `streams_per_connection`, `tls`), as validated values for
//! the driver. `build_client` reads them from the file and the flags.

use std::path::PathBuf;
use std::time::Duration;

/// HTTP/2 streams per connection when the server sets no
/// `MAX_CONCURRENT_STREAMS` (RFC 9113 asks servers for at least 100).
pub const DEFAULT_STREAMS_PER_CONNECTION: u32 = 100;

/// The HTTP version the driver speaks (`[client] http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// `"1.1"`: HTTP/1.1, one request at a time per connection (the default).
    #[default]
    Http1,
    /// `"2"`: HTTP/2, each arrival a stream; over TLS the server must agree
    /// to `h2` in ALPN, in cleartext it is h2c with prior knowledge.
    Http2,
    /// `"auto"`: over TLS, what ALPN agrees on (`h2` offered first); in
    /// cleartext, HTTP/1.1.
    Auto,
}

impl HttpVersion {
    /// The name in scenario files: `1.1`, `2` or `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http1 => "1.1",
            HttpVersion::Http2 => "2",
            HttpVersion::Auto => "auto",
        }
    }
}

/// A TLS protocol version the client may be held to (`tls.version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersionSpec {
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// `[client] tls`: trust, identity and sessions for `https://` targets.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSpec {
    /// `ca = "file.pem"`: CA certificates trusted beside the system's.
    pub ca: Option<PathBuf>,
    /// `insecure = true`: accept any server certificate (self-signed test
    /// gateways); said loudly on the console.
    pub insecure: bool,
    /// `cert = "client.pem"`: the client certificate chain for mTLS.
    pub cert: Option<PathBuf>,
    /// `key = "client.key"`: its private key.
    pub key: Option<PathBuf>,
    /// `sni = "name"`: the server name asked for (and checked in the
    /// certificate) instead of the URL's host.
    pub sni: Option<String>,
    /// `resumption = false`: every handshake is a full one (no session
    /// tickets or ids kept).
    pub resumption: bool,
    /// `version = "1.2"` or `"1.3"`: only that version; none: either.
    pub version: Option<TlsVersionSpec>,
}

impl Default for TlsSpec {
    fn default() -> Self {
        TlsSpec {
            ca: None,
            insecure: false,
            cert: None,
            key: None,
            sni: None,
            resumption: true,
            version: None,
        }
    }
}

/// The narrowest `pacing_window` of `"auto"` (the default): at high rates
/// the pacer wakes at most this often while its thread has CPU to spare.
/// Its schedule lag is about half the window plus the wake's own latency,
/// which keeps the lag's median under 50 us on a busy machine; wider
/// windows cost less CPU per request (see `benches/peers.sh`).
pub const DEFAULT_PACING_WINDOW: Duration = Duration::from_micros(25);

/// The widest `"auto"` window for a `lag_bound`: half of it, so the
/// arrivals held for the window stay inside the bound.
pub fn auto_window_max(lag_bound: Duration) -> Duration {
    (lag_bound / 2).max(DEFAULT_PACING_WINDOW)
}

/// Client behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSpec {
    /// Deadline of a request, counted from its intended send time.
    pub timeout: Duration,
    /// Cap of open connections across all driver threads.
    pub max_connections: usize,
    /// `wait_at_max = true`: an arrival that finds every connection (or
    /// HTTP/2 stream) the cap allows busy waits for the next free one, its
    /// latency counting from its intended time, as on wrk2's and oha's
    /// fixed connections; `false` (the default): it is counted `not_sent`.
    pub wait_at_max: bool,
    /// Driver threads; `None` means the cores this process may use.
    pub threads: Option<usize>,
    /// Seed of every random choice (Poisson gaps, key mix).
    pub seed: u64,
    /// Length of one reporting interval.
    pub interval: Duration,
    /// Schedule lag p99 above which the run is marked generator-bound.
    pub lag_bound: Duration,
    /// `pacing_window`: arrivals that fall due within this long of a pacer
    /// wake are sent together at its end (0: each at its own time). Wider
    /// costs fewer wakes per request and shows as schedule lag; below
    /// `lag_bound`.
    pub pacing_window: Duration,
    /// Widest the window may grow: with `pacing_window = "auto"` (the
    /// default) a driver thread short of CPU widens its window up to this
    /// ([`auto_window_max`]) and narrows it back once it has CPU to spare;
    /// equal to `pacing_window` for a fixed window (a duration).
    pub pacing_window_max: Duration,
    /// `request_ids`: give every request a unique `x-request-id` and keep a
    /// bounded per-request record, so the client, the gateway's log and the
    /// upstream can be joined per request. Off by default (the hot path is
    /// then untouched); on by default for `experiment = "abort-audit"`.
    pub request_ids: bool,
    /// This process's share of a load split over several processes or
    /// machines (`--shard I/N`): it offers 1/N of every phase.
    pub shard: Shard,
    /// `--start-at`: when the load begins, on the wall clock, so that
    /// shards on several machines line up (connections are warmed first).
    pub start_at: Option<std::time::SystemTime>,
    /// `http`: the HTTP version spoken (`--http2` is `"2"`).
    pub http: HttpVersion,
    /// `streams_per_connection`: HTTP/2 streams one connection carries at
    /// most; `None`: as many as the server's `MAX_CONCURRENT_STREAMS`
    /// ([`DEFAULT_STREAMS_PER_CONNECTION`] when it sets none).
    pub streams_per_connection: Option<u32>,
    /// `reuse = false`: a new connection (and so a new TLS handshake) per
    /// request, each asking the server to close it (`connection: close`):
    /// the handshake storm after a gateway restart, or a client without
    /// keep-alive.
    pub reuse: bool,
    /// `[client] tls`: how `https://` targets are spoken to.
    pub tls: TlsSpec,
    /// `[client] retry`: which failed attempts are tried again, and how;
    /// `None`: none are.
    pub retry: Option<super::RetrySpec>,
}

/// One share of a load split over `count` processes: shard `index` offers
/// the arrivals whose global number is `index` modulo `count`, so the
/// shards together are the single-process schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards share the load.
    pub count: usize,
}

impl Default for Shard {
    /// The whole load: shard 0 of 1.
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

/// `--shard I/N`, or `--shard auto` (the index from the environment, the
/// count from the environment or the scenario's `[shards] count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardArg {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards; `None`: the scenario's `[shards] count`.
    pub count: Option<usize>,
}

/// Most shards one load may be split into.
pub const MAX_SHARDS: usize = 1000;

impl Default for ClientSpec {
    fn default() -> Self {
        ClientSpec {
            timeout: Duration::from_secs(10),
            max_connections: 10_000,
            wait_at_max: false,
            threads: None,
            seed: 1,
            interval: Duration::from_secs(1),
            lag_bound: Duration::from_millis(1),
            pacing_window: DEFAULT_PACING_WINDOW,
            pacing_window_max: auto_window_max(Duration::from_millis(1)),
            request_ids: false,
            shard: Shard::default(),
            start_at: None,
            http: HttpVersion::Http1,
            streams_per_connection: None,
            reuse: true,
            tls: TlsSpec::default(),
            retry: None,
        }
    }
}
