package console

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The writes, allowed only with Config.AllowWrites (see Console.write).

// ProduceRequest is the body of POST /api/topics/{topic}/produce: one test
// record. Key and Value are text unless Base64 says they are base64; a
// Partition of nil lets the default partitioner choose.
type ProduceRequest struct {
	Key       *string           `json:"key"`
	Value     *string           `json:"value"`
	Base64    bool              `json:"base64"`
	Headers   map[string]string `json:"headers"`
	Partition *int32            `json:"partition"`
}

// Produced is where a produced record landed.
type Produced struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

func (c *Console) produce(ctx context.Context, r *http.Request) (any, error) {
	var req ProduceRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	rec := &kgo.Record{Topic: r.PathValue("topic")}
	var err error
	if rec.Key, err = payloadBytes(req.Key, req.Base64); err != nil {
		return nil, err
	}
	if rec.Value, err = payloadBytes(req.Value, req.Base64); err != nil {
		return nil, err
	}
	for k, v := range req.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if req.Partition != nil {
		if *req.Partition < 0 {
			return nil, badRequest("console: partition must be >= 0")
		}
		rec.Partition = *req.Partition
		rec.Context = context.WithValue(ctx, manualPartition{}, true)
	}
	// A client per write: the console's own client does not produce,
	// and a manual partition needs the manual partitioner.
	opts := append([]kgo.Opt{}, c.cfg.ClientOpts...)
	opts = append(opts, kgo.SeedBrokers(c.cfg.Brokers...), kgo.RecordPartitioner(partitioner{}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	defer cl.Close()
	got, err := cl.ProduceSync(ctx, rec).First()
	if err != nil {
		return nil, fmt.Errorf("console: produce: %w", err)
	}
	c.cfg.Logger.Info("console: produced a test record", "topic", got.Topic, "partition", got.Partition, "offset", got.Offset)
	return Produced{Partition: got.Partition, Offset: got.Offset}, nil
}

func payloadBytes(s *string, b64 bool) ([]byte, error) {
	if s == nil {
		return nil, nil
	}
	if !b64 {
		return []byte(*s), nil
	}
	b, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		return nil, badRequest("console: bad base64: %v", err)
	}
	return b, nil
}

// manualPartition marks, in a record's context, a record whose Partition
// was chosen by the caller.
type manualPartition struct{}

// partitioner keeps a record's own partition when it has one, else
// partitions as franz-go does by default.
type partitioner struct{}

func (partitioner) ForTopic(t string) kgo.TopicPartitioner {
	return topicPartitioner{kgo.StickyKeyPartitioner(nil).ForTopic(t)}
}

type topicPartitioner struct{ def kgo.TopicPartitioner }

func (p topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }
func (p topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Context != nil && r.Context.Value(manualPartition{}) != nil {
		return int(r.Partition)
	}
	return p.def.Partition(r, n)
}

// AlterConfigsRequest is the body of POST /api/topics/{topic}/configs:
// configs to set, and configs to delete (return to their default).
type AlterConfigsRequest struct {
	Set    map[string]string `json:"set"`
	Delete []string          `json:"delete"`
}

func (c *Console) alterConfigs(ctx context.Context, r *http.Request) (any, error) {
	var req AlterConfigsRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if len(req.Set)+len(req.Delete) == 0 {
		return nil, badRequest("console: nothing to alter")
	}
	topic := r.PathValue("topic")
	var alter []kadm.AlterConfig
	for k, v := range req.Set {
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	for _, k := range req.Delete {
		alter = append(alter, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	resps, err := c.adm.AlterTopicConfigs(ctx, alter, topic)
	if err != nil {
		return nil, fmt.Errorf("console: alter configs: %w", err)
	}
	for _, resp := range resps {
		if resp.Err != nil {
			return nil, badRequest("console: alter configs of %q: %v %s", topic, resp.Err, resp.ErrMessage)
		}
	}
	c.cfg.Logger.Info("console: altered topic configs", "topic", topic, "set", req.Set, "delete", req.Delete)
	return map[string]bool{"ok": true}, nil
}

// ResetRequest is the body of POST /api/groups/{group}/reset: move the
// group's committed offsets, on every partition it has one, to the
// earliest, the latest, an offset, or the first at or after a time.
// Confirm must repeat the group's name.
type ResetRequest struct {
	To        string `json:"to"` // earliest, latest, offset, timestamp
	Offset    int64  `json:"offset"`
	Timestamp string `json:"timestamp"`
	Confirm   string `json:"confirm"`
}

func (c *Console) resetGroup(ctx context.Context, r *http.Request) (any, error) {
	var req ResetRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	group := r.PathValue("group")
	if req.Confirm != group {
		return nil, badRequest("console: to reset the offsets of %q, confirm with its name", group)
	}
	described, err := c.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("console: describe group: %w", err)
	}
	d := described[group]
	if d.Err != nil {
		return nil, fmt.Errorf("console: describe group: %w", d.Err)
	}
	if d.State != "Empty" {
		return nil, &httpError{http.StatusConflict, fmt.Errorf("console: group %q is %s, not Empty: stop its members first", group, d.State)}
	}
	committed, err := c.adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("console: fetch offsets: %w", err)
	}
	topics := committed.Offsets().TopicsSet().Topics()
	if len(topics) == 0 {
		return nil, badRequest("console: group %q has no committed offsets to reset", group)
	}
	var target kadm.ListedOffsets
	switch req.To {
	case "earliest":
		target, err = c.adm.ListStartOffsets(ctx, topics...)
	case "latest":
		target, err = c.adm.ListEndOffsets(ctx, topics...)
	case "timestamp":
		var ms int64
		if ms, err = parseTimestamp(req.Timestamp); err != nil {
			return nil, err
		}
		target, err = c.adm.ListOffsetsAfterMilli(ctx, ms, topics...)
	case "offset":
		if req.Offset < 0 {
			return nil, badRequest("console: offset must be >= 0")
		}
	default:
		return nil, badRequest("console: to must be earliest, latest, offset or timestamp, not %q", req.To)
	}
	if err != nil {
		return nil, fmt.Errorf("console: list offsets: %w", err)
	}
	// Clamp to the partitions' ranges, as kafka-consumer-groups does.
	starts, err := c.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("console: list offsets: %w", err)
	}
	ends, err := c.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("console: list offsets: %w", err)
	}
	os := kadm.Offsets{}
	var fail error
	committed.Each(func(o kadm.OffsetResponse) {
		at := req.Offset
		if target != nil {
			t, ok := target.Lookup(o.Topic, o.Partition)
			if !ok || t.Err != nil {
				fail = fmt.Errorf("console: no offset for %s/%d", o.Topic, o.Partition)
				return
			}
			at = t.Offset
		}
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil {
			at = max(at, s.Offset)
		}
		if e, ok := ends.Lookup(o.Topic, o.Partition); ok && e.Err == nil && (at < 0 || at > e.Offset) {
			at = e.Offset
		}
		os.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: at, LeaderEpoch: -1})
	})
	if fail != nil {
		return nil, fail
	}
	if err := c.adm.CommitAllOffsets(ctx, group, os); err != nil {
		return nil, fmt.Errorf("console: commit offsets: %w", err)
	}
	c.cfg.Logger.Info("console: reset group offsets", "group", group, "to", req.To, "at", time.Now().UTC())
	var out []PartitionLag
	os.Each(func(o kadm.Offset) {
		out = append(out, PartitionLag{Topic: o.Topic, Partition: o.Partition, Committed: o.At})
	})
	return out, nil
}

