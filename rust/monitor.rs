//! A streaming monitor: judge each score against the threshold in force, keep the
//! latest `window` scores, and re-learn the threshold on them every `refit_every`.
//!
//! Design notes.
//!
//! - Semantics by construction. A refit hands [`method::fit_sorted`] a vector that
//!   is bit for bit the window sorted by IEEE total order, which is exactly the vector
//!   [`method::fit_method`] builds from the same scores. The threshold therefore
//!   equals `fit_method(window)` exactly, not merely to a tolerance, whichever the
//!   method. The split methods have no degree and no per-degree table: a refit
//!   with one of them records the degree as `None` and an empty table, as `fit`
//!   reports them.
//! - State. `ring` holds the window in arrival order (a ring buffer: once full, the
//!   slot at `head` holds the oldest score). `sorted` is the window as it was at the
//!   last refit, ascending. `evicted` collects the scores that have left the ring
//!   since then and are still in `sorted`; the newest `since_refit` scores of the
//!   ring are not in `sorted` yet.
//! - Refit without re-sorting. Radix-sort the few fresh and evicted scores, then one
//!   merge pass builds `sorted - evicted + fresh`, copying the runs of `sorted`
//!   between those events as blocks: O(window + k) for k scores since the last
//!   refit, never O(window log window). Only when the fresh scores fill the whole
//!   window (`refit_every >= window`) is the ring sorted outright (radix, O(window)
//!   per refit, no more per score than the merge). The merge target and the sort
//!   keys are buffers kept between refits, so a refit does not fault in new pages.
//! - Schedule. The first threshold is learned as soon as the window holds
//!   `min_scores` scores, then again after every `refit_every` further scores.
//! - Non-finite scores under [`NanPolicy::Omit`] are judged normal (as `fit` labels
//!   them), counted in `n_omitted`, never enter the window and do not advance the
//!   refit schedule. Under [`NanPolicy::Raise`] a batch holding any is refused
//!   whole, before any state changes.
//! - History. Every refit appends `(n_seen, threshold, degree)` to a ring of at most
//!   [`HISTORY_LIMIT`] entries (the oldest is dropped first), so that a monitor that
//!   runs for months keeps a bounded record of how its threshold moved. A refit at
//!   the same `n_seen` as the previous one sees the same window, so it learns the
//!   same threshold; it replaces that entry rather than adding a step of zero width,
//!   which keeps the recorded `n_seen` strictly increasing.
//! - Threads. The monitor is plain data behind `&mut self`; the Python wrapper puts
//!   it in a `Mutex`, so each batch is applied atomically.

use std::collections::VecDeque;

use crate::error::KernelError;
use crate::method::{self, MethodFit};
use crate::polyfit::MAX_DEGREE_LIMIT;
use crate::snapshot::{self, Reader, SnapshotError, Writer};
use crate::sort::{count_non_finite, NanPolicy, Score};
use crate::threshold::{DegreeRow, MIN_SCORES};

/// Largest `window` and `refit_every` accepted: 2^40 scores (8 TiB per copy of the
/// window) is beyond any machine, and the bound keeps hostile snapshots from
/// describing sizes whose arithmetic could overflow.
pub const MAX_WINDOW: usize = 1 << 40;

/// Largest `n_seen` and `n_refits` a snapshot may carry: 2^62 (146 years at 10^9
/// scores a second) leaves the counters far from overflow. The counters stop
/// there (see [`Monitor::update`]), so that every state a monitor reaches, even
/// from a crafted snapshot near the cap, is one its own snapshot can hold.
pub const MAX_COUNT: u64 = 1 << 62;

/// Format version written by [`Monitor::to_bytes`]; bump it when the payload changes.
///
/// NOTE: version 1 gained the refit history before any release, so no snapshot
/// without it exists to be read.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Refits the history keeps, newest last: at one refit an hour that is almost six
/// months, while the history stays at 128 KiB in memory and 96 KiB in a snapshot
/// however long the monitor runs.
pub const HISTORY_LIMIT: usize = 4096;

/// The method a monitor re-learns with: the methods of `fit`, one list for both.
pub use crate::method::Method;

/// The options of a [`Monitor`], fixed at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorConfig {
    /// How many of the latest finite scores the threshold is learned on.
    pub window: usize,
    /// Finite scores between two refits.
    pub refit_every: usize,
    /// Finite scores needed before the first threshold (at most `window`).
    pub min_scores: usize,
    /// As for [`method::fit_method`] (only [`Method::Paper`] uses it).
    pub max_degree: usize,
    /// What to do with NaN and infinite scores (see the module notes).
    pub nan_policy: NanPolicy,
    /// The method each refit runs.
    pub method: Method,
}

impl MonitorConfig {
    /// Check every option against its range.
    ///
    /// ```text
    /// 3 <= window <= 2^40,  1 <= refit_every <= 2^40,  3 <= min_scores <= window,
    /// 1 <= max_degree <= 10
    /// ```
    ///
    /// # Errors
    /// [`KernelError::OptionOutOfRange`] naming the first option out of range, or
    /// [`KernelError::InvalidMaxDegree`].
    pub fn validate(&self) -> Result<(), KernelError> {
        let check = |name, got: usize, min, max| {
            if (min..=max).contains(&got) {
                Ok(())
            } else {
                Err(KernelError::OptionOutOfRange {
                    name,
                    got,
                    min,
                    max,
                })
            }
        };
        check("window", self.window, MIN_SCORES, MAX_WINDOW)?;
        check("refit_every", self.refit_every, 1, MAX_WINDOW)?;
        check("min_scores", self.min_scores, MIN_SCORES, self.window)?;
        if self.max_degree == 0 || self.max_degree > MAX_DEGREE_LIMIT {
            return Err(KernelError::InvalidMaxDegree {
                got: self.max_degree,
                limit: MAX_DEGREE_LIMIT,
            });
        }
        Ok(())
    }
}

/// What the last refit learned, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Refit {
    /// The threshold of the window at the refit; `+inf` when the method found no split.
    pub threshold: f64,
    /// `d*` of the paper's method; `None` when no degree split the window, and
    /// always for the split methods.
    pub degree: Option<usize>,
    /// Scores of that window at or above the threshold.
    pub n_anomalies: usize,
    /// The per-degree table of the paper's fit; empty for the split methods.
    pub rows: Vec<DegreeRow>,
    /// `n_seen` when the refit ran.
    pub at: u64,
    /// Scores in the window at the refit.
    pub n_scores: usize,
}

/// One entry of a monitor's threshold history: what a refit learned, and when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryEntry {
    /// `n_seen` when the refit ran; the threshold judged every later score until the
    /// next entry.
    pub at: u64,
    /// The threshold learned; `+inf` when the method found no split.
    pub threshold: f64,
    /// The degree chosen; `None` when no degree split the window, and always for
    /// the split methods.
    pub degree: Option<usize>,
}

/// A streaming L-trend thresholder over a sliding window of scores.
///
/// ```text
/// flag(z)  = isfinite(z) and z >= tau_current        (paper eq. 1)
/// tau      = fit(last `window` finite scores).threshold, re-learned every
///            `refit_every` finite scores once `min_scores` have arrived
/// ```
///
/// # Examples
/// ```
/// use ltrend::monitor::{Method, Monitor, MonitorConfig};
/// use ltrend::sort::NanPolicy;
/// let config = MonitorConfig {
///     window: 100,
///     refit_every: 10,
///     min_scores: 50,
///     max_degree: 5,
///     nan_policy: NanPolicy::Raise,
///     method: Method::Paper,
/// };
/// let mut monitor = Monitor::new(config).unwrap();
/// let mut scores: Vec<f64> = (0..57).map(|i| f64::from(i % 10) * 0.01).collect();
/// scores.extend([3.0, 4.0, 5.0]);
/// monitor.update_many(&scores).unwrap();
/// let tau = monitor.threshold().unwrap();
/// assert!(0.09 < tau && tau <= 3.0);
/// assert_eq!(monitor.update_many(&[9.0, 0.05]).unwrap(), vec![true, false]);
/// ```
#[derive(Debug, Clone)]
pub struct Monitor {
    config: MonitorConfig,
    ring: Vec<f64>,
    head: usize,
    sorted: Vec<f64>,
    evicted: Vec<f64>,
    since_refit: usize,
    /// Working memory of the refits, kept between them so that no refit faults
    /// in fresh pages; none of it is part of the state.
    work: RefitBuffers,
    last: Option<Refit>,
    /// The latest refits, oldest first; at most [`HISTORY_LIMIT`] of them.
    history: VecDeque<HistoryEntry>,
    n_seen: u64,
    n_flagged: u64,
    n_omitted: u64,
    n_refits: u64,
}

