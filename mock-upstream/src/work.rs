//! What one request asks for: CPU, sleep, body size and status, from its query string or the
//! configured defaults (the default CPU drawn from the configured distribution).
//!
//! Takes a query string, the [`Config`] and the seeded RNG; hands on a [`Work`] or a message for
//! a 400 reply. It does not run the work.

use std::time::Duration;

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp, LogNormal};

use crate::Config;
use crate::config::{CpuDist, MAX_BYTES, MAX_WORK_MS, check_status};

/// The work one request does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Work {
    /// CPU time to burn.
    pub cpu: Duration,
    /// Wall time to sleep after the CPU work.
    pub sleep: Duration,
    /// Response body size.
    pub bytes: usize,
    /// Response status.
    pub status: u16,
}

impl Work {
    /// True when there is nothing to wait for, so the reply can be made at once.
    pub fn is_trivial(&self) -> bool {
        self.cpu.is_zero() && self.sleep.is_zero()
    }
}

/// Reads the work from `query`; parameters it lacks come from `config`. `rng` is asked for a
/// sample only when the CPU default follows a non-constant distribution. Unknown parameters are
/// ignored so the harness can add its own (e.g. a request id).
pub fn parse(query: Option<&str>, config: &Config, rng: &Mutex<StdRng>) -> Result<Work, String> {
    let mut cpu_ms = None;
    let mut sleep_ms = None;
    let mut bytes = None;
    let mut status = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "cpu_ms" => cpu_ms = Some(parse_ms(name, value)?),
            "sleep_ms" => sleep_ms = Some(parse_ms(name, value)?),
            "bytes" => match value.parse::<usize>() {
                Ok(n) if n <= MAX_BYTES => bytes = Some(n),
                _ => return Err(format!("bytes={value}: expected 0 to {MAX_BYTES}")),
            },
            "status" => match value.parse::<u16>().map(check_status) {
                Ok(Ok(code)) => status = Some(code),
                _ => {
                    return Err(format!(
                        "status={value}: expected an HTTP status from 200 to 599"
                    ));
                }
            },
            _ => {}
        }
    }
    let cpu_ms = match cpu_ms {
        Some(ms) => ms,
        None => sample_cpu_ms(config, rng),
    };
    Ok(Work {
        cpu: Duration::from_secs_f64(cpu_ms / 1000.0),
        sleep: Duration::from_secs_f64(sleep_ms.unwrap_or(config.sleep_ms) / 1000.0),
        bytes: bytes.unwrap_or(config.bytes),
        status: status.unwrap_or(config.status),
    })
}

/// A slowdown set while the server runs (`POST /slow?cpu_factor=F&sleep_ms=D`, a harness's
/// `[[faults]] action = "slow"`): every request's CPU multiplied by `F`, `D` ms of sleep added.
/// Two relaxed atomics read once per request: no lock on the request path.
#[derive(Debug, Default)]
pub struct Slowdown {
    /// The CPU factor in thousandths (0, before any `set`, is read as 1000: no slowdown).
    cpu_factor_milli: std::sync::atomic::AtomicU64,
    /// Sleep added, microseconds.
    sleep_us: std::sync::atomic::AtomicU64,
}

/// Largest CPU factor `POST /slow` takes.
pub const MAX_CPU_FACTOR: f64 = 1000.0;

impl Slowdown {
    /// Sets it from `POST /slow`'s query (`cpu_factor`, `sleep_ms`; an absent one is reset:
    /// `POST /slow` alone ends the slowdown); a message for a 400 reply on a bad value.
    pub fn set(&self, query: Option<&str>) -> Result<(), String> {
        let mut factor = 1.0;
        let mut sleep_ms = 0.0;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "cpu_factor" => match value.parse::<f64>() {
                    Ok(f) if f > 0.0 && f <= MAX_CPU_FACTOR => factor = f,
                    _ => {
                        return Err(format!(
                            "cpu_factor={value}: expected a factor more than 0, at most {MAX_CPU_FACTOR}"
                        ));
                    }
                },
                "sleep_ms" => sleep_ms = parse_ms(name, value)?,
                other => return Err(format!("{other}: POST /slow takes cpu_factor and sleep_ms")),
            }
        }
        use std::sync::atomic::Ordering::Relaxed;
        self.cpu_factor_milli
            .store(((factor * 1000.0).round() as u64).max(1), Relaxed);
        self.sleep_us
            .store((sleep_ms * 1000.0).round() as u64, Relaxed);
        Ok(())
    }

    /// `work` as the slowdown has it now.
    pub fn apply(&self, mut work: Work) -> Work {
        use std::sync::atomic::Ordering::Relaxed;
        let milli = self.cpu_factor_milli.load(Relaxed);
        if milli != 0 && milli != 1000 {
            work.cpu = work.cpu.mul_f64(milli as f64 / 1000.0);
        }
        work.sleep += Duration::from_micros(self.sleep_us.load(Relaxed));
        work
    }
}

