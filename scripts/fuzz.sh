#!/usr/bin/env bash
# Fuzz the Rust core for a bounded time per target (default 120 s) and print one
# line per target with the executions and the time (the figures quoted in
# docs/reliability.md):
#   bash scripts/fuzz.sh [seconds] [target ...]      (all targets by default)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP lets the stable
# toolchain accept the sanitizer flags cargo-fuzz passes. Builds use cargo-fuzz's
# default: release with debug assertions, overflow checks and AddressSanitizer.
# Seeds come from scripts/fuzz_seeds.py when `ltrend` is importable. A crash
# lands in fuzz/artifacts/<target>/ and should become a regression test; the
# script then exits with status 1.
#
# Limits per input, so that a hang or a runaway allocation is a finding:
# 10 s of run time, one allocation of at most 64 MB, 1 GB resident in all
# (every input is at most 8 KiB, so no legitimate allocation comes near).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-120}"
shift $(($# > 0 ? 1 : 0))
cd "$root/fuzz"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
if python -c "import ltrend" 2>/dev/null; then
    python "$root/scripts/fuzz_seeds.py"
else
    echo "ltrend is not importable here: fuzzing without seeds"
fi
status=0
for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${seconds}s"
    log="$(mktemp)"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 \
        -malloc_limit_mb=64 -rss_limit_mb=1024 -print_final_stats=1 >"$log" 2>&1
    code=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    inputs=$(find "corpus/$target" -type f 2>/dev/null | wc -l)
    if [ "$code" -eq 0 ]; then
        echo "fuzz $target: ${runs:-?} executions in ${took:-?} s," \
            "corpus ${inputs} inputs, peak RSS ${rss:-?} MB, no crash"
    else
        status=1
        echo "fuzz $target: FAILED (exit $code) after ${runs:-?} executions"
        grep -E "panicked|ERROR|SUMMARY|Test unit written|out-of-memory|timeout" "$log" |
            head -n 20
    fi
    rm -f "$log"
done
exit "$status"
