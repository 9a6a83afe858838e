package group

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// manualClock is a Clock whose time moves only by Advance, which runs the
// timers that fall due, in order, on the caller's goroutine.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	at   time.Time
	f    func()
	done bool
}

func newManualClock() *manualClock { return &manualClock{now: time.Unix(1_700_000_000, 0)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.done
		t.done = true
		return was
	}
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *manualTimer
		for _, t := range c.timers {
			if !t.done && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.timers = slices.DeleteFunc(c.timers, func(t *manualTimer) bool { return t.done })
			c.mu.Unlock()
			return
		}
		next.done = true
		c.now = next.at
		c.mu.Unlock()
		next.f()
	}
}

// memPartition is an in-memory __consumer_offsets partition.
type memPartition struct {
	mu      sync.Mutex
	batches [][]byte
	next    int64
	fail    error
}

func (p *memPartition) Append(batch []byte) (func(context.Context) error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	b := slices.Clone(batch)
	binary.BigEndian.PutUint64(b, uint64(p.next))
	p.next += int64(int32(binary.BigEndian.Uint32(b[recordbatch.OffLastOffsetDelta:]))) + 1
	p.batches = append(p.batches, b)
	return func(context.Context) error { return nil }, nil
}

func (p *memPartition) Read(offset int64, maxBytes int32) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, b := range p.batches {
		base := int64(binary.BigEndian.Uint64(b))
		last := base + int64(int32(binary.BigEndian.Uint32(b[recordbatch.OffLastOffsetDelta:])))
		if last < offset {
			continue
		}
		if len(out) > 0 && len(out)+len(b) > int(maxBytes) {
			break
		}
		out = append(out, b...)
	}
	return out, nil
}

func (p *memPartition) StartOffset() int64 { return 0 }

func (p *memPartition) HighWatermark() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

// fixture is a coordinator over in-memory partitions on a manual clock.
type fixture struct {
	t     *testing.T
	clock *manualClock
	parts []*memPartition
	c     *Coordinator
}

const testPartitions = 3

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	f := &fixture{t: t, clock: newManualClock()}
	for range testPartitions {
		f.parts = append(f.parts, &memPartition{})
	}
	f.start(mod)
	return f
}

// start (re)creates the coordinator over the fixture's partitions and
// waits for it to load them.
func (f *fixture) start(mod func(*Config)) {
	cfg := Config{
		Partitions:            testPartitions,
		InitialRebalanceDelay: 100 * time.Millisecond,
		Clock:                 f.clock,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	for i, p := range f.parts {
		c.Load(int32(i), p)
	}
	if err := c.WaitLoaded(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.c = c
	f.t.Cleanup(c.Close)
}

var done = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// pendingJoin is a JoinGroup whose answer may come later.
type pendingJoin struct {
	t    *testing.T
	wait func(context.Context) *kmsg.JoinGroupResponse
	resp *kmsg.JoinGroupResponse
}

// answered reports whether the join has its answer, without blocking.
func (p *pendingJoin) answered() bool {
	if p.resp == nil {
		r := p.wait(done)
		if r.ErrorCode == kerr.CoordinatorNotAvailable.Code {
			return false
		}
		p.resp = r
	}
	return true
}

func (p *pendingJoin) get() *kmsg.JoinGroupResponse {
	p.t.Helper()
	if !p.answered() {
		p.t.Fatal("JoinGroup not answered")
	}
	return p.resp
}

type joinOpt func(*kmsg.JoinGroupRequest)

func withInstance(id string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) { r.InstanceID = &id }
}

func withProtocols(names ...string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		r.Protocols = nil
		for _, n := range names {
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name = n
			p.Metadata = []byte("meta-" + n)
			r.Protocols = append(r.Protocols, p)
		}
	}
}

func withVersion(v int16) joinOpt { return func(r *kmsg.JoinGroupRequest) { r.Version = v } }

func withSession(d time.Duration) joinOpt {
	return func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = int32(d.Milliseconds()) }
}

func withRebalance(d time.Duration) joinOpt {
	return func(r *kmsg.JoinGroupRequest) { r.RebalanceTimeoutMillis = int32(d.Milliseconds()) }
}

func (f *fixture) join(group, memberID string, opts ...joinOpt) *pendingJoin {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group = group
	req.MemberID = memberID
	req.SessionTimeoutMillis = 10_000
	req.RebalanceTimeoutMillis = 30_000
	req.ProtocolType = "consumer"
	withProtocols("range")(req)
	for _, o := range opts {
		o(req)
	}
	return &pendingJoin{t: f.t, wait: f.c.JoinGroup(req, "client", "/127.0.0.1")}
}

// joinNew joins with no member id and then with the id handed out, as a
// v4+ client does, returning the pending second join.
func (f *fixture) joinNew(group string, opts ...joinOpt) *pendingJoin {
	f.t.Helper()
	first := f.join(group, "", opts...).get()
	if first.ErrorCode != kerr.MemberIDRequired.Code {
		f.t.Fatalf("first join: %v, want MEMBER_ID_REQUIRED", kerr.ErrorForCode(first.ErrorCode))
	}
	return f.join(group, first.MemberID, opts...)
}

type pendingSync struct {
	wait func(context.Context) *kmsg.SyncGroupResponse
	resp *kmsg.SyncGroupResponse
}

func (p *pendingSync) answered() bool {
	if p.resp == nil {
		r := p.wait(done)
		if r.ErrorCode == kerr.CoordinatorNotAvailable.Code {
			return false
		}
		p.resp = r
	}
	return true
}

func (f *fixture) sync(group, memberID string, gen int32, plan map[string]string) *pendingSync {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group = group
	req.MemberID = memberID
	req.Generation = gen
	for id, a := range plan {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID = id
		ga.MemberAssignment = []byte(a)
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	return &pendingSync{wait: f.c.SyncGroup(req)}
}

func (f *fixture) heartbeat(group, memberID string, gen int32, instance *string) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation, req.InstanceID = group, memberID, gen, instance
	return f.c.Heartbeat(req).ErrorCode
}

func (f *fixture) commit(group, memberID string, gen int32, topic string, offsets map[int32]int64) map[int32]int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group, req.MemberID, req.Generation = group, memberID, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := f.c.OffsetCommit(req)(context.Background())
	out := make(map[int32]int16)
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			out[sp.Partition] = sp.ErrorCode
		}
	}
	return out
}

// fetch returns a group's committed offsets of topic (all partitions).
func (f *fixture) fetch(group string) (int16, map[string]int64) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	req.Groups = append(req.Groups, rg)
	resp := f.c.OffsetFetch(req)
	out := make(map[string]int64)
	g := resp.Groups[0]
	for _, st := range g.Topics {
		for _, sp := range st.Partitions {
			out[st.Topic+"/"+string(rune('0'+sp.Partition))] = sp.Offset
		}
	}
	return g.ErrorCode, out
}

func (f *fixture) describe(group string) kmsg.DescribeGroupsResponseGroup {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	return f.c.DescribeGroups(req).Groups[0]
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}
