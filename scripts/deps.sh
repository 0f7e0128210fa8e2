#!/usr/bin/env bash
# Installs exactly the Debian packages casewire needs that are missing.
#   scripts/deps.sh          check, install what is missing (root) or print the command (not root)
#   scripts/deps.sh --check  only check; exit 1 and name what is missing
# The list below is the single place where dependencies are named; README.md says why each is there.
set -euo pipefail

packages=(
  build-essential pkg-config       # compiler, make, and library flags
  librdkafka-dev                   # Kafka client and the mock cluster (devbroker)
  libevent-dev                     # event loop and HTTP server
  libhiredis-dev                   # Redis client (async, libevent adapter)
  libprotobuf-c-dev protobuf-c-compiler   # event schema (protoc-c generates C)
  libyaml-dev                      # chain configuration (YAML with line numbers)
  libjansson-dev                   # JSON (HTTP API, librdkafka statistics)
  libvectorscan-dev                # router: every classification keyword in one pass over the text
  libcurl4-openssl-dev             # notifier: HTTP/TLS client for SMS providers and webhooks (multi interface on our loop)
  libssl-dev                       # SHA-1/SHA-256/HMAC (Lua script ids, credential hashes)
  check                            # unit-test framework
  redis-server                     # Redis for `make run` and the integration tests
  tzdata                           # time zones of the sites
  procps                           # ps, for the tests
  curl                             # `make run` waits for /healthz; the README tour
  jq                               # the tests read JSON answers and decoded events
  prometheus                       # promtool: the tests check /metrics with `promtool check metrics`
  faketime                         # the deadline tests run a worker whose clock is an hour off
  openssl                          # the notifier tests check webhook signatures with `openssl dgst`
  chromium                         # the staff console's end-to-end test runs in a real browser
  nodejs npm                       # ... driven by playwright-core (tests/e2e, pinned by its package-lock.json)
  fonts-wqy-microhei               # ... so its screenshots show Chinese text (Chromium brings no CJK font)
)

# A virtual package an installed package provides counts as installed: NodeSource's nodejs
# provides npm (and conflicts with Debian's).
provided=" $(dpkg-query -W -f='${db:Status-Abbrev} ${Provides}\n' 2>/dev/null | sed -n 's/^ii *//p' |
  sed -E 's/ *\([^)]*\)//g; s/,/ /g' | tr '\n' ' ') "

missing=()
for p in "${packages[@]}"; do
  [[ "$provided" == *" $p "* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "${1:-}" = "--check" ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  exit 1
fi

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "casewire needs these Debian packages: ${missing[*]}" >&2
  echo "run this once as root, then try again:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
