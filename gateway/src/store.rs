//! The rate limit kept in a shared store (Redis), so that every replica of
//! the gateway counts a key against one quota.
//!
//! Takes the `[store]` section of the config (a Redis URL, a per-call
//! timeout, what to do when the store fails, an optional local cache) and
//! a route's GCRA; hands on a [`Verdict`] per request and per-key counters
//! for `/metrics`. It does not decide which routes are limited: `proxy`
//! asks it for the routes that have a `rate_limit`.
//!
//! Every request: one `EVALSHA` of [`GCRA_SCRIPT`] (loaded once at start,
//! reloaded by the client when a restarted store has forgotten it), which
//! reads the key's theoretical arrival time (TAT), decides and writes it in
//! one atomic step, on the store's own clock (`TIME`) so that replicas
//! with different clocks agree. A key's entry expires when its TAT has
//! passed, so the store holds only keys that are still limited.
//!
//! With `sync_interval` (the local cache): each replica decides from its
//! own in-memory GCRA and, every interval, charges the store with what it
//! admitted since the last sync and moves its local TAT to the store's, so
//! the others' admissions slow it down. Fewer round trips: a sync sends
//! every live key's script call in one pipeline, one round trip per
//! thousand keys (a store that has forgotten the script answers
//! NOSCRIPT: it is loaded again and those keys sent once more). The price
//! is up to one interval of every replica's admissions over the quota. A sync
//! that cannot reach the store marks it down until one succeeds; meanwhile
//! `on_store_error` holds as without the cache: "open" goes on deciding
//! from the local quota (each admission counted `fail_open`, and charged to
//! the store once it is back), "closed" refuses (503).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use toml::Spanned;

use crate::config::{Dur, Located};
use crate::policy::gcra::Gcra;

/// GCRA in one step. KEYS[1]: the key's entry. ARGV: interval T in us,
/// tolerance (burst * T) in us, cells to take, mode (0: take them only if
/// they fit; 1: take them whatever, the local cache's charge), and how
/// long ago the cells began, us (0 for one request; a sync's batch was
/// admitted over the time since the last sync, so it is charged from
/// then, not all at once now, which would run the TAT ahead). Returns
/// `{1, TAT - now}` when taken, `{0, wait}` when refused (us). Times are
/// microseconds since the epoch (below 2^53, exact in Lua's doubles). The
/// entry lives until its TAT has passed by the charge's backdating too: a
/// batch charged from `since` ago still needs the TAT a moment old (expired
/// at the TAT, each replica's batch would start again from its floor and
/// the store would never hold the replicas back).
pub const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cells = tonumber(ARGV[3])
local floor = now - tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[1]) or floor)
if tat < floor then tat = floor end
local new_tat = tat + interval * cells
if ARGV[4] == '0' and new_tat - now > tolerance then
  return {0, new_tat - now - tolerance}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.floor((new_tat + tonumber(ARGV[5]) - now) / 1000) + 1))
return {1, new_tat - now}
";

/// What to do with a request when the store cannot answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    /// Admit it (and count it as a fail-open admission).
    #[default]
    Open,
    /// Answer 503.
    Closed,
}

impl OnStoreError {
    /// `open` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnStoreError::Open => "open",
            OnStoreError::Closed => "closed",
        }
    }
}

/// The validated `[store]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// `redis://HOST:PORT`.
    pub url: String,
    /// Longest wait for one call; past it the call is a store error.
    pub timeout: Duration,
    /// What a store error does to the request.
    pub on_error: OnStoreError,
    /// `Some`: decide locally and sync with the store this often.
    pub sync_interval: Option<Duration>,
}

/// `[store]` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    url: Option<Spanned<String>>,
    timeout: Option<Spanned<Dur>>,
    on_store_error: Option<OnStoreError>,
    sync_interval: Option<Spanned<Dur>>,
}

/// Default per-call timeout: the seed's latency budget for the check.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

