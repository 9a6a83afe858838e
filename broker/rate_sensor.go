package broker

import "time"

// rateSensor is Kafka's sampled Rate, as its ReplicationQuotaManager
// measures replication throttles with: values summed into windows of size,
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
