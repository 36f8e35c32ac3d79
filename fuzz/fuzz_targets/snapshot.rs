//! Hostile bytes as a monitor snapshot (`Monitor::from_bytes`, the function behind
//! `ltrend.Monitor.from_bytes`). Decoding must refuse them with an error and never
//! panic; whatever it accepts must re-encode to the very same bytes and go on
//! working: updates, a refit that equals `fit_method` of the window (with the
//! monitor's method), another round trip.
//!
//! The first byte picks how the rest is used. Even: the bytes as they are, which
//! exercises the envelope (magic, length, checksum, version). Odd: the bytes as a
//! payload, sealed with the current version and a correct CRC-32, so that the
//! fuzzer reaches the field parser and the state checks behind the checksum
//! (random bytes almost never carry a matching CRC). `scripts/fuzz_seeds.py`
//! writes real snapshots of both kinds as seeds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ltrend::method::fit_method;
use ltrend::monitor::{Monitor, MAX_COUNT, SNAPSHOT_VERSION};
use ltrend::snapshot::Writer;
use ltrend::sort::NanPolicy;

fn sealed(payload: &[u8]) -> Vec<u8> {
    let mut writer = Writer::with_capacity(payload.len());
    for &byte in payload {
        writer.u8(byte);
    }
    writer.seal(SNAPSHOT_VERSION)
}

/// After a refit the threshold is exactly `fit_method` of the window (rust/monitor.rs).
fn assert_threshold_is_fit_of_window(monitor: &Monitor) {
    let window = monitor.window_scores();
    let config = monitor.config();
    let direct = fit_method(&window, config.method, config.max_degree, NanPolicy::Raise)
        .expect("a window of at least min_scores finite scores fits");
    let threshold = monitor.threshold().expect("a refit sets the threshold");
    assert_eq!(threshold.to_bits(), direct.threshold().to_bits());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 0 {
        body.to_vec()
    } else {
        sealed(body)
    };
    let Ok(mut monitor) = Monitor::from_bytes(&bytes) else {
        return;
    };
    assert_eq!(
        monitor.to_bytes(),
        bytes,
        "an accepted snapshot re-encodes differently"
    );

    // Keep using it: scores taken from the snapshot's own bytes (finite or not).
    let scores: Vec<f64> = body
        .chunks_exact(8)
        .take(64)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    let refits = monitor.n_refits();
    let seen = monitor.n_seen();
    match monitor.update_many(&scores) {
        Ok(mask) => {
            assert_eq!(mask.len(), scores.len());
            assert_eq!(
                monitor.n_seen(),
                (seen + scores.len() as u64).min(MAX_COUNT)
            );
            if monitor.n_refits() > refits && monitor.since_refit() == 0 {
                assert_threshold_is_fit_of_window(&monitor);
            }
        }
        Err(_) => {
            assert_eq!(monitor.config().nan_policy, NanPolicy::Raise);
            assert!(scores.iter().any(|z| !z.is_finite()));
            assert_eq!(
                monitor.to_bytes(),
                bytes,
                "a refused batch changed the monitor"
            );
        }
    }
    if monitor.refit().is_ok() {
        assert_threshold_is_fit_of_window(&monitor);
    } else {
        assert!(monitor.len() < monitor.config().min_scores);
    }
    let again = monitor.to_bytes();
    let restored = Monitor::from_bytes(&again).expect("a monitor's own snapshot is accepted");
    assert_eq!(restored.to_bytes(), again);
});
