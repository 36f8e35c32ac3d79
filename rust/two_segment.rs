//! The two-segment (L-shaped) least-squares fit of the sorted curve.
//!
//! The L-trend prior says that the sorted scores form a long flat base and a short
//! steep branch. This method fits that shape directly: one least-squares line to
//! `(i, s[i])` for `i < k` and another for `i >= k`, for every breakpoint `k`, and
//! keeps the breakpoint with the smallest total squared error. The scores from the
//! breakpoint on are the anomalies.
//!
//! Exactness and cost: each side's error comes from bivariate moment states
//! `(count, mean_x, mean_y, Cxx, Cxy, Cyy)` built point by point with Welford's
//! update (never from raw power sums, which lose every digit at an offset of 1e9),
//! once from the left and once from the right, so every breakpoint is scored
//! exactly in O(n) after the sort, with O(n) memory for the right-hand errors.

use crate::sort::Score;

/// The fewest points on each side of a breakpoint: a line needs two points, and
/// with two it fits them exactly, so no side can be a single unexplained point.
pub const MIN_SEGMENT: usize = 2;

/// Moments of a set of points `(x, y)` for a least-squares line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineMoments {
    pub count: usize,
    pub mean_x: f64,
    pub mean_y: f64,
    /// `sum (x - mean_x)^2`.
    pub cxx: f64,
    /// `sum (x - mean_x) (y - mean_y)`.
    pub cxy: f64,
    /// `sum (y - mean_y)^2`.
    pub cyy: f64,
}

impl LineMoments {
    /// The state of the empty set.
    pub const EMPTY: LineMoments = LineMoments {
        count: 0,
        mean_x: 0.0,
        mean_y: 0.0,
        cxx: 0.0,
        cxy: 0.0,
        cyy: 0.0,
    };

    /// Add one point (Welford's update, extended to the cross moment).
    ///
    /// ```text
    /// n += 1;  dx = x - mean_x;  dy = y - mean_y
    /// mean_x += dx / n;  mean_y += dy / n
    /// Cxx += dx (x - mean_x);  Cxy += dx (y - mean_y);  Cyy += dy (y - mean_y)
    /// ```
    #[inline]
    pub fn push(&mut self, x: f64, y: f64) {
        self.count += 1;
        let n = self.count as f64;
        let dx = x - self.mean_x;
        let dy = y - self.mean_y;
        self.mean_x += dx / n;
        self.mean_y += dy / n;
        self.cxx += dx * (x - self.mean_x);
        self.cxy += dx * (y - self.mean_y);
        self.cyy += dy * (y - self.mean_y);
    }

    /// Sum of squared residuals of the least-squares line through the points.
    ///
    /// ```text
    /// SSE = Cyy - Cxy^2 / Cxx        (0 when fewer than two points)
    /// ```
    ///
    /// # Examples
    /// ```
    /// use ltrend::two_segment::LineMoments;
    /// let mut m = LineMoments::EMPTY;
    /// for (x, y) in [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)] {
    ///     m.push(x, y);
    /// }
    /// assert!(m.sse().abs() < 1e-12); // collinear points
    /// ```
    pub fn sse(&self) -> f64 {
        if self.count < 2 || self.cxx <= 0.0 {
            return 0.0;
        }
        (self.cyy - self.cxy * self.cxy / self.cxx).max(0.0)
    }

    /// Slope and intercept `(a, b)` of the line `y = a + b x`; `(mean_y, 0)` for
    /// fewer than two points.
    pub fn line(&self) -> (f64, f64) {
        if self.count < 2 || self.cxx <= 0.0 {
            return (self.mean_y, 0.0);
        }
        let slope = self.cxy / self.cxx;
        (self.mean_y - slope * self.mean_x, slope)
    }
}

/// The chosen breakpoint of a two-segment fit and both lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoSegmentFit {
    /// `k`: `sorted[k..]` are the anomalies; `sorted[k - 1] < sorted[k]`.
    pub breakpoint: usize,
    /// `sorted[k]`: scores at or above it are anomalous.
    pub threshold: f64,
    /// Total squared error of the two lines at `k`.
    pub sse: f64,
    /// `(intercept, slope)` of the line through `(i, s[i])`, `i < k`.
    pub lower: (f64, f64),
    /// `(intercept, slope)` of the line through `(i, s[i])`, `i >= k`.
    pub upper: (f64, f64),
}

