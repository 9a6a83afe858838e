package history_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/history"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestLoadConfigErrors(t *testing.T) {
	_, err := history.StartLoad(history.LoadConfig{Acks: 1, Idempotent: true}, &history.Recorder{})
	if err == nil {
		t.Fatal("StartLoad took a config without brokers or topic, with idempotence at acks=1")
	}
	for _, want := range []string{"no brokers", "no topic", "idempotent producer needs acks -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	_, err = history.StartLoad(history.LoadConfig{Brokers: []string{"x:1"}, Topic: "t", Acks: 2}, &history.Recorder{})
	if err == nil || !strings.Contains(err.Error(), "acks 2") {
		t.Fatalf("acks 2: %v", err)
	}
}

// Without faults, every mode of the load passes the check against the
// real broker: what was acknowledged is read back once, where it was
// acknowledged, and the live consumer agrees with the read-back.
func TestLoadCleanRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	for _, mode := range []struct {
		acks       int
		idempotent bool
	}{{-1, true}, {-1, false}, {1, false}} {
		topic := fmt.Sprintf("load-%d-%v", mode.acks, mode.idempotent)
		t.Run(topic, func(t *testing.T) {
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			var rec history.Recorder
			l, err := history.StartLoad(history.LoadConfig{
				Brokers: []string{b.Addr()}, Topic: topic, Acks: mode.acks, Idempotent: mode.idempotent,
				Producers: 2, Consume: true,
			}, &rec)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			// The live consumer's first fetch may come after hundreds of
			// acknowledgements; wait for both, or the check below is a race.
			for l.Acked() < 500 || l.Consumed() == 0 {
				if time.Now().After(deadline) {
					l.Stop(0)
					t.Fatalf("only %d acked and %d consumed", l.Acked(), l.Consumed())
				}
				time.Sleep(2 * time.Millisecond)
			}
			l.Stop(30 * time.Second)
			if err := history.ReadAll(ctx, &rec, []string{b.Addr()}, topic); err != nil {
				t.Fatal(err)
			}
			h := rec.History()
			rep := history.Check(h, history.Options{Idempotent: mode.idempotent})
			if err := rep.Err(); err != nil {
				t.Fatal(err)
			}
			if rep.Failed != 0 || rep.AckedAndRead != rep.Acked || rep.Read != rep.Acked {
				t.Fatalf("clean run: %s", rep.Summary())
			}
			live := 0
			for _, s := range h.Scans {
				if !s.ToEnd {
					live += len(s.Records)
				}
			}
			if live == 0 {
				t.Fatal("the live consumer recorded nothing")
			}
		})
	}
}

// ReadReplica reads the broker's copy of each partition; on the single
// node it equals the read-back, and CompareReplicas finds a doctored copy.
func TestReadReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "replica"); err != nil {
		t.Fatal(err)
	}
	var rec history.Recorder
	l, err := history.StartLoad(history.LoadConfig{Brokers: []string{b.Addr()}, Topic: "replica", Acks: -1, Idempotent: true, MaxBuffered: 50}, &rec)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for l.Acked() < 3000 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	l.Stop(30 * time.Second)
	if err := history.ReadAll(ctx, &rec, []string{b.Addr()}, "replica"); err != nil {
		t.Fatal(err)
	}
	for _, sc := range rec.History().Scans {
		r, hw, err := history.ReadReplica(ctx, b.Addr(), 1, "replica", sc.Partition)
		if err != nil {
			t.Fatal(err)
		}
		if hw != sc.End || r.LogEnd != hw || r.LogStart != 0 || len(r.Records) != len(sc.Records) {
			t.Fatalf("partition %d: replica [%d, %d) hw %d with %d records, read-back [%d, %d) with %d",
				sc.Partition, r.LogStart, r.LogEnd, hw, len(r.Records), sc.Start, sc.End, len(sc.Records))
		}
		for i := range r.Records {
			if r.Records[i] != sc.Records[i] {
				t.Fatalf("partition %d: replica record %v, read-back %v", sc.Partition, r.Records[i], sc.Records[i])
			}
		}
		other := r
		other.Broker = 2
		other.Records = append([]history.Record(nil), r.Records...)
		if d := history.CompareReplicas("replica", sc.Partition, hw, []history.Replica{r, other}); len(d) != 0 {
			t.Fatalf("identical copies diverge: %v", d)
		}
		if len(other.Records) == 0 {
			t.Fatalf("partition %d is empty", sc.Partition)
		}
		other.Records[len(other.Records)/2].Value = "doctored"
		if d := history.CompareReplicas("replica", sc.Partition, hw, []history.Replica{r, other}); len(d) != 1 {
			t.Fatalf("a doctored copy: divergences %v, want 1", d)
		}
	}
}
