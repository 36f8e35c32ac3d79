//! Mergeable partial states of the L-trend fit, for scores spread over many machines.
//!
//! The in-memory fit ([`crate::threshold::fit`]) reads three things from the scores,
//! and each is a sum over scores, so each has a small state that a piece of the data
//! gives and that merges with the states of the other pieces:
//!
//! - [`ScanState`]: how many scores a chunk holds, how many are finite, and the
//!   global index of the first non-finite one.
//! - [`ProjectionState`]: the projections of the sorted curve on the Gram
//!   polynomials, from a run of sorted scores whose global ranks are known (a
//!   bucket of a distributed sort, placed by the counts of the buckets below it).
//! - [`SegmentMoments`]: (count, mean, M2) of the scores in each value segment
//!   (between the candidate thresholds, or the bins of a histogram), computed
//!   without sorting.
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
//! The states are plain values: the Python glue rebuilds them from their fields,
//! which is how they pickle between processes.

use crate::error::KernelError;
use crate::polyfit::{add_rank_projections, check_fit_size, GramFit};
use crate::sort::{count_non_finite, NanPolicy, Score};
use crate::threshold::{compactness, DegreeRow, MIN_SCORES};
use crate::variance::Moments;

fn invalid(reason: String) -> KernelError {
    KernelError::InvalidPartial { reason }
}

/// Counts of a chunk of raw scores, and where its first non-finite score is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanState {
    /// Scores seen, finite or not.
    pub n_scores: usize,
    /// Finite scores among them.
    pub n_finite: usize,
    /// Global index of the first NaN or infinite score, if any.
    pub first_non_finite: Option<usize>,
}

