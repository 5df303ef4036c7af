//! A generated key space (`[keys] count = N`) on the wire: one request
//! template whose `x-api-key` carries a fixed-width number, overwritten per
//! arrival with the key drawn for it.
//!
//! Takes the scenario's [`KeySpace`] and the encoded template; hands the
//! shards a [`KeyDraw`] that draws a key number (uniform or Zipf, from the
//! shard's seeded generator) and writes it into a copy of the template in
//! place, as request ids are: no allocation per request over HTTP/1.1.
//! HTTP/2 builds a `HeaderValue` per request (h2 owns its header map).

use hyper::header::HeaderValue;
use rand::Rng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Uniform, Zipf};

use super::shard::ShardKey;
use crate::error::{Error, Result};
use crate::record::KeyPick;
use crate::scenario::{KeyDistribution, KeySpace};

/// The header a key travels in.
pub const KEY_HEADER: &str = "x-api-key";

/// How a shard draws and writes the keys of a generated space.
#[derive(Debug, Clone)]
pub struct KeyDraw {
    space: KeySpace,
    width: usize,
    sampler: Sampler,
    /// Where the number's first digit sits in the HTTP/1.1 template.
    digits_at: usize,
}

#[derive(Debug, Clone)]
enum Sampler {
    Uniform(Uniform<u32>),
    Zipf(Zipf<f64>),
}

impl KeyDraw {
    /// The name the template is encoded with: the prefix and zeros.
    pub fn placeholder(space: &KeySpace) -> String {
        space.name(0)
    }

    /// The draw for `space`, whose template `request` was encoded with
    /// [`KeyDraw::placeholder`] as its key.
    pub fn new(space: &KeySpace, request: &[u8]) -> Result<KeyDraw> {
        let needle = format!("\r\n{KEY_HEADER}: {}\r\n", Self::placeholder(space));
        let at = request
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .ok_or_else(|| {
                Error::Usage("[keys]: the x-api-key header could not be placed".into())
            })?;
        let width = space.width();
        let digits_at = at + needle.len() - 2 - width;
        let sampler = match space.distribution {
            KeyDistribution::Uniform => Sampler::Uniform(
                Uniform::new(0, space.count).map_err(|e| Error::Usage(format!("[keys]: {e}")))?,
            ),
            KeyDistribution::Zipf { exponent } => Sampler::Zipf(
                Zipf::new(f64::from(space.count), exponent)
                    .map_err(|e| Error::Usage(format!("[keys]: {e}")))?,
            ),
        };
        Ok(KeyDraw {
            space: space.clone(),
            width,
            sampler,
            digits_at,
        })
    }

    /// How many keys there are.
    pub fn count(&self) -> u32 {
        self.space.count
    }

    /// The next arrival's key number (0 is the hottest under Zipf).
    pub fn draw(&self, rng: &mut SmallRng) -> u32 {
        match &self.sampler {
            Sampler::Uniform(u) => rng.sample(u),
            // Zipf draws ranks from 1.
            Sampler::Zipf(z) => (z.sample(rng) as u32).clamp(1, self.space.count) - 1,
        }
    }

    /// Writes key `k`'s number into `request` (a copy of the template).
    pub fn stamp(&self, request: &mut [u8], k: u32) {
        if let Some(digits) = request.get_mut(self.digits_at..self.digits_at + self.width) {
            let mut n = k;
            for byte in digits.iter_mut().rev() {
                *byte = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
    }

    /// Key `k` as an HTTP/2 header value.
    pub fn header_value(&self, k: u32) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.space.name(k)).ok()
    }
}

/// Picks a key by weight: the first whose cumulative weight passes a
/// uniform draw (no draw for a single key).
pub(super) fn pick_key(keys: &[ShardKey], rng: &mut SmallRng) -> KeyPick {
    let key = if keys.len() <= 1 {
        0
    } else {
        let u: f64 = rng.random();
        keys.iter()
            .position(|k| u < k.cdf)
            .unwrap_or(keys.len() - 1)
    };
    let slot = match keys.get(key).and_then(|k| k.space.as_ref()) {
        Some(space) => space.draw(rng),
        None => KeyPick::NO_SLOT,
    };
    KeyPick { key, slot }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stamps_the_drawn_key_in_place_at_fixed_width() {
        let space = KeySpace {
            count: 1000,
            distribution: KeyDistribution::Zipf { exponent: 1.1 },
            prefix: "user-".into(),
        };
        let template = format!(
            "GET / HTTP/1.1\r\nx-api-key: {}\r\nx: y\r\n\r\n",
            KeyDraw::placeholder(&space)
        );
        let draw = KeyDraw::new(&space, template.as_bytes()).unwrap();
        let mut bytes = template.into_bytes();
        draw.stamp(&mut bytes, 42);
        assert_eq!(
            bytes,
            b"GET / HTTP/1.1\r\nx-api-key: user-042\r\nx: y\r\n\r\n"
        );
        let mut rng = SmallRng::seed_from_u64(1);
        let mut zeros = 0;
        for _ in 0..10_000 {
            let k = draw.draw(&mut rng);
            assert!(k < 1000);
            zeros += usize::from(k == 0);
        }
        // Zipf(1.1) over 1000 keys gives key 0 about 1/H = 1/5.1 ≈ 20%.
        assert!((1500..2500).contains(&zeros), "{zeros}");
    }
}
