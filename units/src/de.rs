//! serde deserializers for human values in TOML files: durations with a
//! unit, rates (`20k`), ramps of rates, whole numbers and numbers.
//!
//! Takes a value as toml hands it over (a string, a number, a table) and
//! hands on the plain value, or a message that says what was expected; toml
//! attaches the value's position to that message. Wrap a field in
//! `toml::Spanned` to keep its position for the caller's range checks,
//! which are not made here.
//!
//! The scenario file and the gateway config word some messages differently
//! (and read rates a little differently), so the duration and rate types
//! take a [`Wording`]: [`ScenarioWords`] or [`GatewayWords`]. Each keeps its
//! file's messages exactly as its users know them.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Unexpected, Visitor};
use toml::Spanned;

use crate::{parse_duration, parse_rate};

/// The words (and the two small differences of reading) of one kind of file.
///
/// Two kinds exist because the scenario file and the gateway config grew
/// their own messages before they shared these types; both wordings stay
/// reachable so that no message a user has seen changes.
pub trait Wording {
    /// What a duration should look like, in `invalid type: ..., expected ...`.
    const DURATION_EXPECTED: &'static str;
    /// What a rate should look like, in `invalid type: ..., expected ...`.
    const RATE_EXPECTED: &'static str;
    /// A table is read as a ramp `{ from, to }` ([`RateOrRamp`]); otherwise
    /// a table is of the wrong type.
    const RATE_TABLES: bool;
    /// `nan` and `inf` are refused here; otherwise they are handed on, for
    /// the caller's range check to name the field.
    const FINITE_RATES: bool;
}

/// The scenario file's words: durations like `"250ms", "10s" or "2m"`,
/// rates that may be ramps, and finite rates only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScenarioWords;

impl Wording for ScenarioWords {
    const DURATION_EXPECTED: &'static str =
        "a duration as a string with a unit, like \"250ms\", \"10s\" or \"2m\"";
    const RATE_EXPECTED: &'static str =
        "a rate per second like 20000 or \"20k\", or a ramp like { from = \"1k\", to = \"20k\" }";
    const RATE_TABLES: bool = true;
    const FINITE_RATES: bool = true;
}

/// The gateway config's words: durations like `"250ms" or "2s"`, rates like
/// `100 or "1k"`, no ramps, and range checks left to the policy's validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatewayWords;

impl Wording for GatewayWords {
    const DURATION_EXPECTED: &'static str =
        "a duration as a string with a unit, like \"250ms\" or \"2s\"";
    const RATE_EXPECTED: &'static str = "a rate per second like 100 or \"1k\"";
    const RATE_TABLES: bool = false;
    const FINITE_RATES: bool = false;
}

/// A duration written with a unit, as a string: `"250ms"`, `"10s"`. A bare
/// number is refused with the fix (`write "5s"`): is `5` seconds or
/// milliseconds?
pub struct HumanDuration<W: Wording>(pub Duration, PhantomData<W>);

impl<W: Wording> HumanDuration<W> {
    fn new(d: Duration) -> Self {
        HumanDuration(d, PhantomData)
    }
}

impl<'de, W: Wording> Deserialize<'de> for HumanDuration<W> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<W>(PhantomData<W>);
        impl<W: Wording> Visitor<'_> for V<W> {
            type Value = HumanDuration<W>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(W::DURATION_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<HumanDuration<W>, E> {
                parse_duration(s).map(HumanDuration::new).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<HumanDuration<W>, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{n}s\" or \"{n}ms\" (a string), not {n}"
                )))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<HumanDuration<W>, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{n}s\" or \"{n}ms\" (a string), not {n}"
                )))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<HumanDuration<W>, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{n}s\" (a string), not {n}"
                )))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A rate per second: a number, or a string like `"20k"` or `"1.5k/s"`.
pub struct HumanRate<W: Wording>(pub f64, PhantomData<W>);

impl<'de, W: Wording> Deserialize<'de> for HumanRate<W> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read as a rate or a ramp, then refuse the ramp: where one rate is
        // wanted, a table is most likely a ramp's end written as a ramp.
        d.deserialize_any(RateVisitor::<W>(PhantomData))
            .and_then(|r| match r {
                RateOrRamp::Constant(v) => Ok(HumanRate(v, PhantomData)),
                RateOrRamp::Ramp { .. } => Err(de::Error::custom(
                    "a ramp's `from` and `to` are single rates, like \"1k\" or 20000",
                )),
            })
    }
}

/// A rate as written where a ramp may stand: one rate, or a ramp table
/// `{ from, to }` whose ends may be missing (the caller's validation says
/// which). Only a [`Wording`] with `RATE_TABLES` reads tables.
pub enum RateOrRamp<W: Wording> {
    /// One rate per second.
    Constant(f64),
    /// A ramp table as written.
    Ramp {
        /// The rate at the start, when given.
        from: Option<Spanned<HumanRate<W>>>,
        /// The rate at the end, when given.
        to: Option<Spanned<HumanRate<W>>>,
    },
}

struct RateVisitor<W>(PhantomData<W>);

