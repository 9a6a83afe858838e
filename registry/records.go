package registry

import (
	"encoding/json"
	"fmt"
)

// The records of the _schemas topic, in the format Confluent's Schema
// Registry writes, so that a topic written by either can be read by the
// other. Keys are JSON with a fixed attribute order: compaction keeps the
// last record per key byte string, so one logical key must always be
// written the same way.
//
//	SCHEMA    key {"keytype":"SCHEMA","subject":S,"version":V,"magic":1}
//	          value {"subject":S,"version":V,"id":ID,"schemaType":T,
//	                 "references":[...],"schema":TEXT,"deleted":B}
//	          a null value deletes the version permanently
//	CONFIG    key {"keytype":"CONFIG","subject":S|null,"magic":0}
//	          value {"compatibilityLevel":L,"normalize":B}; null removes it
//	MODE      key {"keytype":"MODE","subject":S|null,"magic":0}
//	          value {"mode":M}; null removes it
//	DELETE_SUBJECT key {"keytype":"DELETE_SUBJECT","subject":S,"magic":0}
//	          value {"subject":S,"version":V}: soft-deletes versions <= V
//	CLEAR_SUBJECT  likewise, deletes versions <= V permanently
//	NOOP      key {"keytype":"NOOP","magic":0}: marks a position in the log
//	RUNNEL_NODE key {"keytype":"RUNNEL_NODE","node":N,"magic":0}
//	          value {"node":N,"url":U}: where node N's registry serves, so
//	          the others can forward writes to it when it leads (Runnel's
//	          own key type; Confluent's registry skips keys it does not know)

const (
	keySchema        = "SCHEMA"
	keyConfig        = "CONFIG"
	keyMode          = "MODE"
	keyDeleteSubject = "DELETE_SUBJECT"
	keyClearSubject  = "CLEAR_SUBJECT"
	keyNoop          = "NOOP"
	keyNode          = "RUNNEL_NODE"
)

// recordKey is every key type in one struct; the field order is the
// attribute order on the wire.
type recordKey struct {
	KeyType string  `json:"keytype"`
	Subject *string `json:"subject,omitempty"`
	Version *int    `json:"version,omitempty"`
	Node    *int32  `json:"node,omitempty"`
	Magic   int     `json:"magic"`
}

func schemaKey(subject string, version int) []byte {
	return marshalKey(recordKey{KeyType: keySchema, Subject: &subject, Version: &version, Magic: 1})
}

// configKey is the key of the global config (subject "") or a subject's.
// Its subject is written as null for the global one, as Confluent does.
func configKey(keyType, subject string) []byte {
	if subject == "" {
		b, _ := json.Marshal(struct {
			KeyType string  `json:"keytype"`
			Subject *string `json:"subject"`
			Magic   int     `json:"magic"`
		}{keyType, nil, 0})
		return b
	}
	return marshalKey(recordKey{KeyType: keyType, Subject: &subject})
}

func noopKey() []byte { return marshalKey(recordKey{KeyType: keyNoop}) }

func nodeKey(node int32) []byte { return marshalKey(recordKey{KeyType: keyNode, Node: &node}) }

// nodeValue is a RUNNEL_NODE record's value.
type nodeValue struct {
	Node int32  `json:"node"`
	URL  string `json:"url"`
}

func marshalKey(k recordKey) []byte {
	b, err := json.Marshal(k)
	if err != nil {
		panic(err) // a struct of strings and ints always marshals
	}
	return b
}

// schemaValue is a SCHEMA record's value.
type schemaValue struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references"`
	Schema     string      `json:"schema"`
	Deleted    bool        `json:"deleted"`
}

// configValue is a CONFIG record's value; either attribute may be left
// out (the level or the normalize setting of the scope above applies).
type configValue struct {
	CompatibilityLevel string `json:"compatibilityLevel,omitempty"`
	Normalize          *bool  `json:"normalize,omitempty"`
}

type modeValue struct {
	Mode string `json:"mode"`
}

type deleteSubjectValue struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// parseKey decodes a record key; a key this version does not know is an
// error the reader logs and skips.
func parseKey(b []byte) (recordKey, error) {
	var k recordKey
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("registry: bad record key %q: %w", b, err)
	}
	return k, nil
}
