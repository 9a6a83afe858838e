package log

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Commits through one ring.
//
// With write-back every group commit is one synchronized write
// (RWF_DSYNC) of a partition's pending run, and each of those, made with
// pwritev2, holds a thread in the kernel until the disk has it: with
// dozens of partitions committing, dozens of threads each sleep, wake and
// hand their Go processor back and forth, and the device is told of each
// write and flush on its own. On a virtual machine those steps, not the
// bytes, are most of what a small commit costs.
//
// A commitRing instead has one goroutine submit the synchronized writes
// that partitions are waiting to make: it takes every write waiting,
// submits them all in one io_uring_enter and waits there until at least
// one of the writes in flight is durable; it then completes those, takes
// the writes that came meanwhile, and goes back. One thread waits for
// all of them, and a write never waits for others to be submitted. It
// pays only where a write overwrites blocks the file already has
// (zero-ahead, zeroahead.go): a write that extends the file is handed by
// the kernel to a worker thread, which costs more than pwritev2.

// ringEntries is the ring's size: the most writes in flight. Above the
// partitions a broker commits to at once, in the common case; a write
// that finds the ring full waits for a slot.
const ringEntries = 64

// io_uring's ABI (include/uapi/linux/io_uring.h).
const (
	ioringOpWritev      = 2
	ioringEnterGetevent = 1 << 0
	ioringFeatSingleMap = 1 << 0
	ioringOffSQRing     = 0
	ioringOffSQEs       = 0x10000000
)

type uringSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	rwFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	_           uint64
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

type uringSQOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type uringCQOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  uringSQOffsets
	cqOff                                                                  uringCQOffsets
}

// uring is an io_uring set up for one submitter at a time: its rings are
// shared memory with the kernel, the heads and tails read and written
// with atomics.
type uring struct {
	fd       int
	ringMem  []byte
	sqeMem   []byte
	sqHead   *uint32
	sqTail   *uint32
	sqMask   uint32
	sqArray  []uint32
	sqes     []uringSQE
	cqHead   *uint32
	cqTail   *uint32
	cqMask   uint32
	cqes     []uringCQE
	capacity uint32
}

func newURing(entries uint32) (*uring, error) {
	var p uringParams
	fd, _, errno := syscall.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &uring{fd: int(fd), capacity: p.sqEntries}
	if p.features&ioringFeatSingleMap == 0 {
		r.close()
		return nil, errors.New("io_uring: kernel without a single ring mapping")
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(uringCQE{})))
	mem, err := unix.Mmap(r.fd, ioringOffSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.close()
		return nil, fmt.Errorf("io_uring: map rings: %w", err)
	}
	r.ringMem = mem
	sqes, err := unix.Mmap(r.fd, ioringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.close()
		return nil, fmt.Errorf("io_uring: map submission entries: %w", err)
	}
	r.sqeMem = sqes
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&mem[off]) }
	r.sqHead = (*uint32)(at(p.sqOff.head))
	r.sqTail = (*uint32)(at(p.sqOff.tail))
	r.sqMask = *(*uint32)(at(p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(at(p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&sqes[0])), p.sqEntries)
	r.cqHead = (*uint32)(at(p.cqOff.head))
	r.cqTail = (*uint32)(at(p.cqOff.tail))
	r.cqMask = *(*uint32)(at(p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*uringCQE)(at(p.cqOff.cqes)), p.cqEntries)
	return r, nil
}

func (r *uring) close() {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
	}
	if r.ringMem != nil {
		unix.Munmap(r.ringMem)
	}
	syscall.Close(r.fd)
}

// uringEnter is uring.enter, but for tests of a ring that fails.
var uringEnter = (*uring).enter

// enter submits toSubmit entries and waits for minComplete completions.
// It is a blocking system call: the Go runtime gives the thread's
// processor to others while it waits.
func (r *uring) enter(toSubmit, minComplete uint32) (uint32, error) {
	n, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete), ioringEnterGetevent, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return uint32(n), nil
}

