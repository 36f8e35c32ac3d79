//! Mergeable variance states: (count, mean, M2) per segment, combined with Chan's formula.
//!
//! The variances of a split are never taken as `E[z^2] - E[z]^2` nor as "total minus
//! lower": with scores near 1e9 and unit spread either loses every digit. Each
//! segment's state is computed in two passes (mean, then centred squares with the
//! correction term of the corrected two-pass algorithm), and segments merge exactly.
//!
//! Means are kept relative to an origin near the data (the caller passes the
//! median): a mean near 1e9 is only representable to 1.2e-7, and Chan's merge
//! squares differences of means, so unit-size structure would lose half its
//! digits. Variances do not depend on the origin.

use rayon::prelude::*;

use crate::sort::{Score, PARALLEL_MIN};

/// Scores per block of [`Moments::of_sorted_blocks`]: 2^15 f64 (256 KiB) stay in
/// L2 between the two passes of [`Moments::of_sorted`], so the scores are read
/// from memory once; fixed, so that the result does not depend on the threads.
const MOMENT_BLOCK: usize = 1 << 15;

/// Population moments of a set of scores: its size, mean and sum of squared deviations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub count: usize,
    pub mean: f64,
    /// Sum of squared deviations from the mean, `sum((z - mean)^2)`.
    pub m2: f64,
}

impl Moments {
    /// The state of the empty set.
    pub const EMPTY: Moments = Moments {
        count: 0,
        mean: 0.0,
        m2: 0.0,
    };

    /// Moments of a segment of ascending scores, with the mean taken relative to `origin`.
    ///
    /// ```text
    /// x    = z - z[0]                                  (exact spread inside the segment)
    /// m2   = sum((x - mean_x)^2) - (sum(x - mean_x))^2 / n,   mean_x = sum(x) / n
    /// mean = (z[0] - origin) + mean_x
    /// ```
    ///
    /// The squares are taken about the segment's own first value, so a segment far
    /// from `origin` keeps its spread (1e-49 apart at a distance of 2 is not
    /// rounded away); only the mean, which merges need, is moved to `origin`.
    /// A segment whose first and last values are equal is constant and gets
    /// `m2 = 0` exactly, so "zero variance" is never lost to rounding.
    ///
    /// # Examples
    /// ```
    /// use ltrend::variance::Moments;
    /// let m = Moments::of_sorted(&[1.0, 2.0, 3.0], 0.0);
    /// assert_eq!((m.count, m.mean, m.m2), (3, 2.0, 2.0));
    /// assert_eq!(Moments::of_sorted(&[0.1f64; 3], 0.0).m2, 0.0);
    /// ```
    pub fn of_sorted<T: Score>(segment: &[T], origin: f64) -> Moments {
        let (first, last) = match (segment.first(), segment.last()) {
            (Some(&a), Some(&b)) => (a.to_f64(), b.to_f64()),
            _ => return Moments::EMPTY,
        };
        let count = segment.len();
        if first == last {
            return Moments {
                count,
                mean: first - origin,
                m2: 0.0,
            };
        }
        let n = count as f64;
        let local_mean = segment.iter().map(|z| z.to_f64() - first).sum::<f64>() / n;
        let (mut squares, mut residual) = (0.0f64, 0.0f64);
        for z in segment {
            let d = (z.to_f64() - first) - local_mean;
            squares += d * d;
            residual += d;
        }
        // The correction term removes the error left by rounding in `local_mean`.
        let m2 = (squares - residual * residual / n).max(0.0);
        Moments {
            count,
            mean: (first - origin) + local_mean,
            m2,
        }
    }

