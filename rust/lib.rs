//! `ltrend`: unsupervised anomaly thresholds from the L-trend of sorted scores.
//!
//! The kernels are plain Rust on slices and know nothing of Python; the PyO3 glue
//! lives in `python.rs`, compiled only with the `python` feature.

pub mod error;
pub mod knee;
pub mod log_knee;
pub mod method;
pub mod monitor;
pub mod partial;
pub mod partial_split;
pub mod polyfit;
pub mod snapshot;
pub mod sort;
pub mod tail_aware;
pub mod threshold;
pub mod two_segment;
pub mod variance;

#[cfg(feature = "python")]
mod python;

pub use error::KernelError;
