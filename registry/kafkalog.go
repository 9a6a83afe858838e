package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTopic is the topic the registry keeps its records in, as
// Confluent's kafkastore.topic.
const DefaultTopic = "_schemas"

// KafkaLog is a Log in a Kafka topic of one partition, compacted, read and
// written with a Kafka client: the registry's records then replicate with
// the cluster, and any broker's registry reads the same log.
type KafkaLog struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string
}

// KafkaLogConfig configures OpenKafkaLog.
type KafkaLogConfig struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// Topic is the log's topic, created compacted with one partition when
	// missing. Default DefaultTopic.
	Topic string
	// ReplicationFactor of the topic when it is created. Default 3, or
	// the number of brokers when the cluster has fewer, as Confluent's
	// kafkastore.topic.replication.factor.
	ReplicationFactor int16
	// ClientOpts are added to the Kafka client's options: its security
	// (kgo.DialTLSConfig or kgo.Dialer, kgo.SASL) when the brokers'
	// listener is secured.
	ClientOpts []kgo.Opt
}

// OpenKafkaLog creates the topic when it is missing and opens the log.
func OpenKafkaLog(ctx context.Context, cfg KafkaLogConfig) (*KafkaLog, error) {
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("registry: kafka client: %w", err)
	}
	adm := kadm.NewClient(cl)
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = 3
		brokers, err := adm.ListBrokers(ctx)
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("registry: list brokers: %w", err)
		}
		cfg.ReplicationFactor = min(cfg.ReplicationFactor, int16(max(1, len(brokers))))
	}
	compact := "compact"
	res, err := adm.CreateTopic(ctx, 1, cfg.ReplicationFactor,
		map[string]*string{"cleanup.policy": &compact}, cfg.Topic)
	if err == nil {
		err = res.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		cl.Close()
		return nil, fmt.Errorf("registry: create topic %s: %w", cfg.Topic, err)
	}
	return &KafkaLog{cl: cl, adm: adm, topic: cfg.Topic}, nil
}

// End returns the log's high watermark: the offset the next record will
// get once every in-sync replica has the ones before.
func (l *KafkaLog) End(ctx context.Context) (int64, error) {
	offs, err := l.adm.ListEndOffsets(ctx, l.topic)
	if err != nil {
		return 0, fmt.Errorf("registry: end of %s: %w", l.topic, err)
	}
	o, ok := offs.Lookup(l.topic, 0)
	if !ok {
		return 0, fmt.Errorf("registry: end of %s: partition 0 not listed", l.topic)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("registry: end of %s: %w", l.topic, o.Err)
	}
	return o.Offset, nil
}

// Leader returns the node leading the log's partition: in a cluster, the
// broker whose registry takes writes.
func (l *KafkaLog) Leader(ctx context.Context) (int32, error) {
	md, err := l.adm.Metadata(ctx, l.topic)
	if err != nil {
		return 0, fmt.Errorf("registry: metadata of %s: %w", l.topic, err)
	}
	p, ok := md.Topics[l.topic].Partitions[0]
	switch {
	case !ok:
		return 0, fmt.Errorf("registry: %s has no partition 0", l.topic)
	case p.Err != nil:
		return 0, fmt.Errorf("registry: leader of %s: %w", l.topic, p.Err)
	case p.Leader < 0:
		return 0, fmt.Errorf("registry: %s has no leader", l.topic)
	}
	return p.Leader, nil
}

// Append produces a record to partition 0 and waits for all in-sync
// replicas to have it.
func (l *KafkaLog) Append(ctx context.Context, key, value []byte) (int64, error) {
	r, err := l.cl.ProduceSync(ctx, &kgo.Record{Topic: l.topic, Partition: 0, Key: key, Value: value}).First()
	if err != nil {
		return 0, fmt.Errorf("registry: append to %s: %w", l.topic, err)
	}
	return r.Offset, nil
}

// Poll fetches the next records. Fetch errors the client retries by
// itself are not reported; the reader calls again.
func (l *KafkaLog) Poll(ctx context.Context) ([]Record, error) {
	fs := l.cl.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if fs.IsClientClosed() {
		return nil, kgo.ErrClientClosed
	}
	var out []Record
	fs.EachRecord(func(r *kgo.Record) {
		out = append(out, Record{Offset: r.Offset, Key: r.Key, Value: r.Value})
	})
	return out, nil
}

// Close closes the client.
func (l *KafkaLog) Close() error {
	l.cl.Close()
	return nil
}
