//! The Universal Scalability Law (Gunther): throughput against concurrency.
//!
//! Takes measured points `(N, X)` (concurrency and throughput per second from
//! closed-loop steps) and fits
//!
//! ```text
//! X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1))
//! ```
//!
//! by least squares on X itself: a linear fit of `N / X` gives the starting
//! point, then Levenberg-Marquardt refines all three parameters with sigma
//! and kappa kept at zero or more. Hands back the parameters, the peak
//! concurrency `sqrt((1 - sigma) / kappa)` and the throughput there. It does
//! not judge whether the fit is good: `r_squared` says how much it explains.

/// A fitted Universal Scalability Law.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UslFit {
    /// Throughput of one unit of concurrency with no contention, per second.
    pub lambda: f64,
    /// Contention (serial fraction), 0 or more.
    pub sigma: f64,
    /// Coherency (crosstalk) cost, 0 or more.
    pub kappa: f64,
    /// Concurrency of the highest throughput; `None` when kappa is 0 (no retrograde region).
    pub peak_concurrency: Option<f64>,
    /// Throughput at the peak concurrency, per second.
    pub peak_throughput_per_s: Option<f64>,
    /// Share of the throughput variance the fit explains (1 is perfect).
    pub r_squared: f64,
}

impl UslFit {
    /// Throughput the fitted law predicts at concurrency `n`, per second.
    pub fn throughput_per_s(&self, n: f64) -> f64 {
        model(self.lambda, self.sigma, self.kappa, n)
    }
}

