//! The cut read on the scale that the tail of the scores calls for.
//!
//! `log_knee` compresses the tail before reading the knee, which is right when a
//! long, heavy tail would otherwise flatten the curve (only the very top would be
//! flagged), and wrong when the tail is light: there the raw curve already shows
//! its L, and the log map bends the base so that the knee moves down into it.
//! `tail_aware` measures how bent the signed-log curve is (the depth of its knee)
//! against the same depth for an exponential sample of the same size, the usual
//! boundary between light and heavy tails:
//!
//! ```text
//! d     = depth of the log knee of the scores (0 when no point is below the chord)
//! d_exp = depth of the log knee of e_i = -ln(1 - (i + 1/2)/n),  i = 0 .. n-1
//! d >= d_exp (heavy tail): the log knee's split
//! d <  d_exp (light tail): the top c scores, c = the integer nearest sqrt(a b),
//!                          a and b the anomaly counts of `knee` and `two_segment`
//! ```
//!
//! `e_i` are the exponential quantiles at the Hazen positions; the depth does not
//! depend on the exponential's rate or on any affine map of the scores, so the
//! reference needs no parameter. The raw-scale cut is the geometric mean of the
//! two raw L-trend cuts' counts (either one alone when the other finds no
//! split), a hedge between two readings of the raw L. The choice, and the
//! exponential as the reference, come from the leave-one-group-out study in
//! `docs/method-study.md`.

use crate::knee::{knee, Chord};
use crate::log_knee::{log_knee, signed_log};
use crate::sort::Score;
use crate::two_segment::two_segment;

/// Which scale the split was read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailScale {
    /// Heavy tail: the knee of the signed-log curve.
    Log,
    /// Light tail: the consensus of the raw curve's knee and two-line fit.
    Raw,
}

/// The split of [`tail_aware`] and why it was made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TailAware {
    /// `sorted[breakpoint..]` are the anomalies.
    pub breakpoint: usize,
    /// `sorted[breakpoint]`: scores at or above it are anomalous.
    pub threshold: f64,
    /// The scale the split was read on.
    pub scale: TailScale,
    /// `d`: the depth of the scores' log knee (0 when it has none).
    pub depth: f64,
    /// `d_exp`: the same depth for the exponential reference of the same size.
    pub reference: f64,
}

/// `-ln(1 - (i + 1/2)/n)`: the exponential quantile at the Hazen position of rank `i`.
fn exponential_quantile(i: f64, n: f64) -> f64 {
    -(-(i + 0.5) / n).ln_1p()
}

/// The quantile at `p` of the exponential reference of size `n`, interpolated
/// linearly between ranks as [`crate::log_knee::quantile`] does on scores.
fn reference_quantile(n: usize, p: f64) -> f64 {
    let h = (n - 1) as f64 * p;
    let low = h.floor();
    let size = n as f64;
    let at = exponential_quantile(low, size);
    if low as usize + 1 >= n {
        return at;
    }
    at + (h - low) * (exponential_quantile(low + 1.0, size) - at)
}

/// `d_exp`: the depth of the log knee of the exponential quantiles
/// `-ln(1 - (i + 1/2)/n)`, `i = 0 .. n-1`; 0 for `n < 3`.
///
/// Read in one pass without storing the curve, so that it costs no memory.
///
/// # Examples
/// ```
/// use ltrend::tail_aware::exponential_depth;
/// let d = exponential_depth(1000);
/// assert!(d > 0.3 && d < 0.4);
/// assert!(exponential_depth(100) < d && d < exponential_depth(10_000));
/// ```
pub fn exponential_depth(n: usize) -> f64 {
    if n < 3 {
        return 0.0;
    }
    let size = n as f64;
    let center = reference_quantile(n, 0.5);
    // The quantiles are distinct, so the quartiles differ for any n >= 3.
    let unit = reference_quantile(n, 0.75) - reference_quantile(n, 0.25);
    let curve = |i: usize| signed_log(exponential_quantile(i as f64, size), center, unit);
    let first = curve(0);
    let chord = Chord::new(n, first, curve(n - 1) - first);
    (0..n).map(|i| chord.depth(i, curve(i))).fold(0.0, f64::max)
}

