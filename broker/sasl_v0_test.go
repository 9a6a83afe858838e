package broker_test

import (
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// sendRawToken writes an unframed SASL token: its length, then its bytes.
func (r *saslConn) sendRawToken(token []byte) {
	r.t.Helper()
	buf := binary.BigEndian.AppendUint32(nil, uint32(len(token)))
	if _, err := r.nc.Write(append(buf, token...)); err != nil {
		r.t.Fatal(err)
	}
}

// recvRawToken reads the broker's unframed answer.
func (r *saslConn) recvRawToken() ([]byte, error) {
	r.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.nc, size[:]); err != nil {
		return nil, err
	}
	tok := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(r.nc, tok)
	return tok, err
}

// TestSASLHandshakeV0 authenticates with unframed tokens after a
// SaslHandshake v0, as Kafka clients before 1.0 did: the right password
// opens the connection to requests, a wrong one or an oversized token
// closes it.
func TestSASLHandshakeV0(t *testing.T) {
	ca := testutil.NewCA(t, "test-ca")
	b := secureBroker(t, ca, nil)
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	handshakeV0 := func(r *saslConn) {
		t.Helper()
		req := kmsg.NewPtrSASLHandshakeRequest()
		req.Version = 0
		req.Mechanism = "PLAIN"
		r.send(req)
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		if err := r.recv(resp); err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("SaslHandshake v0: error %d", resp.ErrorCode)
		}
	}

	ok := dialSASL(t, addr)
	handshakeV0(ok)
	ok.sendRawToken([]byte("\x00alice\x00alice-secret"))
	if tok, err := ok.recvRawToken(); err != nil || len(tok) != 0 {
		t.Fatalf("answer to the PLAIN token: %q, %v; want an empty token", tok, err)
	}
	if err := ok.metadata(); err != nil {
		t.Fatalf("metadata after unframed authentication: %v", err)
	}

	wrong := dialSASL(t, addr)
	handshakeV0(wrong)
	wrong.sendRawToken([]byte("\x00alice\x00not-her-secret"))
	if !wrong.closed() {
		t.Fatal("a wrong password left the connection open")
	}

	huge := dialSASL(t, addr)
	handshakeV0(huge)
	buf := binary.BigEndian.AppendUint32(nil, 1<<30)
	if _, err := huge.nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	if !huge.closed() {
		t.Fatal("a 1 GiB token left the connection open")
	}
}
