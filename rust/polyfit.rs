//! Least-squares polynomial fits of the sorted curve `(i, s[i])`, every degree at once.
//!
//! For equally spaced abscissae the discrete orthogonal (Gram) polynomials are the QR
//! factorisation of the Vandermonde matrix in closed form, so one pass of dot
//! products gives the coefficients of every degree and no system is solved.
//!
//! Precision: the ranks are mapped to `t` in [-1, 1] so that the monic Gram
//! polynomials stay of order one at any n (on raw ranks degree 10 at n = 1e9 would
//! reach 1e90); the values are shifted by the median before the dot products so
//! that an offset of 1e9 does not drown unit-size structure; dot products are
//! accumulated in blocks to slow the growth of rounding error with n.
//!
//! The polynomials are never rank-deficient: degree `d < n` on `n` distinct
//! abscissae always has a unique least-squares fit.
//!
//! Speed: [`GramFit::of_sorted`] runs the recurrence on eight scores at
//! once with the number of terms fixed at compile time, so the accumulators of
//! every degree stay in vector registers, and `multiversion` compiles it for
//! AVX-512 and AVX2 as well as the baseline, chosen at run time; fixed work items
//! share it between rayon's threads with a result that does not depend on their
//! number. [`GramFit::exact_maxima`] finds each fit's maximum over the ranks from
//! its critical points instead of a pass over every rank; [`GramFit::new`] and
//! [`GramFit::fitted_maxima`] are the plain versions the tests compare them with.

use rayon::prelude::*;

use crate::error::KernelError;
use crate::sort::{Score, PARALLEL_MIN};

/// The highest degree any fit may use; keeps the recurrence and the reference's
/// Vandermonde solve (condition number ~ 1e4 at degree 10 on [-1, 1]) well inside
/// f64 precision, and bounds the work per score.
pub const MAX_DEGREE_LIMIT: usize = 10;

/// Scores summed per block before the block joins the running totals: long enough
/// to amortise the extra adds, short enough that the block sums stay accurate.
const SUM_BLOCK: usize = 4096;

/// The block length of [`GramFit::of_sorted_with`] (32 KiB of f64: one L1).
pub const GRAM_BLOCK: usize = SUM_BLOCK;

/// Every degree's least-squares polynomial fit of a sorted curve, in the Gram basis.
#[derive(Debug, Clone, PartialEq)]
pub struct GramFit {
    /// Number of points on the curve.
    pub n: usize,
    /// The value subtracted from the curve before fitting (its median).
    pub center: f64,
    /// `coefficients[k]`: weight of the k-th monic Gram polynomial, k = 0..=max_degree.
    coefficients: Vec<f64>,
    /// `recurrence[k]`: the constant `b_k` in `p_{k+1} = t p_k - b_k p_{k-1}` (index 0 unused).
    recurrence: Vec<f64>,
}

/// Refuse a degree outside `1..=MAX_DEGREE_LIMIT`, or a curve too short for it
/// (`n < max_degree + 2`: the fit would interpolate every point).
///
/// # Errors
/// [`KernelError::InvalidMaxDegree`] or [`KernelError::TooFewScores`].
pub fn check_fit_size(n: usize, max_degree: usize) -> Result<(), KernelError> {
    if max_degree == 0 || max_degree > MAX_DEGREE_LIMIT {
        return Err(KernelError::InvalidMaxDegree {
            got: max_degree,
            limit: MAX_DEGREE_LIMIT,
        });
    }
    if n < max_degree + 2 {
        return Err(KernelError::TooFewScores {
            needed: max_degree + 2,
            got: n,
        });
    }
    Ok(())
}

/// Abscissa `t` in [-1, 1] of rank `i` among `n` points (`n >= 2`).
#[inline]
fn abscissa(i: usize, n: usize) -> f64 {
    let span = (n - 1) as f64;
    (2.0 * i as f64 - span) / span
}

/// The recurrence constants `b_k`, k = 1..=max_degree, of the monic Gram polynomials
/// on n equally spaced points of [-1, 1] (spacing h = 2 / (n - 1)):
///
/// ```text
/// b_k = h^2 k^2 (n^2 - k^2) / (4 (4 k^2 - 1))
/// ```
fn recurrence_constants(n: usize, max_degree: usize) -> Vec<f64> {
    let nf = n as f64;
    let h = 2.0 / (nf - 1.0);
    let mut b = vec![0.0; max_degree + 1];
    for (k, bk) in b.iter_mut().enumerate().skip(1) {
        let kf = k as f64;
        *bk = h * h * kf * kf * (nf * nf - kf * kf) / (4.0 * (4.0 * kf * kf - 1.0));
    }
    b
}

/// Evaluate the monic Gram polynomials `p_0..=p_d` at `t` into `out`.
#[inline]
fn gram_values(t: f64, recurrence: &[f64], out: &mut [f64]) {
    out[0] = 1.0;
    if out.len() > 1 {
        out[1] = t;
    }
    for k in 1..out.len().saturating_sub(1) {
        out[k + 1] = t * out[k] - recurrence[k] * out[k - 1];
    }
}