impl RawStore {
    /// Validates the section whose span is `span`.
    pub fn validate(
        &self,
        span: std::ops::Range<usize>,
    ) -> std::result::Result<StoreConfig, Located> {
        let url = self.url.as_ref().ok_or_else(|| {
            (
                span.clone(),
                "[store] has no url: add url = \"redis://127.0.0.1:6379\"".to_string(),
            )
        })?;
        if !url.get_ref().starts_with("redis://") {
            return Err((
                url.span(),
                format!(
                    "[store] url {:?} is not a Redis URL: write redis://HOST:PORT",
                    url.get_ref()
                ),
            ));
        }
        redis::Client::open(url.get_ref().as_str())
            .map_err(|e| (url.span(), format!("[store] url {:?}: {e}", url.get_ref())))?;
        let within = |what: &str, d: &Spanned<Dur>, max: Duration| {
            let v = d.get_ref().0;
            if v.is_zero() || v > max {
                Err((
                    d.span(),
                    format!(
                        "[store] {what} must be more than 0 and at most {}s",
                        max.as_secs()
                    ),
                ))
            } else {
                Ok(v)
            }
        };
        Ok(StoreConfig {
            url: url.get_ref().clone(),
            timeout: match &self.timeout {
                Some(t) => within("timeout", t, Duration::from_secs(10))?,
                None => DEFAULT_TIMEOUT,
            },
            on_error: self.on_store_error.unwrap_or_default(),
            sync_interval: match &self.sync_interval {
                Some(s) => Some(within("sync_interval", s, Duration::from_secs(60))?),
                None => None,
            },
        })
    }
}

/// The config's `[store]` lines, read back by the config's parser.
pub fn store_toml(store: &StoreConfig) -> String {
    let mut out = format!(
        "\n[store]\nurl = {:?}\ntimeout = \"{}ns\"\non_store_error = {:?}\n",
        store.url,
        store.timeout.as_nanos(),
        store.on_error.as_str()
    );
    if let Some(s) = store.sync_interval {
        out.push_str(&format!("sync_interval = \"{}ns\"\n", s.as_nanos()));
    }
    out
}

/// What the shared limit says about one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Within the quota.
    Admit,
    /// Over it: this long until it would pass.
    Limited(Duration),
    /// The store failed and `on_store_error = "open"`: admitted uncounted.
    FailOpen,
    /// The store failed and `on_store_error = "closed"`: refused (503).
    FailClosed,
}

/// Per-key counters of the shared limit, for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyCounts {
    pub(crate) admitted: u64,
    pub(crate) limited: u64,
    pub(crate) store_errors: u64,
    pub(crate) fail_open: u64,
}

/// Keys shown one by one on `/metrics`; past this many, keys seen later
/// are counted only in the totals (a generated key space has 100,000).
pub(crate) const MAX_KEY_SERIES: usize = 1000;

/// The counters: totals, and per key for the first [`MAX_KEY_SERIES`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) total: KeyCounts,
    pub(crate) keys: HashMap<String, KeyCounts>,
    /// Keys seen beyond the per-key series.
    pub(crate) untracked_keys: u64,
    /// Calls made to the store (requests, or syncs with the cache).
    pub(crate) calls: u64,
}

/// The shared limit: a connection to the store and the counters.
pub(crate) struct SharedLimit {
    connection: ConnectionManager,
    script: redis::Script,
    pub(crate) config: StoreConfig,
    pub(crate) counters: Mutex<Counters>,
    /// The local cache's state, per store key, with `sync_interval`.
    cache: Option<Mutex<HashMap<String, CacheEntry>>>,
    /// With the cache: the last sync could not reach the store.
    store_down: AtomicBool,
}

/// One key in the local cache.
struct CacheEntry {
    gcra: Gcra,
    /// The local TAT.
    tat: Option<Instant>,
    /// Admitted here since the last sync.
    unsynced: u64,
}

/// Keys charged per pipeline in a sync, each pipeline within the store's
/// timeout: about 11 ms of the store's time on loopback, so a long-tail key
/// space (many thousands of live keys) costs a round trip per thousand
/// instead of missing the timeout with all of them in one.
const SYNC_BATCH: usize = 1_000;

/// One key's charge in a sync: the local admissions since the last one.
struct Charge {
    store_key: String,
    gcra: Gcra,
    cells: u64,
}

/// Why the store could not be reached at start.
#[derive(Debug)]
pub struct ConnectError(pub String);