/// Fit two least-squares lines to the sorted curve, split at the best breakpoint.
///
/// ```text
/// SSE(k) = SSE of the LS line on (i, s[i]), i < k  +  SSE of the LS line on i >= k
/// k*     = argmin SSE(k)  over  2 <= k <= n - 2  with  s[k-1] < s[k]
/// ```
///
/// Only cuts between distinct scores are candidates, so the split is the same as
/// `s >= s[k*]`. Ties in `SSE` go to the smallest `k` (the larger anomaly set).
/// `None` when no breakpoint exists (fewer than 4 scores, or no two distinct
/// scores with two points on each side). The ranks are used as they are: the
/// chosen breakpoint does not depend on an affine rescaling of the ranks or scores.
///
/// # Examples
/// ```
/// use ltrend::two_segment::two_segment;
/// let mut sorted: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.01).collect();
/// sorted.extend([5.0, 6.0, 7.0]);
/// let fit = two_segment(&sorted).unwrap();
/// assert_eq!(fit.breakpoint, 20);
/// assert_eq!(fit.threshold, 5.0);
/// ```
pub fn two_segment<T: Score>(sorted: &[T]) -> Option<TwoSegmentFit> {
    let n = sorted.len();
    if n < 2 * MIN_SEGMENT {
        return None;
    }
    // Centre the scores on their median so that a huge offset does not enter the
    // moments (Welford is stable, but centring keeps the means small as well).
    let center = sorted[n / 2].to_f64();
    let value = |i: usize| sorted[i].to_f64() - center;
    // right[k]: moments of the points k..n.
    let mut right = vec![LineMoments::EMPTY; n + 1];
    for i in (0..n).rev() {
        let mut m = right[i + 1];
        m.push(i as f64, value(i));
        right[i] = m;
    }
    let mut left = LineMoments::EMPTY;
    let mut best: Option<(usize, f64, LineMoments)> = None;
    for k in 0..=n - MIN_SEGMENT {
        if k >= MIN_SEGMENT && sorted[k - 1].to_f64() < sorted[k].to_f64() {
            let total = left.sse() + right[k].sse();
            if best.is_none_or(|(_, b, _)| total < b) {
                best = Some((k, total, left));
            }
        }
        left.push(k as f64, value(k));
    }
    best.map(|(k, sse, lower)| {
        let shift = |(a, b): (f64, f64)| (a + center, b);
        TwoSegmentFit {
            breakpoint: k,
            threshold: sorted[k].to_f64(),
            sse,
            lower: shift(lower.line()),
            upper: shift(right[k].line()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SSE of the least-squares line through `(x, y)` by the normal equations.
    fn direct_sse(points: &[(f64, f64)]) -> f64 {
        let n = points.len() as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let b = sxy / sxx;
        points
            .iter()
            .map(|p| {
                let r = p.1 - (my + b * (p.0 - mx));
                r * r
            })
            .sum()
    }

    fn brute_force(sorted: &[f64]) -> Option<usize> {
        let n = sorted.len();
        let points: Vec<(f64, f64)> = sorted
            .iter()
            .enumerate()
            .map(|(i, &y)| (i as f64, y))
            .collect();
        let mut best: Option<(usize, f64)> = None;
        for k in MIN_SEGMENT..=n.saturating_sub(MIN_SEGMENT) {
            if sorted[k - 1] == sorted[k] {
                continue;
            }
            let total = direct_sse(&points[..k]) + direct_sse(&points[k..]);
            if best.is_none_or(|(_, b)| total < b - 1e-9 * b.abs().max(1e-300)) {
                best = Some((k, total));
            }
        }
        best.map(|(k, _)| k)
    }

    #[test]
    fn matches_brute_force_on_l_shapes() {
        let mut sorted: Vec<f64> = (0..60).map(|i| (f64::from(i) * 0.37).sin() + 3.0).collect();
        sorted.extend([9.0, 11.0, 14.0, 20.0]);
        sorted.sort_by(f64::total_cmp);
        assert_eq!(
            two_segment(&sorted).map(|f| f.breakpoint),
            brute_force(&sorted)
        );
    }

    #[test]
    fn a_perfect_l_is_split_at_its_corner() {
        // Base 0, 1, ..., 9 (slope 1) and branch 100, 200, 300 (slope 100).
        let mut sorted: Vec<f64> = (0..10).map(f64::from).collect();
        sorted.extend([100.0, 200.0, 300.0]);
        let fit = two_segment(&sorted).unwrap();
        assert_eq!(fit.breakpoint, 10);
        assert!(fit.sse.abs() < 1e-9);
        assert!((fit.lower.1 - 1.0).abs() < 1e-12 && (fit.upper.1 - 100.0).abs() < 1e-9);
        assert!((fit.upper.0 - (100.0 - 100.0 * 10.0)).abs() < 1e-6);
    }

    #[test]
    fn needs_two_distinct_values_and_two_points_a_side() {
        assert_eq!(two_segment(&[1.0, 2.0, 3.0]), None);
        assert_eq!(two_segment(&[4.0; 9]), None);
        // The only distinct cut leaves one point on top: not a candidate.
        assert_eq!(two_segment(&[0.0, 0.0, 0.0, 0.0, 1.0]), None);
        assert_eq!(
            two_segment(&[0.0, 0.0, 0.0, 1.0, 1.0]).map(|f| f.breakpoint),
            Some(3)
        );
    }

    #[test]
    fn keeps_its_choice_at_a_huge_offset() {
        let mut base: Vec<f64> = (0..40).map(|i| f64::from(i % 7) * 0.1).collect();
        base.extend([3.0, 3.5, 4.5]);
        base.sort_by(f64::total_cmp);
        let plain = two_segment(&base).unwrap().breakpoint;
        let shifted: Vec<f64> = base.iter().map(|v| v + 1e9).collect();
        assert_eq!(two_segment(&shifted).unwrap().breakpoint, plain);
    }
}