/// Call `kernel::<N>(args)` with the runtime term count `terms` (degree + 1, at
/// most `MAX_DEGREE_LIMIT + 1`) as a const generic, so that the per-score loops
/// run on fixed-size arrays the compiler unrolls and keeps in registers. The
/// arithmetic is the same, in the same order, as with run-time lengths.
macro_rules! with_terms {
    ($terms:expr, $kernel:ident $(::<$($extra:tt),*>)? ($($arg:expr),* $(,)?)) => {
        match $terms {
            1 => $kernel::<1 $($(, $extra)*)?>($($arg),*),
            2 => $kernel::<2 $($(, $extra)*)?>($($arg),*),
            3 => $kernel::<3 $($(, $extra)*)?>($($arg),*),
            4 => $kernel::<4 $($(, $extra)*)?>($($arg),*),
            5 => $kernel::<5 $($(, $extra)*)?>($($arg),*),
            6 => $kernel::<6 $($(, $extra)*)?>($($arg),*),
            7 => $kernel::<7 $($(, $extra)*)?>($($arg),*),
            8 => $kernel::<8 $($(, $extra)*)?>($($arg),*),
            9 => $kernel::<9 $($(, $extra)*)?>($($arg),*),
            10 => $kernel::<10 $($(, $extra)*)?>($($arg),*),
            _ => $kernel::<{ MAX_DEGREE_LIMIT + 1 } $($(, $extra)*)?>($($arg),*),
        }
    };
}

/// [`gram_values`] for a fixed number of terms `N`.
#[inline(always)]
fn gram_fixed<const N: usize>(t: f64, recurrence: &[f64; N]) -> [f64; N] {
    let mut out = [0.0; N];
    out[0] = 1.0;
    if N > 1 {
        out[1] = t;
    }
    for k in 1..N.saturating_sub(1) {
        out[k + 1] = t * out[k] - recurrence[k] * out[k - 1];
    }
    out
}

/// The first `N` entries of `values`, as an array (zeros past its end).
#[inline]
fn head<const N: usize>(values: &[f64]) -> [f64; N] {
    let mut out = [0.0; N];
    for (o, v) in out.iter_mut().zip(values) {
        *o = *v;
    }
    out
}

/// `totals[k] += sum_i (s[i] - center) p_k(t_i)` for `k < N`, in blocks of
/// [`SUM_BLOCK`] scores.
fn projections<const N: usize, T: Score>(
    sorted: &[T],
    center: f64,
    recurrence: &[f64],
    totals: &mut [f64],
) {
    let n = sorted.len();
    let recurrence: [f64; N] = head(recurrence);
    for (block_index, block) in sorted.chunks(SUM_BLOCK).enumerate() {
        let mut partial = [0.0f64; N];
        let base = block_index * SUM_BLOCK;
        for (j, z) in block.iter().enumerate() {
            let y = z.to_f64() - center;
            let p = gram_fixed(abscissa(base + j, n), &recurrence);
            for (acc, pk) in partial.iter_mut().zip(p) {
                *acc += y * pk;
            }
        }
        for (total, part) in totals.iter_mut().zip(partial) {
            *total += part;
        }
    }
}

/// `maxima[k] = max over i of sum_{j <= k} c_j p_j(t_i)` for `k < N`.
fn running_maxima<const N: usize>(
    n: usize,
    coefficients: &[f64],
    recurrence: &[f64],
    maxima: &mut [f64],
) {
    let recurrence: [f64; N] = head(recurrence);
    let coefficients: [f64; N] = head(coefficients);
    let mut best = [f64::NEG_INFINITY; N];
    for i in 0..n {
        let p = gram_fixed(abscissa(i, n), &recurrence);
        let mut fitted = 0.0;
        for ((max, c), pk) in best.iter_mut().zip(coefficients).zip(p) {
            fitted += c * pk;
            *max = max.max(fitted);
        }
    }
    for (m, b) in maxima.iter_mut().zip(best) {
        *m = b;
    }
}

impl GramFit {
    /// Fit polynomials of every degree `0..=max_degree` to `(i, sorted[i])` by least squares.
    ///
    /// ```text
    /// yhat_d = argmin over polynomials q of degree <= d of sum_i (s[i] - q(i))^2
    /// ```
    ///
    /// Algorithm: project `s - median` on the monic discrete orthogonal polynomials
    /// of `t_i = (2i - (n-1)) / (n-1)` (Gram, 1883), built by their three-term
    /// recurrence; their squared norms are known in closed form.
    ///
    /// # Errors
    /// [`KernelError::InvalidMaxDegree`] when `max_degree` is 0 or above
    /// [`MAX_DEGREE_LIMIT`], and [`KernelError::TooFewScores`] when
    /// `n < max_degree + 2` (the fit would interpolate every point).
    ///
    /// # Examples
    /// ```
    /// use ltrend::polyfit::GramFit;
    /// // A straight line is fitted exactly by degree 1.
    /// let fit = GramFit::new(&[1.0, 3.0, 5.0, 7.0], 1).unwrap();
    /// let yhat = fit.fitted_values(1);
    /// assert!(yhat.iter().zip([1.0, 3.0, 5.0, 7.0]).all(|(a, b)| (a - b).abs() < 1e-12));
    /// ```
    pub fn new<T: Score>(sorted: &[T], max_degree: usize) -> Result<GramFit, KernelError> {
        let n = sorted.len();
        check_fit_size(n, max_degree)?;
        let center = sorted[n / 2].to_f64();
        let recurrence = recurrence_constants(n, max_degree);
        let mut totals = [0.0f64; MAX_DEGREE_LIMIT + 1];
        with_terms!(
            max_degree + 1,
            projections::<_>(sorted, center, &recurrence, &mut totals)
        );
        let mut coefficients = Vec::with_capacity(max_degree + 1);
        let mut norm = n as f64;
        for (k, &total) in totals[..=max_degree].iter().enumerate() {
            if k > 0 {
                norm *= recurrence[k];
            }
            coefficients.push(total / norm);
        }
        Ok(GramFit {
            n,
            center,
            coefficients,
            recurrence,
        })
    }

