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
//! [`best_breakpoint_in`] runs that scan on a stretch of the curve whose
//! surroundings are given as moments, which is how a distributed sort's buckets
//! find their best breakpoints (`crate::partial_split`).

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

    /// The moments of the union of two disjoint sets of points (Chan et al.'s
    /// pairwise update, extended to the cross moment).
    ///
    /// ```text
    /// n = na + nb;  dx = mean_x(b) - mean_x(a);  dy = mean_y(b) - mean_y(a)
    /// mean_x = mean_x(a) + dx nb / n   (and mean_y alike)
    /// Cxx = Cxx(a) + Cxx(b) + dx dx na nb / n   (Cxy with dx dy, Cyy with dy dy)
    /// ```
    ///
    /// Equal to pushing the points of `other` one by one up to rounding.
    ///
    /// # Examples
    /// ```
    /// use ltrend::two_segment::LineMoments;
    /// let points = [(0.0, 1.0), (1.0, 3.0), (2.0, 4.0), (3.0, 9.0)];
    /// let (mut a, mut b, mut whole) = (LineMoments::EMPTY, LineMoments::EMPTY, LineMoments::EMPTY);
    /// for (i, &(x, y)) in points.iter().enumerate() {
    ///     if i < 1 { a.push(x, y) } else { b.push(x, y) }
    ///     whole.push(x, y);
    /// }
    /// let merged = a.merge(&b);
    /// assert_eq!(merged.count, 4);
    /// assert!((merged.sse() - whole.sse()).abs() < 1e-12);
    /// ```
    pub fn merge(&self, other: &LineMoments) -> LineMoments {
        if other.count == 0 {
            return *self;
        }
        if self.count == 0 {
            return *other;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let count = self.count + other.count;
        let total = count as f64;
        let dx = other.mean_x - self.mean_x;
        let dy = other.mean_y - self.mean_y;
        let weight = na * nb / total;
        LineMoments {
            count,
            mean_x: self.mean_x + dx * (nb / total),
            mean_y: self.mean_y + dy * (nb / total),
            cxx: self.cxx + other.cxx + dx * dx * weight,
            cxy: self.cxy + other.cxy + dx * dy * weight,
            cyy: self.cyy + other.cyy + dy * dy * weight,
        }
    }
}

/// A stretch of the sorted curve of `n` points: the ranks `offset..offset + len`,
/// with the moments of the points before it and after it.
///
/// The whole curve is the stretch at offset 0 with nothing around it; a bucket
/// of a distributed sort is a stretch whose surroundings come from merged
/// moments of the other buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stretch {
    pub offset: usize,
    pub len: usize,
    pub n: usize,
    /// Moments of the points at ranks `0..offset`.
    pub before: LineMoments,
    /// Moments of the points at ranks `offset + len..n`.
    pub after: LineMoments,
}

/// The best breakpoint of [`two_segment`] among the ranks of a stretch.
///
/// `y(j)` is the (centred) score at local index `j` (global rank `offset + j`),
/// and `rises(j)` says whether it is above the score at the rank before it. Returns
/// the global breakpoint, its total squared error and the moments left of it;
/// ties go to the first breakpoint, so the best over the stretches of a curve,
/// ties to the lowest, is the best over the curve. The errors right of each rank
/// are built backwards from `after` and those left of it forwards from `before`,
/// so for the whole curve this is exactly the one-pass-each-way scan.
pub fn best_breakpoint_in(
    stretch: &Stretch,
    y: impl Fn(usize) -> f64,
    rises: impl Fn(usize) -> bool,
) -> Option<(usize, f64, LineMoments)> {
    let Stretch {
        offset,
        len,
        n,
        before,
        after,
    } = *stretch;
    // right_sse[j]: the error of the line on the ranks offset + j .. n.
    let mut right_sse = vec![0.0; len];
    let mut right = after;
    for j in (0..len).rev() {
        right.push((offset + j) as f64, y(j));
        right_sse[j] = right.sse();
    }
    let mut left = before;
    let mut best: Option<(usize, f64, LineMoments)> = None;
    for (j, &right_error) in right_sse.iter().enumerate() {
        let k = offset + j;
        if k >= MIN_SEGMENT && k + MIN_SEGMENT <= n && rises(j) {
            let total = left.sse() + right_error;
            if best.is_none_or(|(_, b, _)| total < b) {
                best = Some((k, total, left));
            }
        }
        left.push(k as f64, y(j));
    }
    best
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
    let whole = Stretch {
        offset: 0,
        len: n,
        n,
        before: LineMoments::EMPTY,
        after: LineMoments::EMPTY,
    };
    let rises = |j: usize| j > 0 && sorted[j - 1].to_f64() < sorted[j].to_f64();
    let (k, sse, lower) = best_breakpoint_in(&whole, value, rises)?;
    // The right-hand moments at k, pushed in the order the scan pushed them.
    let mut upper = LineMoments::EMPTY;
    for i in (k..n).rev() {
        upper.push(i as f64, value(i));
    }
    let shift = |(a, b): (f64, f64)| (a + center, b);
    Some(TwoSegmentFit {
        breakpoint: k,
        threshold: sorted[k].to_f64(),
        sse,
        lower: shift(lower.line()),
        upper: shift(upper.line()),
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
