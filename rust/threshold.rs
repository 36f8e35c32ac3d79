//! The L-trend thresholder (the paper's method): candidate thresholds from every
//! degree's fit, compactness of each split, and the degree choice.

use rayon::prelude::*;

use crate::error::KernelError;
use crate::polyfit::{GramFit, GRAM_BLOCK, MAX_DEGREE_LIMIT};
use crate::sort::{sorted_finite, NanPolicy, Score, PARALLEL_MIN};
use crate::variance::{Moments, ScaledM2};

/// The paper's cap on the polynomial degree.
pub const DEFAULT_MAX_DEGREE: usize = 5;

/// The fewest finite scores that admit a split: degree 1 needs `n >= d + 2 = 3`.
pub const MIN_SCORES: usize = 3;

/// One degree's candidate: its threshold, its compactness and how many it flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DegreeRow {
    pub degree: usize,
    /// `tau_d`, the maximum fitted value over the sample points.
    pub threshold: f64,
    /// `Comp_d`; NaN when either side of the split is empty.
    pub compactness: f64,
    /// `|A_d|`, the number of scores at or above `tau_d`.
    pub n_anomalies: usize,
}

/// The outcome of [`fit`]: the chosen threshold and everything that explains it.
#[derive(Debug, Clone, PartialEq)]
pub struct LTrendFit<T> {
    /// `tau*`; `+inf` when no degree gives a split.
    pub threshold: f64,
    /// `d*`; `None` when no degree gives a split.
    pub degree: Option<usize>,
    pub n_anomalies: usize,
    /// One row per degree `1..=min(max_degree, n - 2)`.
    pub rows: Vec<DegreeRow>,
    /// The finite scores in ascending order (the sorted curve).
    pub sorted: Vec<T>,
    pub n_omitted: usize,
    /// The fits of every degree, for plotting.
    pub fits: GramFit,
}

/// Compactness of a split (paper eq. 6), with the edge cases of the method's contract.
///
/// ```text
/// Comp = (var(A) / |A|) / (var(N) / |N|)        population variances
/// ```
///
/// NaN when `A` or `N` is empty; `+inf` when `var(N) = 0` and both are non-empty.
///
/// # Examples
/// ```
/// use ltrend::threshold::compactness;
/// use ltrend::variance::Moments;
/// let normal = Moments::of_sorted(&[0.0, 1.0], 0.0);
/// let anomalies = Moments::of_sorted(&[10.0, 14.0], 0.0);
/// // (4 / 2) / (0.25 / 2) = 16
/// assert_eq!(compactness(normal, anomalies), 16.0);
/// ```
pub fn compactness(normal: Moments, anomalies: Moments) -> f64 {
    if normal.count == 0 || anomalies.count == 0 {
        return f64::NAN;
    }
    if normal.m2 == 0.0 {
        return f64::INFINITY;
    }
    let (nn, na) = (normal.count as f64, anomalies.count as f64);
    (anomalies.variance() / na) / (normal.variance() / nn)
}

/// The degree with the largest compactness; NaN rows are not candidates and ties go
/// to the lowest degree (paper eq. 7).
pub fn choose_degree(rows: &[DegreeRow]) -> Option<&DegreeRow> {
    let mut best: Option<&DegreeRow> = None;
    for row in rows.iter().filter(|r| !r.compactness.is_nan()) {
        if best.is_none_or(|b| row.compactness > b.compactness) {
            best = Some(row);
        }
    }
    best
}