/// The integer nearest `sqrt(a b)` (never a tie: `(k + 1/2)^2` is not an integer).
///
/// # Examples
/// ```
/// use ltrend::tail_aware::nearest_geometric_mean;
/// assert_eq!(nearest_geometric_mean(4, 9), 6);
/// assert_eq!(nearest_geometric_mean(2, 3), 2); // sqrt(6) = 2.45
/// assert_eq!(nearest_geometric_mean(3, 4), 3); // sqrt(12) = 3.46
/// assert_eq!(nearest_geometric_mean(5, 6), 5); // sqrt(30) = 5.48
/// assert_eq!(nearest_geometric_mean(1, 7), 3); // sqrt(7) = 2.65
/// ```
pub fn nearest_geometric_mean(a: usize, b: usize) -> usize {
    let product = a as u128 * b as u128;
    let root = product.isqrt();
    // sqrt(p) > root + 1/2  <=>  p > root^2 + root + 1/4  <=>  p > root^2 + root.
    let nearest = if product > root * root + root {
        root + 1
    } else {
        root
    };
    nearest as usize
}

/// The anomaly count of the light-tail cut from those of `knee` and `two_segment`
/// (None for a method without a split): the nearest integer to their geometric
/// mean, the one count when only one splits, None when neither does.
///
/// # Examples
/// ```
/// use ltrend::tail_aware::raw_count;
/// assert_eq!(raw_count(Some(2), Some(6)), Some(3));
/// assert_eq!(raw_count(None, Some(6)), Some(6));
/// assert_eq!(raw_count(None, None), None);
/// ```
pub fn raw_count(by_knee: Option<usize>, by_lines: Option<usize>) -> Option<usize> {
    match (by_knee, by_lines) {
        (Some(a), Some(b)) => Some(nearest_geometric_mean(a, b)),
        (Some(c), None) | (None, Some(c)) => Some(c),
        (None, None) => None,
    }
}

