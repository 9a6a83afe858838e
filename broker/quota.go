package broker

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Client quotas, as Kafka's (KIP-13, KIP-124, KIP-219). The quotas are in
// the metadata (AlterClientQuotas); each applies to the connections of one
// entity:
//
//	producer_byte_rate   Produce request bytes per second
//	consumer_byte_rate   Fetch response bytes per second
//	request_percentage   handler time, as a percentage of one thread
//
// For a connection of user U (its principal's name; ANONYMOUS without
// authentication) and client id C, each quota comes from the first entity
// that sets it, in Kafka's order: (U, C), (U, default client), U,
// (default user, C), (default user, default client), default user, C,
// default client. Connections that resolve to the same entity share one
// rate: a quota set for user U holds for all of U's clients together,
// one set for the default client id holds for each client id apart.
//
// A rate is measured over QuotaWindowNum windows of QuotaWindowSize
// (quota.window.num, quota.window.size.seconds). When a request takes an
// entity over its quota, the response carries throttle_time_ms =
// (rate - quota) / quota * window, at most the whole window span, and the
// connection is muted that long: the broker reads nothing more from it
// (KIP-219), so a client that ignores the throttle time waits anyway.
// Follower fetches, WriteTxnMarkers, ApiVersions and the SASL requests
// are exempt.

// Quota config keys.
const (
	quotaProducerByteRate       = "producer_byte_rate"
	quotaConsumerByteRate       = "consumer_byte_rate"
	quotaRequestPercentage      = "request_percentage"
	quotaControllerMutationRate = "controller_mutation_rate"
	quotaConnectionCreationRate = "connection_creation_rate"
)

// quotaKeyTypes are the keys each entity type may set, and whether the
// value must be a whole number (Kafka's LONG configs).
var quotaKeyTypes = map[string]bool{
	quotaProducerByteRate:       true,
	quotaConsumerByteRate:       true,
	quotaRequestPercentage:      false,
	quotaControllerMutationRate: false,
}

// sensorKey names one shared rate: the quota key and the names of the
// entity that set it, defaults replaced by the connection's own names
// (an entity without a user or a client id component has "" there).
type sensorKey struct {
	quota          string
	user, clientID string
	hasUser        bool
	hasClient      bool
}

// quotaSensors holds the rates of the entities that have quotas. Readers
// and writers of every connection record into it.
type quotaSensors struct {
	now  func() time.Time
	num  int
	size time.Duration

	// memo remembers how quota keys resolve (quota_memo.go).
	memo quotaMemo

	mu        sync.Mutex // guards the following
	sensors   map[sensorKey]*rateSensor
	lastSweep time.Time
}

func newQuotaSensors(cfg *Config) *quotaSensors {
	return &quotaSensors{now: cfg.Now, num: cfg.ClientLimits.QuotaWindowNum, size: cfg.ClientLimits.QuotaWindowSize, sensors: map[sensorKey]*rateSensor{}}
}

// resolveQuota finds the quota of key for a connection of user and
// clientID, in Kafka's order, and the rate it is counted in.
func resolveQuota(q meta.Quotas, key, user, clientID string) (float64, sensorKey, bool) {
	u, c, d := meta.Named(user), meta.Named(clientID), meta.DefaultName()
	for _, e := range [...]meta.QuotaEntity{
		{User: u, ClientID: c}, {User: u, ClientID: d}, {User: u},
		{User: d, ClientID: c}, {User: d, ClientID: d}, {User: d},
		{ClientID: c}, {ClientID: d},
	} {
		v, ok := q[e][key]
		if !ok {
			continue
		}
		k := sensorKey{quota: key, hasUser: e.User.Set, hasClient: e.ClientID.Set}
		if k.hasUser {
			k.user = user
		}
		if k.hasClient {
			k.clientID = clientID
		}
		return v, k, true
	}
	return 0, sensorKey{}, false
}

// record adds value to the rate of key for the connection and returns how
// long it is to be throttled: zero unless the rate is now over the quota.
func (s *quotaSensors) record(q meta.Quotas, key, user, clientID string, value float64) time.Duration {
	bound, sk, ok := s.memo.resolve(q, key, user, clientID)
	if !ok {
		return 0
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	rs := s.sensors[sk]
	if rs == nil {
		rs = &rateSensor{num: s.num, size: s.size}
		s.sensors[sk] = rs
	}
	rs.record(now, value)
	return rs.throttle(now, bound)
}

// sweepLocked drops the rates of entities idle for a whole window span,
// once a minute, so client ids that come and go are not kept forever.
// REQUIRES: s.mu held.
func (s *quotaSensors) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < time.Minute {
		return
	}
	s.lastSweep = now
	span := time.Duration(s.num) * s.size
	for k, rs := range s.sensors {
		if now.Sub(rs.last) > span {
			delete(s.sensors, k)
		}
	}
}

// rateSensor is Kafka's sampled Rate: values summed into windows of size,
// the last num kept.
type rateSensor struct {
	num  int
	size time.Duration
	// samples are the windows, oldest first; at most num.
	samples []rateSample
	last    time.Time // of the last record
}

type rateSample struct {
	start time.Time
	value float64
}

func (r *rateSensor) purge(now time.Time) {
	span := time.Duration(r.num) * r.size
	i := 0
	for i < len(r.samples) && now.Sub(r.samples[i].start) >= span {
		i++
	}
	r.samples = r.samples[i:]
}

