#!/usr/bin/env bash
# The suites on real Spin (`spin up`) as a second host: the end-to-end suite (its
# API tests, the browser scenario among them) with COURIER_TEST_HOST=spin on SQLite
# and then on PostgreSQL (a throwaway cluster, tests/postgres/ci.sh), and the
# schemathesis contract test against a `spin up` of its own. Tests about the gateway
# itself say "gateway-only" and return.
#
#   tests/spin/ci.sh
#
# `spin` comes from PATH, else ../shared/tools/spin/spin beside the repository. With
# neither this prints SKIPPED and succeeds, unless COURIER_REQUIRE_SPIN=1 (CI), which
# makes it a failure. The contract step needs schemathesis (`python3 -m pip install
# schemathesis==4.32.5`) and the release `courier` binary (it mints the tokens).
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf 'spin: %s\n' "$*" >&2; }

spin="$(command -v spin || true)"
if [[ -z "$spin" && -x ../shared/tools/spin/spin ]]; then
    spin="$(cd ../shared/tools/spin && pwd)/spin"
fi
if [[ -z "$spin" ]]; then
    if [[ "${COURIER_REQUIRE_SPIN:-}" == 1 ]]; then
        log "no spin on PATH nor ../shared/tools/spin/spin, and COURIER_REQUIRE_SPIN=1"
        exit 1
    fi
    echo "SKIPPED: the suites on Spin (no spin on PATH nor ../shared/tools/spin/spin)"
    exit 0
fi
log "$("$spin" --version)"
export COURIER_TEST_HOST=spin

log "end-to-end suite on Spin, SQLite"
cargo test -p courier-gateway --test e2e

log "end-to-end suite on Spin, PostgreSQL"
COURIER_PG_PORT="${COURIER_SPIN_PG_PORT:-5440}" \
    tests/postgres/ci.sh --run cargo test -p courier-gateway --test e2e

log "contract test on Spin"
cargo build --release -p courier-gateway
cargo build --release --target wasm32-wasip2 --workspace \
    --exclude courier-gateway --exclude courier-bench --exclude courier-fuzz
contract() (
    work="$(mktemp -d)"
    secret() { printf '%s-%s' "$1" "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"; }
    export SPIN_VARIABLE_JWT_SECRET="$(secret contract-jwt)"
    export SPIN_VARIABLE_INTERNAL_SECRET="$(secret contract-internal)"
    # Webhooks schemathesis creates may point only at a closed loopback port.
    export SPIN_VARIABLE_WEBHOOK_ALLOWED_ORIGINS="http://127.0.0.1:9"
    export SPIN_VARIABLE_WEBHOOK_EXTRA_ORIGIN="http://127.0.0.1:9"
    setsid "$spin" up --from spin.toml --listen 127.0.0.1:0 --state-dir "$work/state" \
        >"$work/stdout" 2>"$work/spin.log" </dev/null &
    app=$!
    drain=""
    trap 'kill -KILL -- "-$app" ${drain:+"-$drain"} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
    base=""
    for _ in $(seq 300); do
        base="$(sed -n 's/^Serving \(http:[^ ]*\).*/\1/p' "$work/stdout" | head -n 1)"
        if [[ -n "$base" ]] && curl -sf "$base/healthz" >/dev/null; then
            break
        fi
        base=""
        kill -0 "$app" 2>/dev/null || break
        sleep 1
    done
    if [[ -z "$base" ]]; then
        tail -n 50 "$work/spin.log" "$work/stdout"
        log "contract: spin up did not become healthy"
        return 1
    fi
    # The drain loop that stands in for the gateway's drainer.
    setsid target/release/courier drain --url "$base" --every 1s >/dev/null 2>&1 </dev/null &
    drain=$!
    if ! COURIER_BIN=target/release/courier COURIER_DATA="$work/state" tests/contract/run.sh "$base"; then
        log "contract: failed on Spin; its log ends with:"
        tail -n 50 "$work/spin.log"
        return 1
    fi
)
contract
