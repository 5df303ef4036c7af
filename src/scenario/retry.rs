//! The client's retry policy (`[client] retry = { ... }`, and per key
//! `[[keys]] retry`): which outcomes are tried again, how many times, after
//! what backoff, under what budget, and whether `Retry-After` is honoured.
//!
//! Takes the raw table from the file and hands on a validated
//! [`RetrySpec`], or the first error located at the value at fault. How a
//! retry is timed and when one is allowed is the driver's (`driver::retry`);
//! nothing here touches a clock.

use std::time::Duration;

use contend_units::de::Int;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use toml::Spanned;

use super::build::Ctx;
use super::check::quoted;
use super::raw::HumanDuration;
use crate::error::Result;
use crate::outcome::{Class, Outcome};

/// Most retries one arrival may make.
pub const MAX_RETRIES: u32 = 100;

/// What a failed attempt must have been for it to be tried again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryOn {
    /// Exact status codes (`"504"`, `"429"`).
    pub statuses: Vec<u16>,
    /// `"5xx"`: any 500-599 status.
    pub any_5xx: bool,
    /// `"timeout"`: the client's own deadline passed.
    pub timeout: bool,
    /// `"connect_error"`: no connection could be made (or its TLS failed).
    pub connect_error: bool,
    /// `"io_error"`: the connection failed mid-exchange.
    pub io_error: bool,
}

impl RetryOn {
    /// True when an attempt that ended in `outcome` is to be tried again.
    pub fn matches(&self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Response(s) => {
                (self.any_5xx && (500..600).contains(&s)) || self.statuses.contains(&s)
            }
            Outcome::ClientTimeout => self.timeout,
            Outcome::ConnectError | Outcome::TlsError(_) => self.connect_error,
            Outcome::IoError => self.io_error,
            // At the connection cap: the client never sent it and has no
            // answer to react to.
            Outcome::NotSent => false,
        }
    }

    /// The classes of outcomes this policy can retry (for the report's
    /// columns), in [`Class::ALL`] order.
    pub fn classes(&self) -> Vec<Class> {
        Class::ALL
            .into_iter()
            .filter(|c| match c {
                Class::Success => false,
                Class::TooMany => self.statuses.contains(&429),
                Class::Unavailable => self.any_5xx || self.statuses.contains(&503),
                Class::GatewayTimeout => self.any_5xx || self.statuses.contains(&504),
                Class::OtherStatus => !self.statuses.is_empty() || self.any_5xx,
                Class::ClientTimeout => self.timeout,
                Class::ConnectError | Class::TlsError => self.connect_error,
                Class::IoError => self.io_error,
                Class::NotSent => false,
            })
            .collect()
    }
}

/// How the wait before a retry grows with the retry's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// `"exponential"`: `base x 2^(n-1)` before retry n, up to `cap`.
    Exponential,
    /// `"constant"`: `base` before every retry.
    Constant,
}

/// How much of the backoff is drawn at random, so that callers that failed
/// together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// `"full"`: uniform over `[0, backoff]`.
    Full,
    /// `"equal"`: half the backoff, plus uniform over the other half.
    Equal,
    /// `"none"`: the backoff exactly.
    None,
}

/// A validated retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySpec {
    /// What is retried.
    pub on: RetryOn,
    /// Retries per arrival at most (0: none; the policy is then off).
    pub max: u32,
    /// How the wait grows.
    pub backoff: Backoff,
    /// The first wait.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// How much of the wait is random.
    pub jitter: Jitter,
    /// `budget = "10%"`: retries at most this share of arrivals (a token
    /// bucket filled by each arrival, emptied by each retry); `None`: no
    /// budget.
    pub budget: Option<f64>,
    /// `retry_after = true`: a response's `Retry-After` (seconds or an
    /// HTTP-date) sets the wait instead of the backoff.
    pub retry_after: bool,
}

impl RetrySpec {
    /// True when the policy may retry anything at all.
    pub fn is_on(&self) -> bool {
        self.max > 0
    }
}

/// `retry = { on, max, backoff, base, cap, jitter, budget, retry_after }`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    on: Option<Spanned<Vec<Spanned<String>>>>,
    max: Option<Spanned<Int>>,
    backoff: Option<Spanned<String>>,
    base: Option<Spanned<HumanDuration>>,
    cap: Option<Spanned<HumanDuration>>,
    jitter: Option<Spanned<String>>,
    budget: Option<Spanned<Share>>,
    retry_after: Option<bool>,
}

