//! The Python seam: thin wrappers that parse arguments, call a kernel with the GIL
//! released, and convert the result. No method logic lives here.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PySlice;

use crate::error::KernelError;
use crate::sort::{count_non_finite, finite_bounds, NanPolicy, Score};
use crate::threshold::{self, CurveFit, LTrendFit};

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
    })
}

fn fit_typed<T>(
    py: Python<'_>,
    scores: PyReadonlyArray1<'_, T>,
    max_degree: usize,
    nan_policy: NanPolicy,
) -> PyResult<RawFit>
where
    T: Score + numpy::Element,
{
    let z = scores.as_slice()?;
    let (fit, mask) = detached(py, || {
        let fit = threshold::fit(z, max_degree, nan_policy)?;
        let mask = threshold::anomaly_mask(z, fit.threshold);
        Ok((fit, mask))
    })?;
    raw_fit(py, fit, mask)
}

/// Learn the L-trend threshold of a contiguous 1-D float64 or float32 array.
#[pyfunction(name = "fit")]
#[pyo3(signature = (scores, *, max_degree, nan_policy))]
fn fit_py(
    py: Python<'_>,
    scores: ScoresArray<'_>,
    max_degree: usize,
    nan_policy: &str,
) -> PyResult<RawFit> {
    let policy = parse_nan_policy(nan_policy)?;
    match scores {
        ScoresArray::F64(z) => fit_typed(py, z, max_degree, policy),
        ScoresArray::F32(z) => fit_typed(py, z, max_degree, policy),
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

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit_py, m)?)?;
    m.add_function(wrap_pyfunction!(fit_sorted_py, m)?)?;
    m.add_class::<RawFit>()?;
    m.add("MAX_DEGREE_LIMIT", crate::polyfit::MAX_DEGREE_LIMIT)?;
    m.add("MIN_SCORES", threshold::MIN_SCORES)?;
    Ok(())
}