    /// [`Moments::of_sorted`] block by block, the blocks merged in order with
    /// [`Moments::merge`] (on rayon's threads above [`PARALLEL_MIN`] scores).
    ///
    /// Each block's two passes run while it sits in cache, so the segment is read
    /// from memory once; the result equals that of [`Moments::of_sorted`] up to
    /// rounding, and a constant segment still gets `m2 = 0` exactly.
    ///
    /// # Examples
    /// ```
    /// use ltrend::variance::Moments;
    /// let z: Vec<f64> = (0..100_000).map(|i| f64::from(i % 10)).collect();
    /// let m = Moments::of_sorted_blocks(&z, 0.0);
    /// assert_eq!(m.count, 100_000);
    /// assert!((m.variance() - 8.25).abs() < 1e-12);
    /// ```
    pub fn of_sorted_blocks<T: Score>(segment: &[T], origin: f64) -> Moments {
        if segment.len() <= MOMENT_BLOCK {
            return block_moments(segment, origin);
        }
        let blocks: Vec<Moments> = if segment.len() >= PARALLEL_MIN {
            segment
                .par_chunks(MOMENT_BLOCK)
                .map(|block| block_moments(block, origin))
                .collect()
        } else {
            segment
                .chunks(MOMENT_BLOCK)
                .map(|block| block_moments(block, origin))
                .collect()
        };
        blocks.into_iter().fold(Moments::EMPTY, Moments::merge)
    }

    /// [`Moments::of_sorted`] with its sums kept in eight interleaved accumulators
    /// (the same formulas, added in another order) and compiled for the widest
    /// vectors the CPU has: for segments that are in cache.
    ///
    /// # Examples
    /// ```
    /// use ltrend::variance::Moments;
    /// let m = Moments::of_sorted_lanes(&[1.0, 2.0, 3.0], 0.0);
    /// assert_eq!((m.count, m.mean, m.m2), (3, 2.0, 2.0));
    /// ```
    pub fn of_sorted_lanes<T: Score>(segment: &[T], origin: f64) -> Moments {
        block_moments(segment, origin)
    }

    /// The moments of the union of two disjoint sets (Chan, Golub and LeVeque, 1979).
    ///
    /// ```text
    /// n     = na + nb,   delta = mean_b - mean_a
    /// mean  = mean_a + delta * nb / n
    /// m2    = m2_a + m2_b + delta^2 * na * nb / n
    /// ```
    ///
    /// # Examples
    /// ```
    /// use ltrend::variance::Moments;
    /// let whole = Moments::of_sorted(&[1.0, 2.0, 3.0, 4.0], 0.0);
    /// let merged =
    ///     Moments::of_sorted(&[1.0, 2.0], 0.0).merge(Moments::of_sorted(&[3.0, 4.0], 0.0));
    /// assert_eq!(merged, whole);
    /// ```
    pub fn merge(self, other: Moments) -> Moments {
        if self.count == 0 {
            return other;
        }
        if other.count == 0 {
            return self;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let count = self.count + other.count;
        let n = count as f64;
        let delta = other.mean - self.mean;
        Moments {
            count,
            mean: self.mean + delta * (nb / n),
            m2: self.m2 + other.m2 + delta * delta * (na * nb / n),
        }
    }

    /// Population variance (ddof = 0); NaN for the empty set.
    pub fn variance(self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.m2 / self.count as f64
        }
    }
}

/// The sum of squared deviations of a set as `m2 * 4^exponent`, so that it
/// holds where `f64` cannot: sides whose squares underflow (a spread of 1e-200)
/// or overflow (a spread beyond 1e154).
///
/// [`ScaledM2::of_sorted`] measures the deviations in units of a power of two
/// near the set's own spread, so `m2` lies between about 1/8 and the count
/// whatever the magnitudes; the scaling is exact, so nothing is rounded that
/// the unscaled sum would have kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaledM2 {
    /// The sum of squared deviations, in units of `4^exponent`.
    pub m2: f64,
    pub exponent: i32,
}

