#!/usr/bin/env bash
# `make bench`: every benchmark prints its figures. The figures belong here, never in the
# test suite. Each bench/*.sh is one benchmark: the gateway (2/7), the Kafka wrapper, the
# router (3/7), the deadline worker (4/7), the notifier (5/7); end to end arrives with 7/7.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
export CW_BUILD="$root/$build" CW_ROOT="$root"
shopt -s nullglob
benches=()
for b in "$root"/bench/*.sh; do [ "$(basename "$b")" = run.sh ] || benches+=("$b"); done
[ ${#benches[@]} -gt 0 ] || { echo "no benchmarks yet"; exit 0; }
for b in "${benches[@]}"; do echo "=== $(basename "$b" .sh)"; bash "$b" | grep -v "^ok - "; done
