//! Mergeable partial states of the L-trend fit, for scores spread over many machines.
//!
//! The in-memory fit ([`crate::threshold::fit`]) reads three things from the scores,
//! and each is a sum over scores, so each has a small state that a piece of the data
//! gives and that merges with the states of the other pieces:
//!
//! - [`ScanState`]: how many scores a chunk holds, how many are finite, the
//!   global index of the first non-finite one, and the smallest and largest
//!   finite score (which decide the rescaling of an extreme curve,
//!   [`ScanState::scale_exponent`]).
//! - [`ProjectionState`]: the projections of the sorted curve on the Gram
//!   polynomials, from a run of sorted scores whose global ranks are known (a
//!   bucket of a distributed sort, placed by the counts of the buckets below it).
//! - [`SegmentMoments`]: (count, mean, M2) and the smallest and largest score of
//!   each value segment (between the candidate thresholds, or the bins of a
//!   histogram), computed without sorting.
//! - [`RescanState`]: the sums of squares of a few value ranges, in units of
//!   each range's own spread: the sides of a split whose merged moments the
//!   compactness rule does not trust ([`SegmentMoments::untrusted_ranges`]),
//!   measured again in one more pass, only when there are such sides.
//!
//! Merging is exact up to the order of floating additions (the same terms summed in
//! another order, and Chan's formula for moments). The candidate thresholds need no
//! data: [`ProjectionState::fit`] gives the [`GramFit`], whose fitted maxima come
//! from the ranks alone.
//!
//! Origin: the in-memory fit projects `s - median` for precision, but a distributed
//! caller knows the median only once the buckets are sorted, so it projects about
//! any nearby value (a sample median) and [`ProjectionState::fit`] moves the origin
//! to the median. Only the degree-0 sum changes, since `sum_i p_k(t_i) = 0` for
//! k >= 1 over all n ranks.
//!
//! Extreme magnitudes: when [`ScanState::scale_exponent`] gives `Some(e)`, the
//! projections and moments are taken on `z * 2^-e`, as the in-memory fit takes
//! them on its rescaled curve, while edges, splits and ranges stay on the scores
//! as given; the candidates are mapped back by `2^e`.
//!
//! The states are plain values: the Python glue rebuilds them from their fields,
//! which is how they pickle between processes.

use crate::error::KernelError;
use crate::polyfit::{add_rank_projections, check_fit_size, GramFit};
use crate::sort::{count_non_finite, NanPolicy, Score};
use crate::threshold::{
    compactness_of_sides, compactness_without_variance, pow2_scale, range_scale_exponent,
    DegreeRow, SideKind, SplitSide, MIN_SCORES, SCALE_EXPONENTS,
};
use crate::variance::{Moments, ScaledM2, SpreadUnit};

fn invalid(reason: String) -> KernelError {
    KernelError::InvalidPartial { reason }
}

/// Refuse a rescaling exponent that [`ScanState::scale_exponent`] cannot give.
pub(crate) fn check_exponent(exponent: i32) -> Result<(), KernelError> {
    if SCALE_EXPONENTS.contains(&exponent) {
        Ok(())
    } else {
        Err(invalid(format!(
            "rescaling exponent {exponent} is outside {SCALE_EXPONENTS:?}"
        )))
    }
}

/// The smallest and largest of a set of finite scores, as given; the empty set
/// has `min = +inf`, `max = -inf`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
}

impl ScoreRange {
    /// The range of no scores.
    pub const EMPTY: ScoreRange = ScoreRange {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    /// The range of the finite scores among `values`.
    ///
    /// A vectorised pass in which NaN never wins a compare, then a filtered one
    /// only when a bound came out infinite (an infinite score, or none finite),
    /// which ordinary scores never make.
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::ScoreRange;
    /// let range = ScoreRange::of_finite(&[3.0, f64::NAN, -1.0, f64::INFINITY]);
    /// assert_eq!((range.min, range.max), (-1.0, 3.0));
    /// assert_eq!(ScoreRange::of_finite(&[f64::NAN]), ScoreRange::EMPTY);
    /// ```
    pub fn of_finite<T: Score>(values: &[T]) -> ScoreRange {
        let bounds = bounds_ignoring_nan(values);
        if bounds.min.is_finite() && bounds.max.is_finite() {
            return bounds;
        }
        values
            .iter()
            .filter(|z| z.is_finite_score())
            .fold(ScoreRange::EMPTY, |range, z| range.including(z.to_f64()))
    }

    /// The range with the score `z` added.
    #[inline]
    pub fn including(self, z: f64) -> ScoreRange {
        ScoreRange {
            min: self.min.min(z),
            max: self.max.max(z),
        }
    }

    /// The range of the union of two sets.
    pub fn merge(self, other: ScoreRange) -> ScoreRange {
        ScoreRange {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    /// `min <= z <= max`.
    #[inline]
    pub fn contains(&self, z: f64) -> bool {
        self.min <= z && z <= self.max
    }
}

/// Bounds kept side by side in [`bounds_ignoring_nan`]: one running min waits
/// on each compare; 32 make four independent chains even in AVX-512 registers
/// (with 8, one register, the pass took twice as long as the count beside it).
const RANGE_LANES: usize = 32;

/// The smallest and largest of the scores other than NaN, in [`RANGE_LANES`]
/// accumulators of `if z < low { z } else { low }` (a compare that NaN fails),
/// the form the compiler turns into vector min and max, compiled for the
/// widest vectors the CPU has: about as fast as counting the non-finite scores
/// (a finiteness test in the loop made it four times slower).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn bounds_ignoring_nan<T: Score>(values: &[T]) -> ScoreRange {
    let mut lows = [f64::INFINITY; RANGE_LANES];
    let mut highs = [f64::NEG_INFINITY; RANGE_LANES];
    let groups = values.chunks_exact(RANGE_LANES);
    let rest = groups.remainder();
    for group in groups {
        for lane in 0..RANGE_LANES {
            let z = group[lane].to_f64();
            lows[lane] = if z < lows[lane] { z } else { lows[lane] };
            highs[lane] = if z > highs[lane] { z } else { highs[lane] };
        }
    }
    for z in rest.iter().map(|z| z.to_f64()) {
        lows[0] = if z < lows[0] { z } else { lows[0] };
        highs[0] = if z > highs[0] { z } else { highs[0] };
    }
    lows.into_iter()
        .zip(highs)
        .map(|(min, max)| ScoreRange { min, max })
        .fold(ScoreRange::EMPTY, ScoreRange::merge)
}

/// Counts of a chunk of raw scores, where its first non-finite score is, and the
/// range of its finite scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanState {
    /// Scores seen, finite or not.
    pub n_scores: usize,
    /// Finite scores among them.
    pub n_finite: usize,
    /// Global index of the first NaN or infinite score, if any.
    pub first_non_finite: Option<usize>,
    /// The smallest and largest finite score.
    pub range: ScoreRange,
}

impl ScanState {
    /// The state of no scores.
    pub const EMPTY: ScanState = ScanState {
        n_scores: 0,
        n_finite: 0,
        first_non_finite: None,
        range: ScoreRange::EMPTY,
    };

    /// The state of `chunk`, whose first score has global index `start`.
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::ScanState;
    /// let a = ScanState::of_chunk(&[1.0, f64::NAN], 0);
    /// let b = ScanState::of_chunk(&[f64::INFINITY, 2.0, 3.0], 2);
    /// let whole = a.merge(b);
    /// assert_eq!((whole.n_scores, whole.n_finite, whole.first_non_finite), (5, 3, Some(1)));
    /// assert_eq!((whole.range.min, whole.range.max), (1.0, 3.0));
    /// ```
    pub fn of_chunk<T: Score>(chunk: &[T], start: usize) -> ScanState {
        let (count, first) = count_non_finite(chunk);
        ScanState {
            n_scores: chunk.len(),
            n_finite: chunk.len() - count,
            first_non_finite: first.map(|i| start + i),
            range: ScoreRange::of_finite(chunk),
        }
    }