/// The split of the sorted curve on the scale its tail calls for.
///
/// `None` when there is no split: fewer than 3 scores, all scores equal, or (on a
/// light tail) neither `knee` nor `two_segment` finds one. Scores should lie
/// within `2^±400`, as [`crate::method::fit_method`] ensures.
///
/// # Examples
/// ```
/// use ltrend::tail_aware::{tail_aware, TailScale};
/// // A far score above a short branch: a heavy tail, read on the log scale.
/// let mut sorted: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.01).collect();
/// sorted.extend([1.0, 1.5, 100.0]);
/// let found = tail_aware(&sorted).unwrap();
/// assert_eq!((found.scale, found.breakpoint), (TailScale::Log, 20));
/// // A light tail (tied scores around a middle): the raw curve's cuts decide.
/// let sorted = [-1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0];
/// let found = tail_aware(&sorted).unwrap();
/// assert_eq!((found.scale, found.breakpoint), (TailScale::Raw, 4));
/// ```
pub fn tail_aware<T: Score>(sorted: &[T]) -> Option<TailAware> {
    let n = sorted.len();
    if n < 3 || sorted[0].to_f64() == sorted[n - 1].to_f64() {
        return None;
    }
    let logged = log_knee(sorted);
    let depth = logged.map_or(0.0, |k| k.depth);
    let reference = exponential_depth(n);
    if let Some(found) = logged.filter(|_| depth >= reference) {
        return Some(TailAware {
            breakpoint: found.breakpoint,
            threshold: found.threshold,
            scale: TailScale::Log,
            depth,
            reference,
        });
    }
    let by_knee = knee(sorted).map(|k| n - k.breakpoint);
    let by_lines = two_segment(sorted).map(|f| n - f.breakpoint);
    let count = raw_count(by_knee, by_lines)?;
    // The count lies between two splits' counts, so the score at rank n - count
    // is above the lowest score, and the whole run of its ties is anomalous.
    let at = sorted[n - count].to_f64();
    let breakpoint = sorted.partition_point(|z| z.to_f64() < at);
    Some(TailAware {
        breakpoint,
        threshold: sorted[breakpoint].to_f64(),
        scale: TailScale::Raw,
        depth,
        reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_knee::quantile;

    #[test]
    fn the_reference_is_the_log_knee_of_exponential_quantiles() {
        for n in [3_usize, 4, 10, 101, 1000] {
            let size = n as f64;
            let quantiles: Vec<f64> = (0..n)
                .map(|i| exponential_quantile(i as f64, size))
                .collect();
            let stored = log_knee(&quantiles).map_or(0.0, |k| k.depth);
            assert!((exponential_depth(n) - stored).abs() < 1e-12, "n = {n}");
            for p in [0.25, 0.5, 0.75] {
                assert_eq!(reference_quantile(n, p), quantile(&quantiles, p));
            }
        }
        assert_eq!(exponential_depth(2), 0.0);
    }

    #[test]
    fn the_nearest_geometric_mean_is_exact_for_huge_counts() {
        let big = 1_usize << 40;
        assert_eq!(nearest_geometric_mean(big, big), big);
        assert_eq!(nearest_geometric_mean(big, big + 2), big + 1);
        for a in 1..60_usize {
            for b in 1..60_usize {
                let root = ((a * b) as f64).sqrt();
                assert_eq!(nearest_geometric_mean(a, b), root.round() as usize);
            }
        }
    }

    #[test]
    fn a_heavy_tail_is_read_on_the_log_scale() {
        // Base 0.00 .. 0.19, a branch 1.0, 1.5 and a far score 100: the log curve
        // bends far more than an exponential sample's, so the log knee decides.
        let mut sorted: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.01).collect();
        sorted.extend([1.0, 1.5, 100.0]);
        let found = tail_aware(&sorted).unwrap();
        assert!(found.depth >= found.reference);
        assert_eq!(found.scale, TailScale::Log);
        assert_eq!(found.breakpoint, log_knee(&sorted).unwrap().breakpoint);
    }

    #[test]
    fn a_light_tail_takes_the_raw_consensus_and_its_ties() {
        // Median 1, Q1 0, Q3 1: the log curve is -ln 3, -ln 2 (x3), 0 (x4),
        // ln 2 (x2); its knee, rank 7, lies 7/9 - ln 3 / ln 6 = 0.165 below the
        // chord, less than an exponential sample of 10 (0.21). knee flags the two
        // 2s, two_segment the six scores 1 and 2; sqrt(2 * 6) = 3.46, so the top 3,
        // and rank 7 is a 1 whose run starts at rank 4: six anomalies.
        let sorted = [-1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0];
        assert_eq!(knee(&sorted).unwrap().breakpoint, 8);
        assert_eq!(two_segment(&sorted).unwrap().breakpoint, 4);
        let found = tail_aware(&sorted).unwrap();
        let expected_depth = 7.0 / 9.0 - 3.0_f64.ln() / 6.0_f64.ln();
        assert!((found.depth - expected_depth).abs() < 1e-12);
        assert!((found.reference - exponential_depth(10)).abs() == 0.0);
        assert!(found.depth < found.reference);
        assert_eq!(found.scale, TailScale::Raw);
        assert_eq!((found.breakpoint, found.threshold), (4, 1.0));
        // The log knee alone would flag only the two 2s.
        assert_eq!(log_knee(&sorted).unwrap().breakpoint, 8);
    }

    #[test]
    fn flat_and_tiny_curves_have_no_split() {
        assert_eq!(tail_aware(&[2.5; 6]), None);
        assert_eq!(tail_aware(&[1.0, 2.0]), None);
    }
}
