package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// runnelPeer runs Runnel's broker (bench/cmd/runnelbroker, which calls
// broker.Start with the default configuration) in its own process.
type runnelPeer struct {
	binDir  string
	profile string // when set, the broker writes a CPU profile here (RUNNEL_CPUPROFILE)
}

func (*runnelPeer) name() string { return "runnel" }

func (*runnelPeer) durability() string {
	return "fsync before ack (flush.messages=1, group commit) — the default"
}

func (r *runnelPeer) start(ctx context.Context, dir string) (*process, error) {
	bin, err := goBuild(ctx, "github.com/runnel-dev/runnel/bench/cmd/runnelbroker", r.binDir)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-data-dir", filepath.Join(dir, "data"), "-listen", "127.0.0.1:0")
	cmd.Env = os.Environ()
	if r.profile != "" {
		cmd.Env = append(cmd.Env, "RUNNEL_CPUPROFILE="+r.profile)
	}
	return startListening(ctx, cmd, "runnel broker listening on ", filepath.Join(dir, "runnel.log"), 60*time.Second)
}
