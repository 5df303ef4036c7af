//! A generated key space (`[keys] count = N`) as the scenario gives it:
//! how many keys, how they are drawn, how they are named.
//!
//! Built by `build_client` from `[keys]`; handed to the driver, which
//! draws and writes the keys, and to the report, which names them.

/// `[keys]`: `count` keys named `prefix` and a zero-padded number from 0,
/// one drawn per arrival by `distribution`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySpace {
    /// How many keys (1 to [`MAX_KEY_SPACE`]).
    pub count: u32,
    /// How a key is drawn.
    pub distribution: KeyDistribution,
    /// The text before each key's number.
    pub prefix: String,
}

/// The most keys a generated key space may have.
pub const MAX_KEY_SPACE: u32 = 100_000_000;

/// How an arrival's key is drawn from a [`KeySpace`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDistribution {
    /// Every key alike.
    Uniform,
    /// Key k (from 0) with weight 1 / (k + 1)^exponent.
    Zipf {
        /// Zipf's s (> 0; 1.1 is typical of API traffic).
        exponent: f64,
    },
}

impl KeySpace {
    /// Digits of a key's number: enough for the largest, so every key's
    /// name has the same length.
    pub fn width(&self) -> usize {
        (self.count.saturating_sub(1).max(1)).ilog10() as usize + 1
    }

    /// The name of key `k` (`user-00042`).
    pub fn name(&self, k: u32) -> String {
        format!("{}{k:0width$}", self.prefix, width = self.width())
    }

    /// `zipf` or `uniform`.
    pub fn distribution_name(&self) -> &'static str {
        match self.distribution {
            KeyDistribution::Uniform => "uniform",
            KeyDistribution::Zipf { .. } => "zipf",
        }
    }

    /// The Zipf exponent (`None` for uniform).
    pub fn exponent(&self) -> Option<f64> {
        match self.distribution {
            KeyDistribution::Uniform => None,
            KeyDistribution::Zipf { exponent } => Some(exponent),
        }
    }
}
