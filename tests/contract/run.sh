#!/usr/bin/env bash
# The contract test: checks a running courier app against its own OpenAPI description
# (`GET /openapi.json`, functions/openapi/openapi.json) with schemathesis — no 5xx
# answer, and every answer's status, content type, headers and body as documented for
# its operation.
#
# Usage: tests/contract/run.sh <base-url>        e.g. http://127.0.0.1:3000
#
# Builds and starts nothing: the app must be serving at <base-url>. Needs curl, python3
# and schemathesis (`python3 -m pip install schemathesis==4.32.5`).
#
# Environment (all optional):
#   COURIER_ADMIN_TOKEN, COURIER_USER_TOKEN, COURIER_PEER_TOKEN
#       an admin token, and user tokens of `u1` (the user schemathesis acts as) and
#       `u2`; minted with `$COURIER_BIN token` when unset.
#   COURIER_BIN    the `courier` binary that mints them [default: target/release/courier,
#                  else target/debug/courier]; it signs with SPIN_VARIABLE_JWT_SECRET or,
#                  unset, the development secret of $COURIER_DATA — as the gateway does.
#   COURIER_DATA   the gateway's data directory [default: .courier]
#   COURIER_INTERNAL_SECRET  the `X-Internal-Secret` of /internal/drain [default:
#                  SPIN_VARIABLE_INTERNAL_SECRET, else the development secret of $COURIER_DATA]
#   CONTRACT_MAX_EXAMPLES    test cases per operation and phase [default: 100]
#   CONTRACT_WORKERS         concurrent schemathesis workers [default: 1; more run as
#                            threads, and on CPython 3.11 two threads parsing at once
#                            can fail hypothesis with "AST constructor recursion depth
#                            mismatch" (CPython gh-106905), a failure of the tool]
#   CONTRACT_SEED            schemathesis' random seed [default: random, printed]
#
# Users, a group and messages are created first (idempotently, so the script can run
# again on the same app) so that requests can succeed and the user's stream holds an
# entry of every kind: u1, u2 and u1:x (org acme), u3 (org beta, u1's friend), u4 (org
# gamma, no relation), group g1 {u1, u2}, and group `big` of u1 and b1..b100 (over the
# default `inline_fanout_max`). They match the examples in the OpenAPI file.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 <base-url>" >&2
    exit 2
fi
base="${1%/}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
data="${COURIER_DATA:-$root/.courier}"

log() { printf 'contract: %s\n' "$*" >&2; }

courier_bin() {
    if [[ -n "${COURIER_BIN:-}" ]]; then
        echo "$COURIER_BIN"
    elif [[ -x "$root/target/release/courier" ]]; then
        echo "$root/target/release/courier"
    else
        echo "$root/target/debug/courier"
    fi
}

mint() { # uid [--admin]
    "$(courier_bin)" token "$@" --manifest "$root/spin.toml" --data "$data"
}

dev_secret() { # variable name
    python3 - "$data/dev-secrets.json" "$1" <<'EOF'
import json, sys
try:
    print(json.load(open(sys.argv[1]))[sys.argv[2]])
except (OSError, KeyError, ValueError):
    sys.exit("contract: no development secret %s in %s" % (sys.argv[2], sys.argv[1]))
EOF
}

export COURIER_ADMIN_TOKEN="${COURIER_ADMIN_TOKEN:-$(mint admin --admin)}"
export COURIER_USER_TOKEN="${COURIER_USER_TOKEN:-$(mint u1)}"
peer_token="${COURIER_PEER_TOKEN:-$(mint u2)}"
export COURIER_INTERNAL_SECRET="${COURIER_INTERNAL_SECRET:-${SPIN_VARIABLE_INTERNAL_SECRET:-$(dev_secret internal_secret)}}"

# call METHOD PATH TOKEN BODY EXPECTED-STATUS...: prints the body; fails on another status.
call() {
    local method="$1" path="$2" token="$3" body="$4"
    shift 4
    local out status
    out="$(mktemp)"
    status="$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "$base$path" \
        -H "authorization: Bearer $token" -H 'content-type: application/json' \
        ${body:+--data-binary "$body"})"
    if [[ " $* " != *" $status "* ]]; then
        log "set-up: $method $path answered $status, expected $*: $(cat "$out")"
        rm -f "$out"
        exit 1
    fi
    cat "$out"
    rm -f "$out"
}

