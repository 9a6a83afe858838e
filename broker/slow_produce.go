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

// checkSlowProduce logs req, a Produce whose finisher ran from finStart
// to finEnd and whose response is written now, if it was slow.
func (c *conn) checkSlowProduce(req *request, finStart, finEnd time.Time) {
	now := time.Now()
	total := now.Sub(req.received) + req.budgetWait
	if total < slowProduce || now.Sub(c.slowProduceLogged) < slowProduceLogEvery {
		return
	}
	c.slowProduceLogged = now
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	c.b.logger.Warn("slow produce", "remote", c.nc.RemoteAddr().String(), "total", ms(total),
		"budget_and_read", ms(req.budgetWait), "append", ms(req.handled.Sub(req.received)),
		"queued", ms(finStart.Sub(req.handled)), "ack_wait", ms(finEnd.Sub(finStart)), "write", ms(now.Sub(finEnd)))
}