/// A share written `"10%"` or `0.1`.
pub(super) struct Share(f64);

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "a share like \"10%\" or 0.1";
        impl Visitor<'_> for V {
            type Value = Share;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Share, E> {
                s.strip_suffix('%')
                    .and_then(|n| n.trim().parse::<f64>().ok())
                    .map(|p| Share(p / 100.0))
                    .ok_or_else(|| E::custom(format!("\"{s}\" is not {EXPECTED}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Share, E> {
                Ok(Share(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Share, E> {
                Ok(Share(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}

/// The defaults: 504, 503 and timeouts, 3 times, exponential from 100 ms
/// to 5 s with full jitter, no budget, `Retry-After` honoured.
impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec {
            on: RetryOn {
                statuses: vec![503, 504],
                timeout: true,
                ..RetryOn::default()
            },
            max: 3,
            backoff: Backoff::Exponential,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
            jitter: Jitter::Full,
            budget: None,
            retry_after: true,
        }
    }
}

/// Longest wait a policy may ask for.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Builds a policy; `what` names the table in messages (`[client] retry`,
/// `key "ui" retry`).
pub(super) fn build_retry(ctx: &Ctx, what: &str, raw: &RawRetry) -> Result<RetrySpec> {
    let mut spec = RetrySpec::default();
    if let Some(on) = &raw.on {
        spec.on = RetryOn::default();
        if on.get_ref().is_empty() {
            return Err(ctx.at(
                on.span(),
                format!("{what}.on is empty: list what to retry, like [\"504\", \"503\", \"timeout\"], or set max = 0 for no retries"),
            ));
        }
        for item in on.get_ref() {
            ctx.check(item, |s| add_on(&mut spec.on, what, s))?;
        }
    }
    if let Some(max) = &raw.max {
        ctx.check(max, |n| {
            if (0..=i64::from(MAX_RETRIES)).contains(&n.0) {
                Ok(())
            } else {
                Err(format!(
                    "{what}.max must be between 0 and {MAX_RETRIES} (retries after the first attempt), got {}",
                    n.0
                ))
            }
        })?;
        spec.max = max.get_ref().0 as u32;
    }
    if let Some(b) = &raw.backoff {
        spec.backoff = match b.get_ref().as_str() {
            "exponential" => Backoff::Exponential,
            "constant" => Backoff::Constant,
            other => {
                return Err(ctx.at(
                    b.span(),
                    format!(
                        "{what}.backoff {} is not known: give \"exponential\" or \"constant\"",
                        quoted(other)
                    ),
                ));
            }
        };
    }
    if let Some(j) = &raw.jitter {
        spec.jitter = match j.get_ref().as_str() {
            "full" => Jitter::Full,
            "equal" => Jitter::Equal,
            "none" => Jitter::None,
            other => {
                return Err(ctx.at(
                    j.span(),
                    format!(
                        "{what}.jitter {} is not known: give \"full\", \"equal\" or \"none\"",
                        quoted(other)
                    ),
                ));
            }
        };
    }
    let wait = |d: &Spanned<HumanDuration>, name: &str| {
        ctx.check(d, |d| {
            if d.0 > MAX_WAIT {
                Err(format!(
                    "{what}.{name} is longer than an hour: give a wait like \"100ms\""
                ))
            } else {
                Ok(())
            }
        })
        .map(|()| d.get_ref().0)
    };
    if let Some(base) = &raw.base {
        spec.base = wait(base, "base")?;
    }
    if let Some(cap) = &raw.cap {
        spec.cap = wait(cap, "cap")?;
        if spec.cap < spec.base {
            return Err(ctx.at(
                cap.span(),
                format!(
                    "{what}.cap ({}) is below base ({}): the cap bounds the growing wait, so give cap >= base",
                    contend_units::format_duration(spec.cap),
                    contend_units::format_duration(spec.base)
                ),
            ));
        }
    } else if spec.cap < spec.base {
        spec.cap = spec.base;
    }
    if let Some(budget) = &raw.budget {
        ctx.check(budget, |Share(s)| {
            if s.is_finite() && *s > 0.0 && *s <= 1.0 {
                Ok(())
            } else {
                Err(format!(
                    "{what}.budget must be a share above 0% and at most 100% (retries per arrival), like \"10%\", got {s}"
                ))
            }
        })?;
        spec.budget = Some(budget.get_ref().0);
    }
    if let Some(r) = raw.retry_after {
        spec.retry_after = r;
    }
    Ok(spec)
}

/// Adds one `on` entry, or says what the valid ones are.
fn add_on(on: &mut RetryOn, what: &str, item: &str) -> std::result::Result<(), String> {
    match item {
        "5xx" => on.any_5xx = true,
        "timeout" | "client_timeout" => on.timeout = true,
        "connect_error" => on.connect_error = true,
        "io_error" => on.io_error = true,
        code => match code.parse::<u16>() {
            Ok(s) if (400..600).contains(&s) => {
                if !on.statuses.contains(&s) {
                    on.statuses.push(s);
                }
            }
            _ => {
                return Err(format!(
                    "{what}.on has {}: give status codes 400-599 as strings (\"504\"), \"5xx\", \"timeout\", \
                     \"connect_error\" or \"io_error\"",
                    quoted(code)
                ));
            }
        },
    }
    Ok(())
}
