//! Thresholds: `p99 < 250ms`, `error_rate < 1%`, `rate(503) < 5%`,
//! `keys.ui.p99 < 50ms`, `find_limit.limit >= 5`.
//!
//! Takes expression text (from `[thresholds] checks` or `--threshold`) and
//! parses it into a [`Threshold`]; checks it, before the run, against the
//! scenario's keys and the paths a summary of its experiment can hold
//! (given by the caller); evaluates it over a run's summary as JSON (so a
//! dotted path reaches any value `summary.json` holds, experiment results
//! included) and hands on a [`ThresholdResult`]. Does not print and does
//! not decide the exit code.
//!
//! The grammar, small enough to parse by hand:
//!
//! ```text
//! threshold := metric op value
//! metric    := [ "keys." KEY "." ] named | path
//! named     := p50 | p90 | p99 | p99.9 | p99.99 | max | mean      (latency_us, a duration)
//!            | error_rate | rate "(" STATUS | Nxx | CLASS ")"       (share of arrivals)
//!            | goodput_per_s                                        (2xx per second)
//! path      := NAME ("." NAME)*    (any number in summary.json)
//! op        := "<" | "<=" | ">" | ">=" | "==" | "!="
//! value     := NUMBER [ "%" | duration unit | "k" ]
//! ```

use std::fmt;

use contend_units::{fmt_us, parse_duration, parse_rate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::outcome::Class;

/// A malformed expression: what is wrong and where (1-based column, in
/// characters, within the expression).
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// Column of the offending token, from 1.
    pub col: usize,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "col {}: {}", self.col, self.message)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
        }
    }
}

/// Whose numbers a named metric reads: the whole run or one key.
#[derive(Debug, Clone, PartialEq)]
enum Scope {
    Run,
    Key(String),
}

/// Which arrivals `rate(...)` counts.
#[derive(Debug, Clone, PartialEq)]
enum Selector {
    /// One exact status code, from `outcomes.responses`.
    Status(u16),
    /// A status class by its first digit (`5xx`), from `outcomes.responses`.
    StatusClass(u8),
    /// An outcome class by name (`client_timeout`, `other_status`, ...).
    Class(String),
}

/// What the left-hand side reads.
#[derive(Debug, Clone, PartialEq)]
enum Metric {
    /// A latency percentile: `latency_us.<field>` of the scope, in us.
    Latency { scope: Scope, field: &'static str },
    /// Share of the scope's arrivals that were not 2xx.
    ErrorRate { scope: Scope },
    /// Share of the scope's arrivals matching the selector.
    Share { scope: Scope, of: Selector },
    /// 2xx responses of the scope per second of the run.
    Goodput { scope: Scope },
    /// Any number in the summary, by dotted path from its root.
    Path { segments: Vec<String> },
}

/// The unit a metric's value is compared in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    /// A duration; the value is in units of `us_per_unit` microseconds
    /// (1 for `_us`, 1000 for `_ms`, 1e6 for `_s`).
    Duration { us_per_unit: f64 },
    /// A fraction of 1, shown as a percentage.
    Share,
    /// A plain number.
    Number,
}

/// A parsed threshold, ready to evaluate over summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as written (trimmed), the threshold's name everywhere.
    pub expr: String,
    metric: Metric,
    op: Op,
    /// The right-hand side in the metric's own unit.
    limit: f64,
    unit: Unit,
    /// Column of the metric's first character in the expression as
    /// given, from 1 (where [`Threshold::check`] points).
    metric_col: usize,
}

/// The verdict of one threshold over one run: `thresholds[]` in summary.json.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    /// The expression as written.
    pub expr: String,
    /// The measured value in the summary's own unit (us for latency, a
    /// fraction for rates, per second for goodput); null when absent.
    pub value: Option<f64>,
    /// The value for people (`1.25ms`, `0.42%`), or why there is none.
    pub shown: String,
    /// True when the threshold holds.
    pub pass: bool,
}

const METRIC_HINT: &str = "expected a metric like p99, error_rate, rate(503), goodput_per_s, \
     keys.NAME.p99 or a dotted path into summary.json";
const OP_HINT: &str = "expected a comparison: <, <=, >, >=, == or !=";
const PERCENTILES: [(&str, &str); 7] = [
    ("p50", "p50"),
    ("p90", "p90"),
    ("p99", "p99"),
    ("p99.9", "p999"),
    ("p99.99", "p9999"),
    ("max", "max"),
    ("mean", "mean"),
];

