#!/usr/bin/env bash
# Issue 6/7: the staff console, end to end in a real browser (Debian's Chromium, driven by
# playwright-core from tests/e2e): the whole stack (Redis, the devbroker, gateway, router,
# deadline worker, notifier), then tests/e2e/console.mjs, whose "ok - ..." / "not ok - ..."
# lines pass through to tests/run.sh. It signs in as a desk agent, records a case at the desk,
# follows it through the open list and the case page to its resolution, has the call centre's
# agent claim the follow-up call and record "satisfied", and checks today's numbers and the
# daily report; another site's staff get the not-found page, a tenant's key cannot sign in, a
# security guard sees no close button, the monthly report prints on one A4 page, and no page
# logs an error or a CSP violation. Screenshots of every screen: $CW_BUILD/e2e-artifacts/.
source "$CW_ROOT/tests/lib/common.sh"
E2E="$CW_ROOT/tests/e2e"
ARTIFACTS="$CW_BUILD/e2e-artifacts"
CHROMIUM=${CW_CHROMIUM:-/usr/bin/chromium}

command -v node >/dev/null && command -v npm >/dev/null ||
  { not_ok "node and npm are installed (scripts/deps.sh installs them)"; exit 1; }
[ -x "$CHROMIUM" ] || { not_ok "Chromium is installed at $CHROMIUM (scripts/deps.sh installs it)"; exit 1; }

# playwright-core, pinned by tests/e2e/package-lock.json; installed again when the lock changed.
if [ ! -f "$E2E/node_modules/.package-lock.json" ] || [ "$E2E/package-lock.json" -nt "$E2E/node_modules/.package-lock.json" ]; then
  if ! (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error) >"$CW_TMP/npm.log" 2>&1; then
    not_ok "npm ci in tests/e2e installs playwright-core (is the npm registry reachable?)"
    sed 's/^/# /' "$CW_TMP/npm.log" | tail -n 20
    exit 1
  fi
fi

# A sanitizer build is several times slower: every wait of the browser test stretches.
slow=1
if [[ "$(basename "$CW_BUILD")" == *san* ]] || ldd "$CW_BUILD/bin/casewire-gateway" 2>/dev/null | grep -q libasan; then
  slow=3
fi

start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
# The example chain, its SMS written into this test's folder, at any hour and without limits
# per number (as tests/integration/followup.sh does).
CHAIN="$CW_TMP/chain.yaml"
sed -e "s|^  file: var/sms.log|  file: $CW_TMP/sms.log|" -e 's|^  quiet_hours: .*|  quiet_hours: none|' \
  -e 's|^  per_number: .*|  per_number: {minute: 0, hour: 0, day: 0}|' "$CW_ROOT/deploy/chain.example.yaml" >"$CHAIN"
grep -q "file: $CW_TMP/sms.log" "$CHAIN" || { not_ok "the test chain writes SMS to its folder"; exit 1; }
start_gateway "$CW_TMP/gw" CASEWIRE_CHAIN="$CHAIN" CASEWIRE_RATE_IP_PER_MIN=0 CASEWIRE_RATE_PHONE_PER_HOUR=0 ||
  { not_ok "gateway starts"; exit 1; }
start_router "$CW_TMP/rt" CASEWIRE_CHAIN="$CHAIN" || { not_ok "router starts"; exit 1; }
start_deadline "$CW_TMP/dl" CASEWIRE_CHAIN="$CHAIN" || { not_ok "deadline worker starts"; exit 1; }
start_notifier() {
  local port; port=$(free_port)
  NOTIFIER_ADMIN="http://127.0.0.1:$port"
  _start_daemon notifier "$CW_TMP/nt" CASEWIRE_ADMIN_PORT "$port" CASEWIRE_CHAIN="$CHAIN"
  NOTIFIER_PID=$DAEMON_PID
}
start_notifier || { not_ok "notifier starts"; exit 1; }
# Each worker takes its partitions a few seconds after it is ready.
for w in rt/router dl/deadline nt/notifier; do
  wait_until $((60 * slow)) grep -q 'event=kafka.assigned' "$CW_TMP/$w.log" ||
    not_ok "the ${w#*/} joined its consumer group within $((60 * slow)) s"
done

rm -rf "$ARTIFACTS" && mkdir -p "$ARTIFACTS"
# The browser's temporary profile goes in this test's folder, removed with it.
TMPDIR="$CW_TMP" CW_GATEWAY_URL="$GW_URL" CW_E2E_ARTIFACTS="$ARTIFACTS" CW_E2E_SLOW="$slow" \
  CW_CHROMIUM="$CHROMIUM" CW_E2E_WATCHDOG=$((slow > 1 ? 420 : 300)) \
  timeout --kill-after=5 450 node "$E2E/console.mjs" 2>"$CW_TMP/e2e.err" | tee "$CW_TMP/e2e.out"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ] && ! grep -q '^not ok' "$CW_TMP/e2e.out"; then
  not_ok "the browser test ran (exit $rc)"
  sed 's/^/# /' "$CW_TMP/e2e.err" | tail -n 20
fi
if grep -q '^not ok' "$CW_TMP/e2e.out"; then
  echo "# screenshots of each screen (and fail-*.png of the failures): $ARTIFACTS"
  for f in gw/gateway rt/router dl/deadline nt/notifier; do
    echo "# --- last lines of $f.log"; tail -n 5 "$CW_TMP/$f.log" | sed 's/^/# /'
  done
fi
echo "# screenshots: $ARTIFACTS"

# The services stop in order (the common cleanup would kill one that takes over 5 s).
for name_pid in "gateway $GW_PID" "router $ROUTER_PID" "deadline $DEADLINE_PID" "notifier $NOTIFIER_PID"; do
  set -- $name_pid
  start=$(date +%s%N)
  kill -TERM "$2" 2>/dev/null
  wait_until 20 _cw_gone "$2" || echo "# $1 did not stop within 20 s of SIGTERM"
  echo "# $1 stopped in $(( ($(date +%s%N) - start) / 1000000 )) ms"
done
