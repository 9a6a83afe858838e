package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/bench/internal/procstat"
	"github.com/runnel-dev/runnel/bench/kafkabroker"
)

// The brokers the nexmark workload runs on (-nexmark-broker): Runnel's,
// in this process (the benchmark's own broker), and Apache Kafka 4.3.1,
// one KRaft node in a JVM of its own started as brokerbench starts it
// (package kafkabroker). On Kafka, Runnel's apps connect to it as to any
// external broker (runnel.Brokers), and Kafka Streams' JVM likewise.
var nexmarkBrokerNames = []string{"runnel", "kafka"}

// kafkaStreamsProperties are the Kafka node's settings beyond Kafka's
// defaults: one partition for the offsets and transaction topics, as the
// benchmark configures Runnel's broker (startBroker), so that the two
// brokers differ in their code rather than in their internal topics.
var kafkaStreamsProperties = []string{
	"offsets.topic.num.partitions=1",
	"transaction.state.log.num.partitions=1",
}

// nexTarget is the broker the nexmark workload uses now.
type nexTarget struct {
	name string // "runnel" or "kafka"
	addr string // its client address
	// pid is the broker's process when it runs in one of its own (Kafka),
	// whose CPU time every engine's figure includes; 0 when it runs in
	// this process, whose CPU time every figure already includes.
	pid int
}

// chooseNexmarkBrokers parses -nexmark-broker: runnel, kafka, or both
// (runnel,kafka).
func chooseNexmarkBrokers(list string) ([]string, error) {
	if list == "both" {
		return slices.Clone(nexmarkBrokerNames), nil
	}
	var out []string
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(nexmarkBrokerNames, name) {
			return nil, fmt.Errorf("-nexmark-broker: unknown broker %q (want runnel, kafka or both)", name)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-nexmark-broker: none named")
	}
	return out, nil
}

// nexmarkAddr is the client address of the broker the nexmark workload
// uses now.
func (b *bench) nexmarkAddr() string {
	if b.nexTarget.addr == "" {
		return b.broker.Addr()
	}
	return b.nexTarget.addr
}

// nexmarkCPU is the CPU time used so far by this process and, when the
// nexmark workload uses Kafka, by Kafka's JVM: the broker is counted in
// every engine's figure.
func (b *bench) nexmarkCPU() time.Duration {
	c := cpuTime()
	if b.nexTarget.pid > 0 {
		if k, err := procstat.CPU(b.nexTarget.pid); err == nil {
			c += k
		}
	}
	return c
}

// nexmarkRunName names a Runnel run of query under g, for its profiles.
func (b *bench) nexmarkRunName(query string, g fmt.Stringer) string {
	name := "nexmark-" + query + "-" + g.String()
	if b.nexTarget.name == "kafka" {
		name += "-kafka"
	}
	return name
}

// nexmarkStateDir is the state directory named base of the apps on the
// broker in use: apps on different brokers share application ids, and
// must not share the state (and its checkpointed offsets) of another
// broker's topics.
func (b *bench) nexmarkStateDir(base string) string {
	if b.nexTarget.name == "kafka" {
		base += "-kafka"
	}
	return filepath.Join(b.tmp, base)
}

// onBroker runs f with the nexmark workload on the broker named name:
// Runnel's (this process's) or Kafka, started for f and stopped after,
// with the benchmark's admin client pointed at it meanwhile.
func (b *bench) onBroker(name string, f func() error) (err error) {
	if name == "runnel" {
		b.nexTarget = nexTarget{name: name, addr: b.broker.Addr()}
		defer func() { b.nexTarget = nexTarget{} }()
		return f()
	}
	scripts, err := kafkabroker.ScriptsDir()
	if err != nil {
		return err
	}
	in, whyNot := kafkabroker.Resolve(b.ctx, b.kafkaHome, scripts, b.prog.printf)
	if whyNot != "" {
		return fmt.Errorf("-nexmark-broker kafka: %s", whyNot)
	}
	b.prog.printf("starting Apache Kafka (%s)", in.Home)
	kb, err := kafkabroker.Start(b.ctx, in, filepath.Join(b.tmp, "kafka"), 2*time.Minute, kafkaStreamsProperties...)
	if err != nil {
		return fmt.Errorf("start kafka: %w", err)
	}
	defer func() {
		if serr := kb.Stop(30 * time.Second); serr != nil && err == nil {
			err = fmt.Errorf("stop kafka: %w", serr)
		}
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kb.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	// The admin client serves createTopics, the result checks and the
	// group progress the runs poll; the in-process broker's comes back
	// after.
	cl0, adm0 := b.cl, b.adm
	b.cl, b.adm = cl, kadm.NewClient(cl)
	b.nexTarget = nexTarget{name: name, addr: kb.Addr, pid: kb.Pid()}
	defer func() { b.cl, b.adm, b.nexTarget = cl0, adm0, nexTarget{} }()
	return f()
}
