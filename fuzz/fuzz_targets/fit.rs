//! Arbitrary bytes as f64 or f32 scores through the whole method: it must never
//! panic, and its result must keep the contract's invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ltrend::sort::{NanPolicy, Score};
use ltrend::threshold::{anomaly_mask, fit};

fn check<T: Score>(scores: &[T], max_degree: usize, policy: NanPolicy) {
    let Ok(result) = fit(scores, max_degree, policy) else {
        return;
    };
    assert!(!result.threshold.is_nan(), "threshold is NaN");
    assert!(result
        .sorted
        .windows(2)
        .all(|w| w[0].to_f64() <= w[1].to_f64()));
    if result.degree.is_none() {
        assert_eq!(result.threshold, f64::INFINITY);
    }
    let mask = anomaly_mask(scores, result.threshold);
    let flagged = mask.iter().filter(|&&m| m).count();
    assert_eq!(flagged, result.n_anomalies, "mask disagrees with the count");
    for row in &result.rows {
        // A_d = {z >= tau_d}: each row's count follows from its candidate.
        let above = result
            .sorted
            .iter()
            .filter(|z| z.to_f64() >= row.threshold)
            .count();
        assert_eq!(above, row.n_anomalies, "degree {}", row.degree);
    }
    match result.degree {
        None => assert_eq!(flagged, 0),
        Some(d) => {
            let row = result.rows[d - 1];
            assert_eq!(row.threshold, result.threshold);
            assert!(row.n_anomalies > 0 && row.n_anomalies < result.sorted.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let max_degree = usize::from(head % 12);
    let policy = if head & 0x80 == 0 {
        NanPolicy::Raise
    } else {
        NanPolicy::Omit
    };
    let wide: Vec<f64> = body
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    check(&wide, max_degree, policy);
    let narrow: Vec<f32> = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
        .collect();
    check(&narrow, max_degree, policy);
});