fn parse_ms(name: &str, value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(ms) if ms.is_finite() && (0.0..=MAX_WORK_MS).contains(&ms) => Ok(ms),
        _ => Err(format!(
            "{name}={value}: expected milliseconds from 0 to {MAX_WORK_MS}"
        )),
    }
}

/// The default CPU milliseconds: the mean itself, or a draw whose mean is the configured one.
fn sample_cpu_ms(config: &Config, rng: &Mutex<StdRng>) -> f64 {
    let mean_ms = config.cpu_ms;
    if mean_ms <= 0.0 {
        return 0.0;
    }
    if config.cpu_dist == CpuDist::Constant {
        return mean_ms;
    }
    // Locked only here, for non-constant distributions: the common paths never touch it.
    let mut rng = rng.lock().unwrap_or_else(|e| e.into_inner());
    let drawn = match config.cpu_dist {
        CpuDist::Constant => mean_ms,
        // Exp(lambda) has mean 1/lambda.
        CpuDist::Exponential => match Exp::new(1.0 / mean_ms) {
            Ok(dist) => dist.sample(&mut *rng),
            Err(_) => mean_ms,
        },
        // A log-normal's mean is exp(mu + sigma^2 / 2); solve for mu so the mean is `mean_ms`.
        CpuDist::Lognormal { sigma } => {
            match LogNormal::new(mean_ms.ln() - sigma * sigma / 2.0, sigma) {
                Ok(dist) => dist.sample(&mut *rng),
                Err(_) => mean_ms,
            }
        }
    };
    if drawn.is_finite() {
        drawn.clamp(0.0, MAX_WORK_MS)
    } else {
        mean_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn with(query: Option<&str>, config: &Config, rng: &Mutex<StdRng>) -> Result<Work, String> {
        parse(query, config, rng)
    }

    #[test]
    fn query_table() {
        let config = Config::default();
        let rng = Mutex::new(StdRng::seed_from_u64(1));
        let ms = Duration::from_millis;
        // (query, Some((cpu, sleep, bytes, status)) or None for a 400)
        type Expected = Option<(Duration, Duration, usize, u16)>;
        let cases: &[(Option<&str>, Expected)] = &[
            (None, Some((ms(0), ms(0), 2, 200))),
            (Some("cpu_ms=50"), Some((ms(50), ms(0), 2, 200))),
            (
                Some("cpu_ms=1.5&sleep_ms=3&bytes=10&status=503&x=y"),
                Some((Duration::from_micros(1500), ms(3), 10, 503)),
            ),
            (Some("cpu_ms=-1"), None),
            (Some("cpu_ms=abc"), None),
            (Some("cpu_ms=inf"), None),
            (Some("bytes=99999999999"), None),
            (Some("status=99"), None),
            (Some("status=600"), None),
        ];
        for (query, want) in cases {
            let got = with(*query, &config, &rng)
                .ok()
                .map(|w| (w.cpu, w.sleep, w.bytes, w.status));
            assert_eq!(got, *want, "{query:?}");
        }
    }

    #[test]
    fn distributions_keep_their_mean_and_are_seeded() {
        for dist in [CpuDist::Exponential, CpuDist::Lognormal { sigma: 0.5 }] {
            let config = Config {
                cpu_ms: 10.0,
                cpu_dist: dist,
                ..Config::default()
            };
            let draw_all = |seed| {
                let rng = Mutex::new(StdRng::seed_from_u64(seed));
                (0..20_000)
                    .map(|_| with(None, &config, &rng).unwrap().cpu.as_secs_f64() * 1000.0)
                    .collect::<Vec<_>>()
            };
            let a = draw_all(7);
            assert_eq!(a, draw_all(7), "{dist:?} not repeatable");
            let mean = a.iter().sum::<f64>() / a.len() as f64;
            assert!((mean - 10.0).abs() < 0.5, "{dist:?} mean {mean}");
        }
    }

    #[test]
    fn a_slowdown_multiplies_cpu_adds_sleep_and_ends_with_an_empty_query() {
        let ms = Duration::from_millis;
        let slow = Slowdown::default();
        let work = Work {
            cpu: ms(10),
            sleep: ms(1),
            bytes: 2,
            status: 200,
        };
        assert_eq!(slow.apply(work), work, "none before the first set");
        slow.set(Some("cpu_factor=2.5&sleep_ms=20")).unwrap();
        let slowed = slow.apply(work);
        assert_eq!((slowed.cpu, slowed.sleep), (ms(25), ms(21)));
        slow.set(None).unwrap();
        assert_eq!(slow.apply(work), work);
        for bad in [
            "cpu_factor=0",
            "cpu_factor=-1",
            "cpu_factor=x",
            "sleep_ms=-1",
            "cpu=2",
        ] {
            assert!(slow.set(Some(bad)).is_err(), "{bad}");
        }
    }
}