/// Compactness of every split `sorted[..k] | sorted[k..]` for the given `k`s.
///
/// The distinct cuts divide the curve into segments; each segment's moments are
/// computed once and merged into the prefix (normal) and suffix (anomalous) states,
/// so all degrees cost one pass over the scores. The tests' oracle:
/// [`fit_curve`] merges the moments of blocks instead.
#[cfg(test)]
fn split_compactness<T: Score>(sorted: &[T], cuts: &[usize]) -> Vec<f64> {
    let mut bounds: Vec<usize> = cuts.iter().copied().chain([0, sorted.len()]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    // Means relative to the median keep their digits at large offsets (see variance.rs).
    let origin = sorted.get(sorted.len() / 2).map_or(0.0, |z| z.to_f64());
    let segments: Vec<Moments> = bounds
        .windows(2)
        .map(|w| Moments::of_sorted_blocks(&sorted[w[0]..w[1]], origin))
        .collect();
    moments_at_cuts(&bounds, &segments, cuts)
        .into_iter()
        .map(|(normal, anomalies)| compactness(normal, anomalies))
        .collect()
}

/// The moments of `sorted[start..end]` from those of the whole blocks of
/// [`GRAM_BLOCK`] scores inside it, and of the partial blocks at its ends.
fn segment_moments<T: Score>(
    sorted: &[T],
    blocks: &[Moments],
    start: usize,
    end: usize,
    origin: f64,
) -> Moments {
    let (first_full, last_full) = (start.div_ceil(GRAM_BLOCK), end / GRAM_BLOCK);
    if first_full >= last_full {
        return Moments::of_sorted_lanes(&sorted[start..end], origin);
    }
    let head = Moments::of_sorted_lanes(&sorted[start..first_full * GRAM_BLOCK], origin);
    let tail = Moments::of_sorted_lanes(&sorted[last_full * GRAM_BLOCK..end], origin);
    blocks[first_full..last_full]
        .iter()
        .fold(head, |all, &block| all.merge(block))
        .merge(tail)
}

/// The moments of both sides of each split `sorted[..k] | sorted[k..]`, from
/// those of the curve's blocks, so that the scores are not read again (only the
/// partial blocks at the cuts are).
fn split_moments_from_blocks<T: Score>(
    sorted: &[T],
    blocks: &[Moments],
    cuts: &[usize],
    origin: f64,
) -> Vec<(Moments, Moments)> {
    let mut bounds: Vec<usize> = cuts.iter().copied().chain([0, sorted.len()]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let segments: Vec<Moments> = bounds
        .windows(2)
        .map(|w| segment_moments(sorted, blocks, w[0], w[1], origin))
        .collect();
    moments_at_cuts(&bounds, &segments, cuts)
}

/// The moments of the normal and anomalous sides of the split at each cut, from
/// the moments of the segments between consecutive `bounds` (sorted, distinct,
/// from 0 to n, every cut among them): prefix states are the normal side, suffix
/// states the anomalous one.
fn moments_at_cuts(
    bounds: &[usize],
    segments: &[Moments],
    cuts: &[usize],
) -> Vec<(Moments, Moments)> {
    // prefix[j]: moments of sorted[..bounds[j]]; suffix[j]: of sorted[bounds[j]..].
    let mut prefix = vec![Moments::EMPTY];
    for &segment in segments {
        let last = *prefix.last().unwrap_or(&Moments::EMPTY);
        prefix.push(last.merge(segment));
    }
    let mut suffix = vec![Moments::EMPTY];
    for &segment in segments.iter().rev() {
        let last = *suffix.last().unwrap_or(&Moments::EMPTY);
        suffix.push(segment.merge(last));
    }
    suffix.reverse();
    cuts.iter()
        .map(|cut| {
            let j = bounds.partition_point(|b| b < cut);
            (prefix[j], suffix[j])
        })
        .collect()
}

/// Sums of squared deviations below this (on the curve the moments were taken
/// on) may hold squares that underflowed: 2^40 squares each off by at most half
/// the smallest subnormal, 2^-1075, are then still 2^-135 of the sum, so above
/// it the sum keeps its digits.
const SAFE_M2: f64 = f64::from_bits((1023 - 900) << 52);

/// How far (in units of its own spread) a side may lie from the median before
/// its merged moments are not trusted: each segment's mean, held relative to
/// the median, is off by up to 2^-52 of that distance, so the differences of
/// means that Chan's merge squares are off by 2^-40 of the side's spread at
/// most; further out (a tight cluster far from the bulk, such as scores near
/// 0 beside a bulk at -5.5e13) the side is measured again on its own.
const FAR_SIDE: f64 = 4096.0;

/// One side of a split as the compactness rule reads it: its moments, taken
/// on the scores times `2^-exponent` (the curve's rescaling), and its first
/// and last score as given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SplitSide {
    pub moments: Moments,
    pub first: f64,
    pub last: f64,
}

impl SplitSide {
    /// All its scores are equal (read from the scores, not from a variance).
    fn is_constant(&self) -> bool {
        self.first == self.last
    }

    /// Its merged moments keep their digits: the sum of squares is at least
    /// [`SAFE_M2`] and the side lies within [`FAR_SIDE`] spreads of `origin`
    /// (the median the moments' means are relative to, in the scores' units).
    pub fn is_trusted(&self, origin: f64) -> bool {
        let distance = (self.first - origin).abs().max((self.last - origin).abs());
        self.moments.m2 >= SAFE_M2 && distance <= (self.last - self.first) * FAR_SIDE
    }
}

/// Which side of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SideKind {
    Normal,
    Anomalous,
}

/// The rule's cases that need no variance: NaN when a side is empty, `+inf`
/// when `N` is constant, 0 when `A` is constant (`|A| = 1` too); `None` when
/// the ratio of variances decides.
pub(crate) fn compactness_without_variance(
    normal: &SplitSide,
    anomalies: &SplitSide,
) -> Option<f64> {
    if normal.moments.count == 0 || anomalies.moments.count == 0 {
        Some(f64::NAN)
    } else if normal.is_constant() {
        Some(f64::INFINITY)
    } else if anomalies.is_constant() {
        Some(0.0)
    } else {
        None
    }
}

/// The compactness of a split from its two sides (see [`candidate_compactness`]):
/// the merged moments when both are trusted ([`SplitSide::is_trusted`]), else
/// the sums of squares that `remeasure` gives for the untrusted sides, the
/// others taken as `m2 * 4^exponent`.
///
/// # Errors
/// Whatever `remeasure` returns.
pub(crate) fn compactness_of_sides<E>(
    normal: SplitSide,
    anomalies: SplitSide,
    origin: f64,
    exponent: i32,
    mut remeasure: impl FnMut(SideKind, &SplitSide) -> Result<ScaledM2, E>,
) -> Result<f64, E> {
    if let Some(decided) = compactness_without_variance(&normal, &anomalies) {
        return Ok(decided);
    }
    let (normal_ok, anomalies_ok) = (normal.is_trusted(origin), anomalies.is_trusted(origin));
    if normal_ok && anomalies_ok {
        return Ok(compactness(normal.moments, anomalies.moments));
    }
    let mut scaled = |side: &SplitSide, ok: bool, kind: SideKind| {
        if ok {
            Ok(ScaledM2 {
                m2: side.moments.m2,
                exponent,
            })
        } else {
            remeasure(kind, side)
        }
    };
    let normal_m2 = scaled(&normal, normal_ok, SideKind::Normal)?;
    let anomalies_m2 = scaled(&anomalies, anomalies_ok, SideKind::Anomalous)?;
    Ok(scaled_compactness(
        normal_m2,
        normal.moments.count,
        anomalies_m2,
        anomalies.moments.count,
    ))
}

