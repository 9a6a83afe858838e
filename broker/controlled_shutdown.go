package broker

import (
	"context"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Controlled shutdown. A cluster member that stops (Close, which
// `runnel broker` calls on SIGTERM) first asks the controller to move its
// leaderships to other ISR members and to take it out of every ISR
// (meta.Store.ControlledShutdown), and waits until its own partitions
// have given up the lead, at most Config.ControlledShutdownTimeout. Until
// it stops it still answers: produces and fetches for the partitions it
// no longer leads get NOT_LEADER_OR_FOLLOWER and the clients move to the
// new leaders; an acks=all produce waiting for its acknowledgement is
// answered the same way and retried there, where an idempotent producer's
// retry is written once. So a rolling restart fails no request that could
// have succeeded, where stopping without it leaves partitions leaderless
// for broker.session.timeout.ms. A partition whose ISR is this broker
// alone has nowhere to go; it is offline until the broker is back.

// controlledShutdown runs the controlled shutdown when this broker is a
// cluster member with another live broker to take over.
func (b *Broker) controlledShutdown() {
	if b.cfg.DisableControlledShutdown || !b.meta.Clustered() {
		return
	}
	self := b.cfg.NodeID
	cl := b.meta.Cluster()
	others := false
	for id, br := range cl.Brokers {
		others = others || (id != self && !br.Fenced)
	}
	if !others {
		// The last broker standing: nobody could take over, and with
		// the others gone the controller quorum may be too.
		b.logger.Info("controlled shutdown skipped: no other live broker")
		return
	}
	if ctl, ok := cl.Brokers[cl.ControllerID]; cl.ControllerID < 0 || (cl.ControllerID != self && ok && ctl.ShuttingDown) {
		// The controller is gone or going: the request would wait out
		// the timeout (as when the last voter of a one-voter quorum
		// stopped first).
		b.logger.Info("controlled shutdown skipped: no controller", "controller", cl.ControllerID)
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.ControlledShutdownTimeout)
	defer cancel()
	if err := b.meta.ControlledShutdown(ctx, self); err != nil {
		b.logger.Warn("controlled shutdown failed; stopping anyway", "err", err)
		return
	}
	if err := b.waitLeadershipsGone(ctx); err != nil {
		b.logger.Warn("controlled shutdown: partitions still led here; stopping anyway", "err", err)
		return
	}
	b.logger.Info("controlled shutdown done", "took", time.Since(start).Round(time.Millisecond))
}

// waitLeadershipsGone waits until no partition here leads that metadata
// gave to another broker (or to none): reconcile has applied the change.
func (b *Broker) waitLeadershipsGone(ctx context.Context) error {
	watch, unwatch := b.meta.Watch()
	defer unwatch()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for b.leadsGivenAway(b.meta.Cluster()) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-watch:
		case <-t.C:
		}
	}
	return nil
}

// leadsGivenAway reports whether a local partition still leads though
// metadata says another broker (or none) does.
func (b *Broker) leadsGivenAway(cl *meta.Cluster) bool {
	for _, p := range b.parts.all() {
		t := cl.Topics[p.topic]
		if t == nil || t.ID != p.topicID || int(p.index) >= len(t.Partitions) {
			continue
		}
		if t.Partitions[p.index].Leader != b.cfg.NodeID && p.isLeader() {
			return true
		}
	}
	return false
}
