package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/topology"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ensureTopics resolves the partition counts of the topology's topics and
// creates the internal topics that are missing: changelogs compacted
// (cleanup.policy=compact), repartition topics with cleanup.policy=delete.
// Missing source topics are created with createSources partitions when it
// is positive, and are an error otherwise.
func ensureTopics(ctx context.Context, adm *kadm.Client, topo *topology.Topology, app string, createSources int) (topology.Partitions, error) {
	var sources []string
	for _, s := range topo.SubTopologies() {
		for _, t := range s.SourceTopics() {
			if !topo.IsRepartitionTopic(t) {
				sources = append(sources, t)
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
			if err := createTopic(ctx, adm, t, createSources, nil); err != nil {
				return topology.Partitions{}, err
			}
			created[t] = createSources
		}
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
		if err := createTopic(ctx, adm, it.Name, it.Partitions, map[string]*string{"cleanup.policy": &policy}); err != nil {
			return parts, err
		}
	}
	return parts, nil
}

func createTopic(ctx context.Context, adm *kadm.Client, name string, partitions int, configs map[string]*string) error {
	resp, err := adm.CreateTopic(ctx, int32(partitions), -1, configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("stream: create topic %s: %w", name, err)
	}
	return nil
}
