#!/usr/bin/env bash
# kafka-tool.sh runs one Apache Kafka main class on the classpath that
# scripts/fetch-kafka.sh made, as Kafka's bin/kafka-run-class.sh would.
#
# Usage: scripts/kafka-tool.sh CLASS [ARGS...]
#   e.g. scripts/kafka-tool.sh org.apache.kafka.tools.TopicCommand \
#          --bootstrap-server 127.0.0.1:9092 --list
#
# KAFKA_HOME defaults to ${RUNNEL_KAFKA_HOME:-$HOME/.cache/runnel/kafka-4.3.1}.
# KAFKA_HEAP_OPTS (default -Xmx256M) and KAFKA_OPTS add JVM options, so the
# same script runs a broker: KAFKA_HEAP_OPTS='-Xmx1G -Xms1G' kafka-tool.sh kafka.Kafka server.properties
set -euo pipefail

if [[ $# -lt 1 ]]; then
	echo "usage: $0 CLASS [ARGS...]" >&2
	exit 2
fi

KAFKA_HOME=${KAFKA_HOME:-${RUNNEL_KAFKA_HOME:-$HOME/.cache/runnel/kafka-4.3.1}}
if ! compgen -G "$KAFKA_HOME/libs/*.jar" >/dev/null; then
	echo "kafka-tool: no jars in $KAFKA_HOME/libs; run scripts/fetch-kafka.sh first" >&2
	exit 1
fi

class=$1
shift
# shellcheck disable=SC2086 # KAFKA_HEAP_OPTS and KAFKA_OPTS are word lists.
exec java ${KAFKA_HEAP_OPTS:--Xmx256M} \
	-Dlog4j2.configurationFile="$KAFKA_HOME/config/log4j2.properties" \
	${KAFKA_OPTS:-} -cp "$KAFKA_HOME/libs/*" "$class" "$@"
