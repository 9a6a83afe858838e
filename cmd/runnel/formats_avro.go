package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/internal/avroschema"
)

// avroFormat prints Avro in Confluent's wire format (magic byte 0, the
// 4-byte schema id, the Avro binary) as Avro's JSON encoding, as
// Confluent's kafka-avro-console-consumer does (fields in schema order,
// unions as {"branch": value}): the writer's schema is
// fetched from the registry at url by the id in the bytes, once per id,
// with the schemas it references.
func avroFormat(url string) (recordFormat, error) {
	if url == "" {
		return nil, errors.New("avro needs --schema-registry-url")
	}
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	codecs := map[uint32]*avroschema.Parsed{}
	codecOf := func(id uint32) (*avroschema.Parsed, error) {
		mu.Lock()
		defer mu.Unlock()
		if c := codecs[id]; c != nil {
			return c, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := cl.SchemaByID(ctx, int(id))
		if err != nil {
			return nil, fmt.Errorf("schema %d: %w", id, err)
		}
		if s.Type != sr.TypeAvro {
			return nil, fmt.Errorf("schema %d is a %s schema, not Avro", id, s.Type)
		}
		c, err := avroschema.ParseWithReferences(s.Schema, avroRefs(s.References), func(subject string, version int) (string, []avroschema.Reference, error) {
			ss, err := cl.SchemaByVersion(ctx, subject, version)
			if err != nil {
				return "", nil, err
			}
			if ss.Type != sr.TypeAvro {
				return "", nil, fmt.Errorf("a %s schema", ss.Type)
			}
			return ss.Schema.Schema, avroRefs(ss.References), nil
		})
		if err != nil {
			return nil, fmt.Errorf("schema %d: %w", id, err)
		}
		codecs[id] = c
		return c, nil
	}
	return func(b []byte) (string, error) {
		if len(b) < 5 || b[0] != 0 {
			return "", fmt.Errorf("not Avro in Confluent's wire format (%d bytes)", len(b))
		}
		c, err := codecOf(binary.BigEndian.Uint32(b[1:5]))
		if err != nil {
			return "", err
		}
		native, rest, err := c.Decode(b[5:])
		if err != nil || len(rest) > 0 {
			return "", fmt.Errorf("not a value of schema %d (%d bytes)", binary.BigEndian.Uint32(b[1:5]), len(b))
		}
		text, err := avroschema.AppendJSON(nil, c.Root, native)
		return string(text), err
	}, nil
}

func avroRefs(refs []sr.SchemaReference) []avroschema.Reference {
	out := make([]avroschema.Reference, len(refs))
	for i, r := range refs {
		out[i] = avroschema.Reference{Name: r.Name, Subject: r.Subject, Version: r.Version}
	}
	return out
}