fn model(lambda: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
    lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// Fits the law to points `(n[i], x[i])`. Needs at least three points with
/// distinct concurrency of 1 or more and positive finite throughput (others
/// are ignored); returns `None` otherwise or when the fit does not converge
/// to finite values.
pub fn fit(n: &[f64], x: &[f64]) -> Option<UslFit> {
    let pts: Vec<(f64, f64)> = n
        .iter()
        .zip(x)
        .filter(|(a, b)| a.is_finite() && b.is_finite() && **a >= 1.0 && **b > 0.0)
        .map(|(a, b)| (*a, *b))
        .collect();
    let mut distinct: Vec<f64> = pts.iter().map(|p| p.0).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() < 3 {
        return None;
    }
    let (mut lambda, mut sigma, mut kappa) = linear_start(&pts)?;
    let sse = |l: f64, s: f64, k: f64| -> f64 {
        pts.iter()
            .map(|&(a, b)| (model(l, s, k, a) - b).powi(2))
            .sum()
    };
    // Levenberg-Marquardt on (lambda, sigma, kappa), scaled by lambda so the
    // three steps are of similar size.
    let mut cost = sse(lambda, sigma, kappa);
    let mut damping = 1e-3;
    for _ in 0..500 {
        let mut jtj = [[0.0f64; 3]; 3];
        let mut jtr = [0.0f64; 3];
        for &(a, b) in &pts {
            let d = 1.0 + sigma * (a - 1.0) + kappa * a * (a - 1.0);
            let f = lambda * a / d;
            // Partial derivatives of f; the lambda one times lambda (scaling).
            let grad = [f, -f * (a - 1.0) / d, -f * a * (a - 1.0) / d];
            let r = b - f;
            for i in 0..3 {
                jtr[i] += grad[i] * r;
                for j in 0..3 {
                    jtj[i][j] += grad[i] * grad[j];
                }
            }
        }
        let mut improved = false;
        for _ in 0..20 {
            let mut m = jtj;
            for (i, row) in m.iter_mut().enumerate() {
                row[i] += damping * jtj[i][i].max(1e-12);
            }
            let Some(step) = solve3(m, jtr) else {
                damping *= 10.0;
                continue;
            };
            let l = lambda * (1.0 + step[0]).max(0.1);
            let s = (sigma + step[1]).max(0.0);
            let k = (kappa + step[2]).max(0.0);
            let c = sse(l, s, k);
            if c.is_finite() && c < cost {
                let done = (cost - c) <= 1e-12 * cost.max(1e-300);
                (lambda, sigma, kappa, cost) = (l, s, k, c);
                damping = (damping / 3.0).max(1e-12);
                improved = !done;
                break;
            }
            damping *= 10.0;
        }
        if !improved {
            break;
        }
    }
    if !(lambda.is_finite() && sigma.is_finite() && kappa.is_finite()) || lambda <= 0.0 {
        return None;
    }
    let mean = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64;
    let total: f64 = pts.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let r_squared = if total > 0.0 { 1.0 - cost / total } else { 1.0 };
    let peak_concurrency = (kappa > 0.0 && sigma < 1.0).then(|| ((1.0 - sigma) / kappa).sqrt());
    Some(UslFit {
        lambda,
        sigma,
        kappa,
        peak_concurrency,
        peak_throughput_per_s: peak_concurrency.map(|p| model(lambda, sigma, kappa, p)),
        r_squared,
    })
}

/// The linearised fit: `N / X = a + b (N - 1) + c N (N - 1)` with
/// `lambda = 1/a`, `sigma = b/a`, `kappa = c/a`; negatives clamped to 0.
fn linear_start(pts: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
    let mut ata = [[0.0f64; 3]; 3];
    let mut atb = [0.0f64; 3];
    for &(n, x) in pts {
        let row = [1.0, n - 1.0, n * (n - 1.0)];
        let target = n / x;
        for i in 0..3 {
            atb[i] += row[i] * target;
            for j in 0..3 {
                ata[i][j] += row[i] * row[j];
            }
        }
    }
    let [a, b, c] = solve3(ata, atb)?;
    // If the intercept is unusable, start from the best single-unit rate.
    let lambda = if a > 0.0 {
        1.0 / a
    } else {
        pts.iter().map(|p| p.1 / p.0).fold(0.0, f64::max)
    };
    let scale = if a > 0.0 { a } else { 1.0 / lambda };
    Some((lambda, (b / scale).max(0.0), (c / scale).max(0.0)))
}

/// Solves the 3x3 system `m v = r` by Gaussian elimination with pivoting.
fn solve3(mut m: [[f64; 3]; 3], mut r: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        r.swap(col, pivot);
        for row in col + 1..3 {
            let f = m[row][col] / m[col][col];
            let pivot_row = m[col];
            for (a, b) in m[row].iter_mut().zip(pivot_row).skip(col) {
                *a -= f * b;
            }
            r[row] -= f * r[col];
        }
    }
    let mut v = [0.0; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|k| m[row][k] * v[k]).sum();
        v[row] = (r[row] - s) / m[row][row];
    }
    v.iter().all(|x| x.is_finite()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn synthetic(
        lambda: f64,
        sigma: f64,
        kappa: f64,
        noise: f64,
        seed: u64,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let n: Vec<f64> = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let x = n
            .iter()
            .map(|&v| model(lambda, sigma, kappa, v) * (1.0 + noise * rng.random_range(-1.0..1.0)))
            .collect();
        (n, x)
    }

    #[test]
    fn recovers_exact_parameters() {
        let (n, x) = synthetic(1000.0, 0.05, 0.0008, 0.0, 1);
        let f = fit(&n, &x).expect("a fit");
        assert!((f.lambda - 1000.0).abs() < 1e-3, "{f:?}");
        assert!((f.sigma - 0.05).abs() < 1e-6, "{f:?}");
        assert!((f.kappa - 0.0008).abs() < 1e-8, "{f:?}");
        let peak = ((1.0 - 0.05) / 0.0008f64).sqrt();
        assert!((f.peak_concurrency.expect("a peak") - peak).abs() < 1e-3);
        assert!(f.r_squared > 0.999_999);
    }

    /// With 2% noise, seeded: the parameters come back close and the peak
    /// within a few units of concurrency, for several seeds.
    #[test]
    fn recovers_parameters_from_noisy_data() {
        for seed in 1..=5 {
            let (n, x) = synthetic(850.0, 0.08, 0.002, 0.02, seed);
            let f = fit(&n, &x).expect("a fit");
            assert!(
                (f.lambda - 850.0).abs() / 850.0 < 0.08,
                "seed {seed}: {f:?}"
            );
            assert!((f.sigma - 0.08).abs() < 0.03, "seed {seed}: {f:?}");
            assert!((f.kappa - 0.002).abs() < 0.0006, "seed {seed}: {f:?}");
            let peak = f.peak_concurrency.expect("a peak");
            let want = ((1.0 - 0.08) / 0.002f64).sqrt();
            assert!(
                (peak - want).abs() < 3.0,
                "seed {seed}: peak {peak} want {want}"
            );
            let want_x = model(850.0, 0.08, 0.002, want);
            let got_x = f.peak_throughput_per_s.expect("a peak throughput");
            assert!((got_x - want_x).abs() / want_x < 0.05, "seed {seed}");
        }
    }

    /// A one-core server in closed loop: throughput flat at capacity from
    /// N = 1 on (sigma near 1), with no retrograde region.
    #[test]
    fn saturated_from_the_start_has_sigma_near_one() {
        let n = [1.0, 2.0, 4.0, 8.0, 16.0];
        let x = [990.0, 1000.0, 1001.0, 998.0, 1000.0];
        let f = fit(&n, &x).expect("a fit");
        assert!(f.sigma > 0.95, "{f:?}");
        assert!((f.throughput_per_s(16.0) - 1000.0).abs() < 20.0, "{f:?}");
    }

    /// Linear scaling: sigma and kappa 0, no peak.
    #[test]
    fn linear_scaling_has_no_peak() {
        let n = [1.0, 2.0, 3.0, 4.0];
        let x = [100.0, 200.0, 300.0, 400.0];
        let f = fit(&n, &x).expect("a fit");
        assert!(f.sigma < 1e-6 && f.kappa < 1e-9, "{f:?}");
        assert_eq!(f.peak_concurrency, None);
    }

    #[test]
    fn too_few_points_is_no_fit() {
        assert_eq!(fit(&[1.0, 2.0], &[1.0, 2.0]), None);
        assert_eq!(fit(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(fit(&[0.0, 2.0, 3.0], &[1.0, 2.0, f64::NAN]), None);
    }
}
