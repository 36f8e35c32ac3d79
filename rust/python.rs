//! The Python seam: thin wrappers that parse arguments, call a kernel with the GIL
//! released, and convert the result. No method logic lives here.

use std::sync::Mutex;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PySlice, PyType};

use crate::error::KernelError;
use crate::method::{self, Method, MethodFit, SplitFit};
use crate::monitor::{Monitor, MonitorConfig};
use crate::partial::{
    check_exponent, ProjectionState, RescanState, ScanState, ScoreRange, SegmentMoments,
};
use crate::partial_split::{
    absolute_deviation_of_chunk, bucket_cuts, bucket_summary, log_scale_of_ranks, KneePoint,
    LogScale, RankCounts, Reading, SplitFrame, Surroundings,
};
use crate::sort::{count_non_finite, finite_bounds, sorted_finite, NanPolicy, Score};
use crate::threshold::{self, CurveFit, LTrendFit};
use crate::two_segment::LineMoments;
use crate::variance::Moments;

impl From<KernelError> for PyErr {
    fn from(err: KernelError) -> PyErr {
        PyValueError::new_err(err.to_string())
    }
}

/// Scores as the kernels accept them: float64 or float32, never upcast.
#[derive(FromPyObject)]
enum ScoresArray<'py> {
    F64(PyReadonlyArray1<'py, f64>),
    F32(PyReadonlyArray1<'py, f32>),
}

fn borrow_error(err: numpy::BorrowError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// [`ScoresArray`] by a type check rather than by trying each variant (a failed
/// extraction builds an exception, which costs more than a small fit).
fn scores_array<'py>(array: &Bound<'py, PyAny>, name: &str) -> PyResult<ScoresArray<'py>> {
    if let Ok(z) = array.cast::<PyArray1<f64>>() {
        return Ok(ScoresArray::F64(z.try_readonly().map_err(borrow_error)?));
    }
    if let Ok(z) = array.cast::<PyArray1<f32>>() {
        return Ok(ScoresArray::F32(z.try_readonly().map_err(borrow_error)?));
    }
    Err(PyTypeError::new_err(format!(
        "{name}: expected a 1-D float64 or float32 array"
    )))
}