impl ScaledM2 {
    /// The sum of squared deviations of an ascending segment, taken in units of
    /// its own spread.
    ///
    /// ```text
    /// k  = the exponent with 2^(k-1) <= last - first < 2^k
    /// x  = (z - first) * 2^-k                      (in [0, 1), exact scaling)
    /// m2 = sum((x - mean_x)^2) - (sum(x - mean_x))^2 / n,   exponent = k
    /// ```
    ///
    /// The same corrected two-pass sum as [`Moments::of_sorted`]. A spread beyond
    /// the largest float (scores from -1e308 to 1e308) is measured on the halved
    /// scores, which loses only digits far below it. An empty or constant segment
    /// gives `m2 = 0` exactly.
    ///
    /// # Examples
    /// ```
    /// use ltrend::variance::ScaledM2;
    /// // Squares of 1e-200 underflow in f64; scaled, the sum keeps every digit:
    /// // sum((z - 1e-200)^2) = 2e-400 = (1/8) * 4^k with 2^(k-1) <= 2e-200 < 2^k.
    /// let tiny = ScaledM2::of_sorted(&[0.0, 1e-200, 2e-200]);
    /// let k = tiny.exponent;
    /// let expected = 2.0 * (1e-200 * 2f64.powi(-k / 2) * 2f64.powi(k / 2 - k)).powi(2);
    /// assert!((tiny.m2 - expected).abs() <= 1e-15 * expected);
    /// assert_eq!(ScaledM2::of_sorted(&[3.0, 3.0]).m2, 0.0);
    /// ```
    pub fn of_sorted<T: Score>(segment: &[T]) -> ScaledM2 {
        let (first, last) = match (segment.first(), segment.last()) {
            (Some(&a), Some(&b)) => (a.to_f64(), b.to_f64()),
            _ => return ScaledM2::ZERO,
        };
        let Some(unit) = SpreadUnit::of_range(first, last) else {
            return ScaledM2::ZERO;
        };
        let x = |z: &T| unit.apply(z.to_f64());
        let n = segment.len() as f64;
        let mean = segment.iter().map(x).sum::<f64>() / n;
        let (mut squares, mut residual) = (0.0f64, 0.0f64);
        for z in segment {
            let d = x(z) - mean;
            squares += d * d;
            residual += d;
        }
        ScaledM2 {
            m2: (squares - residual * residual / n).max(0.0),
            exponent: unit.exponent,
        }
    }

    /// The zero sum of an empty or constant set.
    pub const ZERO: ScaledM2 = ScaledM2 {
        m2: 0.0,
        exponent: 0,
    };
}

/// The exact map of scores from `first` to `last` onto `[0, 1)`, in units of a
/// power of two near their spread: how [`ScaledM2`] measures a set.
///
/// ```text
/// k = the exponent with 2^(k-1) <= last - first < 2^k
/// x = (z - first) * 2^-k
/// ```
///
/// A spread beyond the largest float (scores from -1e308 to 1e308) is taken
/// on the halved scores, `x = (z/2 - first/2) * 2^-(k-1)`: halving is exact
/// but for subnormal digits, far below that spread.
///
/// # Examples
/// ```
/// use ltrend::variance::SpreadUnit;
/// let unit = SpreadUnit::of_range(1e-300, 4e-300).unwrap();
/// // 2^(k-1) <= 3e-300 < 2^k
/// assert!(unit.exponent() < -990 && unit.exponent() > -1000);
/// assert_eq!(unit.apply(1e-300), 0.0);
/// assert!((0.5..1.0).contains(&unit.apply(4e-300)));
/// assert!(SpreadUnit::of_range(2.0, 2.0).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpreadUnit {
    /// The first score, halved when the spread overflows.
    first: f64,
    /// 1, or 1/2 when the spread overflows.
    halving: f64,
    /// `2^-k` in two factors, each within the normal range.
    factors: (f64, f64),
    /// `k`, counted on the scores as given.
    exponent: i32,
}

