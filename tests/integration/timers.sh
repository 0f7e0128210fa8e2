#!/usr/bin/env bash
# The deadline worker's timer store (services/deadline/timers.c, docs/deadline.md) against a
# real redis-server on a free port: applying case events once, cancelling and restarting
# clocks, claiming with leases on Redis's clock, fencing tokens, the next ladder level armed
# on commit, wake-up messages. The checks are in timers.c; this script gives it a Redis.
source "$CW_ROOT/tests/lib/common.sh"
start_redis "$CW_TMP/redis" >/dev/null || { not_ok "redis starts"; exit 1; }
"$CW_BUILD/itests/timers" "$REDIS_PORT"
check "timers: the program exited 0 (every check passed)" test $? -eq 0
