#!/usr/bin/env bash
# A local single-node Kafka (KRaft broker+controller) on 127.0.0.1 from Maven Central jars.
#   kafka.sh fetch | up | down | status | wait
# Environment: KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (port+1), KAFKA_DATA_DIR (var/kafka),
# KAFKA_JARS_DIR (.cache/kafka-jars), KAFKA_HEAP (512m), PYTHON (.venv/bin/python).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${KAFKA_PORT:-19092}
cport=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
data=${KAFKA_DATA_DIR:-$root/var/kafka}
jars=${KAFKA_JARS_DIR:-$root/.cache/kafka-jars}
python=${PYTHON:-$root/.venv/bin/python}
pidfile="$data/broker.pid"

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

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

up() {
  fetch
  if running; then echo "kafka already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
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
log.retention.hours=168
PROPS
  if [ ! -f "$data/logs/meta.properties" ]; then
    cluster_id=$("$python" -c "import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip('='))")
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

wait_ready() {
  for _ in $(seq 1 120); do
    if answers; then return 0; fi
    if ! running; then echo "kafka failed to start; see $data/broker.log" >&2; tail -20 "$data/broker.log" >&2; exit 1; fi
    sleep 0.5
  done
  echo "kafka did not answer on 127.0.0.1:$port within 60 s" >&2; exit 1
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
