#!/usr/bin/env bash
# Runs every courier fuzz target (or the ones named) under libFuzzer for a bounded
# time each, with the nightly toolchain, and prints per target: runs executed,
# execs/s, seconds, crashes and corpus size.
#
#   fuzz/run.sh [seconds-per-target] [target...]      (default: 60 s, every target)
#
# Installs cargo-fuzz (`cargo install cargo-fuzz --locked`) when it is missing; needs
# `rustup toolchain install nightly`. COURIER_FUZZ_SANITIZER=none skips AddressSanitizer
# (faster; courier has no unsafe code of its own). New inputs the fuzzer finds go to
# fuzz/work/corpus/<target> (not committed); fuzz/corpus/<target> holds the committed
# seeds, which `cargo test -p courier-fuzz` replays on stable. A crash leaves its input
# in fuzz/artifacts/<target>/ and makes this script exit with 1: fix it, then commit the
# input to fuzz/corpus/<target>/.
set -euo pipefail

secs="${1:-60}"
shift || true
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
sanitizer="${COURIER_FUZZ_SANITIZER:-address}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz" >&2
    (cd / && cargo install cargo-fuzz --locked)
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

mkdir -p work
if ! cargo +nightly fuzz build --sanitizer "$sanitizer" >work/build.log 2>&1; then
    tail -30 work/build.log >&2
    exit 2
fi
failed=0
printf '%-16s %12s %9s %6s %8s %16s\n' target runs execs/s secs crashes "corpus (files)"
for target in "${targets[@]}"; do
    found="work/corpus/$target"
    log="work/$target.log"
    mkdir -p "$found" "artifacts/$target"
    before=$(find "artifacts/$target" -type f | wc -l)
    started=$(date +%s)
    set +e
    cargo +nightly fuzz run --sanitizer "$sanitizer" "$target" "$found" "corpus/$target" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
        >"$log" 2>&1
    status=$?
    set -e
    elapsed=$(($(date +%s) - started))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ -z "$runs" ]; then
        # No final stats (a crash): the last status line counts.
        last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
        runs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")
        rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$last")
    fi
    crashes=$(($(find "artifacts/$target" -type f | wc -l) - before))
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1
    fi
    corpus=$(find "$found" "corpus/$target" -type f | wc -l)
    printf '%-16s %12s %9s %6s %8s %16s\n' "$target" "${runs:-?}" "${rate:-?}" "$elapsed" \
        "$crashes" "$corpus"
    if [ "$crashes" -ne 0 ]; then
        failed=1
        grep -E 'panicked at|Test unit written to|SUMMARY' "$log" | head -5 | sed 's/^/    /'
    fi
done
exit "$failed"