/// The compactness of the split `given[..cut] | given[cut..]` of a sorted curve,
/// given the moments of its sides taken on `given * 2^-exponent`.
///
/// ```text
/// N = given[..cut], A = given[cut..]
/// NaN if N or A is empty;  +inf if N is constant;  0 if A is constant (|A| = 1 too)
/// else (var(A) / |A|) / (var(N) / |N|)
/// ```
///
/// Which side is constant is read from the scores as given (first equals last),
/// not from a computed variance. The moments decide the ratio when both sums of
/// squares are at least [`SAFE_M2`] and both sides lie within [`FAR_SIDE`]
/// spreads of the median, which ordinary curves meet, so the fast path is
/// [`compactness`] itself. Another side (its spread under about 2^-450 times
/// the curve's scale, or far from the median) is measured again on the scores
/// as given, in units of its own spread ([`ScaledM2::of_sorted`]), and the
/// ratio is formed from the scaled sums: one pass over that side, only then.
fn candidate_compactness<T: Score>(
    given: &[T],
    cut: usize,
    (normal, anomalies): (Moments, Moments),
    exponent: i32,
) -> f64 {
    let n = given.len();
    if cut == 0 || cut >= n {
        return f64::NAN;
    }
    let (below, above) = given.split_at(cut);
    let side = |scores: &[T], moments: Moments| SplitSide {
        moments,
        first: scores[0].to_f64(),
        last: scores[scores.len() - 1].to_f64(),
    };
    // The moments' means are relative to the median: a side far from it next to
    // its own spread lost the digits of its merged means (see FAR_SIDE).
    let median = given[n / 2].to_f64();
    let remeasure = |kind: SideKind, _: &SplitSide| {
        let scores = match kind {
            SideKind::Normal => below,
            SideKind::Anomalous => above,
        };
        Ok::<_, std::convert::Infallible>(ScaledM2::of_sorted(scores))
    };
    let Ok(comp) = compactness_of_sides(
        side(below, normal),
        side(above, anomalies),
        median,
        exponent,
        remeasure,
    );
    comp
}

/// `(var(A) / |A|) / (var(N) / |N|)` from sums of squares held as `m2 * 4^k`:
/// the ratio of the scaled sums, then its power of two, rounded once (`+inf` or
/// 0 only when the true ratio is beyond `f64`).
///
/// ```text
/// Comp = ((m2_A / |A|^2) / (m2_N / |N|^2)) * 2^(2 (k_A - k_N))
/// ```
pub(crate) fn scaled_compactness(
    normal: ScaledM2,
    nn: usize,
    anomalies: ScaledM2,
    na: usize,
) -> f64 {
    let (nn, na) = (nn as f64, na as f64);
    let ratio = (anomalies.m2 / na / na) / (normal.m2 / nn / nn);
    pow2_scale(ratio, 2 * (anomalies.exponent - normal.exponent))
}

/// Learn the anomaly threshold of `scores` by the L-trend method.
///
/// ```text
/// s      = sort(z)
/// tau_d  = max_i yhat_d[i]                 yhat_d: least-squares fit of degree d to (i, s[i])
/// Comp_d = (var(A_d)/|A_d|) / (var(N_d)/|N_d|),  A_d = {z >= tau_d}, N_d = {z < tau_d}
/// d*     = argmax_d Comp_d  (lowest d on ties),  tau* = tau_{d*}
/// ```
///
/// Degrees run from 1 to `min(max_degree, n - 2)`. With no candidate degree the
/// threshold is `+inf` and nothing is anomalous. Source: Zhang et al., the L-trend
/// prior (ICLR 2023 submission), sections 5.1-5.3.
///
/// # Errors
/// [`KernelError::NonFinite`] for NaN/inf scores under [`NanPolicy::Raise`],
/// [`KernelError::TooFewScores`] with fewer than [`MIN_SCORES`] finite scores, and
/// [`KernelError::InvalidMaxDegree`] for `max_degree` outside `1..=10`.
///
/// # Examples
/// ```
/// use ltrend::sort::NanPolicy;
/// use ltrend::threshold::fit;
/// let mut scores: Vec<f64> = (0..100).map(|i| 1.0 + 0.001 * f64::from(i)).collect();
/// scores.extend([5.0, 8.0, 13.0]);
/// let result = fit(&scores, 5, NanPolicy::Raise).unwrap();
/// assert_eq!(result.n_anomalies, 3);
/// assert!(result.threshold > 1.1 && result.threshold <= 5.0);
/// ```
pub fn fit<T: Score>(
    scores: &[T],
    max_degree: usize,
    nan_policy: NanPolicy,
) -> Result<LTrendFit<T>, KernelError> {
    if max_degree == 0 || max_degree > MAX_DEGREE_LIMIT {
        return Err(KernelError::InvalidMaxDegree {
            got: max_degree,
            limit: MAX_DEGREE_LIMIT,
        });
    }
    let sorted = sorted_finite(scores, nan_policy)?;
    fit_sorted(sorted.values, max_degree, sorted.n_omitted)
}

/// What the method learns from a sorted curve: [`LTrendFit`] without the curve.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveFit {
    /// `tau*`; `+inf` when no degree gives a split.
    pub threshold: f64,
    /// `d*`; `None` when no degree gives a split.
    pub degree: Option<usize>,
    pub n_anomalies: usize,
    /// One row per degree `1..=min(max_degree, n - 2)`.
    pub rows: Vec<DegreeRow>,
    /// The fits of every degree, for plotting.
    pub fits: GramFit,
}

/// [`fit`] on scores that are already finite and sorted ascending (the sort is skipped).
///
/// # Errors
/// As [`fit`], except that non-finite values are not looked for.
pub fn fit_sorted<T: Score>(
    sorted: Vec<T>,
    max_degree: usize,
    n_omitted: usize,
) -> Result<LTrendFit<T>, KernelError> {
    let curve = fit_curve(&sorted, max_degree)?;
    Ok(LTrendFit {
        threshold: curve.threshold,
        degree: curve.degree,
        n_anomalies: curve.n_anomalies,
        rows: curve.rows,
        sorted,
        n_omitted,
        fits: curve.fits,
    })
}

