//! The L-trend methods that `fit` offers, and the dispatch between them.
//!
//! Every method reads the same sorted curve `(i, s[i])` and returns a threshold;
//! they differ in how they find the corner of the L. `Paper` is the paper's
//! polynomial method (`threshold::fit`), untouched; the others cut the curve at a
//! breakpoint between two distinct scores, so their threshold is always one of the
//! scores (or `+inf` when they find no split).

use std::fmt;

use crate::error::KernelError;
use crate::knee::knee;
use crate::log_knee::log_knee;
use crate::polyfit::MAX_DEGREE_LIMIT;
use crate::sort::{sorted_finite, NanPolicy, Score};
use crate::tail_aware::tail_aware;
use crate::threshold::{self, extreme_scale_exponent, pow2_scale, LTrendFit, MIN_SCORES};
use crate::two_segment::two_segment;

/// How the threshold is read off the sorted curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// The paper's method: polynomial fits of degree 1..=max_degree, the maximum
    /// of each fit as a candidate, the most compact split wins.
    Paper,
    /// The exact two-segment (L-shaped) least-squares fit over every breakpoint.
    TwoSegment,
    /// The knee of the sorted curve: the point farthest below its chord.
    Knee,
    /// The knee of the sorted curve on a signed-log scale (median-centred,
    /// in units of the interquartile range).
    LogKnee,
    /// `LogKnee` on a heavy tail, the consensus of `Knee` and `TwoSegment` on a
    /// light one (judged against an exponential sample).
    TailAware,
}

impl Method {
    /// Every method, in the order `ltrend.METHODS` lists them.
    pub const ALL: [Method; 5] = [
        Method::Paper,
        Method::TwoSegment,
        Method::Knee,
        Method::LogKnee,
        Method::TailAware,
    ];