    /// The state of two disjoint chunks.
    pub fn merge(self, other: ScanState) -> ScanState {
        let first_non_finite = match (self.first_non_finite, other.first_non_finite) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ScanState {
            n_scores: self.n_scores + other.n_scores,
            n_finite: self.n_finite + other.n_finite,
            first_non_finite,
            range: self.range.merge(other.range),
        }
    }

    /// The rescaling the in-memory fit applies to the finite scores seen:
    /// `Some(e)` when they must be fitted as `z * 2^-e` (see
    /// [`range_scale_exponent`]), `None` for ordinary magnitudes or no scores.
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::ScanState;
    /// let tiny = ScanState::of_chunk(&[0.0, 1e-310], 0);
    /// assert_eq!(tiny.scale_exponent(), Some(-1029));
    /// assert_eq!(ScanState::of_chunk(&[0.5, 1e9], 0).scale_exponent(), None);
    /// ```
    pub fn scale_exponent(&self) -> Option<i32> {
        range_scale_exponent(self.range.min, self.range.max)
    }

    /// The number of finite scores the fit will use, after the checks of [`crate::threshold::fit`].
    ///
    /// # Errors
    /// [`KernelError::NonFinite`] under [`NanPolicy::Raise`] when any score is NaN
    /// or infinite, then [`KernelError::TooFewScores`] with fewer than
    /// [`MIN_SCORES`] finite scores: the errors, and messages, of the in-memory fit.
    pub fn finish(self, policy: NanPolicy) -> Result<usize, KernelError> {
        if let (NanPolicy::Raise, Some(first_index)) = (policy, self.first_non_finite) {
            return Err(KernelError::NonFinite {
                count: self.n_scores - self.n_finite,
                first_index,
            });
        }
        if self.n_finite < MIN_SCORES {
            return Err(KernelError::TooFewScores {
                needed: MIN_SCORES,
                got: self.n_finite,
            });
        }
        Ok(self.n_finite)
    }
}

/// Projection sums of part of the sorted curve on the Gram polynomials of its n ranks.
///
/// ```text
/// sums[k] = sum over the ranks r held of (s[r] - origin) p_k(t_r),   k = 0..=max_degree
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionState {
    /// Points on the whole curve (the finite scores of all chunks).
    pub n: usize,
    /// The value subtracted from every score before projecting.
    pub origin: f64,
    /// Ranks held so far.
    pub count: usize,
    pub sums: Vec<f64>,
}

impl ProjectionState {
    /// The projections of `sorted`, which holds the global ranks `offset..offset + len`
    /// of the sorted curve of `n` scores.
    ///
    /// Blocks of ranks follow the grid of [`GramFit::new`], so whole blocks give the
    /// in-memory block sums bit for bit.
    ///
    /// # Errors
    /// [`KernelError::InvalidMaxDegree`] and [`KernelError::TooFewScores`] as for
    /// [`GramFit::new`] on n points, and [`KernelError::InvalidPartial`] when the
    /// ranks run past `n`.
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::ProjectionState;
    /// use ltrend::polyfit::GramFit;
    /// let s = [0.0, 0.5, 1.0, 1.5, 9.0];
    /// let low = ProjectionState::of_sorted(&s[..2], 0, 5, 1.0, 2).unwrap();
    /// let high = ProjectionState::of_sorted(&s[2..], 2, 5, 1.0, 2).unwrap();
    /// let fit = low.merge(&high).unwrap().fit(1.0).unwrap();
    /// let whole = GramFit::new(&s, 2).unwrap();
    /// for (a, b) in fit.fitted_maxima().iter().zip(whole.fitted_maxima()) {
    ///     assert!((a - b).abs() < 1e-12);
    /// }
    /// ```
    pub fn of_sorted<T: Score>(
        sorted: &[T],
        offset: usize,
        n: usize,
        origin: f64,
        max_degree: usize,
    ) -> Result<ProjectionState, KernelError> {
        check_fit_size(n, max_degree)?;
        if offset + sorted.len() > n {
            return Err(invalid(format!(
                "ranks {offset}..{} run past the {n} scores of the curve",
                offset + sorted.len()
            )));
        }
        debug_assert!(sorted.windows(2).all(|w| w[0].to_f64() <= w[1].to_f64()));
        let mut sums = vec![0.0; max_degree + 1];
        add_rank_projections(
            n,
            offset,
            sorted.len(),
            |r| sorted[r - offset].to_f64() - origin,
            &mut sums,
        );
        Ok(ProjectionState {
            n,
            origin,
            count: sorted.len(),
            sums,
        })
    }

    /// [`ProjectionState::of_sorted`] on `sorted * 2^-exponent`, about
    /// `origin * 2^-exponent` (`origin` in the scores' units): the projections
    /// of a curve that [`ScanState::scale_exponent`] says to rescale, as the
    /// in-memory fit projects its rescaled curve. `exponent = 0` projects the
    /// scores as they are, without a copy.
    ///
    /// # Errors
    /// As [`ProjectionState::of_sorted`], and [`KernelError::InvalidPartial`]
    /// for an exponent outside [`SCALE_EXPONENTS`].
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::{ProjectionState, ScanState};
    /// let s = [0.0, 1e-310, 2e-310, 9e-310];
    /// let exponent = ScanState::of_chunk(&s, 0).scale_exponent().unwrap();
    /// let state = ProjectionState::of_sorted_scaled(&s, 0, 4, 1e-310, 2, exponent).unwrap();
    /// let (_, thresholds) = state.fit_scaled(2e-310, exponent).unwrap();
    /// assert!(thresholds.iter().all(|&t| t > 1e-310 && t < 1e-309));
    /// ```
    pub fn of_sorted_scaled<T: Score>(
        sorted: &[T],
        offset: usize,
        n: usize,
        origin: f64,
        max_degree: usize,
        exponent: i32,
    ) -> Result<ProjectionState, KernelError> {
        check_exponent(exponent)?;
        if exponent == 0 {
            return ProjectionState::of_sorted(sorted, offset, n, origin, max_degree);
        }
        let work: Vec<f64> = sorted
            .iter()
            .map(|z| pow2_scale(z.to_f64(), -exponent))
            .collect();
        let origin = pow2_scale(origin, -exponent);
        ProjectionState::of_sorted(&work, offset, n, origin, max_degree)
    }

    /// Approximate projections from a histogram: the moments of consecutive value
    /// bins, in ascending order, that together hold every score of the curve.
    ///
    /// ```text
    /// bin of m scores at ranks o..o+m, mean mu, M2:   s[o + j] ~ mu + slope (j - (m - 1) / 2)
    /// slope = sqrt(12 M2 / (m (m^2 - 1)))
    /// ```
    ///
    /// Inside a bin the sorted scores are taken as the straight ramp with the bin's
    /// mean and variance: exact when they are evenly spaced in rank, and for
    /// constant bins. The curve has `n = ` the total count and the bins' origin.
    ///
    /// # Errors
    /// As [`ProjectionState::of_sorted`] for that n.
    pub fn of_bins(
        bins: &SegmentMoments,
        max_degree: usize,
    ) -> Result<ProjectionState, KernelError> {
        let n: usize = bins.segments.iter().map(|m| m.count).sum();
        check_fit_size(n, max_degree)?;
        let mut sums = vec![0.0; max_degree + 1];
        let mut offset = 0;
        for bin in bins.segments.iter().filter(|m| m.count > 0) {
            let m = bin.count as f64;
            let slope = if bin.count > 1 {
                (12.0 * bin.m2 / (m * (m * m - 1.0))).sqrt()
            } else {
                0.0
            };
            let middle = (m - 1.0) / 2.0;
            let start = offset;
            add_rank_projections(
                n,
                start,
                bin.count,
                |r| bin.mean + slope * ((r - start) as f64 - middle),
                &mut sums,
            );
            offset += bin.count;
        }
        Ok(ProjectionState {
            n,
            origin: bins.origin,
            count: n,
            sums,
        })
    }

