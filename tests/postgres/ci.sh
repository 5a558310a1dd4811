#!/usr/bin/env bash
# Runs every workspace test on PostgreSQL: installs PostgreSQL if missing, starts a
# throwaway cluster on loopback (tests/postgres/start.sh), runs `cargo test
# --workspace` with COURIER_TEST_DATABASE_URL pointing at it (the store and queue
# tests then run on SQLite and on PostgreSQL, the end-to-end suite on PostgreSQL),
# and stops the cluster on the way out, whatever happens.
#
#   tests/postgres/ci.sh [extra cargo test arguments]
#   tests/postgres/ci.sh --run <command> [args]   (any command instead, with
#                                                  COURIER_TEST_DATABASE_URL set)
#
# COURIER_PG_PORT (default 5439) and COURIER_PG_DATA (default: a fresh temporary
# directory, removed afterwards) choose the cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."

port="${COURIER_PG_PORT:-5439}"
if [[ -n "${COURIER_PG_DATA:-}" ]]; then
    data="$COURIER_PG_DATA"
    keep=1
else
    data="$(mktemp -d /tmp/courier-pg-ci.XXXXXX)"
    keep=0
fi

stop() {
    local pg_ctl
    pg_ctl="$(ls -1d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1)"
    if [[ -n "$pg_ctl" && -f "$data/PG_VERSION" ]]; then
        if [[ "$(id -u)" -eq 0 ]]; then
            runuser -u postgres -- "$pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
        else
            "$pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
        fi
    fi
    if [[ "$keep" -eq 0 ]]; then
        rm -rf "$data"
    fi
}
trap stop EXIT

url="$(tests/postgres/start.sh "$data" "$port" | tail -n 1)"
if [[ "${1:-}" == "--run" ]]; then
    shift
    echo "postgres: running \`$*\` against $url"
    COURIER_TEST_DATABASE_URL="$url" "$@"
else
    echo "postgres: running the workspace tests against $url"
    COURIER_TEST_DATABASE_URL="$url" cargo test --workspace "$@"
fi
