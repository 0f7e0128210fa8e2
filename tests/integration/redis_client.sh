#!/usr/bin/env bash
# The Redis client (common/redis.c) against a real redis-server on a free port: backpressure
# and shutdown, command timeouts, Lua scripts across SCRIPT FLUSH and a restart, AUTH/SELECT,
# and a stream of commands across a kill -9 and restart. The C side (redis_client.c) prints its own TAP
# lines and "# phase=..." lines; this script does to redis what each phase asks for.
. "$CW_ROOT/tests/lib/common.sh"

prog=$CW_BUILD/itests/redis_client
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
phase_seen() { grep -q "^# phase=$2\$" "$1"; }

# run_mode MODE: starts the program in the background; sets out, err, pid.
run_mode() {
  out=$CW_TMP/$1.out err=$CW_TMP/$1.err
  : >"$out"
  "$prog" "$1" "$REDIS_PORT" "$CW_TMP" >"$out" 2>"$err" &
  pid=$!
  track_pid "$pid"
}

# finish_mode MODE: waits for the program (it has its own deadline), relays its TAP lines.
finish_mode() {
  wait "$pid"
  local rc=$?
  grep -E '^(ok|not ok|#) ' "$out"
  check "$1: program exited 0 (no crash, every check passed; exit $rc)" test "$rc" -eq 0
  if [ "$rc" -ne 0 ]; then sed 's/^/# stderr: /' "$err" | tail -n 20; fi
}

# start_redis's readiness probe prints PONG; keep the TAP stream clean.
restart_redis() {
  stop_redis KILL
  start_redis "$CW_TMP/redis" "$REDIS_PORT" >/dev/null
}

start_redis "$CW_TMP/redis" >/dev/null || { not_ok "redis-server starts"; exit 1; }

# 1. Backpressure, close (drain) and free (fail what is left).
run_mode backpressure
finish_mode backpressure

# 2. Timeouts through the program's own black-hole proxy in front of this redis.
run_mode timeout
finish_mode timeout

# 3. Scripts: SCRIPT FLUSH from redis-cli, then a kill -9 and restart.
run_mode scripts
if wait_until 20 phase_seen "$out" flush-now; then
  redis-cli -p "$REDIS_PORT" SCRIPT FLUSH >/dev/null
  touch "$CW_TMP/flushed"
fi
if wait_until 20 phase_seen "$out" restart-now; then
  restart_redis || not_ok "scripts: redis restarts on the same port"
fi
finish_mode scripts

# 4. AUTH and SELECT on every connect (sets requirepass, and clears it when done).
run_mode auth
finish_mode auth

# 5. A stream of INCRs while redis is killed and restarted on the same port (AOF on).
run_mode stream
if wait_until 20 phase_seen "$out" kill-now; then
  # Pause redis so that commands pile up in flight, then kill it under them.
  redis-cli -p "$REDIS_PORT" CLIENT PAUSE 5000 ALL >/dev/null
  wait_until 10 phase_seen "$out" inflight || not_ok "stream: commands in flight while redis is paused"
  stop_redis KILL
  killed=$(now_ms)
  if wait_until 10 phase_seen "$out" outage; then
    ok "stream: the client noticed the outage within $(( $(now_ms) - killed )) ms"
  else
    not_ok "stream: the client noticed the outage"
  fi
  start_redis "$CW_TMP/redis" "$REDIS_PORT" >/dev/null || not_ok "stream: redis restarts on the same port"
  back=$(now_ms)
  # The client's backoff tops out at 200 ms; allow generous slack for a loaded machine.
  if wait_until 10 phase_seen "$out" reconnected; then
    took=$(( $(now_ms) - back ))
    check "stream: reconnected ${took} ms after redis was back (bound 200 ms + 1000 slack)" \
      test "$took" -le 1200
  else
    not_ok "stream: reconnected after the restart"
  fi
else
  not_ok "stream: commands flow before the kill"
fi
finish_mode stream
