#!/usr/bin/env bash
# Issue 7/7: the production manifests under deploy/ are well formed and say what they must.
#   - yaml2json (tests/integration/yaml2json.c) itself: documents, scalars, errors with
#     file:line:column, aliases and duplicate keys refused;
#   - every YAML file under deploy/ parses;
#   - compose: 3 Kafka brokers in KRaft mode (no ZooKeeper), Redis with the append-only file,
#     the four services with a /readyz healthcheck and settings named as docs/configuration.md
#     names them, a topic job creating every CW_TOPIC_* of common/event.h with replication
#     factor 3, min.insync.replicas=2 and docs/events.md's retention; the Redis command line is
#     accepted by a real redis-server with deploy/redis.conf;
#   - k8s: a Deployment per service with /healthz liveness and /readyz readiness on its port,
#     the grace period above the shutdown deadline, a PDB each, an HPA per worker on the
#     consumer-lag metric the adapter rule defines, ConfigMaps and Secrets of placeholders;
#   - systemd: each unit's ExecStart, Restart, User, TimeoutStopSec, environment file and
#     hardening; systemd-analyze verify says nothing;
#   - promtool: check rules, test rules, check config; every alert has a summary, a description
#     and a runbook section in docs/operations.md;
#   - every metric (and label) the alerts and the dashboard use is exported by a running
#     gateway, router, deadline worker and notifier (casewire_kafka_consumer_lag allowed to be
#     missing, with a note), and each stops within the shutdown deadline;
#   - the Grafana dashboard is JSON with panels and queries.
# Each check reads the files as they are; break one (a topic line, a probe path) and it fails.
source "$CW_ROOT/tests/lib/common.sh"
cd "$CW_ROOT" || exit 1
Y="$CW_BUILD/itests/yaml2json"
J="$CW_TMP/json"
mkdir -p "$J"
SERVICES=(gateway router deadline notifier)
WORKERS=(router deadline notifier)
declare -A PORT=([gateway]=8080 [router]=9101 [deadline]=9102 [notifier]=9103)

[ -x "$Y" ] || { not_ok "yaml2json is built ($Y)"; exit 1; }

