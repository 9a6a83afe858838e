#!/usr/bin/env bash
# fetch-python-peers.sh installs the Python Kafka clients the
# interoperability tests talk to: confluent-kafka from PyPI, whose wheels
# carry librdkafka (the C client kcat and most non-JVM clients are built
# on), with its avro and schemaregistry extras (Confluent's registry client
# and Avro serializers: httpx, fastavro, ...), into a virtual environment.
# Nothing it installs is committed.
#
# Layout (stable; the tests rely on it):
#
#   $VENV/bin/python   a Python that imports confluent_kafka and
#                      confluent_kafka.schema_registry.avro
#   $VENV/VERSION      written last; its presence means done
#
# VENV is ${RUNNEL_PYTHON_PEERS:-$HOME/.cache/runnel/python-peers}. The
# script is idempotent and returns at once when the install is complete. It
# prints VENV on stdout; progress goes to stderr.
#
# Usage: scripts/fetch-python-peers.sh [--force]
set -euo pipefail

# The newest release when this was written; raise it to test a newer
# librdkafka.
CONFLUENT_KAFKA_VERSION=2.16.1

venv=${RUNNEL_PYTHON_PEERS:-$HOME/.cache/runnel/python-peers}
stamp="confluent-kafka[avro,schemaregistry]=$CONFLUENT_KAFKA_VERSION"

if [[ ${1:-} != --force && -f $venv/VERSION && $(cat "$venv/VERSION") == "$stamp" ]]; then
	echo "$venv"
	exit 0
fi

if ! command -v python3 >/dev/null; then
	echo "fetch-python-peers: python3 is not installed" >&2
	exit 1
fi

rm -rf "$venv"
python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
	"confluent-kafka[avro,schemaregistry]==$CONFLUENT_KAFKA_VERSION" >&2
"$venv/bin/python" -c 'import confluent_kafka as ck; import confluent_kafka.schema_registry.avro; print("confluent-kafka", ck.version(), "librdkafka", ck.libversion()[0])' >&2
echo "$stamp" >"$venv/VERSION"
echo "$venv"
