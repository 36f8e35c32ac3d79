//! The Python seam: thin wrappers that parse arguments, call a kernel with the GIL
//! released, and convert the result. No method logic lives here.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::error::KernelError;
use crate::method::{self, Method, MethodFit, SplitFit};
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

fn parse_method(name: &str) -> PyResult<Method> {
    Method::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
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

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit_py, m)?)?;
    m.add_class::<RawFit>()?;
    m.add("MAX_DEGREE_LIMIT", crate::polyfit::MAX_DEGREE_LIMIT)?;
    m.add("MIN_SCORES", threshold::MIN_SCORES)?;
    let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
    m.add("METHODS", names)?;
    Ok(())
}
