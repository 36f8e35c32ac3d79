//! The sort transform: a sorted working copy of the finite scores.
//!
//! This is the only full copy of the input the method makes. It keeps the input's
//! element type (f32 stays f32), and every later kernel reads it as f64, so an
//! f32 input gives exactly the result of the same values passed as f64.
//!
//! Performance notes. This is the sort of the Rust API
//! ([`sorted_finite`], used by `threshold::fit`); `ltrend.fit` in Python sorts
//! with NumPy instead, whose AVX-512 quicksort was faster on every size we
//! measured (docs/performance.md has the numbers). Against `std`'s
//! `sort_unstable_by(total_cmp)` this most-significant-digit radix sort on the
//! order-preserving unsigned key of each score (see [`Score::sort_key`]) is
//! 1.5-1.8x faster from 1e4 scores up:
//!
//! - The first pass over the input counts the non-finite scores, finds the
//!   smallest and largest key and counts the top 16 key bits. Float keys are far
//!   from uniform (each binade holds as many keys as any other), so the top
//!   level merges those fine bins into buckets of about equal size.
//! - The top-level distribution reads the input and writes the output: the copy
//!   and the first radix pass are one pass, and no scratch array the size of the
//!   input is needed. Peak memory is the input, the output, and per thread a
//!   scratch array the size of one top-level bucket (at most `SCRATCH_FRACTION`
//!   of the input; larger buckets are partitioned in place instead).
//! - Each bucket is then sorted on its own: one radix pass with about one bucket
//!   per score from its own key range, recursion on the buckets still long, and
//!   one insertion sort over the whole bucket for the rest. Equal keys end a
//!   bucket at once, so heavy ties cost nothing extra.
//! - Above [`PARALLEL_MIN`] scores the scan and the distribution run on one chunk
//!   of the input per thread, and the buckets are sorted by rayon's
//!   work-stealing pool. Below it everything runs on the calling thread, so that
//!   concurrent fits of small arrays from several Python threads scale.

use std::cmp::Ordering;

use rayon::prelude::*;

use crate::error::KernelError;

/// A real score type the kernels accept: f64, or f32 widened exactly to f64 on read.
pub trait Score: Copy + Send + Sync + 'static {
    /// The value 0.0 (used to allocate zeroed buffers without a pass over them).
    const ZERO: Self;
    /// The value as f64 (exact for f32).
    fn to_f64(self) -> f64;
    /// False for NaN and for ±infinity.
    fn is_finite_score(self) -> bool;
    /// IEEE total order; on finite values it is the numeric order with -0.0 < +0.0.
    fn total_order(&self, other: &Self) -> Ordering;
    /// How many low bits of [`Score::sort_key`] are used (64 for f64, 32 for f32).
    const KEY_BITS: u32 = 64;
    /// An unsigned key in the IEEE total order: `a.total_order(&b)` is
    /// `a.sort_key().cmp(&b.sort_key())`.
    #[inline]
    fn sort_key(self) -> u64 {
        f64_sort_key(self.to_f64())
    }
}

/// The order-preserving key of an f64: flip the sign bit of positives, every bit of
/// negatives.
///
/// ```text
/// key(x) = bits(x) ^ 0x8000_0000_0000_0000     if sign(x) = +
///          !bits(x)                            if sign(x) = -
/// ```
///
/// Unsigned comparison of keys is the IEEE total order (-0.0 before +0.0).
///
/// # Examples
/// ```
/// use ltrend::sort::f64_sort_key;
/// assert!(f64_sort_key(-1.0) < f64_sort_key(-0.0));
/// assert!(f64_sort_key(-0.0) < f64_sort_key(0.0));
/// assert!(f64_sort_key(0.0) < f64_sort_key(f64::MIN_POSITIVE / 2.0));
/// ```
#[inline]
pub fn f64_sort_key(x: f64) -> u64 {
    let bits = x.to_bits();
    let mask = ((bits as i64 >> 63) as u64) | (1 << 63);
    bits ^ mask
}