# ---- helpers ----
# Milliseconds of a duration as casewire writes them (500ms, 8s, 2m, 1h).
dur_ms() {
  local v=$1
  case "$v" in
  *ms) echo "${v%ms}" ;;
  *s) echo $((${v%s} * 1000)) ;;
  *m) echo $((${v%m} * 60000)) ;;
  *h) echo $((${v%h} * 3600000)) ;;
  *) echo $((v * 1000)) ;;
  esac
}
# jq -e, quiet: the exit status says whether the filter's result is true.
jqe() { jq -e "$@" >/dev/null; }
export -f jqe
# One [Service]/[Unit]/... key of a systemd unit (every value, one a line).
unit_key() { # file section key
  awk -v sec="[$2]" -v k="$3" '
    /^\[/ { s = $0; next }
    s == sec && index($0, k "=") == 1 { print substr($0, length(k) + 2) }' "$1"
}

# ---- yaml2json on small inputs ----
t="$CW_TMP/t"
mkdir -p "$t"
printf 'a: 1\nb: "1"\nc: yes\nd: ~\ne: 1.5\nf: true\n"8080": x\ng: [p, {q: r}]\n---\n- 2\n---\n' >"$t/ok.yaml"
check "yaml2json: every document of a stream, plain scalars typed (YAML 1.2 core), quoted ones strings" \
  test "$("$Y" "$t/ok.yaml")" = '[{"a":1,"b":"1","c":"yes","d":null,"e":1.5,"f":true,"8080":"x","g":["p",{"q":"r"}]},[2],null]'
printf 'a: &x 1\nb: *x\n' >"$t/alias.yaml"
printf 'a: 1\nb: 2\na: 3\n' >"$t/dup.yaml"
printf 'a:\n  b: 1\n c: 2\n' >"$t/bad.yaml"
"$Y" "$t/alias.yaml" >/dev/null 2>"$t/alias.err"; rc_alias=$?
"$Y" "$t/dup.yaml" >/dev/null 2>"$t/dup.err"; rc_dup=$?
"$Y" "$t/bad.yaml" >/dev/null 2>"$t/bad.err"; rc_bad=$?
check "yaml2json: anchors and aliases are refused (exit 1, file:line:column)" \
  grep -q "^$t/alias.yaml:1:4: anchors are refused" "$t/alias.err"
check "yaml2json: a key given twice is refused at its line" \
  grep -q "^$t/dup.yaml:3:1: duplicate mapping key: a" "$t/dup.err"
check "yaml2json: a syntax error exits 1 with file:line:column" \
  bash -c "[ $rc_alias = 1 ] && [ $rc_dup = 1 ] && [ $rc_bad = 1 ] && grep -qE '^$t/bad.yaml:3:2: ' '$t/bad.err'"

# ---- every YAML file under deploy/ parses ----
mapfile -t yamls < <(find deploy -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
check "deploy/ has the compose file, Kubernetes manifests and Prometheus rules (${#yamls[@]} YAML files)" \
  test "${#yamls[@]}" -ge 20
for f in "${yamls[@]}"; do
  out="$J/${f//\//_}.json"
  if "$Y" "$f" >"$out" 2>"$out.err"; then
    ok "YAML parses: $f ($(jq length "$out") document(s))"
  else
    not_ok "YAML parses: $f" "$(head -1 "$out.err")"
  fi
done
jf() { echo "$J/${1//\//_}.json"; }

# ---- settings: the names docs/configuration.md gives, and the shutdown deadline ----
known_env=" $(grep -oE '^\| `--[a-z-]+` \| `[A-Z_]+`' docs/configuration.md | sed -E 's/.*`([A-Z_]+)`$/\1/' | tr '\n' ' ') "
check "docs/configuration.md lists the settings' environment variables" \
  test "$(wc -w <<<"$known_env")" -ge 20
doc_shutdown=$(grep -E '`CASEWIRE_SHUTDOWN_TIMEOUT`' docs/configuration.md | awk -F'|' '{print $4}' | tr -d ' `')
cm_shutdown=$(jq -r '.[0].data.CASEWIRE_SHUTDOWN_TIMEOUT // empty' "$(jf deploy/k8s/configmap.yaml)" 2>/dev/null)
SHUTDOWN_MS=$(dur_ms "${cm_shutdown:-$doc_shutdown}")
# A service may take up to 2 s past its drain deadline for its libraries (scripts/run.sh).
STOP_MS=$((SHUTDOWN_MS + 2000))
check "the shutdown deadline is known: ${cm_shutdown:-$doc_shutdown} (docs default $doc_shutdown), so ${STOP_MS} ms to stop" \
  test "$SHUTDOWN_MS" -gt 0

# ---- topics: common/event.h, retention from docs/events.md ----
mapfile -t TOPICS < <(sed -nE 's/^#define CW_TOPIC_[A-Z_]+ +"([^"]+)".*/\1/p' common/event.h)
check "common/event.h names the topics (${#TOPICS[@]})" test "${#TOPICS[@]}" -ge 6
declare -A RETENTION_MS
for tp in "${TOPICS[@]}"; do
  days=$(grep -E "^\| \`$tp\` \|" docs/events.md | awk -F'|' '{print $(NF-1)}' | grep -oE '[0-9]+ days' | head -1 | cut -d' ' -f1)
  [ -n "$days" ] && RETENTION_MS[$tp]=$((days * 86400000))
done

# ---- compose ----
C=$(jf deploy/compose/compose.yaml)
jq '.[0]' "$C" >"$J/compose.json" 2>/dev/null
C="$J/compose.json"
kafka=$(jq -c '[.services | to_entries[] | select(.value.image // "" | startswith("apache/kafka"))
  | select((.value.environment.KAFKA_PROCESS_ROLES // "") | split(",") | index("broker"))]' "$C")
check "compose: 3 Kafka brokers (apache/kafka, process.roles with broker)" \
  test "$(jq length <<<"$kafka")" = 3
check "compose: KRaft: each broker has a node id (distinct), the 3-voter quorum and a controller listener" \
  jqe 'length == 3 and ([.[].value.environment.KAFKA_NODE_ID] | unique | length) == 3
    and all(.[]; (.value.environment.KAFKA_CONTROLLER_QUORUM_VOTERS // "" | split(",") | length) == 3
      and (.value.environment.KAFKA_CONTROLLER_LISTENER_NAMES // "") != ""
      and (.value.environment.CLUSTER_ID // "") != "")' <<<"$kafka"
check "compose: no ZooKeeper anywhere" \
  bash -c "! grep -qi zookeeper deploy/compose/compose.yaml"
check "compose: the Kafka image is pinned to a version" \
  jqe 'all(.[]; .value.image | test("^apache/kafka:[0-9]+\\.[0-9]+\\.[0-9]+$"))' <<<"$kafka"
check "compose: brokers keep 3 copies and 2 in sync by default (offsets too), no auto-created topics" \
  jqe 'all(.[]; .value.environment | .KAFKA_DEFAULT_REPLICATION_FACTOR == "3" and .KAFKA_MIN_INSYNC_REPLICAS == "2"
    and .KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR == "3" and .KAFKA_AUTO_CREATE_TOPICS_ENABLE == "false")' <<<"$kafka"

redis_cmd=$(jq -r '.services.redis.command | if type == "array" then join(" ") else . end' "$C")
check "compose: Redis mounts deploy/redis.conf (append-only file on) and its command keeps --appendonly yes" \
  bash -c '[ "$(jq -r ".configs.redis_conf.file" "$1")" = ../redis.conf ] &&
    jqe ".services.redis.configs[] | select(.source == \"redis_conf\")" "$1" >/dev/null &&
    grep -qE "^appendonly yes" deploy/redis.conf && grep -q -- "--appendonly yes" <<<"$2"' _ "$C" "$redis_cmd"
check "compose: Redis has a password and a healthcheck" \
  bash -c 'grep -q -- "--requirepass" <<<"$2" && jqe ".services.redis.healthcheck.test" "$1" >/dev/null' _ "$C" "$redis_cmd"
# The same command line against a real redis-server: our redis.conf plus the container's flags.
rdir="$CW_TMP/redis-compose"
mkdir -p "$rdir"
rport=$(free_port)
args=$(sed -nE 's/.*exec redis-server [^ ]+ (.*)$/\1/p' <<<"$redis_cmd" |
  sed -e "s|--port 6379|--port $rport|" -e "s|--dir /data|--dir $rdir|" -e 's|"\$\$REDIS_MAXMEMORY"|64mb|' \
    -e 's|"\$\$REDIS_PASSWORD"|compose-test-pw|' -e 's|--bind 0.0.0.0|--bind 127.0.0.1|')
# shellcheck disable=SC2086
redis-server "$CW_ROOT/deploy/redis.conf" $args --logfile "$rdir/redis.log" &
rpid=$!
track_pid "$rpid"
if wait_until 10 bash -c "REDISCLI_AUTH=compose-test-pw redis-cli -p $rport ping 2>/dev/null | grep -q PONG"; then
  aof=$(REDISCLI_AUTH=compose-test-pw redis-cli -p "$rport" config get appendonly | tail -1)
  pol=$(REDISCLI_AUTH=compose-test-pw redis-cli -p "$rport" config get maxmemory-policy | tail -1)
  check "compose: redis-server takes deploy/redis.conf with the compose flags (appendonly=$aof, $pol)" \
    test "$aof/$pol" = "yes/noeviction"
  check "compose: ... and it refuses clients without the password" \
    bash -c "redis-cli -p $rport ping 2>&1 | grep -q NOAUTH"
else
  not_ok "compose: redis-server takes deploy/redis.conf with the compose flags ($args)" "$(tail -3 "$rdir/redis.log")"
fi
kill "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null

for s in "${SERVICES[@]}"; do
  check "compose: $s runs casewire-$s with a healthcheck on /readyz of port ${PORT[$s]}" \
    jqe --arg s "$s" --arg p "${PORT[$s]}" '.services[$s] as $v | ($v.command | tostring | contains("casewire-" + $s))
      and ($v.healthcheck.test | tostring | contains(":" + $p + "/readyz"))' "$C"
  sg=$(jq -r --arg s "$s" '.services[$s].stop_grace_period // "10s"' "$C")
  check "compose: $s has KAFKA_BROKERS, CASEWIRE_CHAIN, secrets from secrets.env, stop_grace_period $sg > ${STOP_MS} ms" \
    bash -c 'jqe --arg s "$1" ".services[\$s] | (.environment.KAFKA_BROKERS // \"\") != \"\" and
        (.environment.CASEWIRE_CHAIN // \"\") != \"\" and (.env_file | tostring | contains(\"secrets.env\"))" "$2" >/dev/null &&
      [ "$3" -gt "$4" ]' _ "$s" "$C" "$(dur_ms "$sg")" "$STOP_MS"
  unknown=$(jq -r --arg s "$s" '.services[$s].environment | keys[]' "$C" | while read -r k; do
    [[ "$known_env" == *" $k "* ]] || echo "$k"; done | tr '\n' ' ')
  check "compose: $s's settings are all named as in docs/configuration.md${unknown:+ (unknown: $unknown)}" test -z "$unknown"
done
check "compose: the services wait for the topic job and a healthy Redis" \
  jqe '[.services.gateway, .services.router, .services.deadline, .services.notifier]
    | all(.[]; .depends_on["kafka-topics"].condition == "service_completed_successfully"
      and .depends_on.redis.condition == "service_healthy")' "$C"
check "compose: secrets.env is not committed and is ignored" \
  bash -c '[ -z "$(git ls-files deploy/compose/secrets.env deploy/compose/.env)" ] &&
    grep -qx "secrets.env" deploy/compose/.gitignore && [ -f deploy/compose/secrets.env.example ]'

job=$(jq -r '[.services[] | select((.command, .entrypoint) | tostring | contains("kafka-topics.sh"))][0]
  | [(.entrypoint // [] | if type == "array" then join(" ") else . end),
     (.command // [] | if type == "array" then join("\n") else . end)] | join("\n")' "$C")
check "compose: a one-shot job runs kafka-topics.sh with replication factor 3 and min.insync.replicas=2" \
  bash -c 'grep -q -- "--replication-factor 3" <<<"$1" && grep -q "min.insync.replicas=2" <<<"$1" &&
    grep -q -- "--create" <<<"$1"' _ "$job"
check "compose: the topic job restarts never and depends on healthy brokers" \
  jqe '.services["kafka-topics"] | .restart == "no" and ([.depends_on[].condition] | all(. == "service_healthy"))' "$C"
for tp in "${TOPICS[@]}"; do
  line=$(grep -E "^ *create +${tp//./\\.} " <<<"$job" | head -1)
  ret=$(awk '{print $4}' <<<"$line")
  check "compose: the topic job creates $tp (retention ${ret:-none} ms; docs/events.md: ${RETENTION_MS[$tp]:-?})" \
    bash -c '[ -n "$1" ] && [ "$2" = "$3" ]' _ "$line" "$ret" "${RETENTION_MS[$tp]:-unknown}"
done
extra=$(grep -oE '^ *create +casewire\.[a-z0-9.-]+' <<<"$job" | awk '{print $2}' | while read -r x; do
  [[ " ${TOPICS[*]} " == *" $x "* ]] || echo "$x"; done | tr '\n' ' ')
check "compose: the topic job creates no topic common/event.h does not name${extra:+ ($extra)}" test -z "$extra"

# ---- the image ----
D=deploy/compose/Dockerfile
runtime=$(awk '/^FROM /{n++} n==2' "$D")
check "Dockerfile: both stages are Debian 12, the build stage runs make" \
  bash -c '[ "$(grep -cE "^FROM debian:12(-slim)?( |$)" "$1")" = 2 ] && awk "/^FROM /{n++} n==1" "$1" | grep -qE "make( |$)"' _ "$D"
# The runtime stage installs the Debian package of every library the binaries link directly
# (libc's own excepted, and the sanitizers' runtimes when this is the sanitizer build: the image
# builds without them), plus the time zones, CA certificates and curl for the healthchecks.
need=$(for b in gateway router deadline notifier; do
  readelf -d "$CW_BUILD/bin/casewire-$b" | sed -nE 's/.*Shared library: \[(.*)\]/\1/p'
done | sort -u | while read -r lib; do
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
  [ -n "$path" ] && dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1
done | grep -vxE 'libc6|libasan[0-9]*|libubsan[0-9]*' | sort -u | tr '\n' ' ')
missing=""
for p in $need tzdata ca-certificates curl; do grep -qE "(^|[ \\])$p( |$)" <<<"$runtime" || missing+="$p "; done
check "Dockerfile: the runtime stage installs what the binaries link ($need)${missing:+ (missing: $missing)}" \
  bash -c '[ -n "$1" ] && [ -z "$2" ]' _ "$need" "$missing"
check "compose: the four services use one image built from deploy/compose/Dockerfile" \
  jqe '[.services.gateway, .services.router, .services.deadline, .services.notifier]
    | all(.[]; .build.dockerfile == "deploy/compose/Dockerfile") and ([.[].image] | unique | length) == 1' "$C"

# ---- Kubernetes ----
K="$J/k8s.json"
for f in deploy/k8s/*.yaml; do cat "$(jf "$f")"; done | jq -s 'add' >"$K"
check "k8s: every manifest is one or more documents with apiVersion and kind" \
  jqe 'length > 0 and all(.[]; .apiVersion and .kind and (.kind == "Kustomization" or .metadata.name))' "$K"
cm_names=$(jq -r '[.[] | select(.kind == "ConfigMap" and .metadata.namespace == "casewire") | .metadata.name] | join(" ")' "$K")
sec_names=$(jq -r '[.[] | select(.kind == "Secret") | .metadata.name] | join(" ")' "$K")
check "k8s: ConfigMaps ($cm_names) hold the settings and the chain file" \
  jqe '[.[] | select(.kind == "ConfigMap" and .metadata.namespace == "casewire")] |
    any(.data.KAFKA_BROKERS) and any(.data.CASEWIRE_KAFKA_CONF) and any(.data["chain.yaml"])' "$K"
unknown=$(jq -r '.[] | select(.kind == "ConfigMap" and .data.KAFKA_BROKERS) | .data | keys[]' "$K" | while read -r k; do
  [[ "$known_env" == *" $k "* ]] || echo "$k"; done | tr '\n' ' ')
check "k8s: the ConfigMap's settings are named as in docs/configuration.md${unknown:+ (unknown: $unknown)}" test -z "$unknown"
check "k8s: Secrets ($sec_names) hold REDIS_URL and nothing but clearly marked placeholders" \
  jqe '[.[] | select(.kind == "Secret")] | length > 0 and any(.stringData.REDIS_URL)
    and all(.[]; (.data // {}) == {} and ((.stringData // {}) | to_entries | all(.value | test("PLACEHOLDER"))))' "$K"
for s in "${SERVICES[@]}"; do
  d=$(jq -c --arg n "casewire-$s" '[.[] | select(.kind == "Deployment" and .metadata.name == $n)][0] // empty' "$K")
  if [ -z "$d" ]; then not_ok "k8s: a Deployment casewire-$s"; continue; fi
  check "k8s: Deployment casewire-$s runs casewire-$s, listening on ${PORT[$s]}" \
    jqe --arg s "$s" --arg p "${PORT[$s]}" '.spec.template.spec.containers[0] |
      (.command | tostring | contains("casewire-" + $s)) and (.ports | any(.containerPort == ($p | tonumber)))
      and ([.env[]? | select(.name == "CASEWIRE_HTTP_PORT" or .name == "CASEWIRE_ADMIN_PORT") | .value] == [$p])' <<<"$d"
  check "k8s: casewire-$s: liveness on /healthz and readiness on /readyz, on port ${PORT[$s]}" \
    jqe --arg p "${PORT[$s]}" '.spec.template.spec.containers[0] as $c
      | def port(x): if (x | type) == "number" then x else ($c.ports[] | select(.name == x) | .containerPort) end;
      $c.livenessProbe.httpGet.path == "/healthz" and $c.readinessProbe.httpGet.path == "/readyz"
      and port($c.livenessProbe.httpGet.port) == ($p | tonumber) and port($c.readinessProbe.httpGet.port) == ($p | tonumber)' <<<"$d"
  grace=$(jq -r '.spec.template.spec.terminationGracePeriodSeconds // 30' <<<"$d")
  pre=$(jq -r '.spec.template.spec.containers[0].lifecycle.preStop.exec.command // [] | if .[0] == "sleep" then .[1] else 0 end' <<<"$d")
  check "k8s: casewire-$s: terminationGracePeriodSeconds $grace s covers a ${pre} s preStop and the ${STOP_MS} ms shutdown" \
    test $((grace * 1000)) -gt $((pre * 1000 + STOP_MS))
  check "k8s: casewire-$s: resources requested, memory limited, config and secrets from casewire-config and casewire-secrets" \
    jqe '.spec.template.spec.containers[0] | .resources.requests.cpu and .resources.requests.memory
      and .resources.limits.memory and ([.envFrom[] | (.configMapRef.name // .secretRef.name)] | index("casewire-config") and index("casewire-secrets"))' <<<"$d"
  check "k8s: casewire-$s: not root, no privilege escalation, read-only root file system" \
    jqe '.spec.template.spec.securityContext.runAsNonRoot and (.spec.template.spec.containers[0].securityContext |
      .allowPrivilegeEscalation == false and .readOnlyRootFilesystem)' <<<"$d"
  check "k8s: casewire-$s is scraped (prometheus.io annotations on port ${PORT[$s]})" \
    jqe --arg p "${PORT[$s]}" '.spec.template.metadata.annotations | .["prometheus.io/scrape"] == "true" and .["prometheus.io/port"] == $p' <<<"$d"
  labels=$(jq -c '.spec.template.metadata.labels' <<<"$d")
  check "k8s: a PodDisruptionBudget selects casewire-$s's pods" \
    jqe --argjson l "$labels" 'any(.[]; .kind == "PodDisruptionBudget" and (.spec.selector.matchLabels | to_entries | all(. as $e | $l[$e.key] == $e.value)))' "$K"
done
check "k8s: a Service in front of the gateway's pods, on its http port" \
  jqe 'any(.[]; .kind == "Service" and .spec.selector["app.kubernetes.io/name"] == "casewire-gateway" and any(.spec.ports[]; .targetPort == "http" or .targetPort == 8080))' "$K"
lag_metric=$(jq -r '.[] | select(.kind == "ConfigMap" and .data["config.yaml"]) | .data["config.yaml"]' "$K" |
  "$Y" /dev/stdin 2>/dev/null | jq -r '.[0].externalRules[]? | select(.seriesQuery | contains("casewire_kafka_consumer_lag")) | .name.as' | head -1)
check "k8s: the prometheus-adapter rule turns casewire_kafka_consumer_lag into the external metric ${lag_metric:-?}" test -n "$lag_metric"
for w in "${WORKERS[@]}"; do
  check "k8s: an HPA scales casewire-$w on ${lag_metric:-the lag metric} (External or Pods) with a maximum" \
    jqe --arg n "casewire-$w" --arg m "$lag_metric" 'any(.[]; .kind == "HorizontalPodAutoscaler" and .spec.scaleTargetRef.name == $n
      and .spec.maxReplicas > 0 and any(.spec.metrics[]; (.external.metric.name // .pods.metric.name) == $m))' "$K"
done
listed=$(jq -r '.[0].resources[]' "$(jf deploy/k8s/kustomization.yaml)" | sort | tr '\n' ' ')
present=$(for f in deploy/k8s/*.yaml; do f=${f##*/}; [ "$f" = kustomization.yaml ] || echo "$f"; done | sort | tr '\n' ' ')
check "k8s: kustomization.yaml lists every manifest" test "$listed" = "$present"
if command -v kubectl >/dev/null && timeout 60 kubectl kustomize deploy/k8s >"$CW_TMP/kustomize.out" 2>&1; then
  ok "k8s: kubectl kustomize builds deploy/k8s ($(grep -c '^kind:' "$CW_TMP/kustomize.out") objects)"
elif command -v kubectl >/dev/null; then
  not_ok "k8s: kubectl kustomize builds deploy/k8s" "$(head -1 "$CW_TMP/kustomize.out")"
else
  echo "# note: kubectl is not installed: kustomize build not tried"
fi

# ---- systemd ----
for s in "${SERVICES[@]}"; do
  check "systemd: casewire-$s.service exists" test -f "deploy/systemd/casewire-$s.service"
done
check "systemd: a template unit runs several routers on one host, one per admin port (%i)" \
  bash -c 'unit="deploy/systemd/casewire-router@.service"; [ -f "$unit" ] && grep -qE "^ExecStart=.*--admin-port=%i" "$unit"'
for u in deploy/systemd/*.service; do
  n=$(basename "$u" .service)
  svc=${n#casewire-}
  svc=${svc%@}
  exec_start=$(unit_key "$u" Service ExecStart)
  tss=$(unit_key "$u" Service TimeoutStopSec)
  check "systemd: $n: ExecStart runs casewire-$svc, Restart=on-failure, User=casewire" \
    bash -c '[[ "$1" == */casewire-$2* ]] && [ "$3" = on-failure ] && [ "$4" = casewire ]' _ \
    "$exec_start" "$svc" "$(unit_key "$u" Service Restart)" "$(unit_key "$u" Service User)"
  check "systemd: $n: TimeoutStopSec=$tss above the ${STOP_MS} ms shutdown" \
    bash -c '[ -n "$1" ] && [ "$2" -gt "$3" ]' _ "$tss" "$(dur_ms "${tss:-0}")" "$STOP_MS"
  check "systemd: $n: EnvironmentFile=/etc/casewire/$svc.env, LimitNOFILE, NoNewPrivileges, ProtectSystem=strict, PrivateTmp" \
    bash -c 'unit_key() { awk -v sec="[$2]" -v k="$3" "/^\\[/ { s = \$0; next } s == sec && index(\$0, k \"=\") == 1 { print substr(\$0, length(k) + 2) }" "$1"; }
      unit_key "$1" Service EnvironmentFile | grep -qx "/etc/casewire/$2.env" &&
      [ -n "$(unit_key "$1" Service LimitNOFILE)" ] && [ "$(unit_key "$1" Service NoNewPrivileges)" = yes ] &&
      [ "$(unit_key "$1" Service ProtectSystem)" = strict ] && [ "$(unit_key "$1" Service PrivateTmp)" = yes ]' _ "$u" "$svc"
done
check "systemd: the router may write its rules cache, the notifier its SMS file log (ReadWritePaths)" \
  bash -c 'grep -qE "^ReadWritePaths=/var/cache/casewire/router" deploy/systemd/casewire-router.service &&
    grep -qE "^CASEWIRE_RULES_CACHE=/var/cache/casewire/router" deploy/systemd/env/router.env.example &&
    grep -qE "^ReadWritePaths=/var/lib/casewire/notifier" deploy/systemd/casewire-notifier.service &&
    grep -qE "^WorkingDirectory=/var/lib/casewire/notifier" deploy/systemd/casewire-notifier.service'
if command -v systemd-analyze >/dev/null; then
  sd="$CW_TMP/units"
  mkdir -p "$sd"
  # Verified as installed, with the binaries of this build in place of /usr/local/bin.
  for u in deploy/systemd/*.service deploy/systemd/*.target; do
    b=$(basename "$u")
    sed "s|/usr/local/bin/|$CW_BUILD/bin/|" "$u" >"$sd/${b/@./@9111.}"
  done
  out=$(cd "$sd" && systemd-analyze verify ./*.service ./*.target 2>&1)
  check "systemd: systemd-analyze verify accepts every unit without a remark${out:+ ($(head -1 <<<"$out"))}" test -z "$out"
else
  echo "# note: systemd-analyze is not installed: units not verified by systemd"
fi

# ---- Prometheus rules and configs ----
R=deploy/prometheus/alerts.yml
out=$(promtool check rules "$R" 2>&1)
check "promtool check rules $R: $(grep -oE '[0-9]+ rules found' <<<"$out")" grep -q SUCCESS <<<"$out"
if [ -f deploy/prometheus/rules_test.yml ]; then
  out=$(cd deploy/prometheus && promtool test rules rules_test.yml 2>&1)
  check "promtool test rules deploy/prometheus/rules_test.yml" grep -q SUCCESS <<<"$out"
  grep -q SUCCESS <<<"$out" || echo "$out" | head -20 | sed 's/^/# /'
fi
out=$(promtool check config deploy/prometheus/prometheus.yml 2>&1)
check "promtool check config deploy/prometheus/prometheus.yml" grep -q "is valid prometheus config" <<<"$out"
out=$(promtool check config deploy/prometheus/prometheus-k8s.yml 2>&1)
if grep -q "is valid prometheus config" <<<"$out"; then
  ok "promtool check config deploy/prometheus/prometheus-k8s.yml"
elif grep -q "field kubernetes_sd_configs not found" <<<"$out"; then
  echo "# note: this promtool is built without Kubernetes discovery (Debian's): prometheus-k8s.yml checked by structure only"
  check "prometheus-k8s.yml: a kubernetes_sd pod job in namespace casewire that sets job, namespace and pod" \
    jqe '.[0].scrape_configs[0] | (.kubernetes_sd_configs[0].namespaces.names | index("casewire"))
      and ([.relabel_configs[].target_label] | index("job") and index("namespace") and index("pod"))' \
    "$(jf deploy/prometheus/prometheus-k8s.yml)"
else
  not_ok "promtool check config deploy/prometheus/prometheus-k8s.yml" "$(head -2 <<<"$out" | tail -1)"
fi
A="$(jf "$R")"
check "alerts: every rule has a severity, a summary, a description and a runbook_url into docs/operations.md" \
  jqe '[.[0].groups[].rules[]] | length > 0 and all(.[]; .alert and .labels.severity and .annotations.summary
    and .annotations.description and (.annotations.runbook_url | startswith("docs/operations.md#")))' "$A"
# GitHub's anchor of a heading: lower case, spaces to -, most punctuation dropped.
anchors=" $(grep -E '^#{1,6} ' docs/operations.md 2>/dev/null | sed -E 's/^#+ +//' | tr 'A-Z' 'a-z' |
  sed -E 's/[^a-z0-9 _-]//g; s/ /-/g' | tr '\n' ' ') "
missing=$(jq -r '.[0].groups[].rules[].annotations.runbook_url' "$A" | sed 's/.*#//' | while read -r a; do
  [[ "$anchors" == *" $a "* ]] || echo "$a"; done | tr '\n' ' ')
check "alerts: every runbook anchor is a section of docs/operations.md${missing:+ (missing: $missing)}" test -z "$missing"
for need in 'up{' casewire_redis_connected casewire_redis_timeouts_total casewire_kafka_producer_pending \
  casewire_gateway_unconfirmed_total 'status=~"5..' casewire_http_request_duration_seconds_bucket \
  casewire_deadline_lateness_seconds_bucket casewire_deadline_fenced_total casewire_deadline_abandoned_total \
  casewire_notifier_dead_letters_total casewire_notifier_sms_total casewire_kafka_consumer_lag; do
  check "alerts: a rule on $need" jqe --arg n "$need" 'any(.[0].groups[].rules[]; .expr | contains($n))' "$A"
done

# ---- Grafana ----
G=deploy/grafana/casewire.json
check "grafana: $G is valid JSON with a title, a uid and panels with queries" \
  jqe '.title and .uid and ([.panels[] | select(.type != "row")] | length > 10
    and all(.[]; (.targets | length) > 0 and all(.targets[]; .expr != "")))' "$G"
check "grafana: panel ids are unique" jqe '[.panels[].id] | length == (unique | length)' "$G"
for need in casewire_http_requests_total casewire_http_request_duration_seconds_bucket casewire_gateway_cases_accepted_total \
  casewire_router_cases_routed_total casewire_deadline_fired_total casewire_deadline_lateness_seconds_bucket \
  casewire_notifier_sms_total casewire_redis_connected casewire_kafka_producer_pending casewire_kafka_consumer_lag; do
  check "grafana: a panel on $need" jqe --arg n "$need" 'any(.panels[].targets[]?; .expr | contains($n))' "$G"
done

# ---- the metrics the rules and the dashboard use exist ----
# The four services with the Kubernetes ConfigMap's tuning (paths, brokers and TLS are this
# machine's): it must be accepted as it is.
cm_env=()
while IFS= read -r kv; do cm_env+=("$kv"); done < <(jq -r '.[0].data | to_entries[]
  | select(.key | IN("KAFKA_BROKERS", "CASEWIRE_KAFKA_CONF", "CASEWIRE_CHAIN", "CASEWIRE_HTTP_BIND", "CASEWIRE_ADMIN_BIND") | not)
  | "\(.key)=\(.value)"' "$(jf deploy/k8s/configmap.yaml)")
start_redis "$CW_TMP/redis" || { not_ok "redis starts"; exit 1; }
start_devbroker "$CW_TMP/broker" || { not_ok "devbroker starts"; exit 1; }
CHAIN="$CW_TMP/chain.yaml"
sed -e "s|^  file: var/sms.log|  file: $CW_TMP/sms.log|" "$CW_ROOT/deploy/chain.example.yaml" >"$CHAIN"
start_gateway "$CW_TMP/gw" CASEWIRE_CHAIN="$CHAIN" "${cm_env[@]}" CASEWIRE_RATE_IP_PER_MIN=0 ||
  { not_ok "gateway starts"; exit 1; }
start_router "$CW_TMP/rt" CASEWIRE_CHAIN="$CHAIN" "${cm_env[@]}" || { not_ok "router starts"; exit 1; }
RT_PID=$ROUTER_PID
start_deadline "$CW_TMP/dl" CASEWIRE_CHAIN="$CHAIN" "${cm_env[@]}" || { not_ok "deadline worker starts"; exit 1; }
DL_PID=$DEADLINE_PID
nport=$(free_port)
_start_daemon notifier "$CW_TMP/nt" CASEWIRE_ADMIN_PORT "$nport" CASEWIRE_CHAIN="$CHAIN" "${cm_env[@]}" ||
  { not_ok "notifier starts"; exit 1; }
NT_PID=$DAEMON_PID
ok "gateway, router, deadline worker and notifier start with the ConfigMap's settings (${cm_env[*]})"
for s in rt/router dl/deadline nt/notifier; do
  wait_until 60 grep -q 'event=kafka.assigned' "$CW_TMP/$s.log" || not_ok "$s joined its group within 60 s"
done
# A case and a 404, so the request families have children; then wait until it is routed.
code=$(curl -s -o "$CW_TMP/case.json" -w '%{http_code}' -X POST "$GW_URL/v1/cases" -H 'Content-Type: application/json' \
  -H 'Idempotency-Key: deploy-1' -d '{"site":"SH01","channel":"web","text":"在3楼悦茶坊买的奶茶有异物，要求退款",
  "customer":{"name":"张三","phone":"13800138000"},"location":{"floor":"3F","tenant":"T-SH01-0312"}}')
curl -s -o /dev/null "$GW_URL/no-such-page"
check "a case is accepted ($code)" test "$code" = 202
routed() { curl -s "$ROUTER_ADMIN/metrics" | grep -qE '^casewire_router_cases_routed_total [1-9]'; }
check "... and routed" wait_until 30 routed
M="$CW_TMP/metrics"
: >"$M.txt"
for url in "$GW_URL" "$ROUTER_ADMIN" "$DEADLINE_ADMIN" "http://127.0.0.1:$nport"; do
  curl -s "$url/metrics" >>"$M.txt"
done
# Names: every sample's name and every TYPE (histograms with their _bucket, _sum, _count).
{
  sed -nE 's/^# TYPE ([a-z_:0-9]+) histogram$/\1_bucket\n\1_sum\n\1_count/p' "$M.txt"
  sed -nE 's/^# TYPE ([a-z_:0-9]+) .*/\1/p' "$M.txt"
  grep -v '^#' "$M.txt" | sed -E 's/[{ ].*//'
} | sort -u >"$M.names"
# "metric label" for every label seen on a sample; "metric label=value" for every value.
grep -v '^#' "$M.txt" | sed -E 's/ [^ ]+$//' | awk '{
  n = $0; sub(/\{.*/, "", n); if (!match($0, /\{.*\}/)) next
  l = substr($0, RSTART + 1, RLENGTH - 2)
  while (match(l, /[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"/)) {
    kv = substr(l, RSTART, RLENGTH); k = kv; sub(/=.*/, "", k); v = kv; sub(/^[^=]*="/, "", v); sub(/"$/, "", v)
    print n " " k; print n " " k "=" v; l = substr(l, RSTART + RLENGTH) } }' | sort -u >"$M.labels"
check "the services export metrics ($(wc -l <"$M.names") names)" test "$(wc -l <"$M.names")" -gt 50
exprs="$CW_TMP/exprs"
{
  jq -r '.[0].groups[].rules[].expr' "$A"
  jq -r '.panels[].targets[]?.expr' "$G"
} >"$exprs"
used=$(grep -oE 'casewire_[a-z0-9_]+' "$exprs" | sort -u)
missing="" allowed=""
for m in $used; do
  grep -qx "$m" "$M.names" && continue
  if [ "$m" = casewire_kafka_consumer_lag ]; then allowed="$m"; else missing+="$m "; fi
done
check "every metric the alerts and the dashboard use is exported ($(wc -w <<<"$used") names)${missing:+ (missing: $missing)}" \
  test -z "$missing"
[ -n "$allowed" ] && echo "# note: $allowed is not exported by this build yet: the lag alerts, the HPAs and the dashboard's lag panels wait for it"
# Label selectors: metric{label=~"a|b"}: the label exists on the metric; plain values exist too.
bad=""
while IFS= read -r sel; do
  m=${sel%%\{*}
  grep -qx "$m" "$M.names" || continue
  body=${sel#*\{}
  body=${body%\}}
  while IFS= read -r matcher; do
    [ -n "$matcher" ] || continue
    k=$(sed -E 's/^([a-zA-Z_][a-zA-Z0-9_]*).*/\1/' <<<"$matcher")
    v=$(sed -E 's/^[^"]*"(.*)"$/\1/' <<<"$matcher")
    case "$k" in job | instance | namespace | pod | le) continue ;; esac
    if ! grep -qx "$m $k" "$M.labels"; then bad+="$m{$k} "; continue; fi
    # alternatives of plain words (not regexes) must each be a value seen
    if [[ "$matcher" =~ ^[a-z_]+=~?\"[A-Za-z0-9_|]+\"$ ]]; then
      IFS='|' read -ra alts <<<"$v"
      for a in "${alts[@]}"; do grep -qx "$m $k=$a" "$M.labels" || bad+="$m{$k=$a} "; done
    fi
  done < <(grep -oE '[a-zA-Z_][a-zA-Z0-9_]*(=~|!~|!=|=)"[^"]*"' <<<"$body")
done < <(grep -oE 'casewire_[a-z0-9_]+\{[^}]*\}' "$exprs" | sort -u)
check "every label (and plain label value) the alerts and the dashboard select on exists${bad:+ (not found: $bad)}" test -z "$bad"
# Labels grouped on (by/without): each is a target label or on some exported metric.
bad=""
for k in $(grep -oE '(by|without) *\([^)]*\)' "$exprs" | sed -E 's/^[a-z]+ *\(//; s/\)$//' | tr ',' '\n' | tr -d ' ' | sort -u); do
  case "$k" in job | instance | namespace | pod | le) continue ;; esac
  grep -qE " $k\$" "$M.labels" || bad+="$k "
done
check "every label the alerts and the dashboard group by is exported${bad:+ (not found: $bad)}" test -z "$bad"

# The grace periods above rest on this: each service stops within its deadline plus 2 s.
secs=$(((STOP_MS + 999) / 1000))
check_stops "the gateway" "$GW_PID" "$secs"
check_stops "the router" "$RT_PID" "$secs"
check_stops "the deadline worker" "$DL_PID" "$secs"
check_stops "the notifier" "$NT_PID" "$secs"

# ---- the operations guide ----
O=docs/operations.md
check "docs/operations.md has the capacity placeholder pointing at bench/results/" \
  bash -c 'grep -qE "^#+ Capacity \(from the benchmark report\)" "$1" && grep -q "bench/results/" "$1"' _ "$O"
check "docs/operations.md says what was validated here and what was not run" \
  grep -qE '^#+ What was validated here and what was not run' "$O"