    /// The same fits for the curve multiplied by `2^exponent` (exact, barring
    /// overflow): maps fits made on a rescaled curve back to the caller's units.
    pub fn rescaled_by_exponent(mut self, exponent: i32) -> GramFit {
        let half = exponent / 2;
        let (a, b) = (2f64.powi(half), 2f64.powi(exponent - half));
        self.center = self.center * a * b;
        for c in &mut self.coefficients {
            *c = *c * a * b;
        }
        self
    }

    /// The highest degree fitted.
    pub fn max_degree(&self) -> usize {
        self.coefficients.len() - 1
    }

    /// The maximum fitted value over the n sample points, for each degree 1..=max_degree.
    ///
    /// ```text
    /// tau_d = max over i in 0..n of yhat_d[i]
    /// ```
    ///
    /// One pass over the ranks; the scores themselves are not read again.
    pub fn fitted_maxima(&self) -> Vec<f64> {
        let degree = self.max_degree();
        let mut maxima = [f64::NEG_INFINITY; MAX_DEGREE_LIMIT + 1];
        with_terms!(
            degree + 1,
            running_maxima(self.n, &self.coefficients, &self.recurrence, &mut maxima)
        );
        maxima[1..=degree].iter().map(|m| m + self.center).collect()
    }

    /// The fitted values of one degree at every rank 0..n (for tests and plotting).
    ///
    /// # Panics
    /// When `degree > self.max_degree()`; callers pass a degree they fitted.
    pub fn fitted_values(&self, degree: usize) -> Vec<f64> {
        assert!(
            degree <= self.max_degree(),
            "degree {degree} was not fitted"
        );
        let mut values = [0.0f64; MAX_DEGREE_LIMIT + 1];
        let values = &mut values[..=degree];
        (0..self.n)
            .map(|i| {
                gram_values(abscissa(i, self.n), &self.recurrence, values);
                let sum: f64 = self.coefficients[..=degree]
                    .iter()
                    .zip(values.iter())
                    .map(|(c, p)| c * p)
                    .sum();
                sum + self.center
            })
            .collect()
    }

    /// The degree-`degree` fit minus [`GramFit::center`], as coefficients of ascending
    /// powers of `t = (2i - (n-1)) / (n-1)`: `yhat[i] = center + sum_j c[j] t_i^j`.
    ///
    /// # Panics
    /// When `degree > self.max_degree()`.
    pub fn power_coefficients(&self, degree: usize) -> Vec<f64> {
        assert!(
            degree <= self.max_degree(),
            "degree {degree} was not fitted"
        );
        let mut result = vec![0.0; degree + 1];
        // Power-basis coefficients of p_{k-1} and p_k, grown by the recurrence.
        let mut previous: Vec<f64> = Vec::new();
        let mut current = vec![1.0];
        for k in 0..=degree {
            for (r, c) in result.iter_mut().zip(&current) {
                *r += self.coefficients[k] * c;
            }
            let mut next = vec![0.0; current.len() + 1];
            for (j, c) in current.iter().enumerate() {
                next[j + 1] += c;
            }
            if k >= 1 {
                for (j, c) in previous.iter().enumerate() {
                    next[j] -= self.recurrence[k] * c;
                }
            }
            previous = std::mem::replace(&mut current, next);
        }
        result
    }
}

/// Add to `totals[k]` the projections `sum_r y(r) p_k(t_r)`, k = 0..totals.len(), over
/// the global ranks `offset..offset + len` of a curve of `n` points.
///
/// `y(r)` is the curve's value at rank `r` minus the origin. Blocks follow the same
/// global grid of [`SUM_BLOCK`] ranks as [`GramFit::new`], so a run that covers whole
/// blocks adds the very block sums of the in-memory fit; only the order in which
/// block sums join the totals differs.
pub(crate) fn add_rank_projections<F: Fn(usize) -> f64>(
    n: usize,
    offset: usize,
    len: usize,
    y: F,
    totals: &mut [f64],
) {
    let max_degree = totals.len().saturating_sub(1);
    let recurrence = recurrence_constants(n, max_degree);
    let mut values = [0.0f64; MAX_DEGREE_LIMIT + 1];
    let values = &mut values[..=max_degree];
    let end = offset + len;
    let mut start = offset;
    while start < end {
        let block_end = ((start / SUM_BLOCK + 1) * SUM_BLOCK).min(end);
        let mut partial = [0.0f64; MAX_DEGREE_LIMIT + 1];
        for rank in start..block_end {
            let yr = y(rank);
            gram_values(abscissa(rank, n), &recurrence, values);
            for (acc, p) in partial.iter_mut().zip(values.iter()) {
                *acc += yr * p;
            }
        }
        for (total, part) in totals.iter_mut().zip(partial) {
            *total += part;
        }
        start = block_end;
    }
}