/// Run a kernel with the GIL released and turn its error into a Python exception.
/// Every call goes through here, so none can forget either step.
fn detached<T, F>(py: Python<'_>, kernel: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Result<T, KernelError> + Send,
{
    py.detach(kernel).map_err(PyErr::from)
}

fn parse_nan_policy(nan_policy: &str) -> PyResult<NanPolicy> {
    match nan_policy {
        "raise" => Ok(NanPolicy::Raise),
        "omit" => Ok(NanPolicy::Omit),
        other => Err(PyValueError::new_err(format!(
            "nan_policy: must be \"raise\" or \"omit\", got {other:?}"
        ))),
    }
}

fn parse_method(name: &str) -> PyResult<Method> {
    Ok(Method::parse(name)?)
}

/// The raw outcome of `fit`, unpacked by `ltrend.Result`.
#[pyclass(frozen, module = "ltrend._core")]
struct RawFit {
    #[pyo3(get)]
    threshold: f64,
    #[pyo3(get)]
    degree: Option<usize>,
    #[pyo3(get)]
    n_anomalies: usize,
    #[pyo3(get)]
    n_omitted: usize,
    #[pyo3(get)]
    mask: Py<PyArray1<bool>>,
    #[pyo3(get)]
    sorted_scores: Py<PyAny>,
    #[pyo3(get)]
    degrees: Py<PyArray1<u64>>,
    #[pyo3(get)]
    thresholds: Py<PyArray1<f64>>,
    #[pyo3(get)]
    compactness: Py<PyArray1<f64>>,
    #[pyo3(get)]
    counts: Py<PyArray1<u64>>,
    #[pyo3(get)]
    center: f64,
    /// The per-degree table as `(degree, threshold, compactness, n_anomalies)`
    /// tuples: the same numbers as the four arrays above, cheaper to unpack.
    #[pyo3(get)]
    rows: Vec<(usize, f64, f64, usize)>,
    /// Row d-1: the degree-d fit's power coefficients (ascending, zero-padded).
    #[pyo3(get)]
    coefficients: Py<PyArray2<f64>>,
    /// Breakpoint methods: `sorted_scores[breakpoint:]` are the anomalies; None
    /// for the paper's method and when there is no split.
    #[pyo3(get)]
    breakpoint: Option<usize>,
}

/// A breakpoint method's result: no degree, an empty per-degree table.
fn raw_split<T>(py: Python<'_>, fit: SplitFit<T>, mask: Vec<bool>) -> PyResult<RawFit>
where
    T: Score + numpy::Element,
{
    let empty_u64 = || Vec::<u64>::new().into_pyarray(py).unbind();
    let empty_f64 = || Vec::<f64>::new().into_pyarray(py).unbind();
    Ok(RawFit {
        threshold: fit.threshold,
        degree: None,
        n_anomalies: fit.n_anomalies,
        n_omitted: fit.n_omitted,
        mask: mask.into_pyarray(py).unbind(),
        sorted_scores: fit.sorted.into_pyarray(py).into_any().unbind(),
        degrees: empty_u64(),
        thresholds: empty_f64(),
        compactness: empty_f64(),
        counts: empty_u64(),
        rows: Vec::new(),
        center: 0.0,
        coefficients: PyArray2::zeros(py, [0, 1], false).unbind(),
        breakpoint: fit.breakpoint,
    })
}

fn raw_fit<T>(py: Python<'_>, fit: LTrendFit<T>, mask: Vec<bool>) -> PyResult<RawFit>
where
    T: Score + numpy::Element,
{
    let curve = CurveFit {
        threshold: fit.threshold,
        degree: fit.degree,
        n_anomalies: fit.n_anomalies,
        rows: fit.rows,
        fits: fit.fits,
    };
    let sorted = fit.sorted.into_pyarray(py).into_any().unbind();
    let mask = mask.into_pyarray(py).unbind();
    raw_curve_fit(py, curve, fit.n_omitted, mask, sorted)
}

fn raw_curve_fit(
    py: Python<'_>,
    fit: CurveFit,
    n_omitted: usize,
    mask: Py<PyArray1<bool>>,
    sorted_scores: Py<PyAny>,
) -> PyResult<RawFit> {
    let top = fit.rows.len();
    let mut coefficients = vec![vec![0.0; top + 1]; top];
    for (degree, row) in (1..=top).zip(coefficients.iter_mut()) {
        for (slot, c) in row.iter_mut().zip(fit.fits.power_coefficients(degree)) {
            *slot = c;
        }
    }
    let as_u64 = |v: usize| v as u64;
    Ok(RawFit {
        threshold: fit.threshold,
        degree: fit.degree,
        n_anomalies: fit.n_anomalies,
        n_omitted,
        mask,
        sorted_scores,
        degrees: fit
            .rows
            .iter()
            .map(|r| as_u64(r.degree))
            .collect::<Vec<_>>()
            .into_pyarray(py)
            .unbind(),
        thresholds: fit
            .rows
            .iter()
            .map(|r| r.threshold)
            .collect::<Vec<_>>()
            .into_pyarray(py)
            .unbind(),
        compactness: fit
            .rows
            .iter()
            .map(|r| r.compactness)
            .collect::<Vec<_>>()
            .into_pyarray(py)
            .unbind(),
        counts: fit
            .rows
            .iter()
            .map(|r| as_u64(r.n_anomalies))
            .collect::<Vec<_>>()
            .into_pyarray(py)
            .unbind(),
        rows: fit
            .rows
            .iter()
            .map(|r| (r.degree, r.threshold, r.compactness, r.n_anomalies))
            .collect(),
        center: fit.fits.center,
        coefficients: PyArray2::from_vec2(py, &coefficients)
            .map_err(|e| PyValueError::new_err(e.to_string()))?
            .unbind(),
        breakpoint: None,
    })
}

fn fit_typed<T>(
    py: Python<'_>,
    scores: PyReadonlyArray1<'_, T>,
    max_degree: usize,
    nan_policy: NanPolicy,
    method: Method,
) -> PyResult<RawFit>
where
    T: Score + numpy::Element,
{
    let z = scores.as_slice()?;
    let (fit, mask) = detached(py, || {
        let fit = method::fit_method(z, method, max_degree, nan_policy)?;
        let mask = threshold::anomaly_mask(z, fit.threshold());
        Ok((fit, mask))
    })?;
    match fit {
        MethodFit::Paper(fit) => raw_fit(py, fit, mask),
        MethodFit::Split(fit) => raw_split(py, fit, mask),
    }
}

/// Learn the L-trend threshold of a contiguous 1-D float64 or float32 array.
#[pyfunction(name = "fit")]
#[pyo3(signature = (scores, *, max_degree, nan_policy, method = "paper"))]
fn fit_py(
    py: Python<'_>,
    scores: ScoresArray<'_>,
    max_degree: usize,
    nan_policy: &str,
    method: &str,
) -> PyResult<RawFit> {
    let policy = parse_nan_policy(nan_policy)?;
    let chosen = parse_method(method)?;
    match scores {
        ScoresArray::F64(z) => fit_typed(py, z, max_degree, policy, chosen),
        ScoresArray::F32(z) => fit_typed(py, z, max_degree, policy, chosen),
    }
}

fn fit_sorted_typed<'py, T>(
    py: Python<'py>,
    scores: PyReadonlyArray1<'py, T>,
    sorted: PyReadonlyArray1<'py, T>,
    max_degree: usize,
    nan_policy: NanPolicy,
) -> PyResult<RawFit>
where
    T: Score + numpy::Element,
{
    let (z, s) = (scores.as_slice()?, sorted.as_slice()?);
    if z.len() < s.len() {
        return Err(PyValueError::new_err(format!(
            "sorted: expected at most {} values (the length of scores), got {}",
            z.len(),
            s.len()
        )));
    }
    let (lo, hi) = finite_bounds(s);
    // Scores left out before the sort were non-finite too.
    let n_omitted = z.len() - (hi - lo);
    if n_omitted > 0 && nan_policy == NanPolicy::Raise {
        let (count, first) = count_non_finite(z);
        return Err(KernelError::NonFinite {
            count,
            first_index: first.unwrap_or(0),
        }
        .into());
    }
    // NumPy allocates the mask: it backs large arrays with huge pages.
    let mask = PyArray1::<bool>::zeros(py, z.len(), false);
    let mut mask_view = mask.try_readwrite().map_err(borrow_error)?;
    let out = mask_view.as_slice_mut()?;
    let fit = detached(py, || {
        let fit = threshold::fit_curve(&s[lo..hi], max_degree)?;
        threshold::anomaly_mask_into(z, fit.threshold, out);
        Ok(fit)
    })?;
    drop(mask_view);
    let finite = sorted
        .as_any()
        .get_item(PySlice::new(py, lo as isize, hi as isize, 1))?
        .unbind();
    raw_curve_fit(py, fit, n_omitted, mask.unbind(), finite)
}

/// Learn the L-trend threshold from `scores` and their ascending sort `sorted`
/// (same dtype): all of them as `np.sort` gives them (non-finite values at the
/// ends), or only the finite ones.
///
/// The mask is taken from `scores`, everything else from the finite stretch of
/// `sorted`, which the result keeps as a view.
#[pyfunction(name = "fit_sorted")]
#[pyo3(signature = (scores, sorted, *, max_degree, nan_policy))]
fn fit_sorted_py(
    py: Python<'_>,
    scores: &Bound<'_, PyAny>,
    sorted: &Bound<'_, PyAny>,
    max_degree: usize,
    nan_policy: &str,
) -> PyResult<RawFit> {
    let policy = parse_nan_policy(nan_policy)?;
    match (
        scores_array(scores, "scores")?,
        scores_array(sorted, "sorted")?,
    ) {
        (ScoresArray::F64(z), ScoresArray::F64(s)) => {
            fit_sorted_typed(py, z, s, max_degree, policy)
        }
        (ScoresArray::F32(z), ScoresArray::F32(s)) => {
            fit_sorted_typed(py, z, s, max_degree, policy)
        }
        _ => Err(PyTypeError::new_err(
            "sorted: must have the dtype of scores (both float64 or both float32)",
        )),
    }
}

/// The streaming monitor, behind a lock: every call holds it for its whole duration,
/// so each batch is applied atomically and no update is lost between threads.
#[pyclass(name = "Monitor", frozen, module = "ltrend._core")]
struct PyMonitor {
    inner: Mutex<Monitor>,
}

/// Run `work` on the locked monitor with the GIL released, mapping its errors.
/// The lock is taken only while detached, so a thread waiting for it never holds
/// the GIL that the holder may need (no lock-order deadlock).
fn with_monitor<T, F>(py: Python<'_>, monitor: &Mutex<Monitor>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&mut Monitor) -> Result<T, KernelError> + Send,
{
    py.detach(|| {
        let mut guard = monitor.lock().map_err(|_| {
            PyRuntimeError::new_err(
                "monitor: an earlier call panicked while updating it (a bug in ltrend); \
                 restore it from a snapshot",
            )
        })?;
        work(&mut guard).map_err(PyErr::from)
    })
}

/// One consistent view of a monitor, taken under its lock.
#[pyclass(frozen, module = "ltrend._core")]
struct MonitorStatus {
    #[pyo3(get)]
    threshold: Option<f64>,
    #[pyo3(get)]
    degree: Option<usize>,
    #[pyo3(get)]
    last_refit: Option<u64>,
    #[pyo3(get)]
    refit_size: Option<usize>,
    #[pyo3(get)]
    refit_anomalies: Option<usize>,
    #[pyo3(get)]
    n_refits: u64,
    #[pyo3(get)]
    n_seen: u64,
    #[pyo3(get)]
    n_flagged: u64,
    #[pyo3(get)]
    n_omitted: u64,
    #[pyo3(get)]
    n_window: usize,
    #[pyo3(get)]
    since_refit: usize,
    /// The last refit's table: (degree, threshold, compactness, count) per degree;
    /// empty for the split methods.
    #[pyo3(get)]
    table: Vec<(usize, f64, f64, usize)>,
    #[pyo3(get)]
    window: usize,
    #[pyo3(get)]
    refit_every: usize,
    #[pyo3(get)]
    min_scores: usize,
    #[pyo3(get)]
    max_degree: usize,
    #[pyo3(get)]
    nan_policy: &'static str,
    #[pyo3(get)]
    method: &'static str,
}

fn monitor_status(monitor: &Monitor) -> MonitorStatus {
    let config = monitor.config();
    let last = monitor.last_refit();
    MonitorStatus {
        threshold: monitor.threshold(),
        degree: last.and_then(|r| r.degree),
        last_refit: last.map(|r| r.at),
        refit_size: last.map(|r| r.n_scores),
        refit_anomalies: last.map(|r| r.n_anomalies),
        n_refits: monitor.n_refits(),
        n_seen: monitor.n_seen(),
        n_flagged: monitor.n_flagged(),
        n_omitted: monitor.n_omitted(),
        n_window: monitor.len(),
        since_refit: monitor.since_refit(),
        table: last
            .map(|r| {
                r.rows
                    .iter()
                    .map(|row| (row.degree, row.threshold, row.compactness, row.n_anomalies))
                    .collect()
            })
            .unwrap_or_default(),
        window: config.window,
        refit_every: config.refit_every,
        min_scores: config.min_scores,
        max_degree: config.max_degree,
        nan_policy: match config.nan_policy {
            NanPolicy::Raise => "raise",
            NanPolicy::Omit => "omit",
        },
        method: config.method.name(),
    }
}

/// What `Monitor.history()` returns: the status, then `n_seen`, threshold and
/// degree at each refit of the history.
type RawHistory<'py> = (
    MonitorStatus,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    Vec<Option<usize>>,
);

#[pymethods]
impl PyMonitor {
    #[new]
    #[pyo3(signature = (*, window, refit_every, min_scores, max_degree, nan_policy, method))]
    fn new(
        window: usize,
        refit_every: usize,
        min_scores: usize,
        max_degree: usize,
        nan_policy: &str,
        method: &str,
    ) -> PyResult<Self> {
        let config = MonitorConfig {
            window,
            refit_every,
            min_scores,
            max_degree,
            nan_policy: parse_nan_policy(nan_policy)?,
            method: parse_method(method)?,
        };
        Ok(PyMonitor {
            inner: Mutex::new(Monitor::new(config)?),
        })
    }

    /// Judge one score, then add it to the window.
    fn update(&self, py: Python<'_>, score: f64) -> PyResult<bool> {
        with_monitor(py, &self.inner, |m| m.update(score))
    }

    /// Judge a batch in order; returns the anomaly mask.
    fn update_many<'py>(
        &self,
        py: Python<'py>,
        scores: ScoresArray<'py>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let mask = match &scores {
            ScoresArray::F64(z) => {
                let z = z.as_slice()?;
                with_monitor(py, &self.inner, |m| m.update_many(z))?
            }
            ScoresArray::F32(z) => {
                let z = z.as_slice()?;
                with_monitor(py, &self.inner, |m| m.update_many(z))?
            }
        };
        Ok(mask.into_pyarray(py))
    }

    /// Re-learn the threshold on the window now.
    fn refit(&self, py: Python<'_>) -> PyResult<()> {
        with_monitor(py, &self.inner, Monitor::refit)
    }

    fn status(&self, py: Python<'_>) -> PyResult<MonitorStatus> {
        with_monitor(py, &self.inner, |m| Ok(monitor_status(m)))
    }

    /// The status and the refit history, read under one lock: `n_seen` at each
    /// refit (int64), its threshold (float64) and its degree (None for no split and
    /// for the split methods).
    fn history<'py>(&self, py: Python<'py>) -> PyResult<RawHistory<'py>> {
        let (status, at, thresholds, degrees) = with_monitor(py, &self.inner, |m| {
            let history = m.history();
            // n_seen stays far below 2^63 (snapshots cap it at 2^62).
            let at = history
                .iter()
                .map(|e| i64::try_from(e.at).unwrap_or(i64::MAX))
                .collect::<Vec<_>>();
            let thresholds = history.iter().map(|e| e.threshold).collect::<Vec<_>>();
            let degrees = history.iter().map(|e| e.degree).collect::<Vec<_>>();
            Ok((monitor_status(m), at, thresholds, degrees))
        })?;
        Ok((
            status,
            at.into_pyarray(py),
            thresholds.into_pyarray(py),
            degrees,
        ))
    }

    /// The window in arrival order, oldest first (a new float64 array).
    fn window_scores<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let scores = with_monitor(py, &self.inner, |m| Ok(m.window_scores()))?;
        Ok(scores.into_pyarray(py))
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = with_monitor(py, &self.inner, |m| Ok(m.to_bytes()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let monitor = detached(py, || Monitor::from_bytes(data))?;
        Ok(PyMonitor {
            inner: Mutex::new(monitor),
        })
    }
}

