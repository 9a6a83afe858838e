package runnel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ensureTopics resolves the partition counts of the topology's topics and
// creates the internal topics that are missing: changelogs compacted
// (cleanup.policy=compact), repartition topics with cleanup.policy=delete.
// Missing source topics are created with createSources partitions when it
// is positive, and are an error otherwise; so are missing sink topics,
// with createSinks. Every topic created asks for replication factor rf
// (-1: the broker's default).
func ensureTopics(ctx context.Context, adm *kadm.Client, topo *topology.Topology, app string, createSources, createSinks int, rf int16) (topology.Partitions, error) {
	var sources, sinks []string
	for _, s := range topo.SubTopologies() {
		for _, t := range s.SourceTopics() {
			if !topo.IsRepartitionTopic(t) {
				sources = append(sources, t)
			}
		}
		for _, t := range s.SinkTopics() {
			if !topo.IsRepartitionTopic(t) {
				sinks = append(sinks, t)
			}
		}
	}
	if g := topo.Global(); g != nil {
		sources = append(sources, g.SourceTopics()...)
	}
	existing, err := adm.ListTopics(ctx)
	if err != nil {
		return topology.Partitions{}, fmt.Errorf("stream: list topics: %w", err)
	}
	created := map[string]int{} // not yet in metadata, maybe
	if createSources > 0 {
		for _, t := range sources {
			if existing.Has(t) {
				continue
			}
			if err := createTopic(ctx, adm, t, createSources, rf, nil); err != nil {
				return topology.Partitions{}, err
			}
			created[t] = createSources
		}
	}
	var missing []string
	for _, t := range sinks {
		switch {
		case existing.Has(t) || created[t] > 0:
		case createSinks > 0:
			if err := createTopic(ctx, adm, t, createSinks, rf, nil); err != nil {
				return topology.Partitions{}, err
			}
			created[t] = createSinks
		default:
			missing = append(missing, t)
		}
	}
	if err := awaitSinkTopics(ctx, adm, missing); err != nil {
		return topology.Partitions{}, err
	}
	parts, err := topo.ResolvePartitions(app, func(topic string) (int, bool) {
		if n, ok := created[topic]; ok {
			return n, true
		}
		d, ok := existing[topic]
		if !ok || d.Err != nil {
			return 0, false
		}
		return len(d.Partitions), true
	})
	if err != nil {
		return parts, fmt.Errorf("stream: %w", err)
	}
	for _, it := range parts.Internal {
		if d, ok := existing[it.Name]; ok && d.Err == nil {
			if len(d.Partitions) != it.Partitions {
				return parts, fmt.Errorf("stream: internal topic %s has %d partitions, want %d", it.Name, len(d.Partitions), it.Partitions)
			}
			continue
		}
		policy := "delete"
		if it.Kind == topology.Changelog {
			policy = "compact"
		}
		if err := createTopic(ctx, adm, it.Name, it.Partitions, rf, map[string]*string{"cleanup.policy": &policy}); err != nil {
			return parts, err
		}
		created[it.Name] = it.Partitions
	}
	return parts, waitTopics(ctx, adm, created)
}

// sinkTopicsGrace is how long a sink topic missing from the metadata is
// looked for again before Start fails: a topic created just before the
// application starts may not be in every broker's metadata yet (Apache
// Kafka propagates it from the controller asynchronously).
const sinkTopicsGrace = 5 * time.Second

// awaitSinkTopics waits, at most sinkTopicsGrace, for the sink topics
// missing from the metadata, and fails naming the first still missing.
// Kafka Streams would retry its produce until it timed out; a missing
// output topic is better said at once.
func awaitSinkTopics(ctx context.Context, adm *kadm.Client, missing []string) error {
	if len(missing) == 0 {
		return nil
	}
	deadline := time.Now().Add(sinkTopicsGrace)
	for {
		details, err := adm.ListTopics(ctx, missing...)
		if err != nil {
			return fmt.Errorf("stream: list topics: %w", err)
		}
		var still []string
		for _, t := range missing {
			if d, ok := details[t]; !ok || d.Err != nil {
				still = append(still, t)
			}
		}
		if len(still) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			t := still[0]
			return fmt.Errorf("stream: sink topic %s does not exist: create it (runnel topics create %s) or start the application with runnel.CreateSinkTopics", t, t)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		missing = still
	}
}

// topicsVisibleTimeout bounds waitTopics.
const topicsVisibleTimeout = 30 * time.Second

// waitTopics polls the metadata until every topic of want is listed with
// its number of partitions, each with a leader. A cluster answers
// CreateTopics before every broker's metadata has the topic (Apache Kafka
// propagates it from the controller asynchronously); a restore or a fetch
// sent in between would find the topic unknown.
func waitTopics(ctx context.Context, adm *kadm.Client, want map[string]int) error {
	if len(want) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(want))
	ctx, cancel := context.WithTimeout(ctx, topicsVisibleTimeout)
	defer cancel()
	for {
		var missing []string
		details, err := adm.ListTopics(ctx, names...)
		for _, name := range names {
			d, ok := details[name]
			ready := err == nil && ok && d.Err == nil && len(d.Partitions) == want[name]
			for _, p := range d.Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0
			}
			if !ready {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream: topics created but not in the metadata after %v: %s (last error: %v)", topicsVisibleTimeout, strings.Join(missing, ", "), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func createTopic(ctx context.Context, adm *kadm.Client, name string, partitions int, rf int16, configs map[string]*string) error {
	resp, err := adm.CreateTopic(ctx, int32(partitions), rf, configs, name)
	if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	if resp.Err == nil { // the request failed, not the topic
		return fmt.Errorf("stream: create topic %s: %w", name, err)
	}
	// The broker's message says why (e.g. how many brokers there are).
	err = fmt.Errorf("stream: create topic %s with %d partitions, replication factor %d: %w", name, partitions, rf, resp.Err)
	if resp.ErrMessage != "" {
		err = fmt.Errorf("%w (%s)", err, resp.ErrMessage)
	}
	return err
}