/// The order-preserving key of an f32 (as [`f64_sort_key`], on 32 bits).
///
/// # Examples
/// ```
/// use ltrend::sort::f32_sort_key;
/// assert!(f32_sort_key(-0.0) < f32_sort_key(0.0));
/// assert!(f32_sort_key(f32::MAX) < f32_sort_key(f32::INFINITY));
/// ```
#[inline]
pub fn f32_sort_key(x: f32) -> u32 {
    let bits = x.to_bits();
    let mask = ((bits as i32 >> 31) as u32) | (1 << 31);
    bits ^ mask
}

impl Score for f64 {
    const ZERO: f64 = 0.0;
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
    #[inline]
    fn sort_key(self) -> u64 {
        f64_sort_key(self)
    }
}

impl Score for f32 {
    const ZERO: f32 = 0.0;
    const KEY_BITS: u32 = 32;
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
    #[inline]
    fn sort_key(self) -> u64 {
        u64::from(f32_sort_key(self))
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

/// Scores from which the sort and the other passes split the work over rayon's
/// threads; below it the thread hand-off costs more than it saves, and a fit
/// stays on its caller's thread (measured in `benches/perf_targets.py`).
pub const PARALLEL_MIN: usize = 1 << 17;

/// Segments at or below this length are finished by insertion sort.
const INSERTION_MAX: usize = 16;

/// Most digit bits per radix pass inside a bucket: 2^16 counters (512 KiB) stay
/// in L2 and cover the largest bucket sorted through scratch at 1e7 scores.
const MAX_RADIX_BITS: u32 = 16;

/// Fewest digit bits per radix pass; below this a pass barely splits.
const MIN_RADIX_BITS: u32 = 3;

/// Digit bits of an in-place partition: its swaps jump between buckets, so few
/// enough that every bucket's next slot stays in cache.
const IN_PLACE_BITS: u32 = 11;

/// A top-level bucket longer than `len / SCRATCH_FRACTION` is partitioned in place
/// rather than through a scratch array, which bounds the scratch memory per
/// thread to 1/64 of the input (the 1e8-score memory target allows ~7 %).
const SCRATCH_FRACTION: usize = 64;

/// The scratch array may always hold this many scores (512 KiB of f64), whatever
/// the input length: a bucket this small sorts in L2.
const SCRATCH_FLOOR: usize = 1 << 16;

/// Count the non-finite scores and find the first one, in one pass.
///
/// Returns `(count, index of the first)`; the index is `None` when all are finite.
pub fn count_non_finite<T: Score>(scores: &[T]) -> (usize, Option<usize>) {
    let scan = scan_chunk(scores, 0, false);
    (scan.non_finite, scan.first_non_finite)
}

/// The finite stretch `lo..hi` of scores sorted by NumPy (`-inf` first, then the
/// finite scores, then `+inf` and NaN), found by binary search.
///
/// # Examples
/// ```
/// use ltrend::sort::finite_bounds;
/// let sorted = [f64::NEG_INFINITY, -1.0, 0.0, 2.0, f64::INFINITY, f64::NAN];
/// assert_eq!(finite_bounds(&sorted), (1, 4));
/// assert_eq!(finite_bounds(&[1.0f32, 2.0]), (0, 2));
/// ```
pub fn finite_bounds<T: Score>(sorted: &[T]) -> (usize, usize) {
    let lo = sorted.partition_point(|z| z.to_f64() == f64::NEG_INFINITY);
    let hi = lo + sorted[lo..].partition_point(|z| z.is_finite_score());
    (lo, hi)
}

/// What one read of the input learns: the non-finite scores, the key range, and
/// (for long inputs) a histogram of the top [`FINE_BITS`] bits of the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scan {
    non_finite: usize,
    first_non_finite: Option<usize>,
    /// Smallest and largest key of the finite scores (`u64::MAX`, 0 when none).
    min_key: u64,
    max_key: u64,
    /// Counts of the finite scores by `key >> (KEY_BITS - FINE_BITS)`; empty when
    /// the input is too short for the top-level split.
    top_bits: Vec<u32>,
}

/// One chunk of the scan; `offset` is the chunk's position in the whole input.
fn scan_chunk<T: Score>(chunk: &[T], offset: usize, with_histogram: bool) -> Scan {
    let (mut non_finite, mut min_key, mut max_key) = (0usize, u64::MAX, 0u64);
    let mut top_bits = Vec::new();
    if with_histogram {
        // The same pass also counts the top bits, which saves a read of the input
        // whenever the scores spread over many binades (the usual case).
        let shift = T::KEY_BITS - FINE_BITS;
        top_bits = vec![0u32; 1 << FINE_BITS];
        for &z in chunk {
            let finite = z.is_finite_score();
            let key = z.sort_key();
            non_finite += usize::from(!finite);
            min_key = min_key.min(if finite { key } else { u64::MAX });
            max_key = max_key.max(if finite { key } else { 0 });
            if let Some(count) = top_bits.get_mut((key >> shift) as usize) {
                *count += u32::from(finite);
            }
        }
    } else {
        // Branch-free so that the loop vectorises.
        for &z in chunk {
            let finite = z.is_finite_score();
            let key = z.sort_key();
            non_finite += usize::from(!finite);
            min_key = min_key.min(if finite { key } else { u64::MAX });
            max_key = max_key.max(if finite { key } else { 0 });
        }
    }
    // The first index is looked for only when there is one.
    let first_non_finite = if non_finite > 0 {
        chunk
            .iter()
            .position(|z| !z.is_finite_score())
            .map(|i| i + offset)
    } else {
        None
    };
    Scan {
        non_finite,
        first_non_finite,
        min_key,
        max_key,
        top_bits,
    }
}

/// The longest chunk: its counters are u32.
const CHUNK_MAX: usize = 1 << 31;

/// The chunks the input is cut into: one per thread above [`PARALLEL_MIN`], else one.
fn chunk_len(n: usize) -> usize {
    let len = if n < PARALLEL_MIN {
        n
    } else {
        n.div_ceil(rayon::current_num_threads().max(1))
    };
    len.clamp(1, CHUNK_MAX)
}

/// The scan of each chunk of `scores` (see [`chunk_len`]), in order.
fn scan_chunks<T: Score>(scores: &[T]) -> Vec<Scan> {
    let len = chunk_len(scores.len());
    let with_histogram = scores.len() >= TOP_LEVEL_MIN;
    if len >= scores.len() {
        return vec![scan_chunk(scores, 0, with_histogram)];
    }
    scores
        .par_chunks(len)
        .enumerate()
        .map(|(i, chunk)| scan_chunk(chunk, i * len, with_histogram))
        .collect()
}

/// The scan of the whole input, from those of its chunks (histograms left out).
fn summary(scans: &[Scan]) -> Scan {
    let empty = Scan {
        non_finite: 0,
        first_non_finite: None,
        min_key: u64::MAX,
        max_key: 0,
        top_bits: Vec::new(),
    };
    scans.iter().fold(empty, |all, chunk| Scan {
        non_finite: all.non_finite + chunk.non_finite,
        first_non_finite: all.first_non_finite.or(chunk.first_non_finite),
        min_key: all.min_key.min(chunk.min_key),
        max_key: all.max_key.max(chunk.max_key),
        top_bits: Vec::new(),
    })
}

/// How one radix pass turns a key into a bucket index.
///
/// ```text
/// digit(key) = (key - min) >> shift,   shift chosen so that digit(max) < 2^bits
/// ```
#[derive(Debug, Clone, Copy)]
struct Digits {
    min: u64,
    shift: u32,
    buckets: usize,
}

impl Digits {
    /// Digits that cover the keys `min..=max` with at most `bits` bits; `None` when
    /// the range holds one key (nothing to sort).
    fn covering(min: u64, max: u64, bits: u32) -> Option<Digits> {
        if max <= min {
            return None;
        }
        let span_bits = u64::BITS - (max - min).leading_zeros();
        let shift = span_bits.saturating_sub(bits);
        let buckets = usize::try_from(((max - min) >> shift) + 1).unwrap_or(1 << bits);
        Some(Digits {
            min,
            shift,
            buckets,
        })
    }