    /// The name used by the Python API.
    pub fn name(self) -> &'static str {
        match self {
            Method::Paper => "paper",
            Method::TwoSegment => "two_segment",
            Method::Knee => "knee",
            Method::LogKnee => "log_knee",
            Method::TailAware => "tail_aware",
        }
    }

    /// The method of that name, if any.
    ///
    /// # Examples
    /// ```
    /// use ltrend::method::Method;
    /// assert_eq!(Method::from_name("knee"), Some(Method::Knee));
    /// assert_eq!(Method::from_name("Knee"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The method of that name, or an error that lists every method.
    ///
    /// # Errors
    /// [`KernelError::UnknownMethod`] for a name not in [`Method::ALL`].
    ///
    /// # Examples
    /// ```
    /// use ltrend::method::Method;
    /// assert_eq!(Method::parse("two_segment"), Ok(Method::TwoSegment));
    /// assert!(Method::parse("otsu").unwrap_err().to_string().contains("tail_aware"));
    /// ```
    pub fn parse(name: &str) -> Result<Method, KernelError> {
        Method::from_name(name).ok_or_else(|| KernelError::UnknownMethod {
            got: name.to_owned(),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of a breakpoint method: the split and the curve it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitFit<T> {
    pub method: Method,
    /// `sorted[breakpoint]`; `+inf` when the method finds no split.
    pub threshold: f64,
    /// `sorted[breakpoint..]` are the anomalies; `None` when there is no split.
    pub breakpoint: Option<usize>,
    pub n_anomalies: usize,
    /// The finite scores in ascending order (the sorted curve).
    pub sorted: Vec<T>,
    pub n_omitted: usize,
}

/// The outcome of [`fit_method`].
#[derive(Debug, Clone, PartialEq)]
pub enum MethodFit<T> {
    /// The paper's method, with its per-degree table and fits.
    Paper(LTrendFit<T>),
    /// A breakpoint method.
    Split(SplitFit<T>),
}

impl<T> MethodFit<T> {
    /// The learned threshold: scores at or above it are anomalous.
    pub fn threshold(&self) -> f64 {
        match self {
            MethodFit::Paper(fit) => fit.threshold,
            MethodFit::Split(fit) => fit.threshold,
        }
    }

    /// How many finite scores are at or above the threshold.
    pub fn n_anomalies(&self) -> usize {
        match self {
            MethodFit::Paper(fit) => fit.n_anomalies,
            MethodFit::Split(fit) => fit.n_anomalies,
        }
    }
}

/// The breakpoint a split method finds on a sorted curve.
fn breakpoint_of<T: Score>(method: Method, sorted: &[T]) -> Option<usize> {
    match method {
        Method::TwoSegment => two_segment(sorted).map(|f| f.breakpoint),
        Method::Knee => knee(sorted).map(|k| k.breakpoint),
        Method::LogKnee => log_knee(sorted).map(|k| k.breakpoint),
        Method::TailAware => tail_aware(sorted).map(|f| f.breakpoint),
        Method::Paper => None,
    }
}

/// Learn the anomaly threshold of `scores` with the chosen L-trend method.
///
/// ```text
/// paper        threshold::fit (the paper's method, unchanged)
/// two_segment  s[k*],  k* = argmin_k SSE(line on i < k) + SSE(line on i >= k)
/// knee         first score above s[k],  k = argmax_i (i/(n-1) - (s[i]-s[0])/(s[n-1]-s[0]))
/// log_knee     the knee of t_i = sign(z_i) ln(1 + |z_i|),  z_i = (s[i] - median) / (Q3 - Q1)
/// tail_aware   log_knee if its depth >= an exponential sample's, else the top
///              round(sqrt(a b)) scores, a and b the counts of knee and two_segment
/// ```
///
/// Every method needs [`MIN_SCORES`] finite scores and checks `max_degree` (used
/// only by `Paper`), so that the arguments mean the same for all of them.
///
/// # Errors
/// As [`threshold::fit`].
///
/// # Examples
/// ```
/// use ltrend::method::{fit_method, Method};
/// use ltrend::sort::NanPolicy;
/// let mut scores: Vec<f64> = (0..100).map(|i| 1.0 + 0.001 * f64::from(i)).collect();
/// scores.extend([5.0, 8.0, 13.0]);
/// for method in Method::ALL {
///     let fit = fit_method(&scores, method, 5, NanPolicy::Raise).unwrap();
///     assert_eq!(fit.n_anomalies(), 3, "{method}");
/// }
/// ```
pub fn fit_method<T: Score>(
    scores: &[T],
    method: Method,
    max_degree: usize,
    nan_policy: NanPolicy,
) -> Result<MethodFit<T>, KernelError> {
    check_max_degree(max_degree)?;
    let sorted = sorted_finite(scores, nan_policy)?;
    fit_sorted(sorted.values, method, max_degree, sorted.n_omitted)
}

/// Every method takes `max_degree` in `1..=10`, so that it means the same for all.
fn check_max_degree(max_degree: usize) -> Result<(), KernelError> {
    if max_degree == 0 || max_degree > MAX_DEGREE_LIMIT {
        return Err(KernelError::InvalidMaxDegree {
            got: max_degree,
            limit: MAX_DEGREE_LIMIT,
        });
    }
    Ok(())
}

/// [`fit_method`] on scores that are already finite and sorted ascending by total
/// order (the sort is skipped); `n_omitted` is passed through to the result.
///
/// The streaming monitor refits with this on its sorted window, so its threshold
/// is `fit_method` of the window bit for bit.
///
/// # Errors
/// [`KernelError::InvalidMaxDegree`] for `max_degree` outside `1..=10` and
/// [`KernelError::TooFewScores`] with fewer than [`MIN_SCORES`] scores.
///
/// # Examples
/// ```
/// use ltrend::method::{fit_sorted, Method};
/// let mut curve: Vec<f64> = (0..100).map(|i| 1.0 + 0.001 * f64::from(i)).collect();
/// curve.extend([5.0, 8.0, 13.0]);
/// let fit = fit_sorted(curve, Method::Knee, 5, 0).unwrap();
/// assert_eq!((fit.threshold(), fit.n_anomalies()), (5.0, 3));
/// ```
pub fn fit_sorted<T: Score>(
    sorted: Vec<T>,
    method: Method,
    max_degree: usize,
    n_omitted: usize,
) -> Result<MethodFit<T>, KernelError> {
    check_max_degree(max_degree)?;
    if method == Method::Paper {
        return threshold::fit_sorted(sorted, max_degree, n_omitted).map(MethodFit::Paper);
    }
    let n = sorted.len();
    if n < MIN_SCORES {
        return Err(KernelError::TooFewScores {
            needed: MIN_SCORES,
            got: n,
        });
    }
    let breakpoint = split_breakpoint(method, &sorted);
    let (threshold, n_anomalies) = match breakpoint {
        Some(k) => (sorted[k].to_f64(), n - k),
        None => (f64::INFINITY, 0),
    };
    Ok(MethodFit::Split(SplitFit {
        method,
        threshold,
        breakpoint,
        n_anomalies,
        sorted,
        n_omitted,
    }))
}

/// The breakpoint of a split method, read on a rescaled copy of extreme curves.
fn split_breakpoint<T: Score>(method: Method, sorted: &[T]) -> Option<usize> {
    // Scores beyond 2^±400 are read on a copy scaled by a power of two (exact),
    // as the paper's path does, so that no square overflows or underflows; the
    // breakpoint is a rank, so the threshold is read off the scores themselves.
    match extreme_scale_exponent(sorted) {
        None => breakpoint_of(method, sorted),
        Some(exponent) => {
            let rescaled: Vec<f64> = sorted
                .iter()
                .map(|z| pow2_scale(z.to_f64(), -exponent))
                .collect();
            breakpoint_of(method, &rescaled)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for method in Method::ALL {
            assert_eq!(Method::from_name(method.name()), Some(method));
        }
        assert_eq!(Method::from_name("two-segment"), None);
    }

    #[test]
    fn paper_is_the_paper_fit_unchanged() {
        let mut scores: Vec<f64> = (0..200).map(|i| f64::from(i % 37) * 0.01).collect();
        scores.extend([3.0, 4.5, 7.0, 9.0]);
        let direct = threshold::fit(&scores, 5, NanPolicy::Raise).unwrap();
        match fit_method(&scores, Method::Paper, 5, NanPolicy::Raise).unwrap() {
            MethodFit::Paper(fit) => assert_eq!(fit, direct),
            MethodFit::Split(_) => panic!("paper must give the paper's fit"),
        }
    }

    #[test]
    fn split_methods_agree_with_their_kernels() {
        let scores = [0.3, 0.1, f64::NAN, 0.2, 9.0, 0.25, 8.0, 0.15];
        let mut finite: Vec<f64> = scores.iter().copied().filter(|v| v.is_finite()).collect();
        finite.sort_by(f64::total_cmp);
        for method in [
            Method::TwoSegment,
            Method::Knee,
            Method::LogKnee,
            Method::TailAware,
        ] {
            let fit = fit_method(&scores, method, 5, NanPolicy::Omit).unwrap();
            let MethodFit::Split(split) = fit else {
                panic!("{method} is a split method");
            };
            let expected = match method {
                Method::TwoSegment => two_segment(&finite).map(|f| f.breakpoint),
                Method::LogKnee => log_knee(&finite).map(|k| k.breakpoint),
                Method::TailAware => tail_aware(&finite).map(|f| f.breakpoint),
                _ => knee(&finite).map(|k| k.breakpoint),
            };
            assert_eq!(split.breakpoint, expected, "{method}");
            assert_eq!(split.n_omitted, 1);
            assert_eq!(split.sorted, finite);
            let k = split.breakpoint.unwrap();
            assert_eq!(
                (split.threshold, split.n_anomalies),
                (finite[k], finite.len() - k)
            );
        }
    }

    #[test]
    fn extreme_magnitudes_split_like_ordinary_ones() {
        let mut base: Vec<f64> = (0..40).map(|i| f64::from(i % 7) * 0.1).collect();
        base.extend([3.0, 3.5, 4.5]);
        for method in [
            Method::TwoSegment,
            Method::Knee,
            Method::LogKnee,
            Method::TailAware,
        ] {
            let plain = fit_method(&base, method, 5, NanPolicy::Raise).unwrap();
            for exponent in [-1060, -700, 700, 1020] {
                let scaled: Vec<f64> = base.iter().map(|&v| pow2_scale(v, exponent)).collect();
                let fit = fit_method(&scaled, method, 5, NanPolicy::Raise).unwrap();
                assert_eq!(
                    fit.n_anomalies(),
                    plain.n_anomalies(),
                    "{method} 2^{exponent}"
                );
                assert_eq!(
                    fit.threshold(),
                    pow2_scale(plain.threshold(), exponent),
                    "{method}"
                );
            }
        }
    }

    #[test]
    fn no_split_means_no_anomaly_and_errors_match_paper() {
        let fit = fit_method(&[2.0; 6], Method::Knee, 5, NanPolicy::Raise).unwrap();
        assert_eq!((fit.threshold(), fit.n_anomalies()), (f64::INFINITY, 0));
        for method in Method::ALL {
            assert_eq!(
                fit_method(&[1.0, 2.0], method, 5, NanPolicy::Raise).unwrap_err(),
                KernelError::TooFewScores { needed: 3, got: 2 }
            );
            assert!(matches!(
                fit_method(&[1.0, 2.0, 3.0], method, 0, NanPolicy::Raise),
                Err(KernelError::InvalidMaxDegree { .. })
            ));
            assert!(matches!(
                fit_method(&[1.0, f64::NAN, 3.0, 4.0], method, 5, NanPolicy::Raise),
                Err(KernelError::NonFinite { .. })
            ));
        }
    }
}