func (r *rateSensor) record(now time.Time, v float64) {
	r.purge(now)
	r.last = now
	if n := len(r.samples); n == 0 || now.Sub(r.samples[n-1].start) >= r.size {
		if n == r.num {
			r.samples = r.samples[1:]
		}
		r.samples = append(r.samples, rateSample{start: now})
	}
	r.samples[len(r.samples)-1].value += v
}

// window is the span the rate is measured over: from the oldest window's
// start to now, but at least num-1 whole windows, so a burst right after
// the first record is not measured over a few milliseconds.
func (r *rateSensor) window(now time.Time) time.Duration {
	elapsed := time.Duration(0)
	if len(r.samples) > 0 {
		elapsed = now.Sub(r.samples[0].start)
	}
	if full := int(elapsed / r.size); full < r.num-1 {
		elapsed += time.Duration(r.num-1-full) * r.size
	}
	return max(elapsed, time.Millisecond)
}

func (r *rateSensor) rate(now time.Time) float64 {
	r.purge(now)
	var total float64
	for _, s := range r.samples {
		total += s.value
	}
	return total / r.window(now).Seconds()
}

// throttle is Kafka's throttle time for a rate over its bound: long enough
// for the rate over the window to come down to the bound, at most the
// whole window span.
func (r *rateSensor) throttle(now time.Time, bound float64) time.Duration {
	rate := r.rate(now)
	if rate <= bound || bound <= 0 {
		return 0
	}
	w := r.window(now)
	d := time.Duration((rate - bound) / bound * float64(w))
	return min(d, time.Duration(r.num)*r.size)
}

// quotaUser is the user name quotas know a principal by: the name after
// "User:".
func quotaUser(principal string) string {
	if name, ok := strings.CutPrefix(principal, "User:"); ok {
		return name
	}
	return principal
}

// quotaExempt reports the requests no quota applies to: those a client
// sends before it may be throttled (ApiVersions, the SASL requests), and
// WriteTxnMarkers, which only brokers send.
func quotaExempt(key int16) bool { return key == 18 || key == 17 || key == 36 || key == 27 }

// applyQuotas records a request against the connection's quotas, in the
// reader: its frame size against producer_byte_rate for a Produce, and the
// time its handler took against request_percentage. It returns the
// finisher that also records a Fetch response against
// consumer_byte_rate, and sets the response's throttle time; the
// connection is muted for the longest throttle.
func (c *conn) applyQuotas(req *request, frameSize int32, took time.Duration, fin finisher) finisher {
	q := c.b.meta.Quotas()
	if len(q) == 0 || quotaExempt(req.key) {
		return fin
	}
	user := quotaUser(c.sec.principal)
	s := c.b.quotas
	throttle := s.record(q, quotaRequestPercentage, user, req.clientID, float64(took)/float64(time.Second)*100)
	if req.key == 0 {
		throttle = max(throttle, s.record(q, quotaProducerByteRate, user, req.clientID, float64(frameSize)))
	}
	fetch := req.key == 1 && !followerFetch(req.kreq.(*kmsg.FetchRequest))
	if throttle <= 0 && !fetch {
		return fin
	}
	c.mute(throttle)
	if fin == nil {
		return nil
	}
	return func(ctx context.Context) kmsg.Response {
		resp := fin(ctx)
		if resp == nil {
			return nil
		}
		t := throttle
		if fetch {
			ft := s.record(q, quotaConsumerByteRate, user, req.clientID, float64(fetchResponseBytes(resp)))
			c.mute(ft)
			t = max(t, ft)
		}
		tr, ok := resp.(interface {
			kmsg.ThrottleResponse
			kmsg.SetThrottleResponse
		})
		if ok && t > 0 {
			ms := int32(min(t.Milliseconds(), math.MaxInt32))
			if cur, _ := tr.Throttle(); ms > cur {
				tr.SetThrottle(ms)
			}
		}
		return resp
	}
}

// followerFetch reports a Fetch by a follower replica.
func followerFetch(r *kmsg.FetchRequest) bool { return fetchReplicaID(r) >= 0 }

// fetchResponseBytes counts the record bytes of a Fetch response, in the
// response or in its zero-copy regions.
func fetchResponseBytes(resp kmsg.Response) int64 {
	var fr *kmsg.FetchResponse
	var n int64
	switch r := resp.(type) {
	case *kmsg.FetchResponse:
		fr = r
	case *zeroCopyFetch:
		fr = r.FetchResponse
		for _, reg := range r.regions {
			n += reg.r.Len
		}
	default:
		return 0
	}
	for _, t := range fr.Topics {
		for _, p := range t.Partitions {
			n += int64(len(p.RecordBatches))
		}
	}
	return n
}

// mute stops the reader from reading the next request for d, counted from
// now, unless it is muted longer already.
func (c *conn) mute(d time.Duration) {
	if d <= 0 {
		return
	}
	until := c.b.cfg.Now().Add(d).UnixNano()
	for {
		cur := c.mutedUntil.Load()
		if cur >= until || c.mutedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// waitMuted waits, in the reader, until the connection's throttle ends.
// A connection never throttled, or whose throttle is over, has
// mutedUntil 0 and reads no clock.
func (c *conn) waitMuted() error {
	until := c.mutedUntil.Load()
	if until == 0 {
		return nil
	}
	if d := time.Duration(until - c.b.cfg.Now().UnixNano()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
	// Over, unless the writer muted it again meanwhile.
	c.mutedUntil.CompareAndSwap(until, 0)
	return nil
}