/// A cursor over the expression's characters.
struct Cursor<'a> {
    chars: Vec<(usize, char)>,
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).map(|&(_, c)| c)
    }
    fn col(&self) -> usize {
        self.at + 1
    }
    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }
    /// The characters from `from` (a char index) up to the cursor.
    fn since(&self, from: usize) -> &str {
        let start = self.chars.get(from).map_or(self.text.len(), |&(b, _)| b);
        let end = self.chars.get(self.at).map_or(self.text.len(), |&(b, _)| b);
        &self.text[start..end]
    }
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> usize {
        let from = self.at;
        while self.peek().is_some_and(&keep) {
            self.at += 1;
        }
        from
    }
    fn error(col: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            col,
            message: message.into(),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

impl Threshold {
    /// Parses one expression. Columns in errors count from 1 at the first
    /// character of `text` as given (leading spaces included).
    pub fn parse(text: &str) -> Result<Threshold, ParseError> {
        let mut c = Cursor {
            chars: text.char_indices().collect(),
            text,
            at: 0,
        };
        c.skip_spaces();
        if c.peek().is_none() {
            return Err(Cursor::error(
                c.col(),
                format!("empty threshold: {METRIC_HINT}"),
            ));
        }
        let path_col = c.col();
        let from = c.take_while(is_name_char);
        let path = c.since(from).to_string();
        if path.is_empty() {
            return Err(Cursor::error(path_col, METRIC_HINT));
        }
        let mut argument = None;
        if c.peek() == Some('(') {
            c.at += 1;
            let arg_col = c.col();
            let from = c.take_while(|ch| ch != ')');
            let arg = c.since(from).trim().to_string();
            if c.peek() != Some(')') {
                return Err(Cursor::error(c.col(), "expected `)` to close `rate(`"));
            }
            c.at += 1;
            argument = Some((arg, arg_col));
        }
        let metric = resolve(&path, path_col, argument)?;
        c.skip_spaces();
        let op_col = c.col();
        let op = match (c.peek(), c.chars.get(c.at + 1).map(|&(_, ch)| ch)) {
            (Some('<'), Some('=')) => Op::Le,
            (Some('>'), Some('=')) => Op::Ge,
            (Some('='), Some('=')) => Op::Eq,
            (Some('!'), Some('=')) => Op::Ne,
            (Some('<'), _) => Op::Lt,
            (Some('>'), _) => Op::Gt,
            (None, _) => return Err(Cursor::error(op_col, format!("{OP_HINT} after `{path}`"))),
            (Some(_), _) => return Err(Cursor::error(op_col, OP_HINT)),
        };
        c.at += if matches!(op, Op::Lt | Op::Gt) { 1 } else { 2 };
        c.skip_spaces();
        let value_col = c.col();
        let from = c.take_while(|_| true);
        let value = c.since(from).trim_end();
        let (limit, unit) = parse_value(&metric, value, value_col)?;
        Ok(Threshold {
            expr: text.trim().to_string(),
            metric,
            op,
            limit,
            unit,
            metric_col: path_col,
        })
    }

    /// Checks, before anything runs, that the threshold reads a value a
    /// summary of this run can hold: a key it names is one of `keys` (the
    /// scenario's), and a dotted path is one of `paths`: the dotted paths
    /// of the numbers (and booleans) summary.json holds for this
    /// experiment, where `*` stands for any one name, `#` for any one index
    /// and a last `**` for anything below. The error points at the name
    /// that is not there and lists what would be valid, so a typo is bad
    /// input, not a failed threshold.
    pub fn check(&self, keys: &[&str], paths: &[String]) -> Result<(), ParseError> {
        let key_col = self.metric_col + "keys.".len();
        let scope = match &self.metric {
            Metric::Latency { scope, .. }
            | Metric::ErrorRate { scope }
            | Metric::Share { scope, .. }
            | Metric::Goodput { scope } => scope,
            Metric::Path { segments } => {
                if let [first, key, _, ..] = segments.as_slice() {
                    if first == "keys" {
                        check_key(key, key_col, keys)?;
                    }
                }
                return check_path(segments, self.metric_col, keys, paths);
            }
        };
        match scope {
            Scope::Run => Ok(()),
            Scope::Key(key) => check_key(key, key_col, keys),
        }
    }

    /// Evaluates the threshold over a summary (summary.json as JSON). A
    /// value that is absent fails with the reason in `shown`; it never panics.
    pub fn evaluate(&self, summary: &Value) -> ThresholdResult {
        let (value, shown) = match self.measure(summary) {
            Ok(v) => (Some(v), show(v, self.unit)),
            Err(why) => (None, why),
        };
        ThresholdResult {
            expr: self.expr.clone(),
            value,
            shown,
            pass: value.is_some_and(|v| self.op.holds(v, self.limit)),
        }
    }

    fn measure(&self, summary: &Value) -> Result<f64, String> {
        let scope_of = |scope: &Scope| -> Result<&Value, String> {
            match scope {
                Scope::Run => Ok(summary),
                Scope::Key(name) => {
                    summary
                        .get("keys")
                        .and_then(|k| k.get(name))
                        .ok_or_else(|| {
                            let names: Vec<&str> = summary
                                .get("keys")
                                .and_then(Value::as_object)
                                .map(|m| m.keys().map(String::as_str).collect())
                                .unwrap_or_default();
                            if names.is_empty() {
                                format!("no key `{name}` in the summary (the run had no [[keys]])")
                            } else {
                                format!(
                                    "no key `{name}` in the summary (keys: {})",
                                    names.join(", ")
                                )
                            }
                        })
                }
            }
        };
        let class = |outcomes: &Value, name: &str| {
            outcomes
                .get("classes")
                .and_then(|m| m.get(name))
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
        };
        match &self.metric {
            Metric::Latency { scope, field } => {
                let latency = scope_of(scope)?
                    .get("latency_us")
                    .ok_or("no latency in the summary")?;
                if latency.get("count").and_then(Value::as_f64) == Some(0.0) {
                    return Err("no latency recorded (nothing was sent)".to_string());
                }
                latency
                    .get(*field)
                    .and_then(Value::as_f64)
                    .ok_or_else(|| "no such value in the summary".to_string())
            }
            Metric::ErrorRate { scope } => {
                let (total, outcomes) = arrivals(scope_of(scope)?)?;
                Ok((total - class(outcomes, "2xx")) / total)
            }
            Metric::Share { scope, of } => {
                let (total, outcomes) = arrivals(scope_of(scope)?)?;
                let responses = outcomes.get("responses").and_then(Value::as_object);
                let count = match of {
                    Selector::Status(code) => responses
                        .and_then(|m| m.get(&code.to_string()))
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0),
                    Selector::StatusClass(digit) => responses
                        .map(|m| {
                            m.iter()
                                .filter(|(code, _)| {
                                    code.as_bytes().first() == Some(&(b'0' + digit))
                                })
                                .filter_map(|(_, n)| n.as_f64())
                                .sum()
                        })
                        .unwrap_or(0.0),
                    Selector::Class(name) => class(outcomes, name),
                };
                Ok(count / total)
            }
            Metric::Goodput { scope } => {
                let outcomes = scope_of(scope)?
                    .get("outcomes")
                    .ok_or("no outcomes in the summary")?;
                let duration_s = summary
                    .get("duration_s")
                    .and_then(Value::as_f64)
                    .filter(|d| *d > 0.0)
                    .ok_or("no duration in the summary")?;
                Ok(class(outcomes, "2xx") / duration_s)
            }
            Metric::Path { segments } => {
                let mut at = summary;
                for segment in segments {
                    at = match at {
                        Value::Object(map) => map.get(segment),
                        Value::Array(items) => {
                            segment.parse::<usize>().ok().and_then(|i| items.get(i))
                        }
                        _ => None,
                    }
                    .ok_or_else(|| {
                        format!("no such value in the summary (`{segment}` is absent)")
                    })?;
                }
                match at {
                    Value::Number(n) => n.as_f64().ok_or_else(|| "not a finite number".to_string()),
                    Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
                    Value::Null => Err("no value in the summary (null)".to_string()),
                    _ => Err("not a number in the summary".to_string()),
                }
            }
        }
    }
}

