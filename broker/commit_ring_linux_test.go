package broker_test

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// skipWithoutIOURing skips where this process cannot set up an io_uring
// (kernel.io_uring_disabled, a seccomp profile) or the kernel's
// synchronized direct writes are not trusted (before Linux 6.7): the
// broker then commits with pwritev2, as the rest of the suite checks.
func skipWithoutIOURing(t *testing.T) {
	t.Helper()
	var u unix.Utsname
	var major, minor int
	if unix.Uname(&u) != nil {
		t.Skip("uname failed")
	}
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil || major < 6 || major == 6 && minor < 7 {
		t.Skip("kernel before 6.7: no commit ring")
	}
	var params [120]byte // struct io_uring_params
	fd, _, errno := syscall.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 {
		t.Skipf("io_uring_setup: %v: no commit ring", errno)
	}
	syscall.Close(int(fd))
}

// ringWrites scrapes runnel_broker_log_commit_ring_writes_total.
func ringWrites(t *testing.T, b *broker.Broker) int64 {
	t.Helper()
	m := regexp.MustCompile(`\nrunnel_broker_log_commit_ring_writes_total (\S+)`).FindStringSubmatch(scrape(t, b.MetricsAddr()))
	if m == nil {
		t.Fatal("no runnel_broker_log_commit_ring_writes_total")
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int64(n)
}

// With the defaults, a partition acknowledging small produces one at a
// time gets zeros written ahead of its appends once it holds 4 MiB, and its group commits
// then go through the commit ring (the metric counts them); what was
// acknowledged is what a consumer reads back, and the segment file runs
// past its records only with zeros.
func TestCommitRingDefaults(t *testing.T) {
	skipWithoutIOURing(t)
	dir := t.TempDir()
	b := testutil.StartBroker(t, broker.Config{DataDir: dir, MetricsListen: "127.0.0.1:0"})
	ctx := testContext(t)
	createTopic(t, newAdmin(t, b.Addr()), "ring", 1, nil)
	if got := ringWrites(t, b); got != 0 {
		t.Fatalf("%d ring writes before any produce", got)
	}
	// Records of about 64 KiB: zeros come once the segment holds 4 MiB.
	value := func(i int) []byte {
		v := bytes.Repeat([]byte{byte(i)}, 64<<10+i%200)
		copy(v, fmt.Sprintf("record %d|", i))
		return v
	}
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("ring"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	// The first commits extend the file while the first zeros are
	// written; the ones after go through the ring.
	n := 0
	deadline := time.Now().Add(30 * time.Second)
	for n < 200 || ringWrites(t, b) < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("%d ring writes after %d acknowledged produces", ringWrites(t, b), n)
		}
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: value(n)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		n++
	}
	seg := segmentOf(t, dir, "ring-0")
	raw, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data := dataSize(t, seg)
	if int64(len(raw)) <= data || bytes.ContainsFunc(raw[data:], func(r rune) bool { return r != 0 }) {
		t.Fatalf("segment file of %d bytes, %d of records: want zeros ahead of them", len(raw), data)
	}
	c := newClient(t, b.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"ring": {0: kgo.NewOffset().At(0)}}))
	consumeChecked(ctx, t, c, 0, n, value)
}
