//! The Python seam: thin wrappers that parse arguments, call a kernel with the GIL
//! released, and convert the result. No method logic lives here.

use std::sync::Mutex;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::KernelError;
// NOTE: the monitor keeps its own `Method` (the methods it can refit with); `fit`
// dispatches on `method::Method`, imported here as `FitMethod`.
use crate::method::{self, Method as FitMethod, MethodFit, SplitFit};
use crate::monitor::{Method, Monitor, MonitorConfig};
use crate::sort::{NanPolicy, Score};
use crate::threshold::{self, LTrendFit};

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

fn parse_method(name: &str) -> PyResult<FitMethod> {
    FitMethod::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = FitMethod::ALL.iter().map(|m| m.name()).collect();
        PyValueError::new_err(format!("method: must be one of {names:?}, got {name:?}"))
    })
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
        center: 0.0,
        coefficients: PyArray2::zeros(py, [0, 1], false).unbind(),
        breakpoint: fit.breakpoint,
    })
}

fn raw_fit<T>(py: Python<'_>, fit: LTrendFit<T>, mask: Vec<bool>) -> PyResult<RawFit>
where
    T: Score + numpy::Element,
{
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
        n_omitted: fit.n_omitted,
        mask: mask.into_pyarray(py).unbind(),
        sorted_scores: fit.sorted.into_pyarray(py).into_any().unbind(),
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
    method: FitMethod,
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
    /// The last refit's table: (degree, threshold, compactness, count) per degree.
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
            method: Method::from_name(method)?,
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
    /// refit (int64), its threshold (float64) and its degree (None for no split).
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

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit_py, m)?)?;
    m.add_class::<RawFit>()?;
    m.add_class::<PyMonitor>()?;
    m.add_class::<MonitorStatus>()?;
    m.add("MONITOR_MAX_WINDOW", crate::monitor::MAX_WINDOW)?;
    m.add("MONITOR_HISTORY_LIMIT", crate::monitor::HISTORY_LIMIT)?;
    m.add("MAX_DEGREE_LIMIT", crate::polyfit::MAX_DEGREE_LIMIT)?;
    m.add("MIN_SCORES", threshold::MIN_SCORES)?;
    let names: Vec<&str> = FitMethod::ALL.iter().map(|m| m.name()).collect();
    m.add("METHODS", names)?;
    Ok(())
}
