#!/usr/bin/env bash
# Fuzz the Rust core for a bounded time per target (default 60 s):
#   bash scripts/fuzz.sh [seconds]
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable
# toolchain accept the sanitizer flags cargo-fuzz passes. Crashes land in
# fuzz/artifacts/<target>/ and should become regression tests.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
for target in $(cargo fuzz list); do
    echo "== fuzzing $target for ${seconds}s"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- \
        -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 2>&1 |
        grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked" || true
done
