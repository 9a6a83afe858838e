package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"time"
)

// kfakePeer runs franz-go's kfake (bench/cmd/kfakebroker) with on-disk
// persistence and kfake.SyncWrites: an fsync of the segment and index file
// for every produced batch.
type kfakePeer struct {
	binDir string
}

func (*kfakePeer) name() string { return "kfake" }

func (*kfakePeer) durability() string {
	return "fsync per produced batch (kfake.DataDir + kfake.SyncWrites)"
}

func (k *kfakePeer) start(ctx context.Context, dir string) (*cluster, error) {
	bin, err := goBuild(ctx, "github.com/runnel-dev/runnel/bench/cmd/kfakebroker", k.binDir)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-data-dir", filepath.Join(dir, "data"), "-sync=true")
	return startOne(ctx, cmd, "kfake listening on ", filepath.Join(dir, "kfake.log"))
}

// blackholePeer is kfake with BlackholeProduce: it acknowledges every
// produce without storing it. It measures the client's own ceiling on this
// machine, the most any broker can show here; there is nothing to consume.
type blackholePeer struct {
	binDir string
}

func (*blackholePeer) name() string { return "ceiling" }

func (*blackholePeer) durability() string {
	return "none: kfake.BlackholeProduce discards records (client + loopback ceiling)"
}

func (*blackholePeer) produceOnly() {}

func (k *blackholePeer) start(ctx context.Context, dir string) (*cluster, error) {
	bin, err := goBuild(ctx, "github.com/runnel-dev/runnel/bench/cmd/kfakebroker", k.binDir)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-blackhole")
	return startOne(ctx, cmd, "kfake listening on ", filepath.Join(dir, "blackhole.log"))
}

// startOne runs one broker process with startListening, as a cluster of
// one.
func startOne(ctx context.Context, cmd *exec.Cmd, marker, logPath string) (*cluster, error) {
	p, err := startListening(ctx, cmd, marker, logPath, 60*time.Second)
	if err != nil {
		return nil, err
	}
	return &cluster{procs: []*process{p}}, nil
}

// fetchCeilingPeer is bench/cmd/fetchceiling -writev: every produced
// batch kept in the heap as it arrived, every Fetch answered with one
// writev of the stored batches. Its consume row is the most one consumer
// can read here, and its CPU per GB out the cost of sending from memory
// over loopback (less than sendfile's from the page cache: its own
// default mode, which fetchprobe runs): the consume ceiling, as `ceiling`
// is the produce one. With its in-memory group coordinator it runs the
// many-clients workloads too: their fan-out row is the most those eight
// clients move here. It holds everything produced in memory, some GB
// per round.
type fetchCeilingPeer struct {
	binDir string
	bin    string // a fetchceiling binary to run; "" builds one into binDir
}

func (*fetchCeilingPeer) name() string { return "fetchceiling" }

func (*fetchCeilingPeer) durability() string {
	return "none: bench/cmd/fetchceiling -writev keeps records in the heap and writes fetches from it, groups in memory (client + loopback ceiling of consume and many clients)"
}

func (k *fetchCeilingPeer) start(ctx context.Context, dir string) (*cluster, error) {
	bin := k.bin
	if bin == "" {
		var err error
		if bin, err = goBuild(ctx, "github.com/runnel-dev/runnel/bench/cmd/fetchceiling", k.binDir); err != nil {
			return nil, err
		}
	}
	return startOne(ctx, exec.Command(bin, "-writev"), "fetchceiling listening on ", filepath.Join(dir, "fetchceiling.log"))
}
