//! The knee of the sorted curve: where the L turns from its base into its branch.
//!
//! Scale the sorted curve to the unit square, `x_i = i / (n - 1)` and
//! `y_i = (s[i] - s[0]) / (s[n-1] - s[0])`. On an L-shaped curve the base hugs the
//! x axis and the branch climbs at the right edge, so the point farthest below the
//! chord from `(0, 0)` to `(1, 1)`, the maximum of `x_i - y_i`, is the corner of the
//! L (the "knee" of Satopää et al., 2011, on a convex increasing curve). There the
//! curve's slope crosses the chord's. The scores above the knee point are the
//! anomalies.
//!
//! One pass after the sort; no fit and no parameter.

use crate::sort::Score;

/// The knee of a sorted curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knee {
    /// `k`: the knee point `(k, s[k])`, the last normal score.
    pub index: usize,
    /// `j`: the first rank with `s[j] > s[k]`; `sorted[j..]` are the anomalies.
    pub breakpoint: usize,
    /// `sorted[j]`: scores at or above it are anomalous.
    pub threshold: f64,
    /// `x_k - y_k`, the distance below the chord in unit-square coordinates
    /// (times `sqrt(2)`), in `[0, 1)`.
    pub depth: f64,
}

/// The knee of the sorted curve and the split above it.
///
/// ```text
/// x_i = i / (n - 1),   y_i = (s[i] - s[0]) / (s[n-1] - s[0])
/// k   = argmax_i (x_i - y_i)           (the first maximum)
/// anomalies: s > s[k]
/// ```
///
/// `None` when there is no split: fewer than 3 scores, all scores equal, or no
/// point below the chord (a straight or concave curve, `x_i - y_i <= 0` for all i).
/// Within a run of equal scores `x - y` grows with `i`, so the knee is always the
/// last of its run and the split falls between distinct scores.
///
/// # Examples
/// ```
/// use ltrend::knee::knee;
/// let mut sorted: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.01).collect();
/// sorted.extend([5.0, 6.0, 7.0]);
/// let found = knee(&sorted).unwrap();
/// assert_eq!((found.index, found.breakpoint, found.threshold), (19, 20, 5.0));
/// ```
pub fn knee<T: Score>(sorted: &[T]) -> Option<Knee> {
    let n = sorted.len();
    if n < 3 {
        return None;
    }
    let low = sorted[0].to_f64();
    let range = sorted[n - 1].to_f64() - low;
    if range <= 0.0 {
        return None;
    }
    let chord = Chord::new(n, low, range);
    let (index, depth) = chord.deepest(sorted.iter().map(|z| z.to_f64()).enumerate())?;
    if depth <= 0.0 {
        return None;
    }
    let at = sorted[index].to_f64();
    // The last point sits on the chord (depth 0), so a positive maximum is never
    // the last point, and a larger score exists above it.
    let breakpoint = index + sorted[index..].partition_point(|z| z.to_f64() <= at);
    Some(Knee {
        index,
        breakpoint,
        threshold: sorted[breakpoint].to_f64(),
        depth,
    })
}

/// The chord of a sorted curve of `n` points from `(0, low)` to `(n - 1, low + range)`,
/// in the unit-square coordinates that [`knee`] measures depths in.
///
/// Kept apart from [`knee`] so that a caller holding only part of the curve (a
/// bucket of a distributed sort, at its global ranks) measures every depth with
/// the same floating-point expression, bit for bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chord {
    span: f64,
    low: f64,
    range: f64,
}

impl Chord {
    /// The chord of `n` points whose first and last values are `low` and `low + range`.
    pub fn new(n: usize, low: f64, range: f64) -> Chord {
        Chord {
            span: n.saturating_sub(1) as f64,
            low,
            range,
        }
    }

    /// `i / (n - 1) - (y - low) / range`: how far the point `(i, y)` lies below the chord.
    #[inline]
    pub fn depth(&self, i: usize, y: f64) -> f64 {
        i as f64 / self.span - (y - self.low) / self.range
    }

    /// The first deepest of the points `(i, y)` (ascending `i`) and its depth.
    ///
    /// ```text
    /// argmax_i depth(i, y_i),  ties to the first
    /// ```
    ///
    /// # Examples
    /// ```
    /// use ltrend::knee::Chord;
    /// let chord = Chord::new(5, 0.0, 4.0);
    /// let points = [0.0, 0.0, 0.0, 1.0, 4.0].into_iter().enumerate();
    /// assert_eq!(chord.deepest(points), Some((2, 0.5)));
    /// ```
    pub fn deepest(&self, points: impl IntoIterator<Item = (usize, f64)>) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        for (i, y) in points {
            let depth = self.depth(i, y);
            if best.is_none_or(|(_, b)| depth > b) {
                best = Some((i, depth));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_l_is_cut_at_its_corner() {
        let mut sorted: Vec<f64> = (0..10).map(f64::from).collect();
        sorted.extend([100.0, 200.0, 300.0]);
        let found = knee(&sorted).unwrap();
        // depth_i = i/12 - i/300 grows up to i = 9, then falls: 10/12 - 100/300 < 9/12 - 9/300.
        assert_eq!(found.index, 9);
        assert_eq!(found.threshold, 100.0);
        let expected = 9.0 / 12.0 - 9.0 / 300.0;
        assert!((found.depth - expected).abs() < 1e-15);
    }

    #[test]
    fn straight_concave_and_flat_curves_have_no_knee() {
        assert_eq!(knee(&[1.0, 2.0, 3.0, 4.0]), None);
        assert_eq!(knee(&[0.0, 5.0, 6.0, 6.5]), None);
        assert_eq!(knee(&[3.0; 5]), None);
        assert_eq!(knee(&[1.0, 2.0]), None);
    }

    #[test]
    fn ties_at_the_knee_stay_normal() {
        let sorted = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 10.0];
        let found = knee(&sorted).unwrap();
        // x - y: 0, 1/6, 2/6, 3/6, 4/6 - 0.1, 5/6 - 0.1, 0; the knee is rank 5.
        assert_eq!((found.index, found.breakpoint), (5, 6));
        assert_eq!(found.threshold, 10.0);
    }

    #[test]
    fn affine_maps_of_the_scores_keep_the_knee() {
        let sorted: Vec<f64> = (0..50).map(|i| (f64::from(i) / 10.0).exp()).collect();
        let base = knee(&sorted).unwrap().index;
        let mapped: Vec<f64> = sorted.iter().map(|v| 1e9 + 3.0 * v).collect();
        assert_eq!(knee(&mapped).unwrap().index, base);
    }
}