// ---- Partial states for distributed fits (ltrend.dask) -------------------------
//
// Each state pickles as its class and fields (`__reduce__`), so Dask can move it
// between processes; merging and finishing run in Rust.

fn moments_from_fields(
    state: &str,
    counts: Vec<usize>,
    means: Vec<f64>,
    m2s: Vec<f64>,
) -> PyResult<Vec<Moments>> {
    if counts.len() != means.len() || counts.len() != m2s.len() {
        return Err(PyValueError::new_err(format!(
            "{state}: counts, means and m2s must have one length, got {}, {} and {}",
            counts.len(),
            means.len(),
            m2s.len()
        )));
    }
    Ok(counts
        .into_iter()
        .zip(means.into_iter().zip(m2s))
        .map(|(count, (mean, m2))| Moments { count, mean, m2 })
        .collect())
}

fn ranges_from_fields(state: &str, mins: Vec<f64>, maxs: Vec<f64>) -> PyResult<Vec<ScoreRange>> {
    if mins.len() != maxs.len() {
        return Err(PyValueError::new_err(format!(
            "{state}: mins and maxs must have one length, got {} and {}",
            mins.len(),
            maxs.len()
        )));
    }
    Ok(mins
        .into_iter()
        .zip(maxs)
        .map(|(min, max)| ScoreRange { min, max })
        .collect())
}

fn range_mins(ranges: &[ScoreRange]) -> Vec<f64> {
    ranges.iter().map(|r| r.min).collect()
}

fn range_maxs(ranges: &[ScoreRange]) -> Vec<f64> {
    ranges.iter().map(|r| r.max).collect()
}

fn moment_counts(moments: &[Moments]) -> Vec<u64> {
    moments.iter().map(|m| m.count as u64).collect()
}