impl Monitor {
    /// An empty monitor.
    ///
    /// # Errors
    /// As [`MonitorConfig::validate`].
    pub fn new(config: MonitorConfig) -> Result<Monitor, KernelError> {
        config.validate()?;
        Ok(Monitor {
            config,
            ring: Vec::new(),
            head: 0,
            sorted: Vec::new(),
            evicted: Vec::new(),
            since_refit: 0,
            work: RefitBuffers::default(),
            last: None,
            history: VecDeque::new(),
            n_seen: 0,
            n_flagged: 0,
            n_omitted: 0,
            n_refits: 0,
        })
    }

    /// The options the monitor was built with.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// The threshold in force; `None` until the first refit.
    pub fn threshold(&self) -> Option<f64> {
        self.last.as_ref().map(|r| r.threshold)
    }

    /// The last refit; `None` until the first.
    pub fn last_refit(&self) -> Option<&Refit> {
        self.last.as_ref()
    }

    /// The threshold over time: one entry per refit, oldest first, at most the
    /// latest [`HISTORY_LIMIT`] (see the module notes).
    ///
    /// ```text
    /// history[i].threshold judges the scores seen after history[i].at,
    ///                      up to and including history[i + 1].at
    /// ```
    ///
    /// # Examples
    /// ```
    /// use ltrend::monitor::{Method, Monitor, MonitorConfig};
    /// use ltrend::sort::NanPolicy;
    /// let config = MonitorConfig {
    ///     window: 20,
    ///     refit_every: 5,
    ///     min_scores: 10,
    ///     max_degree: 5,
    ///     nan_policy: NanPolicy::Raise,
    ///     method: Method::Paper,
    /// };
    /// let mut monitor = Monitor::new(config).unwrap();
    /// let scores: Vec<f64> = (0..21).map(|i| f64::from(i % 7)).collect();
    /// monitor.update_many(&scores).unwrap();
    /// let at: Vec<u64> = monitor.history().iter().map(|e| e.at).collect();
    /// assert_eq!(at, vec![10, 15, 20]);
    /// assert_eq!(monitor.history().back().unwrap().threshold, monitor.threshold().unwrap());
    /// ```
    pub fn history(&self) -> &VecDeque<HistoryEntry> {
        &self.history
    }

    /// Scores given to the monitor, non-finite ones included.
    pub fn n_seen(&self) -> u64 {
        self.n_seen
    }

    /// Scores judged anomalous.
    pub fn n_flagged(&self) -> u64 {
        self.n_flagged
    }

    /// Non-finite scores left out under [`NanPolicy::Omit`].
    pub fn n_omitted(&self) -> u64 {
        self.n_omitted
    }

    /// Refits run so far.
    pub fn n_refits(&self) -> u64 {
        self.n_refits
    }

    /// Finite scores that entered the window since the last refit.
    pub fn since_refit(&self) -> usize {
        self.since_refit
    }

    /// Scores in the window now.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True before the first score enters the window.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The window in arrival order, oldest first.
    pub fn window_scores(&self) -> Vec<f64> {
        let (newer, older) = self.ring.split_at(self.head);
        let mut out = Vec::with_capacity(self.ring.len());
        out.extend_from_slice(older);
        out.extend_from_slice(newer);
        out
    }

    /// Judge one score, then let it enter the window (and refit when one is due).
    ///
    /// The counters `n_seen`, `n_flagged` and `n_omitted` stop growing at 2^62
    /// scores ([`MAX_COUNT`]), a count no real stream reaches.
    ///
    /// # Errors
    /// [`KernelError::NonFinite`] for a NaN or infinite score under
    /// [`NanPolicy::Raise`]; the monitor is then unchanged.
    pub fn update(&mut self, score: f64) -> Result<bool, KernelError> {
        if !score.is_finite() && self.config.nan_policy == NanPolicy::Raise {
            return Err(KernelError::NonFinite {
                count: 1,
                first_index: 0,
            });
        }
        self.step(score)
    }

    /// Judge each score in order against the threshold in force when it arrives.
    ///
    /// Returns the anomaly mask in input order; a refit that falls due inside the
    /// batch applies to the scores after it.
    ///
    /// # Errors
    /// [`KernelError::NonFinite`] when any score is NaN or infinite under
    /// [`NanPolicy::Raise`]; the whole batch is then refused and the monitor is
    /// unchanged.
    pub fn update_many<T: Score>(&mut self, scores: &[T]) -> Result<Vec<bool>, KernelError> {
        if self.config.nan_policy == NanPolicy::Raise {
            if let (count, Some(first_index)) = count_non_finite(scores) {
                return Err(KernelError::NonFinite { count, first_index });
            }
        }
        let mut mask = Vec::with_capacity(scores.len());
        for z in scores {
            mask.push(self.step(z.to_f64())?);
        }
        Ok(mask)
    }

    /// Re-learn the threshold on the window now, and restart the refit count.
    ///
    /// # Errors
    /// [`KernelError::NotEnoughScores`] while the window holds fewer than
    /// `min_scores` scores.
    pub fn refit(&mut self) -> Result<(), KernelError> {
        if self.ring.len() < self.config.min_scores {
            return Err(KernelError::NotEnoughScores {
                needed: self.config.min_scores,
                got: self.ring.len(),
            });
        }
        self.refit_window()
    }

    fn step(&mut self, z: f64) -> Result<bool, KernelError> {
        // The counters stop together at MAX_COUNT, which keeps flagged + omitted
        // <= seen (found by fuzz/fuzz_targets/snapshot.rs).
        let counting = u64::from(self.n_seen < MAX_COUNT);
        self.n_seen += counting;
        if !z.is_finite() {
            self.n_omitted += counting;
            return Ok(false);
        }
        let flagged = self.last.as_ref().is_some_and(|r| z >= r.threshold);
        self.n_flagged += u64::from(flagged) & counting;
        self.push(z);
        let due = if self.last.is_some() {
            self.config.refit_every
        } else {
            self.config.min_scores
        };
        if self.since_refit >= due {
            self.refit_window()?;
        }
        Ok(flagged)
    }

    /// Let a finite score enter the window, evicting the oldest when it is full.
    #[inline]
    fn push(&mut self, z: f64) {
        if self.ring.len() < self.config.window {
            self.ring.push(z);
        } else {
            let old = std::mem::replace(&mut self.ring[self.head], z);
            self.head += 1;
            if self.head == self.ring.len() {
                self.head = 0;
            }
            // The oldest score is in `sorted` unless every score in the ring is fresh.
            if self.since_refit < self.ring.len() {
                self.evicted.push(old);
            }
        }
        self.since_refit += 1;
        if self.since_refit == self.ring.len() {
            // Every score is fresh now: the next refit sorts the ring outright.
            self.evicted.clear();
        }
    }

    /// The newest `k` scores of the ring, in arrival order, as at most two slices.
    fn newest(&self, k: usize) -> [&[f64]; 2] {
        let (newer, older) = self.ring.split_at(self.head);
        if k > newer.len() {
            [&older[older.len() - (k - newer.len())..], newer]
        } else {
            [&newer[newer.len() - k..], &[]]
        }
    }

    fn refit_window(&mut self) -> Result<(), KernelError> {
        let mut work = std::mem::take(&mut self.work);
        let mut merged = std::mem::take(&mut work.merged);
        if self.since_refit >= self.ring.len() {
            let (newer, older) = self.ring.split_at(self.head);
            work.sorter.sort_into(&[older, newer], &mut merged);
        } else {
            work.sorter
                .sort_into(&self.newest(self.since_refit), &mut work.fresh);
            work.sorter.sort_into(&[&self.evicted], &mut work.gone);
            merge_window(&self.sorted, &work.gone, &work.fresh, &mut merged);
        }
        self.work = work;
        debug_assert_eq!(merged.len(), self.ring.len());
        self.evicted.clear();
        self.since_refit = 0;
        let n_scores = merged.len();
        let fit = match method::fit_sorted(merged, self.config.method, self.config.max_degree, 0) {
            Ok(fit) => fit,
            Err(err) => {
                // NOTE: unreachable while min_scores >= 3 holds; if it ever fails, mark
                // every score fresh so that the next refit rebuilds from the ring.
                self.since_refit = self.ring.len();
                return Err(err);
            }
        };
        let (threshold, n_anomalies) = (fit.threshold(), fit.n_anomalies());
        let (sorted, degree, rows) = match fit {
            MethodFit::Paper(fit) => (fit.sorted, fit.degree, fit.rows),
            MethodFit::Split(fit) => (fit.sorted, None, Vec::new()),
        };
        self.work.merged = std::mem::replace(&mut self.sorted, sorted);
        self.n_refits = self.n_refits.saturating_add(1).min(MAX_COUNT);
        self.record(HistoryEntry {
            at: self.n_seen,
            threshold,
            degree,
        });
        self.last = Some(Refit {
            threshold,
            degree,
            n_anomalies,
            rows,
            at: self.n_seen,
            n_scores,
        });
        Ok(())
    }