    /// Digits for a segment, from its own key range.
    fn of_segment<T: Score>(segment: &[T], bits: u32) -> Option<Digits> {
        let (mut min, mut max) = (u64::MAX, 0u64);
        for &z in segment {
            let key = z.sort_key();
            min = min.min(key);
            max = max.max(key);
        }
        Digits::covering(min, max, bits)
    }

    #[inline]
    fn of<T: Score>(&self, z: T) -> usize {
        ((z.sort_key().wrapping_sub(self.min)) >> self.shift) as usize
    }

    fn histogram<T: Score>(&self, segment: &[T]) -> Vec<usize> {
        let mut counts = vec![0usize; self.buckets];
        for &z in segment {
            if let Some(count) = counts.get_mut(self.of(z)) {
                *count += 1;
            }
        }
        counts
    }
}

/// Digit bits for a segment of `len` scores: about one bucket per score, so that
/// most buckets hold 0-2 scores, within `MIN_RADIX_BITS..=MAX_RADIX_BITS`.
fn radix_bits(len: usize) -> u32 {
    let log2 = usize::BITS - len.leading_zeros();
    (log2 + 1).clamp(MIN_RADIX_BITS, MAX_RADIX_BITS)
}

/// Cut `slice` into consecutive pieces of the given lengths (which must sum to at
/// most its length).
fn split_by_counts<'a, T>(mut slice: &'a mut [T], counts: &[usize]) -> Vec<&'a mut [T]> {
    let mut pieces = Vec::with_capacity(counts.len());
    for &count in counts {
        let at = count.min(slice.len());
        let (piece, rest) = std::mem::take(&mut slice).split_at_mut(at);
        pieces.push(piece);
        slice = rest;
    }
    pieces
}