    /// The projections of two disjoint runs of ranks of the same curve.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] when the states were made for different
    /// curves, origins or degrees, or hold more ranks than the curve has.
    pub fn merge(&self, other: &ProjectionState) -> Result<ProjectionState, KernelError> {
        if self.n != other.n
            || self.origin.to_bits() != other.origin.to_bits()
            || self.sums.len() != other.sums.len()
        {
            return Err(invalid(format!(
                "projections for (n, origin, max_degree) = ({}, {}, {}) and ({}, {}, {}) \
                 do not merge",
                self.n,
                self.origin,
                self.sums.len().saturating_sub(1),
                other.n,
                other.origin,
                other.sums.len().saturating_sub(1)
            )));
        }
        let count = self.count + other.count;
        if count > self.n {
            return Err(invalid(format!(
                "the merged projections hold {count} ranks of a curve of {}",
                self.n
            )));
        }
        Ok(ProjectionState {
            n: self.n,
            origin: self.origin,
            count,
            sums: self
                .sums
                .iter()
                .zip(&other.sums)
                .map(|(a, b)| a + b)
                .collect(),
        })
    }

    /// The fits of every degree, about `center` (the median, as in-memory).
    ///
    /// ```text
    /// sum_i (s_i - center) p_0(t_i) = sums[0] + n (origin - center)
    /// sum_i (s_i - center) p_k(t_i) = sums[k]                          k >= 1
    /// ```
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] unless the state holds all n ranks.
    pub fn fit(&self, center: f64) -> Result<GramFit, KernelError> {
        if self.count != self.n {
            return Err(invalid(format!(
                "the projections hold {} of the {} ranks; merge every bucket first",
                self.count, self.n
            )));
        }
        let mut sums = self.sums.clone();
        if let Some(first) = sums.first_mut() {
            *first += self.n as f64 * (self.origin - center);
        }
        GramFit::from_projections(self.n, center, &sums)
    }

    /// The fits and every degree's candidate threshold, in the scores' units,
    /// from projections taken on the scores times `2^-exponent` (see
    /// [`ProjectionState::of_sorted_scaled`]); `center` is the median as given.
    ///
    /// ```text
    /// fits  = fit(center * 2^-exponent), then scaled by 2^exponent
    /// tau_d = (max over the ranks of the degree-d fit) * 2^exponent
    /// ```
    ///
    /// As the in-memory fit maps its candidates back; `exponent = 0` is
    /// [`ProjectionState::fit`] and its fitted maxima unchanged.
    ///
    /// # Errors
    /// As [`ProjectionState::fit`], and [`KernelError::InvalidPartial`] for an
    /// exponent outside [`SCALE_EXPONENTS`].
    pub fn fit_scaled(
        &self,
        center: f64,
        exponent: i32,
    ) -> Result<(GramFit, Vec<f64>), KernelError> {
        check_exponent(exponent)?;
        let fits = self.fit(pow2_scale(center, -exponent))?;
        let thresholds = fits
            .fitted_maxima()
            .into_iter()
            .map(|tau| pow2_scale(tau, exponent))
            .collect();
        if exponent == 0 {
            return Ok((fits, thresholds));
        }
        Ok((fits.rescaled_by_exponent(exponent), thresholds))
    }
}

/// Per-segment moment accumulators of the corrected two-pass algorithm.
#[derive(Clone, Copy)]
struct Accumulator {
    count: usize,
    /// The first value measured: squares are taken about it, as
    /// `Moments::of_sorted` takes them about a segment's first value.
    shift: f64,
    sum: f64,
    /// The range of the scores as given (not as measured).
    range: ScoreRange,
    squares: f64,
    residual: f64,
}

impl Accumulator {
    const EMPTY: Accumulator = Accumulator {
        count: 0,
        shift: 0.0,
        sum: 0.0,
        range: ScoreRange::EMPTY,
        squares: 0.0,
        residual: 0.0,
    };

    /// Equal scores as given measure equal, so their m2 is 0 exactly.
    fn is_constant(&self) -> bool {
        self.range.min == self.range.max
    }
}

/// Moments of `measure(z)` for the finite scores `z` of `values` in segment
/// `segment_of(z)` (none: left out), relative to `origin`, and each segment's
/// range of scores as given.
///
/// On one ascending segment measured as it is, this is `Moments::of_sorted` bit
/// for bit (same shift, same sums in the same order); on unsorted values the
/// shift is the first value seen, which is as good: every value lies within the
/// segment's spread of it.
fn moments_by_segment<T, F, M>(
    values: &[T],
    n_segments: usize,
    origin: f64,
    measure: M,
    segment_of: F,
) -> (Vec<Moments>, Vec<ScoreRange>)
where
    T: Score,
    F: Fn(f64) -> Option<usize>,
    M: Fn(f64) -> f64,
{
    let mut acc = vec![Accumulator::EMPTY; n_segments];
    let finite = || {
        values
            .iter()
            .filter(|z| z.is_finite_score())
            .map(|z| z.to_f64())
    };
    for z in finite() {
        let Some(a) = segment_of(z).map(|s| &mut acc[s]) else {
            continue;
        };
        let x = measure(z);
        if a.count == 0 {
            a.shift = x;
        }
        a.count += 1;
        a.sum += x - a.shift;
        a.range = a.range.including(z);
    }
    let means: Vec<f64> = acc.iter().map(|a| a.sum / a.count.max(1) as f64).collect();
    for z in finite() {
        let Some(s) = segment_of(z) else {
            continue;
        };
        let a = &mut acc[s];
        if !a.is_constant() {
            let d = (measure(z) - a.shift) - means[s];
            a.squares += d * d;
            a.residual += d;
        }
    }
    let moments = acc
        .iter()
        .zip(means)
        .map(|(a, mean)| {
            if a.count == 0 {
                Moments::EMPTY
            } else if a.is_constant() {
                // A constant segment: zero variance exactly, as in `Moments::of_sorted`.
                Moments {
                    count: a.count,
                    mean: a.shift - origin,
                    m2: 0.0,
                }
            } else {
                let n = a.count as f64;
                Moments {
                    count: a.count,
                    mean: (a.shift - origin) + mean,
                    m2: (a.squares - a.residual * a.residual / n).max(0.0),
                }
            }
        })
        .collect();
    (moments, acc.iter().map(|a| a.range).collect())
}

/// Moments (count, mean, M2) and range of the scores in each of a fixed list of
/// segments.
///
/// Two kinds: a split state, whose segments lie between the ascending `edges`
/// (segment j holds `edges[j-1] <= z < edges[j]`), and a state of runs (no edges)
/// that the caller cut from sorted scores, for example the bins of a histogram.
///
/// The moments are taken on `z * 2^-exponent` (the curve's rescaling, 0 for
/// ordinary magnitudes), relative to `origin`, on that scale; the edges and
/// ranges are in the scores' units.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentMoments {
    /// Means are relative to it (see `variance.rs`), on the moments' scale.
    pub origin: f64,
    /// The moments are of `z * 2^-exponent`.
    pub exponent: i32,
    /// Ascending distinct cut points; empty for a state of runs.
    pub edges: Vec<f64>,
    pub segments: Vec<Moments>,
    /// The smallest and largest score of each segment, as given.
    pub ranges: Vec<ScoreRange>,
}