    /// Append a refit to the history, dropping the oldest beyond [`HISTORY_LIMIT`].
    fn record(&mut self, entry: HistoryEntry) {
        if let Some(previous) = self.history.back_mut() {
            if previous.at == entry.at {
                // Same n_seen, same window: the refit was a repeat (see module notes).
                // NOTE: its threshold need not equal the previous one when that came
                // from a snapshot written by another build (or crafted); the newer
                // fit replaces it either way (found by fuzz/fuzz_targets/snapshot.rs).
                *previous = entry;
                return;
            }
        }
        if self.history.len() == HISTORY_LIMIT {
            self.history.pop_front();
        }
        self.history.push_back(entry);
    }

    /// The full state as a self-checking byte string (see [`crate::snapshot`]).
    ///
    /// # Examples
    /// ```
    /// use ltrend::monitor::{Method, Monitor, MonitorConfig};
    /// use ltrend::sort::NanPolicy;
    /// let config = MonitorConfig {
    ///     window: 10,
    ///     refit_every: 5,
    ///     min_scores: 5,
    ///     max_degree: 3,
    ///     nan_policy: NanPolicy::Omit,
    ///     method: Method::Paper,
    /// };
    /// let mut monitor = Monitor::new(config).unwrap();
    /// monitor.update_many(&[1.0, 2.0, 3.0, 5.0, 9.0, f64::NAN, 4.0]).unwrap();
    /// let restored = Monitor::from_bytes(&monitor.to_bytes()).unwrap();
    /// assert_eq!(restored.window_scores(), monitor.window_scores());
    /// assert_eq!(restored.threshold(), monitor.threshold());
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let window = self.window_scores();
        let mut w = Writer::with_capacity(
            256 + 8 * (window.len() + self.evicted.len()) + HISTORY_BYTES * self.history.len(),
        );
        let c = &self.config;
        w.usize(c.window);
        w.usize(c.refit_every);
        w.usize(c.min_scores);
        w.usize(c.max_degree);
        w.u8(match c.nan_policy {
            NanPolicy::Raise => 0,
            NanPolicy::Omit => 1,
        });
        w.short_str(c.method.name());
        w.u64(self.n_seen);
        w.u64(self.n_flagged);
        w.u64(self.n_omitted);
        w.u64(self.n_refits);
        w.usize(self.since_refit);
        match &self.last {
            None => w.u8(0),
            Some(refit) => {
                w.u8(1);
                w.f64(refit.threshold);
                w.usize(refit.degree.unwrap_or(0));
                w.usize(refit.n_anomalies);
                w.u64(refit.at);
                w.usize(refit.n_scores);
                w.usize(refit.rows.len());
                for row in &refit.rows {
                    w.usize(row.degree);
                    w.f64(row.threshold);
                    w.f64(row.compactness);
                    w.usize(row.n_anomalies);
                }
            }
        }
        w.usize(self.history.len());
        for entry in &self.history {
            w.u64(entry.at);
            w.f64(entry.threshold);
            w.usize(entry.degree.unwrap_or(0));
        }
        w.f64s(&window);
        w.f64s(&self.evicted);
        w.seal(SNAPSHOT_VERSION)
    }

    /// Rebuild a monitor from [`Monitor::to_bytes`]; all or nothing.
    ///
    /// # Errors
    /// [`KernelError::Snapshot`] for bytes that are truncated, oversized, corrupted,
    /// of another format version, or that describe an impossible state.
    pub fn from_bytes(bytes: &[u8]) -> Result<Monitor, KernelError> {
        decode(bytes).map_err(KernelError::Snapshot)
    }
}

/// Below this many scores a comparison sort beats the radix sort's fixed cost
/// (eight 256-bucket histograms); the measured crossover is near 200 scores on
/// x86-64 (an 11-bit digit, six passes, gained under 10 % at 1e4 scores and
/// moved the crossover to about 800, so bytes it is).
const RADIX_MIN: usize = 256;

/// The order-preserving key of a float: unsigned comparison of keys is IEEE total
/// order of the floats (negative values have all bits flipped, others the sign bit).
#[inline]
fn total_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

#[inline]
fn from_total_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// Scratch vectors reused by every refit.
#[derive(Debug, Clone, Default)]
struct RefitBuffers {
    sorter: Sorter,
    /// The fresh scores, sorted.
    fresh: Vec<f64>,
    /// The evicted scores, sorted.
    gone: Vec<f64>,
    /// The merge target; becomes `sorted`, and the old `sorted` comes back here.
    merged: Vec<f64>,
}

/// A radix sort by IEEE total order with its key buffers kept between calls.
#[derive(Debug, Clone, Default)]
struct Sorter {
    keys: Vec<u64>,
    scratch: Vec<u64>,
}

impl Sorter {
    /// Sort the concatenation of `parts` ascending by IEEE total order into `out`,
    /// exactly as `sort_unstable_by(f64::total_cmp)` would (equal keys are identical
    /// bit patterns, so any correct sort gives the same vector).
    ///
    /// Algorithm: least-significant-digit radix sort on [`total_key`], one byte per
    /// pass, skipping the passes whose byte is the same in every key (typically the
    /// sign and high exponent bits of scores of one magnitude).
    fn sort_into(&mut self, parts: &[&[f64]], out: &mut Vec<f64>) {
        out.clear();
        let n: usize = parts.iter().map(|p| p.len()).sum();
        if n < RADIX_MIN {
            for part in parts {
                out.extend_from_slice(part);
            }
            out.sort_unstable_by(f64::total_cmp);
            return;
        }
        let (keys, scratch) = (&mut self.keys, &mut self.scratch);
        keys.clear();
        for part in parts {
            keys.extend(part.iter().map(|&x| total_key(x)));
        }
        let mut counts = [[0usize; 256]; 8];
        for &key in keys.iter() {
            for (digit, count) in counts.iter_mut().enumerate() {
                count[((key >> (8 * digit)) & 0xFF) as usize] += 1;
            }
        }
        scratch.resize(n, 0);
        for (digit, count) in counts.iter().enumerate() {
            if count.contains(&n) {
                continue;
            }
            let mut offsets = [0usize; 256];
            let mut running = 0;
            for (offset, &c) in offsets.iter_mut().zip(count) {
                *offset = running;
                running += c;
            }
            for &key in keys.iter() {
                let bucket = ((key >> (8 * digit)) & 0xFF) as usize;
                scratch[offsets[bucket]] = key;
                offsets[bucket] += 1;
            }
            std::mem::swap(keys, scratch);
        }
        out.extend(keys.iter().map(|&key| from_total_key(key)));
    }
}

/// Elements a run search scans one by one before it gallops: runs between two
/// arrivals average `window / (2 k)` scores (5 at window 1e5, k = 1e4), which a
/// short scan covers with one mispredicted branch; longer runs gallop.
const LINEAR_RUN: usize = 16;

/// The first index `q >= p` with `!pred(total_key(sorted[q]))` (or `sorted.len()`),
/// where `pred` holds on a prefix of `sorted[p..]`: a short scan, then an
/// exponential search and a binary search (galloping, as in timsort).
#[inline]
fn run_end(sorted: &[f64], p: usize, pred: impl Fn(u64) -> bool) -> usize {
    let n = sorted.len();
    let end = (p + LINEAR_RUN).min(n);
    let mut q = p;
    while q < end && pred(total_key(sorted[q])) {
        q += 1;
    }
    if q < end || q == n {
        return q;
    }
    // pred holds at q - 1; double the step until it fails or the end is reached.
    let (mut last_true, mut step) = (q - 1, 1);
    while last_true + step < n && pred(total_key(sorted[last_true + step])) {
        last_true += step;
        step *= 2;
    }
    let hi = (last_true + step).min(n);
    last_true + 1 + sorted[last_true + 1..hi].partition_point(|&x| pred(total_key(x)))
}

