# Shared by the benchmarks (source it after tests/lib/common.sh). Each bench prints its figures
# as before and also hands its headline figures to bench_result / bench_memory, which append
# one JSON object a line to "$CW_BENCH_RESULTS" (bench/run.sh sets it and writes the report,
# bench/results/<date>.md and .json). With CW_BENCH_RESULTS unset both do nothing, so a bench
# still runs alone:  CW_BUILD=$PWD/build CW_ROOT=$PWD bash bench/gateway.sh
#
#   bench_result BENCH NAME VALUE UNIT [key=value...]
#       a figure: VALUE is the median of the runs (a number; anything else is kept as text)
#       runs="1 2 3"        every run's value (space-separated)
#       peer="hello"        the ceiling or peer measured in the same run, and its median
#       peer_value=N        and runs: peer_runs="..."
#       target=">= 25000"   the issue's target: ">=", "<=", ">" or "<" and a number, then any
#                           words ("<= 100 MB"); the report says whether the median meets it
#       note="..."          one short remark for the report
#   bench_memory BENCH SERVICE MIB [runs="..."] [note="..."]
#       a service's peak RSS (VmHWM) in MiB during BENCH
# Neither ever fails the bench that calls it: a figure that cannot be written is only said on
# stderr.

bench_result() {
  [ -n "${CW_BENCH_RESULTS:-}" ] || return 0
  if [ $# -lt 4 ]; then
    echo "bench_result: need BENCH NAME VALUE UNIT (got: $*)" >&2
    return 0
  fi
  local bench=$1 name=$2 value=$3 unit=$4
  shift 4
  _bench_write figure "$bench" "$name" "$value" "$unit" "$@"
}

bench_memory() {
  [ -n "${CW_BENCH_RESULTS:-}" ] || return 0
  if [ $# -lt 3 ]; then
    echo "bench_memory: need BENCH SERVICE MIB (got: $*)" >&2
    return 0
  fi
  local bench=$1 service=$2 value=$3
  shift 3
  _bench_write memory "$bench" "$service" "$value" MiB "$@"
}

# _bench_write KIND BENCH NAME VALUE UNIT [key=value...]: one JSON line. Numbers stay numbers;
# runs are lists of numbers (or texts); unknown keys are kept as text.
_bench_write() {
  local kind=$1 bench=$2 name=$3 value=$4 unit=$5 kv k v
  shift 5
  local args=(--arg kind "$kind" --arg bench "$bench" --arg name "$name" --arg value "$value"
    --arg unit "$unit")
  local extra='{}'
  for kv in "$@"; do
    k=${kv%%=*} v=${kv#*=}
    [ "$k" != "$kv" ] || { echo "bench_result: \"$kv\" is not key=value" >&2; continue; }
    extra=$(jq -c --arg k "$k" --arg v "$v" '. + {($k): $v}' <<<"$extra") || return 0
  done
  jq -nc "${args[@]}" --argjson extra "$extra" '
    def num: if test("^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$") then tonumber else . end;
    def list: [splits("[ ,]+") | select(length > 0) | num];
    {kind: $kind, bench: $bench, name: $name, value: ($value | num), unit: $unit}
    + (if $extra.runs then {runs: ($extra.runs | list)} else {} end)
    + (if $extra.peer then {peer: ({name: $extra.peer}
         + (if $extra.peer_value then {value: ($extra.peer_value | num)} else {} end)
         + (if $extra.peer_runs then {runs: ($extra.peer_runs | list)} else {} end))} else {} end)
    + ($extra | del(.runs, .peer, .peer_value, .peer_runs))' >>"$CW_BENCH_RESULTS" ||
    echo "bench_result: could not write $bench $name to $CW_BENCH_RESULTS" >&2
  return 0
}

# Peak RSS (VmHWM) of a running process, in MiB with one decimal; empty when it is gone.
bench_hwm_mib() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }

# The machine, as one JSON object (bench/run.sh puts it in the report).
bench_machine_json() {
  local cpu os mem
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  [ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
  os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
  mem=$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
  jq -nc --arg cores "$(nproc)" --arg mem "$mem" --arg os "${os:-$(uname -s)}" \
    --arg kernel "$(uname -r)" --arg arch "$(uname -m)" --arg cpu "${cpu:-unknown}" \
    --arg hv "$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor:[[:space:]]*//p')" \
    --arg ct "$(systemd-detect-virt --container 2>/dev/null)" \
    --arg redis "$(redis-server --version 2>/dev/null | sed 's/.*v=\([^ ]*\).*/\1/')" \
    --arg rdkafka "$(pkg-config --modversion rdkafka 2>/dev/null)" \
    --arg libevent "$(pkg-config --modversion libevent 2>/dev/null)" \
    --arg hiredis "$(pkg-config --modversion hiredis 2>/dev/null)" \
    --arg node "$(node --version 2>/dev/null)" \
    --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '{cores: ($cores | tonumber), memory_gib: ($mem | tonumber), os: $os, kernel: $kernel,
      arch: $arch, cpu: $cpu, hypervisor: $hv, container: $ct, redis: $redis, librdkafka: $rdkafka,
      libevent: $libevent, hiredis: $hiredis, node: $node, loadavg_at_start: $load}'
}