/// [`fit_sorted`] on a borrowed curve: the candidates, their compactness and the
/// choice, for finite scores sorted ascending.
///
/// One pass over the curve, in blocks of [`GRAM_BLOCK`] scores that rayon's
/// threads share above [`PARALLEL_MIN`] scores: each block gives its Gram
/// projections ([`GramFit::of_sorted_with`]) and, while it is in cache, its
/// moments; the moments of the segments between cuts are merged from those of
/// the blocks. The candidates come from the critical points of each fit
/// ([`GramFit::exact_maxima`]), not from a pass over every rank.
///
/// # Errors
/// [`KernelError::TooFewScores`] with fewer than [`MIN_SCORES`] scores and
/// [`KernelError::InvalidMaxDegree`] for `max_degree` outside `1..=10`.
///
/// # Examples
/// ```
/// use ltrend::threshold::fit_curve;
/// let mut curve: Vec<f64> = (0..100).map(|i| 1.0 + 0.001 * f64::from(i)).collect();
/// curve.extend([5.0, 8.0, 13.0]);
/// let result = fit_curve(&curve, 5).unwrap();
/// assert_eq!(result.n_anomalies, 3);
/// ```
pub fn fit_curve<T: Score>(sorted: &[T], max_degree: usize) -> Result<CurveFit, KernelError> {
    match extreme_scale_exponent(sorted) {
        None => fit_curve_on(sorted, sorted, 0, max_degree),
        Some(exponent) => {
            // Multiplying by a power of two commutes with the fit as long as
            // nothing overflows, which the rescaled curve (magnitudes below 1)
            // guarantees; scores that turn subnormal or vanish are at most
            // 2^-1022 of the largest, below the fit's own rounding.
            let rescaled: Vec<f64> = sorted
                .iter()
                .map(|z| pow2_scale(z.to_f64(), -exponent))
                .collect();
            let mut curve = fit_curve_on(sorted, &rescaled, exponent, max_degree)?;
            curve.fits = curve.fits.rescaled_by_exponent(exponent);
            Ok(curve)
        }
    }
}

/// Magnitudes beyond which the method's squares and sums could overflow (or,
/// below the lower one, underflow into subnormals): 2^400 squared times a
/// billion scores is still far below f64's 2^1024, and the spread of scores of
/// magnitude 2^-400 is at least an ulp, 2^-452, whose square is a normal number.
const SAFE_MAGNITUDE: std::ops::RangeInclusive<i32> = -400..=400;

/// Every exponent [`range_scale_exponent`] can give: `2^e` just above the
/// largest magnitude, from the smallest subnormal to the largest float (whose
/// `log2` rounds up to 1024).
pub const SCALE_EXPONENTS: std::ops::RangeInclusive<i32> = -1073..=1025;

/// `Some(e)` when the largest magnitude `2^e` of a sorted curve is outside
/// [`SAFE_MAGNITUDE`], so that the curve must be rescaled by `2^-e` first.
pub(crate) fn extreme_scale_exponent<T: Score>(sorted: &[T]) -> Option<i32> {
    let (first, last) = (sorted.first()?.to_f64(), sorted.last()?.to_f64());
    range_scale_exponent(first, last)
}

/// The rescaling [`fit_curve`] applies to a curve of finite scores from
/// `first` to `last` (its smallest and largest): `Some(e)` when the largest
/// magnitude is outside the range where the method's squares and sums are
/// safe, so that the fit runs on `z * 2^-e`; `None` for ordinary curves.
///
/// ```text
/// e = the exponent with 2^(e-1) <= max(|first|, |last|) < 2^e
/// Some(e) if e is outside -400..=400, else None
/// ```
///
/// # Examples
/// ```
/// use ltrend::threshold::range_scale_exponent;
/// assert_eq!(range_scale_exponent(-3.0, 1e6), None);
/// assert_eq!(range_scale_exponent(0.0, 1e300), Some(997));
/// assert_eq!(range_scale_exponent(0.0, 5e-324), Some(-1073));
/// assert_eq!(range_scale_exponent(-f64::MAX, 1.0), Some(1025));
/// assert_eq!(range_scale_exponent(0.0, 0.0), None);
/// ```
pub fn range_scale_exponent(first: f64, last: f64) -> Option<i32> {
    let largest = first.abs().max(last.abs());
    if largest == 0.0 || !largest.is_finite() {
        return None;
    }
    // The exponent e with largest in [2^(e-1), 2^e).
    let exponent = largest.log2().floor() as i32 + 1;
    (!SAFE_MAGNITUDE.contains(&exponent)).then_some(exponent)
}

/// `value * 2^exponent` rounded once, as C's `ldexp`, for any `exponent`.
///
/// The factor is applied in steps that are powers of two within the normal
/// exponents. Upward, every step is exact until the product overflows, and then
/// the result does too. Downward, steps of 2^-969 (2^53 above the smallest
/// normal) come first, so that if one of them already rounds into the
/// subnormals, the rest of the factor is below 2^-53 and the true result rounds
/// to zero as the computed one does; otherwise only the last step rounds.
///
/// # Examples
/// ```
/// use ltrend::threshold::pow2_scale;
/// assert_eq!(pow2_scale(3.0, 4), 48.0);
/// assert_eq!(pow2_scale(1.0, -1074), 5e-324);
/// assert_eq!(pow2_scale(f64::MAX, 1), f64::INFINITY);
/// ```
pub fn pow2_scale(value: f64, exponent: i32) -> f64 {
    // 2^e for e in the normal exponents.
    let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    let (mut value, mut exponent) = (value, exponent);
    for _ in 0..2 {
        if exponent > 1023 {
            value *= pow2(1023);
            exponent -= 1023;
        } else if exponent < -1022 {
            value *= pow2(-969);
            exponent += 969;
        }
    }
    value * pow2(exponent.clamp(-1022, 1023))
}