impl GramFit {
    /// The fits of every degree `0..=sums.len() - 1` from projection sums gathered
    /// elsewhere, for example added up over the buckets of a distributed sort.
    ///
    /// ```text
    /// sums[k] = sum over i in 0..n of (s[i] - center) p_k(t_i)
    /// a_k     = sums[k] / ||p_k||^2,   ||p_0||^2 = n,   ||p_k||^2 = b_k ||p_{k-1}||^2
    /// ```
    ///
    /// Given the sums of [`GramFit::new`] this is the same fit.
    ///
    /// # Errors
    /// As [`GramFit::new`], with `max_degree = sums.len() - 1`.
    ///
    /// # Examples
    /// ```
    /// use ltrend::polyfit::GramFit;
    /// // Degree 1 on 4 points: p_0 = 1 and p_1 = t = -1, -1/3, 1/3, 1; center 5.
    /// let y = [1.0, 3.0, 5.0, 7.0];
    /// let t = [-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0];
    /// let sums = [
    ///     y.iter().map(|v| v - 5.0).sum::<f64>(),
    ///     y.iter().zip(t).map(|(v, t)| (v - 5.0) * t).sum::<f64>(),
    /// ];
    /// let fit = GramFit::from_projections(4, 5.0, &sums).unwrap();
    /// let yhat = fit.fitted_values(1);
    /// assert!(yhat.iter().zip(y).all(|(a, b)| (a - b).abs() < 1e-12));
    /// ```
    pub fn from_projections(n: usize, center: f64, sums: &[f64]) -> Result<GramFit, KernelError> {
        let max_degree = sums.len().saturating_sub(1);
        check_fit_size(n, max_degree)?;
        let recurrence = recurrence_constants(n, max_degree);
        let mut coefficients = Vec::with_capacity(max_degree + 1);
        let mut norm = n as f64;
        for (k, &total) in sums.iter().enumerate() {
            if k > 0 {
                norm *= recurrence[k];
            }
            coefficients.push(total / norm);
        }
        Ok(GramFit {
            n,
            center,
            coefficients,
            recurrence,
        })
    }
}

/// Scores per lane group in [`GramFit::of_sorted`]: eight f64 lanes fill one
/// AVX-512 register (two AVX2 ones), so the recurrence runs on whole vectors.
const LANES: usize = 8;

/// Scores per work item of [`GramFit::of_sorted`]: fixed, so that the order of
/// the sums (and so the result, to the last bit) does not depend on the threads.
const WORK_ITEM: usize = 16 * SUM_BLOCK;

/// `sum_i (s[i] - center) p_k(t_i)` for `k = 0..=degree` over one block of at most
/// [`SUM_BLOCK`] scores whose first has rank `first_rank` among `n`.
fn projections_of_block<T: Score>(
    block: &[T],
    first_rank: usize,
    n: usize,
    center: f64,
    recurrence: &[f64],
    degree: usize,
) -> [f64; MAX_DEGREE_LIMIT + 1] {
    // The number of terms is a constant inside each kernel, so that the lane
    // accumulators of every degree stay in vector registers.
    match degree + 1 {
        2 => block_kernel::<T, 2>(block, first_rank, n, center, recurrence),
        3 => block_kernel::<T, 3>(block, first_rank, n, center, recurrence),
        4 => block_kernel::<T, 4>(block, first_rank, n, center, recurrence),
        5 => block_kernel::<T, 5>(block, first_rank, n, center, recurrence),
        6 => block_kernel::<T, 6>(block, first_rank, n, center, recurrence),
        7 => block_kernel::<T, 7>(block, first_rank, n, center, recurrence),
        8 => block_kernel::<T, 8>(block, first_rank, n, center, recurrence),
        9 => block_kernel::<T, 9>(block, first_rank, n, center, recurrence),
        10 => block_kernel::<T, 10>(block, first_rank, n, center, recurrence),
        _ => block_kernel::<T, { MAX_DEGREE_LIMIT + 1 }>(block, first_rank, n, center, recurrence),
    }
}

/// [`projections_of_block`] for `TERMS = degree + 1` terms (2 to 11), compiled
/// for the widest vectors the CPU has.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512dq+avx2+fma", "x86_64+avx2+fma"))]
fn block_kernel<T: Score, const TERMS: usize>(
    block: &[T],
    first_rank: usize,
    n: usize,
    center: f64,
    recurrence: &[f64],
) -> [f64; MAX_DEGREE_LIMIT + 1] {
    let mut b = [0.0f64; TERMS];
    for (bk, r) in b.iter_mut().zip(recurrence) {
        *bk = *r;
    }
    // t_i = i h - 1 with h = 2 / (n - 1): a multiply-add instead of the division
    // of `abscissa` (within an ulp of it), which would bound the loop.
    let h = 2.0 / (n - 1) as f64;
    let mut partial = [[0.0f64; LANES]; TERMS];
    let groups = block.chunks_exact(LANES);
    let rest = groups.remainder();
    // The ranks as floats, stepped by LANES: exact (ranks are far below 2^53), so
    // the same values as converting each rank, without a conversion per score.
    let mut rank = [0.0f64; LANES];
    for (lane, r) in rank.iter_mut().enumerate() {
        *r = (first_rank + lane) as f64;
    }
    for group in groups {
        let mut y = [0.0f64; LANES];
        let mut t = [0.0f64; LANES];
        for lane in 0..LANES {
            y[lane] = group[lane].to_f64() - center;
            t[lane] = rank[lane] * h - 1.0;
            rank[lane] += LANES as f64;
        }
        accumulate_lanes(&y, &t, &b, &mut partial);
    }
    // The last few scores of the block run in lane 0 of a group of one.
    let first = first_rank + block.len() - rest.len();
    for (j, z) in rest.iter().enumerate() {
        let mut y = [0.0f64; LANES];
        let mut t = [0.0f64; LANES];
        y[0] = z.to_f64() - center;
        t[0] = (first + j) as f64 * h - 1.0;
        accumulate_lanes(&y, &t, &b, &mut partial);
    }
    let mut totals = [0.0f64; MAX_DEGREE_LIMIT + 1];
    for (total, lanes) in totals.iter_mut().zip(&partial) {
        *total = lanes.iter().sum::<f64>();
    }
    totals
}

