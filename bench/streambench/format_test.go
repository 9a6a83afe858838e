package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel"
	"github.com/runnel-dev/runnel/internal/nexmark"
)

func TestCheckNexmarkFormat(t *testing.T) {
	for _, ok := range []struct {
		format   string
		kstreams bool
		brokers  []string
	}{{"json", true, []string{"runnel", "kafka"}}, {"avro", false, []string{"runnel"}}} {
		if err := checkNexmarkFormat(ok.format, ok.kstreams, ok.brokers); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, bad := range []struct {
		format   string
		kstreams bool
		brokers  []string
	}{{"xml", false, []string{"runnel"}}, {"avro", true, []string{"runnel"}}, {"avro", false, []string{"runnel", "kafka"}}} {
		if err := checkNexmarkFormat(bad.format, bad.kstreams, bad.brokers); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// The nexmark workload over Avro events: q1 reads the bids the benchmark
// wrote as Avro (schemas in the in-process broker's registry) and writes
// every one, converted, as Avro too.
func TestNexmarkAvroQuick(t *testing.T) {
	b := testBench(t, func(b *bench) { b.nexmarkFormat = "avro" })
	if fmt.Sprint(b.nexSerdes.Bid) != "Avro" {
		t.Fatalf("the bid serde is %s", b.nexSerdes.Bid)
	}
	err := b.onBroker("runnel", func() error {
		perTopic, err := produceTestInput(b)
		if err != nil {
			return err
		}
		bids := perTopic[nexmark.TopicBids]
		r, err := b.runNexmark(nexmark.Queries["q1"], runnel.AtLeastOnce, bids)
		if err != nil {
			return err
		}
		if r.processed != bids {
			t.Errorf("q1 over Avro processed %d of %d bids", r.processed, bids)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.nexmarkAddr()), kgo.ConsumeTopics(r.output),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
		defer cancel()
		var n int64
		for n < bids && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
				if _, err := b.nexSerdes.Bid.Deserialize(rec.Value); err != nil || rec.Value[0] != 0 {
					t.Errorf("output %x is no Avro bid: %v", rec.Value, err)
				}
				n++
			})
		}
		if n != bids {
			t.Errorf("q1 over Avro wrote %d of %d bids", n, bids)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