field() { # JSON on stdin → the value of one top-level field
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

log "set-up on $base"
curl -sS --fail "$base/healthz" >/dev/null
admin="$COURIER_ADMIN_TOKEN" u1="$COURIER_USER_TOKEN" u2="$peer_token"
for user in u1/acme u2/acme u3/beta u4/gamma u1:x/acme; do
    call PUT "/v1/users/${user%/*}" "$admin" "{\"name\":\"${user%/*}\",\"org\":\"${user#*/}\"}" 200 >/dev/null
done
call PUT /v1/relations/u1/u3 "$admin" '{"kind":"friend"}' 200 >/dev/null
call PUT /v1/groups/g1 "$admin" '{"name":"Team","owner":"u1","members":["u2"]}' 200 >/dev/null
# A group over `inline_fanout_max` (default 100): its sends are `accepted`.
bulk=()
for i in $(seq 100); do
    call PUT "/v1/users/b$i" "$admin" '{"name":"","org":"bulk"}' 200 >/dev/null
    bulk+=("\"b$i\"")
done
call PUT /v1/groups/big "$admin" "{\"name\":\"All\",\"owner\":\"u1\",\"members\":[$(IFS=,; echo "${bulk[*]}")]}" 200 >/dev/null

send() { # token body → msg_id (201, or 200 when the script runs again)
    call POST /v1/messages "$1" "$2" 200 201 | field msg_id
}
from_u2="$(send "$u2" '{"client_msg_id":"ct-1","to":{"user":"u1"},"content":{"type":"text","text":"hi"}}')"
send "$u2" '{"client_msg_id":"ct-2","to":{"user":"u1"},"content":{"type":"custom","data":{"k":[1,2]}}}' >/dev/null
from_u1="$(send "$u1" '{"client_msg_id":"ct-3","to":{"user":"u2"},"content":{"type":"text","text":"hello"}}')"
send "$u1" '{"client_msg_id":"ct-4","to":{"group":"g1"},"content":{"type":"image","url":"https://cdn.example/x.png","name":"x.png","size":1024,"mime":"image/png"}}' >/dev/null
# "dm:u1:u1:x" is also how "u1:u1" and "x" would print: it must still read back.
send "$u1" '{"client_msg_id":"ct-8","to":{"user":"u1:x"},"content":{"type":"text","text":"alt"}}' >/dev/null
send "$u1" '{"client_msg_id":"ct-7","to":{"group":"big"},"content":{"type":"text","text":"to all"}}' >/dev/null
send "$u1" '{"client_msg_id":"ct-5","to":{"user":"u3"},"content":{"type":"file","url":"https://cdn.example/f.pdf"},"priority":"low"}' >/dev/null
to_recall="$(send "$u1" '{"client_msg_id":"ct-6","to":{"user":"u2"},"content":{"type":"text","text":"oops"}}')"
call POST /v1/receipts "$u1" "{\"msg_ids\":[\"$from_u2\"]}" 200 >/dev/null
call POST /v1/receipts "$u2" "{\"msg_ids\":[\"$from_u1\"]}" 200 >/dev/null
call POST "/v1/messages/$to_recall/recall" "$u1" '' 200 >/dev/null

# The senders' receipt entries come through the queue: wait until u1 holds every kind.
for _ in $(seq 50); do
    kinds="$(call GET '/v1/sync?limit=500' "$u1" '' 200 |
        python3 -c 'import json, sys; print(" ".join(sorted({e["kind"] for e in json.load(sys.stdin)["entries"]})))')"
    [[ "$kinds" == "control message read recall receipt" ]] && break
    curl -sS -X POST -H "x-internal-secret: $COURIER_INTERNAL_SECRET" "$base/internal/drain" >/dev/null
    sleep 0.2
done
if [[ "$kinds" != "control message read recall receipt" ]]; then
    log "set-up: u1's stream holds only: $kinds"
    exit 1
fi

# The ids that exist, as dictionaries schemathesis mixes into what it generates, so
# that requests also get past the id checks to the rules behind them.
config="$(mktemp -d)/schemathesis.toml"
trap 'rm -rf "$(dirname "$config")"' EXIT
cat "$here/schemathesis.toml" - >"$config" <<EOF

# Added by run.sh: the ids of the set-up.
[dictionaries.users]
values = ["u1", "u2", "u3", "u4", "u1:x"]
[dictionaries.groups]
values = ["g1", "big"]
[dictionaries.messages]
values = ["$from_u2", "$from_u1", "$to_recall"]
[dictionaries.conversations]
values = ["dm:u1:u2", "dm:u1:u3", "dm:u1:u1:x", "g:g1", "g:big"]

[parameters]
"path.uid" = { dictionary = "users", probability = 0.5 }
"path.a" = { dictionary = "users", probability = 0.5 }
"path.b" = { dictionary = "users", probability = 0.5 }
"path.gid" = { dictionary = "groups", probability = 0.5 }
"path.msg_id" = { dictionary = "messages", probability = 0.5 }
"path.conv" = { dictionary = "conversations", probability = 0.5 }
"body.owner" = { dictionary = "users", probability = 0.5 }
"body.members[*]" = { dictionary = "users", probability = 0.5 }
"body.add[*]" = { dictionary = "users", probability = 0.5 }
"body.remove[*]" = { dictionary = "users", probability = 0.5 }
"body.to.user" = { dictionary = "users", probability = 0.5 }
"body.to.group" = { dictionary = "groups", probability = 0.5 }
"body.msg_ids[*]" = { dictionary = "messages", probability = 0.5 }
EOF

log "schemathesis against $base/openapi.json"
args=(
    --url "$base"
    --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,response_headers_conformance
    --max-examples "${CONTRACT_MAX_EXAMPLES:-100}"
    --workers "${CONTRACT_WORKERS:-1}"
    --request-timeout 40
)
if [[ -n "${CONTRACT_SEED:-}" ]]; then
    args+=(--seed "$CONTRACT_SEED")
fi
cd "$(dirname "$config")" # schemathesis keeps nothing, but never in the repository
python3 -m schemathesis.cli --config-file "$config" run "$base/openapi.json" "${args[@]}"