/// One work item: the projections of its blocks summed in order, and what
/// `per_block` makes of each block while it is in cache.
fn projections_of_item<T: Score, B>(
    item: &[T],
    first_rank: usize,
    n: usize,
    center: f64,
    recurrence: &[f64],
    degree: usize,
    per_block: &(dyn Fn(&[T]) -> B + Sync),
) -> ([f64; MAX_DEGREE_LIMIT + 1], Vec<B>) {
    let mut totals = [0.0f64; MAX_DEGREE_LIMIT + 1];
    let mut extras = Vec::with_capacity(item.len().div_ceil(SUM_BLOCK));
    for (block_index, block) in item.chunks(SUM_BLOCK).enumerate() {
        let base = first_rank + block_index * SUM_BLOCK;
        let block_totals = projections_of_block(block, base, n, center, recurrence, degree);
        for (total, part) in totals.iter_mut().zip(block_totals) {
            *total += part;
        }
        extras.push(per_block(block));
    }
    (totals, extras)
}

/// `partial[k][lane] += y[lane] p_k(t[lane])` for `k < TERMS`, the Gram
/// polynomials built by their recurrence (`b[k]`: the constants) lane by lane.
#[inline(always)]
fn accumulate_lanes<const TERMS: usize>(
    y: &[f64; LANES],
    t: &[f64; LANES],
    b: &[f64; TERMS],
    partial: &mut [[f64; LANES]; TERMS],
) {
    let mut previous = [1.0f64; LANES];
    let mut current = *t;
    for lane in 0..LANES {
        partial[0][lane] += y[lane];
        partial[1][lane] += y[lane] * current[lane];
    }
    for k in 1..TERMS - 1 {
        let mut next = [0.0f64; LANES];
        for lane in 0..LANES {
            next[lane] = t[lane] * current[lane] - b[k] * previous[lane];
            partial[k + 1][lane] += y[lane] * next[lane];
        }
        previous = current;
        current = next;
    }
}

/// `p(x)` for ascending coefficients `p`, by Horner's rule.
fn horner(p: &[f64], x: f64) -> f64 {
    p.iter().rev().fold(0.0, |acc, c| acc * x + c)
}

/// The real roots of the polynomial `p` (ascending coefficients) in the open
/// interval `(a, b)`, ascending.
///
/// Algorithm: between consecutive roots of `p'` (found the same way, recursively)
/// `p` is monotone, so each such interval holds at most one root, found by
/// bisection to the last bit when `p` changes sign across it.
fn real_roots(p: &[f64], a: f64, b: f64) -> Vec<f64> {
    let degree = p.iter().rposition(|&c| c != 0.0).unwrap_or(0);
    let p = &p[..=degree];
    if degree == 0 {
        return Vec::new();
    }
    if degree == 1 {
        let root = -p[0] / p[1];
        return if a < root && root < b {
            vec![root]
        } else {
            Vec::new()
        };
    }
    let derivative: Vec<f64> = (1..=degree).map(|k| k as f64 * p[k]).collect();
    let mut knots = vec![a];
    knots.extend(real_roots(&derivative, a, b));
    knots.push(b);
    let mut roots = Vec::new();
    for pair in knots.windows(2) {
        let (lo, hi) = (pair[0], pair[1]);
        let (f_lo, f_hi) = (horner(p, lo), horner(p, hi));
        if f_hi == 0.0 && hi < b {
            roots.push(hi);
            continue;
        }
        if f_lo.signum() == f_hi.signum() || f_lo == 0.0 {
            continue;
        }
        roots.push(bracketed_root(p, &derivative, lo, hi, f_lo));
    }
    roots
}

/// The root of `p` in `[lo, hi]`, where `p` is monotone and `p(lo)` (`f_lo`) and
/// `p(hi)` differ in sign: Newton steps from the middle, each kept inside the
/// shrinking bracket (bisection when a step would leave it), until the bracket
/// stops shrinking or a step falls below an ulp of the root.
fn bracketed_root(p: &[f64], derivative: &[f64], mut lo: f64, mut hi: f64, f_lo: f64) -> f64 {
    let mut x = 0.5 * (lo + hi);
    // Enough for bisection alone to reach the last bit from any bracket in [-1, 1].
    for _ in 0..1100 {
        let f = horner(p, x);
        if f == 0.0 {
            return x;
        }
        if f.signum() == f_lo.signum() {
            lo = x;
        } else {
            hi = x;
        }
        let tolerance = f64::EPSILON * lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE);
        if hi - lo <= tolerance {
            return 0.5 * (lo + hi);
        }
        // A Newton step this short is the root's error itself: near the root the
        // value is rounding noise, and further steps would only creep.
        let step = f / horner(derivative, x);
        if step.abs() <= 2.0 * tolerance {
            return (x - step).clamp(lo, hi);
        }
        let newton = x - step;
        x = if newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
    }
    x
}