/// `(old - removed) + added` as one ascending vector, into `out`.
///
/// All three inputs are ascending by IEEE total order and `removed` is a
/// sub-multiset of `old`. Equal keys under total order are identical bit patterns,
/// so the result is the unique total-order sort of the multiset.
///
/// Algorithm: walk the removals and arrivals in order (the events); copy the run
/// of `old` before each event as one block, then drop the removed score or insert
/// the arrival. O(window) copying plus O(k log(window / k)) searching; a merge
/// that compares every score instead mispredicts a branch at every event and
/// measures about twice as slow at window 1e6, k = 1e4.
fn merge_window(old: &[f64], removed: &[f64], added: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.reserve(old.len() + added.len() - removed.len());
    let (mut p, mut r, mut a) = (0, 0, 0);
    loop {
        let next_removed = removed.get(r).map(|&x| total_key(x));
        let next_added = added.get(a).map(|&x| total_key(x));
        // Removal first on a tie: the two are the same bit pattern either way.
        let (key, remove) = match (next_removed, next_added) {
            (None, None) => break,
            (Some(kr), Some(ka)) if ka < kr => (ka, false),
            (None, Some(ka)) => (ka, false),
            (Some(kr), _) => (kr, true),
        };
        if remove {
            let q = run_end(old, p, |k| k < key);
            out.extend_from_slice(&old[p..q]);
            debug_assert!(
                q < old.len() && total_key(old[q]) == key,
                "an evicted score was not in the window"
            );
            p = q + 1;
            r += 1;
        } else {
            let q = run_end(old, p, |k| k <= key);
            out.extend_from_slice(&old[p..q]);
            out.push(added[a]);
            p = q;
            a += 1;
        }
    }
    out.extend_from_slice(&old[p..]);
}

/// Bytes of one history entry in a snapshot: `at`, threshold, degree (0 for none).
const HISTORY_BYTES: usize = 3 * 8;

fn inconsistent(what: impl Into<String>) -> SnapshotError {
    SnapshotError::Inconsistent { what: what.into() }
}

fn decode(bytes: &[u8]) -> Result<Monitor, SnapshotError> {
    let mut r = Reader::new(snapshot::open(bytes, SNAPSHOT_VERSION)?);
    let window = r.usize("window")?;
    let refit_every = r.usize("refit_every")?;
    let min_scores = r.usize("min_scores")?;
    let max_degree = r.usize("max_degree")?;
    let nan_policy = match r.u8("nan_policy")? {
        0 => NanPolicy::Raise,
        1 => NanPolicy::Omit,
        tag => {
            return Err(SnapshotError::Malformed {
                what: format!("nan_policy tag {tag} is neither 0 (raise) nor 1 (omit)"),
            })
        }
    };
    let method_name = r.short_str("method")?;
    let method = Method::parse(&method_name).map_err(|e| inconsistent(e.to_string()))?;
    let config = MonitorConfig {
        window,
        refit_every,
        min_scores,
        max_degree,
        nan_policy,
        method,
    };
    config.validate().map_err(|e| inconsistent(e.to_string()))?;
    let n_seen = r.u64("n_seen")?;
    let n_flagged = r.u64("n_flagged")?;
    let n_omitted = r.u64("n_omitted")?;
    let n_refits = r.u64("n_refits")?;
    let since_refit = r.usize("since_refit")?;
    let last = match r.u8("refit tag")? {
        0 => None,
        1 => {
            let threshold = r.f64("threshold")?;
            let degree = r.usize("degree")?;
            let n_anomalies = r.usize("n_anomalies")?;
            let at = r.u64("refit time")?;
            let n_scores = r.usize("refit window size")?;
            let n_rows = r.usize("table length")?;
            if n_rows > MAX_DEGREE_LIMIT {
                return Err(inconsistent(format!("{n_rows} table rows")));
            }
            let mut rows = Vec::with_capacity(n_rows);
            for _ in 0..n_rows {
                rows.push(DegreeRow {
                    degree: r.usize("row degree")?,
                    threshold: r.f64("row threshold")?,
                    compactness: r.f64("row compactness")?,
                    n_anomalies: r.usize("row count")?,
                });
            }
            Some(Refit {
                threshold,
                degree: (degree != 0).then_some(degree),
                n_anomalies,
                rows,
                at,
                n_scores,
            })
        }
        tag => {
            return Err(SnapshotError::Malformed {
                what: format!("refit tag {tag} is neither 0 nor 1"),
            })
        }
    };
    let n_history = r.usize("history length")?;
    if n_history > HISTORY_LIMIT {
        return Err(inconsistent(format!(
            "a history of {n_history} refits, more than the {HISTORY_LIMIT} a monitor keeps"
        )));
    }
    let mut history = VecDeque::with_capacity(n_history);
    for _ in 0..n_history {
        let at = r.u64("history n_seen")?;
        let threshold = r.f64("history threshold")?;
        let degree = r.usize("history degree")?;
        history.push_back(HistoryEntry {
            at,
            threshold,
            degree: (degree != 0).then_some(degree),
        });
    }
    let ring = r.f64s("window scores")?;
    let evicted = r.f64s("evicted scores")?;
    r.finish()?;

    // Every invariant the monitor relies on is checked, so no later call can panic
    // or compute from a state that no sequence of updates produces.
    if ring.len() > window {
        return Err(inconsistent(format!(
            "{} scores in a window of {window}",
            ring.len()
        )));
    }
    if ring.iter().chain(&evicted).any(|z| !z.is_finite()) {
        return Err(inconsistent("a non-finite score in the window"));
    }
    let tallied = n_flagged.checked_add(n_omitted);
    if tallied.is_none_or(|t| t > n_seen) || (ring.len() as u64) > n_seen {
        return Err(inconsistent(format!(
            "counters: {n_flagged} flagged and {n_omitted} omitted of {n_seen} seen"
        )));
    }
    if n_seen > MAX_COUNT || n_refits > MAX_COUNT {
        return Err(inconsistent(format!(
            "n_seen = {n_seen} and n_refits = {n_refits}: beyond any stream"
        )));
    }
    let stale = ring.len().saturating_sub(since_refit);
    check_history(&history, last.as_ref(), &config, n_seen, n_refits)?;
    match &last {
        None => {
            if n_refits != 0 || since_refit != ring.len() || ring.len() >= min_scores {
                return Err(inconsistent(format!(
                    "no threshold, yet {n_refits} refits and {} of {min_scores} scores",
                    ring.len()
                )));
            }
        }
        Some(refit) => {
            check_refit(refit, &config, n_seen, n_refits)?;
            if ring.len() < refit.n_scores {
                return Err(inconsistent(format!(
                    "the window shrank from {} to {} scores",
                    refit.n_scores,
                    ring.len()
                )));
            }
            if since_refit >= refit_every {
                return Err(inconsistent(format!(
                    "{since_refit} scores since the last refit, one was due every \
                     {refit_every}"
                )));
            }
            let rebuilt = stale + evicted.len();
            if since_refit < ring.len() && rebuilt != refit.n_scores {
                return Err(inconsistent(format!(
                    "the window at the last refit held {} scores, the snapshot keeps {rebuilt}",
                    refit.n_scores
                )));
            }
        }
    }
    if since_refit >= ring.len() && !evicted.is_empty() {
        return Err(inconsistent(
            "evicted scores kept for a window that is all fresh",
        ));
    }
    let sorted = if since_refit < ring.len() {
        let mut sorted: Vec<f64> = ring[..stale].iter().chain(&evicted).copied().collect();
        sorted.sort_unstable_by(f64::total_cmp);
        sorted
    } else {
        Vec::new()
    };
    Ok(Monitor {
        config,
        ring,
        head: 0,
        sorted,
        evicted,
        since_refit,
        work: RefitBuffers::default(),
        last,
        history,
        n_seen,
        n_flagged,
        n_omitted,
        n_refits,
    })
}

