#!/usr/bin/env bash
# `make bench`: every benchmark prints its figures, and this writes one report of them. The
# figures belong here, never in the test suite. Each bench/*.sh is one benchmark (lib.sh is
# their shared part): the gateway (2/7), the Kafka wrapper, the router (3/7), the deadline
# worker (4/7), the notifier (5/7), the reports (6/7), end to end (7/7).
#
#   bench/run.sh [BUILD]      BUILD: the build folder (default build), as `make bench` passes it
#   BENCHES="gateway e2e"     only these (space-separated names; default every bench)
#   BENCH_RUNS=3              runs per figure, in every bench (the report gives medians)
#   BENCH_TIMEOUT=3600        seconds a bench may take before it is stopped (and failed)
#   bench/run.sh --report bench/results/<date>.json
#                             runs nothing: writes that run's .md and README table again
#
# Each bench runs with CW_BENCH_RESULTS set: it appends its headline figures there
# (bench_result / bench_memory in bench/lib.sh). Then this writes bench/results/<date>.json
# (every figure, its runs, its peer, target and whether it is met, the machine, the commit),
# bench/results/<date>.md (the same as tables), bench/results/<date>-output.txt (everything
# the benches printed), and puts the .md's table in README.md between <!-- bench:begin --> and
# <!-- bench:end -->. A bench that fails is recorded as failed; the others still run; the exit
# status is 1 when any failed.
set -uo pipefail
report_only=
if [ "${1:-}" = --report ]; then
  report_only=${2:?usage: bench/run.sh --report bench/results/DATE.json}
  [ -f "$report_only" ] || { echo "no such file: $report_only"; exit 1; }
  build=build
else
  build=${1:-build}
fi
root=$(cd "$(dirname "$0")/.." && pwd)
export CW_BUILD="$root/$build" CW_ROOT="$root"
export BENCH_RUNS=${BENCH_RUNS:-3}
timeout_s=${BENCH_TIMEOUT:-3600}
source "$root/bench/lib.sh"
for t in jq git; do
  command -v "$t" >/dev/null || { echo "bench/run.sh needs $t (scripts/deps.sh installs it)"; exit 1; }
done