/// [`fit_curve`] on `work = given * 2^-exponent`, a curve whose magnitudes are
/// within [`SAFE_MAGNITUDE`] (`work` is `given` when `exponent` is 0).
///
/// The fits, their candidates and the moments come from `work`; each candidate
/// is mapped back to the scores' units, and its count and split are taken on
/// `given`, so that they agree with the mask that threshold makes.
fn fit_curve_on<T: Score, W: Score>(
    given: &[T],
    work: &[W],
    exponent: i32,
    max_degree: usize,
) -> Result<CurveFit, KernelError> {
    debug_assert_eq!(given.len(), work.len());
    if max_degree == 0 || max_degree > MAX_DEGREE_LIMIT {
        return Err(KernelError::InvalidMaxDegree {
            got: max_degree,
            limit: MAX_DEGREE_LIMIT,
        });
    }
    let n = work.len();
    if n < MIN_SCORES {
        return Err(KernelError::TooFewScores {
            needed: MIN_SCORES,
            got: n,
        });
    }
    let top_degree = max_degree.min(n - 2);
    // Means relative to the median keep their digits at large offsets (see variance.rs).
    let origin = work[n / 2].to_f64();
    let moments = |block: &[W]| Moments::of_sorted_lanes(block, origin);
    let (fits, blocks) = GramFit::of_sorted_with(work, top_degree, &moments)?;
    let thresholds: Vec<f64> = fits
        .exact_maxima()
        .into_iter()
        .map(|tau| pow2_scale(tau, exponent))
        .collect();
    let cuts: Vec<usize> = thresholds
        .iter()
        .map(|&tau| given.partition_point(|z| z.to_f64() < tau))
        .collect();
    let comps = split_moments_from_blocks(work, &blocks, &cuts, origin)
        .into_iter()
        .zip(&cuts)
        .map(|(sides, &cut)| candidate_compactness(given, cut, sides, exponent));
    let rows: Vec<DegreeRow> = (1..=top_degree)
        .zip(thresholds.iter().zip(cuts.iter().zip(comps)))
        .map(|(degree, (&threshold, (&cut, compactness)))| DegreeRow {
            degree,
            threshold,
            compactness,
            n_anomalies: n - cut,
        })
        .collect();
    let (threshold, degree, n_anomalies) = match choose_degree(&rows) {
        Some(best) => (best.threshold, Some(best.degree), best.n_anomalies),
        None => (f64::INFINITY, None, 0),
    };
    Ok(CurveFit {
        threshold,
        degree,
        n_anomalies,
        rows,
        fits,
    })
}

/// The anomaly mask in input order: finite scores at or above the threshold (paper eq. 1).
///
/// ```text
/// mask[i] = isfinite(z[i]) and z[i] >= threshold
/// ```
///
/// # Examples
/// ```
/// use ltrend::threshold::anomaly_mask;
/// let mask = anomaly_mask(&[1.0, 2.0, f64::INFINITY, f64::NAN], 2.0);
/// assert_eq!(mask, vec![false, true, false, false]);
/// ```
pub fn anomaly_mask<T: Score>(scores: &[T], threshold: f64) -> Vec<bool> {
    let mut mask = vec![false; scores.len()];
    anomaly_mask_into(scores, threshold, &mut mask);
    mask
}

/// [`anomaly_mask`] written into `out` (of the length of `scores`), on rayon's
/// threads above [`PARALLEL_MIN`] scores.
///
/// # Examples
/// ```
/// use ltrend::threshold::anomaly_mask_into;
/// let mut mask = [true; 3];
/// anomaly_mask_into(&[1.0f32, 5.0, f32::NAN], 2.0, &mut mask);
/// assert_eq!(mask, [false, true, false]);
/// ```
pub fn anomaly_mask_into<T: Score>(scores: &[T], threshold: f64, out: &mut [bool]) {
    if scores.len() < PARALLEL_MIN {
        mask_into(scores, threshold, out);
    } else {
        out.par_chunks_mut(MASK_ITEM)
            .zip(scores.par_chunks(MASK_ITEM))
            .for_each(|(out, chunk)| mask_into(chunk, threshold, out));
    }
}

/// Scores per work item of the parallel mask (256 KiB of f64).
const MASK_ITEM: usize = 1 << 15;

/// `out[i] = isfinite(z[i]) and z[i] >= threshold`, compiled for the widest
/// vectors the CPU has.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw+avx2+fma", "x86_64+avx2+fma"))]
fn mask_into<T: Score>(scores: &[T], threshold: f64, out: &mut [bool]) {
    for (flag, z) in out.iter_mut().zip(scores) {
        *flag = z.is_finite_score() & (z.to_f64() >= threshold);
    }
}

