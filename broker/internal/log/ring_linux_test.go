package log

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
)

// ringTestFile opens a file for direct writes, skipping where the file
// system refuses them or the ring cannot be had.
func ringTestFile(t *testing.T, c *commitRing) *os.File {
	t.Helper()
	if noDSync.Load() {
		t.Skip("this kernel's synchronized writes are not trusted: no ring")
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openDirect(path)
	if errors.Is(err, errNoDirect) {
		t.Skip("no O_DIRECT on this file system")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if !c.usable() {
		t.Skip("no io_uring here")
	}
	return f
}

// TestCommitRingWrites: writes sent to the ring by many goroutines at
// once, some of several buffers, all land where they were sent, and
// each is reported durable.
func TestCommitRingWrites(t *testing.T) {
	c := newCommitRing()
	defer c.close()
	f := ringTestFile(t, c)
	const writers, blocks = 100, 3 // more writers than the ring has slots
	want := make([]byte, writers*blocks*directBlock)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		b := alignedBuffer(blocks * directBlock)
		for j := range b {
			b[j] = byte(i*7 + j)
		}
		off := i * len(b)
		copy(want[off:], b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every other write in two buffers.
			bufs := [][]byte{b}
			if i%2 == 1 {
				bufs = [][]byte{b[:directBlock], b[directBlock:]}
			}
			// Every third without RWF_DSYNC (WaitWritten's).
			ok, err := c.write(f, bufs, int64(off), i%3 != 0)
			if err == nil && !ok {
				err = errors.New("the ring did not make the write")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := c.writes.Load(); got != writers {
		t.Fatalf("the ring took %d writes, want %d", got, writers)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the file differs from what was written")
	}
}

// TestCommitRingFails: when io_uring_enter fails, a write the kernel had
// not taken is reported unmade (the caller then makes it itself), a
// write it had taken is reported failed, and the ring takes no more.
func TestCommitRingFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		taken bool // the failing enter submitted the write first
	}{
		{name: "not taken"},
		{name: "taken", taken: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCommitRing()
			defer c.close()
			f := ringTestFile(t, c)
			defer func(old func(*uring, uint32, uint32) (uint32, error)) { uringEnter = old }(uringEnter)
			uringEnter = func(r *uring, toSubmit, minComplete uint32) (uint32, error) {
				if tc.taken {
					r.enter(toSubmit, 0)
				}
				return 0, syscall.EBADF
			}
			b := alignedBuffer(directBlock)
			ok, err := c.write(f, [][]byte{b}, 0, true)
			if tc.taken {
				if err == nil || !errors.Is(err, syscall.EBADF) {
					t.Fatalf("a write the failing ring took: %v, %v; want the failure", ok, err)
				}
			} else if ok || err != nil {
				t.Fatalf("a write the failing ring did not take: %v, %v; want it unmade", ok, err)
			}
			if c.usable() {
				t.Fatal("the ring is still usable after failing")
			}
			if ok, err := c.write(f, [][]byte{b}, 0, true); ok || err != nil {
				t.Fatalf("a write after the failure: %v, %v; want it unmade", ok, err)
			}
		})
	}
}

// TestConsumed: what is left of buffers after n bytes were written, for
// every n, is the rest of their concatenation, and the buffers handed
// in are not changed.
func TestConsumed(t *testing.T) {
	bufs := [][]byte{[]byte("abc"), []byte("d"), []byte("efgh")}
	all := bytes.Join(bufs, nil)
	for n := 0; n <= len(all); n++ {
		got := bytes.Join(consumed(slices.Clone(bufs), n), nil)
		if !bytes.Equal(got, all[n:]) {
			t.Fatalf("after %d bytes: %q, want %q", n, got, all[n:])
		}
	}
	if got := bytes.Join(bufs, nil); !bytes.Equal(got, all) {
		t.Fatalf("the buffers changed: %q", got)
	}
}