fn moment_means(moments: &[Moments]) -> Vec<f64> {
    moments.iter().map(|m| m.mean).collect()
}

fn moment_m2s(moments: &[Moments]) -> Vec<f64> {
    moments.iter().map(|m| m.m2).collect()
}

/// Counts of a chunk of scores, the global index of its first non-finite score,
/// and the range of its finite scores.
#[pyclass(name = "ScanState", frozen, module = "ltrend._core")]
struct PyScanState {
    inner: ScanState,
}

#[pymethods]
impl PyScanState {
    #[new]
    fn new(
        n_scores: usize,
        n_finite: usize,
        first_non_finite: Option<usize>,
        min: f64,
        max: f64,
    ) -> PyResult<Self> {
        let counts_agree =
            n_finite <= n_scores && first_non_finite.is_some() != (n_finite == n_scores);
        let range_agrees = if n_finite == 0 {
            min == f64::INFINITY && max == f64::NEG_INFINITY
        } else {
            min.is_finite() && max.is_finite() && min <= max
        };
        if !(counts_agree && range_agrees) {
            return Err(PyValueError::new_err(format!(
                "ScanState: inconsistent fields ({n_scores}, {n_finite}, {first_non_finite:?}, \
                 {min}, {max})"
            )));
        }
        Ok(PyScanState {
            inner: ScanState {
                n_scores,
                n_finite,
                first_non_finite,
                range: ScoreRange { min, max },
            },
        })
    }

    #[getter]
    fn n_scores(&self) -> usize {
        self.inner.n_scores
    }

    #[getter]
    fn n_finite(&self) -> usize {
        self.inner.n_finite
    }

    #[getter]
    fn first_non_finite(&self) -> Option<usize> {
        self.inner.first_non_finite
    }

    /// The smallest finite score (+inf when there is none).
    #[getter]
    fn min(&self) -> f64 {
        self.inner.range.min
    }

    /// The largest finite score (-inf when there is none).
    #[getter]
    fn max(&self) -> f64 {
        self.inner.range.max
    }

    /// The in-memory fit's rescaling of these scores: `e` to fit `z * 2^-e`, or None.
    #[getter]
    fn scale_exponent(&self) -> Option<i32> {
        self.inner.scale_exponent()
    }

    fn merge(&self, other: PyRef<'_, Self>) -> Self {
        PyScanState {
            inner: self.inner.merge(other.inner),
        }
    }

    /// The number of finite scores, or the in-memory fit's error.
    fn finish(&self, nan_policy: &str) -> PyResult<usize> {
        Ok(self.inner.finish(parse_nan_policy(nan_policy)?)?)
    }

    #[allow(
        clippy::type_complexity,
        reason = "__reduce__ returns the constructor's arguments as one tuple"
    )]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> (Bound<'py, PyType>, (usize, usize, Option<usize>, f64, f64)) {
        let s = slf.get().inner;
        (
            slf.get_type(),
            (
                s.n_scores,
                s.n_finite,
                s.first_non_finite,
                s.range.min,
                s.range.max,
            ),
        )
    }
}

/// Projection sums of part of the sorted curve.
#[pyclass(name = "ProjectionState", frozen, module = "ltrend._core")]
struct PyProjectionState {
    inner: ProjectionState,
}

#[pymethods]
impl PyProjectionState {
    #[new]
    fn new(n: usize, origin: f64, count: usize, sums: Vec<f64>) -> Self {
        PyProjectionState {
            inner: ProjectionState {
                n,
                origin,
                count,
                sums,
            },
        }
    }

    #[getter]
    fn n(&self) -> usize {
        self.inner.n
    }

    #[getter]
    fn origin(&self) -> f64 {
        self.inner.origin
    }

    #[getter]
    fn count(&self) -> usize {
        self.inner.count
    }

    #[getter]
    fn sums<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.sums.clone().into_pyarray(py)
    }

    fn merge(&self, other: PyRef<'_, Self>) -> PyResult<Self> {
        Ok(PyProjectionState {
            inner: self.inner.merge(&other.inner)?,
        })
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> (Bound<'py, PyType>, (usize, f64, usize, Vec<f64>)) {
        let s = &slf.get().inner;
        (slf.get_type(), (s.n, s.origin, s.count, s.sums.clone()))
    }
}

/// (count, mean, M2) and range of the scores in each segment.
#[pyclass(name = "SegmentMoments", frozen, module = "ltrend._core")]
struct PySegmentMoments {
    inner: SegmentMoments,
}

/// The fields of a `SegmentMoments`, in the constructor's order.
type SegmentFields = (
    f64,
    i32,
    Vec<f64>,
    Vec<usize>,
    Vec<f64>,
    Vec<f64>,
    Vec<f64>,
    Vec<f64>,
);

#[pymethods]
impl PySegmentMoments {
    #[new]
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per field, as __reduce__ gives them"
    )]
    fn new(
        origin: f64,
        exponent: i32,
        edges: Vec<f64>,
        counts: Vec<usize>,
        means: Vec<f64>,
        m2s: Vec<f64>,
        mins: Vec<f64>,
        maxs: Vec<f64>,
    ) -> PyResult<Self> {
        let segments = moments_from_fields("SegmentMoments", counts, means, m2s)?;
        let ranges = ranges_from_fields("SegmentMoments", mins, maxs)?;
        if !edges.is_empty() && edges.len() + 1 != segments.len() {
            return Err(PyValueError::new_err(format!(
                "SegmentMoments: {} edges need {} segments, got {}",
                edges.len(),
                edges.len() + 1,
                segments.len()
            )));
        }
        if ranges.len() != segments.len() {
            return Err(PyValueError::new_err(format!(
                "SegmentMoments: {} segments need {} ranges, got {}",
                segments.len(),
                segments.len(),
                ranges.len()
            )));
        }
        if !threshold::SCALE_EXPONENTS.contains(&exponent) {
            return Err(PyValueError::new_err(format!(
                "SegmentMoments: exponent must be in {:?}, got {exponent}",
                threshold::SCALE_EXPONENTS
            )));
        }
        Ok(PySegmentMoments {
            inner: SegmentMoments {
                origin,
                exponent,
                edges,
                segments,
                ranges,
            },
        })
    }

    #[getter]
    fn origin(&self) -> f64 {
        self.inner.origin
    }

    #[getter]
    fn exponent(&self) -> i32 {
        self.inner.exponent
    }

    #[getter]
    fn edges<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.edges.clone().into_pyarray(py)
    }

    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        moment_counts(&self.inner.segments).into_pyarray(py)
    }

    #[getter]
    fn means<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        moment_means(&self.inner.segments).into_pyarray(py)
    }

    #[getter]
    fn m2s<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        moment_m2s(&self.inner.segments).into_pyarray(py)
    }

    #[getter]
    fn mins<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        range_mins(&self.inner.ranges).into_pyarray(py)
    }

    #[getter]
    fn maxs<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        range_maxs(&self.inner.ranges).into_pyarray(py)
    }

    fn merge(&self, other: PyRef<'_, Self>) -> PyResult<Self> {
        Ok(PySegmentMoments {
            inner: self.inner.merge(&other.inner)?,
        })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyType>, SegmentFields) {
        let s = &slf.get().inner;
        let segments = &s.segments;
        (
            slf.get_type(),
            (
                s.origin,
                s.exponent,
                s.edges.clone(),
                segments.iter().map(|m| m.count).collect(),
                segments.iter().map(|m| m.mean).collect(),
                segments.iter().map(|m| m.m2).collect(),
                range_mins(&s.ranges),
                range_maxs(&s.ranges),
            ),
        )
    }
}

