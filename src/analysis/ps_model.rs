//! The processor-sharing model of a CPU-bound upstream behind a gateway
//! timeout: how many requests may be in flight before responses miss it.
//!
//! Takes the gateway's upstream timeout, the cores the upstream may use and
//! the CPU each request needs (a constant, or the mock upstream's
//! distributions by their mean); hands on the model's limit L*. Pure
//! arithmetic: no I/O, no measurement.
//!
//! Why the model is simple and exact for its case: under overload a
//! concurrency limit L keeps L requests in flight all the time (one is
//! admitted as one leaves). On k cores shared fairly each of them then gets
//! k/L of a core (all of one when L <= k), so a request needing S seconds
//! of CPU takes S * max(L, k) / k seconds, whatever the others need. It
//! misses the timeout T exactly when S > T * k / L. For constant work:
//! L* = floor(T * k / S) (zero when S > T). For a distribution: the share of
//! 504s at L is P(S > T * k / L), which stays within `bound` while
//! T * k / L >= q, the (1 - bound) quantile of S; so L* = floor(T * k / q).
//!
//! What it leaves out, and the experiment measures: CPU that the gateway
//! and the driver take from the same cores, the time a request spends
//! outside the upstream's CPU (network, parsing, the kernel), and the
//! cascade past L* (a timed-out request leaves the gateway but, with
//! `on_disconnect = "run"`, keeps its share of the upstream's CPU).

use serde::{Deserialize, Serialize};

/// The CPU each request needs, as the mock upstream draws it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CpuWork {
    /// Every request needs exactly this many seconds.
    Constant(f64),
    /// Exponentially distributed with this mean, s.
    Exponential(f64),
    /// Log-normal with this mean (s) and shape sigma (of the underlying normal).
    Lognormal {
        /// Mean, s.
        mean_s: f64,
        /// Sigma of the underlying normal, > 0.
        sigma: f64,
    },
}

impl CpuWork {
    /// The mean CPU per request, s.
    pub fn mean_s(self) -> f64 {
        match self {
            CpuWork::Constant(s) | CpuWork::Exponential(s) => s,
            CpuWork::Lognormal { mean_s, .. } => mean_s,
        }
    }

    /// The `p` quantile of CPU per request, s (`p` in (0, 1)).
    pub fn quantile_s(self, p: f64) -> f64 {
        let p = p.clamp(1e-12, 1.0 - 1e-12);
        match self {
            CpuWork::Constant(s) => s,
            CpuWork::Exponential(mean) => -mean * (1.0 - p).ln(),
            CpuWork::Lognormal { mean_s, sigma } => {
                // The mock parameterises by the mean: mu = ln(mean) - sigma^2 / 2.
                let mu = mean_s.ln() - sigma * sigma / 2.0;
                (mu + sigma * normal_quantile(p)).exp()
            }
        }
    }
}

/// The model's answer for one hardware class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelLimit {
    /// L*: the largest limit whose 504 share the model keeps within the bound.
    pub limit: u32,
    /// The CPU per request the limit is computed from (the quantile of the
    /// distribution at 1 - bound; the constant itself for constant work), s.
    pub cpu_s: f64,
    /// Cores the upstream may use.
    pub cores: f64,
    /// The gateway's upstream timeout, s.
    pub timeout_s: f64,
}

/// L* = floor(timeout * cores / cpu) for constant work, 0 when one request
/// alone needs more than the timeout. `cpu_s` is the CPU per request.
pub fn limit_constant(timeout_s: f64, cores: f64, cpu_s: f64) -> u32 {
    if !(timeout_s > 0.0 && cores > 0.0 && cpu_s > 0.0) || cpu_s > timeout_s {
        return 0;
    }
    // A hair of tolerance so that 0.29 * 1 / 0.05 = 5.799..9 and exact
    // ratios such as 0.1 / 0.02 = 4.999..9 floor to what arithmetic says.
    let ratio = timeout_s * cores / cpu_s;
    (ratio + 1e-9).floor().min(f64::from(u32::MAX)) as u32
}

/// L* for `work` on `cores` cores under a gateway timeout of `timeout_s`,
/// allowing a share `bound` (e.g. 0.01) of 504s.
pub fn limit(timeout_s: f64, cores: f64, work: CpuWork, bound: f64) -> ModelLimit {
    let cpu_s = work.quantile_s(1.0 - bound);
    ModelLimit {
        limit: limit_constant(timeout_s, cores, cpu_s),
        cpu_s,
        cores,
        timeout_s,
    }
}

/// The response time the model predicts for a request needing `cpu_s` of
/// CPU with `in_flight` requests sharing `cores` cores, s.
pub fn response_s(cpu_s: f64, in_flight: u32, cores: f64) -> f64 {
    cpu_s * f64::from(in_flight).max(cores) / cores
}

