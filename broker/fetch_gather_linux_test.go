package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/runnel-dev/runnel/broker/internal/log"
)

// gatherTestRegion appends a few batches to l and returns a region of
// the last of them.
func gatherTestRegion(t *testing.T, l *log.Log, value string) *log.Region {
	t.Helper()
	for range 3 {
		if _, err := l.Append(MakeTestBatch(-1, 0, 0, false, value, value), 0); err != nil {
			t.Fatal(err)
		}
	}
	end := l.EndOffset()
	res, err := l.ReadRegion(end-2, 1<<20, end, nil)
	if err != nil || res.Region == nil {
		t.Fatalf("ReadRegion: %v", err)
	}
	return res.Region
}

// gatherTestConn is a broker's connection on one end of a loopback TCP
// connection, the client's end, and the writer goroutine's bufio.Writer.
func gatherTestConn(t *testing.T) (*conn, *bufio.Writer, net.Conn) {
	t.Helper()
	client, nc := tcpPair(t)
	var cfg Config
	cfg.EnsureDefaults()
	c := newConn(&Broker{cfg: cfg, ctx: t.Context(), metrics: newMetrics(), logger: slog.New(slog.DiscardHandler)}, nc)
	t.Cleanup(c.close)
	c.regions = newRegionWriter(c.nc)
	return c, bufio.NewWriterSize(deadlineWriter{c}, connWriteBuffer), client
}

// dataSegmentsOut is how many segments carrying data nc has sent.
func dataSegmentsOut(t *testing.T, nc net.Conn) uint32 {
	t.Helper()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) { info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return info.Data_segs_out
}

// TestZeroCopyGathersMemoryRegions: a fetch response whose record
// batches are all in the tail cache leaves in one vectored write, its
// framing included, so the reader gets it as one segment (written part by
// part it was three: the header, the records, the end of the frame). The
// bytes received are the frame with the regions spliced in, behind what
// the connection had buffered; with a file region among them too.
func TestZeroCopyGathersMemoryRegions(t *testing.T) {
	cached, err := log.Open(t.TempDir(), log.Config{RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	tc := log.NewTailCache(8 << 20)
	defer tc.Close()
	defer cached.Close()
	cached.SetDirectWrites(true)
	cached.SetTailCache(tc)
	plain := zeroCopyTestLog(t)

	// response builds a fetch response of one topic whose partitions
	// hold the regions, in order, and the bytes a reader should get.
	response := func(regions ...*log.Region) (*zeroCopyFetch, *request, []byte) {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = 16
		st := kmsg.NewFetchResponseTopic()
		st.Topic = "t"
		z := &zeroCopyFetch{FetchResponse: resp}
		for pi, r := range regions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = int32(pi)
			sp.HighWatermark = int64(100 + pi)
			sp.RecordBatches = []byte{}
			st.Partitions = append(st.Partitions, sp)
			z.regions = append(z.regions, fetchRegion{ti: 0, pi: pi, r: r})
		}
		resp.Topics = append(resp.Topics, st)
		req := &request{key: 1, version: resp.Version, corr: 7, flexible: true}
		frame, cuts := z.appendFetch(nil, req, nil)
		var want []byte
		prev := 0
		for _, ct := range cuts {
			b, err := ct.r.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			want = append(append(want, frame[prev:ct.at]...), b...)
			prev = ct.at
		}
		return z, req, append(want, frame[prev:]...)
	}
	receive := func(client net.Conn, want []byte) {
		t.Helper()
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, len(want))
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatalf("reading %d bytes: %v", len(want), err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("received bytes differ from the frame with its regions spliced in (%d bytes)", len(want))
		}
	}

	a := gatherTestRegion(t, cached, strings.Repeat("a", 500))
	b := gatherTestRegion(t, cached, strings.Repeat("b", 700))
	if a.Mem() == nil || b.Mem() == nil {
		t.Skip("no O_DIRECT on this file system: nothing is cached")
	}
	c, w, client := gatherTestConn(t)
	z, req, want := response(a, b)
	before := dataSegmentsOut(t, c.raw)
	c.writeZeroCopy(w, req, z, nil)
	receive(client, want)
	if n := dataSegmentsOut(t, c.raw) - before; n != 1 {
		t.Errorf("a response from memory of %d bytes went out in %d segments, want 1", len(want), n)
	}
	if w.Buffered() != 0 {
		t.Errorf("%d bytes left in the writer", w.Buffered())
	}

	// Behind a response the writer holds, with a file region between two
	// from memory.
	c, w, client = gatherTestConn(t)
	a = gatherTestRegion(t, cached, "x")
	f := gatherTestRegion(t, plain, "from the file")
	b = gatherTestRegion(t, cached, "y")
	if f.Mem() != nil {
		t.Fatal("a log without direct writes handed out a region in memory")
	}
	z, req, want = response(a, f, b)
	held := []byte("an earlier response")
	w.Write(held)
	c.writeZeroCopy(w, req, z, nil)
	c.flushResponses()
	receive(client, append(held, want...))

	// Many regions from memory: more slices than one writev takes.
	c, w, client = gatherTestConn(t)
	var many []*log.Region
	for i := range 700 {
		many = append(many, gatherTestRegion(t, cached, fmt.Sprint(i)))
	}
	z, req, want = response(many...)
	c.writeZeroCopy(w, req, z, nil)
	receive(client, want)
}