/// Sort a short segment in place by key.
fn insertion_sort<T: Score>(v: &mut [T]) {
    for i in 1..v.len() {
        let z = v[i];
        let key = z.sort_key();
        let mut j = i;
        while j > 0 && v[j - 1].sort_key() > key {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = z;
    }
}

/// Sort `v` in place, with `scratch` (same length) as working space.
///
/// One radix pass with about one bucket per score moves every score to within a
/// few places of its rank; buckets that are still long are sorted the same way
/// (with the roles of the two arrays swapped), and one insertion sort over the
/// whole segment then finishes the short ones. Equal keys end the recursion.
fn sort_segment<T: Score>(v: &mut [T], scratch: &mut [T]) {
    if v.len() <= INSERTION_MAX {
        insertion_sort(v);
        return;
    }
    let Some(digits) = Digits::of_segment(v, radix_bits(v.len())) else {
        return;
    };
    let mut offsets = digits.histogram(v);
    let mut start = 0;
    for offset in offsets.iter_mut() {
        let count = *offset;
        *offset = start;
        start += count;
    }
    for &z in v.iter() {
        if let Some(offset) = offsets.get_mut(digits.of(z)) {
            if let Some(slot) = scratch.get_mut(*offset) {
                *slot = z;
            }
            *offset += 1;
        }
    }
    // offsets[d] is now the end of bucket d.
    let mut start = 0;
    for &end in &offsets {
        if end - start > INSERTION_MAX {
            sort_segment(&mut scratch[start..end], &mut v[start..end]);
        }
        start = end;
    }
    v.copy_from_slice(scratch);
    insertion_sort(v);
}

/// Partition `v` in place by digit (American flag sort: every score is swapped
/// straight into its bucket's next free slot).
fn partition_in_place<T: Score>(v: &mut [T], digits: &Digits, counts: &[usize]) {
    let mut heads = Vec::with_capacity(counts.len());
    let mut ends = Vec::with_capacity(counts.len());
    let mut start = 0;
    for &count in counts {
        heads.push(start);
        start += count;
        ends.push(start);
    }
    for bucket in 0..counts.len() {
        while heads[bucket] < ends[bucket] {
            let mut z = v[heads[bucket]];
            let mut d = digits.of(z);
            while d != bucket {
                std::mem::swap(&mut z, &mut v[heads[d]]);
                heads[d] += 1;
                d = digits.of(z);
            }
            v[heads[bucket]] = z;
            heads[bucket] += 1;
        }
    }
}

/// Sort one bucket in place: through `scratch` when it is at most `scratch_max`
/// long, else by an in-place partition and recursion.
fn sort_bucket<T: Score>(bucket: &mut [T], scratch: &mut Vec<T>, scratch_max: usize) {
    if bucket.len() <= INSERTION_MAX {
        insertion_sort(bucket);
    } else if bucket.len() <= scratch_max {
        if scratch.len() < bucket.len() {
            scratch.resize(bucket.len(), T::ZERO);
        }
        sort_segment(bucket, &mut scratch[..bucket.len()]);
    } else if let Some(digits) = Digits::of_segment(bucket, IN_PLACE_BITS) {
        let counts = digits.histogram(bucket);
        partition_in_place(bucket, &digits, &counts);
        for part in split_by_counts(bucket, &counts) {
            sort_bucket(part, scratch, scratch_max);
        }
    }
}

/// The top-level split: fine bins of the key range, merged into buckets of about
/// equal size.
///
/// Float keys are far from uniform (each binade holds as many keys as any other,
/// whatever its share of the scores), so equal-width digits would leave a few
/// huge buckets; counting fine bins first and merging neighbours until a bucket
/// holds about `n / TOP_BUCKETS` scores keeps every bucket near that size
/// unless one fine bin alone is larger.
struct TopLevel {
    bins: Digits,
    /// `bucket_of_bin[bin]`: the bucket of a fine bin (buckets ascend with bins).
    bucket_of_bin: Vec<u16>,
    buckets: usize,
}

/// Fine bins of the top-level split: 2^16, so a bin is 1/32 of a binade even when
/// the scores span both signs and every exponent, and its table of buckets
/// (128 KiB) stays in L2.
const FINE_BITS: u32 = 16;

/// Buckets the top level aims for: small enough that each is sorted in L1/L2 at
/// 1e7 scores, few enough that the distribution's write streams stay in the TLB.
const TOP_BUCKETS: usize = 2048;

/// Occupied top-bit bins above which the scan's histogram is fine enough for the
/// top level (1/16 of the range a full 2^16 would give).
const SPREAD_BINS: u64 = 1 << 12;

/// Below this many finite scores the copy is sorted directly (the fine histogram
/// would cost more than it saves).
const TOP_LEVEL_MIN: usize = 1 << 16;

impl TopLevel {
    fn plan(bins: Digits, fine: &[usize], bucket_len: usize) -> TopLevel {
        let target = bucket_len.max(1);
        let mut bucket_of_bin = Vec::with_capacity(fine.len());
        let (mut bucket, mut filled) = (0u16, 0usize);
        for &count in fine {
            if filled > 0 && filled + count > target {
                bucket += 1;
                filled = 0;
            }
            filled += count;
            bucket_of_bin.push(bucket);
        }
        TopLevel {
            bins,
            bucket_of_bin,
            buckets: usize::from(bucket) + 1,
        }
    }

    #[inline]
    fn of<T: Score>(&self, z: T) -> usize {
        self.bucket_of_bin
            .get(self.bins.of(z))
            .map_or(0, |&b| usize::from(b))
    }

    /// Per-bucket counts from fine-bin counts.
    fn bucket_counts(&self, fine: &[usize]) -> Vec<usize> {
        let mut counts = vec![0usize; self.buckets];
        for (&bucket, &count) in self.bucket_of_bin.iter().zip(fine) {
            counts[usize::from(bucket)] += count;
        }
        counts
    }

    /// Write each finite score of `source` to the front of its bucket's cursor.
    fn scatter<T: Score>(&self, source: &[T], cursors: &mut [&mut [T]], skip_non_finite: bool) {
        for &z in source {
            if skip_non_finite && !z.is_finite_score() {
                continue;
            }
            if let Some(cursor) = cursors.get_mut(self.of(z)) {
                if let Some((slot, rest)) = std::mem::take(cursor).split_first_mut() {
                    *slot = z;
                    *cursor = rest;
                }
            }
        }
    }
}

/// The finite scores of `scores` sorted into a new vector, given the scans of its
/// chunks.
fn radix_sorted_copy<T: Score>(scores: &[T], scans: &[Scan]) -> Vec<T> {
    let all = summary(scans);
    let n_finite = scores.len() - all.non_finite;
    let Some((mut sorted, totals)) = distribute(scores, scans, &all, n_finite / TOP_BUCKETS) else {
        let mut sorted = finite_copy(scores, n_finite);
        sort_finite_in_place(&mut sorted);
        return sorted;
    };
    let scratch_max = SCRATCH_FLOOR.max(n_finite / SCRATCH_FRACTION);
    let buckets = split_by_counts(&mut sorted, &totals);
    if scans.len() > 1 {
        buckets
            .into_par_iter()
            .for_each_init(Vec::new, |scratch, bucket| {
                sort_bucket(bucket, scratch, scratch_max)
            });
    } else {
        let mut scratch = Vec::new();
        for bucket in buckets {
            sort_bucket(bucket, &mut scratch, scratch_max);
        }
    }
    sorted
}

/// The finite scores of `scores`, in input order, in a new vector of `n_finite`.
fn finite_copy<T: Score>(scores: &[T], n_finite: usize) -> Vec<T> {
    if n_finite == scores.len() {
        return scores.to_vec();
    }
    let mut copy = Vec::with_capacity(n_finite);
    copy.extend(scores.iter().copied().filter(|z| z.is_finite_score()));
    copy
}

/// The finite scores of `scores` distributed into a new vector by key, in buckets
/// of about `bucket_len` scores that ascend from one to the next (each unsorted);
/// returns the vector and the bucket lengths.
///
/// `None` below [`TOP_LEVEL_MIN`] finite scores or with one distinct key.
fn distribute<T: Score>(
    scores: &[T],
    scans: &[Scan],
    all: &Scan,
    bucket_len: usize,
) -> Option<(Vec<T>, Vec<usize>)> {
    let n_finite = scores.len() - all.non_finite;
    let skip = all.non_finite > 0;
    let range = Digits::covering(all.min_key, all.max_key, FINE_BITS)
        .filter(|_| n_finite >= TOP_LEVEL_MIN)?;
    let chunks: Vec<&[T]> = scores.chunks(chunk_len(scores.len())).collect();
    let parallel = chunks.len() > 1;
    // Fine bins: the top key bits counted by the scan when the scores spread over
    // enough of them, else bins fitted to the key range (one more read).
    let shift = T::KEY_BITS - FINE_BITS;
    let (low, high) = (all.min_key >> shift, all.max_key >> shift);
    let (bins, histograms): (Digits, Vec<Vec<usize>>) = if high - low >= SPREAD_BINS {
        let bins = Digits {
            min: low << shift,
            shift,
            buckets: (high - low + 1) as usize,
        };
        let histograms = scans
            .iter()
            .map(|scan| {
                scan.top_bits[low as usize..=high as usize]
                    .iter()
                    .map(|&c| c as usize)
                    .collect()
            })
            .collect();
        (bins, histograms)
    } else if parallel {
        let histograms = chunks
            .par_iter()
            .map(|chunk| finite_histogram(chunk, &range, skip))
            .collect();
        (range, histograms)
    } else {
        let histograms = chunks
            .iter()
            .map(|chunk| finite_histogram(chunk, &range, skip))
            .collect();
        (range, histograms)
    };
    let mut fine = vec![0usize; bins.buckets];
    for histogram in &histograms {
        for (total, &count) in fine.iter_mut().zip(histogram) {
            *total += count;
        }
    }
    let top = TopLevel::plan(bins, &fine, bucket_len);
    // Chunk c writes bucket b's scores after those of the chunks before it, so the
    // writes of the chunks are disjoint.
    let chunk_counts: Vec<Vec<usize>> = histograms.iter().map(|h| top.bucket_counts(h)).collect();
    let mut piece_lengths = Vec::with_capacity(top.buckets * chunks.len());
    let mut totals = vec![0usize; top.buckets];
    for (bucket, total) in totals.iter_mut().enumerate() {
        for counts in &chunk_counts {
            piece_lengths.push(counts[bucket]);
            *total += counts[bucket];
        }
    }
    // Zeroed memory comes from the allocator without a pass over it.
    let mut values = vec![T::ZERO; n_finite];
    let mut cursors: Vec<Vec<&mut [T]>> = chunks.iter().map(|_| Vec::new()).collect();
    for (i, piece) in split_by_counts(&mut values, &piece_lengths)
        .into_iter()
        .enumerate()
    {
        cursors[i % chunks.len()].push(piece);
    }
    if parallel {
        chunks
            .par_iter()
            .zip(cursors.par_iter_mut())
            .for_each(|(chunk, cursors)| top.scatter(chunk, cursors, skip));
    } else {
        for (chunk, cursors) in chunks.iter().zip(cursors.iter_mut()) {
            top.scatter(chunk, cursors, skip);
        }
    }
    Some((values, totals))
}

fn finite_histogram<T: Score>(scores: &[T], digits: &Digits, skip_non_finite: bool) -> Vec<usize> {
    if !skip_non_finite {
        return digits.histogram(scores);
    }
    let mut counts = vec![0usize; digits.buckets];
    for &z in scores.iter().filter(|z| z.is_finite_score()) {
        if let Some(count) = counts.get_mut(digits.of(z)) {
            *count += 1;
        }
    }
    counts
}

/// Sort finite scores in place (ascending, -0.0 before +0.0).
///
/// The radix sort of [`sorted_finite`], on a slice the caller owns; it uses a
/// scratch array of up to the slice's length.
///
/// # Examples
/// ```
/// use ltrend::sort::sort_finite_in_place;
/// let mut v: Vec<f64> = vec![3.0, -0.0, 1e-310, 0.0, -2.5];
/// sort_finite_in_place(&mut v);
/// assert_eq!(v, [-2.5, -0.0, 0.0, 1e-310, 3.0]);
/// assert!(v[1].is_sign_negative() && v[2].is_sign_positive());
/// ```
pub fn sort_finite_in_place<T: Score>(values: &mut [T]) {
    let mut scratch = Vec::new();
    sort_bucket(values, &mut scratch, SCRATCH_FLOOR.max(values.len()));
}

/// Copy the finite scores and sort the copy ascending.
///
/// ```text
/// s = sort(z[isfinite(z)])
/// ```
///
/// Algorithm: a most-significant-digit radix sort on [`Score::sort_key`], whose
/// first pass distributes the input straight into the output (see the module notes).
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
    let scans = scan_chunks(scores);
    let all = summary(&scans);
    if let (NanPolicy::Raise, Some(first_index)) = (policy, all.first_non_finite) {
        return Err(KernelError::NonFinite {
            count: all.non_finite,
            first_index,
        });
    }
    Ok(SortedScores {
        values: radix_sorted_copy(scores, &scans),
        n_omitted: all.non_finite,
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

    /// A small xorshift generator, so the property tests need no extra crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Scores of many shapes: random bits (every exponent, subnormals, both zeros,
    /// NaN and infinities), a few distinct values, a cluster at a huge offset.
    fn shaped(rng: &mut Rng, n: usize, shape: u64) -> Vec<f64> {
        let palette = [
            0.0,
            -0.0,
            f64::MIN_POSITIVE / 4.0,
            -f64::MIN_POSITIVE / 8.0,
            f64::MAX,
            f64::MIN,
            1.0,
            -1.0,
            1e9,
        ];
        (0..n)
            .map(|_| match shape {
                0 => f64::from_bits(rng.next()),
                1 => palette[rng.below(palette.len() as u64) as usize],
                2 => 1e9 + (rng.below(1000) as f64) * 1e-6,
                3 => f64::from(rng.below(4) as u8),
                _ => (rng.below(1 << 20) as f64 - 5e5) * 1e-3,
            })
            .collect()
    }

    fn std_sorted<T: Score>(scores: &[T]) -> Vec<T> {
        let mut expected: Vec<T> = scores
            .iter()
            .copied()
            .filter(|z| z.is_finite_score())
            .collect();
        expected.sort_unstable_by(T::total_order);
        expected
    }

    fn bits64(v: &[f64]) -> Vec<u64> {
        v.iter().map(|z| z.to_bits()).collect()
    }

    #[test]
    fn keys_follow_the_total_order() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let (a, b) = (f64::from_bits(rng.next()), f64::from_bits(rng.next()));
            assert_eq!(a.total_cmp(&b), a.sort_key().cmp(&b.sort_key()));
            let (a, b) = (
                f32::from_bits(rng.next() as u32),
                f32::from_bits(rng.next() as u32),
            );
            assert_eq!(a.total_cmp(&b), a.sort_key().cmp(&b.sort_key()));
        }
    }

    #[test]
    fn radix_sort_matches_std_sort_bit_for_bit() {
        let mut rng = Rng(12345);
        let sizes = [3usize, 17, 25, 100, 1000, 5000, 70_000];
        for &n in &sizes {
            for shape in 0..5 {
                let scores = shaped(&mut rng, n, shape);
                let omitted = sorted_finite(&scores, NanPolicy::Omit).unwrap();
                assert_eq!(
                    bits64(&omitted.values),
                    bits64(&std_sorted(&scores)),
                    "n {n} shape {shape}"
                );
                let wide: Vec<f32> = scores.iter().map(|&z| z as f32).collect();
                let narrow = sorted_finite(&wide, NanPolicy::Omit).unwrap();
                let expected: Vec<u32> = std_sorted(&wide).iter().map(|z| z.to_bits()).collect();
                let got: Vec<u32> = narrow.values.iter().map(|z| z.to_bits()).collect();
                assert_eq!(got, expected, "f32 n {n} shape {shape}");
            }
        }
    }

    #[test]
    fn parallel_path_and_in_place_buckets_match_std_sort() {
        // Above PARALLEL_MIN, with a cluster that holds most scores: its top-level
        // bucket exceeds the scratch limit and is partitioned in place.
        let mut rng = Rng(777);
        let n = PARALLEL_MIN * 3 + 11;
        let mut scores: Vec<f64> = (0..n)
            .map(|i| {
                if i % 97 == 0 {
                    1e300 * (rng.below(100) as f64)
                } else {
                    (rng.next() >> 11) as f64 * 1e-9
                }
            })
            .collect();
        scores[5] = f64::NAN;
        scores[n - 1] = -0.0;
        let got = sorted_finite(&scores, NanPolicy::Omit).unwrap();
        assert_eq!(got.n_omitted, 1);
        assert_eq!(bits64(&got.values), bits64(&std_sorted(&scores)));
        let random = shaped(&mut rng, n, 0);
        let got = sorted_finite(&random, NanPolicy::Omit).unwrap();
        assert_eq!(bits64(&got.values), bits64(&std_sorted(&random)));
    }

    #[test]
    fn in_place_sort_of_ties_and_subnormals() {
        let mut rng = Rng(4242);
        for shape in 0..5 {
            let mut v: Vec<f64> = shaped(&mut rng, 3000, shape)
                .into_iter()
                .filter(|z| z.is_finite())
                .collect();
            let expected = std_sorted(&v);
            sort_finite_in_place(&mut v);
            assert_eq!(bits64(&v), bits64(&expected));
        }
    }
}
