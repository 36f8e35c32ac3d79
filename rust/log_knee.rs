//! The knee of the sorted curve read on a log scale: where the L turns, judged by
//! the shape of the base rather than by the height of the largest scores.
//!
//! The plain knee (`knee.rs`) scales the curve by its two extreme scores, so a
//! long, steep tail flattens everything below it and the knee sits wherever the
//! base's slope first exceeds the tail-dominated chord. Here each score is first
//! put in units of the curve's spread around its middle and the tail compressed
//! by a signed logarithm:
//!
//! ```text
//! m = median,  u = Q3 - Q1   (or the mean |s - m| when Q3 == Q1)
//! z_i = (s[i] - m) / u,   t_i = sign(z_i) ln(1 + |z_i|)
//! ```
//!
//! and the knee of the curve `(i, t_i)` is taken: the point farthest below its
//! chord. The map is increasing, so the split is still `s > s[k]`, between two
//! distinct scores. One sort-free pass after the sort and two quantiles; no fit,
//! no parameter.

use crate::knee::knee;
use crate::sort::Score;

/// The knee of the sorted curve on the signed-log scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogKnee {
    /// `k`: the knee point, the last normal score.
    pub index: usize,
    /// `j`: the first rank with `t_j > t_k`; `sorted[j..]` are the anomalies.
    pub breakpoint: usize,
    /// `sorted[j]`: scores at or above it are anomalous.
    pub threshold: f64,
    /// `x_k - y_k` of the log curve in unit-square coordinates, in `(0, 1)`.
    pub depth: f64,
    /// `m`, the median of the scores.
    pub center: f64,
    /// `u`, the unit of the log scale (the interquartile range, or the mean
    /// absolute deviation from the median when the quartiles coincide).
    pub unit: f64,
}

/// The quantile of a sorted slice at `p` in `[0, 1]`, by linear interpolation
/// between the ranks around `h = (n - 1) p` (NumPy's default `"linear"` rule).
///
/// # Examples
/// ```
/// use ltrend::log_knee::quantile;
/// assert_eq!(quantile(&[1.0, 2.0, 4.0, 8.0], 0.5), 3.0);
/// assert_eq!(quantile(&[1.0, 2.0, 4.0, 8.0], 0.25), 1.75);
/// ```
pub fn quantile<T: Score>(sorted: &[T], p: f64) -> f64 {
    quantile_by(sorted.len(), p, |i| sorted[i].to_f64())
}

/// [`quantile`] of a sorted curve of `len` scores known only through `at`, the
/// score at a rank (for example the order statistics that a distributed sort
/// gathered from [`quantile_ranks`]). `len` must be positive.
///
/// # Examples
/// ```
/// use ltrend::log_knee::quantile_by;
/// let sorted = [1.0, 2.0, 4.0, 8.0];
/// assert_eq!(quantile_by(4, 0.25, |i| sorted[i]), 1.75);
/// ```
pub fn quantile_by(len: usize, p: f64, at: impl Fn(usize) -> f64) -> f64 {
    let (low, fraction) = quantile_position(len, p);
    let value = at(low);
    if low + 1 >= len {
        return value;
    }
    value + fraction * (at(low + 1) - value)
}

/// The rank below the `p`-quantile of `len > 0` sorted scores and how far past
/// it the quantile lies, as a fraction of the step to the next rank.
fn quantile_position(len: usize, p: f64) -> (usize, f64) {
    let h = (len - 1) as f64 * p;
    let low = h.floor();
    (low as usize, h - low)
}

/// The probabilities of the quantiles that [`log_scale`] reads: Q1, the median, Q3.
pub const QUARTILES: [f64; 3] = [0.25, 0.5, 0.75];

/// The ranks whose scores [`log_scale`] reads on a sorted curve of `len > 0`
/// scores (those around each of [`QUARTILES`]), ascending and distinct.
///
/// # Examples
/// ```
/// use ltrend::log_knee::quantile_ranks;
/// assert_eq!(quantile_ranks(5), vec![1, 2, 3, 4]);
/// assert_eq!(quantile_ranks(4), vec![0, 1, 2, 3]);
/// ```
pub fn quantile_ranks(len: usize) -> Vec<usize> {
    let mut ranks: Vec<usize> = QUARTILES
        .iter()
        .flat_map(|&p| {
            let (low, _) = quantile_position(len, p);
            [low, (low + 1).min(len - 1)]
        })
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    ranks
}

