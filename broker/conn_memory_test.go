package broker_test

import (
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Every Kafka client keeps connections that are idle most of the time
// (its metadata connection, a producer's between batches, a consumer
// group's coordinator connection), and brokers serve thousands: an open
// connection must not pin large buffers. 200 connections that have each
// had one request answered may hold at most 48 KiB of heap apiece
// (bench/brokerbench -workloads conns measures the same in RSS).
func TestIdleConnectionMemory(t *testing.T) {
	b := testutil.StartBroker(t, broker.Config{})
	roundTrip := func(rc *rawConn) {
		t.Helper()
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(0)
		rc.send(frame(req, 1))
		if _, err := rc.recv(); err != nil {
			t.Fatal(err)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// One connection first, so that what the broker sets up once (its
	// handler tables, metrics) is not counted per connection.
	roundTrip(dialRaw(t, b.Addr()))
	before := heap()
	const n = 200
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, b.Addr())
		roundTrip(conns[i])
	}
	after := heap()
	runtime.KeepAlive(conns)
	per := int64(after-before) / n
	t.Logf("%d B of heap per open connection", per)
	if per > 48<<10 {
		t.Errorf("each open connection holds %d KiB of heap, want at most 48 KiB", per>>10)
	}
}