/// The invariants of a stored history: at most one entry per refit, `n_seen`
/// strictly increasing within what the monitor has seen, thresholds that a fit
/// could have produced, and the newest entry equal to the last refit.
fn check_history(
    history: &VecDeque<HistoryEntry>,
    last: Option<&Refit>,
    config: &MonitorConfig,
    n_seen: u64,
    n_refits: u64,
) -> Result<(), SnapshotError> {
    if history.len() as u64 > n_refits {
        return Err(inconsistent(format!(
            "a history of {} refits, but only {n_refits} ran",
            history.len()
        )));
    }
    let mut previous: Option<u64> = None;
    for (i, entry) in history.iter().enumerate() {
        if previous.is_some_and(|p| entry.at <= p) {
            return Err(inconsistent(format!(
                "history entry {i} is at n_seen = {}, not after the entry before it",
                entry.at
            )));
        }
        previous = Some(entry.at);
        if entry.at > n_seen || entry.at < config.min_scores as u64 {
            return Err(inconsistent(format!(
                "history entry {i} is at n_seen = {}, outside {}..={n_seen}",
                entry.at, config.min_scores
            )));
        }
        let paper = config.method == Method::Paper;
        let fault = match entry.degree {
            _ if entry.threshold.is_nan() => Some("the threshold is NaN".to_owned()),
            Some(d) if !paper => Some(format!("degree {d} for {}", config.method)),
            None if paper && entry.threshold != f64::INFINITY => Some(format!(
                "a refit with no split has threshold +inf, not {}",
                entry.threshold
            )),
            Some(d) if d > config.max_degree => Some(format!(
                "degree {d} is above max_degree = {}",
                config.max_degree
            )),
            _ => None,
        };
        if let Some(fault) = fault {
            return Err(inconsistent(format!("history entry {i}: {fault}")));
        }
    }
    let newest_ok = match (history.back(), last) {
        (None, None) => true,
        (Some(entry), Some(refit)) => {
            entry.at == refit.at
                && entry.threshold.to_bits() == refit.threshold.to_bits()
                && entry.degree == refit.degree
        }
        _ => false,
    };
    if !newest_ok {
        return Err(inconsistent(
            "the newest history entry is not the last refit",
        ));
    }
    Ok(())
}

/// The invariants of a stored refit: a table a fit could have produced.
fn check_refit(
    refit: &Refit,
    config: &MonitorConfig,
    n_seen: u64,
    n_refits: u64,
) -> Result<(), SnapshotError> {
    if n_refits == 0 || refit.at > n_seen {
        return Err(inconsistent(format!(
            "a refit at score {} of {n_seen}, with {n_refits} refits",
            refit.at
        )));
    }
    if refit.n_scores < config.min_scores || refit.n_scores > config.window {
        return Err(inconsistent(format!(
            "the last refit saw {} scores, outside {}..={}",
            refit.n_scores, config.min_scores, config.window
        )));
    }
    if config.method == Method::Paper {
        check_paper_refit(refit, config)
    } else {
        check_split_refit(refit, config.method)
    }
}

/// A paper refit: a per-degree table a fit could have produced, and its choice.
fn check_paper_refit(refit: &Refit, config: &MonitorConfig) -> Result<(), SnapshotError> {
    let top = config.max_degree.min(refit.n_scores - 2);
    let degrees_ok = refit.rows.len() == top
        && refit.rows.iter().enumerate().all(|(i, row)| {
            row.degree == i + 1 && row.n_anomalies <= refit.n_scores && !row.threshold.is_nan()
        });
    if !degrees_ok {
        return Err(inconsistent("the per-degree table of the last refit"));
    }
    let chosen_ok = match refit.degree {
        None => refit.threshold == f64::INFINITY && refit.n_anomalies == 0,
        Some(d) => refit.rows.get(d - 1).is_some_and(|row| {
            row.threshold.to_bits() == refit.threshold.to_bits()
                && row.n_anomalies == refit.n_anomalies
        }),
    };
    if !chosen_ok {
        return Err(inconsistent(
            "the chosen degree does not match the threshold",
        ));
    }
    Ok(())
}

