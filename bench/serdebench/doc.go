// Package serdebench measures the Avro serde against serde.JSON and
// against hamba/avro (a reference point outside the product module) on
// one 10-field record: go test -bench . -benchmem ./serdebench (see
// bench/README.md). The registry is in-process; after the first record
// every serde works from its cache, so the figures are the codecs'.
package serdebench
