package broker

import (
	"bufio"
	"encoding/binary"
	"time"
)

// A Produce that takes the broker more than slowProduce is logged with
// where its time went, at most once per connection every
// slowProduceLogEvery: waiting for the request budget and reading the
// frame, appending (the handler), queued behind the connection's earlier
// requests, waiting for the acknowledgement (acks=all: the high
// watermark), writing the response. A stall that no part explains was
// outside the broker (the client, or the network). Only Produce requests
// read the clock for it, a few times per request, which carries
// megabytes at full speed.
const (
	slowProduce         = time.Second
	slowProduceLogEvery = 10 * time.Second
)

// produceClock is now when the next frame in r is a Produce, else zero:
// the start of its wait for the request budget.
func produceClock(r *bufio.Reader) time.Time {
	if head, _ := r.Peek(2); len(head) == 2 && binary.BigEndian.Uint16(head) == 0 {
		return time.Now()
	}
	return time.Time{}
}

// produceTimes is where a Produce's time in the broker went: waiting for
// the request budget and reading its frame, appending (the handler),
// queued behind the connection's earlier requests, waiting for its
// acknowledgement, and encoding and writing its response.
type produceTimes struct {
	read, append, queued, ackWait, respond time.Duration
}

// total is the Produce's whole time in the broker.
func (t produceTimes) total() time.Duration {
	return t.read + t.append + t.queued + t.ackWait + t.respond
}

// timeProduce splits the time of req, a Produce whose finisher ran from
// finStart to finEnd and whose response was written at now.
func timeProduce(req *request, finStart, finEnd, now time.Time) produceTimes {
	return produceTimes{
		read:    req.budgetWait,
		append:  req.handled.Sub(req.received),
		queued:  finStart.Sub(req.handled),
		ackWait: finEnd.Sub(finStart),
		respond: now.Sub(finEnd),
	}
}

// checkSlowProduce logs a Produce that took t, its response written at
// now, if it was slow.
func (c *conn) checkSlowProduce(t produceTimes, now time.Time) {
	total := t.total()
	if total < slowProduce || now.Sub(c.slowProduceLogged) < slowProduceLogEvery {
		return
	}
	c.slowProduceLogged = now
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	c.b.logger.Warn("slow produce", "remote", c.nc.RemoteAddr().String(), "total", ms(total),
		"budget_and_read", ms(t.read), "append", ms(t.append),
		"queued", ms(t.queued), "ack_wait", ms(t.ackWait), "write", ms(t.respond))
}
