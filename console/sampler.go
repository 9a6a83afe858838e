package console

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/appstatus"
)

// The sampler keeps what a single request cannot show: rates and lag over
// time, the sizes of the topics and brokers (DescribeLogDirs is slower than
// a page should wait for), and the stream applications' status records.
// One goroutine, started by the first request and stopped by Close, asks
// the cluster every Config.SampleInterval and appends to ring buffers of
// seriesPoints points; handlers read under mu.

// seriesPoints is how many points a series keeps: 10 minutes at the
// default interval.
const seriesPoints = 120

// Point is one sample of a series: Unix milliseconds and a value.
type Point struct {
	T int64   `json:"t"`
	V float64 `json:"v"`
}

// Series are named series of points, oldest first
// (GET /api/series/...).
type Series map[string][]Point

// ring is a series bounded to seriesPoints.
type ring []Point

func (r ring) add(p Point) ring {
	if len(r) == seriesPoints {
		copy(r, r[1:])
		r = r[:len(r)-1]
	}
	return append(r, p)
}

// Traffic is the bytes a topic took in (appended) and gave out (fetched)
// since some fixed moment: counters, whose rate the console charts.
type Traffic struct {
	In, Out int64
}

// totals are a round's cumulative counts, by topic.
type totals struct {
	at      time.Time
	records map[string]int64 // sum of end offsets
	traffic map[string]Traffic
	size    map[string]int64 // from DescribeLogDirs
}

type sampler struct {
	c      *Console
	status *kgo.Client // tails appstatus.Topic

	start  sync.Once
	cancel context.CancelFunc
	done   chan struct{}
	ready  chan struct{} // closed after the first round

	mu sync.Mutex // guards the following
	// series by "overview", "topic/<name>" and "group/<name>", then by
	// series name.
	series map[string]map[string]ring
	last   *totals
	// brokerSize and topicSize are the log bytes of the last round, by
	// broker (every replica it holds) and by topic (its leaders' logs
	// only: one copy).
	brokerSize map[int32]int64
	topicSize  map[string]int64
	// apps are the status records read, by record key; statusNext is
	// the offset after the last one.
	apps       map[string]appstatus.Status
	statusNext int64
}

func newSampler(c *Console) *sampler {
	return &sampler{c: c, done: make(chan struct{}), ready: make(chan struct{}),
		series: map[string]map[string]ring{}, apps: map[string]appstatus.Status{}}
}

// ensure starts the sampler once.
func (s *sampler) ensure() {
	s.start.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		cl, err := kgo.NewClient(append(append([]kgo.Opt{}, s.c.cfg.ClientOpts...), kgo.SeedBrokers(s.c.cfg.Brokers...),
			kgo.ConsumeTopics(appstatus.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
		if err != nil {
			// Options New accepted; keep the charts without the apps.
			s.c.cfg.Logger.Warn("console: status client", "err", err)
		}
		s.status = cl
		go s.run(ctx)
	})
}

// close stops the sampler, if it started, and waits for it.
func (s *sampler) close() {
	s.start.Do(func() { close(s.done) }) // never started: nothing to wait for
	if s.cancel != nil {
		s.cancel()
	}
	<-s.done
	if s.status != nil {
		s.status.Close()
	}
}

// waitReady waits for the first round, for the pages that show nothing
// without it.
func (s *sampler) waitReady(ctx context.Context) {
	select {
	case <-s.ready:
	case <-ctx.Done():
	}
}

func (s *sampler) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.c.cfg.SampleInterval)
	defer t.Stop()
	first := true
	for {
		rctx, cancel := context.WithTimeout(ctx, s.c.cfg.RequestTimeout)
		s.round(rctx, time.Now())
		cancel()
		if first {
			close(s.ready)
			first = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round takes one sample of everything. A part that fails is left out of
// this round; the charts show the gap as a missing point.
func (s *sampler) round(ctx context.Context, now time.Time) {
	adm := s.c.adm
	cur := &totals{at: now, records: map[string]int64{}}
	md, err := adm.Metadata(ctx)
	if err != nil {
		s.c.cfg.Logger.Debug("console: sample metadata", "err", err)
		return
	}
	if names := md.Topics.Names(); len(names) > 0 {
		if ends, err := adm.ListEndOffsets(ctx, names...); err == nil {
			ends.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					cur.records[o.Topic] += o.Offset
				}
			})
		} else {
			cur.records = nil
		}
	}
	if s.c.cfg.Traffic != nil {
		cur.traffic = s.c.cfg.Traffic()
	}
	brokerSize, topicSize := s.logSizes(ctx, md)
	cur.size = topicSize

	var lags kadm.DescribedGroupLags
	if listed, err := adm.ListGroups(ctx); err == nil && len(listed) > 0 {
		lags, _ = adm.Lag(ctx, listed.Groups()...)
	}
	s.readStatus(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	if brokerSize != nil {
		s.brokerSize, s.topicSize = brokerSize, topicSize
	}
	ms := now.UnixMilli()
	add := func(scope, name string, v float64) {
		m := s.series[scope]
		if m == nil {
			m = map[string]ring{}
			s.series[scope] = m
		}
		m[name] = m[name].add(Point{ms, v})
	}
	if prev := s.last; prev != nil {
		secs := now.Sub(prev.at).Seconds()
		rate := func(a, b int64) float64 { return max(0, float64(a-b)/secs) }
		var recs, in, out float64
		haveIn, haveOut := false, false
		for topic := range md.Topics {
			scope := "topic/" + topic
			if cur.records != nil && prev.records != nil {
				if p, ok := prev.records[topic]; ok {
					r := rate(cur.records[topic], p)
					recs += r
					add(scope, "recordsPerSec", r)
				}
			}
			if cur.traffic != nil && prev.traffic != nil {
				c, p := cur.traffic[topic], prev.traffic[topic]
				ri, ro := rate(c.In, p.In), rate(c.Out, p.Out)
				in, out, haveIn, haveOut = in+ri, out+ro, true, true
				add(scope, "bytesInPerSec", ri)
				add(scope, "bytesOutPerSec", ro)
			} else if cur.size != nil && prev.size != nil {
				// Without the broker's counters, a log's growth
				// is what was appended (less what retention
				// deleted in between).
				if p, ok := prev.size[topic]; ok {
					ri := rate(cur.size[topic], p)
					in, haveIn = in+ri, true
					add(scope, "bytesInPerSec", ri)
				}
			}
		}
		if cur.records != nil && prev.records != nil {
			add("overview", "recordsPerSec", recs)
		}
		if haveIn {
			add("overview", "bytesInPerSec", in)
		}
		if haveOut {
			add("overview", "bytesOutPerSec", out)
		}
	}
	if cur.records != nil {
		s.last = cur
	}
	for _, g := range lags {
		if g.Error() == nil {
			add("group/"+g.Group, "lag", float64(totalLag(g.Lag)))
		}
	}
	// Forget what the cluster no longer has.
	for scope := range s.series {
		if t, ok := strings.CutPrefix(scope, "topic/"); ok {
			if _, ok := md.Topics[t]; !ok {
				delete(s.series, scope)
			}
		}
		if g, ok := strings.CutPrefix(scope, "group/"); ok && lags != nil {
			if _, ok := lags[g]; !ok {
				delete(s.series, scope)
			}
		}
	}
}

