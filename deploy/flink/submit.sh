#!/usr/bin/env bash
# Submit the analytics job to a Flink cluster with its SQL client:
#   KAFKA_BOOTSTRAP=broker-1:9092 FLINK_HOME=/usr/lib/flink deploy/flink/submit.sh
# The cluster needs the Kafka SQL connector jar (see README.md); pass it with CONNECTOR_JAR when it is not
# already in $FLINK_HOME/lib.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP to the brokers boxoffice uses (BOXOFFICE_KAFKA_BOOTSTRAP_SERVERS)}"
FLINK_HOME="${FLINK_HOME:-/usr/lib/flink}"
job="$(mktemp --suffix=.sql)"
trap 'rm -f "$job"' EXIT
{
  echo "SET 'pipeline.name' = 'boxoffice-analytics';"
  echo "SET 'table.local-time-zone' = 'UTC';"
  echo "SET 'execution.checkpointing.interval' = '10 s';"
  echo "SET 'table.exec.source.idle-timeout' = '5 s';"
  sed "s|\${KAFKA_BOOTSTRAP}|${KAFKA_BOOTSTRAP}|g" "$here/tables.sql"
  cat "$here/window.sql"
} >"$job"
jars=()
[ -n "${CONNECTOR_JAR:-}" ] && jars=(--jar "$CONNECTOR_JAR")
exec "$FLINK_HOME/bin/sql-client.sh" "${jars[@]}" -f "$job"