impl ScanState {
    /// The state of no scores.
    pub const EMPTY: ScanState = ScanState {
        n_scores: 0,
        n_finite: 0,
        first_non_finite: None,
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
    /// ```
    pub fn of_chunk<T: Score>(chunk: &[T], start: usize) -> ScanState {
        let (count, first) = count_non_finite(chunk);
        ScanState {
            n_scores: chunk.len(),
            n_finite: chunk.len() - count,
            first_non_finite: first.map(|i| start + i),
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
        }
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
}

/// Per-segment moment accumulators of the corrected two-pass algorithm.
#[derive(Clone, Copy)]
struct Accumulator {
    count: usize,
    /// The first value seen: squares are taken about it, as `Moments::of_sorted`
    /// takes them about a segment's first value.
    shift: f64,
    sum: f64,
    min: f64,
    max: f64,
    squares: f64,
    residual: f64,
}

impl Accumulator {
    const EMPTY: Accumulator = Accumulator {
        count: 0,
        shift: 0.0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        squares: 0.0,
        residual: 0.0,
    };
}

/// Moments of the finite `values`, each in the segment `segment_of(value)`.
///
/// On one ascending segment this is `Moments::of_sorted` bit for bit (same shift,
/// same sums in the same order); on unsorted values the shift is the first value
/// seen, which is as good: every value lies within the segment's spread of it.
fn moments_by_segment<T, F>(
    values: &[T],
    n_segments: usize,
    origin: f64,
    segment_of: F,
) -> Vec<Moments>
where
    T: Score,
    F: Fn(f64) -> usize,
{
    let mut acc = vec![Accumulator::EMPTY; n_segments];
    let finite = || {
        values
            .iter()
            .filter(|z| z.is_finite_score())
            .map(|z| z.to_f64())
    };
    for z in finite() {
        let a = &mut acc[segment_of(z)];
        if a.count == 0 {
            a.shift = z;
        }
        a.count += 1;
        a.sum += z - a.shift;
        a.min = a.min.min(z);
        a.max = a.max.max(z);
    }
    let means: Vec<f64> = acc.iter().map(|a| a.sum / a.count.max(1) as f64).collect();
    for z in finite() {
        let s = segment_of(z);
        let a = &mut acc[s];
        if a.min != a.max {
            let d = (z - a.shift) - means[s];
            a.squares += d * d;
            a.residual += d;
        }
    }
    acc.iter()
        .zip(means)
        .map(|(a, mean)| {
            if a.count == 0 {
                Moments::EMPTY
            } else if a.min == a.max {
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
        .collect()
}

/// Moments (count, mean, M2) of the scores in each of a fixed list of segments.
///
/// Two kinds: a split state, whose segments lie between the ascending `edges`
/// (segment j holds `edges[j-1] <= z < edges[j]`), and a state of runs (no edges)
/// that the caller cut from sorted scores, for example the bins of a histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentMoments {
    /// Means are relative to it (see `variance.rs`).
    pub origin: f64,
    /// Ascending distinct cut points; empty for a state of runs.
    pub edges: Vec<f64>,
    pub segments: Vec<Moments>,
}

impl SegmentMoments {
    /// The moments of the finite `values` below, between and above the thresholds.
    ///
    /// The thresholds may come in any order, with repeats; NaN thresholds cut
    /// nothing. No sorting of the values: each finds its segment by binary search.
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::SegmentMoments;
    /// let state = SegmentMoments::of_split(&[5.0, 1.0, 9.0, 2.0], &[4.0, 4.0], 0.0);
    /// assert_eq!(state.edges, vec![4.0]);
    /// let counts: Vec<usize> = state.segments.iter().map(|m| m.count).collect();
    /// assert_eq!(counts, vec![2, 2]);
    /// ```
    pub fn of_split<T: Score>(values: &[T], thresholds: &[f64], origin: f64) -> SegmentMoments {
        let mut edges: Vec<f64> = thresholds.iter().copied().filter(|t| !t.is_nan()).collect();
        edges.sort_by(f64::total_cmp);
        edges.dedup_by(|a, b| a == b);
        let segments = moments_by_segment(values, edges.len() + 1, origin, |z| {
            edges.partition_point(|&e| e <= z)
        });
        SegmentMoments {
            origin,
            edges,
            segments,
        }
    }

    /// The moments of consecutive runs `sorted[bounds[j]..bounds[j + 1]]` of finite
    /// ascending scores, for example the bins of a histogram of a sorted chunk.
    ///
    /// Each run's moments are `Moments::of_sorted`, so a run of equal scores has
    /// zero variance exactly.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] unless `bounds` ascends from 0 to `sorted.len()`.
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial::SegmentMoments;
    /// let state = SegmentMoments::of_sorted_runs(&[1.0, 2.0, 2.0, 7.0], &[0, 1, 3, 4], 0.0);
    /// let counts: Vec<usize> = state.unwrap().segments.iter().map(|m| m.count).collect();
    /// assert_eq!(counts, vec![1, 2, 1]);
    /// ```
    pub fn of_sorted_runs<T: Score>(
        sorted: &[T],
        bounds: &[usize],
        origin: f64,
    ) -> Result<SegmentMoments, KernelError> {
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
        Ok(SegmentMoments {
            origin,
            edges: Vec::new(),
            segments: bounds
                .windows(2)
                .map(|w| Moments::of_sorted(&sorted[w[0]..w[1]], origin))
                .collect(),
        })
    }

    /// The moments of the union of two disjoint sets of scores, segment by segment.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] unless both have the same origin, edges and
    /// number of segments.
    pub fn merge(&self, other: &SegmentMoments) -> Result<SegmentMoments, KernelError> {
        if self.origin.to_bits() != other.origin.to_bits()
            || self.edges != other.edges
            || self.segments.len() != other.segments.len()
        {
            return Err(invalid(
                "segment moments with different origins, edges or segment counts do not merge"
                    .into(),
            ));
        }
        Ok(SegmentMoments {
            origin: self.origin,
            edges: self.edges.clone(),
            segments: self
                .segments
                .iter()
                .zip(&other.segments)
                .map(|(&a, &b)| a.merge(b))
                .collect(),
        })
    }

    /// One row per threshold (degree `1, 2, ...` in order): the split `z < tau` vs
    /// `z >= tau` of a split state made with these thresholds, as [`crate::threshold::fit`] reports it.
    ///
    /// A NaN threshold puts no score below it (the in-memory `partition_point`
    /// finds no `z < NaN`), so every score counts as anomalous and the row is no candidate.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] when a threshold is not one of the edges.
    pub fn rows(&self, thresholds: &[f64]) -> Result<Vec<DegreeRow>, KernelError> {
        // prefix[j]: segments 0..j; suffix[j]: segments j.. .
        let mut prefix = vec![Moments::EMPTY];
        for &segment in &self.segments {
            let last = *prefix.last().unwrap_or(&Moments::EMPTY);
            prefix.push(last.merge(segment));
        }
        let mut suffix = vec![Moments::EMPTY];
        for &segment in self.segments.iter().rev() {
            let last = *suffix.last().unwrap_or(&Moments::EMPTY);
            suffix.push(segment.merge(last));
        }
        suffix.reverse();
        thresholds
            .iter()
            .enumerate()
            .map(|(i, &tau)| {
                let cut = if tau.is_nan() {
                    0
                } else {
                    1 + self.edges.iter().position(|&e| e == tau).ok_or_else(|| {
                        invalid(format!("threshold {tau} is not one of the split's edges"))
                    })?
                };
                let (below, above) = (prefix[cut], suffix[cut]);
                Ok(DegreeRow {
                    degree: i + 1,
                    threshold: tau,
                    compactness: compactness(below, above),
                    n_anomalies: above.count,
                })
            })
            .collect()
    }
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
        let one = SegmentMoments::of_split(&s, &[], origin);
        // One ascending segment: the very arithmetic of Moments::of_sorted.
        assert_eq!(one.segments, vec![Moments::of_sorted(&s, origin)]);
        let scrambled = SegmentMoments::of_split(&z, &[], origin).segments[0];
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
                let part = SegmentMoments::of_split(&z[a..b], &thresholds, origin);
                merged = Some(match merged {
                    None => part,
                    Some(m) => m.merge(&part).unwrap(),
                });
            }
            let rows = merged.unwrap().rows(&thresholds).unwrap();
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
        let state = SegmentMoments::of_split(&flat, &[2.0, 3.0, f64::NAN], 0.0);
        let rows = state.rows(&[2.0, 3.0, f64::NAN]).unwrap();
        assert!(rows.iter().all(|r| r.compactness.is_nan()));
        assert_eq!(
            rows.iter().map(|r| r.n_anomalies).collect::<Vec<_>>(),
            vec![6, 0, 6]
        );
        let mixed = [1.0, 1.0, 1.0, 7.0, f64::NAN];
        let rows = SegmentMoments::of_split(&mixed, &[5.0], 0.0)
            .rows(&[5.0])
            .unwrap();
        assert_eq!(rows[0].compactness, f64::INFINITY);
        assert_eq!(rows[0].n_anomalies, 1);
        assert!(SegmentMoments::of_split(&mixed, &[5.0], 0.0)
            .rows(&[6.0])
            .is_err());
    }

    #[test]
    fn sorted_runs_merge_and_check_bounds() {
        let s = [1.0, 2.0, 3.0, 10.0];
        let state = SegmentMoments::of_sorted_runs(&s, &[0, 2, 2, 4], 0.0).unwrap();
        assert_eq!(state.segments[0], Moments::of_sorted(&[1.0, 2.0], 0.0));
        assert_eq!(state.segments[1], Moments::EMPTY);
        assert_eq!(state.segments[2], Moments::of_sorted(&[3.0, 10.0], 0.0));
        assert!(SegmentMoments::of_sorted_runs(&s, &[0, 3, 2, 4], 0.0).is_err());
        assert!(SegmentMoments::of_sorted_runs(&s, &[1, 4], 0.0).is_err());
        assert!(SegmentMoments::of_sorted_runs(&s, &[0, 3], 0.0).is_err());
        assert!(SegmentMoments::of_sorted_runs(&s, &[], 0.0).is_err());
        let other = SegmentMoments::of_sorted_runs(&s, &[0, 1, 1, 4], 1.0).unwrap();
        assert!(state.merge(&other).is_err(), "origins differ");
        let merged = state
            .merge(&SegmentMoments::of_sorted_runs(&[0.0, 5.0], &[0, 1, 1, 2], 0.0).unwrap())
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
        let bins = SegmentMoments::of_sorted_runs(&s, &[0, 1000, 2000, 3000], center).unwrap();
        let approx = ProjectionState::of_bins(&bins, 5)
            .unwrap()
            .fit(center)
            .unwrap();
        let whole = GramFit::new(&s, 5).unwrap();
        for (a, b) in approx.fitted_maxima().iter().zip(whole.fitted_maxima()) {
            assert!(close(*a, b, 1e-10), "{a} vs {b}");
        }
    }
}
