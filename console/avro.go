package console

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/runnel-dev/runnel/internal/avroschema"
	"github.com/twmb/franz-go/pkg/sr"
)

// Records written through the schema registry (Confluent's wire format: a
// zero magic byte, the schema id as a 4-byte big-endian integer, then the
// encoded data) are shown decoded: Avro as its JSON encoding, JSON schema
// as the JSON. The schema comes from the registry by id, once: a schema id
// names one schema forever.

// maxCachedSchemas bounds the decoders kept; past it they are dropped all
// at once (ids in use are asked for again).
const maxCachedSchemas = 1000

// schemaCache holds the decoders of the schemas met, by id.
type schemaCache struct {
	mu sync.Mutex // guards the following
	// byID holds a decoder, or the error of reading the schema (a
	// missing id, an unparsable schema), so as not to ask again.
	byID map[int]schemaDecoder
}

type schemaDecoder struct {
	kind string             // "avro" or "json"
	avro *avroschema.Parsed // for avro
	err  error
}

// decodeRegistered decodes b if it is in the registry's wire format with a
// schema the console can read; ok is false otherwise, and the caller shows
// b as it is.
func (c *Console) decodeRegistered(ctx context.Context, b []byte) (p *Payload, ok bool) {
	if c.sr == nil || len(b) < 5 || b[0] != 0 {
		return nil, false
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	d := c.schemaDecoder(ctx, id)
	if d.err != nil {
		return nil, false
	}
	var text []byte
	switch d.kind {
	case "avro":
		// Decode checks the bytes before goavro reads them: a record of
		// a few bytes that claims an array of 2^31 items would otherwise
		// have goavro allocate for them all, and kill the broker that
		// serves the console.
		native, rest, err := d.avro.Decode(b[5:])
		if err != nil || len(rest) > 0 {
			return nil, false
		}
		if text, err = d.avro.Codec.TextualFromNative(nil, native); err != nil {
			return nil, false
		}
	case "json":
		if text = b[5:]; !json.Valid(text) {
			return nil, false
		}
	}
	var buf bytes.Buffer
	if json.Indent(&buf, text, "", "  ") != nil {
		return nil, false
	}
	return &Payload{Encoding: d.kind, Text: buf.String(), Size: len(b), SchemaID: id}, true
}

func (c *Console) schemaDecoder(ctx context.Context, id int) schemaDecoder {
	sc := &c.codecs
	sc.mu.Lock()
	d, ok := sc.byID[id]
	sc.mu.Unlock()
	if ok {
		return d
	}
	s, err := c.sr.SchemaByID(ctx, id)
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return schemaDecoder{err: err} // not cached: the next page asks again
		}
		d.err = err
	case s.Type == sr.TypeAvro:
		d.kind = "avro"
		if d.avro, err = avroschema.ParseChecked(s.Schema, nil); err != nil {
			d.err = fmt.Errorf("console: schema %d: %w", id, err)
		}
	case s.Type == sr.TypeJSON:
		d.kind = "json"
	default:
		d.err = fmt.Errorf("console: schema %d is %s, which the console does not decode", id, s.Type)
	}
	sc.mu.Lock()
	if sc.byID == nil || len(sc.byID) >= maxCachedSchemas {
		sc.byID = map[int]schemaDecoder{}
	}
	sc.byID[id] = d
	sc.mu.Unlock()
	return d
}