/// The centre `m` and unit `u` of the signed-log scale, or `None` when the
/// scores have no spread (all equal, or a spread too small to divide by).
///
/// `u = Q3 - Q1`, or the mean absolute deviation from the median when the
/// quartiles coincide (more than half the scores tied).
///
/// # Examples
/// ```
/// use ltrend::log_knee::log_scale;
/// assert_eq!(log_scale(&[0.0, 1.0, 2.0, 3.0, 4.0]), Some((2.0, 2.0)));
/// assert_eq!(log_scale(&[0.0, 0.0, 0.0, 0.0, 5.0]), Some((0.0, 1.0)));
/// assert_eq!(log_scale(&[3.0, 3.0, 3.0]), None);
/// ```
pub fn log_scale<T: Score>(sorted: &[T]) -> Option<(f64, f64)> {
    if sorted.is_empty() {
        return None;
    }
    log_scale_by(
        sorted.len(),
        |i| sorted[i].to_f64(),
        |center| absolute_deviation(sorted, center),
    )
}

/// `sum |s - center|` over `values`, added in their order.
pub fn absolute_deviation<T: Score>(values: &[T], center: f64) -> f64 {
    values.iter().map(|z| (z.to_f64() - center).abs()).sum()
}

/// [`log_scale`] of a sorted curve of `len > 0` scores known through `at`, the
/// score at a rank; `deviation(center)`, the sum of `|s - center|` over all the
/// scores, is asked for only when the quartiles coincide.
///
/// # Examples
/// ```
/// use ltrend::log_knee::log_scale_by;
/// let sorted = [0.0, 0.0, 0.0, 0.0, 5.0];
/// let total = |c: f64| sorted.iter().map(|z| (z - c).abs()).sum::<f64>();
/// assert_eq!(log_scale_by(5, |i| sorted[i], total), Some((0.0, 1.0)));
/// ```
pub fn log_scale_by(
    len: usize,
    at: impl Fn(usize) -> f64,
    deviation: impl FnOnce(f64) -> f64,
) -> Option<(f64, f64)> {
    let [q1, median, q3] = QUARTILES;
    let center = quantile_by(len, median, &at);
    let mut unit = quantile_by(len, q3, &at) - quantile_by(len, q1, &at);
    if unit <= 0.0 {
        unit = deviation(center) / len as f64;
    }
    (unit > 0.0 && unit.is_finite()).then_some((center, unit))
}

/// `sign(z) ln(1 + |z|)` of `z = (value - center) / unit`.
///
/// When `z` overflows (a unit far below the distance), the same value is read as
/// `ln|value - center| - ln(unit)`, to which `ln(1 + |z|)` is equal there.
///
/// # Examples
/// ```
/// use ltrend::log_knee::signed_log;
/// assert_eq!(signed_log(3.0, 1.0, 2.0), 2.0_f64.ln());
/// assert_eq!(signed_log(-1.0, 1.0, 2.0), -(2.0_f64.ln()));
/// assert_eq!(signed_log(1.0, 1.0, 2.0), 0.0);
/// ```
pub fn signed_log(value: f64, center: f64, unit: f64) -> f64 {
    let distance = value - center;
    let z = distance / unit;
    let magnitude = if z.is_finite() {
        z.abs().ln_1p()
    } else {
        distance.abs().ln() - unit.ln()
    };
    magnitude.copysign(distance)
}

