//! Partial states of the breakpoint methods (`knee`, `log_knee`, `two_segment`,
//! `tail_aware`), for scores spread over many machines.
//!
//! A distributed sort puts the finite scores in buckets, each a run of the sorted
//! curve whose global ranks the counts of the buckets below it give. Each method
//! is a scan of the curve whose every step needs a few numbers about the whole,
//! so a bucket, sorted, scores its own ranks once those numbers are known:
//!
//! - [`bucket_summary`] (first pass): the deepest point of the bucket below the
//!   raw chord (which needs only `n` and the two extreme scores, known from the
//!   scan), the two-line moments of its points (see
//!   [`crate::two_segment::LineMoments`]) and its scores at requested ranks (the
//!   quartiles of the log scale).
//! - [`bucket_cuts`] (second pass): the deepest point below the chord of the
//!   signed-log curve (given its centre and unit), and the best two-segment
//!   breakpoint in the bucket (given the merged moments before and after it).
//! - [`RankCounts`]: per chunk, how many scores lie below a knee point, and the
//!   smallest above it, which turn the deepest point into a breakpoint and a
//!   threshold without a sort.
//!
//! Exactness: the depths are computed with the in-memory expression
//! ([`crate::knee::Chord`]) at the same ranks on the same values, so the deepest
//! point is the in-memory one bit for bit (unless the log scale's unit is the
//! mean deviation, whose sum is added in another order). The two-line errors
//! start from moments merged by Chan's formula rather than pushed one by one, so
//! they agree with the in-memory ones to rounding; `docs/methods.md` allows
//! another breakpoint only where two errors agree to a relative 1e-9.
//!
//! Extreme magnitudes: every score is read as `z * 2^-exponent` (the in-memory
//! rescaling, [`crate::threshold::range_scale_exponent`]) for every comparison and
//! every depth, as the in-memory split does; thresholds are scores as given.

use crate::error::KernelError;
use crate::knee::Chord;
use crate::log_knee::{log_scale_by, signed_log};
use crate::partial::check_exponent;
use crate::sort::Score;
use crate::threshold::pow2_scale;
use crate::two_segment::{best_breakpoint_in, LineMoments, Stretch};

fn invalid(reason: String) -> KernelError {
    KernelError::InvalidPartial { reason }
}

/// What every bucket needs to know about the whole curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitFrame {
    /// Points on the whole curve (the finite scores of all chunks).
    pub n: usize,
    /// The smallest and largest finite score, as given.
    pub min: f64,
    pub max: f64,
    /// The in-memory rescaling: scores are read as `z * 2^-exponent` (0: as given).
    pub exponent: i32,
    /// Subtracted from every rescaled score in the two-line moments (any value
    /// near the median keeps them precise).
    pub origin: f64,
}

impl SplitFrame {
    /// A frame, checked.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] for `n == 0`, a range that is not finite
    /// and ordered, a non-finite origin or an exponent the scan cannot give.
    pub fn new(
        n: usize,
        min: f64,
        max: f64,
        exponent: i32,
        origin: f64,
    ) -> Result<SplitFrame, KernelError> {
        let ordered = min.is_finite() && max.is_finite() && min <= max;
        if n == 0 || !ordered || !origin.is_finite() {
            return Err(invalid(format!(
                "split frame of {n} scores from {min} to {max} about {origin}"
            )));
        }
        check_exponent(exponent)?;
        Ok(SplitFrame {
            n,
            min,
            max,
            exponent,
            origin,
        })
    }

    /// The score as the in-memory split reads it.
    #[inline]
    pub fn scaled(&self, z: f64) -> f64 {
        rescaled(z, self.exponent)
    }

    /// The chord of `curve` (a reading of the scores as given) from the smallest
    /// score to the largest, or None when it is flat (no knee).
    fn chord(&self, curve: impl Fn(f64) -> f64) -> Option<Chord> {
        let low = curve(self.min);
        let range = curve(self.max) - low;
        (self.n >= 3 && range > 0.0).then(|| Chord::new(self.n, low, range))
    }

    fn check_place(&self, offset: usize, len: usize) -> Result<(), KernelError> {
        if offset.checked_add(len).is_none_or(|end| end > self.n) {
            return Err(invalid(format!(
                "a bucket of {len} scores at rank {offset} of a curve of {}",
                self.n
            )));
        }
        Ok(())
    }
}