/// Sums of squares of the scores in a few ranges, each in its own units.
#[pyclass(name = "RescanState", frozen, module = "ltrend._core")]
struct PyRescanState {
    inner: RescanState,
}

/// The fields of a `RescanState`, in the constructor's order.
type RescanFields = (Vec<f64>, Vec<f64>, Vec<usize>, Vec<f64>, Vec<f64>);

#[pymethods]
impl PyRescanState {
    #[new]
    fn new(
        mins: Vec<f64>,
        maxs: Vec<f64>,
        counts: Vec<usize>,
        means: Vec<f64>,
        m2s: Vec<f64>,
    ) -> PyResult<Self> {
        let ranges = ranges_from_fields("RescanState", mins, maxs)?;
        let moments = moments_from_fields("RescanState", counts, means, m2s)?;
        if ranges.len() != moments.len() {
            return Err(PyValueError::new_err(format!(
                "RescanState: {} ranges need {} moments, got {}",
                ranges.len(),
                ranges.len(),
                moments.len()
            )));
        }
        Ok(PyRescanState {
            inner: RescanState { ranges, moments },
        })
    }

    #[getter]
    fn mins<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        range_mins(&self.inner.ranges).into_pyarray(py)
    }

    #[getter]
    fn maxs<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        range_maxs(&self.inner.ranges).into_pyarray(py)
    }

    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        moment_counts(&self.inner.moments).into_pyarray(py)
    }

    #[getter]
    fn means<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        moment_means(&self.inner.moments).into_pyarray(py)
    }

    #[getter]
    fn m2s<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        moment_m2s(&self.inner.moments).into_pyarray(py)
    }

    fn merge(&self, other: PyRef<'_, Self>) -> PyResult<Self> {
        Ok(PyRescanState {
            inner: self.inner.merge(&other.inner)?,
        })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyType>, RescanFields) {
        let s = &slf.get().inner;
        let moments = &s.moments;
        (
            slf.get_type(),
            (
                range_mins(&s.ranges),
                range_maxs(&s.ranges),
                moments.iter().map(|m| m.count).collect(),
                moments.iter().map(|m| m.mean).collect(),
                moments.iter().map(|m| m.m2).collect(),
            ),
        )
    }
}

/// The scan state of a chunk whose first score has global index `start`.
#[pyfunction(name = "scan")]
#[pyo3(signature = (values, *, start))]
fn scan_py(py: Python<'_>, values: ScoresArray<'_>, start: usize) -> PyResult<PyScanState> {
    let inner = match &values {
        ScoresArray::F64(z) => {
            let z = z.as_slice()?;
            detached(py, || Ok(ScanState::of_chunk(z, start)))?
        }
        ScoresArray::F32(z) => {
            let z = z.as_slice()?;
            detached(py, || Ok(ScanState::of_chunk(z, start)))?
        }
    };
    Ok(PyScanState { inner })
}

/// Where a bucket's ranks lie on the curve, and how its scores are projected.
#[derive(Clone, Copy)]
struct BucketPlace {
    offset: usize,
    n: usize,
    origin: f64,
    max_degree: usize,
    exponent: i32,
}

fn project_sorted_typed<T: Score>(
    py: Python<'_>,
    values: &[T],
    place: BucketPlace,
    probes: &[usize],
) -> PyResult<(ProjectionState, Vec<f64>)> {
    detached(py, || {
        let sorted = sorted_finite(values, NanPolicy::Omit)?.values;
        let BucketPlace {
            offset,
            n,
            origin,
            max_degree,
            exponent,
        } = place;
        let state =
            ProjectionState::of_sorted_scaled(&sorted, offset, n, origin, max_degree, exponent)?;
        let picked = probes
            .iter()
            .map(|&p| {
                sorted
                    .get(p)
                    .map(|z| z.to_f64())
                    .ok_or_else(|| KernelError::InvalidPartial {
                        reason: format!("probe {p} past the {} sorted scores", sorted.len()),
                    })
            })
            .collect::<Result<Vec<f64>, KernelError>>()?;
        Ok((state, picked))
    })
}

/// Sort one bucket's finite scores and project them (times `2^-exponent`), as
/// global ranks `offset..offset + len` of `n`; also return the sorted values
/// (as given) at `probes`.
#[pyfunction(name = "project_sorted")]
#[pyo3(signature = (values, *, offset, n, origin, max_degree, probes, exponent = 0))]
#[allow(
    clippy::too_many_arguments,
    reason = "the keyword arguments of one Python call"
)]
fn project_sorted_py<'py>(
    py: Python<'py>,
    values: ScoresArray<'py>,
    offset: usize,
    n: usize,
    origin: f64,
    max_degree: usize,
    probes: Vec<usize>,
    exponent: i32,
) -> PyResult<(PyProjectionState, Bound<'py, PyArray1<f64>>)> {
    let place = BucketPlace {
        offset,
        n,
        origin,
        max_degree,
        exponent,
    };
    let (inner, picked) = match &values {
        ScoresArray::F64(z) => project_sorted_typed(py, z.as_slice()?, place, &probes)?,
        ScoresArray::F32(z) => project_sorted_typed(py, z.as_slice()?, place, &probes)?,
    };
    Ok((PyProjectionState { inner }, picked.into_pyarray(py)))
}

/// Approximate projections from the moments of consecutive histogram bins.
#[pyfunction(name = "project_bins")]
#[pyo3(signature = (bins, *, max_degree))]
fn project_bins_py(
    py: Python<'_>,
    bins: PyRef<'_, PySegmentMoments>,
    max_degree: usize,
) -> PyResult<PyProjectionState> {
    let bins = &bins.inner;
    let inner = detached(py, || ProjectionState::of_bins(bins, max_degree))?;
    Ok(PyProjectionState { inner })
}