/// The knee of the sorted curve on the signed-log scale and the split above it.
///
/// ```text
/// t_i = signed_log(s[i], median, Q3 - Q1)
/// k   = argmax_i (i/(n-1) - (t_i - t_0)/(t_{n-1} - t_0))   (the first maximum)
/// anomalies: s > s[k]
/// ```
///
/// `None` when there is no split: fewer than 3 scores, no spread, or no point of
/// the log curve below its chord. Scores should lie within `2^±400` (as
/// [`crate::method::fit_method`] ensures), so that `value - center` is finite.
///
/// # Examples
/// ```
/// use ltrend::log_knee::log_knee;
/// let mut sorted: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.01).collect();
/// sorted.extend([5.0, 6.0, 7.0]);
/// let found = log_knee(&sorted).unwrap();
/// assert_eq!((found.breakpoint, found.threshold), (20, 5.0));
/// ```
pub fn log_knee<T: Score>(sorted: &[T]) -> Option<LogKnee> {
    if sorted.len() < 3 {
        return None;
    }
    let (center, unit) = log_scale(sorted)?;
    let curve: Vec<f64> = sorted
        .iter()
        .map(|z| signed_log(z.to_f64(), center, unit))
        .collect();
    // The map is increasing, so the log curve is sorted and a split between two
    // distinct log values is one between two distinct scores.
    let found = knee(&curve)?;
    Some(LogKnee {
        index: found.index,
        breakpoint: found.breakpoint,
        threshold: sorted[found.breakpoint].to_f64(),
        depth: found.depth,
        center,
        unit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let sorted = [0.0, 10.0, 20.0, 30.0, 40.0];
        assert_eq!(quantile(&sorted, 0.0), 0.0);
        assert_eq!(quantile(&sorted, 1.0), 40.0);
        assert_eq!(quantile(&sorted, 0.25), 10.0);
        assert_eq!(quantile(&sorted, 0.6), 24.0);
    }

    #[test]
    fn the_log_curve_is_the_knee_of_signed_logs() {
        let sorted = [0.0, 1.0, 2.0, 3.0, 4.0, 40.0];
        // median 2.5, Q1 1.25, Q3 3.75, unit 2.5.
        let found = log_knee(&sorted).unwrap();
        assert_eq!((found.center, found.unit), (2.5, 2.5));
        let t: Vec<f64> = sorted.iter().map(|&v| signed_log(v, 2.5, 2.5)).collect();
        let plain = knee(&t).unwrap();
        assert_eq!(
            (found.index, found.breakpoint),
            (plain.index, plain.breakpoint)
        );
        assert_eq!(found.threshold, sorted[found.breakpoint]);
        assert_eq!(found.breakpoint, 5);
    }

    #[test]
    fn a_far_score_does_not_hide_the_branch_below_it() {
        // Base 0.00 .. 0.19, branch 1.0 and 1.5, one far score 100. Scaled by its
        // extremes the curve's knee is rank 21 (only 100 flagged); on the log
        // scale the base's end, rank 19, is farthest below the chord.
        let mut sorted: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.01).collect();
        sorted.extend([1.0, 1.5, 100.0]);
        assert_eq!(knee(&sorted).unwrap().index, 21);
        let found = log_knee(&sorted).unwrap();
        assert_eq!(
            (found.index, found.breakpoint, found.threshold),
            (19, 20, 1.0)
        );
    }

    #[test]
    fn flat_straight_and_tiny_curves_have_no_split() {
        assert_eq!(log_knee(&[3.0; 5]), None);
        assert_eq!(log_knee(&[1.0, 2.0]), None);
        // A straight line maps to an S (concave above the median): the log curve
        // runs above its chord from the median on, and below it before; the
        // knee is then in the lower half.
        let line: Vec<f64> = (0..11).map(f64::from).collect();
        let found = log_knee(&line).unwrap();
        assert!(found.breakpoint <= 5);
    }

    #[test]
    fn affine_maps_of_the_scores_keep_the_split() {
        let sorted: Vec<f64> = (0..50).map(|i| (f64::from(i) / 10.0).exp()).collect();
        let base = log_knee(&sorted).unwrap().breakpoint;
        let mapped: Vec<f64> = sorted.iter().map(|v| 1e6 + 4.0 * v).collect();
        assert_eq!(log_knee(&mapped).unwrap().breakpoint, base);
    }

    #[test]
    fn an_overflowing_ratio_reads_the_log_difference() {
        let value = signed_log(1.0, 0.0, 1e-308 * 1e-10);
        assert!(value.is_finite());
        assert!((value - (0.0 - (1e-318_f64).ln())).abs() < 1e-9);
    }
}