// logSizes asks every broker for its log dirs: the bytes each broker holds,
// and each topic's bytes counted on its partitions' leaders. Nil maps when
// the cluster cannot say (an old Kafka, or an error).
func (s *sampler) logSizes(ctx context.Context, md kadm.Metadata) (map[int32]int64, map[string]int64) {
	dirs, err := s.c.adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return nil, nil
	}
	leader := map[string]map[int32]int32{}
	for name, t := range md.Topics {
		leader[name] = map[int32]int32{}
		for _, p := range t.Partitions {
			leader[name][p.Partition] = p.Leader
		}
	}
	brokers, topics := map[int32]int64{}, map[string]int64{}
	for id, ds := range dirs {
		ds.EachPartition(func(p kadm.DescribedLogDirPartition) {
			brokers[id] += p.Size
			if leader[p.Topic][p.Partition] == id {
				topics[p.Topic] += p.Size
			}
		})
	}
	return brokers, topics
}

// readStatus reads the status topic up to its end as of now.
func (s *sampler) readStatus(ctx context.Context) {
	if s.status == nil {
		return
	}
	ends, err := s.c.adm.ListEndOffsets(ctx, appstatus.Topic)
	if err != nil {
		return
	}
	end, ok := ends.Lookup(appstatus.Topic, 0)
	if !ok || end.Err != nil {
		return // no application has written one yet
	}
	// A poll that brings nothing within a second ends the round: the
	// end may lie past the last record (a transaction marker), and the
	// next round reads on.
	for s.statusPos() < end.Offset && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := s.status.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			return
		}
		s.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			s.statusNext = r.Offset + 1
			st, err := appstatus.Decode(r.Value)
			switch {
			case errors.Is(err, appstatus.ErrTombstone):
				delete(s.apps, string(r.Key))
			case err == nil:
				s.apps[string(r.Key)] = st
			}
		})
		s.mu.Unlock()
	}
}

func (s *sampler) statusPos() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusNext
}

// seriesOf returns a copy of a scope's series.
func (s *sampler) seriesOf(scope string) Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Series{}
	for name, r := range s.series[scope] {
		out[name] = append([]Point(nil), r...)
	}
	return out
}

// statuses returns the status records read, by key.
func (s *sampler) statuses() map[string]appstatus.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.apps)
}

// sizes returns the log bytes by broker and by topic of the last round;
// nil before one, or when the cluster cannot say.
func (s *sampler) sizes() (map[int32]int64, map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.brokerSize, s.topicSize
}

// latest returns the last point of a series, if it has one.
func (s *sampler) latest(scope, name string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.series[scope][name]
	if len(r) == 0 {
		return 0, false
	}
	return r[len(r)-1].V, true
}