impl SegmentMoments {
    /// The moments of the finite `values` below, between and above the thresholds,
    /// taken on `z * 2^-exponent` about `origin * 2^-exponent` (`origin` in the
    /// scores' units).
    ///
    /// The thresholds may come in any order, with repeats; NaN thresholds cut
    /// nothing. No sorting of the values: each finds its segment by binary
    /// search, on its value as given.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] for an exponent outside [`SCALE_EXPONENTS`].
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::SegmentMoments;
    /// let state = SegmentMoments::of_split(&[5.0, 1.0, 9.0, 2.0], &[4.0, 4.0], 0.0, 0).unwrap();
    /// assert_eq!(state.edges, vec![4.0]);
    /// let counts: Vec<usize> = state.segments.iter().map(|m| m.count).collect();
    /// assert_eq!(counts, vec![2, 2]);
    /// assert_eq!((state.ranges[1].min, state.ranges[1].max), (5.0, 9.0));
    /// ```
    pub fn of_split<T: Score>(
        values: &[T],
        thresholds: &[f64],
        origin: f64,
        exponent: i32,
    ) -> Result<SegmentMoments, KernelError> {
        check_exponent(exponent)?;
        let mut edges: Vec<f64> = thresholds.iter().copied().filter(|t| !t.is_nan()).collect();
        edges.sort_by(f64::total_cmp);
        edges.dedup_by(|a, b| a == b);
        let n_segments = edges.len() + 1;
        let segment_of = |z: f64| Some(edges.partition_point(|&e| e <= z));
        let work_origin = pow2_scale(origin, -exponent);
        // Two instances, so that the ordinary path measures each score as it is.
        let (segments, ranges) = if exponent == 0 {
            moments_by_segment(values, n_segments, origin, |z| z, segment_of)
        } else {
            let measure = |z: f64| pow2_scale(z, -exponent);
            moments_by_segment(values, n_segments, work_origin, measure, segment_of)
        };
        Ok(SegmentMoments {
            origin: work_origin,
            exponent,
            edges,
            segments,
            ranges,
        })
    }

    /// The moments of consecutive runs `sorted[bounds[j]..bounds[j + 1]]` of finite
    /// ascending scores, for example the bins of a histogram of a sorted chunk,
    /// taken on `z * 2^-exponent` about `origin * 2^-exponent`.
    ///
    /// Each run's moments are `Moments::of_sorted`, so a run of equal scores has
    /// zero variance exactly.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] unless `bounds` ascends from 0 to
    /// `sorted.len()`, or for an exponent outside [`SCALE_EXPONENTS`].
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::SegmentMoments;
    /// let state = SegmentMoments::of_sorted_runs(&[1.0, 2.0, 2.0, 7.0], &[0, 1, 3, 4], 0.0, 0);
    /// let counts: Vec<usize> = state.unwrap().segments.iter().map(|m| m.count).collect();
    /// assert_eq!(counts, vec![1, 2, 1]);
    /// ```
    pub fn of_sorted_runs<T: Score>(
        sorted: &[T],
        bounds: &[usize],
        origin: f64,
        exponent: i32,
    ) -> Result<SegmentMoments, KernelError> {
        check_exponent(exponent)?;
        let ascending = bounds.windows(2).all(|w| w[0] <= w[1]);
        if !ascending || bounds.first() != Some(&0) || bounds.last() != Some(&sorted.len()) {
            return Err(invalid(format!(
                "run bounds must ascend from 0 to {}, got {} bounds from {:?} to {:?}",
                sorted.len(),
                bounds.len(),
                bounds.first(),
                bounds.last()
            )));
        }
        debug_assert!(sorted.windows(2).all(|w| w[0].to_f64() <= w[1].to_f64()));
        // Ascending runs: the range is the first and last score.
        let ranges = bounds
            .windows(2)
            .map(
                |w| match (w[0] < w[1]).then(|| (sorted[w[0]], sorted[w[1] - 1])) {
                    Some((first, last)) => ScoreRange {
                        min: first.to_f64(),
                        max: last.to_f64(),
                    },
                    None => ScoreRange::EMPTY,
                },
            )
            .collect();
        let work_origin = pow2_scale(origin, -exponent);
        let segments = if exponent == 0 {
            moments_of_runs(sorted, bounds, work_origin)
        } else {
            let work: Vec<f64> = sorted
                .iter()
                .map(|z| pow2_scale(z.to_f64(), -exponent))
                .collect();
            moments_of_runs(&work, bounds, work_origin)
        };
        Ok(SegmentMoments {
            origin: work_origin,
            exponent,
            edges: Vec::new(),
            segments,
            ranges,
        })
    }

    /// The moments of the union of two disjoint sets of scores, segment by segment.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] unless both have the same origin,
    /// exponent, edges and number of segments (and of ranges).
    pub fn merge(&self, other: &SegmentMoments) -> Result<SegmentMoments, KernelError> {
        if self.origin.to_bits() != other.origin.to_bits()
            || self.exponent != other.exponent
            || self.edges != other.edges
            || self.segments.len() != other.segments.len()
            || self.ranges.len() != self.segments.len()
            || other.ranges.len() != other.segments.len()
        {
            return Err(invalid(
                "segment moments with different origins, exponents, edges or segment counts \
                 do not merge"
                    .into(),
            ));
        }
        Ok(SegmentMoments {
            origin: self.origin,
            exponent: self.exponent,
            edges: self.edges.clone(),
            segments: self
                .segments
                .iter()
                .zip(&other.segments)
                .map(|(&a, &b)| a.merge(b))
                .collect(),
            ranges: self
                .ranges
                .iter()
                .zip(&other.ranges)
                .map(|(&a, &b)| a.merge(b))
                .collect(),
        })
    }

    /// The median the moments' means are relative to, in the scores' units.
    fn median(&self) -> f64 {
        pow2_scale(self.origin, self.exponent)
    }

    /// The normal and anomalous sides of the split `z < tau` vs `z >= tau` at each
    /// threshold (one of the edges, or NaN: every score anomalous).
    fn sides(&self, thresholds: &[f64]) -> Result<Vec<(SplitSide, SplitSide)>, KernelError> {
        if self.ranges.len() != self.segments.len() {
            return Err(invalid(format!(
                "{} segments need {} ranges, got {}",
                self.segments.len(),
                self.segments.len(),
                self.ranges.len()
            )));
        }
        let side = |(moments, range): (Moments, ScoreRange)| SplitSide {
            moments,
            first: range.min,
            last: range.max,
        };
        let parts: Vec<(Moments, ScoreRange)> = self
            .segments
            .iter()
            .copied()
            .zip(self.ranges.iter().copied())
            .collect();
        let empty = (Moments::EMPTY, ScoreRange::EMPTY);
        // prefix[j]: segments 0..j; suffix[j]: segments j.. .
        let mut prefix = vec![empty];
        for &(moments, range) in &parts {
            let (m, r) = *prefix.last().unwrap_or(&empty);
            prefix.push((m.merge(moments), r.merge(range)));
        }
        let mut suffix = vec![empty];
        for &(moments, range) in parts.iter().rev() {
            let (m, r) = *suffix.last().unwrap_or(&empty);
            suffix.push((moments.merge(m), range.merge(r)));
        }
        suffix.reverse();
        thresholds
            .iter()
            .map(|&tau| {
                let cut = if tau.is_nan() {
                    0
                } else {
                    1 + self.edges.iter().position(|&e| e == tau).ok_or_else(|| {
                        invalid(format!("threshold {tau} is not one of the split's edges"))
                    })?
                };
                Ok((side(prefix[cut]), side(suffix[cut])))
            })
            .collect()
    }

