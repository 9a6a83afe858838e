#!/usr/bin/env bash
# fetch-node-peers.sh installs the Node.js Kafka client the
# interoperability tests talk to, kafkajs from npm (a client written in
# JavaScript from the protocol up, sharing no code with the JVM, librdkafka
# or franz-go), into a directory of its own. Nothing it installs is
# committed.
#
# Layout (stable; the tests rely on it):
#
#   $DIR/node_modules/kafkajs   the client, for node with NODE_PATH=$DIR/node_modules
#   $DIR/VERSION                written last; its presence means done
#
# DIR is ${RUNNEL_NODE_PEERS:-$HOME/.cache/runnel/node-peers}. The script is
# idempotent and returns at once when the install is complete. It prints
# DIR on stdout; progress goes to stderr.
#
# Usage: scripts/fetch-node-peers.sh [--force]
set -euo pipefail

# The newest release when this was written.
KAFKAJS_VERSION=2.2.4

dir=${RUNNEL_NODE_PEERS:-$HOME/.cache/runnel/node-peers}
stamp="kafkajs=$KAFKAJS_VERSION"

if [[ ${1:-} != --force && -f $dir/VERSION && $(cat "$dir/VERSION") == "$stamp" ]]; then
	echo "$dir"
	exit 0
fi

for tool in node npm; do
	if ! command -v "$tool" >/dev/null; then
		echo "fetch-node-peers: $tool is not installed" >&2
		exit 1
	fi
done

rm -rf "$dir"
mkdir -p "$dir"
(cd "$dir" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "kafkajs@$KAFKAJS_VERSION") >&2
NODE_PATH=$dir/node_modules node -e 'console.error("kafkajs", require("kafkajs/package.json").version)'
echo "$stamp" >"$dir/VERSION"
echo "$dir"
