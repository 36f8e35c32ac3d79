//! The streaming monitor against its contract written the obvious way: arbitrary
//! options and score streams (any f64 or f32 bit pattern), in batches, with manual
//! refits and snapshot round trips in between. The monitor must never panic, and
//! must match the naive model exactly: the same flags, the same window, and after
//! every refit the threshold and count of `fit_method` on that window, bit for
//! bit, whichever method the input picks.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use ltrend::method::fit_method;
use ltrend::monitor::{Method, Monitor, MonitorConfig};
use ltrend::sort::NanPolicy;
use ltrend::KernelError;

/// The monitor's contract on `ltrend::method::fit_method`, one score at a time.
struct Naive {
    method: Method,
    window: VecDeque<f64>,
    size: usize,
    refit_every: usize,
    min_scores: usize,
    max_degree: usize,
    threshold: Option<f64>,
    /// Scores of the window at or above the threshold at the last refit.
    n_anomalies: Option<usize>,
    since: usize,
    n_seen: u64,
    n_flagged: u64,
    n_refits: u64,
}

impl Naive {
    fn refit(&mut self) {
        let scores: Vec<f64> = self.window.iter().copied().collect();
        let result = fit_method(&scores, self.method, self.max_degree, NanPolicy::Raise)
            .expect("window fits");
        self.threshold = Some(result.threshold());
        self.n_anomalies = Some(result.n_anomalies());
        self.since = 0;
        self.n_refits += 1;
    }

    fn update(&mut self, z: f64) -> bool {
        self.n_seen += 1;
        if !z.is_finite() {
            return false;
        }
        let flag = self.threshold.is_some_and(|t| z >= t);
        self.n_flagged += u64::from(flag);
        if self.window.len() == self.size {
            self.window.pop_front();
        }
        self.window.push_back(z);
        self.since += 1;
        let due = if self.threshold.is_some() {
            self.refit_every
        } else {
            self.min_scores
        };
        if self.since >= due {
            self.refit();
        }
        flag
    }
}

fn check_state(monitor: &Monitor, naive: &Naive) {
    let window: Vec<u64> = monitor
        .window_scores()
        .iter()
        .map(|z| z.to_bits())
        .collect();
    let expected: Vec<u64> = naive.window.iter().map(|z| z.to_bits()).collect();
    assert_eq!(window, expected, "window");
    assert_eq!(
        monitor.threshold().map(f64::to_bits),
        naive.threshold.map(f64::to_bits)
    );
    assert_eq!(
        monitor.last_refit().map(|r| r.n_anomalies),
        naive.n_anomalies
    );
    assert_eq!(monitor.config().method, naive.method);
    assert_eq!(monitor.n_seen(), naive.n_seen);
    assert_eq!(monitor.n_flagged(), naive.n_flagged);
    assert_eq!(monitor.n_refits(), naive.n_refits);
    assert_eq!(monitor.since_refit(), naive.since);
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let (head, body) = data.split_at(6);
    let window = 3 + usize::from(head[0] % 64);
    let config = MonitorConfig {
        window,
        refit_every: 1 + usize::from(head[1] % 80),
        min_scores: 3 + usize::from(head[2]) % (window - 2),
        max_degree: 1 + usize::from(head[3] % 10),
        nan_policy: if head[4] & 1 == 0 {
            NanPolicy::Raise
        } else {
            NanPolicy::Omit
        },
        // Bits 2.. of head[4] pick the method, so older inputs (0 there) stay paper.
        method: Method::ALL[usize::from(head[4] >> 2) % Method::ALL.len()],
    };
    let narrow = head[4] & 2 != 0;
    let batch = 1 + usize::from(head[5] % 32);
    let mut monitor = Monitor::new(config).expect("options in range");
    let mut naive = Naive {
        method: config.method,
        window: VecDeque::new(),
        size: config.window,
        refit_every: config.refit_every,
        min_scores: config.min_scores,
        max_degree: config.max_degree,
        threshold: None,
        n_anomalies: None,
        since: 0,
        n_seen: 0,
        n_flagged: 0,
        n_refits: 0,
    };
    let wide: Vec<f64> = if narrow {
        body.chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    };
    for (k, chunk) in wide.chunks(batch).enumerate() {
        let before = monitor.to_bytes();
        let outcome = if narrow {
            // Exactly representable: these came from f32 bit patterns.
            let scores: Vec<f32> = chunk.iter().map(|&z| z as f32).collect();
            monitor.update_many(&scores)
        } else {
            monitor.update_many(chunk)
        };
        match outcome {
            Ok(mask) => {
                let expected: Vec<bool> = chunk.iter().map(|&z| naive.update(z)).collect();
                assert_eq!(mask, expected, "flags of batch {k}");
            }
            Err(KernelError::NonFinite { count, first_index }) => {
                assert_eq!(config.nan_policy, NanPolicy::Raise);
                assert_eq!(count, chunk.iter().filter(|z| !z.is_finite()).count());
                assert!(!chunk[first_index].is_finite());
                assert!(chunk[..first_index].iter().all(|z| z.is_finite()));
                assert_eq!(
                    monitor.to_bytes(),
                    before,
                    "a refused batch changed the monitor"
                );
            }
            Err(other) => panic!("update_many: unexpected error {other}"),
        }
        check_state(&monitor, &naive);
        if k % 3 == 2 {
            monitor = Monitor::from_bytes(&monitor.to_bytes()).expect("own snapshot");
            check_state(&monitor, &naive);
        }
        if k % 5 == 4 {
            match monitor.refit() {
                Ok(()) => naive.refit(),
                Err(KernelError::NotEnoughScores { needed, got }) => {
                    assert_eq!((needed, got), (config.min_scores, naive.window.len()));
                    assert!(got < needed);
                }
                Err(other) => panic!("refit: unexpected error {other}"),
            }
            check_state(&monitor, &naive);
        }
    }
});