/// In a pattern of [`Threshold::check`]'s `paths`: any one name (a map's member).
const ANY_NAME: &str = "*";
/// Any one index (an array's element).
const ANY_INDEX: &str = "#";
/// Anything below (a part whose layout the summary does not fix).
const ANYTHING: &str = "**";

/// A key a threshold names is one of the scenario's.
fn check_key(key: &str, col: usize, keys: &[&str]) -> Result<(), ParseError> {
    if keys.contains(&key) {
        return Ok(());
    }
    let message = if keys.is_empty() {
        format!(
            "no key `{key}`: this scenario has no [[keys]], so summary.json has no per-key values \
             (drop `keys.{key}.` to read the whole run)"
        )
    } else {
        format!(
            "no key `{key}` in this scenario: its keys are {}",
            keys.join(", ")
        )
    };
    Err(ParseError { col, message })
}

/// A dotted path matches one of `paths` and ends at a number.
fn check_path(
    segments: &[String],
    col: usize,
    keys: &[&str],
    paths: &[String],
) -> Result<(), ParseError> {
    let patterns: Vec<Vec<&str>> = paths.iter().map(|p| p.split('.').collect()).collect();
    let mut live: Vec<&Vec<&str>> = patterns.iter().collect();
    let mut segment_col = col;
    for (i, segment) in segments.iter().enumerate() {
        if live.iter().any(|p| p.get(i) == Some(&ANYTHING)) {
            return Ok(());
        }
        let next: Vec<&Vec<&str>> = live
            .iter()
            .copied()
            .filter(|p| match p.get(i) {
                Some(&ANY_NAME) => true,
                Some(&ANY_INDEX) => segment.bytes().all(|b| b.is_ascii_digit()),
                Some(name) => name == segment,
                None => false,
            })
            .collect();
        if next.is_empty() {
            let message = if i == 0 {
                format!(
                    "no `{segment}` in summary.json for this experiment: use a named metric \
                     ({NAMED_METRICS}), {} or a number in summary.json ({})",
                    keys_hint(keys),
                    members(&live, 0)
                )
            } else {
                let parent = segments[..i].join(".");
                if live.iter().all(|p| p.len() == i) {
                    format!("`{parent}` is a number: nothing lies under it")
                } else {
                    format!(
                        "no `{segment}` under `{parent}` in summary.json for this experiment: \
                         it holds {}",
                        members(&live, i)
                    )
                }
            };
            return Err(ParseError {
                col: segment_col,
                message,
            });
        }
        live = next;
        segment_col += segment.chars().count() + 1;
    }
    if live.iter().any(|p| p.len() == segments.len()) {
        return Ok(());
    }
    Err(ParseError {
        col,
        message: format!(
            "`{}` is not a number in summary.json: name one of its members ({})",
            segments.join("."),
            members(&live, segments.len())
        ),
    })
}

