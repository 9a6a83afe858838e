package broker_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// The admin side of groups over the wire: FindCoordinator single and
// batched, ListGroups with a state filter, DeleteGroups and OffsetDelete
// with their refusals for groups that have members, and
// __consumer_offsets created at start as an internal compacted topic.
func TestGroupAdminAPIs(t *testing.T) {
	b := testutil.StartBroker(t, groupBrokerConfig())
	adm := newAdmin(t, b.Addr())
	ctx := testContext(t)
	const topic = "adm"
	createTopic(t, adm, topic, 2, nil)

	// __consumer_offsets exists, internal, compacted.
	td, err := adm.ListTopicsWithInternal(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if d := td["__consumer_offsets"]; d.Err != nil || !d.IsInternal || len(d.Partitions) != 5 {
		t.Fatalf("__consumer_offsets: %+v", d)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On("__consumer_offsets", nil); err != nil || !hasConfig(v.Configs, "cleanup.policy", "compact") {
		t.Fatalf("__consumer_offsets configs: %+v %v", v, err)
	}

	// FindCoordinator v0 and batched v4+.
	for _, v := range []int16{0, 3, 6} {
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(10, v)
		vcl := newClient(t, b.Addr(), kgo.MaxVersions(vs))
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = "g1"
		req.CoordinatorKeys = []string{"g1", "g2"}
		resp, err := req.RequestWith(ctx, vcl)
		if err != nil {
			t.Fatal(err)
		}
		if v < 4 {
			if resp.ErrorCode != 0 || resp.Port != mustPort(t, b) {
				t.Fatalf("v%d: %+v", v, resp)
			}
			continue
		}
		keys := map[string]bool{}
		for _, fc := range resp.Coordinators {
			keys[fc.Key] = fc.ErrorCode == 0 && fc.Port == mustPort(t, b)
		}
		if len(resp.Coordinators) != 2 || !keys["g1"] || !keys["g2"] {
			t.Fatalf("v%d: %+v", v, resp.Coordinators)
		}
	}

	// A consuming group and a committing-only group.
	c := startConsumer(t, b.Addr(), "active", topic, "a0")
	waitBalanced(t, adm, "active", topic, 2, c)
	commits := kadm.Offsets{}
	commits.AddOffset(topic, 0, 1, -1)
	commits.AddOffset(topic, 1, 1, -1)
	if err := adm.CommitAllOffsets(ctx, "idle", commits); err != nil {
		t.Fatal(err)
	}
	if err := adm.CommitAllOffsets(ctx, "active", commits); err == nil {
		t.Fatal("a simple commit to a group with members succeeded")
	}

	ls, err := adm.ListGroups(ctx, "Stable")
	if err != nil {
		t.Fatal(err)
	}
	if groups := ls.Groups(); len(groups) != 1 || groups[0] != "active" {
		t.Fatalf("stable groups %v", groups)
	}
	ls, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if groups := ls.Groups(); len(groups) != 2 {
		t.Fatalf("groups %v", groups)
	}

	// OffsetDelete: the active group is subscribed to the topic.
	del := kadm.TopicsSet{}
	del.Add(topic, 0)
	dr, err := adm.DeleteOffsets(ctx, "active", del)
	if err != nil {
		t.Fatal(err)
	}
	if err := dr.Error(); !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete offsets of a subscribed topic: %v", err)
	}
	dr, err = adm.DeleteOffsets(ctx, "idle", del)
	if err != nil || dr.Error() != nil {
		t.Fatalf("delete offsets of idle: %v %v", err, dr.Error())
	}
	fo, err := adm.FetchOffsets(ctx, "idle")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fo.Lookup(topic, 0); ok {
		t.Fatalf("deleted offset still there: %+v", fo)
	}

	// DeleteGroups: NON_EMPTY_GROUP while members remain.
	gr, err := adm.DeleteGroups(ctx, "active", "idle", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(gr["active"].Err, kerr.NonEmptyGroup) || gr["idle"].Err != nil || !errors.Is(gr["missing"].Err, kerr.GroupIDNotFound) {
		t.Fatalf("delete groups: %+v", gr)
	}
	c.close()
	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
		d := describe(t, adm, "active")
		return d.State == "Empty", "active group to empty: " + d.State
	})
	gr, err = adm.DeleteGroups(ctx, "active")
	if err != nil || gr["active"].Err != nil {
		t.Fatalf("delete emptied group: %v %+v", err, gr)
	}
	if ls, _ := adm.ListGroups(ctx); len(ls.Groups()) != 0 {
		t.Fatalf("groups left: %v", ls.Groups())
	}
}

func hasConfig(cs []kadm.Config, name, value string) bool {
	for _, c := range cs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

func mustPort(t *testing.T, b *broker.Broker) int32 {
	t.Helper()
	_, port, _ := strings.Cut(b.Addr(), ":")
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// Offsets of an empty group expire after offsets.retention on the broker's
// clock, with the tombstones surviving a restart.
func TestGroupOffsetsExpire(t *testing.T) {
	clk := newClock()
	cfg := groupBrokerConfig()
	cfg.DataDir = t.TempDir()
	cfg.Now = clk.Now
	cfg.OffsetsRetention = time.Hour
	b := testutil.StartBroker(t, cfg)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "exp", 1, nil)
	commits := kadm.Offsets{}
	commits.AddOffset("exp", 0, 5, -1)
	ctx := testContext(t)
	if err := adm.CommitAllOffsets(ctx, "old", commits); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Minute)
	b.ExpireGroupOffsets()
	if fo, err := adm.FetchOffsets(ctx, "old"); err != nil || len(fo) == 0 {
		t.Fatalf("offsets expired early: %v %v", fo, err)
	}
	clk.Advance(2 * time.Minute)
	b.ExpireGroupOffsets()
	if fo, _ := adm.FetchOffsets(ctx, "old"); len(fo) != 0 {
		t.Fatalf("offsets did not expire: %v", fo)
	}
	b.Close()
	b2 := testutil.StartBroker(t, cfg)
	if err := b2.WaitGroupsLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	adm2 := newAdmin(t, b2.Addr())
	if fo, _ := adm2.FetchOffsets(ctx, "old"); len(fo) != 0 {
		t.Fatalf("expired offsets back after restart: %v", fo)
	}
	if ls, _ := adm2.ListGroups(ctx); len(ls.Groups()) != 0 {
		t.Fatalf("expired group back after restart: %v", ls.Groups())
	}
}