/// Ranks searched on each side of a critical point of the fit: the point's rank
/// is exact to ~1e-16 n, and two more on each side absorb that and the rounding
/// of the fitted values.
const ROOT_NEIGHBOURS: usize = 2;

impl GramFit {
    /// [`GramFit::new`], computed faster: eight scores at a time through the
    /// recurrence, and work items of fixed size summed on rayon's threads above
    /// [`PARALLEL_MIN`] scores.
    ///
    /// The result equals that of [`GramFit::new`] up to the rounding of the sums
    /// (the same products, added in another order), and does not depend on the
    /// number of threads.
    ///
    /// # Errors
    /// As [`GramFit::new`].
    ///
    /// # Examples
    /// ```
    /// use ltrend::polyfit::GramFit;
    /// let y: Vec<f64> = (0..1000).map(|i| (f64::from(i) / 300.0).exp()).collect();
    /// let (fast, plain) = (GramFit::of_sorted(&y, 5).unwrap(), GramFit::new(&y, 5).unwrap());
    /// let (a, b) = (fast.fitted_values(5), plain.fitted_values(5));
    /// assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-12 * y.abs()));
    /// ```
    pub fn of_sorted<T: Score>(sorted: &[T], max_degree: usize) -> Result<GramFit, KernelError> {
        Ok(GramFit::of_sorted_with(sorted, max_degree, &|_| ())?.0)
    }

    /// [`GramFit::of_sorted`], and `per_block` applied to each block of
    /// [`GRAM_BLOCK`] consecutive scores (the last may be shorter) while the block
    /// is in cache, so that a caller needing another statistic of the curve
    /// reads it from memory once.
    ///
    /// # Errors
    /// As [`GramFit::new`].
    ///
    /// # Examples
    /// ```
    /// use ltrend::polyfit::{GramFit, GRAM_BLOCK};
    /// let y: Vec<f64> = (0..10_000).map(f64::from).collect();
    /// let (fit, sums) = GramFit::of_sorted_with(&y, 2, &|block: &[f64]| block.iter().sum::<f64>()).unwrap();
    /// assert_eq!(sums.len(), 10_000usize.div_ceil(GRAM_BLOCK));
    /// assert_eq!(sums.iter().sum::<f64>(), y.iter().sum::<f64>());
    /// assert_eq!(fit.n, 10_000);
    /// ```
    pub fn of_sorted_with<T: Score, B: Send>(
        sorted: &[T],
        max_degree: usize,
        per_block: &(dyn Fn(&[T]) -> B + Sync),
    ) -> Result<(GramFit, Vec<B>), KernelError> {
        let n = sorted.len();
        check_fit_size(n, max_degree)?;
        let center = sorted[n / 2].to_f64();
        let recurrence = recurrence_constants(n, max_degree);
        let item = |(index, item): (usize, &[T])| {
            let first_rank = index * WORK_ITEM;
            projections_of_item(
                item,
                first_rank,
                n,
                center,
                &recurrence,
                max_degree,
                per_block,
            )
        };
        let items: Vec<_> = if n >= PARALLEL_MIN {
            sorted.par_chunks(WORK_ITEM).enumerate().map(item).collect()
        } else {
            sorted.chunks(WORK_ITEM).enumerate().map(item).collect()
        };
        let mut totals = [0.0f64; MAX_DEGREE_LIMIT + 1];
        let mut extras = Vec::with_capacity(n.div_ceil(SUM_BLOCK));
        for (item_totals, item_extras) in items {
            for (total, part) in totals.iter_mut().zip(item_totals) {
                *total += part;
            }
            extras.extend(item_extras);
        }
        let mut coefficients = Vec::with_capacity(max_degree + 1);
        let mut norm = n as f64;
        for (k, &total) in totals[..=max_degree].iter().enumerate() {
            if k > 0 {
                norm *= recurrence[k];
            }
            coefficients.push(total / norm);
        }
        let fit = GramFit {
            n,
            center,
            coefficients,
            recurrence,
        };
        Ok((fit, extras))
    }

    /// The fit of `degree` at rank `i` minus [`GramFit::center`], summed as
    /// [`GramFit::fitted_maxima`] sums it.
    fn centred_value(&self, degree: usize, i: usize) -> f64 {
        let mut values = [0.0f64; MAX_DEGREE_LIMIT + 1];
        let values = &mut values[..=degree];
        gram_values(abscissa(i, self.n), &self.recurrence, values);
        let mut fitted = 0.0;
        for (c, p) in self.coefficients.iter().zip(values.iter()) {
            fitted += c * p;
        }
        fitted
    }