/// The named metrics, for messages.
const NAMED_METRICS: &str = "p50, p90, p99, p99.9, p99.99, max, mean, error_rate, \
     rate(STATUS|Nxx|CLASS), goodput_per_s";

/// How to name a key's metric, for messages.
fn keys_hint(keys: &[&str]) -> String {
    if keys.is_empty() {
        "no keys.NAME.METRIC (this scenario has no [[keys]])".to_string()
    } else {
        format!("keys.NAME.METRIC (NAME: {})", keys.join(", "))
    }
}

/// The distinct names at depth `i` of `patterns`, in their order, for
/// messages.
fn members(patterns: &[&Vec<&str>], i: usize) -> String {
    let mut names: Vec<&str> = Vec::new();
    for name in patterns.iter().filter_map(|p| p.get(i)) {
        let name = match *name {
            ANY_NAME | ANYTHING => "any name",
            ANY_INDEX => "an index: 0, 1, ...",
            name => name,
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(", ")
}

/// The arrivals of a scope (the sum of its outcome classes) and its outcomes.
fn arrivals(scope: &Value) -> Result<(f64, &Value), String> {
    let outcomes = scope.get("outcomes").ok_or("no outcomes in the summary")?;
    let total: f64 = outcomes
        .get("classes")
        .and_then(Value::as_object)
        .map(|m| m.values().filter_map(Value::as_f64).sum())
        .unwrap_or(0.0);
    if total == 0.0 {
        return Err("no arrivals to take a share of".to_string());
    }
    Ok((total, outcomes))
}

/// Turns the left-hand side's text into a metric.
fn resolve(
    path: &str,
    col: usize,
    argument: Option<(String, usize)>,
) -> Result<Metric, ParseError> {
    let segments: Vec<&str> = path.split('.').collect();
    if let Some(i) = segments.iter().position(|s| s.is_empty()) {
        // Column of the empty segment: the characters before it plus the dots.
        let offset: usize = segments[..i].iter().map(|s| s.chars().count() + 1).sum();
        return Err(ParseError {
            col: col + offset,
            message: format!("empty name in `{path}`: {METRIC_HINT}"),
        });
    }
    let (scope, rest, rest_col) = match segments.as_slice() {
        ["keys", key, rest @ ..] if !rest.is_empty() => (
            Scope::Key(key.to_string()),
            rest.join("."),
            col + 6 + key.chars().count(),
        ),
        _ => (Scope::Run, path.to_string(), col),
    };
    let named = match (rest.as_str(), &argument) {
        ("rate", Some((arg, arg_col))) => Some(Metric::Share {
            scope: scope.clone(),
            of: selector(arg, *arg_col)?,
        }),
        (_, Some(_)) => {
            return Err(ParseError {
                col: rest_col,
                message: format!("only `rate(...)` takes an argument, not `{rest}(...)`"),
            });
        }
        ("error_rate", None) => Some(Metric::ErrorRate {
            scope: scope.clone(),
        }),
        ("goodput_per_s", None) => Some(Metric::Goodput {
            scope: scope.clone(),
        }),
        (name, None) => PERCENTILES
            .iter()
            .find(|(written, _)| *written == name)
            .map(|(_, field)| Metric::Latency {
                scope: scope.clone(),
                field,
            }),
    };
    if let Some(metric) = named {
        return Ok(metric);
    }
    if rest == "rate" {
        return Err(ParseError {
            col: rest_col + 4,
            message: "expected `(`: rate(503), rate(5xx) or rate(client_timeout)".into(),
        });
    }
    let looks_like_percentile = rest.len() > 1
        && rest.starts_with('p')
        && rest[1..].chars().all(|ch| ch.is_ascii_digit() || ch == '.');
    if looks_like_percentile {
        return Err(ParseError {
            col: rest_col,
            message: format!(
                "no `{rest}` in the summary: use p50, p90, p99, p99.9, p99.99, max or mean"
            ),
        });
    }
    Ok(Metric::Path {
        segments: segments.iter().map(|s| s.to_string()).collect(),
    })
}

/// `rate(...)`'s argument.
fn selector(arg: &str, col: usize) -> Result<Selector, ParseError> {
    let bytes = arg.as_bytes();
    if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_digit) {
        let code: u16 = arg.parse().unwrap_or(0);
        if (100..=599).contains(&code) {
            return Ok(Selector::Status(code));
        }
    }
    if bytes.len() == 3 && (b'1'..=b'5').contains(&bytes[0]) && arg[1..].eq_ignore_ascii_case("xx")
    {
        return Ok(Selector::StatusClass(bytes[0] - b'0'));
    }
    if let Some(class) = Class::ALL.iter().find(|c| c.name() == arg) {
        return Ok(Selector::Class(class.name().to_string()));
    }
    let names: Vec<&str> = Class::ALL
        .iter()
        .map(|c| c.name())
        .filter(|n| !n.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    Err(ParseError {
        col,
        message: format!(
            "expected a status (503), a status class (5xx) or an outcome ({}) in rate(...), found `{arg}`",
            names.join(", ")
        ),
    })
}

/// The right-hand side, in the metric's unit.
fn parse_value(metric: &Metric, text: &str, col: usize) -> Result<(f64, Unit), ParseError> {
    let err = |message: String| Err(ParseError { col, message });
    if text.is_empty() {
        return err("expected a value after the comparison, e.g. 250ms, 1% or 900".to_string());
    }
    let percent = text.strip_suffix('%').map(str::trim_end);
    let as_number = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
    match metric {
        Metric::Latency { .. } => match parse_duration(text) {
            Ok(d) => Ok((d.as_secs_f64() * 1e6, Unit::Duration { us_per_unit: 1.0 })),
            Err(_) if as_number(text).is_some() => err(format!(
                "expected a duration like 250ms, found `{text}` (latency needs a unit: us, ms or s)"
            )),
            Err(_) => err(format!("expected a duration like 250ms, found `{text}`")),
        },
        Metric::ErrorRate { .. } | Metric::Share { .. } => {
            match (percent.and_then(as_number), as_number(text)) {
                (Some(p), _) if (0.0..=100.0).contains(&p) => Ok((p / 100.0, Unit::Share)),
                (None, Some(f)) if (0.0..=1.0).contains(&f) => Ok((f, Unit::Share)),
                _ => err(format!(
                    "expected a share like 1% or 0.01 (between 0% and 100%), found `{text}`"
                )),
            }
        }
        Metric::Goodput { .. } => match parse_rate(text) {
            Ok(v) => Ok((v, Unit::Number)),
            Err(_) => err(format!(
                "expected a rate per second like 900 or 1.5k, found `{text}`"
            )),
        },
        Metric::Path { segments } => {
            // The unit is in the value's name (`duration_s`) or its parent's
            // (`latency_us.p999`).
            let unit_of = |name: &str| {
                [("_us", 1.0), ("_ms", 1e3), ("_s", 1e6)]
                    .iter()
                    .find(|(suffix, _)| name.ends_with(suffix) && !name.ends_with("_per_s"))
                    .map(|(_, us)| *us)
            };
            let mut names = segments.iter().rev();
            let last = names.next().map_or("", String::as_str);
            let us_per_unit =
                unit_of(last).or_else(|| names.next().and_then(|parent| unit_of(parent)));
            if let Some(n) = as_number(text) {
                return Ok((
                    n,
                    us_per_unit.map_or(Unit::Number, |us_per_unit| Unit::Duration { us_per_unit }),
                ));
            }
            if let Some(p) = percent.and_then(as_number) {
                return Ok((p / 100.0, Unit::Share));
            }
            if let Ok(d) = parse_duration(text) {
                return match us_per_unit {
                    Some(us) => Ok((
                        d.as_secs_f64() * 1e6 / us,
                        Unit::Duration { us_per_unit: us },
                    )),
                    None => err(format!(
                        "`{}` is not a duration (durations compare with paths ending in _us, _ms or _s): \
                         expected a number like 5",
                        segments.join(".")
                    )),
                };
            }
            if let Ok(v) = parse_rate(text) {
                return Ok((v, Unit::Number));
            }
            err(format!(
                "expected a number like 5, a share like 1% or a duration like 250ms, found `{text}`"
            ))
        }
    }
}

/// A value for people, in the metric's unit.
fn show(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Duration { us_per_unit } => fmt_us((value * us_per_unit).round().max(0.0) as u64),
        Unit::Share => {
            let pct = value * 100.0;
            if pct != 0.0 && pct.abs() < 0.01 {
                format!("{pct:.4}%")
            } else {
                format!("{pct:.2}%")
            }
        }
        Unit::Number if value.fract() == 0.0 && value.abs() < 1e15 => format!("{value:.0}"),
        Unit::Number => format!("{value:.3}"),
    }
}

/// Parses every expression, naming the first malformed one with `locate`
/// (which turns an expression's index and error into the caller's error).
pub fn parse_all<E>(
    texts: &[String],
    mut locate: impl FnMut(usize, ParseError) -> E,
) -> Result<Vec<Threshold>, E> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Threshold::parse(t).map_err(|e| locate(i, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A summary as summary.json holds it (only the members thresholds read).
    fn summary() -> Value {
        json!({
            "duration_s": 2.0,
            "achieved_rate_per_s": 995.5,
            "outcomes": {
                "responses": {"200": 1900, "404": 20, "503": 60},
                "client_timeout": 20, "connect_error": 0, "io_error": 0, "not_sent": 0,
                "classes": {"2xx": 1900, "429": 0, "503": 60, "504": 0, "other_status": 20,
                            "client_timeout": 20, "connect_error": 0, "io_error": 0, "not_sent": 0}
            },
            "latency_us": {"count": 1980, "p50": 900, "p90": 4000, "p99": 12000, "p999": 250000,
                           "p9999": 900000, "max": 1200000, "mean": 2000.5},
            "keys": {
                "ui": {
                    "outcomes": {"responses": {"200": 100}, "classes": {"2xx": 100, "503": 0}},
                    "latency_us": {"count": 100, "p50": 700, "p90": 800, "p99": 40000, "p999": 41000,
                                   "p9999": 41000, "max": 41000, "mean": 800.0}
                },
                "idle": {
                    "outcomes": {"responses": {}, "classes": {"2xx": 0}},
                    "latency_us": {"count": 0, "p50": 0, "p90": 0, "p99": 0, "p999": 0,
                                   "p9999": 0, "max": 0, "mean": 0.0}
                }
            },
            "find_limit": {"limit": 7, "name": "x"},
            "upstream_accounting": null
        })
    }

    #[test]
    fn thresholds_evaluate_as_written() {
        // expression, measured value, pass
        let cases: &[(&str, f64, bool)] = &[
            ("p50 < 1ms", 900.0, true),
            ("p99 < 10ms", 12000.0, false),
            ("p99<=12ms", 12000.0, true),
            ("p99.9 <= 1s", 250000.0, true),
            ("p99.99 < 500ms", 900000.0, false),
            ("max < 2s", 1_200_000.0, true),
            ("mean > 2ms", 2000.5, true),
            ("  p90   >=   4000us  ", 4000.0, true),
            ("error_rate < 1%", 100.0 / 2000.0, false),
            ("error_rate < 0.06", 100.0 / 2000.0, true),
            ("rate(503) < 5%", 60.0 / 2000.0, true),
            ("rate(503) < 2.5%", 60.0 / 2000.0, false),
            ("rate(5xx) <= 3%", 60.0 / 2000.0, true),
            ("rate(4xx) == 1%", 20.0 / 2000.0, true),
            ("rate(200) > 90%", 1900.0 / 2000.0, true),
            ("rate(429) == 0%", 0.0, true),
            ("rate(client_timeout) < 1%", 20.0 / 2000.0, false),
            ("rate(other_status) != 0", 20.0 / 2000.0, true),
            ("goodput_per_s > 900", 950.0, true),
            ("goodput_per_s > 1k", 950.0, false),
            ("achieved_rate_per_s >= 990", 995.5, true),
            ("keys.ui.p99 < 50ms", 40000.0, true),
            ("keys.ui.p50 < 500us", 700.0, false),
            ("keys.ui.error_rate < 1%", 0.0, true),
            ("keys.ui.rate(503) == 0%", 0.0, true),
            ("keys.ui.goodput_per_s >= 50", 50.0, true),
            ("keys.ui.latency_us.p99 < 50000", 40000.0, true),
            ("latency_us.p999 < 300ms", 250000.0, true),
            ("duration_s >= 1500ms", 2.0, true),
            ("find_limit.limit >= 5", 7.0, true),
            ("find_limit.limit > 7", 7.0, false),
            ("outcomes.classes.2xx > 1000", 1900.0, true),
        ];
        let s = summary();
        for (expr, value, pass) in cases {
            let t = Threshold::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let r = t.evaluate(&s);
            let got = r
                .value
                .unwrap_or_else(|| panic!("{expr}: no value: {}", r.shown));
            assert!(
                (got - value).abs() < 1e-9,
                "{expr}: value {got}, want {value}"
            );
            assert_eq!(r.pass, *pass, "{expr}: {r:?}");
            assert_eq!(r.expr, expr.trim());
        }
    }

    #[test]
    fn absent_values_fail_with_the_reason() {
        let cases: &[(&str, &str)] = &[
            ("find_limit.missing >= 5", "no such value in the summary"),
            (
                "abort_audit.under_count < 1.2",
                "no such value in the summary (`abort_audit` is absent)",
            ),
            (
                "keys.batch.p99 < 50ms",
                "no key `batch` in the summary (keys: idle, ui)",
            ),
            (
                "keys.idle.p99 < 50ms",
                "no latency recorded (nothing was sent)",
            ),
            (
                "keys.idle.error_rate < 1%",
                "no arrivals to take a share of",
            ),
            ("upstream_accounting < 1", "no value in the summary (null)"),
            ("find_limit.name > 1", "not a number in the summary"),
        ];
        let s = summary();
        for (expr, why) in cases {
            let r = Threshold::parse(expr).unwrap().evaluate(&s);
            assert_eq!(r.value, None, "{expr}");
            assert!(!r.pass, "{expr}");
            assert!(r.shown.starts_with(why), "{expr}: {}", r.shown);
        }
    }

    #[test]
    fn malformed_thresholds_name_their_column() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "empty threshold"),
            ("   ", 4, "empty threshold"),
            ("< 5ms", 1, "expected a metric"),
            (
                "p99 < 25xs",
                7,
                "expected a duration like 250ms, found `25xs`",
            ),
            ("p99 < 250", 7, "latency needs a unit"),
            ("p99 250ms", 5, "expected a comparison"),
            ("p99", 4, "expected a comparison: <, <=, >, >=, == or !="),
            ("p99 <", 6, "expected a value after the comparison"),
            ("p95 < 1s", 1, "no `p95` in the summary"),
            ("keys.ui.p95 < 1s", 9, "no `p95` in the summary"),
            ("error_rate < 1ms", 14, "expected a share like 1%"),
            ("error_rate < 150%", 14, "between 0% and 100%"),
            ("rate(50x) < 1%", 6, "expected a status (503)"),
            ("rate(503 < 1%", 14, "expected `)`"),
            ("rate < 1%", 5, "expected `(`"),
            ("p99(5) < 1s", 1, "only `rate(...)` takes an argument"),
            ("goodput_per_s > fast", 17, "expected a rate per second"),
            ("find_limit.limit >= 5ms", 21, "is not a duration"),
            ("find_limit..limit >= 5", 12, "empty name"),
            ("p99 < 250ms and more", 7, "expected a duration like 250ms"),
        ];
        for (expr, col, message) in cases {
            let e = Threshold::parse(expr).expect_err(expr);
            assert!(e.message.contains(message), "{expr}: {e}");
            assert_eq!(e.col, *col, "{expr}: {e}");
        }
    }

    /// Paths as a summary of some experiment holds them.
    fn paths() -> Vec<String> {
        [
            "arrivals",
            "duration_s",
            "latency_us.p99",
            "latency_us.count",
            "keys.*.latency_us.p99",
            "outcomes.responses.*",
            "find_limit.classes.#.limit",
            "gateway_accounting.keys.**",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn thresholds_that_this_run_can_hold_pass_the_check() {
        let cases = [
            "p99 < 1s",
            "keys.ui.p99 < 1s",
            "keys.export.rate(503) < 1%",
            "error_rate < 1%",
            "goodput_per_s > 1",
            "arrivals > 1",
            "latency_us.p99 < 5ms",
            "keys.ui.latency_us.p99 < 5",
            "outcomes.responses.200 > 0",
            "find_limit.classes.0.limit >= 1",
            "gateway_accounting.keys.ui.anything.below > 1",
        ];
        for expr in cases {
            let t = Threshold::parse(expr).unwrap();
            assert_eq!(t.check(&["ui", "export"], &paths()), Ok(()), "{expr}");
        }
    }

    #[test]
    fn thresholds_that_this_run_cannot_hold_are_refused_with_the_valid_names() {
        let named = "use a named metric (p50, p90, p99, p99.9, p99.99, max, mean, error_rate, \
                     rate(STATUS|Nxx|CLASS), goodput_per_s)";
        // (expression, the scenario's keys, column, message)
        let cases: &[(&str, &[&str], usize, String)] = &[
            (
                "nonsense > 1",
                &["ui", "export"],
                1,
                format!(
                    "no `nonsense` in summary.json for this experiment: {named}, keys.NAME.METRIC \
                     (NAME: ui, export) or a number in summary.json (arrivals, duration_s, \
                     latency_us, keys, outcomes, find_limit, gateway_accounting)"
                ),
            ),
            (
                "  nonsense.p99 > 1",
                &[],
                3,
                format!(
                    "no `nonsense` in summary.json for this experiment: {named}, no \
                     keys.NAME.METRIC (this scenario has no [[keys]]) or a number in summary.json \
                     (arrivals, duration_s, latency_us, keys, outcomes, find_limit, gateway_accounting)"
                ),
            ),
            (
                "keys.batch.p99 < 1s",
                &["ui", "export"],
                6,
                "no key `batch` in this scenario: its keys are ui, export".to_string(),
            ),
            (
                "keys.batch.latency_us.p99 < 5",
                &["ui"],
                6,
                "no key `batch` in this scenario: its keys are ui".to_string(),
            ),
            (
                " keys.ui.error_rate < 1%",
                &[],
                7,
                "no key `ui`: this scenario has no [[keys]], so summary.json has no per-key values \
                 (drop `keys.ui.` to read the whole run)"
                    .to_string(),
            ),
            (
                "latency_us.p98 < 1",
                &[],
                12,
                "no `p98` under `latency_us` in summary.json for this experiment: it holds p99, count"
                    .to_string(),
            ),
            (
                "arrivals.x > 1",
                &[],
                10,
                "`arrivals` is a number: nothing lies under it".to_string(),
            ),
            (
                "latency_us > 1",
                &[],
                1,
                "`latency_us` is not a number in summary.json: name one of its members (p99, count)"
                    .to_string(),
            ),
            (
                "find_limit.classes.x.limit > 1",
                &[],
                20,
                "no `x` under `find_limit.classes` in summary.json for this experiment: it holds \
                 an index: 0, 1, ..."
                    .to_string(),
            ),
            (
                "outcomes.responses > 1",
                &[],
                1,
                "`outcomes.responses` is not a number in summary.json: name one of its members (any name)"
                    .to_string(),
            ),
        ];
        for (expr, keys, col, message) in cases {
            let t = Threshold::parse(expr).unwrap();
            let e = t.check(keys, &paths()).expect_err(expr);
            assert_eq!(&e.message, message, "{expr}");
            assert_eq!(e.col, *col, "{expr}: {e}");
        }
    }

    #[test]
    fn values_are_shown_in_their_unit() {
        let s = summary();
        let shown = |expr: &str| Threshold::parse(expr).unwrap().evaluate(&s).shown;
        assert_eq!(shown("p99 < 1s"), "12.00ms");
        assert_eq!(shown("error_rate < 1%"), "5.00%");
        assert_eq!(shown("goodput_per_s > 1"), "950");
        assert_eq!(shown("achieved_rate_per_s > 1"), "995.500");
        assert_eq!(shown("duration_s > 1s"), "2.00s");
    }
}
