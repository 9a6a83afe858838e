package runnel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/offsetspec"
)

// Resetting an application for reprocessing, as Kafka's
// kafka-streams-application-reset does: commit new offsets on its input
// topics for its consumer group, delete the group's offsets on its internal
// topics and the internal topics themselves. The local state of each
// instance is cleared separately, with App.CleanUp. `runnel reset` is this
// code behind flags.

// ResetTarget says where a reset moves the input offsets. It is the
// command line's offset spec, so `runnel reset` and `runnel groups
// reset-offsets` resolve targets exactly as this does.
type ResetTarget = offsetspec.Spec

// ResetToEarliest moves the inputs to each partition's start offset.
func ResetToEarliest() ResetTarget { return offsetspec.Earliest() }

// ResetToLatest moves the inputs to each partition's end offset.
func ResetToLatest() ResetTarget { return offsetspec.Latest() }

// ResetToOffset moves the inputs to offset n, clamped to each partition's
// [start, end].
func ResetToOffset(n int64) ResetTarget { return offsetspec.Offset(n) }

// ResetToTime moves the inputs to the first record at or after t, or the
// end of a partition with none.
func ResetToTime(t time.Time) ResetTarget { return offsetspec.Time(t) }

// ResetOffset is one input partition's offset change.
type ResetOffset struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset; -1 if none.
	Committed int64
	// Offset is the offset the reset commits.
	Offset int64
	// Note says why Offset is not quite what was asked, if it is not.
	Note string
}

// ResetPlan is what a reset does: PlanReset makes it without changing
// anything, Apply carries it out.
type ResetPlan struct {
	ApplicationID string
	// Offsets are the input offsets to commit, by topic then partition.
	Offsets []ResetOffset
	// InternalTopics are the application's internal topics to delete,
	// sorted.
	InternalTopics []string
}

// ErrGroupActive is returned by PlanReset while the application's group has
// members: their next commit would undo the reset.
var ErrGroupActive = errors.New("stream: the application's group has members")

// ResetApplication resets the application appID on the cluster at brokers
// for reprocessing: PlanReset then Apply. It returns the plan it carried
// out. Stop every instance first; clear each one's local state with
// App.CleanUp before starting it again. It connects in plaintext: for a
// cluster that needs TLS or SASL, call PlanReset and Apply with a client
// that has them (as `runnel reset` does).
func ResetApplication(ctx context.Context, brokers []string, appID string, inputTopics []string, target ResetTarget) (*ResetPlan, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("stream: reset: %w", err)
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	plan, err := PlanReset(ctx, adm, appID, inputTopics, target)
	if err != nil {
		return nil, err
	}
	return plan, plan.Apply(ctx, adm)
}

// PlanReset works out what resetting appID to target on inputTopics does,
// changing nothing. It fails with ErrGroupActive while the group has
// members, and for an input topic that does not exist. With no input
// topics, only the internal topics are deleted.
func PlanReset(ctx context.Context, adm *kadm.Client, appID string, inputTopics []string, target ResetTarget) (*ResetPlan, error) {
	if err := checkGroupEmpty(ctx, adm, appID); err != nil {
		return nil, err
	}
	plan := &ResetPlan{ApplicationID: appID}
	if len(inputTopics) > 0 {
		var err error
		if plan.Offsets, err = resetOffsets(ctx, adm, appID, inputTopics, target); err != nil {
			return nil, err
		}
	}
	all, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream: reset: list topics: %w", err)
	}
	for _, t := range all.Names() {
		if IsInternalTopic(appID, t) {
			plan.InternalTopics = append(plan.InternalTopics, t)
		}
	}
	slices.Sort(plan.InternalTopics)
	return plan, nil
}