impl<'de, W: Wording> Visitor<'de> for RateVisitor<W> {
    type Value = RateOrRamp<W>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(W::RATE_EXPECTED)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<RateOrRamp<W>, E> {
        Ok(RateOrRamp::Constant(n as f64))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<RateOrRamp<W>, E> {
        Ok(RateOrRamp::Constant(n as f64))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<RateOrRamp<W>, E> {
        if n.is_finite() || !W::FINITE_RATES {
            Ok(RateOrRamp::Constant(n))
        } else {
            Err(E::custom(
                "a rate must be a finite number, like 20000 or \"20k\"",
            ))
        }
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<RateOrRamp<W>, E> {
        parse_rate(s).map(RateOrRamp::Constant).map_err(E::custom)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RateOrRamp<W>, A::Error> {
        if !W::RATE_TABLES {
            return Err(de::Error::invalid_type(Unexpected::Map, &self));
        }
        let mut from = None;
        let mut to = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "from" => from = Some(map.next_value::<Spanned<HumanRate<W>>>()?),
                "to" => to = Some(map.next_value::<Spanned<HumanRate<W>>>()?),
                other => return Err(de::Error::unknown_field(other, &["from", "to"])),
            }
        }
        Ok(RateOrRamp::Ramp { from, to })
    }
}

impl<'de, W: Wording> Deserialize<'de> for RateOrRamp<W> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RateVisitor(PhantomData))
    }
}

/// A whole number (TOML integer), with a message that says so.
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number, like 4 (no quotes)")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Int, E> {
                Ok(Int(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Int, E> {
                i64::try_from(n)
                    .map(Int)
                    .map_err(|_| E::custom(format!("{n} is far too large")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number (TOML integer or float), with a message that says so.
pub struct Num(pub f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, like 1 or 0.5 (no quotes)")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Num, E> {
                Ok(Num(n as f64))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Num, E> {
                Ok(Num(n as f64))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Num, E> {
                Ok(Num(n))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(bound = "")]
    struct Doc<W: Wording> {
        d: Option<HumanDuration<W>>,
        r: Option<HumanRate<W>>,
        ramp: Option<RateOrRamp<W>>,
        i: Option<Int>,
        n: Option<Num>,
    }

    fn read<W: Wording>(text: &str) -> Result<Doc<W>, String> {
        toml::from_str::<Doc<W>>(text).map_err(|e| e.message().trim().to_string())
    }

    fn err<W: Wording>(text: &str) -> String {
        match read::<W>(text) {
            Ok(_) => panic!("{text:?} should fail"),
            Err(e) => e,
        }
    }

    #[test]
    fn values_read() {
        let doc = read::<ScenarioWords>(
            "d = \"1.5s\"\nr = \"20k\"\nramp = { from = 1, to = \"2k\" }\ni = 4\nn = 0.5",
        )
        .unwrap();
        assert_eq!(doc.d.map(|d| d.0), Some(Duration::from_millis(1500)));
        assert_eq!(doc.r.map(|r| r.0), Some(20_000.0));
        match doc.ramp {
            Some(RateOrRamp::Ramp {
                from: Some(from),
                to: Some(to),
            }) => assert_eq!((from.get_ref().0, to.get_ref().0), (1.0, 2000.0)),
            _ => panic!("a ramp with both ends"),
        }
        assert_eq!(doc.i.map(|i| i.0), Some(4));
        assert_eq!(doc.n.map(|n| n.0), Some(0.5));
        let doc = read::<GatewayWords>("d = \"2s\"\nr = 100").unwrap();
        assert_eq!(doc.d.map(|d| d.0), Some(Duration::from_secs(2)));
        assert_eq!(doc.r.map(|r| r.0), Some(100.0));
    }

    #[test]
    fn each_wording_keeps_its_messages() {
        // (text, part of the error)
        let scenario: &[(&str, &str)] = &[
            ("d = 5", "a duration needs a unit: write \"5s\" or \"5ms\""),
            (
                "d = true",
                "expected a duration as a string with a unit, like \"250ms\", \"10s\" or \"2m\"",
            ),
            ("r = nan", "a rate must be a finite number"),
            (
                "r = { from = 1 }",
                "a ramp's `from` and `to` are single rates",
            ),
            ("r = true", "or a ramp like { from = \"1k\", to = \"20k\" }"),
            (
                "ramp = { up = 1 }",
                "unknown field `up`, expected `from` or `to`",
            ),
            ("i = \"4\"", "expected a whole number, like 4 (no quotes)"),
            ("n = \"x\"", "expected a number, like 1 or 0.5 (no quotes)"),
        ];
        for (text, want) in scenario {
            let got = err::<ScenarioWords>(text);
            assert!(got.contains(want), "{text}: {got}");
        }
        let gateway: &[(&str, &str)] = &[
            ("d = 5", "a duration needs a unit: write \"5s\" or \"5ms\""),
            (
                "d = true",
                "expected a duration as a string with a unit, like \"250ms\" or \"2s\"",
            ),
            (
                "r = { from = 1 }",
                "invalid type: map, expected a rate per second like 100 or \"1k\"",
            ),
        ];
        for (text, want) in gateway {
            let got = err::<GatewayWords>(text);
            assert!(got.contains(want), "{text}: {got}");
        }
        // The gateway's range check names the field of a rate that is not finite.
        assert!(
            read::<GatewayWords>("r = nan")
                .unwrap()
                .r
                .unwrap()
                .0
                .is_nan()
        );
    }
}