// ringWrite is one write waiting in a commitRing.
type ringWrite struct {
	fd  int32
	iov []unix.Iovec
	off int64
	// flags are the write's RWF_ flags: RWF_DSYNC, or none.
	flags uint32
	// n is the bytes the write should write; res what it did (or
	// -errno), set before done is closed.
	n    int64
	res  int32
	err  error
	done chan struct{}
}

// commitRing submits synchronized writes through one uring, from its own
// goroutine (see above). It starts at the first write and
// stops at close; a write that finds it closed or without a ring is
// reported as not made, for the caller to make itself.
type commitRing struct {
	once   sync.Once
	r      *uring
	reqs   chan *ringWrite
	stop   chan struct{}
	exited chan struct{}
	closed atomic.Bool
	// broken is set when the ring failed: writes go back to pwritev2.
	broken atomic.Bool
	// writes counts the writes the ring took (tests).
	writes atomic.Int64
}

func newCommitRing() *commitRing {
	return &commitRing{reqs: make(chan *ringWrite), stop: make(chan struct{}), exited: make(chan struct{})}
}

// start sets the ring up and starts its goroutine, once; it reports
// whether the ring can take writes.
func (c *commitRing) start() bool {
	c.once.Do(func() {
		if c.closed.Load() {
			close(c.exited)
			return
		}
		r, err := newURing(ringEntries)
		if err != nil {
			// Kernels before 5.1, or io_uring disabled (sysctl
			// kernel.io_uring_disabled, seccomp): pwritev2 it is.
			c.broken.Store(true)
			close(c.exited)
			return
		}
		c.r = r
		go c.loop()
	})
	return !c.broken.Load() && !c.closed.Load()
}

// taken is how many writes the ring took.
func (c *commitRing) taken() int64 { return c.writes.Load() }

// usable reports whether writes may go to the ring, starting it if need
// be.
func (c *commitRing) usable() bool {
	return c != nil && !noDSync.Load() && c.start()
}

// close stops the goroutine once the writes in flight are durable and
// releases the ring. Writes after it are made by their callers.
func (c *commitRing) close() {
	if c == nil || c.closed.Swap(true) {
		return
	}
	c.start() // so that exited is closed either way
	close(c.stop)
	<-c.exited
}

// write writes bufs at off in the file f through the ring, with
// RWF_DSYNC when dsync says so. It reports false, having written
// nothing, when the ring cannot take it; a short write is finished with
// pwritev2 (or pwritev).
func (c *commitRing) write(f *os.File, bufs [][]byte, off int64, dsync bool) (bool, error) {
	w := &ringWrite{fd: int32(f.Fd()), off: off, iov: make([]unix.Iovec, len(bufs)), done: make(chan struct{})}
	if dsync {
		w.flags = unix.RWF_DSYNC
	}
	w.iov = w.iov[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			w.iov = append(w.iov, unix.Iovec{Base: &b[0]})
			w.iov[len(w.iov)-1].SetLen(len(b))
			w.n += int64(len(b))
		}
	}
	if w.n == 0 {
		return true, nil
	}
	select {
	case c.reqs <- w:
	case <-c.stop:
		return false, nil
	}
	<-w.done
	runtime.KeepAlive(bufs)
	switch {
	case w.err != nil:
		return false, w.err
	case w.res < 0:
		err := syscall.Errno(-w.res)
		if err == syscall.ECANCELED { // the ring broke before submitting it
			return false, nil
		}
		return false, &os.PathError{Op: "pwritev2", Path: f.Name(), Err: err}
	case int64(w.res) < w.n:
		// Rare: finish the rest the ordinary way.
		rest := consumed(slices.Clone(bufs), int(w.res))
		if !dsync {
			return true, pwritev(f, rest, off+int64(w.res))
		}
		return pwritevDSync(f, rest, off+int64(w.res))
	}
	return true, nil
}