impl SharedLimit {
    /// Connects to the store and loads the script; fails when the store
    /// does not answer within a few timeouts.
    pub(crate) async fn connect(config: StoreConfig) -> Result<Arc<SharedLimit>, ConnectError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| ConnectError(format!("[store] url {:?}: {e}", config.url)))?;
        // The client retries a lost connection in the background; calls
        // made meanwhile fail at once or at the timeout, which is the
        // store error the policy decides on.
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout.max(Duration::from_millis(200))))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let start = Duration::from_secs(5);
        let mut connection = tokio::time::timeout(
            start,
            ConnectionManager::new_with_config(client, manager_config),
        )
        .await
        .map_err(|_| {
            ConnectError(format!(
                "the store at {} did not answer within 5s",
                config.url
            ))
        })?
        .map_err(|e| ConnectError(format!("cannot reach the store at {}: {e}", config.url)))?;
        let script = redis::Script::new(GCRA_SCRIPT);
        tokio::time::timeout(start, script.prepare_invoke().load_async(&mut connection))
            .await
            .map_err(|_| ConnectError("loading the GCRA script timed out".into()))?
            .map_err(|e| ConnectError(format!("loading the GCRA script: {e}")))?;
        let cache = config.sync_interval.map(|_| Mutex::new(HashMap::new()));
        let limit = Arc::new(SharedLimit {
            connection,
            script,
            config,
            counters: Mutex::new(Counters::default()),
            cache,
            store_down: AtomicBool::new(false),
        });
        if let Some(every) = limit.config.sync_interval {
            // The sync task holds a weak handle: it ends with the gateway.
            let weak = Arc::downgrade(&limit);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(limit) = weak.upgrade() else { break };
                    limit.sync().await;
                }
            });
        }
        Ok(limit)
    }

    /// Decides a request of `key` on `route` under `gcra`, and counts it.
    pub(crate) async fn check(&self, route: &str, key: &str, gcra: Gcra) -> Verdict {
        let store_key = format!("contend:gcra:{route}:{key}");
        let verdict = match &self.cache {
            Some(_)
                if self.store_down.load(Ordering::Relaxed)
                    && self.config.on_error == OnStoreError::Closed =>
            {
                Verdict::FailClosed
            }
            Some(cache) => {
                let now = Instant::now();
                let mut cache = lock(cache);
                let entry = cache.entry(store_key).or_insert(CacheEntry {
                    gcra,
                    tat: None,
                    unsynced: 0,
                });
                match gcra.check(entry.tat, now) {
                    Ok(tat) => {
                        entry.tat = Some(tat);
                        entry.unsynced += 1;
                        if self.store_down.load(Ordering::Relaxed) {
                            Verdict::FailOpen
                        } else {
                            Verdict::Admit
                        }
                    }
                    Err(wait) => Verdict::Limited(wait),
                }
            }
            None => match self.call(&store_key, gcra).await {
                Ok((true, _)) => Verdict::Admit,
                Ok((false, wait)) => Verdict::Limited(wait),
                Err(()) => match self.config.on_error {
                    OnStoreError::Open => Verdict::FailOpen,
                    OnStoreError::Closed => Verdict::FailClosed,
                },
            },
        };
        self.count(key, verdict);
        verdict
    }

    /// One request's script call (one cell, taken only if it fits):
    /// `(taken, TAT ahead of now or wait)`, or `Err` when the store failed
    /// or did not answer within the timeout.
    async fn call(&self, store_key: &str, gcra: Gcra) -> Result<(bool, Duration), ()> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(store_key)
            .arg(gcra.interval.as_micros().max(1) as u64)
            .arg(gcra.tolerance.as_micros() as u64)
            .arg(1)
            .arg("0")
            .arg(0);
        lock(&self.counters).calls += 1;
        let reply: Result<(i64, i64), ()> = tokio::time::timeout(
            self.config.timeout,
            invocation.invoke_async(&mut connection),
        )
        .await
        .map_err(|_| ())
        .and_then(|r| r.map_err(|_| ()));
        reply.map(|(taken, us)| (taken == 1, Duration::from_micros(us.max(0) as u64)))
    }

    /// The local cache's sync: charges the store with each key's local
    /// admissions and moves the local TAT up to the store's, so that what
    /// the other replicas admitted slows this one down. A key that failed
    /// to sync keeps its count for the next time.
    ///
    /// Only live keys sync: a key with nothing to charge whose TAT has
    /// passed is as if never seen (the store's entry expires likewise), so
    /// it leaves the cache. Syncing every key ever seen made a long-tail key
    /// space cost more store calls than no cache (1.26 per request over
    /// 1,000 Zipf keys) and the cache grow without end.
    async fn sync(&self) {
        let Some(cache) = &self.cache else { return };
        let now = Instant::now();
        let due: Vec<Charge> = {
            let mut cache = lock(cache);
            cache.retain(|_, e| e.unsynced > 0 || e.tat.is_some_and(|tat| tat > now));
            cache
                .iter_mut()
                .map(|(k, e)| Charge {
                    store_key: k.clone(),
                    gcra: e.gcra,
                    cells: std::mem::take(&mut e.unsynced),
                })
                .collect()
        };
        if due.is_empty() {
            // Nothing to sync says nothing of the store: the mark stays.
            return;
        }
        // One script call per key, as `/metrics` and the quota report
        // count them, though they travel in one round trip.
        lock(&self.counters).calls += due.len() as u64;
        let mut shared = Vec::with_capacity(due.len());
        for batch in due.chunks(SYNC_BATCH) {
            shared.extend(self.charge(batch).await);
        }
        let mut failed = 0;
        {
            let mut cache = lock(cache);
            for (charge, shared) in due.iter().zip(&shared) {
                let Some(entry) = cache.get_mut(&charge.store_key) else {
                    continue;
                };
                match shared {
                    Some(shared) => {
                        entry.tat = Some(entry.tat.map_or(*shared, |t| t.max(*shared)));
                    }
                    None => {
                        failed += 1;
                        entry.unsynced += charge.cells;
                    }
                }
            }
        }
        // As when each key was its own call: one store error per key not synced.
        lock(&self.counters).total.store_errors += failed;
        self.store_down.store(failed > 0, Ordering::Relaxed);
    }

    /// Charges every key in `due` (at most [`SYNC_BATCH`]) in one pipeline
    /// within the store's timeout: per key, in order, the store's TAT as an instant here, or
    /// `None` when that key was not charged (the store failed, did not
    /// answer in time, or refused that call).
    ///
    /// A NOSCRIPT reply (a store restarted or flushed since the script was
    /// loaded) runs nothing: the script is loaded again and those keys are
    /// sent once more, in a second pipeline, within the same timeout. A key
    /// already charged stays charged even when that second round trip times
    /// out: charging it again at the next sync would count it twice.
    async fn charge(&self, due: &[Charge]) -> Vec<Option<Instant>> {
        let since = self.config.sync_interval.unwrap_or_default();
        let mut shared: Vec<Option<Instant>> = vec![None; due.len()];
        let mut connection = self.connection.clone();
        let round_trips = async {
            let mut send: Vec<usize> = (0..due.len()).collect();
            for attempt in 0..2 {
                // The TAT the store gives is ahead of its clock when the
                // call ran, after `sent`: counting from `sent` errs early,
                // by at most the round trip.
                let sent = Instant::now();
                let mut pipeline = redis::pipe();
                pipeline.ignore_errors();
                for &i in &send {
                    self.push_call(&mut pipeline, &due[i], since);
                }
                let replies: Vec<redis::RedisResult<(i64, i64)>> =
                    pipeline.query_async(&mut connection).await?;
                let mut unloaded = Vec::new();
                for (&i, reply) in send.iter().zip(replies) {
                    match reply {
                        Ok((_, ahead_us)) => {
                            shared[i] = Some(sent + Duration::from_micros(ahead_us.max(0) as u64));
                        }
                        Err(e) if is_noscript(&e) => unloaded.push(i),
                        Err(_) => {}
                    }
                }
                if unloaded.is_empty() || attempt == 1 {
                    break;
                }
                self.script.load_async(&mut connection).await?;
                send = unloaded;
            }
            Ok::<(), redis::RedisError>(())
        };
        // A failure or the timeout leaves the keys not yet answered as `None`.
        let _ = tokio::time::timeout(self.config.timeout, round_trips).await;
        shared
    }

    /// Adds `charge`'s script call (mode 1: taken whatever, backdated by
    /// `since`) to `pipeline`, by the script's hash.
    fn push_call(&self, pipeline: &mut redis::Pipeline, charge: &Charge, since: Duration) {
        pipeline
            .cmd("EVALSHA")
            .arg(self.script.get_hash())
            .arg(1)
            .arg(&charge.store_key)
            .arg(charge.gcra.interval.as_micros().max(1) as u64)
            .arg(charge.gcra.tolerance.as_micros() as u64)
            .arg(charge.cells)
            .arg("1")
            .arg(since.as_micros() as u64);
    }

    fn count(&self, key: &str, verdict: Verdict) {
        let mut counters = lock(&self.counters);
        let add = |c: &mut KeyCounts| match verdict {
            Verdict::Admit => c.admitted += 1,
            Verdict::Limited(_) => c.limited += 1,
            Verdict::FailOpen => {
                c.store_errors += 1;
                c.fail_open += 1;
            }
            Verdict::FailClosed => c.store_errors += 1,
        };
        add(&mut counters.total);
        let tracked = counters.keys.len();
        match counters.keys.get_mut(key) {
            Some(c) => add(c),
            None if tracked < MAX_KEY_SERIES => {
                let mut c = KeyCounts::default();
                add(&mut c);
                counters.keys.insert(key.to_string(), c);
            }
            None => counters.untracked_keys += 1,
        }
    }
}

/// The store has no script of that hash (restarted, or `SCRIPT FLUSH`).
fn is_noscript(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