/// `z * 2^-exponent`, the in-memory split's reading of a score (`z` for exponent 0).
#[inline]
fn rescaled(z: f64, exponent: i32) -> f64 {
    if exponent == 0 {
        z
    } else {
        pow2_scale(z, -exponent)
    }
}

/// How the scores are read for a knee: as rescaled, or on the signed-log scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    Raw,
    /// `signed_log(z, center, unit)` of the rescaled score.
    Log {
        center: f64,
        unit: f64,
    },
}

impl Reading {
    /// The value of the (rescaled) score `scaled` on this reading.
    #[inline]
    pub fn read(&self, scaled: f64) -> f64 {
        match *self {
            Reading::Raw => scaled,
            Reading::Log { center, unit } => signed_log(scaled, center, unit),
        }
    }
}

/// The deepest point of part of a curve below its chord.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KneePoint {
    /// Global rank.
    pub index: usize,
    /// `x - y` in unit-square coordinates, as [`crate::knee::knee`] measures it.
    pub depth: f64,
    /// The point's value on its reading (what [`RankCounts`] compares against).
    pub key: f64,
}

impl KneePoint {
    /// The deeper of two points; a tie goes to the lower rank (the first maximum).
    pub fn deeper(self, other: KneePoint) -> KneePoint {
        let other_wins =
            other.depth > self.depth || (other.depth == self.depth && other.index < self.index);
        if other_wins {
            other
        } else {
            self
        }
    }
}

/// The deepest point of a sorted bucket at ranks `offset..` below the chord of `reading`.
fn deepest<T: Score>(
    sorted: &[T],
    offset: usize,
    frame: &SplitFrame,
    reading: Reading,
) -> Option<KneePoint> {
    let read = |z: f64| reading.read(frame.scaled(z));
    let chord = frame.chord(read)?;
    let points = sorted
        .iter()
        .enumerate()
        .map(|(j, z)| (offset + j, read(z.to_f64())));
    let (index, depth) = chord.deepest(points)?;
    Some(KneePoint {
        index,
        depth,
        key: read(sorted[index - offset].to_f64()),
    })
}

/// What the first pass learns from one sorted bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSummary {
    /// Scores in the bucket.
    pub count: usize,
    /// Its largest score, as given (None when empty).
    pub last: Option<f64>,
    /// `(rank, score as given)` for the requested ranks the bucket holds.
    pub picked: Vec<(usize, f64)>,
    /// Its deepest point below the raw chord (None for a flat curve or no scores).
    pub knee: Option<KneePoint>,
    /// Moments of its points `(rank, z * 2^-exponent - origin)`.
    pub moments: LineMoments,
}

/// The first pass over a sorted bucket holding the global ranks `offset..offset + len`.
///
/// # Errors
/// [`KernelError::InvalidPartial`] when the ranks run past the frame's `n`.
///
/// # Examples
/// ```
/// use ltrend::knee::knee;
/// use ltrend::partial_split::{bucket_summary, SplitFrame};
/// let s = [0.0, 0.1, 0.2, 0.3, 5.0, 9.0];
/// let frame = SplitFrame::new(6, 0.0, 9.0, 0, 0.2).unwrap();
/// let low = bucket_summary(&s[..3], 0, &frame, &[2, 3]).unwrap();
/// let high = bucket_summary(&s[3..], 3, &frame, &[2, 3]).unwrap();
/// assert_eq!((low.picked.clone(), high.picked.clone()), (vec![(2, 0.2)], vec![(3, 0.3)]));
/// let best = low.knee.unwrap().deeper(high.knee.unwrap());
/// assert_eq!(best.index, knee(&s).unwrap().index);
/// ```
pub fn bucket_summary<T: Score>(
    sorted: &[T],
    offset: usize,
    frame: &SplitFrame,
    probes: &[usize],
) -> Result<BucketSummary, KernelError> {
    frame.check_place(offset, sorted.len())?;
    let mut moments = LineMoments::EMPTY;
    for (j, z) in sorted.iter().enumerate() {
        moments.push((offset + j) as f64, frame.scaled(z.to_f64()) - frame.origin);
    }
    let picked = probes
        .iter()
        .filter(|&&rank| rank >= offset && rank < offset + sorted.len())
        .map(|&rank| (rank, sorted[rank - offset].to_f64()))
        .collect();
    Ok(BucketSummary {
        count: sorted.len(),
        last: sorted.last().map(|z| z.to_f64()),
        picked,
        knee: deepest(sorted, offset, frame, Reading::Raw),
        moments,
    })
}

