//! The one error type of the kernels.

use std::fmt;

use crate::snapshot::SnapshotError;

/// Everything a kernel can refuse, with the numbers a caller needs to fix the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    /// Fewer usable (finite) scores than the method needs.
    TooFewScores { needed: usize, got: usize },
    /// NaN or infinite scores under the `Raise` policy.
    NonFinite { count: usize, first_index: usize },
    /// `max_degree` outside `1..=MAX_DEGREE_LIMIT`.
    InvalidMaxDegree { got: usize, limit: usize },
    /// A monitor option (`name`) outside `min..=max`.
    OptionOutOfRange {
        name: &'static str,
        got: usize,
        min: usize,
        max: usize,
    },
    /// A method name that is not one of [`crate::method::Method::ALL`].
    UnknownMethod { got: String },
    /// The monitor has fewer scores in its window than a refit needs.
    NotEnoughScores { needed: usize, got: usize },
    /// Bytes that are not a complete, intact monitor snapshot.
    Snapshot(SnapshotError),
    /// Partial states that cannot be merged or finished (see `partial.rs`).
    InvalidPartial { reason: String },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::TooFewScores { needed, got } => write!(
                f,
                "scores: need at least {needed} finite scores to fit a threshold, got {got}"
            ),
            KernelError::NonFinite { count, first_index } => write!(
                f,
                "scores: found {count} NaN or infinite value(s), the first at index \
                 {first_index}; remove them or pass nan_policy=\"omit\" to leave them out"
            ),
            KernelError::InvalidMaxDegree { got, limit } => {
                write!(f, "max_degree: must be between 1 and {limit}, got {got}")
            }
            KernelError::OptionOutOfRange {
                name,
                got,
                min,
                max,
            } => write!(f, "{name}: must be between {min} and {max}, got {got}"),
            KernelError::UnknownMethod { got } => {
                let names = crate::method::Method::ALL.map(crate::method::Method::name);
                write!(f, "method: must be one of {names:?}, got {got:?}")
            }
            KernelError::NotEnoughScores { needed, got } => write!(
                f,
                "refit: the window holds {got} scores, fewer than min_scores = {needed}"
            ),
            KernelError::Snapshot(err) => write!(f, "snapshot: {err}"),
            KernelError::InvalidPartial { reason } => write!(f, "partial state: {reason}"),
        }
    }
}

impl std::error::Error for KernelError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_parameter_and_the_numbers() {
        let e = KernelError::NonFinite {
            count: 2,
            first_index: 7,
        };
        let text = e.to_string();
        assert!(text.starts_with("scores:"));
        assert!(text.contains('2') && text.contains('7') && text.contains("omit"));
        let e = KernelError::TooFewScores { needed: 3, got: 1 };
        assert!(e.to_string().contains("at least 3"));
        let e = KernelError::InvalidMaxDegree { got: 0, limit: 10 };
        assert!(e.to_string().starts_with("max_degree:"));
        let e = KernelError::OptionOutOfRange {
            name: "window",
            got: 2,
            min: 3,
            max: 9,
        };
        assert_eq!(e.to_string(), "window: must be between 3 and 9, got 2");
        let e = KernelError::UnknownMethod { got: "x".into() };
        assert_eq!(
            e.to_string(),
            "method: must be one of [\"paper\", \"two_segment\", \"knee\", \"log_knee\", \
             \"tail_aware\"], got \"x\""
        );
        let e = KernelError::Snapshot(SnapshotError::BadMagic);
        assert!(e.to_string().starts_with("snapshot:"));
        let e = KernelError::InvalidPartial {
            reason: "made for n = 5, not 6".into(),
        };
        assert_eq!(e.to_string(), "partial state: made for n = 5, not 6");
    }
}