    /// [`GramFit::fitted_maxima`] without the pass over every rank.
    ///
    /// ```text
    /// tau_d = max over i in C_d of yhat_d[i],
    /// C_d   = {0, n-1} and the ranks next to each real root of yhat_d' in (-1, 1)
    /// ```
    ///
    /// Between consecutive critical points a polynomial is monotone, so over the
    /// integer ranks of such a stretch its maximum sits at one of the stretch's
    /// ends: the ranks around a critical point, or the first or last rank. The
    /// candidates are evaluated exactly as the full pass evaluates every rank, so
    /// the maxima agree with it (a property test holds them to 1e-12).
    ///
    /// # Examples
    /// ```
    /// use ltrend::polyfit::GramFit;
    /// let y: Vec<f64> = (0..500).map(|i| (f64::from(i) / 80.0).sin() + f64::from(i % 7)).collect();
    /// let fit = GramFit::of_sorted(&y, 6).unwrap();
    /// let (fast, full) = (fit.exact_maxima(), fit.fitted_maxima());
    /// assert!(fast.iter().zip(&full).all(|(a, b)| (a - b).abs() <= 1e-12 * b.abs()));
    /// ```
    pub fn exact_maxima(&self) -> Vec<f64> {
        let last = self.n - 1;
        let half_span = last as f64 / 2.0;
        (1..=self.max_degree())
            .map(|degree| {
                let power = self.power_coefficients(degree);
                let derivative: Vec<f64> = (1..=degree).map(|k| k as f64 * power[k]).collect();
                let mut best = self
                    .centred_value(degree, 0)
                    .max(self.centred_value(degree, last));
                for root in real_roots(&derivative, -1.0, 1.0) {
                    let rank = ((root + 1.0) * half_span).clamp(0.0, last as f64);
                    let low = (rank.floor() as usize).saturating_sub(ROOT_NEIGHBOURS);
                    let high = (rank.ceil() as usize + ROOT_NEIGHBOURS).min(last);
                    for i in low..=high {
                        best = best.max(self.centred_value(degree, i));
                    }
                }
                best + self.center
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Least squares by normal equations on raw ranks: fine for tiny exact cases.
    #[allow(
        clippy::needless_range_loop,
        reason = "Gaussian elimination reads clearest with row and column indices"
    )]
    fn normal_equations_fit(y: &[f64], degree: usize) -> Vec<f64> {
        let m = degree + 1;
        let mut a = vec![vec![0.0; m + 1]; m];
        for (i, &yi) in y.iter().enumerate() {
            let x = i as f64;
            for r in 0..m {
                for c in 0..m {
                    a[r][c] += x.powi((r + c) as i32);
                }
                a[r][m] += yi * x.powi(r as i32);
            }
        }
        for p in 0..m {
            for r in (p + 1)..m {
                let f = a[r][p] / a[p][p];
                for c in p..=m {
                    a[r][c] -= f * a[p][c];
                }
            }
        }
        let mut beta = vec![0.0; m];
        for p in (0..m).rev() {
            let s: f64 = ((p + 1)..m).map(|c| a[p][c] * beta[c]).sum();
            beta[p] = (a[p][m] - s) / a[p][p];
        }
        (0..y.len())
            .map(|i| (0..m).map(|j| beta[j] * (i as f64).powi(j as i32)).sum())
            .collect()
    }

    #[test]
    fn matches_normal_equations_on_small_curves() {
        let y: Vec<f64> = (0..12)
            .map(|i| f64::from(i * i % 7) + 0.1 * f64::from(i))
            .collect();
        let fit = GramFit::new(&y, 5).unwrap();
        for degree in 0..=5 {
            let expected = normal_equations_fit(&y, degree);
            for (a, b) in fit.fitted_values(degree).iter().zip(&expected) {
                assert!((a - b).abs() < 1e-8, "degree {degree}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn reproduces_a_polynomial_exactly() {
        let y: Vec<f64> = (0..20)
            .map(|i| 2.0 - 0.5 * f64::from(i) + 0.01 * f64::from(i * i * i))
            .collect();
        let fit = GramFit::new(&y, 4).unwrap();
        for degree in 3..=4 {
            for (a, b) in fit.fitted_values(degree).iter().zip(&y) {
                assert!((a - b).abs() < 1e-9 * b.abs().max(1.0));
            }
        }
    }

    #[test]
    fn maxima_are_the_max_of_fitted_values() {
        let y: Vec<f64> = (0..101).map(|i| (f64::from(i) / 10.0).exp()).collect();
        let fit = GramFit::new(&y, 5).unwrap();
        let maxima = fit.fitted_maxima();
        for degree in 1..=5 {
            let expected = fit
                .fitted_values(degree)
                .into_iter()
                .fold(f64::NEG_INFINITY, f64::max);
            assert!((maxima[degree - 1] - expected).abs() <= 1e-12 * expected.abs());
        }
    }

    #[test]
    fn fixed_size_kernels_match_the_run_time_loops_at_every_degree() {
        // fitted_values runs the run-time-length recurrence; the fixed-size kernels
        // must give the same numbers bit for bit (same operations, same order).
        let y: Vec<f64> = (0..157)
            .map(|i| f64::from(i % 13) * 0.1 + (f64::from(i) / 40.0).exp())
            .collect();
        for max_degree in 1..=MAX_DEGREE_LIMIT {
            let fit = GramFit::new(&y, max_degree).unwrap();
            let maxima = fit.fitted_maxima();
            assert_eq!(maxima.len(), max_degree);
            for degree in 1..=max_degree {
                let expected = fit
                    .fitted_values(degree)
                    .into_iter()
                    .fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(maxima[degree - 1], expected, "degree {degree}");
            }
        }
    }

    #[test]
    fn power_coefficients_evaluate_to_the_fit() {
        let y: Vec<f64> = (0..30)
            .map(|i| f64::from(i % 5) + f64::from(i) * 0.3)
            .collect();
        let fit = GramFit::new(&y, 5).unwrap();
        for degree in 1..=5 {
            let c = fit.power_coefficients(degree);
            for (i, v) in fit.fitted_values(degree).iter().enumerate() {
                let t = abscissa(i, fit.n);
                let p: f64 = c.iter().rev().fold(0.0, |acc, cj| acc * t + cj);
                assert!((p + fit.center - v).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn refuses_degrees_it_cannot_fit() {
        assert_eq!(
            GramFit::new(&[1.0, 2.0, 3.0], 2),
            Err(KernelError::TooFewScores { needed: 4, got: 3 })
        );
        assert!(matches!(
            GramFit::new(&[1.0; 20], 0),
            Err(KernelError::InvalidMaxDegree { .. })
        ));
        assert!(matches!(
            GramFit::new(&[1.0; 20], 11),
            Err(KernelError::InvalidMaxDegree { .. })
        ));
    }

    /// A small xorshift generator for the property tests.
    fn xorshift(state: &mut u64) -> f64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sorted curves of the shapes the method meets: flat with a steep tail,
    /// heavy ties, a huge offset, two values, and a few points.
    fn curves(seed: u64) -> Vec<Vec<f64>> {
        let mut state = seed | 1;
        let mut out = Vec::new();
        for &n in &[4usize, 7, 12, 50, 333, 4097, 20_000] {
            let mut l_shape: Vec<f64> = (0..n)
                .map(|i| {
                    let u = xorshift(&mut state);
                    if i % 50 == 0 {
                        8.0 + 30.0 * u
                    } else {
                        u
                    }
                })
                .collect();
            let mut ties: Vec<f64> = (0..n)
                .map(|_| (xorshift(&mut state) * 4.0).floor())
                .collect();
            let mut offset: Vec<f64> = (0..n).map(|_| 1e9 + xorshift(&mut state)).collect();
            let mut two: Vec<f64> = (0..n).map(|i| if i < n / 3 { 0.0 } else { 1.0 }).collect();
            for v in [&mut l_shape, &mut ties, &mut offset, &mut two] {
                v.sort_by(f64::total_cmp);
            }
            out.extend([l_shape, ties, offset, two]);
        }
        out
    }

    #[test]
    fn exact_maxima_match_the_full_pass() {
        for seed in 1..9u64 {
            for y in curves(seed) {
                for max_degree in 1..=MAX_DEGREE_LIMIT.min(y.len() - 2) {
                    let fit = GramFit::of_sorted(&y, max_degree).unwrap();
                    let (fast, full) = (fit.exact_maxima(), fit.fitted_maxima());
                    for (d, (a, b)) in fast.iter().zip(&full).enumerate() {
                        let scale = b.abs().max(fit.center.abs()).max(f64::MIN_POSITIVE);
                        assert!(
                            (a - b).abs() <= 1e-12 * scale,
                            "seed {seed} n {} degree {}: {a} vs {b}",
                            y.len(),
                            d + 1
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn lane_projections_match_the_plain_loop() {
        for seed in [3u64, 99] {
            for y in curves(seed) {
                let max_degree = MAX_DEGREE_LIMIT.min(y.len() - 2);
                let (fast, plain) = (
                    GramFit::of_sorted(&y, max_degree).unwrap(),
                    GramFit::new(&y, max_degree).unwrap(),
                );
                for degree in 0..=max_degree {
                    let (a, b) = (fast.fitted_values(degree), plain.fitted_values(degree));
                    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
                    for (x, z) in a.iter().zip(&b) {
                        assert!(
                            (x - z).abs() <= 1e-12 * scale,
                            "degree {degree}: {x} vs {z}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn roots_of_known_polynomials() {
        // (t - 0.5)(t + 0.25)(t - 0.9) = t^3 - 1.15 t^2 + 0.1 t + 0.1125
        let roots = real_roots(&[0.1125, 0.1, -1.15, 1.0], -1.0, 1.0);
        let expected = [-0.25, 0.5, 0.9];
        assert_eq!(roots.len(), 3);
        for (r, e) in roots.iter().zip(expected) {
            assert!((r - e).abs() < 1e-15, "{r} vs {e}");
        }
        // t^2 + 1 has no real root; a constant has none.
        assert!(real_roots(&[1.0, 0.0, 1.0], -1.0, 1.0).is_empty());
        assert!(real_roots(&[3.0], -1.0, 1.0).is_empty());
    }

    #[test]
    fn work_items_do_not_depend_on_the_thread_count() {
        let mut state = 5u64;
        let y: Vec<f64> = {
            let mut v: Vec<f64> = (0..PARALLEL_MIN + 12_345)
                .map(|_| xorshift(&mut state))
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let one = pool.install(|| GramFit::of_sorted(&y, 7).unwrap());
        let many = GramFit::of_sorted(&y, 7).unwrap();
        assert_eq!(one, many);
    }
}