impl SpreadUnit {
    /// The unit of the scores from `first` to `last`; `None` unless
    /// `first < last`, both finite (a constant or empty set has no spread).
    pub fn of_range(first: f64, last: f64) -> Option<SpreadUnit> {
        if !(first < last && first.is_finite() && last.is_finite()) {
            return None;
        }
        // Halve when the spread overflows: 2^-1 is exact but for subnormal digits.
        let halved = !(last - first).is_finite();
        let (halving, first, last) = if halved {
            (0.5, first * 0.5, last * 0.5)
        } else {
            (1.0, first, last)
        };
        let exponent = binary_exponent(last - first);
        Some(SpreadUnit {
            first,
            halving,
            factors: (pow2(-exponent / 2), pow2(exponent / 2 - exponent)),
            exponent: exponent + i32::from(halved),
        })
    }

    /// `x = (z - first) * 2^-k` for a score `z` of the set.
    #[inline]
    pub fn apply(&self, z: f64) -> f64 {
        ((z * self.halving - self.first) * self.factors.0) * self.factors.1
    }

    /// `k`: sums of squares of `x` are in units of `4^k`.
    pub fn exponent(&self) -> i32 {
        self.exponent
    }
}

/// The exponent `k` with `2^(k-1) <= value < 2^k`, for a positive finite `value`
/// (subnormals included).
fn binary_exponent(value: f64) -> i32 {
    debug_assert!(value > 0.0 && value.is_finite());
    let biased = ((value.to_bits() >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: value = mantissa * 2^-1074, mantissa < 2^52.
        let mantissa = value.to_bits() & ((1u64 << 52) - 1);
        64 - mantissa.leading_zeros() as i32 - 1074
    } else {
        biased - 1022
    }
}

/// `2^e` for `e` in the normal exponents `-1022..=1023`.
fn pow2(e: i32) -> f64 {
    debug_assert!((-1022..=1023).contains(&e));
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// Sums kept side by side in [`block_moments`]: a float sum in one accumulator
/// waits on each add; eight independent ones fill a vector register.
const LANES: usize = 8;

/// `sum(f(z))` over `segment` in [`LANES`] interleaved accumulators.
#[inline(always)]
fn lane_sum<T: Score>(segment: &[T], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let groups = segment.chunks_exact(LANES);
    let rest = groups.remainder();
    for group in groups {
        for (lane, z) in lanes.iter_mut().zip(group) {
            *lane += f(z.to_f64());
        }
    }
    for z in rest {
        lanes[0] += f(z.to_f64());
    }
    lanes.iter().sum()
}

/// [`Moments::of_sorted`] with its sums in [`LANES`] accumulators (the same
/// formulas, added in another order), compiled for the widest vectors the CPU has.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn block_moments<T: Score>(segment: &[T], origin: f64) -> Moments {
    let (first, last) = match (segment.first(), segment.last()) {
        (Some(&a), Some(&b)) => (a.to_f64(), b.to_f64()),
        _ => return Moments::EMPTY,
    };
    let count = segment.len();
    if first == last {
        return Moments {
            count,
            mean: first - origin,
            m2: 0.0,
        };
    }
    let n = count as f64;
    let local_mean = lane_sum(segment, |z| z - first) / n;
    let (mut squares, mut residuals) = ([0.0f64; LANES], [0.0f64; LANES]);
    let groups = segment.chunks_exact(LANES);
    let rest = groups.remainder();
    for group in groups {
        for lane in 0..LANES {
            let d = (group[lane].to_f64() - first) - local_mean;
            squares[lane] += d * d;
            residuals[lane] += d;
        }
    }
    for z in rest {
        let d = (z.to_f64() - first) - local_mean;
        squares[0] += d * d;
        residuals[0] += d;
    }
    let (squares, residual): (f64, f64) = (squares.iter().sum(), residuals.iter().sum());
    let m2 = (squares - residual * residual / n).max(0.0);
    Moments {
        count,
        mean: (first - origin) + local_mean,
        m2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_m2(values: &[f64]) -> f64 {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        values.iter().map(|v| (v - mean) * (v - mean)).sum()
    }

    #[test]
    fn empty_and_single_segments() {
        assert_eq!(Moments::of_sorted::<f64>(&[], 0.0), Moments::EMPTY);
        assert!(Moments::EMPTY.variance().is_nan());
        let one = Moments::of_sorted(&[5.0], 0.0);
        assert_eq!((one.count, one.mean, one.m2), (1, 5.0, 0.0));
    }

    #[test]
    fn merging_in_any_split_matches_the_whole() {
        let values: Vec<f64> = (0..50).map(|i| f64::from(i * i % 17) * 0.25).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let whole = naive_m2(&sorted);
        for cut in 0..=sorted.len() {
            let merged = Moments::of_sorted(&sorted[..cut], 0.0)
                .merge(Moments::of_sorted(&sorted[cut..], 0.0));
            assert_eq!(merged.count, sorted.len());
            assert!((merged.m2 - whole).abs() <= 1e-12 * whole);
        }
    }

    #[test]
    fn keeps_digits_at_a_huge_offset() {
        for offset in [1e6, 1e9] {
            let values: Vec<f64> = (0..1000).map(|i| offset + f64::from(i % 10)).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            // Exact: the residues 0..9 appear 100 times each, variance 8.25.
            let origin = sorted[500];
            let lower = Moments::of_sorted(&sorted[..500], origin);
            let upper = Moments::of_sorted(&sorted[500..], origin);
            let var = lower.merge(upper).variance();
            assert!(
                (var - 8.25).abs() < 1e-12,
                "offset {offset}: variance {var}"
            );
        }
    }

    #[test]
    fn equal_means_keep_zero_variance_through_merges() {
        let a = Moments::of_sorted(&[0.1f64, 0.1], 0.0);
        let b = Moments::of_sorted(&[0.1f64, 0.1, 0.1], 0.0);
        assert_eq!(a.merge(b).m2, 0.0);
    }

    #[test]
    fn blocks_match_one_segment() {
        for offset in [0.0, 1e6, 1e9] {
            let sorted: Vec<f64> = (0..100_003)
                .map(|i| offset + f64::from(i / 7) * 1e-3)
                .collect();
            let origin = sorted[sorted.len() / 2];
            let (a, b) = (
                Moments::of_sorted_blocks(&sorted, origin),
                Moments::of_sorted(&sorted, origin),
            );
            assert_eq!(a.count, b.count);
            assert!((a.mean - b.mean).abs() <= 1e-12 * b.mean.abs().max(1.0));
            assert!((a.m2 - b.m2).abs() <= 1e-11 * b.m2, "offset {offset}");
        }
        let constant = vec![0.1f64; 200_000];
        assert_eq!(Moments::of_sorted_blocks(&constant, 0.0).m2, 0.0);
    }

    /// `sum((z - mean)^2)` exactly, as `m2 * 4^k`, for scores that are small
    /// integers times `2^unit`: the scaled sum is then an exact binary fraction.
    fn exact_m2(integers: &[i64], unit: i32) -> (f64, i32) {
        let n = integers.len() as f64;
        let sum: i64 = integers.iter().sum();
        // n m2 = n sum(i^2) - sum(i)^2, exact in integers.
        let squares: i64 = integers.iter().map(|i| i * i).sum();
        let scaled = (integers.len() as i64 * squares - sum * sum) as f64 / n;
        (scaled, unit)
    }

    #[test]
    fn scaled_m2_keeps_spreads_whose_squares_underflow_or_overflow() {
        let integers = [0i64, 1, 1, 3, 7, 8];
        // Unit 2^-1074 (subnormal scores), 2^-600 (squares below the smallest
        // float), 2^0, 2^600 (squares beyond the largest), 2^1000.
        for unit in [-1074, -600, 0, 600, 1000] {
            let scores: Vec<f64> = integers
                .iter()
                .map(|&i| crate::threshold::pow2_scale(i as f64, unit))
                .collect();
            let got = ScaledM2::of_sorted(&scores);
            let (expected, e) = exact_m2(&integers, unit);
            // m2 * 4^exponent = expected * 4^e, both exact binary fractions.
            let shift = 2 * (got.exponent - e);
            let value = crate::threshold::pow2_scale(got.m2, shift);
            assert!(
                (value - expected).abs() <= 1e-15 * expected,
                "unit 2^{unit}: {value} vs {expected}"
            );
            // The scaled sum never under- or overflows: at least 1/8, at most n.
            assert!((0.125..=6.0).contains(&got.m2), "unit 2^{unit}: {got:?}");
        }
    }

    #[test]
    fn scaled_m2_of_constant_empty_and_widest_sets() {
        assert_eq!(ScaledM2::of_sorted::<f64>(&[]), ScaledM2::ZERO);
        assert_eq!(ScaledM2::of_sorted(&[5e-324; 4]), ScaledM2::ZERO);
        assert_eq!(ScaledM2::of_sorted(&[-1e300f64, -1e300]), ScaledM2::ZERO);
        // Beyond the largest float: -max..max spreads 2^1025.
        let widest = ScaledM2::of_sorted(&[-f64::MAX, f64::MAX]);
        // m2 = 2 (max)^2 = (1/2) (2 max)^2; 2 max is just below 2^1025.
        assert_eq!(widest.exponent, 1025);
        let expected = 0.5 * (f64::MAX * 2f64.powi(-1023) * 0.5).powi(2);
        assert!(
            (widest.m2 - expected).abs() <= 1e-15 * expected,
            "{widest:?}"
        );
        // Two subnormals one unit apart: m2 = 2^-1 * 2^-2148, in units of 4^-1073.
        let two = ScaledM2::of_sorted(&[0.0, 5e-324]);
        assert_eq!((two.m2, two.exponent), (0.125, -1073));
    }

    #[test]
    fn spread_unit_maps_any_range_onto_the_unit_interval() {
        let ranges = [
            (0.0, 5e-324),
            (-1e-310, 3e-310),
            (1.0, 1.0 + f64::EPSILON),
            (-5.5e13, -5.5e13 + 0.25),
            (0.0, 1e300),
            (-f64::MAX, f64::MAX),
            (f64::MAX / 2.0, f64::MAX),
        ];
        for (first, last) in ranges {
            let unit = SpreadUnit::of_range(first, last).unwrap();
            // Exact at the ends: the first score is 0, the last in [1/2, 1).
            assert_eq!(unit.apply(first), 0.0, "[{first}, {last}]");
            let top = unit.apply(last);
            assert!((0.5..1.0).contains(&top), "[{first}, {last}]: {top}");
            // And the units are those of ScaledM2::of_sorted.
            assert_eq!(
                unit.exponent(),
                ScaledM2::of_sorted(&[first, last]).exponent
            );
        }
        for (first, last) in [
            (1.0, 1.0),
            (2.0, 1.0),
            (0.0, f64::INFINITY),
            (f64::NAN, 1.0),
        ] {
            assert!(
                SpreadUnit::of_range(first, last).is_none(),
                "[{first}, {last}]"
            );
        }
    }

    #[test]
    fn binary_exponent_brackets_every_positive_float() {
        for value in [5e-324, 1e-310, f64::MIN_POSITIVE, 0.75, 1.0, 3.0, f64::MAX] {
            let k = binary_exponent(value);
            let (low, high) = (
                crate::threshold::pow2_scale(1.0, k - 1),
                crate::threshold::pow2_scale(1.0, k),
            );
            assert!(low <= value && value < high, "{value}: k = {k}");
        }
    }
}
