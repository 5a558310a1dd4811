#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for courier's tests, and prints its URL.
#
#   tests/postgres/start.sh [DATA_DIR] [PORT]      (defaults: /tmp/courier-pg, 5433)
#
# Idempotent: installs Debian's `postgresql` package if no server is installed,
# creates the cluster only if DATA_DIR has none, starts it only if it is not running,
# and creates the database `courier_test` only if missing. The cluster listens on
# 127.0.0.1 only, trusts every local connection (user `postgres`, no password) and
# runs without fsync: it is for tests, never for data you want to keep. Stop it with
# `pg_ctl -D DATA_DIR stop` (as the user printed below).
#
# COURIER_PG_DURABLE=1 starts it with PostgreSQL's durable defaults instead (fsync,
# synchronous_commit and full_page_writes on), as benchmarks of a server one would
# run should (`courier-bench scale` prints which it measured), and loads
# pg_stat_statements, whose top statements `courier-bench scale` prints.
#
# The last line of the output is the connection URL, e.g.
#   postgres://postgres@127.0.0.1:5433/courier_test
# so `URL=$(tests/postgres/start.sh | tail -n 1)` works.
set -euo pipefail

data="${1:-/tmp/courier-pg}"
port="${2:-5433}"
db=courier_test

say() { printf 'postgres: %s\n' "$*" >&2; }

bindir() {
    local initdb
    initdb="$(ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$initdb" ]] && dirname "$initdb"
}

if [[ -z "$(bindir || true)" ]]; then
    say "no PostgreSQL server installed: installing Debian's postgresql package"
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || { say "need root (or sudo) to apt-get install postgresql"; exit 1; }
        sudo=sudo
    else
        sudo=
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
bin="$(bindir)"

# PostgreSQL refuses to run as root: as root, run the cluster as the `postgres` user
# the package created; otherwise as the current user.
if [[ "$(id -u)" -eq 0 ]]; then
    owner=postgres
    as_owner() { runuser -u "$owner" -- "$@"; }
else
    owner="$(id -un)"
    as_owner() { "$@"; }
fi

mkdir -p "$data"
if [[ "$(id -u)" -eq 0 ]]; then
    chown "$owner" "$data"
fi
chmod 700 "$data"

if [[ ! -f "$data/PG_VERSION" ]]; then
    say "creating a cluster in $data"
    as_owner "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi

if [[ "${COURIER_PG_DURABLE:-}" == 1 ]]; then
    durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on \
-c shared_preload_libraries=pg_stat_statements"
else
    durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
if ! as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "starting on 127.0.0.1:$port"
    as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start -o "\
-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$data \
-c max_connections=400 -c shared_buffers=128MB $durability" >/dev/null
fi

psql=("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1)
for _ in $(seq 60); do
    "${psql[@]}" -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.5
done
if [[ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]]; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE $db"
fi
say "ready (cluster owner: $owner, data: $data, log: $data/server.log)"
echo "postgres://postgres@127.0.0.1:$port/$db"
