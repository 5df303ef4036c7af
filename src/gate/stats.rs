//! The statistics `compare` needs, hand-written: medians, the median
//! absolute deviation and the Mann-Whitney U rank test with its normal
//! approximation.
//!
//! Pure functions over slices of `f64`; no I/O, no allocation beyond a
//! sorted copy. Why a rank test: per-interval latency percentiles are
//! skewed and heavy-tailed, so a t-test's normality assumption is wrong,
//! while ranks only ask "does one side tend to be larger?".

/// The median of `values` (mean of the middle two for an even count);
/// `None` when empty. NaNs sort last and are not expected.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// The median absolute deviation of `values`: the median of each value's
/// distance from the median. `None` when empty. A robust spread: up to half
/// the values can be wild (one interval stalled by a GC pause) without
/// moving it, where a standard deviation follows the worst of them. It is
/// not rescaled: for normal data the standard deviation is about 1.48 MAD.
pub fn median_abs_deviation(values: &[f64]) -> Option<f64> {
    let centre = median(values)?;
    median(
        &values
            .iter()
            .map(|v| (v - centre).abs())
            .collect::<Vec<_>>(),
    )
}

/// The result of a one-sided Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UTest {
    /// U of the second sample: how many (x, y) pairs have y > x (ties count 1/2).
    pub u: f64,
    /// The normal approximation's z, with continuity and tie corrections.
    pub z: f64,
    /// One-sided p-value for "y tends to be larger than x".
    pub p_greater: f64,
}

/// Tests whether `y` tends to be larger than `x` (one-sided), with average
/// ranks for ties, the tie-corrected variance and a continuity correction
/// of 1/2 (as scipy's `mannwhitneyu(y, x, alternative="greater",
/// method="asymptotic")`). `None` when either sample is empty. When every
/// value ties the variance is zero: there is no evidence, so p is 1.
pub fn mann_whitney_greater(x: &[f64], y: &[f64]) -> Option<UTest> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let (nx, ny) = (x.len() as f64, y.len() as f64);
    let mut pooled: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, false))
        .chain(y.iter().map(|&v| (v, true)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = pooled.len();
    let mut rank_sum_y = 0.0;
    // Sum over tie groups of t^3 - t, for the variance correction.
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        // Ranks are 1-based: positions i..=j share their average.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_y += rank * pooled[i..=j].iter().filter(|p| p.1).count() as f64;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    let u = rank_sum_y - ny * (ny + 1.0) / 2.0;
    let mean = nx * ny / 2.0;
    let total = nx + ny;
    let variance = nx * ny / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    if variance <= 0.0 || !variance.is_finite() {
        return Some(UTest {
            u,
            z: 0.0,
            p_greater: 1.0,
        });
    }
    let z = (u - mean - 0.5) / variance.sqrt();
    Some(UTest {
        u,
        z,
        p_greater: 1.0 - normal_cdf(z),
    })
}

/// The standard normal CDF, from `erfc`.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function, by the Chebyshev fit of Numerical
/// Recipes (`erfcc`): fractional error under 1.2e-7 everywhere, plenty for
/// a p-value compared with 0.05.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ans = t * poly.exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_cases() {
        let cases: &[(&[f64], Option<f64>)] = &[
            (&[], None),
            (&[3.0], Some(3.0)),
            (&[3.0, 1.0], Some(2.0)),
            (&[5.0, 1.0, 3.0], Some(3.0)),
            (&[4.0, 1.0, 3.0, 2.0], Some(2.5)),
        ];
        for (values, want) in cases {
            assert_eq!(median(values), *want, "{values:?}");
        }
    }

    #[test]
    fn median_abs_deviation_cases() {
        let cases: &[(&[f64], Option<f64>)] = &[
            (&[], None),
            (&[7.0], Some(0.0)),
            // Identical samples: no spread at all.
            (&[5.0, 5.0, 5.0, 5.0], Some(0.0)),
            (&[1.0, 3.0], Some(1.0)),
            // Median 2; distances 1, 1, 0, 0, 2, 4, 7 -> median 1.
            (&[1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0], Some(1.0)),
            // One wild value does not move it.
            (&[10.0, 11.0, 12.0, 13.0, 1e9], Some(1.0)),
        ];
        for (values, want) in cases {
            assert_eq!(median_abs_deviation(values), *want, "{values:?}");
        }
    }

    #[test]
    fn normal_cdf_known_values() {
        for (z, want) in [
            (0.0, 0.5),
            (1.0, 0.841_344_7),
            (-1.959_964, 0.025),
            (3.0, 0.998_650_1),
        ] {
            assert!(
                (normal_cdf(z) - want).abs() < 1e-6,
                "Phi({z}) = {} not {want}",
                normal_cdf(z)
            );
        }
    }

    /// Expected values computed with the textbook formulas (and matching
    /// scipy's asymptotic method with continuity correction).
    #[test]
    fn mann_whitney_known_cases() {
        // x, y, U of y, z, one-sided p for y > x
        type Case<'a> = (&'a [f64], &'a [f64], f64, f64, f64);
        let cases: &[Case] = &[
            (
                &[1.0, 2.0, 3.0],
                &[4.0, 5.0, 6.0],
                9.0,
                1.745_743,
                0.040_428,
            ),
            (
                &[4.0, 5.0, 6.0],
                &[1.0, 2.0, 3.0],
                0.0,
                -2.182_179,
                0.985_452,
            ),
            // Ties share their average rank and shrink the variance.
            (
                &[1.0, 1.0, 2.0],
                &[1.0, 2.0, 2.0],
                6.0,
                0.496_904,
                0.309_628,
            ),
            // Unequal sizes.
            (
                &[19.0, 22.0, 16.0, 29.0, 24.0],
                &[20.0, 11.0, 17.0, 12.0],
                3.0,
                -1.837_117,
                0.966_904,
            ),
            (
                &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
                46.0,
                1.424_080,
                0.077_212,
            ),
        ];
        for (x, y, u, z, p) in cases {
            let t = mann_whitney_greater(x, y).unwrap();
            assert_eq!(t.u, *u, "U for {x:?} vs {y:?}");
            assert!(
                (t.z - z).abs() < 1e-5,
                "z {} not {z} for {x:?} vs {y:?}",
                t.z
            );
            assert!(
                (t.p_greater - p).abs() < 1e-5,
                "p {} not {p} for {x:?} vs {y:?}",
                t.p_greater
            );
        }
    }

    #[test]
    fn mann_whitney_degenerate_cases() {
        assert_eq!(mann_whitney_greater(&[], &[1.0]), None);
        assert_eq!(mann_whitney_greater(&[1.0], &[]), None);
        // Everything tied: no evidence either way.
        let t = mann_whitney_greater(&[2.0, 2.0], &[2.0, 2.0, 2.0]).unwrap();
        assert_eq!(t.p_greater, 1.0);
        // Identical samples: p well above any alpha.
        let same: Vec<f64> = (0..30).map(f64::from).collect();
        assert!(mann_whitney_greater(&same, &same).unwrap().p_greater > 0.4);
    }
}