/// The best two-segment breakpoint within a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentCut {
    /// Global rank `k`: the scores from rank `k` on are anomalous.
    pub breakpoint: usize,
    /// Total squared error of the two lines at `k` (on the rescaled scores).
    pub sse: f64,
    /// The score at rank `k`, as given.
    pub threshold: f64,
}

impl SegmentCut {
    /// The better of two cuts: the smaller error, a tie to the lower breakpoint.
    pub fn better(self, other: SegmentCut) -> SegmentCut {
        let other_wins =
            other.sse < self.sse || (other.sse == self.sse && other.breakpoint < self.breakpoint);
        if other_wins {
            other
        } else {
            self
        }
    }
}

/// What the second pass needs for the two-segment fit of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Surroundings {
    /// Moments of the points below the bucket, and of those above it (the
    /// merged [`BucketSummary::moments`] of the other buckets).
    pub before: LineMoments,
    pub after: LineMoments,
    /// The largest score below the bucket, as given (None for the lowest bucket).
    pub previous: Option<f64>,
}

/// What the second pass learns from one sorted bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketCuts {
    /// Its deepest point below the chord of the signed-log curve.
    pub log_knee: Option<KneePoint>,
    /// Its best two-segment breakpoint.
    pub two_segment: Option<SegmentCut>,
}

/// The second pass over a sorted bucket at global ranks `offset..`: the log
/// knee's candidate when `log_scale` (centre and unit, rescaled) is given, the
/// two-segment candidate when `around` is.
///
/// # Errors
/// [`KernelError::InvalidPartial`] when the ranks run past the frame's `n`, or
/// the moments around the bucket do not add up to `n` points with it, or the
/// largest score below it is missing (rank above 0) or given (rank 0).
///
/// # Examples
/// ```
/// use ltrend::partial_split::{bucket_cuts, bucket_summary, SplitFrame, Surroundings};
/// use ltrend::two_segment::{two_segment, LineMoments};
/// let s = [0.0, 0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0];
/// let frame = SplitFrame::new(8, 0.0, 7.0, 0, 0.3).unwrap();
/// let (low, high) = (&s[..5], &s[5..]);
/// let below = bucket_summary(low, 0, &frame, &[]).unwrap();
/// let around = Surroundings { before: below.moments, after: LineMoments::EMPTY, previous: below.last };
/// let cuts = bucket_cuts(high, 5, &frame, None, Some(around)).unwrap();
/// assert_eq!(cuts.two_segment.unwrap().breakpoint, two_segment(&s).unwrap().breakpoint);
/// ```
pub fn bucket_cuts<T: Score>(
    sorted: &[T],
    offset: usize,
    frame: &SplitFrame,
    log_scale: Option<(f64, f64)>,
    around: Option<Surroundings>,
) -> Result<BucketCuts, KernelError> {
    frame.check_place(offset, sorted.len())?;
    let log_knee = log_scale
        .and_then(|(center, unit)| deepest(sorted, offset, frame, Reading::Log { center, unit }));
    let two_segment = match around {
        None => None,
        Some(around) => segment_cut(sorted, offset, frame, &around)?,
    };
    Ok(BucketCuts {
        log_knee,
        two_segment,
    })
}

fn segment_cut<T: Score>(
    sorted: &[T],
    offset: usize,
    frame: &SplitFrame,
    around: &Surroundings,
) -> Result<Option<SegmentCut>, KernelError> {
    let len = sorted.len();
    // The place was checked, so offset + len cannot overflow; after.count comes
    // from the caller and is checked here.
    let counted = around.after.count.checked_add(offset + len);
    if around.before.count != offset || counted != Some(frame.n) {
        return Err(invalid(format!(
            "moments of {} points before and {} after a bucket at ranks {offset}..{} of {}",
            around.before.count,
            around.after.count,
            offset + len,
            frame.n
        )));
    }
    // Without the score below it, the bucket's first rank could not be a candidate.
    if around.previous.is_some() != (offset > 0) {
        return Err(invalid(format!(
            "a bucket at rank {offset} needs the largest score below it exactly when \
             its rank is not 0"
        )));
    }
    let stretch = Stretch {
        offset,
        len,
        n: frame.n,
        before: around.before,
        after: around.after,
    };
    let scaled = |j: usize| frame.scaled(sorted[j].to_f64());
    let previous = around.previous.map(|p| frame.scaled(p));
    let rises = |j: usize| {
        let below = if j == 0 {
            previous
        } else {
            Some(scaled(j - 1))
        };
        below.is_some_and(|b| b < scaled(j))
    };
    let found = best_breakpoint_in(&stretch, |j| scaled(j) - frame.origin, rises);
    Ok(found.map(|(k, sse, _)| SegmentCut {
        breakpoint: k,
        sse,
        threshold: sorted[k - offset].to_f64(),
    }))
}