/// Candidate thresholds (degrees 1..), power coefficients (row d-1: degree d,
/// ascending, zero-padded) and the fits' center, all in the scores' units,
/// from projections of the whole curve (taken on the scores times
/// `2^-exponent`), about `center` (as given).
#[pyfunction(name = "fit_projection")]
#[pyo3(signature = (state, *, center, exponent = 0))]
#[allow(
    clippy::type_complexity,
    reason = "two arrays and a float, unpacked by ltrend.dask"
)]
fn fit_projection_py<'py>(
    py: Python<'py>,
    state: PyRef<'_, PyProjectionState>,
    center: f64,
    exponent: i32,
) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>, f64)> {
    let state = &state.inner;
    let (thresholds, coefficients, center) = detached(py, || {
        let (fits, thresholds) = state.fit_scaled(center, exponent)?;
        let top = fits.max_degree();
        let mut rows = vec![vec![0.0; top + 1]; top];
        for (degree, row) in (1..=top).zip(rows.iter_mut()) {
            for (slot, c) in row.iter_mut().zip(fits.power_coefficients(degree)) {
                *slot = c;
            }
        }
        Ok((thresholds, rows, fits.center))
    })?;
    let coefficients =
        PyArray2::from_vec2(py, &coefficients).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((thresholds.into_pyarray(py), coefficients, center))
}

/// Moments of consecutive runs `sorted[bounds[j]:bounds[j + 1]]` of ascending
/// scores (times `2^-exponent`).
#[pyfunction(name = "run_moments")]
#[pyo3(signature = (sorted, bounds, *, origin, exponent = 0))]
fn run_moments_py(
    py: Python<'_>,
    sorted: ScoresArray<'_>,
    bounds: PyReadonlyArray1<'_, u64>,
    origin: f64,
    exponent: i32,
) -> PyResult<PySegmentMoments> {
    let bounds: Vec<usize> = bounds.as_slice()?.iter().map(|&b| b as usize).collect();
    let inner = match &sorted {
        ScoresArray::F64(z) => {
            let z = z.as_slice()?;
            detached(py, || {
                SegmentMoments::of_sorted_runs(z, &bounds, origin, exponent)
            })?
        }
        ScoresArray::F32(z) => {
            let z = z.as_slice()?;
            detached(py, || {
                SegmentMoments::of_sorted_runs(z, &bounds, origin, exponent)
            })?
        }
    };
    Ok(PySegmentMoments { inner })
}

/// Moments of the finite scores (times `2^-exponent`) below, between and above
/// the thresholds.
#[pyfunction(name = "split_moments")]
#[pyo3(signature = (values, *, thresholds, origin, exponent = 0))]
fn split_moments_py(
    py: Python<'_>,
    values: ScoresArray<'_>,
    thresholds: Vec<f64>,
    origin: f64,
    exponent: i32,
) -> PyResult<PySegmentMoments> {
    let inner = match &values {
        ScoresArray::F64(z) => {
            let z = z.as_slice()?;
            detached(py, || {
                SegmentMoments::of_split(z, &thresholds, origin, exponent)
            })?
        }
        ScoresArray::F32(z) => {
            let z = z.as_slice()?;
            detached(py, || {
                SegmentMoments::of_split(z, &thresholds, origin, exponent)
            })?
        }
    };
    Ok(PySegmentMoments { inner })
}

/// The sides of the splits at `thresholds` whose merged moments are not
/// trusted, as `(min, max)` ranges of scores to measure again with `rescan`.
#[pyfunction(name = "untrusted_ranges")]
#[pyo3(signature = (state, *, thresholds))]
fn untrusted_ranges_py(
    state: PyRef<'_, PySegmentMoments>,
    thresholds: Vec<f64>,
) -> PyResult<Vec<(f64, f64)>> {
    let ranges = state.inner.untrusted_ranges(&thresholds)?;
    Ok(ranges.iter().map(|r| (r.min, r.max)).collect())
}

/// The sums of squares of a chunk's finite scores in each `(min, max)` range,
/// in units of the range's own spread.
#[pyfunction(name = "rescan")]
#[pyo3(signature = (values, *, ranges))]
fn rescan_py(
    py: Python<'_>,
    values: ScoresArray<'_>,
    ranges: Vec<(f64, f64)>,
) -> PyResult<PyRescanState> {
    let ranges: Vec<ScoreRange> = ranges
        .into_iter()
        .map(|(min, max)| ScoreRange { min, max })
        .collect();
    let inner = match &values {
        ScoresArray::F64(z) => {
            let z = z.as_slice()?;
            detached(py, || RescanState::of_chunk(z, &ranges))?
        }
        ScoresArray::F32(z) => {
            let z = z.as_slice()?;
            detached(py, || RescanState::of_chunk(z, &ranges))?
        }
    };
    Ok(PyRescanState { inner })
}

/// Per degree: compactness and anomaly count of the split at each threshold, and
/// the chosen degree (None when no degree is a candidate). `rescan` holds the
/// sides that `untrusted_ranges` listed (None when it listed none).
#[pyfunction(name = "split_table")]
#[pyo3(signature = (state, *, thresholds, rescan = None))]
#[allow(
    clippy::type_complexity,
    reason = "two arrays and the degree, unpacked by ltrend.dask"
)]
fn split_table_py<'py>(
    py: Python<'py>,
    state: PyRef<'_, PySegmentMoments>,
    thresholds: Vec<f64>,
    rescan: Option<PyRef<'_, PyRescanState>>,
) -> PyResult<(
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<u64>>,
    Option<usize>,
)> {
    let rows = match &rescan {
        Some(rescan) => state.inner.rows(&thresholds, &rescan.inner)?,
        None => state.inner.rows(&thresholds, &RescanState::EMPTY)?,
    };
    let chosen = threshold::choose_degree(&rows).map(|r| r.degree);
    let compactness: Vec<f64> = rows.iter().map(|r| r.compactness).collect();
    let counts: Vec<u64> = rows.iter().map(|r| r.n_anomalies as u64).collect();
    Ok((
        compactness.into_pyarray(py),
        counts.into_pyarray(py),
        chosen,
    ))
}

/// Register the partial-state API on the module.
fn add_partial(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScanState>()?;
    m.add_class::<PyProjectionState>()?;
    m.add_class::<PySegmentMoments>()?;
    m.add_class::<PyRescanState>()?;
    m.add_function(wrap_pyfunction!(scan_py, m)?)?;
    m.add_function(wrap_pyfunction!(project_sorted_py, m)?)?;
    m.add_function(wrap_pyfunction!(project_bins_py, m)?)?;
    m.add_function(wrap_pyfunction!(fit_projection_py, m)?)?;
    m.add_function(wrap_pyfunction!(run_moments_py, m)?)?;
    m.add_function(wrap_pyfunction!(split_moments_py, m)?)?;
    m.add_function(wrap_pyfunction!(untrusted_ranges_py, m)?)?;
    m.add_function(wrap_pyfunction!(rescan_py, m)?)?;
    m.add_function(wrap_pyfunction!(split_table_py, m)?)?;
    Ok(())
}

// ---- Partial states of the breakpoint methods (partial_split.rs) ------------------

/// Moments of points `(rank, score)` for a least-squares line.
#[pyclass(name = "LineMoments", frozen, module = "ltrend._core")]
struct PyLineMoments {
    inner: LineMoments,
}

/// The fields of a `LineMoments`, in the constructor's order.
type LineFields = (usize, f64, f64, f64, f64, f64);

