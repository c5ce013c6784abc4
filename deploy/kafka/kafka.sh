#!/usr/bin/env bash
# A local single-node Kafka (KRaft broker+controller) on 127.0.0.1 from Maven Central jars.
#   kafka.sh fetch | up | down | status | wait
# Environment: KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (port+1), KAFKA_DATA_DIR (var/kafka),
# KAFKA_JARS_DIR (.cache/kafka-jars), KAFKA_HEAP (512m), PYTHON (.venv/bin/python),
# KAFKA_START_TIMEOUT (seconds `up` waits for the broker to answer: 120).
# `up` fails with the reason when a port is taken by another process, when the broker exits
# (the tail of its log is shown), or when what answers on the port is not the broker it
# started: "kafka up" always means this script's broker is the one listening.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${KAFKA_PORT:-19092}
cport=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
data=${KAFKA_DATA_DIR:-$root/var/kafka}
jars=${KAFKA_JARS_DIR:-$root/.cache/kafka-jars}
python=${PYTHON:-$root/.venv/bin/python}
pidfile="$data/broker.pid"
start_timeout=${KAFKA_START_TIMEOUT:-120}

fetch() {
  if [ -f "$jars/.complete" ]; then return 0; fi
  command -v java >/dev/null || { echo "kafka.sh: java is required (Java 17)" >&2; exit 1; }
  command -v mvn >/dev/null || { echo "kafka.sh: mvn is required to fetch the broker jars" >&2; exit 1; }
  echo "fetching Kafka broker jars into $jars ..."
  mkdir -p "$jars"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$jars" \
    -Dmdep.includeScope=runtime
  touch "$jars/.complete"
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# "pid 123 (command line)" of whoever listens on a port, for error messages.
owner_of() { "$python" -m services.common.ports "$1" 2>/dev/null || echo "another process"; }

refuse_taken_port() {
  if answers "$1"; then
    echo "kafka.sh: port $1 ($2) is taken by $(owner_of "$1"): stop it, or set $3 to a free port" >&2
    exit 1
  fi
}

show_log_tail() {
  echo "--- last lines of $data/broker.log ---" >&2
  tail -n 30 "$data/broker.log" >&2 2>/dev/null || true
}

up() {
  fetch
  if running; then echo "kafka already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
  refuse_taken_port "$port" "broker" KAFKA_PORT
  refuse_taken_port "$cport" "controller" KAFKA_CONTROLLER_PORT
  mkdir -p "$data/logs"
  cat > "$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/logs
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
# A one-broker box of two cores: fewer request threads than the defaults (3 network, 8 I/O),
# and the KRaft controller's no-op metadata records every 5 s instead of every 0.5 s. Together
# they halve the idle broker's CPU (~2.6 % -> ~1.3 % of a core), which a pipeline at light
# load pays per flow.
num.network.threads=2
num.io.threads=2
metadata.max.idle.interval.ms=5000
log.retention.hours=168
PROPS
  if [ ! -f "$data/logs/meta.properties" ]; then
    # Kafka's own ids never start with '-' (StorageTool would read such an id as an option and
    # fail to format: one start in 64 before this loop).
    cluster_id=$("$python" -c "
import base64, uuid
while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip('=')).startswith('-'):
    pass
print(cid)")
    java -cp "$jars/*" -Dlog4j.configuration="file:$here/log4j.properties" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$data/server.properties" >/dev/null
  fi
  nohup java -Xms256m -Xmx${KAFKA_HEAP:-512m} -XX:+UseG1GC -cp "$jars/*" \
    -Dlog4j.configuration="file:$here/log4j.properties" \
    kafka.Kafka "$data/server.properties" >"$data/broker.log" 2>&1 &
  echo $! >"$pidfile"
  wait_ready
  KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$port" "$python" -m services.common.topics
  echo "kafka up on 127.0.0.1:$port (data $data, log $data/broker.log)"
}

# Until the broker this script started answers on $port: fails when it exits, when another
# process answers there instead, or after $start_timeout seconds.
wait_ready() {
  local deadline=$((SECONDS + start_timeout)) ours listener
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! running; then
      echo "kafka.sh: the broker exited during start-up (port $port)" >&2; show_log_tail; exit 1
    fi
    if answers "$port"; then
      ours=$(cat "$pidfile")
      listener=$("$python" -m services.common.ports --pid "$port" 2>/dev/null || true)
      if [ -n "$listener" ] && [ "$listener" != "$ours" ]; then
        echo "kafka.sh: port $port answers for $(owner_of "$port"), not for the broker started here (pid $ours)" >&2
        show_log_tail; kill "$ours" 2>/dev/null || true; rm -f "$pidfile"; exit 1
      fi
      return 0
    fi
    sleep 0.5
  done
  echo "kafka.sh: the broker did not answer on 127.0.0.1:$port within $start_timeout s (KAFKA_START_TIMEOUT)" >&2
  show_log_tail; exit 1
}

down() {
  if ! running; then echo "kafka not running"; rm -f "$pidfile"; return 0; fi
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "kafka stopped"
}

status() { if running; then echo "running (pid $(cat "$pidfile")) on 127.0.0.1:$port"; else echo "stopped"; exit 1; fi; }

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  status) status ;;
  wait) wait_ready ;;
  *) echo "usage: $0 fetch|up|down|status|wait" >&2; exit 2 ;;
esac