/// The centre and unit of the log scale from the scores at [`crate::log_knee::quantile_ranks`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LogScale {
    /// `(center, unit)` on the rescaled scores.
    Found { center: f64, unit: f64 },
    /// The quartiles coincide: the unit is the mean absolute deviation from
    /// `center`, which needs one more pass (`sum |z * 2^-exponent - center|`).
    NeedsDeviation { center: f64 },
    /// No spread: no log knee.
    NoSpread,
}

/// The log scale of a curve of `n` scores from its scores (as given) at the
/// quartile ranks, and the total absolute deviation once it is known.
///
/// # Errors
/// [`KernelError::InvalidPartial`] when a needed rank is missing from `picked`.
///
/// # Examples
/// ```
/// use ltrend::partial_split::{log_scale_of_ranks, LogScale};
/// let picked = [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)];
/// let scale = log_scale_of_ranks(5, &picked, 0, None).unwrap();
/// assert_eq!(scale, LogScale::Found { center: 2.0, unit: 2.0 });
/// ```
pub fn log_scale_of_ranks(
    n: usize,
    picked: &[(usize, f64)],
    exponent: i32,
    deviation: Option<f64>,
) -> Result<LogScale, KernelError> {
    if n == 0 {
        return Err(invalid("a log scale of no scores".to_string()));
    }
    check_exponent(exponent)?;
    let missing = crate::log_knee::quantile_ranks(n)
        .into_iter()
        .find(|rank| !picked.iter().any(|(r, _)| r == rank));
    if let Some(rank) = missing {
        return Err(invalid(format!("no score given at quartile rank {rank}")));
    }
    let at = |rank: usize| {
        let found = picked.iter().find(|(r, _)| *r == rank);
        rescaled(found.map_or(f64::NAN, |&(_, z)| z), exponent)
    };
    let mut asked = None;
    let scale = log_scale_by(n, at, |center| {
        asked = Some(center);
        deviation.unwrap_or(f64::NAN)
    });
    Ok(match (scale, asked, deviation) {
        (Some((center, unit)), _, _) => LogScale::Found { center, unit },
        (None, Some(center), None) => LogScale::NeedsDeviation { center },
        (None, _, _) => LogScale::NoSpread,
    })
}

/// `sum |z * 2^-exponent - center|` over the finite scores of a chunk: the
/// deviation [`LogScale::NeedsDeviation`] asks for.
pub fn absolute_deviation_of_chunk<T: Score>(values: &[T], center: f64, exponent: i32) -> f64 {
    values
        .iter()
        .filter(|z| z.is_finite_score())
        .map(|z| (rescaled(z.to_f64(), exponent) - center).abs())
        .sum()
}

/// Per key: how many of a chunk's finite scores read below it and at or below
/// it (on one [`Reading`] of the rescaled scores), and the smallest score (as
/// given) reading at or above it and above it.
#[derive(Debug, Clone, PartialEq)]
pub struct RankCounts {
    pub below: Vec<usize>,
    pub at_or_below: Vec<usize>,
    /// `+inf` when no score reads at or above the key.
    pub least_from: Vec<f64>,
    /// `+inf` when no score reads above the key.
    pub least_above: Vec<f64>,
}

