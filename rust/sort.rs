//! The sort transform: a sorted working copy of the finite scores.
//!
//! This is the only full copy of the input the method makes. It keeps the input's
//! element type (f32 stays f32), and every later kernel reads it as f64, so an
//! f32 input gives exactly the result of the same values passed as f64.

use std::cmp::Ordering;

use crate::error::KernelError;

/// A real score type the kernels accept: f64, or f32 widened exactly to f64 on read.
pub trait Score: Copy + Send + Sync + 'static {
    /// The value as f64 (exact for f32).
    fn to_f64(self) -> f64;
    /// False for NaN and for ±infinity.
    fn is_finite_score(self) -> bool;
    /// IEEE total order; on finite values it is the numeric order with -0.0 < +0.0.
    fn total_order(&self, other: &Self) -> Ordering;
}

impl Score for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn is_finite_score(self) -> bool {
        self.is_finite()
    }
    #[inline]
    fn total_order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

impl Score for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn is_finite_score(self) -> bool {
        self.is_finite()
    }
    #[inline]
    fn total_order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

/// What to do with NaN and infinite scores (SciPy's `nan_policy` vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NanPolicy {
    /// Refuse the input with [`KernelError::NonFinite`].
    Raise,
    /// Leave non-finite scores out of the fit; they are labelled normal.
    Omit,
}

/// The finite scores in ascending order, and how many non-finite ones were left out.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedScores<T> {
    pub values: Vec<T>,
    pub n_omitted: usize,
}

/// Count the non-finite scores and find the first one, in one pass.
///
/// Returns `(count, index of the first)`; the index is `None` when all are finite.
pub fn count_non_finite<T: Score>(scores: &[T]) -> (usize, Option<usize>) {
    let mut count = 0;
    let mut first = None;
    for (i, &z) in scores.iter().enumerate() {
        if !z.is_finite_score() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    (count, first)
}

/// Copy the finite scores and sort the copy ascending.
///
/// ```text
/// s = sort(z[isfinite(z)])
/// ```
///
/// # Errors
/// [`KernelError::NonFinite`] under [`NanPolicy::Raise`] when any score is NaN or
/// infinite (the count and the index of the first are in the error).
///
/// # Examples
/// ```
/// use ltrend::sort::{sorted_finite, NanPolicy};
/// let s = sorted_finite(&[3.0, f64::NAN, 1.0], NanPolicy::Omit).unwrap();
/// assert_eq!(s.values, vec![1.0, 3.0]);
/// assert_eq!(s.n_omitted, 1);
/// assert!(sorted_finite(&[3.0, f64::NAN], NanPolicy::Raise).is_err());
/// ```
pub fn sorted_finite<T: Score>(
    scores: &[T],
    policy: NanPolicy,
) -> Result<SortedScores<T>, KernelError> {
    let (count, first) = count_non_finite(scores);
    let mut values = match (policy, first) {
        (_, None) => scores.to_vec(),
        (NanPolicy::Raise, Some(first_index)) => {
            return Err(KernelError::NonFinite { count, first_index })
        }
        (NanPolicy::Omit, Some(_)) => scores
            .iter()
            .copied()
            .filter(|z| z.is_finite_score())
            .collect(),
    };
    values.sort_unstable_by(T::total_order);
    Ok(SortedScores {
        values,
        n_omitted: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_ascending_and_keeps_signed_zeros() {
        let s = sorted_finite(&[0.0f64, -0.0, -1.0, 2.0], NanPolicy::Raise).unwrap();
        assert_eq!(s.values, vec![-1.0, -0.0, 0.0, 2.0]);
        assert!(s.values[1].is_sign_negative());
        assert_eq!(s.n_omitted, 0);
    }

    #[test]
    fn raise_reports_count_and_first_index() {
        let z = [1.0, 2.0, f64::INFINITY, f64::NAN, 0.0];
        assert_eq!(
            sorted_finite(&z, NanPolicy::Raise),
            Err(KernelError::NonFinite {
                count: 2,
                first_index: 2
            })
        );
    }

    #[test]
    fn omit_drops_every_non_finite_kind() {
        let z = [f32::NEG_INFINITY, 2.0, f32::NAN, 1.0, f32::INFINITY];
        let s = sorted_finite(&z, NanPolicy::Omit).unwrap();
        assert_eq!(s.values, vec![1.0f32, 2.0]);
        assert_eq!(s.n_omitted, 3);
    }
}
