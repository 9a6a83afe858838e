#!/usr/bin/env bash
# fetch-kafka.sh fetches Apache Kafka's broker and command-line tools from
# Maven Central into a runnable classpath, for the interoperability tests and
# the benchmarks. Nothing it fetches is committed.
#
# Layout (stable; bench/ and the tests rely on it):
#
#   $KAFKA_HOME/libs/*.jar                 the classpath: java -cp "$KAFKA_HOME/libs/*"
#   $KAFKA_HOME/config/log4j2.properties   logging at WARN to stderr
#   $KAFKA_HOME/VERSION                    written last; its presence means done
#
# KAFKA_HOME is ${RUNNEL_KAFKA_HOME:-$HOME/.cache/runnel/kafka-$KAFKA_VERSION}.
# The script is idempotent and returns at once when the fetch is complete.
# It prints KAFKA_HOME on stdout; progress goes to stderr.
#
# Usage: scripts/fetch-kafka.sh [--force]
set -euo pipefail

KAFKA_VERSION=4.3.1
# Kafka 4.3 logs through the SLF4J 1.x API (slf4j-api 1.7.36 in its pom), so
# the binding is log4j-slf4j-impl, not log4j-slf4j2-impl.
SLF4J_VERSION=1.7.36
LOG4J_VERSION=2.26.1
DEPENDENCY_PLUGIN=3.8.1

home=${RUNNEL_KAFKA_HOME:-$HOME/.cache/runnel/kafka-$KAFKA_VERSION}
stamp="kafka=$KAFKA_VERSION slf4j=$SLF4J_VERSION log4j=$LOG4J_VERSION"

if [[ ${1:-} != --force && -f $home/VERSION && $(cat "$home/VERSION") == "$stamp" ]]; then
	echo "$home"
	exit 0
fi

for tool in java mvn; do
	if ! command -v "$tool" >/dev/null; then
		echo "fetch-kafka: $tool is not installed" >&2
		exit 1
	fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.runnel</groupId>
  <artifactId>kafka-peer</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>$SLF4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM

echo "fetch-kafka: resolving Apache Kafka $KAFKA_VERSION into $home/libs" >&2
mvn -B -q -f "$work/pom.xml" \
	"org.apache.maven.plugins:maven-dependency-plugin:$DEPENDENCY_PLUGIN:copy-dependencies" \
	-DincludeScope=runtime -DoutputDirectory="$work/libs" >&2

# Replace the previous libs whole, so a version change leaves no stale jars.
mkdir -p "$home/config"
rm -f "$home/VERSION"
rm -rf "$home/libs"
mv "$work/libs" "$home/libs"

cat >"$home/config/log4j2.properties" <<'LOG'
# Apache Kafka peer logging for Runnel's tests and benchmarks: WARN to stderr.
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
LOG

echo "$stamp" >"$home/VERSION"
echo "fetch-kafka: $(ls "$home/libs" | wc -l) jars in $home/libs" >&2
echo "$home"