// Apply commits the plan's offsets, deletes the group's offsets on the
// internal topics and the topics themselves, and waits until the cluster
// no longer lists them, so that the application can start again at once.
func (p *ResetPlan) Apply(ctx context.Context, adm *kadm.Client) error {
	if len(p.Offsets) > 0 {
		commits := kadm.Offsets{}
		for _, o := range p.Offsets {
			commits.AddOffset(o.Topic, o.Partition, o.Offset, -1)
		}
		resps, err := adm.CommitOffsets(ctx, p.ApplicationID, commits)
		if err == nil {
			err = resps.Error()
		}
		if err != nil {
			return fmt.Errorf("stream: reset: commit offsets of group %s: %w", p.ApplicationID, err)
		}
	}
	if len(p.InternalTopics) == 0 {
		return nil
	}
	// The group's offsets on its repartition topics would outlive them and
	// point into the topics created anew.
	if err := deleteGroupOffsets(ctx, adm, p.ApplicationID, p.InternalTopics); err != nil {
		return err
	}
	resps, err := adm.DeleteTopics(ctx, p.InternalTopics...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("stream: reset: delete internal topics: %w", err)
	}
	for {
		listed, err := adm.ListTopics(ctx, p.InternalTopics...)
		if err != nil {
			return fmt.Errorf("stream: reset: list topics: %w", err)
		}
		if !slices.ContainsFunc(p.InternalTopics, listed.Has) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream: reset: waiting for the internal topics to go: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond): // polling the cluster's metadata
		}
	}
}

// IsInternalTopic reports whether topic is one of app's internal topics:
// named "<app>-…" and ending as a changelog, a repartition topic or a
// foreign-key join's subscription topics do (Kafka's reset tool's rule).
func IsInternalTopic(app, topic string) bool {
	if !strings.HasPrefix(topic, app+"-") {
		return false
	}
	return strings.HasSuffix(topic, "-changelog") || strings.HasSuffix(topic, "-repartition") || strings.HasSuffix(topic, "-topic")
}

// checkGroupEmpty fails unless group has no members.
func checkGroupEmpty(ctx context.Context, adm *kadm.Client, group string) error {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("stream: reset: describe group %s: %w", group, err)
	}
	d, ok := described[group]
	switch {
	case !ok, errors.Is(d.Err, kerr.GroupIDNotFound), d.Err == nil && d.State == "Dead":
		return nil
	case d.Err != nil:
		return fmt.Errorf("stream: reset: describe group %s: %w", group, d.Err)
	case d.State != "Empty" || len(d.Members) > 0:
		members := fmt.Sprintf("%d members", len(d.Members))
		if len(d.Members) == 1 {
			members = "1 member"
		}
		return fmt.Errorf("%w: group %s is %s with %s; stop its instances first", ErrGroupActive, group, d.State, members)
	}
	return nil
}

// resetOffsets works out the new offsets of every partition of topics.
func resetOffsets(ctx context.Context, adm *kadm.Client, group string, topics []string, target ResetTarget) ([]ResetOffset, error) {
	topics = slices.Compact(slices.Sorted(slices.Values(topics)))
	tds, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("stream: reset: list topics: %w", err)
	}
	var out []ResetOffset
	for _, t := range topics {
		td, ok := tds[t]
		switch {
		case !ok:
			return nil, fmt.Errorf("stream: reset: topic %s: %w", t, kerr.UnknownTopicOrPartition)
		case td.Err != nil:
			return nil, fmt.Errorf("stream: reset: topic %s: %w", t, td.Err)
		}
		for _, p := range slices.Sorted(maps.Keys(td.Partitions)) {
			out = append(out, ResetOffset{Topic: t, Partition: p, Committed: -1})
		}
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("stream: reset: fetch offsets of group %s: %w", group, err)
	}
	for i, o := range out {
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			out[i].Committed = c.At
		}
	}
	parts := make([]offsetspec.Partition, len(out))
	for i, o := range out {
		parts[i] = offsetspec.Partition{Topic: o.Topic, Partition: o.Partition}
	}
	resolved, err := offsetspec.Resolve(ctx, adm, target, parts)
	if err != nil {
		return nil, fmt.Errorf("stream: reset: %w", err)
	}
	for i, r := range resolved {
		out[i].Offset, out[i].Note = r.Offset, r.Note
	}
	return out, nil
}

// deleteGroupOffsets deletes group's committed offsets on topics.
func deleteGroupOffsets(ctx context.Context, adm *kadm.Client, group string, topics []string) error {
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream: reset: fetch offsets of group %s: %w", group, err)
	}
	del := kadm.TopicsSet{}
	committed.Each(func(o kadm.OffsetResponse) {
		if slices.Contains(topics, o.Topic) {
			del.Add(o.Topic, o.Partition)
		}
	})
	if len(del) == 0 {
		return nil
	}
	resps, err := adm.DeleteOffsets(ctx, group, del)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("stream: reset: delete offsets of group %s on internal topics: %w", group, err)
	}
	return nil
}