/// Two scores near 0 beside eight near -5.5e13: the side near 0 lies far from
/// the median next to its own spread, where merged means keep steps of 2^-7
/// (found by a search beyond the property tests; a regression input).
#[cfg(test)]
pub(crate) const TIGHT_CLUSTER_FAR_FROM_THE_BULK: [f64; 10] = [
    -0.741833542113286,
    -1.1289683815631038,
    -55405946355393.125,
    -55405946355392.48,
    -55405946355392.266,
    -55405946355392.24,
    -55405946355392.3,
    -55405946355392.305,
    -55405946355392.65,
    -55405946355392.73,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn l_shape() -> Vec<f64> {
        let mut scores: Vec<f64> = (0..200).map(|i| f64::from(i % 37) * 0.01).collect();
        scores.extend([3.0, 4.5, 7.0, 9.0]);
        scores
    }

    #[test]
    fn finds_the_steep_branch() {
        let result = fit(&l_shape(), 5, NanPolicy::Raise).unwrap();
        assert_eq!(result.n_anomalies, 4);
        assert_eq!(result.rows.len(), 5);
        let chosen = result.rows[result.degree.unwrap() - 1];
        assert_eq!(chosen.threshold, result.threshold);
        for row in &result.rows {
            assert!(row.compactness.is_nan() || row.compactness <= chosen.compactness);
        }
    }

    #[test]
    fn all_equal_scores_have_no_candidate() {
        let result = fit(&[2.5; 10], 5, NanPolicy::Raise).unwrap();
        assert_eq!(result.degree, None);
        assert_eq!(result.threshold, f64::INFINITY);
        assert_eq!(result.n_anomalies, 0);
        assert!(result.rows.iter().all(|r| r.compactness.is_nan()));
    }

    #[test]
    fn degrees_stop_at_n_minus_2() {
        let result = fit(&[0.0, 1.0, 5.0, 6.0], 5, NanPolicy::Raise).unwrap();
        assert_eq!(result.rows.len(), 2);
        assert_eq!(
            fit(&[0.0, 1.0, 5.0], 5, NanPolicy::Raise)
                .unwrap()
                .rows
                .len(),
            1
        );
    }

    #[test]
    fn too_few_and_bad_degree_are_errors() {
        assert_eq!(
            fit(&[1.0, 2.0], 5, NanPolicy::Raise).unwrap_err(),
            KernelError::TooFewScores { needed: 3, got: 2 }
        );
        assert_eq!(
            fit(&[1.0, 2.0, f64::NAN, 3.0], 5, NanPolicy::Omit)
                .unwrap()
                .n_omitted,
            1
        );
        assert!(matches!(
            fit(&l_shape(), 0, NanPolicy::Raise),
            Err(KernelError::InvalidMaxDegree { .. })
        ));
    }

    #[test]
    fn compactness_edge_cases() {
        let one = Moments::of_sorted(&[9.0], 0.0);
        let spread = Moments::of_sorted(&[0.0, 1.0], 0.0);
        let flat = Moments::of_sorted(&[1.0, 1.0], 0.0);
        assert_eq!(compactness(spread, one), 0.0);
        assert_eq!(compactness(flat, one), f64::INFINITY);
        assert!(compactness(Moments::EMPTY, one).is_nan());
        assert!(compactness(spread, Moments::EMPTY).is_nan());
    }

    #[test]
    fn ties_go_to_the_lowest_degree() {
        let row = |degree, compactness| DegreeRow {
            degree,
            threshold: 0.0,
            compactness,
            n_anomalies: 1,
        };
        let rows = [
            row(1, f64::NAN),
            row(2, 4.0),
            row(3, f64::INFINITY),
            row(4, f64::INFINITY),
        ];
        assert_eq!(choose_degree(&rows).unwrap().degree, 3);
        assert!(choose_degree(&[row(1, f64::NAN)]).is_none());
    }

    #[test]
    fn split_compactness_matches_direct_moments() {
        let mut sorted = l_shape();
        sorted.sort_by(f64::total_cmp);
        let cuts = [150, 3, 204, 0, 201, 150];
        let comps = split_compactness(&sorted, &cuts);
        for (&cut, comp) in cuts.iter().zip(comps) {
            let direct = compactness(
                Moments::of_sorted(&sorted[..cut], 0.0),
                Moments::of_sorted(&sorted[cut..], 0.0),
            );
            let same = comp == direct || comp.is_nan() && direct.is_nan();
            assert!(
                same || (comp - direct).abs() <= 1e-12 * direct.abs(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn extreme_magnitudes_give_the_scaled_result_exactly() {
        let base = l_shape();
        let plain = fit(&base, 5, NanPolicy::Raise).unwrap();
        for exponent in [-1000, -600, 600, 1000] {
            let scaled: Vec<f64> = base.iter().map(|&z| pow2_scale(z, exponent)).collect();
            let result = fit(&scaled, 5, NanPolicy::Raise).unwrap();
            assert_eq!(result.degree, plain.degree, "2^{exponent}");
            assert_eq!(result.threshold, pow2_scale(plain.threshold, exponent));
            for (a, b) in result.rows.iter().zip(&plain.rows) {
                assert_eq!(a.threshold, pow2_scale(b.threshold, exponent));
                assert_eq!(a.n_anomalies, b.n_anomalies);
                assert_eq!(a.compactness, b.compactness);
            }
        }
    }

    #[test]
    fn float32_gives_the_float64_result() {
        let scores64 = l_shape();
        let scores32: Vec<f32> = scores64.iter().map(|&z| z as f32).collect();
        let widened: Vec<f64> = scores32.iter().map(|&z| f64::from(z)).collect();
        let a = fit(&scores32, 5, NanPolicy::Raise).unwrap();
        let b = fit(&widened, 5, NanPolicy::Raise).unwrap();
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.threshold, b.threshold);
    }

    /// The method as first written: the plain Gram loop, the pass over every rank
    /// for the maxima, and one two-pass moment per segment.
    fn simple_rows(sorted: &[f64], max_degree: usize) -> Vec<DegreeRow> {
        let n = sorted.len();
        let top = max_degree.min(n - 2);
        let fits = GramFit::new(sorted, top).unwrap();
        fits.fitted_maxima()
            .into_iter()
            .enumerate()
            .map(|(i, threshold)| {
                let cut = sorted.partition_point(|&z| z < threshold);
                let compactness = compactness(
                    Moments::of_sorted(&sorted[..cut], 0.0),
                    Moments::of_sorted(&sorted[cut..], 0.0),
                );
                DegreeRow {
                    degree: i + 1,
                    threshold,
                    compactness,
                    n_anomalies: n - cut,
                }
            })
            .collect()
    }

    #[test]
    fn fast_curve_fit_matches_the_simple_one() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for &n in &[5usize, 64, 1000, 50_000, PARALLEL_MIN + 999] {
            let mut sorted: Vec<f64> = (0..n)
                .map(|i| {
                    if i % 40 == 0 {
                        5.0 + 20.0 * uniform()
                    } else {
                        uniform()
                    }
                })
                .collect();
            sorted.sort_by(f64::total_cmp);
            for max_degree in [1, 5, 10] {
                let fast = fit_curve(&sorted, max_degree).unwrap().rows;
                let simple = simple_rows(&sorted, max_degree);
                assert_eq!(fast.len(), simple.len());
                for (a, b) in fast.iter().zip(&simple) {
                    assert!((a.threshold - b.threshold).abs() <= 1e-12 * b.threshold.abs());
                    assert_eq!(a.n_anomalies, b.n_anomalies, "n {n} degree {}", a.degree);
                    let same = a.compactness == b.compactness
                        || a.compactness.is_nan() && b.compactness.is_nan()
                        || (a.compactness - b.compactness).abs() <= 1e-10 * b.compactness.abs();
                    assert!(same, "n {n}: {} vs {}", a.compactness, b.compactness);
                }
            }
        }
    }

    #[test]
    fn pow2_scale_rounds_once_like_ldexp() {
        // Exact within range, and for zero of either sign.
        assert_eq!(pow2_scale(3.0, 4), 48.0);
        assert_eq!(pow2_scale(0.0, 5000).to_bits(), 0.0f64.to_bits());
        assert_eq!(pow2_scale(-0.0, -5000).to_bits(), (-0.0f64).to_bits());
        assert_eq!(pow2_scale(1.5, 0), 1.5);
        // Factors beyond the normal exponents: 2^-1074 * 2^2097 = 2^1023.
        assert_eq!(pow2_scale(5e-324, 2097), 2f64.powi(1023));
        assert_eq!(pow2_scale(2f64.powi(1023), -2097), 5e-324);
        // Overflow only when the true result is beyond the largest float.
        assert_eq!(pow2_scale(f64::MAX, -1), f64::MAX / 2.0);
        assert_eq!(pow2_scale(f64::MAX * 0.5, 1), f64::MAX);
        assert_eq!(pow2_scale(f64::MAX * 0.5, 2), f64::INFINITY);
        assert_eq!(pow2_scale(-1.0, 1024), f64::NEG_INFINITY);
        assert_eq!(pow2_scale(5e-324, 3000), f64::INFINITY);
        // Into the subnormals, rounded once to nearest even (units of 2^-1074):
        // 1.5 units ties to 2, 1.25 and 0.75 round to 1, half a unit ties to 0.
        let unit = 5e-324;
        assert_eq!(pow2_scale(1.5, -1074), 2.0 * unit);
        assert_eq!(pow2_scale(1.25, -1074), unit);
        assert_eq!(pow2_scale(0.75, -1074), unit);
        assert_eq!(pow2_scale(0.5, -1074), 0.0);
        assert_eq!(pow2_scale(0.5 + f64::EPSILON, -1074), unit);
        // 2^24 units and 2^-6 of one: the last step rounds, once.
        let exact = f64::from_bits(1 << 24);
        assert_eq!(pow2_scale(1.0 + 2f64.powi(-30), -1050), exact);
        assert_eq!(pow2_scale(3.0 * 2f64.powi(-60), -1020), 0.0);
        // From the largest float, through every step.
        assert_eq!(pow2_scale(f64::MAX, -2098), unit);
        assert_eq!(pow2_scale(f64::MAX, -2200), 0.0);
    }

    #[test]
    fn candidate_compactness_reads_constant_sides_from_the_scores() {
        let moments = |side: &[f64]| Moments::of_sorted(side, 0.0);
        let sides = |z: &[f64], cut: usize| (moments(&z[..cut]), moments(&z[cut..]));
        // N constant: +inf; A constant (or one score): 0, whatever the moments.
        let z = [1.0, 1.0, 2.0, 5.0];
        assert_eq!(candidate_compactness(&z, 2, sides(&z, 2), 0), f64::INFINITY);
        let z = [1.0, 2.0, 5.0, 5.0];
        assert_eq!(candidate_compactness(&z, 2, sides(&z, 2), 0), 0.0);
        assert_eq!(candidate_compactness(&z, 3, sides(&z, 3), 0), 0.0);
        // Empty sides: no candidate.
        assert!(candidate_compactness(&z, 0, sides(&z, 0), 0).is_nan());
        assert!(candidate_compactness(&z, 4, sides(&z, 4), 0).is_nan());
        // Subnormal normal side: its squares underflow to 0, so the moments say
        // var(N) = 0, but N is not constant and |A| = 1: the rule gives 0.
        let z = [0.0, 5e-324, 1.0];
        assert_eq!(sides(&z, 2).0.m2, 0.0);
        assert_eq!(candidate_compactness(&z, 2, sides(&z, 2), 0), 0.0);
    }

    #[test]
    fn candidate_compactness_measures_underflowing_sides_in_their_own_units() {
        // Comp = (var(A)/|A|) / (var(N)/|N|) with two scores a side: the ratio of
        // the squared spreads. N spreads 2^-500 (squares of 2^-501 sum to
        // 2^-1001, below SAFE_M2), A spreads 1: Comp = 2^1000 exactly.
        let z = [0.0, 2f64.powi(-500), 3.0, 4.0];
        assert_eq!(
            candidate_compactness(&z, 2, sides_of(&z, 2), 0),
            2f64.powi(1000)
        );
        // Swapped: 2^-1000, a normal float.
        let z = [-4.0, -3.0, 0.0, 2f64.powi(-500)];
        assert_eq!(
            candidate_compactness(&z, 2, sides_of(&z, 2), 0),
            2f64.powi(-1000)
        );
        // Beyond float64 either way: +inf and 0 (2^1400 and 2^-1200).
        let z = [0.0, 2f64.powi(-700), 3.0, 4.0];
        assert_eq!(
            candidate_compactness(&z, 2, sides_of(&z, 2), 0),
            f64::INFINITY
        );
        let z = [-4.0, -3.0, 0.0, 2f64.powi(-600)];
        assert_eq!(candidate_compactness(&z, 2, sides_of(&z, 2), 0), 0.0);
        // The fast path: A spreads 2^-52 (squares 2^-106), Comp = 2^-104.
        let z = [-4.0, -3.0, 1.0, 1.0 + f64::EPSILON];
        assert_eq!(
            candidate_compactness(&z, 2, sides_of(&z, 2), 0),
            2f64.powi(-104)
        );
        // A rescaled curve: moments on work = given * 2^-900, the split on given.
        // On work, N = {0, 2^-500} spreads below SAFE_M2; on given it spreads
        // 2^400 and A spreads 2^900: Comp = 2^1000.
        let exponent = 900;
        let given = [0.0, 2f64.powi(400), 2f64.powi(900), 2f64.powi(901)];
        let work: Vec<f64> = given.iter().map(|&v| pow2_scale(v, -exponent)).collect();
        let got = candidate_compactness(&given, 2, sides_of(&work, 2), exponent);
        assert_eq!(got, 2f64.powi(1000));
        // N = {0, 2^-100} vanishes on work (2^-1000 squared): Comp = 2^2000, +inf.
        let given = [0.0, 2f64.powi(-100), 2f64.powi(900), 2f64.powi(901)];
        let work: Vec<f64> = given.iter().map(|&v| pow2_scale(v, -exponent)).collect();
        let got = candidate_compactness(&given, 2, sides_of(&work, 2), exponent);
        assert_eq!(got, f64::INFINITY);
    }

    #[test]
    fn a_tight_side_far_from_the_median_keeps_its_digits() {
        // Found by a search beyond the property tests: A = the two scores near
        // 0, its merged means held relative to the median -5.5e13 (steps of
        // 2^-7), so Comp_1 came out 1.8 % off.
        let z = TIGHT_CLUSTER_FAR_FROM_THE_BULK.to_vec();
        let result = fit(&z, 10, NanPolicy::Raise).unwrap();
        let row = result.rows[0];
        assert_eq!(row.n_anomalies, 2);
        let sorted = &result.sorted;
        let variance = |side: &[f64]| Moments::of_sorted(side, side[0]).variance();
        let expected = (variance(&sorted[8..]) / 2.0) / (variance(&sorted[..8]) / 8.0);
        assert!(
            (row.compactness - expected).abs() <= 1e-12 * expected,
            "{} vs {expected}",
            row.compactness
        );
    }

    #[test]
    fn compactness_of_sides_measures_again_only_the_untrusted_sides() {
        let side = |z: &[f64]| SplitSide {
            moments: Moments::of_sorted(z, 0.0),
            first: z[0],
            last: z[z.len() - 1],
        };
        let refuse = |_: SideKind, _: &SplitSide| Err::<ScaledM2, ()>(());
        // Trusted sides and constant ones: the moments and the rule decide.
        // (var(A)/|A|) / (var(N)/|N|) = (4 / 2) / (0.25 / 2) = 16.
        let (normal, anomalies) = (side(&[0.0, 1.0]), side(&[10.0, 14.0]));
        assert_eq!(
            compactness_of_sides(normal, anomalies, 1.0, 0, refuse),
            Ok(16.0)
        );
        let flat = side(&[1.0, 1.0]);
        assert_eq!(
            compactness_of_sides(flat, anomalies, 1.0, 0, refuse),
            Ok(f64::INFINITY)
        );
        assert_eq!(compactness_of_sides(normal, flat, 1.0, 0, refuse), Ok(0.0));
        let empty = SplitSide {
            moments: Moments::EMPTY,
            first: f64::INFINITY,
            last: f64::NEG_INFINITY,
        };
        assert!(compactness_of_sides(normal, empty, 1.0, 0, refuse)
            .unwrap()
            .is_nan());
        // N spreads 2^-500 (m2 below SAFE_M2): measured again, alone; A spreads
        // 1: Comp = 2^1000. A side far from the origin (a spread of 4 at 1e9)
        // is measured again too.
        let mut asked = Vec::new();
        let mut remeasure = |kind, side: &SplitSide| {
            asked.push(kind);
            Ok::<_, ()>(ScaledM2::of_sorted(&[side.first, side.last]))
        };
        let tiny = side(&[0.0, 2f64.powi(-500)]);
        let got = compactness_of_sides(tiny, side(&[3.0, 4.0]), 2.0, 0, &mut remeasure);
        assert_eq!(got, Ok(2f64.powi(1000)));
        let far = side(&[1e9, 1e9 + 4.0]);
        let got = compactness_of_sides(side(&[0.0, 1.0]), far, 0.5, 0, &mut remeasure);
        assert_eq!(got, Ok(16.0));
        assert_eq!(asked, [SideKind::Normal, SideKind::Anomalous]);
    }

    fn sides_of(z: &[f64], cut: usize) -> (Moments, Moments) {
        (
            Moments::of_sorted(&z[..cut], 0.0),
            Moments::of_sorted(&z[cut..], 0.0),
        )
    }
}
