package broker_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// rawConn speaks the wire protocol by hand, for requests no client sends.
type rawConn struct {
	t  testing.TB
	nc net.Conn
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, nc: nc}
}

func (r *rawConn) send(frame []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(frame); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads one response frame and returns it without the size prefix.
func (r *rawConn) recv() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r.nc, size[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(r.nc, buf)
	return buf, err
}

// An ApiVersions request at a version beyond the broker's is answered in
// v0 with UNSUPPORTED_VERSION and, as Kafka answers it, only the
// ApiVersions versions the broker serves (KIP-511): with more keys listed
// franz-go keeps the v0 answer, which has no features, instead of
// retrying.
func TestApiVersionsUnknownVersion(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	rc := dialRaw(t, b.Addr())
	frame := []byte{0, 0, 0, 0, 0, 18, 0, 99, 0, 0, 0, 7, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	rc.send(frame)
	body, err := rc.recv()
	if err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 7 {
		t.Fatalf("correlation id %d", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	found := false
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 18 {
			found = k.MaxVersion >= 3
		}
	}
	if !found || len(resp.ApiKeys) != 1 {
		t.Fatalf("want only ApiVersions v3+ listed: %+v", resp.ApiKeys)
	}
}

// A malformed frame closes that connection only; the broker keeps serving
// everyone else.
func TestMalformedFrameClosesOnlyItsConnection(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	good := newClient(t, b.Addr())
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(testContext(t), good); err != nil {
		t.Fatal(err)
	}
	for _, frame := range [][]byte{
		{0xff, 0xff, 0xff, 0xff},                           // negative size
		{0x7f, 0, 0, 0},                                    // absurd size
		{0, 0, 0, 10, 0, 99, 0, 0, 0, 0, 0, 1, 0, 0},       // unknown api key
		{0, 0, 0, 10, 0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0},     // metadata v9, truncated body
		{0, 0, 0, 12, 0, 0, 0, 9, 0, 0, 0, 1, 0, 50, 1, 2}, // produce with a client id longer than the frame
	} {
		rc := dialRaw(t, b.Addr())
		rc.send(frame)
		if _, err := rc.recv(); err == nil {
			t.Fatalf("frame %x was answered", frame)
		} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("frame %x: connection left open", frame)
			}
		}
	}
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(testContext(t), good); err != nil {
		t.Fatalf("broker stopped serving after malformed frames: %v", err)
	}
}

// Requests about topics that are not there, or that cannot exist, get the
// Kafka errors for them.
func TestTopicErrors(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	for name, want := range map[string]error{
		"bad name!":               kerr.InvalidTopicException,
		"..":                      kerr.InvalidTopicException,
		string(make([]byte, 250)): kerr.InvalidTopicException,
	} {
		resp, err := adm.CreateTopic(ctx, 1, 1, nil, name)
		if err == nil {
			err = resp.Err
		}
		if !errors.Is(err, want) {
			t.Errorf("create %q: %v, want %v", name, err, want)
		}
	}
	createTopic(t, adm, "exists", 1, nil)
	resp, err := adm.CreateTopic(ctx, 1, 1, nil, "exists")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("create twice: %v", err)
	}
	resp, err = adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": ptr("soon")}, "badcfg")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("bad config: %v, want INVALID_CONFIG", err)
	}
	resp, err = adm.CreateTopic(ctx, 0, 1, nil, "zero")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.InvalidPartitions) {
		t.Errorf("zero partitions: %v, want INVALID_PARTITIONS", err)
	}

	// Producing to a topic that does not exist (auto-creation off).
	prod := newClient(t, b.Addr(), kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(3*time.Second))
	err = prod.ProduceSync(ctx, &kgo.Record{Topic: "missing", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, kgo.ErrRecordTimeout) {
		t.Errorf("produce to missing topic: %v", err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "missing"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = []byte{1}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	pr, err := req.RequestWith(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	if code := pr.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("raw produce to missing topic: error %v", kerr.ErrorForCode(code))
	}

	// Internal topics belong to their coordinators: clients can neither
	// write nor delete them.
	err = prod.ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("produce to __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	dr, err := adm.DeleteTopics(ctx, "__consumer_offsets")
	if err == nil {
		err = dr["__consumer_offsets"].Err
	}
	if !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("delete __consumer_offsets: %v, want INVALID_REQUEST", err)
	}
}

// With auto.create.topics.enable, the first reference creates the topic
// with num.partitions.
func TestAutoCreateTopics(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{AutoCreateTopics: true, NumPartitions: 4})
	prod := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation())
	if err := prod.ProduceSync(testContext(t), &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	td, err := newAdmin(t, b.Addr()).ListTopics(testContext(t), "auto")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["auto"].Partitions); n != 4 {
		t.Fatalf("auto-created topic has %d partitions, want 4", n)
	}
}
