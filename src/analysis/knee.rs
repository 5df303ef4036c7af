//! Kneedle (Satopaa, Albrecht, Irwin, Raghavan, 2011): the knee of a curve.
//!
//! Takes points of a finished sweep (for example P99 against offered load, or
//! achieved throughput against offered load) and hands back the point where
//! the curve bends most, or `None` when there is no clear knee. It does not
//! smooth the data: a sweep has few points and each is already an aggregate
//! over seconds of load, so smoothing would move the knee more than it helps.
//!
//! The method: normalise x and y to [0, 1]; turn the curve into the
//! concave-increasing case by flipping axes as the shape asks; take the
//! difference curve `d = y - x`; every local maximum of `d` is a candidate,
//! and it is declared a knee when `d` falls below the threshold
//! `d_max - S * mean(dx)` before the next local maximum. `S` is the
//! sensitivity: small values find knees early and eagerly, large values only
//! sharp ones (the paper recommends 1).

/// How the curve bends on either side of its knee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Rises ever faster: flat, then steep (latency against load).
    ConvexIncreasing,
    /// Rises then flattens (throughput against offered load).
    ConcaveIncreasing,
    /// Falls ever slower: steep, then flat.
    ConvexDecreasing,
    /// Falls ever faster: flat, then steep fall.
    ConcaveDecreasing,
}

/// The knee found on a curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knee {
    /// Index of the knee point in the input.
    pub index: usize,
    /// Its x value (for example offered load, per second).
    pub x: f64,
    /// Its y value (for example P99, in the caller's unit).
    pub y: f64,
    /// Height of the normalised difference curve at the knee, in [0, 1]:
    /// how far the curve bends away from its chord. Near 0 is a weak knee.
    pub strength: f64,
}