impl RankCounts {
    /// The counts of a chunk for each of `keys`.
    ///
    /// # Examples
    /// ```
    /// use ltrend::partial_split::{RankCounts, Reading};
    /// let counts = RankCounts::of_chunk(&[3.0, 1.0, f64::NAN, 2.0, 2.0], &[2.0], Reading::Raw, 0);
    /// assert_eq!((counts.below[0], counts.at_or_below[0]), (1, 3));
    /// assert_eq!((counts.least_from[0], counts.least_above[0]), (2.0, 3.0));
    /// ```
    pub fn of_chunk<T: Score>(
        values: &[T],
        keys: &[f64],
        reading: Reading,
        exponent: i32,
    ) -> RankCounts {
        let mut counts = RankCounts {
            below: vec![0; keys.len()],
            at_or_below: vec![0; keys.len()],
            least_from: vec![f64::INFINITY; keys.len()],
            least_above: vec![f64::INFINITY; keys.len()],
        };
        for z in values.iter().filter(|z| z.is_finite_score()) {
            let given = z.to_f64();
            let read = reading.read(rescaled(given, exponent));
            for (q, &key) in keys.iter().enumerate() {
                if read < key {
                    counts.below[q] += 1;
                    counts.at_or_below[q] += 1;
                } else {
                    counts.least_from[q] = counts.least_from[q].min(given);
                    if read == key {
                        counts.at_or_below[q] += 1;
                    } else {
                        counts.least_above[q] = counts.least_above[q].min(given);
                    }
                }
            }
        }
        counts
    }