#[pymethods]
impl PyLineMoments {
    #[new]
    #[pyo3(signature = (count = 0, mean_x = 0.0, mean_y = 0.0, cxx = 0.0, cxy = 0.0, cyy = 0.0))]
    fn new(count: usize, mean_x: f64, mean_y: f64, cxx: f64, cxy: f64, cyy: f64) -> PyResult<Self> {
        let finite = [mean_x, mean_y, cxx, cxy, cyy]
            .iter()
            .all(|v| v.is_finite());
        let empty_is_zero = count > 0 || [mean_x, mean_y, cxx, cxy, cyy] == [0.0; 5];
        if !(finite && cxx >= 0.0 && cyy >= 0.0 && empty_is_zero) {
            return Err(PyValueError::new_err(format!(
                "LineMoments: inconsistent fields ({count}, {mean_x}, {mean_y}, {cxx}, {cxy}, \
                 {cyy})"
            )));
        }
        Ok(PyLineMoments {
            inner: LineMoments {
                count,
                mean_x,
                mean_y,
                cxx,
                cxy,
                cyy,
            },
        })
    }

    #[getter]
    fn count(&self) -> usize {
        self.inner.count
    }

    #[getter]
    fn mean_x(&self) -> f64 {
        self.inner.mean_x
    }

    #[getter]
    fn mean_y(&self) -> f64 {
        self.inner.mean_y
    }

    #[getter]
    fn cxx(&self) -> f64 {
        self.inner.cxx
    }

    #[getter]
    fn cxy(&self) -> f64 {
        self.inner.cxy
    }

    #[getter]
    fn cyy(&self) -> f64 {
        self.inner.cyy
    }

    /// Sum of squared residuals of the least-squares line through the points.
    fn sse(&self) -> f64 {
        self.inner.sse()
    }

    fn merge(&self, other: PyRef<'_, Self>) -> PyResult<Self> {
        if self.inner.count.checked_add(other.inner.count).is_none() {
            return Err(PyValueError::new_err(
                "LineMoments: the merged count overflows",
            ));
        }
        Ok(PyLineMoments {
            inner: self.inner.merge(&other.inner),
        })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyType>, LineFields) {
        let m = slf.get().inner;
        (
            slf.get_type(),
            (m.count, m.mean_x, m.mean_y, m.cxx, m.cxy, m.cyy),
        )
    }
}

/// What every bucket of a breakpoint method needs to know about the whole curve.
#[pyclass(name = "SplitFrame", frozen, module = "ltrend._core")]
struct PySplitFrame {
    inner: SplitFrame,
}

#[pymethods]
impl PySplitFrame {
    #[new]
    fn new(n: usize, min: f64, max: f64, exponent: i32, origin: f64) -> PyResult<Self> {
        Ok(PySplitFrame {
            inner: SplitFrame::new(n, min, max, exponent, origin)?,
        })
    }

    #[getter]
    fn n(&self) -> usize {
        self.inner.n
    }

    #[getter]
    fn min(&self) -> f64 {
        self.inner.min
    }

    #[getter]
    fn max(&self) -> f64 {
        self.inner.max
    }

    #[getter]
    fn exponent(&self) -> i32 {
        self.inner.exponent
    }

    #[getter]
    fn origin(&self) -> f64 {
        self.inner.origin
    }

    /// The score `z` as the in-memory split reads it: `z * 2^-exponent`.
    fn scaled(&self, z: f64) -> f64 {
        self.inner.scaled(z)
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> (Bound<'py, PyType>, (usize, f64, f64, i32, f64)) {
        let f = slf.get().inner;
        (slf.get_type(), (f.n, f.min, f.max, f.exponent, f.origin))
    }
}

/// A knee candidate as Python sees it: (global rank, depth, key).
type KneeTuple = (usize, f64, f64);

fn knee_tuple(point: KneePoint) -> KneeTuple {
    (point.index, point.depth, point.key)
}

/// The first pass of a breakpoint method over one bucket, as Python sees it.
type SummaryTuple = (
    usize,
    Option<f64>,
    Vec<(usize, f64)>,
    Option<KneeTuple>,
    PyLineMoments,
);

fn split_summary_typed<T: Score>(
    py: Python<'_>,
    values: &[T],
    offset: usize,
    frame: &SplitFrame,
    probes: &[usize],
) -> PyResult<SummaryTuple> {
    let summary = detached(py, || {
        let sorted = sorted_finite(values, NanPolicy::Omit)?.values;
        bucket_summary(&sorted, offset, frame, probes)
    })?;
    Ok((
        summary.count,
        summary.last,
        summary.picked,
        summary.knee.map(knee_tuple),
        PyLineMoments {
            inner: summary.moments,
        },
    ))
}

/// Sort one bucket's finite scores, at global ranks `offset..`, and return its
/// count, largest score, scores at the `probes` ranks it holds, deepest point
/// below the raw chord `(rank, depth, key)` and two-line moments.
#[pyfunction(name = "split_summary")]
#[pyo3(signature = (values, *, offset, frame, probes))]
fn split_summary_py(
    py: Python<'_>,
    values: ScoresArray<'_>,
    offset: usize,
    frame: PyRef<'_, PySplitFrame>,
    probes: Vec<usize>,
) -> PyResult<SummaryTuple> {
    let frame = frame.inner;
    match &values {
        ScoresArray::F64(z) => split_summary_typed(py, z.as_slice()?, offset, &frame, &probes),
        ScoresArray::F32(z) => split_summary_typed(py, z.as_slice()?, offset, &frame, &probes),
    }
}

/// The second pass of a breakpoint method over one bucket, as Python sees it.
type CutsTuple = (Option<KneeTuple>, Option<(usize, f64, f64)>);

fn split_cuts_typed<T: Score>(
    py: Python<'_>,
    values: &[T],
    offset: usize,
    frame: &SplitFrame,
    log_scale: Option<(f64, f64)>,
    around: Option<Surroundings>,
) -> PyResult<CutsTuple> {
    let cuts = detached(py, || {
        let sorted = sorted_finite(values, NanPolicy::Omit)?.values;
        bucket_cuts(&sorted, offset, frame, log_scale, around)
    })?;
    let segment = cuts.two_segment.map(|c| (c.breakpoint, c.sse, c.threshold));
    Ok((cuts.log_knee.map(knee_tuple), segment))
}

/// Sort one bucket's finite scores, at global ranks `offset..`, and return its
/// deepest point below the chord of the signed-log curve (when `log_scale`,
/// the rescaled centre and unit, is given) and its best two-segment cut
/// `(breakpoint, sse, threshold)` (when the moments `before` and `after` it are).
#[pyfunction(name = "split_cuts")]
#[pyo3(signature = (values, *, offset, frame, log_scale = None, before = None, after = None, previous = None))]
#[allow(
    clippy::too_many_arguments,
    reason = "the keyword arguments of one Python call"
)]
fn split_cuts_py(
    py: Python<'_>,
    values: ScoresArray<'_>,
    offset: usize,
    frame: PyRef<'_, PySplitFrame>,
    log_scale: Option<(f64, f64)>,
    before: Option<PyRef<'_, PyLineMoments>>,
    after: Option<PyRef<'_, PyLineMoments>>,
    previous: Option<f64>,
) -> PyResult<CutsTuple> {
    let frame = frame.inner;
    let around = match (&before, &after) {
        (Some(before), Some(after)) => Some(Surroundings {
            before: before.inner,
            after: after.inner,
            previous,
        }),
        (None, None) => None,
        _ => {
            return Err(PyValueError::new_err(
                "split_cuts: give both the moments before and after the bucket, or neither",
            ))
        }
    };
    match &values {
        ScoresArray::F64(z) => {
            split_cuts_typed(py, z.as_slice()?, offset, &frame, log_scale, around)
        }
        ScoresArray::F32(z) => {
            split_cuts_typed(py, z.as_slice()?, offset, &frame, log_scale, around)
        }
    }
}