/// Finds the knee of the curve through `(x[i], y[i])` with sensitivity `s`
/// (1.0 is the paper's default).
///
/// `x` need not be sorted, but needs at least three distinct values; points
/// with a non-finite coordinate are ignored. Returns `None` when there are
/// too few points, when y is constant, or when no local maximum of the
/// difference curve is followed by a drop below its threshold.
pub fn kneedle(x: &[f64], y: &[f64], shape: Shape, s: f64) -> Option<Knee> {
    // Keep finite points, remembering their input index, sorted by x.
    let mut pts: Vec<(usize, f64, f64)> = x
        .iter()
        .zip(y)
        .enumerate()
        .filter(|(_, (a, b))| a.is_finite() && b.is_finite())
        .map(|(i, (a, b))| (i, *a, *b))
        .collect();
    pts.sort_by(|a, b| a.1.total_cmp(&b.1));
    pts.dedup_by(|a, b| a.1 == b.1);
    let n = pts.len();
    if n < 3 || !s.is_finite() || s < 0.0 {
        return None;
    }
    let (x_min, x_max) = (pts[0].1, pts[n - 1].1);
    let y_min = pts.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let y_max = pts.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
    if x_max <= x_min || y_max <= y_min {
        return None;
    }
    // Normalise, then flip into the concave-increasing case (as the
    // reference implementation, kneed, does).
    let (flip_x, flip_y) = match shape {
        Shape::ConcaveIncreasing => (false, false),
        Shape::ConcaveDecreasing => (true, false),
        Shape::ConvexDecreasing => (false, true),
        Shape::ConvexIncreasing => (true, true),
    };
    let mut norm: Vec<(usize, f64, f64)> = pts
        .iter()
        .map(|&(i, a, b)| {
            let xn = (a - x_min) / (x_max - x_min);
            let yn = (b - y_min) / (y_max - y_min);
            (
                i,
                if flip_x { 1.0 - xn } else { xn },
                if flip_y { 1.0 - yn } else { yn },
            )
        })
        .collect();
    if flip_x {
        norm.reverse();
    }
    let diff: Vec<f64> = norm.iter().map(|p| p.2 - p.1).collect();
    // Mean spacing of normalised x: exactly 1 / (n - 1).
    let mean_dx = 1.0 / (n - 1) as f64;
    let is_local_max =
        |j: usize| j > 0 && j + 1 < n && diff[j] >= diff[j - 1] && diff[j] > diff[j + 1];
    let mut j = 1;
    while j + 1 < n {
        if is_local_max(j) {
            let threshold = diff[j] - s * mean_dx;
            let mut k = j + 1;
            while k < n {
                if diff[k] < threshold {
                    let (index, _, _) = norm[j];
                    return Some(Knee {
                        index,
                        x: x[index],
                        y: y[index],
                        strength: diff[j],
                    });
                }
                if is_local_max(k) {
                    break;
                }
                k += 1;
            }
            j = k;
        } else {
            j += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linspace(from: f64, to: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| from + (to - from) * i as f64 / (n - 1) as f64)
            .collect()
    }

    /// The paper's Figure 2 as kneed tests it: y = -1/(x + 0.1) + 5 at ten
    /// points on [0, 1]; the knee is at x = 2/9 (about 0.22).
    #[test]
    fn finds_the_papers_knee() {
        let x = linspace(0.0, 1.0, 10);
        let y: Vec<f64> = x.iter().map(|v| -1.0 / (v + 0.1) + 5.0).collect();
        let knee = kneedle(&x, &y, Shape::ConcaveIncreasing, 1.0).expect("a knee");
        assert!((knee.x - 2.0 / 9.0).abs() < 1e-9, "{knee:?}");
    }

    /// An M/M/1-like latency curve: service 1 ms, capacity 1000/s; the knee
    /// lies where the queueing term starts to dominate, below capacity.
    #[test]
    fn latency_against_load_has_its_knee_before_capacity() {
        let load = linspace(100.0, 1300.0, 13);
        let p99_ms: Vec<f64> = load
            .iter()
            .map(|&l| {
                if l < 1000.0 {
                    // P99 of M/M/1 response time: ln(100) / (mu - lambda).
                    4.6 / (1.0 - l / 1000.0)
                } else {
                    // Overload: the queue grows with the step; seconds.
                    4.6 * 200.0 + (l - 1000.0) * 10.0
                }
            })
            .collect();
        let knee = kneedle(&load, &p99_ms, Shape::ConvexIncreasing, 1.0).expect("a knee");
        assert!(
            (850.0..=1000.0).contains(&knee.x),
            "knee at {} ({knee:?})",
            knee.x
        );
        // The same curve, shuffled, gives the same knee and its input index.
        let order = [5, 0, 12, 3, 7, 1, 9, 2, 11, 4, 6, 10, 8];
        let xs: Vec<f64> = order.iter().map(|&i| load[i]).collect();
        let ys: Vec<f64> = order.iter().map(|&i| p99_ms[i]).collect();
        let shuffled = kneedle(&xs, &ys, Shape::ConvexIncreasing, 1.0).expect("a knee");
        assert_eq!(shuffled.x, knee.x);
        assert_eq!(xs[shuffled.index], knee.x);
    }

    /// Throughput against offered load: the diagonal up to 1000, then flat.
    #[test]
    fn throughput_against_load_bends_at_capacity() {
        let offered = linspace(200.0, 2000.0, 10);
        let achieved: Vec<f64> = offered.iter().map(|&o| o.min(1000.0)).collect();
        let knee = kneedle(&offered, &achieved, Shape::ConcaveIncreasing, 1.0).expect("a knee");
        assert_eq!(knee.x, 1000.0, "{knee:?}");
        assert!(knee.strength > 0.3);
    }

    #[test]
    fn decreasing_shapes_find_their_knees() {
        let x = linspace(1.0, 10.0, 10);
        // Falls steeply, then flat from x = 4: convex decreasing.
        let y: Vec<f64> = x.iter().map(|&v| (4.0 - v).max(0.0) * 10.0).collect();
        let knee = kneedle(&x, &y, Shape::ConvexDecreasing, 1.0).expect("a knee");
        assert_eq!(knee.x, 4.0, "{knee:?}");
        // Flat, then falls steeply from x = 7: concave decreasing.
        let y: Vec<f64> = x
            .iter()
            .map(|&v| 100.0 - (v - 7.0).max(0.0) * 30.0)
            .collect();
        let knee = kneedle(&x, &y, Shape::ConcaveDecreasing, 1.0).expect("a knee");
        assert_eq!(knee.x, 7.0, "{knee:?}");
    }

    /// Sensitivity: a mild bend is a knee at S = 1 and none at a high S.
    #[test]
    fn sensitivity_trades_eagerness_for_certainty() {
        let x = linspace(0.0, 10.0, 11);
        let y: Vec<f64> = x.iter().map(|&v| v + (v - 5.0).max(0.0) * 0.8).collect();
        assert_eq!(
            kneedle(&x, &y, Shape::ConvexIncreasing, 1.0).map(|k| k.x),
            Some(5.0)
        );
        assert_eq!(kneedle(&x, &y, Shape::ConvexIncreasing, 10.0), None);
    }

    #[test]
    fn no_knee_where_there_is_none() {
        let x = linspace(0.0, 10.0, 11);
        // A straight line has no local maximum of the difference curve.
        let line: Vec<f64> = x.iter().map(|v| 3.0 * v + 1.0).collect();
        assert_eq!(kneedle(&x, &line, Shape::ConvexIncreasing, 1.0), None);
        // Constant y, too few points, non-finite values.
        assert_eq!(kneedle(&x, &[2.0; 11], Shape::ConvexIncreasing, 1.0), None);
        assert_eq!(
            kneedle(&[1.0, 2.0], &[1.0, 5.0], Shape::ConvexIncreasing, 1.0),
            None
        );
        assert_eq!(
            kneedle(
                &[1.0, f64::NAN, 3.0],
                &[1.0, 2.0, 9.0],
                Shape::ConvexIncreasing,
                1.0
            ),
            None
        );
    }
}
