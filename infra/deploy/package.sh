#!/usr/bin/env bash
# Packages courier as an OCI artifact: `spin build`, then `spin registry push`.
#
# Required environment:
#   COURIER_ORG   registry namespace (GitHub user or organisation for ghcr.io)
#   COURIER_TAG   artifact tag, e.g. v0.1.0 or the commit id; `latest` is refused, so
#                 every deployment names exactly what it runs
# Optional:
#   COURIER_REGISTRY   registry host (default ghcr.io)
#   COURIER_NAME       repository name (default courier)
#   REGISTRY_USERNAME + REGISTRY_PASSWORD
#                      log in first (`spin registry login --password-stdin`); without
#                      them the credentials of an earlier `spin registry login` (or
#                      `docker login`) are used
#   ALLOW_DIRTY=1      package a work tree with uncommitted changes
#   DRY_RUN=1          print the commands instead of running them
#
# Needs the Spin CLI and the Rust toolchain of rust-toolchain.toml (the components'
# build commands in spin.toml run `cargo build --target wasm32-wasip2 --release`).
#
# Example:
#   COURIER_ORG=acme COURIER_TAG="$(git rev-parse --short HEAD)" infra/deploy/package.sh
# prints the reference to put into infra/deploy/spinkube/spinapp.yaml's `image`.
set -euo pipefail

fail() {
    printf 'package.sh: %s\n' "$*" >&2
    exit 1
}

run() {
    printf '+ %s\n' "$*" >&2
    if [[ "${DRY_RUN:-}" != 1 ]]; then
        "$@"
    fi
}

[[ -n "${COURIER_ORG:-}" ]] || fail "set COURIER_ORG (the registry namespace, e.g. your GitHub organisation)"
[[ -n "${COURIER_TAG:-}" ]] || fail "set COURIER_TAG (e.g. v0.1.0 or \$(git rev-parse --short HEAD))"
[[ "$COURIER_TAG" != latest ]] || fail "COURIER_TAG=latest is refused: name the version you deploy"
[[ "$COURIER_TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
    fail "COURIER_TAG '$COURIER_TAG' is not a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
registry="${COURIER_REGISTRY:-ghcr.io}"
name="${COURIER_NAME:-courier}"
# OCI repository paths are lower case.
org="$(printf '%s' "$COURIER_ORG" | tr '[:upper:]' '[:lower:]')"
[[ "$org" =~ ^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$ ]] ||
    fail "COURIER_ORG '$COURIER_ORG' is not a valid repository namespace"
reference="$registry/$org/$name:$COURIER_TAG"

if [[ -n "${REGISTRY_USERNAME:-}" && -z "${REGISTRY_PASSWORD:-}" ]] ||
    [[ -z "${REGISTRY_USERNAME:-}" && -n "${REGISTRY_PASSWORD:-}" ]]; then
    fail "set both REGISTRY_USERNAME and REGISTRY_PASSWORD, or neither"
fi

cd "$(dirname "$0")/../.."
[[ -f spin.toml ]] || fail "no spin.toml at $(pwd)"
if [[ "${DRY_RUN:-}" != 1 ]]; then
    command -v spin >/dev/null || fail "the Spin CLI (spin) is not on PATH: https://spinframework.dev/install"
    command -v cargo >/dev/null || fail "cargo is not on PATH (rustup reads rust-toolchain.toml)"
fi

if [[ "${ALLOW_DIRTY:-}" != 1 ]] && command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1; then
    if [[ -n "$(git status --porcelain --untracked-files=no)" ]]; then
        fail "the work tree has uncommitted changes (commit them, or ALLOW_DIRTY=1)"
    fi
fi

if [[ -n "${REGISTRY_USERNAME:-}" ]]; then
    printf '+ spin registry login %s --username %s --password-stdin\n' "$registry" "$REGISTRY_USERNAME" >&2
    if [[ "${DRY_RUN:-}" != 1 ]]; then
        printf '%s' "$REGISTRY_PASSWORD" | spin registry login "$registry" --username "$REGISTRY_USERNAME" --password-stdin
    fi
fi

run spin build
run spin registry push "$reference"

printf '%s\n' "$reference"