/// The share of 504s the model predicts at limit `in_flight` (before any
/// cascade): P(S > timeout * cores / in_flight) for constant work 0 or 1.
pub fn share_504(timeout_s: f64, cores: f64, work: CpuWork, in_flight: u32) -> f64 {
    let threshold_s = timeout_s * cores / f64::from(in_flight.max(1)).max(cores);
    match work {
        CpuWork::Constant(s) => {
            if s > threshold_s + 1e-12 {
                1.0
            } else {
                0.0
            }
        }
        CpuWork::Exponential(mean) => (-threshold_s / mean).exp(),
        CpuWork::Lognormal { mean_s, sigma } => {
            let mu = mean_s.ln() - sigma * sigma / 2.0;
            1.0 - normal_cdf((threshold_s.ln() - mu) / sigma)
        }
    }
}

/// The standard normal's quantile (Acklam's rational approximation,
/// relative error under 1.2e-9); `p` is held inside (1e-12, 1 - 1e-12).
pub(super) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The standard normal's CDF (Abramowitz and Stegun 7.1.26 on erf, error under 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_model_constant_limits_as_a_table() {
        // (timeout s, cores, cpu s, L*)
        let cases = [
            (29.0, 1.0, 5.0, 5),   // the seed: 5.8 -> 5
            (0.29, 1.0, 0.05, 5),  // the seed at 1/100 scale
            (0.29, 2.0, 0.05, 11), // two cores: 11.6 -> 11
            (0.1, 1.0, 0.02, 5),   // an exact ratio is not floored to 4
            (0.11, 1.0, 0.02, 5),
            (0.12, 1.0, 0.02, 6),
            (1.0, 0.5, 0.1, 5),  // half a core (a quota)
            (0.05, 1.0, 0.1, 0), // one request alone misses the timeout
            (0.15, 2.0, 0.1, 3), // k = 2: L = 3 gives 0.1 * 3 / 2 = 0.15
            (0.0, 1.0, 0.1, 0),
            (1.0, 1.0, 0.0, 0),
        ];
        for (timeout_s, cores, cpu_s, want) in cases {
            assert_eq!(
                limit_constant(timeout_s, cores, cpu_s),
                want,
                "T={timeout_s} k={cores} S={cpu_s}"
            );
        }
    }

    #[test]
    fn ps_model_response_time_and_504_share() {
        // (cpu s, in flight, cores, response s)
        for (cpu_s, n, k, want) in [
            (0.05, 5, 1.0, 0.25),
            (0.05, 6, 1.0, 0.30),
            (0.05, 1, 2.0, 0.05),
            (0.05, 4, 2.0, 0.1),
        ] {
            assert!(
                (response_s(cpu_s, n, k) - want).abs() < 1e-12,
                "{cpu_s} {n} {k}"
            );
        }
        let constant = CpuWork::Constant(0.05);
        assert_eq!(share_504(0.29, 1.0, constant, 5), 0.0);
        assert_eq!(share_504(0.29, 1.0, constant, 6), 1.0);
        // Exponential, mean 50 ms, L = 5 on one core: P(S > 58 ms) = e^-1.16.
        let exp = share_504(0.29, 1.0, CpuWork::Exponential(0.05), 5);
        assert!((exp - (-1.16f64).exp()).abs() < 1e-9, "{exp}");
    }

    #[test]
    fn ps_model_distributions_use_the_bound_quantile() {
        assert_eq!(limit(0.29, 1.0, CpuWork::Constant(0.05), 0.01).limit, 5);
        // Exponential mean 10 ms: q99 = 46.05 ms; 0.29 / 0.04605 = 6.3 -> 6.
        let m = limit(0.29, 1.0, CpuWork::Exponential(0.01), 0.01);
        assert!((m.cpu_s - 0.01 * 100f64.ln()).abs() < 1e-9);
        assert_eq!(m.limit, 6);
        // Log-normal: the median is mean * exp(-sigma^2 / 2); q at 0.5 equals it.
        let ln = CpuWork::Lognormal {
            mean_s: 0.05,
            sigma: 0.5,
        };
        assert!((ln.quantile_s(0.5) - 0.05 * (-0.125f64).exp()).abs() < 1e-9);
        // q99 = median * exp(2.3263 * 0.5) = 0.04412 * 3.2003 = 0.1412 s.
        assert!(
            (ln.quantile_s(0.99) - 0.141_2).abs() < 1e-3,
            "{}",
            ln.quantile_s(0.99)
        );
        assert_eq!(limit(1.0, 1.0, ln, 0.01).limit, 7);
        // The quantile and the share agree: at L*, the share is within the bound.
        let at = share_504(1.0, 1.0, ln, 7);
        let past = share_504(1.0, 1.0, ln, 8);
        assert!(at <= 0.01 && past > 0.01, "{at} {past}");
    }
}