func (c *commitRing) loop() {
	defer close(c.exited)
	defer c.r.close()
	r := c.r
	slots := make([]*ringWrite, r.capacity)
	free := make([]uint32, r.capacity)
	for i := range free {
		free[i] = uint32(i)
	}
	inFlight := 0
	for {
		// Wait for a write only when none is in flight; else take what
		// is waiting and go back to the kernel for completions.
		if inFlight == 0 {
			select {
			case w := <-c.reqs:
				c.queue(w, slots, &free)
				inFlight++
			case <-c.stop:
				return
			}
		}
	take:
		for len(free) > 0 {
			select {
			case w := <-c.reqs:
				c.queue(w, slots, &free)
				inFlight++
			default:
				break take
			}
		}
		toSubmit := *r.sqTail - atomic.LoadUint32(r.sqHead)
		_, err := uringEnter(r, toSubmit, 1)
		if err != nil && !errors.Is(err, syscall.EINTR) && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EBUSY) {
			c.fail(slots, err)
			c.refuse()
			return
		}
		inFlight -= c.reap(slots, &free)
	}
}

// queue puts w in a free slot and its write in the submission ring, for
// the next io_uring_enter to submit.
func (c *commitRing) queue(w *ringWrite, slots []*ringWrite, free *[]uint32) {
	r := c.r
	slot := (*free)[len(*free)-1]
	*free = (*free)[:len(*free)-1]
	slots[slot] = w
	tail := *r.sqTail // only this goroutine writes it
	idx := tail & r.sqMask
	r.sqes[idx] = uringSQE{
		opcode:   ioringOpWritev,
		fd:       w.fd,
		off:      uint64(w.off),
		addr:     uint64(uintptr(unsafe.Pointer(&w.iov[0]))),
		len:      uint32(len(w.iov)),
		rwFlags:  w.flags,
		userData: uint64(slot),
	}
	r.sqArray[idx] = idx
	atomic.StoreUint32(r.sqTail, tail+1)
	c.writes.Add(1)
}

// reap completes the writes whose completions the ring holds, frees
// their slots and returns how many.
func (c *commitRing) reap(slots []*ringWrite, free *[]uint32) int {
	r := c.r
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail)
	n := 0
	for ; head != tail; head++ {
		e := r.cqes[head&r.cqMask]
		w := slots[e.userData]
		slots[e.userData] = nil
		*free = append(*free, uint32(e.userData))
		w.res = e.res
		close(w.done)
		n++
	}
	atomic.StoreUint32(r.cqHead, head)
	return n
}

// fail handles a ring that io_uring_enter refuses (nothing a working
// ring does): the writes it had not taken are withdrawn and reported
// unmade, for their callers to make them with pwritev2; the ones it took
// and did not complete are reported failed, which breaks their logs,
// since whether they reached the disk is unknown. The ring is not used
// again: the loop refuses the writes sent to it until it is closed.
func (c *commitRing) fail(slots []*ringWrite, err error) {
	r := c.r
	c.broken.Store(true)
	head := atomic.LoadUint32(r.sqHead)
	// Entries not consumed, oldest first, are the slots named in
	// [head, tail) of the submission ring.
	withdrawn := make(map[uint64]bool)
	for i := head; i != *r.sqTail; i++ {
		withdrawn[r.sqes[r.sqArray[i&r.sqMask]].userData] = true
	}
	atomic.StoreUint32(r.sqTail, head)
	var free []uint32
	c.reap(slots, &free)
	for i, w := range slots {
		if w == nil {
			continue
		}
		if withdrawn[uint64(i)] {
			w.res = -int32(syscall.ECANCELED)
		} else {
			w.err = fmt.Errorf("log: io_uring: %w", err)
		}
		close(w.done)
	}
}

// refuse answers the writes sent to a failed ring until it is closed.
func (c *commitRing) refuse() {
	for {
		select {
		case w := <-c.reqs:
			w.res = -int32(syscall.ECANCELED)
			close(w.done)
		case <-c.stop:
			return
		}
	}
}