    /// The counts of two disjoint chunks.
    ///
    /// # Errors
    /// [`KernelError::InvalidPartial`] for counts of different numbers of keys.
    pub fn merge(&self, other: &RankCounts) -> Result<RankCounts, KernelError> {
        if self.below.len() != other.below.len() {
            return Err(invalid(format!(
                "rank counts of {} and {} keys",
                self.below.len(),
                other.below.len()
            )));
        }
        let add = |a: &[usize], b: &[usize]| a.iter().zip(b).map(|(x, y)| x + y).collect();
        let least = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x.min(*y)).collect();
        Ok(RankCounts {
            below: add(&self.below, &other.below),
            at_or_below: add(&self.at_or_below, &other.at_or_below),
            least_from: least(&self.least_from, &other.least_from),
            least_above: least(&self.least_above, &other.least_above),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knee::knee;
    use crate::log_knee::{log_knee, log_scale, quantile_ranks};
    use crate::two_segment::two_segment;

    /// Cut `sorted` into buckets at `cuts` and run both passes; the merged
    /// candidates, as `(knee index, log knee index, two-segment breakpoint)`.
    fn distributed(
        sorted: &[f64],
        cuts: &[usize],
        exponent: i32,
    ) -> (Option<usize>, Option<usize>, Option<usize>) {
        let n = sorted.len();
        let frame = SplitFrame::new(n, sorted[0], sorted[n - 1], exponent, 0.0).unwrap();
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(n);
        let buckets: Vec<(usize, &[f64])> = bounds
            .windows(2)
            .map(|w| (w[0], &sorted[w[0]..w[1]]))
            .collect();
        let probes = quantile_ranks(n);
        let summaries: Vec<BucketSummary> = buckets
            .iter()
            .map(|&(o, b)| bucket_summary(b, o, &frame, &probes).unwrap())
            .collect();
        let knee = summaries
            .iter()
            .filter_map(|s| s.knee)
            .reduce(KneePoint::deeper)
            .filter(|k| k.depth > 0.0);
        let picked: Vec<(usize, f64)> = summaries.iter().flat_map(|s| s.picked.clone()).collect();
        let scale = match log_scale_of_ranks(n, &picked, exponent, None).unwrap() {
            LogScale::Found { center, unit } => Some((center, unit)),
            LogScale::NeedsDeviation { center } => {
                let total = absolute_deviation_of_chunk(sorted, center, exponent);
                match log_scale_of_ranks(n, &picked, exponent, Some(total)).unwrap() {
                    LogScale::Found { center, unit } => Some((center, unit)),
                    _ => None,
                }
            }
            LogScale::NoSpread => None,
        };
        let mut logs = None::<KneePoint>;
        let mut lines = None::<SegmentCut>;
        for (b, &(offset, bucket)) in buckets.iter().enumerate() {
            let merged = |range: &[BucketSummary]| {
                range
                    .iter()
                    .fold(LineMoments::EMPTY, |m, s| m.merge(&s.moments))
            };
            let around = Surroundings {
                before: merged(&summaries[..b]),
                after: merged(&summaries[b + 1..]),
                previous: summaries[..b].iter().rev().find_map(|s| s.last),
            };
            let cuts = bucket_cuts(bucket, offset, &frame, scale, Some(around)).unwrap();
            if let Some(k) = cuts.log_knee {
                logs = Some(logs.map_or(k, |l| l.deeper(k)));
            }
            if let Some(c) = cuts.two_segment {
                lines = Some(lines.map_or(c, |l| l.better(c)));
            }
        }
        (
            knee.map(|k| k.index),
            logs.filter(|k| k.depth > 0.0).map(|k| k.index),
            lines.map(|c| c.breakpoint),
        )
    }

    fn in_memory(sorted: &[f64]) -> (Option<usize>, Option<usize>, Option<usize>) {
        (
            knee(sorted).map(|k| k.index),
            log_knee(sorted).map(|k| k.index),
            two_segment(sorted).map(|f| f.breakpoint),
        )
    }

    #[test]
    fn buckets_find_the_in_memory_splits() {
        let mut sorted: Vec<f64> = (0..60).map(|i| (f64::from(i) * 0.37).sin() + 3.0).collect();
        sorted.extend([9.0, 11.0, 14.0, 20.0, 20.0]);
        sorted.sort_by(f64::total_cmp);
        let expected = in_memory(&sorted);
        for cuts in [
            vec![],
            vec![1],
            vec![3, 30, 31, 62],
            vec![10, 20, 30, 40, 50, 60],
        ] {
            assert_eq!(distributed(&sorted, &cuts, 0), expected, "{cuts:?}");
        }
    }

    #[test]
    fn a_tied_majority_reads_the_mean_deviation() {
        let sorted = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 3.0, 8.0];
        assert_eq!(log_scale(&sorted).map(|s| s.0), Some(0.0));
        assert_eq!(distributed(&sorted, &[2, 7], 0), in_memory(&sorted));
    }

    #[test]
    fn rescaled_curves_read_the_rescaled_scores() {
        let base: Vec<f64> = (0..30).map(|i| f64::from(i % 7) * 0.1).collect();
        let mut sorted: Vec<f64> = base.iter().map(|v| pow2_scale(v + 1.0, 700)).collect();
        sorted.extend([pow2_scale(4.0, 700), pow2_scale(9.0, 700)]);
        sorted.sort_by(f64::total_cmp);
        let exponent = crate::threshold::range_scale_exponent(sorted[0], sorted[31]).unwrap();
        let rescaled: Vec<f64> = sorted.iter().map(|&z| pow2_scale(z, -exponent)).collect();
        assert_eq!(
            distributed(&sorted, &[5, 17], exponent),
            in_memory(&rescaled)
        );
    }

    #[test]
    fn mismatched_pieces_are_refused() {
        let frame = SplitFrame::new(4, 0.0, 1.0, 0, 0.0).unwrap();
        assert!(bucket_summary(&[0.0, 1.0], 3, &frame, &[]).is_err());
        let around = Surroundings {
            before: LineMoments::EMPTY,
            after: LineMoments::EMPTY,
            previous: None,
        };
        assert!(bucket_cuts(&[0.0, 1.0], 0, &frame, None, Some(around)).is_err());
        // The upper bucket of [0, 0.5 | 0.7, 1] must be told the score below it.
        let low = bucket_summary(&[0.0, 0.5], 0, &frame, &[]).unwrap();
        let above = |previous| Surroundings {
            before: low.moments,
            after: LineMoments::EMPTY,
            previous,
        };
        assert!(bucket_cuts(&[0.7, 1.0], 2, &frame, None, Some(above(Some(0.5)))).is_ok());
        assert!(bucket_cuts(&[0.7, 1.0], 2, &frame, None, Some(above(None))).is_err());
        assert!(SplitFrame::new(0, 0.0, 1.0, 0, 0.0).is_err());
        assert!(SplitFrame::new(3, 1.0, 0.0, 0, 0.0).is_err());
        assert!(SplitFrame::new(3, 0.0, 1.0, 5000, 0.0).is_err());
        assert!(log_scale_of_ranks(5, &[(1, 1.0)], 0, None).is_err());
        let a = RankCounts::of_chunk(&[1.0], &[0.0], Reading::Raw, 0);
        let b = RankCounts::of_chunk(&[1.0], &[], Reading::Raw, 0);
        assert!(a.merge(&b).is_err());
    }
}