    /// The sides of the splits at `thresholds` whose merged moments the
    /// compactness rule does not trust (their sums of squares may have
    /// underflowed, or they lie far from the median next to their spread; see
    /// `crate::threshold`), as ranges of scores without repeats: the ranges a
    /// [`RescanState`] must measure before [`SegmentMoments::rows`]. Empty for
    /// ordinary scores.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] when a threshold is not one of the edges.
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::SegmentMoments;
    /// // N = {0, 1e-200}: its squares underflow, so its merged m2 is not trusted.
    /// let z = [0.0, 1e-200, 2.0, 3.0];
    /// let state = SegmentMoments::of_split(&z, &[1.0], 0.0, 0).unwrap();
    /// let ranges = state.untrusted_ranges(&[1.0]).unwrap();
    /// assert_eq!(ranges.len(), 1);
    /// assert_eq!((ranges[0].min, ranges[0].max), (0.0, 1e-200));
    /// ```
    pub fn untrusted_ranges(&self, thresholds: &[f64]) -> Result<Vec<ScoreRange>, KernelError> {
        let median = self.median();
        let mut ranges: Vec<ScoreRange> = Vec::new();
        for (normal, anomalies) in self.sides(thresholds)? {
            if compactness_without_variance(&normal, &anomalies).is_some() {
                continue;
            }
            for side in [normal, anomalies] {
                let range = ScoreRange {
                    min: side.first,
                    max: side.last,
                };
                if !side.is_trusted(median) && !ranges.contains(&range) {
                    ranges.push(range);
                }
            }
        }
        Ok(ranges)
    }

    /// One row per threshold (degree `1, 2, ...` in order): the split `z < tau` vs
    /// `z >= tau` of a split state made with these thresholds, as
    /// [`crate::threshold::fit`] reports it.
    ///
    /// The rule of `crate::threshold`: empty side NaN, constant `N` `+inf`,
    /// constant `A` 0 (read from the ranges), else the ratio of variances, from
    /// the merged moments where they are trusted and from `rescan` for the sides
    /// [`SegmentMoments::untrusted_ranges`] lists. A NaN threshold puts no score
    /// below it (the in-memory `partition_point` finds no `z < NaN`), so every
    /// score counts as anomalous and the row is no candidate.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] when a threshold is not one of the edges,
    /// or `rescan` lacks an untrusted side or counted it differently.
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::{RescanState, SegmentMoments};
    /// // Comp = (var(A)/|A|) / (var(N)/|N|) = (0.25/2) / (0.25e-400/2) = 1e400: +inf.
    /// let z = [0.0, 1e-200, 2.0, 3.0];
    /// let state = SegmentMoments::of_split(&z, &[1.0], 0.0, 0).unwrap();
    /// let ranges = state.untrusted_ranges(&[1.0]).unwrap();
    /// let rescan = RescanState::of_chunk(&z, &ranges).unwrap();
    /// let rows = state.rows(&[1.0], &rescan).unwrap();
    /// assert_eq!((rows[0].compactness, rows[0].n_anomalies), (f64::INFINITY, 2));
    /// assert!(state.rows(&[1.0], &RescanState::EMPTY).is_err());
    /// ```
    pub fn rows(
        &self,
        thresholds: &[f64],
        rescan: &RescanState,
    ) -> Result<Vec<DegreeRow>, KernelError> {
        let median = self.median();
        let remeasure = |_: SideKind, side: &SplitSide| {
            let range = ScoreRange {
                min: side.first,
                max: side.last,
            };
            rescan.scaled_m2(range, side.moments.count)
        };
        self.sides(thresholds)?
            .into_iter()
            .zip(thresholds)
            .enumerate()
            .map(|(i, ((normal, anomalies), &tau))| {
                let compactness =
                    compactness_of_sides(normal, anomalies, median, self.exponent, remeasure)?;
                Ok(DegreeRow {
                    degree: i + 1,
                    threshold: tau,
                    compactness,
                    n_anomalies: anomalies.moments.count,
                })
            })
            .collect()
    }
}

/// Sums of squares of the scores in a few ranges, each in units of its own
/// spread: the untrusted sides of a split ([`SegmentMoments::untrusted_ranges`])
/// measured again, chunk by chunk.
///
/// ```text
/// range [first, last]:  x = (z - first) * 2^-k   for first <= z <= last   (SpreadUnit)
/// moments[i] = (count, mean, M2) of those x      ->   m2 * 4^k, as ScaledM2::of_sorted
/// ```
///
/// A side of a split is exactly the finite scores in its range (`N = {z < tau}`
/// holds every score from its smallest to its largest), so the chunks need no
/// threshold. The scaled scores lie in `[0, 1)` and span at least half of it,
/// so their moments merge across chunks with no loss the in-memory fit avoids.
#[derive(Debug, Clone, PartialEq)]
pub struct RescanState {
    pub ranges: Vec<ScoreRange>,
    /// The moments of the scaled scores of each range, means relative to 0.
    pub moments: Vec<Moments>,
}

impl RescanState {
    /// The state that measures nothing (no side needed measuring again).
    pub const EMPTY: RescanState = RescanState {
        ranges: Vec::new(),
        moments: Vec::new(),
    };

    /// The moments of the finite `values` in each range, in its own units.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] for a range that is not `min < max`,
    /// both finite (a constant side needs no variance).
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::{RescanState, ScoreRange};
    /// let range = ScoreRange { min: 0.0, max: 1e-200 };
    /// let low = RescanState::of_chunk(&[0.0, 7.0], &[range]).unwrap();
    /// let high = RescanState::of_chunk(&[1e-200], &[range]).unwrap();
    /// let m2 = low.merge(&high).unwrap().scaled_m2(range, 2).unwrap();
    /// // sum((z - mean)^2) = 0.5e-400 = m2 * 4^exponent, with m2 in [1/8, 2].
    /// assert!((0.125..=2.0).contains(&m2.m2));
    /// ```
    pub fn of_chunk<T: Score>(
        values: &[T],
        ranges: &[ScoreRange],
    ) -> Result<RescanState, KernelError> {
        let moments = ranges
            .iter()
            .map(|&range| {
                let unit = spread_unit(range)?;
                let inside = |z: f64| range.contains(z).then_some(0);
                let (moments, _) = moments_by_segment(values, 1, 0.0, |z| unit.apply(z), inside);
                Ok(moments[0])
            })
            .collect::<Result<Vec<Moments>, KernelError>>()?;
        Ok(RescanState {
            ranges: ranges.to_vec(),
            moments,
        })
    }

    /// The moments of two disjoint sets of scores, range by range.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] unless both measured the same ranges.
    pub fn merge(&self, other: &RescanState) -> Result<RescanState, KernelError> {
        if self.ranges != other.ranges
            || self.moments.len() != self.ranges.len()
            || other.moments.len() != other.ranges.len()
        {
            return Err(invalid(
                "rescan states of different ranges do not merge".into(),
            ));
        }
        Ok(RescanState {
            ranges: self.ranges.clone(),
            moments: self
                .moments
                .iter()
                .zip(&other.moments)
                .map(|(&a, &b)| a.merge(b))
                .collect(),
        })
    }

    /// The sum of squared deviations of the `count` scores of `range`, as
    /// `m2 * 4^exponent`.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] when the range was not measured, or holds
    /// another number of scores than `count` (the input changed between reads).
    pub fn scaled_m2(&self, range: ScoreRange, count: usize) -> Result<ScaledM2, KernelError> {
        let found = self
            .ranges
            .iter()
            .position(|&r| r == range)
            .and_then(|i| self.moments.get(i));
        let Some(moments) = found else {
            return Err(invalid(format!(
                "the side [{}, {}] was not measured again; rescan it first",
                range.min, range.max
            )));
        };
        if moments.count != count {
            return Err(invalid(format!(
                "the rescan counted {} scores in [{}, {}] where the split counted {count}",
                moments.count, range.min, range.max
            )));
        }
        Ok(ScaledM2 {
            m2: moments.m2,
            exponent: spread_unit(range)?.exponent(),
        })
    }
}

/// `Moments::of_sorted` of each run `sorted[bounds[j]..bounds[j + 1]]`.
fn moments_of_runs<T: Score>(sorted: &[T], bounds: &[usize], origin: f64) -> Vec<Moments> {
    bounds
        .windows(2)
        .map(|w| Moments::of_sorted(&sorted[w[0]..w[1]], origin))
        .collect()
}