// CreateTopicRequest is the body of POST /api/topics: a topic to create.
// Partitions and ReplicationFactor of 0 (or -1) take the cluster's
// defaults.
type CreateTopicRequest struct {
	Name              string            `json:"name"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replicationFactor"`
	Configs           map[string]string `json:"configs"`
}

func (c *Console) createTopic(ctx context.Context, r *http.Request) (any, error) {
	var req CreateTopicRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, badRequest("console: a topic needs a name")
	}
	if req.Partitions < -1 || req.ReplicationFactor < -1 {
		return nil, badRequest("console: partitions and replication factor must be positive (or -1 for the default)")
	}
	parts, rf := req.Partitions, req.ReplicationFactor
	if parts == 0 {
		parts = -1
	}
	if rf == 0 {
		rf = -1
	}
	configs := map[string]*string{}
	for k, v := range req.Configs {
		configs[k] = &v
	}
	resp, err := c.adm.CreateTopic(ctx, parts, rf, configs, req.Name)
	if err != nil {
		if resp.Err != nil {
			// The cluster refused it: a bad name, an existing
			// topic, a bad config.
			msg := resp.Err.Error()
			if resp.ErrMessage != "" {
				msg += ": " + resp.ErrMessage
			}
			return nil, badRequest("console: create topic %q: %s", req.Name, msg)
		}
		return nil, fmt.Errorf("console: create topic: %w", err)
	}
	c.cfg.Logger.Info("console: created a topic", "topic", req.Name, "partitions", resp.NumPartitions, "replication_factor", resp.ReplicationFactor)
	return map[string]any{"topic": req.Name, "partitions": resp.NumPartitions, "replicationFactor": resp.ReplicationFactor}, nil
}

// DeleteTopicRequest is the body of POST /api/topics/{topic}/delete;
// Confirm must repeat the topic's name.
type DeleteTopicRequest struct {
	Confirm string `json:"confirm"`
}

func (c *Console) deleteTopic(ctx context.Context, r *http.Request) (any, error) {
	var req DeleteTopicRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	topic := r.PathValue("topic")
	if req.Confirm != topic {
		return nil, badRequest("console: to delete topic %q, confirm with its name", topic)
	}
	resp, err := c.adm.DeleteTopic(ctx, topic)
	if err != nil {
		if resp.Err != nil {
			if errors.Is(resp.Err, kerr.UnknownTopicOrPartition) {
				return nil, notFound("console: no topic %q", topic)
			}
			return nil, badRequest("console: delete topic %q: %v %s", topic, resp.Err, resp.ErrMessage)
		}
		return nil, fmt.Errorf("console: delete topic: %w", err)
	}
	c.cfg.Logger.Info("console: deleted a topic", "topic", topic)
	return map[string]bool{"ok": true}, nil
}
