package broker

import (
	"context"
	"errors"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// controllerHandoverTimeout bounds the handover: the transfer itself
// gives up after one Raft election timeout (a second).
const controllerHandoverTimeout = 5 * time.Second

// handOverController runs on Close, after the controlled shutdown: when
// this broker's node is the controller (the Raft leader of the metadata
// quorum), it hands the role to another voter before it stops, so
// metadata changes — topic creations, ISR changes, the fencing of this
// very broker — go on without waiting out an election timeout
// (meta.Store.HandOver). It is part of every stop of a cluster member,
// whether or not the controlled shutdown of its partitions is on: it
// concerns the quorum, which KRaft's controllers also leave gracefully.
// A failure is logged and the broker stops anyway; the voters then elect
// a controller as if it had crashed.
func (b *Broker) handOverController() {
	if !b.meta.Clustered() {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), controllerHandoverTimeout)
	defer cancel()
	to, err := b.meta.HandOver(ctx)
	switch {
	case errors.Is(err, meta.ErrNoHandoverTarget):
		b.logger.Info("controller not handed over: no other voter is live")
	case err != nil:
		b.logger.Warn("controller handover failed; stopping anyway", "err", err)
	case to >= 0:
		b.logger.Info("controller handed over", "to", to, "took", time.Since(start).Round(time.Millisecond))
	}
}