all=()
for b in "$root"/bench/*.sh; do
  n=$(basename "$b" .sh)
  [ "$n" = run ] || [ "$n" = lib ] || all+=("$n")
done
[ ${#all[@]} -gt 0 ] || { echo "no benchmarks yet"; exit 0; }
if [ -n "${BENCHES:-}" ]; then
  read -r -a selected <<<"$BENCHES"
  selection="only: ${selected[*]}"
else
  selected=("${all[@]}")
  selection="all"
fi

date=$(date +%F)
out="$root/bench/results"
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/casewire-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Runs the selected benches and writes $work/report.json and bench/results/<date>.json.
run_benches() {
export CW_BENCH_RESULTS="$work/results.jsonl"
: >"$CW_BENCH_RESULTS"
: >"$work/benches.jsonl"
log="$out/$date-output.txt"
: >"$log"
machine=$(bench_machine_json)
started=$(date -u +%FT%TZ) t_start=$(date +%s)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=false
# (the report's own files, just truncated above, do not count)
[ -n "$(git -C "$root" status --porcelain -- . ':!bench/results' 2>/dev/null | head -n 1)" ] && dirty=true

failed=0
for n in "${selected[@]}"; do
  echo "=== $n" | tee -a "$log"
  t0=$(date +%s)
  if [ ! -f "$root/bench/$n.sh" ] || [ "$n" = run ] || [ "$n" = lib ]; then
    echo "no such benchmark: bench/$n.sh (there are: ${all[*]})" | tee -a "$log"
    rc=127
  else
    # stdout and stderr both to the log; the TAP lines of the shared helpers stay out of sight
    timeout -k 60 "$timeout_s" bash "$root/bench/$n.sh" 2>&1 | tee -a "$log" | grep -v "^ok - "
    rc=${PIPESTATUS[0]}
  fi
  secs=$(($(date +%s) - t0))
  status=ok
  [ "$rc" -eq 0 ] || { status=failed; failed=$((failed + 1)); }
  [ "$rc" -eq 124 ] && echo "bench $n stopped after $timeout_s s (BENCH_TIMEOUT)" | tee -a "$log"
  [ "$rc" -eq 0 ] || echo "=== $n FAILED (exit $rc after $secs s)" | tee -a "$log"
  jq -nc --arg n "$n" --arg s "$status" --argjson rc "$rc" --argjson secs "$secs" \
    '{name: $n, status: $s, exit: $rc, seconds: $secs}' >>"$work/benches.jsonl"
done
finished=$(date -u +%FT%TZ) total=$(($(date +%s) - t_start))
machine=$(jq -c --arg l "$(cut -d' ' -f1-3 /proc/loadavg)" '. + {loadavg_at_end: $l}' <<<"$machine")

# ---- the .json: every line the benches wrote, with ratio and met worked out ----
jq -s --arg date "$date" --arg commit "$commit" --argjson dirty "$dirty" --arg started "$started" \
  --arg finished "$finished" --argjson total "$total" --argjson runs "$BENCH_RUNS" \
  --arg selection "$selection" --argjson machine "$machine" \
  --slurpfile benches "$work/benches.jsonl" '
  def target_of: if type == "string" then
      (capture("^\\s*(?<op><=|>=|<|>)\\s*(?<n>[0-9][0-9,]*(\\.[0-9]+)?)") // null)
      | if . then {op, n: (.n | gsub(","; "") | tonumber)} else null end
    else null end;
  def met($v; $t): if ($v | type) != "number" or $t == null then null
    elif $t.op == "<=" then $v <= $t.n elif $t.op == ">=" then $v >= $t.n
    elif $t.op == "<" then $v < $t.n else $v > $t.n end;
  {date: $date, commit: $commit, dirty: $dirty, started: $started, finished: $finished,
   seconds: $total, bench_runs: $runs, selection: $selection, benches: $benches,
   machine: $machine,
   results: [.[] | . as $r
     | if .kind == "figure" then
         . + (if (.peer.value | type) == "number" and (.value | type) == "number" and .peer.value != 0
              then {ratio: ((.value / .peer.value * 100 | round) / 100)} else {} end)
           + (if .target then {met: met(.value; (.target | target_of))} else {} end)
       else . end]}' "$CW_BENCH_RESULTS" >"$work/report.json" ||
  { echo "could not assemble the report (see $CW_BENCH_RESULTS)"; cp "$CW_BENCH_RESULTS" "$out/$date.jsonl"; exit 1; }
cp "$work/report.json" "$out/$date.json"
}

if [ -z "$report_only" ]; then
  run_benches
else
  cp "$report_only" "$work/report.json"
  date=$(jq -r .date "$work/report.json") total=$(jq -r .seconds "$work/report.json")
  failed=$(jq '[.benches[] | select(.status != "ok")] | length' "$work/report.json")
fi

# ---- the .md ----
jq -r '
  def grp: if length > 3 then (.[:-3] | grp) + "," + .[-3:] else . end;
  def num: if type != "number" then (. // "" | tostring)
    elif . < 0 then "-" + (-. | num)
    elif . >= 100 then (round | tostring | grp)
    elif . >= 10 then ((. * 10 | round) / 10 | tostring)
    elif . >= 1 then ((. * 100 | round) / 100 | tostring)
    else ((. * 1000 | round) / 1000 | tostring) end;
  def runs: if . then map(num) | join(" / ") else "" end;
  def cell: tostring | gsub("\\|"; "\\\\|") | gsub("\n"; " ");
  def yesno: if . == true then "yes" elif . == false then "**no**" else "" end;
  "| bench | figure | casewire (median) | runs | peer | peer (median) | ratio | target | met | note |",
    "|---|---|---|---|---|---|---|---|---|---|",
    (.benches[] as $bench
     | ([.results[] | select(.kind == "figure" and .bench == $bench.name)]) as $figs
     | if $bench.status != "ok" then
         "| \($bench.name) | **failed** (exit \($bench.exit) after \($bench.seconds) s; see the log) | | | | | | | | |"
       else empty end,
       ($figs[]
        | "| \(.bench) | \(.name | cell) | \(.value | num) \(.unit | cell) | \(.runs | runs) | \(.peer.name // "" | cell) | \(.peer.value | num) | \(.ratio | num) | \(.target // "" | cell) | \(.met | yesno) | \(.note // "" | cell) |"),
       (if $bench.status == "ok" and ($figs | length) == 0 then
          "| \($bench.name) | (no figures recorded) | | | | | | | | |" else empty end))
' "$work/report.json" >"$work/table.md"

{
  echo "# Benchmarks, $date"
  echo
  jq -r '"Commit `\(.commit)`\(if .dirty then " with uncommitted changes in the tree" else "" end); " +
    "\(.bench_runs) runs per figure (medians); benches: \(.selection) " +
    "(\(.benches | map("\(.name) \(.status) \(.seconds) s") | join(", "))); " +
    "the whole run took \(.seconds / 60 | floor) min \(.seconds % 60) s (\(.started) to \(.finished))."' \
    "$work/report.json"
  echo
  echo "Each figure is the median of the runs of one \`bench/<name>.sh\`, next to its ceiling or peer"
  echo "measured in the same run, and the issue's target where there is one (ratio: casewire / peer)."
  echo "Every process shares the machine's cores, and other work ran on this machine at the same"
  echo "time (load average below): the figures are noisy; compare them within one report. What each"
  echo "bench printed, every run's line included, is in [$date-output.txt]($date-output.txt); the same data as"
  echo "JSON in [$date.json]($date.json). Reproduce: \`make bench\` (or \`BENCHES=\"gateway e2e\""
  echo "BENCH_RUNS=1 make bench\` for a quick look at some)."
  echo
  cat "$work/table.md"
  echo
  echo "## Memory per service (peak RSS, VmHWM)"
  echo
  echo "| service | bench | peak RSS (MiB, median) | runs |"
  echo "|---|---|---|---|"
  jq -r '
    def num: if type == "number" then ((. * 10 | round) / 10 | tostring) else (. // "" | tostring) end;
    [.results[] | select(.kind == "memory")] | sort_by(.name, .bench) | .[]
    | "| \(.name) | \(.bench) | \(.value | num) | \(if .runs then (.runs | map(num) | join(" / ")) else "" end) |"' \
    "$work/report.json"
  echo
  echo "## Machine"
  echo
  jq -r '.machine | "- \(.cores) cores: \(.cpu)\(if .hypervisor != "" then " (\(.hypervisor) guest)" else "" end)",
    "- \(.memory_gib) GiB memory",
    "- \(.os), kernel \(.kernel) (\(.arch))\(if .container != "" and .container != "none" then ", in a \(.container) container" else "" end)",
    "- Redis \(.redis), librdkafka \(.librdkafka), libevent \(.libevent), hiredis \(.hiredis), Node.js \(.node)",
    "- load average (1, 5, 15 min) at the start \(.loadavg_at_start), at the end \(.loadavg_at_end)"' \
    "$work/report.json"
} >"$out/$date.md"

# ---- README.md: the table, between the markers ----
readme="$root/README.md"
if grep -q '^<!-- bench:begin -->$' "$readme" && grep -q '^<!-- bench:end -->$' "$readme"; then
  {
    jq -r '"Last run \(.date), commit `\(.commit)`\(if .dirty then " (uncommitted changes)" else "" end), " +
      "\(.machine.cores) cores (\(.machine.cpu)), benches: \(.selection), medians of \(.bench_runs) runs, on a shared machine: " +
      "the full report, with memory per service and the machine, is [bench/results/\(.date).md](bench/results/\(.date).md)."' \
      "$work/report.json"
    echo
    cat "$work/table.md"
  } >"$work/readme-part.md"
  awk -v part="$work/readme-part.md" '
    $0 == "<!-- bench:begin -->" { print; while ((getline l < part) > 0) print l; skip = 1; next }
    $0 == "<!-- bench:end -->" { skip = 0 }
    !skip' "$readme" >"$work/README.md" && cat "$work/README.md" >"$readme"
else
  echo "README.md has no <!-- bench:begin --> / <!-- bench:end --> lines: left as it is"
fi

echo "=== report: bench/results/$date.md, $date.json$([ -n "$report_only" ] || echo ", $date-output.txt") ($total s in all; $failed failed)"
[ "$failed" -eq 0 ]