/// A split refit: no degree, no table, and a count that matches the threshold
/// (`+inf` exactly when nothing was split off).
fn check_split_refit(refit: &Refit, method: Method) -> Result<(), SnapshotError> {
    if refit.degree.is_some() || !refit.rows.is_empty() {
        return Err(inconsistent(format!(
            "a degree or a per-degree table for {method}"
        )));
    }
    let split = refit.threshold.is_finite();
    let count_ok = if split {
        (1..=refit.n_scores).contains(&refit.n_anomalies)
    } else {
        refit.threshold == f64::INFINITY && refit.n_anomalies == 0
    };
    if !count_ok {
        return Err(inconsistent(format!(
            "{method} split off {} of {} scores at threshold {}",
            refit.n_anomalies, refit.n_scores, refit.threshold
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::fit;

    /// A small deterministic generator (SplitMix64), so tests need no crate.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Mostly small scores, a few large ones, and exact duplicates.
        fn score(&mut self) -> f64 {
            let u = self.uniform();
            if u < 0.03 {
                5.0 + 10.0 * self.uniform()
            } else if u < 0.1 {
                (self.next_u64() % 4) as f64 * 0.25
            } else {
                u
            }
        }
    }

    fn config(window: usize, refit_every: usize, min_scores: usize) -> MonitorConfig {
        MonitorConfig {
            window,
            refit_every,
            min_scores,
            max_degree: 5,
            nan_policy: NanPolicy::Raise,
            method: Method::Paper,
        }
    }

    /// A table as bit patterns, so that NaN compactness compares equal to itself.
    fn row_bits(rows: &[DegreeRow]) -> Vec<(usize, u64, u64, usize)> {
        rows.iter()
            .map(|r| {
                (
                    r.degree,
                    r.threshold.to_bits(),
                    r.compactness.to_bits(),
                    r.n_anomalies,
                )
            })
            .collect()
    }

    /// The threshold equals a from-scratch fit of the window after every refit.
    fn check_against_fit(window: usize, refit_every: usize, min_scores: usize, seed: u64) {
        let mut rng = Rng(seed);
        let mut monitor = Monitor::new(config(window, refit_every, min_scores)).unwrap();
        let mut refits = 0;
        let mut seen = Vec::new();
        for _ in 0..(3 * window + 5 * refit_every) {
            monitor.update(rng.score()).unwrap();
            if monitor.n_refits() > refits {
                refits = monitor.n_refits();
                let direct = fit(&monitor.window_scores(), 5, NanPolicy::Raise).unwrap();
                let last = monitor.last_refit().unwrap();
                assert_eq!(last.threshold.to_bits(), direct.threshold.to_bits());
                assert_eq!(row_bits(&last.rows), row_bits(&direct.rows));
                assert_eq!(monitor.sorted, direct.sorted);
                seen.push((monitor.n_seen(), direct.threshold.to_bits(), direct.degree));
            }
        }
        assert!(refits >= 3);
        assert_eq!(history_bits(&monitor), seen);
    }

    /// The history as comparable tuples (threshold as bits, so +inf compares exactly).
    fn history_bits(monitor: &Monitor) -> Vec<(u64, u64, Option<usize>)> {
        monitor
            .history()
            .iter()
            .map(|e| (e.at, e.threshold.to_bits(), e.degree))
            .collect()
    }

    #[test]
    fn history_keeps_the_latest_refits_and_drops_the_oldest() {
        let mut rng = Rng(12);
        let mut monitor = Monitor::new(config(3, 1, 3)).unwrap();
        let mut seen = Vec::new();
        while seen.len() < HISTORY_LIMIT + 300 {
            monitor.update(rng.score()).unwrap();
            let t = monitor.threshold().unwrap_or(f64::NAN);
            if monitor
                .last_refit()
                .is_some_and(|r| r.at == monitor.n_seen())
            {
                seen.push((
                    monitor.n_seen(),
                    t.to_bits(),
                    monitor.last_refit().unwrap().degree,
                ));
            }
            // The ring never holds more than the limit, at any moment.
            assert!(monitor.history().len() <= HISTORY_LIMIT);
        }
        assert_eq!(monitor.n_refits() as usize, seen.len());
        assert_eq!(history_bits(&monitor), seen[seen.len() - HISTORY_LIMIT..]);
        // Windows of three equal scores find no split: +inf, no degree, recorded too.
        monitor.update_many(&[0.5; 3]).unwrap();
        let newest = *monitor.history().back().unwrap();
        assert_eq!((newest.threshold, newest.degree), (f64::INFINITY, None));
        assert_eq!(monitor.history().len(), HISTORY_LIMIT);
    }

    #[test]
    fn a_repeated_refit_keeps_one_entry() {
        let mut monitor = Monitor::new(config(10, 4, 5)).unwrap();
        monitor.update_many(&[0.1, 0.2, 0.3, 0.2, 5.0]).unwrap();
        assert_eq!(monitor.history().len(), 1);
        let before = monitor.history().clone();
        monitor.refit().unwrap();
        monitor.refit().unwrap();
        assert_eq!(monitor.n_refits(), 3);
        assert_eq!(monitor.history(), &before);
        monitor.update(0.15).unwrap();
        monitor.refit().unwrap();
        let at: Vec<u64> = monitor.history().iter().map(|e| e.at).collect();
        assert_eq!(at, vec![5, 6]);
        assert_eq!(monitor.history()[1].threshold, monitor.threshold().unwrap());
    }

    #[test]
    fn the_history_survives_a_snapshot() {
        let mut rng = Rng(13);
        let mut monitor = Monitor::new(config(4, 1, 3)).unwrap();
        let scores: Vec<f64> = (0..HISTORY_LIMIT + 50).map(|_| rng.score()).collect();
        monitor.update_many(&scores).unwrap();
        assert_eq!(monitor.history().len(), HISTORY_LIMIT);
        let restored = Monitor::from_bytes(&monitor.to_bytes()).unwrap();
        assert_eq!(history_bits(&restored), history_bits(&monitor));
        let fresh = Monitor::new(config(4, 1, 3)).unwrap();
        assert!(Monitor::from_bytes(&fresh.to_bytes())
            .unwrap()
            .history()
            .is_empty());
    }

    #[test]
    fn every_refit_equals_fit_of_the_window() {
        check_against_fit(50, 7, 10, 1);
        check_against_fit(64, 64, 64, 2);
        check_against_fit(30, 45, 3, 3);
        check_against_fit(200, 1, 200, 4);
        check_against_fit(3, 1, 3, 5);
    }

    #[test]
    fn first_threshold_arrives_at_min_scores() {
        let mut monitor = Monitor::new(config(10, 4, 6)).unwrap();
        let flags = monitor.update_many(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(flags, vec![false; 5]);
        assert_eq!(monitor.threshold(), None);
        monitor.update(100.0).unwrap();
        assert_eq!(monitor.n_refits(), 1);
        assert_eq!(monitor.last_refit().unwrap().at, 6);
        // Next refit after four more scores.
        monitor.update_many(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(monitor.n_refits(), 1);
        monitor.update(1.5).unwrap();
        assert_eq!(monitor.n_refits(), 2);
        assert_eq!(monitor.last_refit().unwrap().at, 10);
    }

    #[test]
    fn a_score_is_judged_before_it_enters() {
        // The score that completes min_scores is judged without a threshold.
        let mut monitor = Monitor::new(config(10, 100, 4)).unwrap();
        let flags = monitor.update_many(&[0.0, 0.1, 0.2, 50.0, 50.0]).unwrap();
        let tau = monitor.threshold().unwrap();
        assert!(!flags[3]);
        assert_eq!(flags[4], 50.0 >= tau);
        assert_eq!(monitor.n_flagged(), u64::from(flags[4]));
    }

    #[test]
    fn batches_and_single_updates_agree() {
        let mut rng = Rng(9);
        let scores: Vec<f64> = (0..500).map(|_| rng.score()).collect();
        let mut one = Monitor::new(config(60, 13, 20)).unwrap();
        let singles: Vec<bool> = scores.iter().map(|&z| one.update(z).unwrap()).collect();
        let mut many = Monitor::new(config(60, 13, 20)).unwrap();
        let mut batched = Vec::new();
        for chunk in scores.chunks(37) {
            batched.extend(many.update_many(chunk).unwrap());
        }
        assert_eq!(singles, batched);
        assert_eq!(one.window_scores(), many.window_scores());
        let (a, b) = (one.last_refit().unwrap(), many.last_refit().unwrap());
        assert_eq!((a.threshold, a.at), (b.threshold, b.at));
        assert_eq!(row_bits(&a.rows), row_bits(&b.rows));
        assert_eq!(one.n_flagged(), many.n_flagged());
    }

    #[test]
    fn the_window_is_the_latest_scores_in_order() {
        let mut monitor = Monitor::new(config(5, 2, 3)).unwrap();
        let scores: Vec<f64> = (0..13).map(f64::from).collect();
        monitor.update_many(&scores).unwrap();
        assert_eq!(monitor.window_scores(), vec![8.0, 9.0, 10.0, 11.0, 12.0]);
        assert_eq!(monitor.n_seen(), 13);
    }

    #[test]
    fn raise_refuses_a_batch_without_changing_anything() {
        let mut monitor = Monitor::new(config(10, 3, 3)).unwrap();
        monitor.update_many(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        let before = monitor.to_bytes();
        assert_eq!(
            monitor.update_many(&[1.0, f64::INFINITY, f64::NAN]),
            Err(KernelError::NonFinite {
                count: 2,
                first_index: 1
            })
        );
        assert!(monitor.update(f64::NAN).is_err());
        assert_eq!(monitor.to_bytes(), before);
    }

    #[test]
    fn omit_judges_non_finite_normal_and_keeps_them_out() {
        let mut monitor = Monitor::new(MonitorConfig {
            nan_policy: NanPolicy::Omit,
            ..config(10, 3, 3)
        })
        .unwrap();
        let flags = monitor
            .update_many(&[1.0, f64::NAN, 2.0, f64::INFINITY, 3.0, 4.0])
            .unwrap();
        assert!(!flags[1] && !flags[3]);
        assert_eq!(monitor.window_scores(), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!((monitor.n_seen(), monitor.n_omitted()), (6, 2));
        assert_eq!(monitor.last_refit().unwrap().at, 5);
    }

    #[test]
    fn f32_scores_are_judged_as_their_f64_values() {
        let mut rng = Rng(4);
        let scores: Vec<f32> = (0..300).map(|_| rng.score() as f32).collect();
        let widened: Vec<f64> = scores.iter().map(|&z| f64::from(z)).collect();
        let mut a = Monitor::new(config(100, 10, 50)).unwrap();
        let mut b = Monitor::new(config(100, 10, 50)).unwrap();
        assert_eq!(
            a.update_many(&scores).unwrap(),
            b.update_many(&widened).unwrap()
        );
        assert_eq!(a.to_bytes(), b.to_bytes());
    }

    #[test]
    fn manual_refit_needs_min_scores() {
        let mut monitor = Monitor::new(config(10, 100, 5)).unwrap();
        monitor.update_many(&[1.0, 2.0]).unwrap();
        assert_eq!(
            monitor.refit(),
            Err(KernelError::NotEnoughScores { needed: 5, got: 2 })
        );
        monitor.update_many(&[1.0, 2.0, 8.0, 3.0]).unwrap();
        monitor.refit().unwrap();
        assert_eq!(monitor.since_refit(), 0);
        let direct = fit(&monitor.window_scores(), 5, NanPolicy::Raise).unwrap();
        assert_eq!(monitor.threshold(), Some(direct.threshold));
    }

    #[test]
    fn options_out_of_range_are_named() {
        let bad = [
            (config(2, 1, 3), "window"),
            (config(10, 0, 3), "refit_every"),
            (config(10, 1, 11), "min_scores"),
            (config(10, 1, 2), "min_scores"),
        ];
        for (c, name) in bad {
            match Monitor::new(c) {
                Err(KernelError::OptionOutOfRange { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        let c = MonitorConfig {
            max_degree: 11,
            ..config(10, 1, 3)
        };
        assert!(matches!(
            Monitor::new(c),
            Err(KernelError::InvalidMaxDegree { .. })
        ));
        for method in Method::ALL {
            let c = MonitorConfig {
                method,
                ..config(10, 1, 3)
            };
            assert_eq!(Monitor::new(c).unwrap().config().method, method);
        }
        assert_eq!(
            Method::parse("otsu"),
            Err(KernelError::UnknownMethod { got: "otsu".into() })
        );
    }

    const SPLIT_METHODS: [Method; 4] = [
        Method::TwoSegment,
        Method::Knee,
        Method::LogKnee,
        Method::TailAware,
    ];

    /// A monitor of `method` fed `n` scores, checked against `fit_method` of its
    /// window after every refit: threshold bit for bit, count, no degree, no table.
    fn split_monitor(method: Method, c: MonitorConfig, seed: u64, n: usize) -> Monitor {
        let mut rng = Rng(seed);
        let mut monitor = Monitor::new(MonitorConfig { method, ..c }).unwrap();
        let mut seen = Vec::new();
        for _ in 0..n {
            monitor.update(rng.score()).unwrap();
            if monitor.n_refits() as usize > seen.len() {
                let window = monitor.window_scores();
                let direct = method::fit_method(&window, method, 5, NanPolicy::Raise).unwrap();
                let last = monitor.last_refit().unwrap();
                assert_eq!(last.threshold.to_bits(), direct.threshold().to_bits());
                assert_eq!(last.n_anomalies, direct.n_anomalies(), "{method}");
                assert_eq!((last.degree, last.rows.len()), (None, 0), "{method}");
                seen.push((monitor.n_seen(), direct.threshold().to_bits(), None));
            }
        }
        assert!(seen.len() >= 3, "{method}");
        assert_eq!(history_bits(&monitor), seen, "{method}");
        monitor
    }

    #[test]
    fn split_method_refits_equal_fit_method_of_the_window() {
        for method in SPLIT_METHODS {
            for (window, refit_every, min_scores, seed) in [
                (50, 7, 10, 1),
                (64, 64, 64, 2),
                (30, 45, 3, 3),
                (3, 1, 3, 5),
            ] {
                let monitor = split_monitor(
                    method,
                    config(window, refit_every, min_scores),
                    seed,
                    3 * window + 5 * refit_every,
                );
                let sorted = method::fit_method(&monitor.sorted, method, 5, NanPolicy::Raise);
                let MethodFit::Split(direct) = sorted.unwrap() else {
                    panic!("{method} is a split method");
                };
                assert_eq!(monitor.sorted, direct.sorted);
            }
        }
    }

    #[test]
    fn a_restored_split_monitor_continues_identically() {
        let mut rng = Rng(12);
        let scores: Vec<f64> = (0..600).map(|_| rng.score()).collect();
        for method in SPLIT_METHODS {
            let c = MonitorConfig {
                method,
                ..config(40, 9, 30)
            };
            let mut straight = Monitor::new(c).unwrap();
            let expected = straight.update_many(&scores).unwrap();
            for cut in [0, 29, 30, 31, 77, 500] {
                let mut first = Monitor::new(c).unwrap();
                let mut flags = first.update_many(&scores[..cut]).unwrap();
                let mut second = Monitor::from_bytes(&first.to_bytes()).unwrap();
                assert_eq!(second.config().method, method);
                flags.extend(second.update_many(&scores[cut..]).unwrap());
                assert_eq!(flags, expected, "{method}, cut {cut}");
                assert_eq!(second.to_bytes(), straight.to_bytes(), "{method}");
            }
        }
    }

    #[test]
    fn split_snapshots_with_a_degree_are_refused() {
        let monitor = split_monitor(Method::Knee, config(20, 5, 10), 7, 60);
        let last = monitor.last_refit().unwrap();
        let (at, tau) = (last.at, last.threshold);
        assert_inconsistent(
            &with_history(&monitor, &[(at, tau, 2)]),
            "degree 2 for knee",
        );
        // The last refit ends with n_anomalies, at, n_scores and an empty table
        // (four u64) just before the history.
        let none_split_off = reseal(&monitor.to_bytes(), |p| {
            let count_at = history_offset(&monitor, p) - 4 * 8;
            p[count_at..count_at + 8].copy_from_slice(&0u64.to_le_bytes());
        });
        assert_inconsistent(&none_split_off, "knee split off 0 of 20 scores");
    }

    #[test]
    fn a_restored_monitor_continues_identically() {
        let mut rng = Rng(11);
        let scores: Vec<f64> = (0..2000).map(|_| rng.score()).collect();
        for cut in [0, 1, 15, 29, 30, 31, 77, 500, 1234] {
            for (window, refit_every) in [(40, 9), (40, 100), (40, 40)] {
                let c = config(window, refit_every, 30);
                let mut straight = Monitor::new(c).unwrap();
                let expected = straight.update_many(&scores).unwrap();
                let mut first = Monitor::new(c).unwrap();
                let mut flags = first.update_many(&scores[..cut]).unwrap();
                let mut second = Monitor::from_bytes(&first.to_bytes()).unwrap();
                flags.extend(second.update_many(&scores[cut..]).unwrap());
                assert_eq!(flags, expected, "cut {cut}, window {window}/{refit_every}");
                assert_eq!(second.to_bytes(), straight.to_bytes());
            }
        }
    }

    #[test]
    fn snapshots_refuse_damage() {
        let mut monitor = Monitor::new(config(20, 5, 10)).unwrap();
        let mut rng = Rng(3);
        let scores: Vec<f64> = (0..37).map(|_| rng.score()).collect();
        monitor.update_many(&scores).unwrap();
        let bytes = monitor.to_bytes();
        for len in [0, 5, 19, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(
                Monitor::from_bytes(&bytes[..len]),
                Err(KernelError::Snapshot(SnapshotError::Truncated { .. }))
            ));
        }
        for bit in (0..bytes.len() * 8).step_by(13) {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(Monitor::from_bytes(&flipped).is_err(), "bit {bit}");
        }
    }

    /// Re-seal a payload after editing it, as a hostile writer could.
    fn reseal(bytes: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut payload = snapshot::open(bytes, SNAPSHOT_VERSION).unwrap().to_vec();
        edit(&mut payload);
        let mut sealed = Vec::new();
        sealed.extend_from_slice(&snapshot::MAGIC);
        sealed.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        sealed.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        sealed.extend_from_slice(&payload);
        let crc = snapshot::crc32(&sealed);
        sealed.extend_from_slice(&crc.to_le_bytes());
        sealed
    }

    #[test]
    fn well_sealed_but_impossible_states_are_refused() {
        let mut monitor = Monitor::new(config(20, 5, 10)).unwrap();
        monitor.update_many(&[0.5; 12]).unwrap();
        monitor.update_many(&[0.25, 7.0]).unwrap();
        let bytes = monitor.to_bytes();
        assert!(Monitor::from_bytes(&reseal(&bytes, |_| ())).is_ok());
        // window = 2 (below MIN_SCORES)
        let shrunk = reseal(&bytes, |p| p[..8].copy_from_slice(&2u64.to_le_bytes()));
        assert!(matches!(
            Monitor::from_bytes(&shrunk),
            Err(KernelError::Snapshot(SnapshotError::Inconsistent { .. }))
        ));
        // n_seen (after 4 sizes, a tag and "paper") set to 0.
        let offset = 4 * 8 + 1 + 1 + 5;
        let unseen = reseal(&bytes, |p| {
            p[offset..offset + 8].copy_from_slice(&0u64.to_le_bytes());
        });
        assert!(matches!(
            Monitor::from_bytes(&unseen),
            Err(KernelError::Snapshot(SnapshotError::Inconsistent { .. }))
        ));
        // A NaN in the window (the last value of the ring, before the evicted count).
        let evicted_len = monitor.evicted.len();
        let nan = reseal(&bytes, |p| {
            let at = p.len() - 8 - 8 * evicted_len - 8;
            p[at..at + 8].copy_from_slice(&f64::NAN.to_le_bytes());
        });
        assert!(matches!(
            Monitor::from_bytes(&nan),
            Err(KernelError::Snapshot(SnapshotError::Inconsistent { .. }))
        ));
        let trailing = reseal(&bytes, |p| p.push(0));
        assert!(matches!(
            Monitor::from_bytes(&trailing),
            Err(KernelError::Snapshot(SnapshotError::Malformed { .. }))
        ));
    }

    #[test]
    fn a_restored_threshold_from_another_build_is_replaced_by_a_repeat_refit() {
        // Regression (fuzz target `snapshot`): a snapshot whose last threshold is
        // not this build's fit of the window, refitted at the same n_seen, once
        // tripped a debug assertion in `record`.
        let mut rng = Rng(15);
        let mut monitor = Monitor::new(config(20, 5, 10)).unwrap();
        let scores: Vec<f64> = (0..15).map(|_| rng.score()).collect();
        monitor.update_many(&scores).unwrap();
        assert_eq!(monitor.since_refit(), 0);
        let refit = monitor.last.as_mut().unwrap();
        let degree = refit.degree.unwrap();
        let other = refit.threshold.next_down();
        refit.threshold = other;
        refit.rows[degree - 1].threshold = other;
        monitor.history.back_mut().unwrap().threshold = other;
        let mut restored = Monitor::from_bytes(&monitor.to_bytes()).unwrap();
        assert_eq!(restored.threshold(), Some(other));
        restored.refit().unwrap();
        let direct = fit(&restored.window_scores(), 5, NanPolicy::Raise).unwrap();
        assert_eq!(restored.threshold(), Some(direct.threshold));
        assert_eq!(restored.history().len(), 2);
        let newest = restored.history().back().unwrap();
        assert_eq!((newest.at, newest.threshold), (15, direct.threshold));
    }

    #[test]
    fn counters_stop_at_the_cap_so_that_snapshots_stay_readable() {
        // Regression (fuzz target `snapshot`): a snapshot with n_seen just under
        // the cap was accepted, and a few updates later the monitor's own
        // snapshot was refused.
        let mut rng = Rng(16);
        let mut monitor = Monitor::new(config(20, 5, 10)).unwrap();
        let first: Vec<f64> = (0..12).map(|_| rng.score()).collect();
        monitor.update_many(&first).unwrap();
        let flagged = monitor.n_flagged();
        monitor.n_seen = MAX_COUNT - 2;
        monitor.n_refits = MAX_COUNT;
        let mut restored = Monitor::from_bytes(&monitor.to_bytes()).unwrap();
        let scores: Vec<f64> = (0..40).map(|_| rng.score()).collect();
        restored.update_many(&scores).unwrap();
        restored.refit().unwrap();
        assert_eq!(
            (restored.n_seen(), restored.n_refits()),
            (MAX_COUNT, MAX_COUNT)
        );
        assert!(restored.n_flagged() <= flagged + 2);
        assert_eq!(restored.len(), 20);
        let again = Monitor::from_bytes(&restored.to_bytes()).unwrap();
        assert_eq!(again.to_bytes(), restored.to_bytes());
        // Beyond the cap, a snapshot is refused.
        monitor.n_refits = MAX_COUNT + 1;
        assert!(matches!(
            Monitor::from_bytes(&monitor.to_bytes()),
            Err(KernelError::Snapshot(SnapshotError::Inconsistent { .. }))
        ));
    }

    /// Where the history starts in a payload: before the ring and the evicted run.
    fn history_offset(monitor: &Monitor, payload: &[u8]) -> usize {
        payload.len()
            - (8 + 8 * monitor.len())
            - (8 + 8 * monitor.evicted.len())
            - (8 + HISTORY_BYTES * monitor.history().len())
    }

    /// Replace the history of a snapshot with `entries` (raw `(at, threshold, degree)`).
    fn with_history(monitor: &Monitor, entries: &[(u64, f64, u64)]) -> Vec<u8> {
        reseal(&monitor.to_bytes(), |p| {
            let start = history_offset(monitor, p);
            let end = start + 8 + HISTORY_BYTES * monitor.history().len();
            let mut raw = (entries.len() as u64).to_le_bytes().to_vec();
            for &(at, threshold, degree) in entries {
                raw.extend_from_slice(&at.to_le_bytes());
                raw.extend_from_slice(&threshold.to_le_bytes());
                raw.extend_from_slice(&degree.to_le_bytes());
            }
            p.splice(start..end, raw);
        })
    }

    impl Monitor {
        /// The last refit's degree as a snapshot stores it (0 for none).
        fn degree_bits(&self) -> u64 {
            self.last_refit().and_then(|r| r.degree).unwrap_or(0) as u64
        }
    }

    fn assert_inconsistent(bytes: &[u8], fragment: &str) {
        match Monitor::from_bytes(bytes) {
            Err(KernelError::Snapshot(SnapshotError::Inconsistent { what })) => {
                assert!(what.contains(fragment), "{what:?} lacks {fragment:?}");
            }
            other => panic!("expected an inconsistent state ({fragment}), got {other:?}"),
        }
    }

    #[test]
    fn impossible_histories_are_refused() {
        let mut rng = Rng(14);
        let mut monitor = Monitor::new(config(3, 1, 3)).unwrap();
        let scores: Vec<f64> = (0..HISTORY_LIMIT + 10).map(|_| rng.score()).collect();
        monitor.update_many(&scores).unwrap();
        let raw: Vec<(u64, f64, u64)> = monitor
            .history()
            .iter()
            .map(|e| (e.at, e.threshold, e.degree.unwrap_or(0) as u64))
            .collect();
        // Rewriting the history as it is changes nothing.
        let same = with_history(&monitor, &raw);
        assert_eq!(same, monitor.to_bytes());
        assert!(Monitor::from_bytes(&same).is_ok());

        // One refit more than the limit, each entry valid on its own.
        let mut long = raw.clone();
        long.insert(0, (raw[0].0 - 1, raw[0].1, raw[0].2));
        assert_inconsistent(&with_history(&monitor, &long), "more than the 4096");
        // The count alone, with no entries behind it, is refused before reading.
        let bytes = reseal(&monitor.to_bytes(), |p| {
            let at = history_offset(&monitor, p);
            p[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        });
        assert_inconsistent(&bytes, "more than the 4096");

        let mut repeated = raw.clone();
        repeated[10].0 = repeated[9].0;
        assert_inconsistent(&with_history(&monitor, &repeated), "not after the entry");
        let mut backwards = raw.clone();
        backwards.swap(20, 21);
        assert_inconsistent(&with_history(&monitor, &backwards), "not after the entry");

        let mut nan = raw.clone();
        nan[5].1 = f64::NAN;
        nan[5].2 = 1;
        assert_inconsistent(
            &with_history(&monitor, &nan),
            "entry 5: the threshold is NaN",
        );
        let mut finite_without_degree = raw.clone();
        finite_without_degree[5] = (raw[5].0, 0.5, 0);
        assert_inconsistent(&with_history(&monitor, &finite_without_degree), "no split");
        let mut high_degree = raw.clone();
        high_degree[5].2 = 6;
        assert_inconsistent(
            &with_history(&monitor, &high_degree),
            "above max_degree = 5",
        );

        let mut future = raw.clone();
        let last = future.len() - 1;
        future[last].0 = monitor.n_seen() + 1;
        assert_inconsistent(&with_history(&monitor, &future), "outside");
        let mut early = raw.clone();
        early[0].0 = 2;
        assert_inconsistent(&with_history(&monitor, &early), "outside 3..=");

        // The newest entry must be the last refit; an empty history needs no refit.
        let mut stale = raw.clone();
        stale[last].1 += 1.0;
        assert_inconsistent(&with_history(&monitor, &stale), "not the last refit");
        assert_inconsistent(&with_history(&monitor, &[]), "not the last refit");
        // One refit (two NaN scores delayed it to n_seen = 7), claiming two.
        let mut young = Monitor::new(MonitorConfig {
            nan_policy: NanPolicy::Omit,
            ..config(10, 4, 5)
        })
        .unwrap();
        young
            .update_many(&[f64::NAN, 0.1, f64::NAN, 0.2, 0.3, 0.2, 5.0])
            .unwrap();
        assert_eq!((young.n_refits(), young.n_seen()), (1, 7));
        let (tau, degree) = (young.threshold().unwrap(), young.degree_bits());
        assert_inconsistent(
            &with_history(&young, &[(6, 1.0, 1), (7, tau, degree)]),
            "only 1 ran",
        );
    }

    #[test]
    fn radix_sort_is_the_total_order_sort() {
        let mut rng = Rng(8);
        for n in [0, 1, 5, RADIX_MIN - 1, RADIX_MIN, 1000, 5000] {
            let mut values: Vec<f64> = (0..n)
                .map(|i| match i % 7 {
                    0 => -rng.score(),
                    1 => 0.0,
                    2 => -0.0,
                    3 => f64::MIN_POSITIVE * rng.uniform(),
                    4 => 1e300 * (rng.uniform() - 0.5),
                    _ => rng.score(),
                })
                .collect();
            let mut expected = values.clone();
            expected.sort_unstable_by(f64::total_cmp);
            let mut sorter = Sorter::default();
            let mut out = vec![7.0; 3];
            let (a, b) = values.split_at(n / 3);
            sorter.sort_into(&[a, b], &mut out);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out), bits(&expected), "n = {n}");
            values.reverse();
            sorter.sort_into(&[&values], &mut out);
            assert_eq!(bits(&out), bits(&expected), "n = {n}, reused buffers");
        }
        for x in [-1.5, -0.0, 0.0, 2.0, f64::MAX, f64::MIN] {
            assert_eq!(from_total_key(total_key(x)).to_bits(), x.to_bits());
        }
        // Constant input skips every pass.
        let mut out = Vec::new();
        Sorter::default().sort_into(&[&[0.25; 1000]], &mut out);
        assert_eq!(out, vec![0.25; 1000]);
    }

    #[test]
    fn merge_matches_a_full_sort() {
        let mut rng = Rng(5);
        for _ in 0..50 {
            let mut old: Vec<f64> = (0..40).map(|_| rng.score()).collect();
            old.sort_unstable_by(f64::total_cmp);
            let mut removed: Vec<f64> = old
                .iter()
                .copied()
                .filter(|_| rng.uniform() < 0.3)
                .collect();
            let mut added: Vec<f64> = (0..removed.len() + 3).map(|_| rng.score()).collect();
            added.push(-0.0);
            added.push(0.0);
            removed.sort_unstable_by(f64::total_cmp);
            added.sort_unstable_by(f64::total_cmp);
            let mut expected: Vec<f64> = old.clone();
            for x in &removed {
                let i = expected
                    .iter()
                    .position(|y| y.to_bits() == x.to_bits())
                    .unwrap();
                expected.remove(i);
            }
            expected.extend(&added);
            expected.sort_unstable_by(f64::total_cmp);
            let mut out = vec![1.0; rng.next_u64() as usize % 80];
            merge_window(&old, &removed, &added, &mut out);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out), bits(&expected));
        }
    }
}
