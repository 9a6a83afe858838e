package broker

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecodeRequest feeds arbitrary frames to the request decoder: it may
// refuse them, never panic.
func FuzzDecodeRequest(f *testing.F) {
	for _, k := range supportedKeys() {
		h := handlers[k]
		for v := h.min; v <= h.max; v++ {
			req := kmsg.RequestForKey(k)
			req.SetVersion(v)
			var fr kmsg.RequestFormatter
			frame := fr.AppendRequest(nil, req, 7)
			f.Add(frame[4:]) // without the size prefix, as decode sees it
		}
	}
	f.Add([]byte{0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 8 {
			return // readLoop refuses frames this short before decoding
		}
		c := &conn{}
		req, err := c.decode(frame)
		if err == nil && req.kreq == nil {
			t.Fatal("decoded a request without a body")
		}
	})
}

func TestDecodeRoundTripsEveryVersion(t *testing.T) {
	for _, k := range supportedKeys() {
		h := handlers[k]
		for v := h.min; v <= h.max; v++ {
			req := kmsg.RequestForKey(k)
			req.SetVersion(v)
			var fr kmsg.RequestFormatter
			frame := fr.AppendRequest(nil, req, 42)
			if got := int(binary.BigEndian.Uint32(frame)); got != len(frame)-4 {
				t.Fatalf("%s v%d: bad size prefix", kmsg.NameForKey(k), v)
			}
			dec, err := (&conn{}).decode(frame[4:])
			if err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(k), v, err)
			}
			if dec.corr != 42 || dec.key != k || dec.version != v {
				t.Fatalf("%s v%d: header decoded as key %d v%d corr %d", kmsg.NameForKey(k), v, dec.key, dec.version, dec.corr)
			}
		}
	}
}