/// The ranks whose scores the log scale of `n` scores reads (its quartiles).
#[pyfunction(name = "quantile_ranks")]
fn quantile_ranks_py(n: usize) -> PyResult<Vec<usize>> {
    if n == 0 {
        return Err(PyValueError::new_err("n: must be at least 1, got 0"));
    }
    Ok(crate::log_knee::quantile_ranks(n))
}

/// The rescaled centre and unit of the log scale of `n` scores from their
/// scores at `quantile_ranks(n)`, given as `(rank, score)`; None without spread.
/// When the quartiles coincide and `deviation` (the sum of `|z * 2^-exponent -
/// center|` over all scores) is not given, the unit is NaN: pass it.
#[pyfunction(name = "log_scale")]
#[pyo3(signature = (n, *, picked, exponent = 0, deviation = None))]
fn log_scale_py(
    n: usize,
    picked: Vec<(usize, f64)>,
    exponent: i32,
    deviation: Option<f64>,
) -> PyResult<Option<(f64, f64)>> {
    Ok(match log_scale_of_ranks(n, &picked, exponent, deviation)? {
        LogScale::Found { center, unit } => Some((center, unit)),
        LogScale::NeedsDeviation { center } => Some((center, f64::NAN)),
        LogScale::NoSpread => None,
    })
}

/// `sum |z * 2^-exponent - center|` over the finite scores of a chunk.
#[pyfunction(name = "absolute_deviation")]
#[pyo3(signature = (values, *, center, exponent = 0))]
fn absolute_deviation_py(
    py: Python<'_>,
    values: ScoresArray<'_>,
    center: f64,
    exponent: i32,
) -> PyResult<f64> {
    check_exponent(exponent)?;
    match &values {
        ScoresArray::F64(z) => {
            let z = z.as_slice()?;
            detached(py, || Ok(absolute_deviation_of_chunk(z, center, exponent)))
        }
        ScoresArray::F32(z) => {
            let z = z.as_slice()?;
            detached(py, || Ok(absolute_deviation_of_chunk(z, center, exponent)))
        }
    }
}

/// Per key: the counts of a chunk's finite scores reading below it and at or
/// below it, and the smallest score (as given) reading at or above it and above
/// it (+inf when none); read rescaled, on the signed-log scale when `log_scale`
/// is given.
#[pyfunction(name = "rank_counts")]
#[pyo3(signature = (values, *, keys, log_scale = None, exponent = 0))]
#[allow(clippy::type_complexity, reason = "four arrays, merged by ltrend.dask")]
fn rank_counts_py<'py>(
    py: Python<'py>,
    values: ScoresArray<'py>,
    keys: Vec<f64>,
    log_scale: Option<(f64, f64)>,
    exponent: i32,
) -> PyResult<(
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
)> {
    check_exponent(exponent)?;
    let reading = match log_scale {
        Some((center, unit)) => Reading::Log { center, unit },
        None => Reading::Raw,
    };
    let counts = match &values {
        ScoresArray::F64(z) => {
            let z = z.as_slice()?;
            detached(py, || Ok(RankCounts::of_chunk(z, &keys, reading, exponent)))?
        }
        ScoresArray::F32(z) => {
            let z = z.as_slice()?;
            detached(py, || Ok(RankCounts::of_chunk(z, &keys, reading, exponent)))?
        }
    };
    let wide = |v: Vec<usize>| -> Vec<u64> { v.into_iter().map(|c| c as u64).collect() };
    Ok((
        wide(counts.below).into_pyarray(py),
        wide(counts.at_or_below).into_pyarray(py),
        counts.least_from.into_pyarray(py),
        counts.least_above.into_pyarray(py),
    ))
}

/// `tail_aware`'s exponential reference depth for `n` scores.
/// One pass of logarithms over `n` quantiles, so the GIL is released.
#[pyfunction(name = "exponential_depth")]
fn exponential_depth_py(py: Python<'_>, n: usize) -> f64 {
    py.detach(|| crate::tail_aware::exponential_depth(n))
}

/// `tail_aware`'s light-tail anomaly count from the counts of `knee` and
/// `two_segment` (None for a method without a split).
#[pyfunction(name = "raw_count")]
fn raw_count_py(by_knee: Option<usize>, by_lines: Option<usize>) -> Option<usize> {
    crate::tail_aware::raw_count(by_knee, by_lines)
}

/// Register the breakpoint methods' partial-state API on the module.
fn add_partial_split(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLineMoments>()?;
    m.add_class::<PySplitFrame>()?;
    m.add_function(wrap_pyfunction!(split_summary_py, m)?)?;
    m.add_function(wrap_pyfunction!(split_cuts_py, m)?)?;
    m.add_function(wrap_pyfunction!(quantile_ranks_py, m)?)?;
    m.add_function(wrap_pyfunction!(log_scale_py, m)?)?;
    m.add_function(wrap_pyfunction!(absolute_deviation_py, m)?)?;
    m.add_function(wrap_pyfunction!(rank_counts_py, m)?)?;
    m.add_function(wrap_pyfunction!(exponential_depth_py, m)?)?;
    m.add_function(wrap_pyfunction!(raw_count_py, m)?)?;
    Ok(())
}

// Declared as using the GIL, so a free-threaded interpreter turns it back on at
// import: the thread tests pass with the GIL released during each call, but they
// have not yet run on a free-threaded CPython (PyO3 needs 3.14t or later).
#[pymodule(gil_used = true)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit_py, m)?)?;
    m.add_function(wrap_pyfunction!(fit_sorted_py, m)?)?;
    m.add_class::<RawFit>()?;
    add_partial(m)?;
    add_partial_split(m)?;
    m.add_class::<PyMonitor>()?;
    m.add_class::<MonitorStatus>()?;
    m.add("MONITOR_MAX_WINDOW", crate::monitor::MAX_WINDOW)?;
    m.add("MONITOR_HISTORY_LIMIT", crate::monitor::HISTORY_LIMIT)?;
    m.add("MAX_DEGREE_LIMIT", crate::polyfit::MAX_DEGREE_LIMIT)?;
    m.add("MIN_SCORES", threshold::MIN_SCORES)?;
    let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
    m.add("METHODS", names)?;
    Ok(())
}