/// The units of a range to measure again, or why it has none.
fn spread_unit(range: ScoreRange) -> Result<SpreadUnit, KernelError> {
    SpreadUnit::of_range(range.min, range.max).ok_or_else(|| {
        invalid(format!(
            "the range [{}, {}] has no spread to measure",
            range.min, range.max
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::{choose_degree, fit};

    /// An L-shaped curve with ties, an offset and a steep tail, in a scrambled order.
    fn scores(offset: f64) -> Vec<f64> {
        let mut z: Vec<f64> = (0..9000)
            .map(|i| offset + f64::from((i * 7919) % 613) * 0.01)
            .collect();
        z.extend((0..40).map(|i| offset + 20.0 + f64::from(i * i) * 0.3));
        z.extend([offset + 1.0; 300]);
        let len = z.len();
        (0..len).map(|i| z[(i * 4099) % len]).collect()
    }

    fn sorted(z: &[f64]) -> Vec<f64> {
        let mut s = z.to_vec();
        s.sort_by(f64::total_cmp);
        s
    }

    fn close(a: f64, b: f64, rtol: f64) -> bool {
        a == b || (a - b).abs() <= rtol * a.abs().max(b.abs())
    }

    /// Cuts of the sorted curve: uneven, one-score pieces, and block-grid crossings.
    const CUTS: [usize; 7] = [0, 1, 2, 4095, 4097, 8192, 9001];

    fn pieces(len: usize) -> Vec<(usize, usize)> {
        let mut bounds: Vec<usize> = CUTS.iter().copied().filter(|&c| c < len).collect();
        bounds.push(len);
        bounds.windows(2).map(|w| (w[0], w[1])).collect()
    }

    #[test]
    fn projections_over_any_split_equal_the_whole() {
        for offset in [0.0, 1e6, 1e9] {
            let s = sorted(&scores(offset));
            let n = s.len();
            let center = s[n / 2];
            // Project about a value that is not the median, as a distributed caller does.
            let origin = s[n / 3];
            let mut merged = ProjectionState::of_sorted(&s[..0], 0, n, origin, 5).unwrap();
            for (a, b) in pieces(n) {
                let part = ProjectionState::of_sorted(&s[a..b], a, n, origin, 5).unwrap();
                merged = merged.merge(&part).unwrap();
            }
            let fit = merged.fit(center).unwrap();
            let whole = GramFit::new(&s, 5).unwrap();
            assert_eq!(fit.center, whole.center);
            for (a, b) in fit.fitted_maxima().iter().zip(whole.fitted_maxima()) {
                // Sums of ~1e4 terms in another order, about another origin.
                assert!(close(*a, b, 1e-13), "offset {offset}: {a} vs {b}");
            }
            for degree in 1..=5 {
                let (a, b) = (
                    fit.power_coefficients(degree),
                    whole.power_coefficients(degree),
                );
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn whole_blocks_give_the_in_memory_sums_bit_for_bit() {
        let s = sorted(&scores(0.0));
        let n = s.len();
        let center = s[n / 2];
        let state = ProjectionState::of_sorted(&s, 0, n, center, 4).unwrap();
        assert_eq!(state.fit(center).unwrap(), GramFit::new(&s, 4).unwrap());
    }

    #[test]
    fn projection_errors() {
        let s = [1.0, 2.0, 3.0];
        assert!(matches!(
            ProjectionState::of_sorted(&s, 1, 3, 0.0, 1),
            Err(KernelError::InvalidPartial { .. })
        ));
        assert_eq!(
            ProjectionState::of_sorted(&s, 0, 3, 0.0, 2),
            Err(KernelError::TooFewScores { needed: 4, got: 3 })
        );
        assert!(matches!(
            ProjectionState::of_sorted(&s, 0, 3, 0.0, 0),
            Err(KernelError::InvalidMaxDegree { .. })
        ));
        let low = ProjectionState::of_sorted(&s[..1], 0, 3, 0.0, 1).unwrap();
        assert!(
            low.fit(2.0).is_err(),
            "a state missing ranks cannot be fitted"
        );
        let other = ProjectionState::of_sorted(&s[1..], 1, 3, 0.5, 1).unwrap();
        assert!(low.merge(&other).is_err(), "origins differ");
        let all = ProjectionState::of_sorted(&s, 0, 3, 0.0, 1).unwrap();
        assert!(all.merge(&low).is_err(), "more ranks than the curve has");
    }

    #[test]
    fn scan_matches_the_in_memory_checks() {
        let z = [1.0, f64::NAN, 2.0, f64::INFINITY, 3.0];
        let mut merged = ScanState::EMPTY;
        for (a, b) in [(3, 5), (0, 2), (2, 3)] {
            merged = merged.merge(ScanState::of_chunk(&z[a..b], a));
        }
        assert_eq!(merged.n_scores, 5);
        assert_eq!(
            merged.finish(NanPolicy::Raise),
            Err(fit(&z, 5, NanPolicy::Raise).unwrap_err())
        );
        assert_eq!(merged.finish(NanPolicy::Omit), Ok(3));
        let two = ScanState::of_chunk(&[1.0, f64::NAN, 2.0], 0);
        assert_eq!(
            two.finish(NanPolicy::Omit),
            Err(fit(&[1.0, f64::NAN, 2.0], 5, NanPolicy::Omit).unwrap_err())
        );
    }

    #[test]
    fn unsorted_segments_equal_sorted_segments() {
        let z = scores(1e9);
        let s = sorted(&z);
        let origin = s[s.len() / 2];
        let one = SegmentMoments::of_split(&s, &[], origin, 0).unwrap();
        // One ascending segment: the very arithmetic of Moments::of_sorted.
        assert_eq!(one.segments, vec![Moments::of_sorted(&s, origin)]);
        let scrambled = SegmentMoments::of_split(&z, &[], origin, 0)
            .unwrap()
            .segments[0];
        let whole = Moments::of_sorted(&s, origin);
        assert_eq!(scrambled.count, whole.count);
        assert!(close(scrambled.m2, whole.m2, 1e-12));
        assert!((scrambled.mean - whole.mean).abs() < 1e-12);
    }

    #[test]
    fn split_rows_over_chunks_equal_the_in_memory_rows() {
        for offset in [0.0, 1e6, 1e9] {
            let z = scores(offset);
            let expected = fit(&z, 5, NanPolicy::Raise).unwrap();
            let thresholds: Vec<f64> = expected.rows.iter().map(|r| r.threshold).collect();
            let origin = expected.fits.center;
            let mut merged: Option<SegmentMoments> = None;
            for (a, b) in pieces(z.len()) {
                let part = SegmentMoments::of_split(&z[a..b], &thresholds, origin, 0).unwrap();
                merged = Some(match merged {
                    None => part,
                    Some(m) => m.merge(&part).unwrap(),
                });
            }
            let rows = merged
                .unwrap()
                .rows(&thresholds, &RescanState::EMPTY)
                .unwrap();
            for (row, want) in rows.iter().zip(&expected.rows) {
                assert_eq!(row.degree, want.degree);
                assert_eq!(row.n_anomalies, want.n_anomalies);
                assert!(
                    close(row.compactness, want.compactness, 1e-11)
                        || row.compactness.is_nan() && want.compactness.is_nan(),
                    "offset {offset}: {row:?} vs {want:?}"
                );
            }
            assert_eq!(
                choose_degree(&rows).map(|r| r.degree),
                expected.degree,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn split_edge_cases_follow_the_contract() {
        // All equal: every threshold leaves one side empty; var(N) = 0 gives +inf.
        let flat = [2.0; 6];
        let state = SegmentMoments::of_split(&flat, &[2.0, 3.0, f64::NAN], 0.0, 0).unwrap();
        let rows = state
            .rows(&[2.0, 3.0, f64::NAN], &RescanState::EMPTY)
            .unwrap();
        assert!(rows.iter().all(|r| r.compactness.is_nan()));
        assert_eq!(
            rows.iter().map(|r| r.n_anomalies).collect::<Vec<_>>(),
            vec![6, 0, 6]
        );
        let mixed = [1.0, 1.0, 1.0, 7.0, f64::NAN];
        let split = SegmentMoments::of_split(&mixed, &[5.0], 0.0, 0).unwrap();
        let rows = split.rows(&[5.0], &RescanState::EMPTY).unwrap();
        assert_eq!(rows[0].compactness, f64::INFINITY);
        assert_eq!(rows[0].n_anomalies, 1);
        assert!(split.rows(&[6.0], &RescanState::EMPTY).is_err());
    }

    #[test]
    fn sorted_runs_merge_and_check_bounds() {
        let s = [1.0, 2.0, 3.0, 10.0];
        let state = SegmentMoments::of_sorted_runs(&s, &[0, 2, 2, 4], 0.0, 0).unwrap();
        assert_eq!(state.segments[0], Moments::of_sorted(&[1.0, 2.0], 0.0));
        assert_eq!(state.segments[1], Moments::EMPTY);
        assert_eq!(state.segments[2], Moments::of_sorted(&[3.0, 10.0], 0.0));
        assert!(SegmentMoments::of_sorted_runs(&s, &[0, 3, 2, 4], 0.0, 0).is_err());
        assert!(SegmentMoments::of_sorted_runs(&s, &[1, 4], 0.0, 0).is_err());
        assert!(SegmentMoments::of_sorted_runs(&s, &[0, 3], 0.0, 0).is_err());
        assert!(SegmentMoments::of_sorted_runs(&s, &[], 0.0, 0).is_err());
        let other = SegmentMoments::of_sorted_runs(&s, &[0, 1, 1, 4], 1.0, 0).unwrap();
        assert!(state.merge(&other).is_err(), "origins differ");
        let merged = state
            .merge(&SegmentMoments::of_sorted_runs(&[0.0, 5.0], &[0, 1, 1, 2], 0.0, 0).unwrap())
            .unwrap();
        assert_eq!(
            merged.segments[0],
            Moments::of_sorted(&[0.0, 1.0, 2.0], 0.0)
        );
        assert_eq!(
            merged.segments[2],
            Moments::of_sorted(&[3.0, 5.0, 10.0], 0.0)
        );
    }

    #[test]
    fn histogram_projections_are_exact_on_evenly_spaced_bins() {
        // Scores evenly spaced within each bin (a different step per bin): the ramp is exact.
        let mut s = Vec::new();
        for (bin, step) in [(0, 0.5), (1, 0.25), (2, 2.0)] {
            let base = f64::from(bin) * 3000.0;
            s.extend((0..1000).map(|j| base + step * f64::from(j)));
        }
        let center = s[1500];
        let bins = SegmentMoments::of_sorted_runs(&s, &[0, 1000, 2000, 3000], center, 0).unwrap();
        let approx = ProjectionState::of_bins(&bins, 5)
            .unwrap()
            .fit(center)
            .unwrap();
        let whole = GramFit::new(&s, 5).unwrap();
        for (a, b) in approx.fitted_maxima().iter().zip(whole.fitted_maxima()) {
            assert!(close(*a, b, 1e-10), "{a} vs {b}");
        }
    }

    /// Cuts of a short curve into pieces: every split into two, and one-score pieces.
    fn splits_of(len: usize) -> Vec<Vec<(usize, usize)>> {
        let mut all: Vec<Vec<(usize, usize)>> =
            (0..=len).map(|cut| vec![(0, cut), (cut, len)]).collect();
        all.push((0..len).map(|i| (i, i + 1)).collect());
        all
    }

    /// The distributed path on `z` cut into `pieces`, at the in-memory fit's
    /// thresholds: scan, moments between the thresholds, the rescan of the
    /// untrusted sides, and the rows.
    fn distributed_rows(
        z: &[f64],
        pieces: &[(usize, usize)],
        thresholds: &[f64],
    ) -> Vec<DegreeRow> {
        let scan = pieces.iter().fold(ScanState::EMPTY, |all, &(a, b)| {
            all.merge(ScanState::of_chunk(&z[a..b], a))
        });
        let exponent = scan.scale_exponent().unwrap_or(0);
        let s = sorted(z);
        let median = s[s.len() / 2];
        let split = pieces
            .iter()
            .map(|&(a, b)| SegmentMoments::of_split(&z[a..b], thresholds, median, exponent))
            .reduce(|all, part| all?.merge(&part?))
            .unwrap()
            .unwrap();
        let ranges = split.untrusted_ranges(thresholds).unwrap();
        let rescan = pieces
            .iter()
            .map(|&(a, b)| RescanState::of_chunk(&z[a..b], &ranges))
            .reduce(|all, part| all?.merge(&part?))
            .unwrap()
            .unwrap();
        split.rows(thresholds, &rescan).unwrap()
    }

    fn assert_rows_agree(z: &[f64], pieces: &[(usize, usize)]) {
        let expected = fit(z, 5, NanPolicy::Raise).unwrap();
        let thresholds: Vec<f64> = expected.rows.iter().map(|r| r.threshold).collect();
        let rows = distributed_rows(z, pieces, &thresholds);
        for (row, want) in rows.iter().zip(&expected.rows) {
            assert_eq!(row.n_anomalies, want.n_anomalies, "{z:?} in {pieces:?}");
            let (a, b) = (row.compactness, want.compactness);
            assert!(
                a == b || a.is_nan() && b.is_nan() || close(a, b, 1e-12),
                "{z:?} in {pieces:?}: {row:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn score_range_equals_a_plain_fold_with_any_non_finite_scores() {
        let naive = |z: &[f64]| {
            z.iter()
                .filter(|v| v.is_finite())
                .fold(ScoreRange::EMPTY, |r, &v| r.including(v))
        };
        let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 5e-324];
        for len in [0usize, 1, 7, 31, 32, 33, 64, 100, 1000] {
            let base: Vec<f64> = (0..len)
                .map(|i| f64::from((i * 7919 % 1009) as u32) - 500.0)
                .collect();
            assert_eq!(ScoreRange::of_finite(&base), naive(&base), "len {len}");
            for (k, &special) in specials.iter().enumerate() {
                for at in [0, len / 2, len.saturating_sub(1)] {
                    let mut z = base.clone();
                    if let Some(slot) = z.get_mut(at) {
                        *slot = special;
                    }
                    if len > 3 {
                        z[(at + k + 1) % len] = specials[(k + 1) % specials.len()];
                    }
                    let (got, want) = (ScoreRange::of_finite(&z), naive(&z));
                    assert_eq!(got, want, "len {len}, {special} at {at}");
                }
            }
        }
        let all_nan = [f64::NAN; 40];
        assert_eq!(ScoreRange::of_finite(&all_nan), ScoreRange::EMPTY);
        let infinities = [f64::INFINITY, f64::NEG_INFINITY, 2.0];
        assert_eq!(
            ScoreRange::of_finite(&infinities),
            ScoreRange { min: 2.0, max: 2.0 }
        );
        let narrow: Vec<f32> = vec![1.5, f32::NAN, -3.25, f32::INFINITY];
        assert_eq!(
            ScoreRange::of_finite(&narrow),
            ScoreRange {
                min: -3.25,
                max: 1.5
            }
        );
    }

    #[test]
    fn scan_range_gives_the_in_memory_rescaling() {
        let cases: [&[f64]; 6] = [
            &[1.0, -3.0, 2.0],
            &[0.0, 1.3e-305, 1.0],
            &[5e-324, 1e-323, 0.0, 2e-323],
            &[1e308, 1.7e308, -1.79e308],
            &[f64::NAN, 0.0, 0.0, f64::INFINITY],
            &[-7.34e211, -1.18e-119, 3.7e95],
        ];
        for z in cases {
            let in_memory = crate::sort::sorted_finite(z, NanPolicy::Omit)
                .unwrap()
                .values;
            let want = crate::threshold::extreme_scale_exponent(&in_memory);
            for pieces in splits_of(z.len()) {
                let scan = pieces.iter().fold(ScanState::EMPTY, |all, &(a, b)| {
                    all.merge(ScanState::of_chunk(&z[a..b], a))
                });
                assert_eq!(scan.scale_exponent(), want, "{z:?}");
                assert_eq!(scan.range.min, in_memory[0]);
                assert_eq!(scan.range.max, in_memory[in_memory.len() - 1]);
            }
        }
        assert_eq!(ScanState::of_chunk(&[f64::NAN], 0).range, ScoreRange::EMPTY);
        assert_eq!(ScanState::EMPTY.scale_exponent(), None);
    }

    #[test]
    fn extreme_splits_over_any_chunking_equal_the_in_memory_rows() {
        let far = crate::threshold::TIGHT_CLUSTER_FAR_FROM_THE_BULK.to_vec();
        let cases: Vec<Vec<f64>> = vec![
            // N = {0, 1.3e-305}: squares underflow; |A| = 1, so Comp = 0.
            vec![0.0, 1.3e-305, 1.0],
            // N spreads 2^-500 (m2 below SAFE_M2), A spreads 1.
            vec![0.0, 2f64.powi(-500), 3.0, 4.0, 3.5],
            // Constant sides, read from the ranges.
            vec![1.0, 1.0, 1.0, 7.0, 7.0, 1.0],
            vec![0.0, 1.0, 2.0, 9.0, 9.0],
            // Subnormal curve (rescaled by 2^1073).
            vec![5e-324, 1e-323, 0.0, 2e-323, 5e-324, 1e-320],
            // Near the largest float (rescaled, spreads that overflow).
            vec![1e308, 1.7e308, 1e308, 1.1e308, 1.79e308],
            vec![1.797e308, -1.797e308, 0.0, 1e307, -1e307],
            // A tight side far from the median.
            far,
            // A rescaled outlier that underflows the normal side's squares.
            vec![-1.19e-7, -3.72e16, 1.4826, 6.44e234],
        ];
        for z in &cases {
            for pieces in splits_of(z.len()) {
                assert_rows_agree(z, &pieces);
            }
        }
    }

    #[test]
    fn ordinary_splits_need_no_rescan() {
        for offset in [0.0, 1e6, 1e9] {
            let z = scores(offset);
            let expected = fit(&z, 5, NanPolicy::Raise).unwrap();
            let thresholds: Vec<f64> = expected.rows.iter().map(|r| r.threshold).collect();
            let split = SegmentMoments::of_split(&z, &thresholds, expected.fits.center, 0).unwrap();
            assert!(split.untrusted_ranges(&thresholds).unwrap().is_empty());
        }
    }

    #[test]
    fn rescan_over_any_split_equals_the_side_measured_whole() {
        // The unsorted side {0, 2^-600 * k}, inside scores it must leave out.
        let z: Vec<f64> = [9.0, 3.0, 0.0, 5.0, -1.0, 7.0, 1.0, 2.0]
            .iter()
            .map(|&k| if k > 8.0 { 1.0 } else { k * 2f64.powi(-600) })
            .collect();
        let range = ScoreRange {
            min: 0.0,
            max: 7.0 * 2f64.powi(-600),
        };
        let side: Vec<f64> = sorted(&z)
            .into_iter()
            .filter(|&v| range.contains(v))
            .collect();
        let whole = ScaledM2::of_sorted(&side);
        for pieces in splits_of(z.len()) {
            let merged = pieces
                .iter()
                .map(|&(a, b)| RescanState::of_chunk(&z[a..b], &[range]).unwrap())
                .reduce(|all, part| all.merge(&part).unwrap())
                .unwrap();
            let got = merged.scaled_m2(range, side.len()).unwrap();
            assert_eq!(got.exponent, whole.exponent);
            assert!(close(got.m2, whole.m2, 1e-15), "{got:?} vs {whole:?}");
        }
        // Across the whole float range: the spread overflows and is halved.
        let widest = ScoreRange {
            min: -f64::MAX,
            max: f64::MAX,
        };
        let z = [f64::MAX, 0.0, -f64::MAX];
        let got = RescanState::of_chunk(&z, &[widest])
            .unwrap()
            .scaled_m2(widest, 3)
            .unwrap();
        let want = ScaledM2::of_sorted(&sorted(&z));
        assert_eq!(got.exponent, want.exponent);
        assert!(close(got.m2, want.m2, 1e-15), "{got:?} vs {want:?}");
    }

    #[test]
    fn rescan_and_scaled_states_refuse_what_does_not_fit() {
        let range = ScoreRange { min: 0.0, max: 1.0 };
        let state = RescanState::of_chunk(&[0.0, 0.5, 1.0, 2.0], &[range]).unwrap();
        assert!(state.scaled_m2(range, 3).is_ok());
        // Another count (the input changed between reads), or a range not measured.
        assert!(state.scaled_m2(range, 4).is_err());
        let other = ScoreRange { min: 0.0, max: 2.0 };
        assert!(state.scaled_m2(other, 4).is_err());
        assert!(state.merge(&RescanState::EMPTY).is_err());
        // A constant, reversed or non-finite range has no spread to measure.
        for bad in [
            (1.0, 1.0),
            (2.0, 1.0),
            (0.0, f64::INFINITY),
            (f64::NAN, 1.0),
        ] {
            let range = ScoreRange {
                min: bad.0,
                max: bad.1,
            };
            assert!(RescanState::of_chunk(&[1.0], &[range]).is_err(), "{bad:?}");
        }
        // Exponents no scan gives.
        for exponent in [i32::MIN, -1074, 1026, i32::MAX] {
            assert!(SegmentMoments::of_split(&[1.0], &[], 0.0, exponent).is_err());
            assert!(SegmentMoments::of_sorted_runs(&[1.0], &[0, 1], 0.0, exponent).is_err());
            assert!(
                ProjectionState::of_sorted_scaled(&[1.0, 2.0, 3.0], 0, 3, 0.0, 1, exponent)
                    .is_err()
            );
        }
        let a = SegmentMoments::of_split(&[1.0], &[], 0.0, 0).unwrap();
        let b = SegmentMoments::of_split(&[1.0], &[], 0.0, 600).unwrap();
        assert!(a.merge(&b).is_err(), "exponents differ");
    }

    #[test]
    fn rescaled_projections_give_the_in_memory_candidates() {
        let base = sorted(&scores(0.0));
        for exponent in [-1000, -600, 600, 1000] {
            let s: Vec<f64> = base.iter().map(|&v| pow2_scale(v, exponent)).collect();
            let n = s.len();
            let scan = ScanState::of_chunk(&s, 0);
            let e = scan.scale_exponent().unwrap();
            let mut merged =
                ProjectionState::of_sorted_scaled(&s[..0], 0, n, s[n / 3], 5, e).unwrap();
            for (a, b) in pieces(n) {
                let part =
                    ProjectionState::of_sorted_scaled(&s[a..b], a, n, s[n / 3], 5, e).unwrap();
                merged = merged.merge(&part).unwrap();
            }
            let (fits, thresholds) = merged.fit_scaled(s[n / 2], e).unwrap();
            let expected = fit(&s, 5, NanPolicy::Raise).unwrap();
            assert!(close(fits.center, expected.fits.center, 1e-15));
            for (tau, row) in thresholds.iter().zip(&expected.rows) {
                assert!(
                    close(*tau, row.threshold, 1e-12),
                    "2^{exponent}: {tau} vs {row:?}"
                );
            }
        }
    }
}
