package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/runnel-dev/runnel/stream"
	"github.com/runnel-dev/runnel/stream/serde"
)

// A recordFormat prints a key or a value that consume read, decoded as the
// bytes a Runnel (or Kafka) serde wrote.
type recordFormat func(b []byte) (string, error)

// formatNames lists --key-format and --value-format values for messages.
const formatNames = "string, bytes (hex), int32, int64, double, json, avro (Confluent's wire format, with --schema-registry-url), or windowed(FORMAT) for a windowed key"

// parseFormat reads a --key-format or --value-format value.
func parseFormat(name string) (recordFormat, error) {
	if inner, ok := strings.CutPrefix(name, "windowed("); ok && strings.HasSuffix(inner, ")") {
		innerFormat, err := parseFormat(strings.TrimSuffix(inner, ")"))
		if err != nil {
			return nil, err
		}
		return windowedFormat(innerFormat), nil
	}
	switch name {
	case "string":
		return func(b []byte) (string, error) { return string(b), nil }, nil
	case "bytes", "hex":
		return func(b []byte) (string, error) { return hex.EncodeToString(b), nil }, nil
	case "int32":
		return numberFormat("an int32", serde.Int32, func(v int32) string { return strconv.FormatInt(int64(v), 10) }), nil
	case "int64":
		return numberFormat("an int64", serde.Int64, func(v int64) string { return strconv.FormatInt(v, 10) }), nil
	case "double":
		return numberFormat("a double", serde.Float64, func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }), nil
	case "json":
		return func(b []byte) (string, error) {
			if !json.Valid(b) {
				return "", fmt.Errorf("not JSON (%d bytes)", len(b))
			}
			return string(b), nil
		}, nil
	}
	if name == "avro" {
		return nil, fmt.Errorf("format avro is for consume's --key-format and --value-format")
	}
	return nil, fmt.Errorf("unknown format %q; want %s", name, formatNames)
}

// numberFormat decodes with a fixed-width serde and prints with show.
func numberFormat[T any](what string, s serde.Serde[T], show func(T) string) recordFormat {
	return func(b []byte) (string, error) {
		v, err := s.Deserialize(b)
		if err != nil {
			return "", fmt.Errorf("not %s (%d bytes)", what, len(b))
		}
		return show(v), nil
	}
}

// windowedFormat prints a windowed key as Kafka's console consumer does,
// [KEY@START/END] in epoch milliseconds, from the layout stream's windowed
// serde writes: the inner key's bytes, then start and end.
func windowedFormat(inner recordFormat) recordFormat {
	ws := stream.WindowedSerde(serde.Bytes)
	return func(b []byte) (string, error) {
		w, err := ws.Deserialize(b)
		if err != nil {
			return "", fmt.Errorf("not a windowed key (%d bytes)", len(b))
		}
		k, err := inner(w.Key)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("[%s@%d/%d]", k, w.Start, w.End), nil
	}
}
