package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/kafkapeer"
)

// runnelPeer runs Runnel's broker (bench/cmd/runnelbroker, which calls
// broker.Start with the default configuration) in its own process, or
// nodes of them as a replicated cluster: every broker a voter of the
// controller quorum (KRaft's combined mode, as `runnel cluster` runs
// three).
type runnelPeer struct {
	label   string // "" for the one Runnel measured; a build's name when -runnel-bin names several
	binDir  string
	bin     string // a runnelbroker binary to run; "" builds one into binDir
	profile string // when set, the broker writes a CPU profile here (RUNNEL_CPUPROFILE); node N of a cluster to profile.N
	nodes   int    // brokers; 1 is the single-node broker
	// sec secures the single broker's one listener (SSL or SASL_SSL);
	// nil is plaintext.
	sec *security
}

func (r *runnelPeer) name() string {
	if r.label != "" {
		return peerName("runnel-"+r.label, r.sec)
	}
	return peerName("runnel", r.sec)
}

// runnelBuilds parses -runnel-bin: one binary, or NAME=FILE,NAME=FILE...
// to measure several builds in turn in every round (an A/B of two commits
// on the same machine minutes apart), each reported as runnel-NAME.
func runnelBuilds(list string) ([]*runnelPeer, error) {
	if !strings.Contains(list, "=") {
		return []*runnelPeer{{bin: list}}, nil
	}
	var peers []*runnelPeer
	seen := map[string]bool{}
	for item := range strings.SplitSeq(list, ",") {
		name, file, ok := strings.Cut(strings.TrimSpace(item), "=")
		switch {
		case !ok || name == "" || file == "":
			return nil, fmt.Errorf("-runnel-bin %q: want FILE or NAME=FILE,NAME=FILE", list)
		case seen[name]:
			return nil, fmt.Errorf("-runnel-bin: build %q named twice", name)
		}
		seen[name] = true
		peers = append(peers, &runnelPeer{label: name, bin: file})
	}
	return peers, nil
}

func (r *runnelPeer) durability() string {
	if r.nodes > 1 {
		return "acks=all: every ISR member has fsynced the batch before the ack (flush.messages=1, group commit) — the default"
	}
	return "fsync before ack (flush.messages=1, group commit) — the default"
}

func (r *runnelPeer) start(ctx context.Context, dir string) (*cluster, error) {
	bin := r.bin
	if bin == "" {
		var err error
		if bin, err = goBuild(ctx, "github.com/runnel-dev/runnel/bench/cmd/runnelbroker", r.binDir); err != nil {
			return nil, err
		}
	}
	if r.nodes <= 1 {
		args := []string{"-data-dir", filepath.Join(dir, "data"), "-listen", "127.0.0.1:0"}
		profile := r.profile
		if r.sec != nil {
			args = append(args, "-security-protocol", r.sec.protocol(), "-ssl-cert-file", r.sec.certFile, "-ssl-key-file", r.sec.keyFile)
			if r.sec.mode == saslSSL {
				users := filepath.Join(dir, "users")
				if err := os.WriteFile(users, []byte(benchUser+"="+benchPassword+"\n"), 0o600); err != nil {
					return nil, err
				}
				args = append(args, "-sasl-users-file", users)
			}
			if profile != "" {
				profile += "." + string(r.sec.mode)
			}
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = os.Environ()
		if profile != "" {
			cmd.Env = append(cmd.Env, "RUNNEL_CPUPROFILE="+profile)
		}
		c, err := startOne(ctx, cmd, "runnel broker listening on ", filepath.Join(dir, "runnel.log"))
		if err != nil {
			return nil, err
		}
		c.sec = r.sec
		return c, nil
	}

	// Fixed ports: the quorum's addresses are every broker's flags.
	listen := make([]string, r.nodes)
	var voters []string
	for i := range r.nodes {
		port, err := kafkapeer.FreePort()
		if err != nil {
			return nil, err
		}
		cport, err := kafkapeer.FreePort()
		if err != nil {
			return nil, err
		}
		listen[i] = "127.0.0.1:" + strconv.Itoa(port)
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, cport))
	}
	const marker = "runnel broker listening on "
	c := &cluster{}
	var addrcs []<-chan string
	for i := range r.nodes {
		id := strconv.Itoa(i + 1)
		cmd := exec.Command(bin, "-data-dir", filepath.Join(dir, "node-"+id), "-listen", listen[i],
			"-node-id", id, "-controller-quorum", strings.Join(voters, ","),
			"-default-replication-factor", strconv.Itoa(min(3, r.nodes)))
		cmd.Env = os.Environ()
		if r.profile != "" {
			cmd.Env = append(cmd.Env, "RUNNEL_CPUPROFILE="+r.profile+"."+id)
		}
		p, addrc, err := launch(cmd, marker, filepath.Join(dir, "runnel-"+id+".log"))
		if err != nil {
			_ = c.stop(10 * time.Second)
			return nil, err
		}
		c.procs = append(c.procs, p)
		addrcs = append(addrcs, addrc)
	}
	for i, p := range c.procs {
		if err := p.awaitListening(ctx, addrcs[i], marker, 120*time.Second); err != nil {
			_ = c.stop(10 * time.Second)
			return nil, err
		}
	}
	if err := waitClusterReady(ctx, c, 120*time.Second); err != nil {
		_ = c.stop(10 * time.Second)
		return nil, err
	}
	return c, nil
}

// waitClusterReady polls the cluster until its metadata lists every
// broker, or a broker exits, or the timeout passes.
func waitClusterReady(ctx context.Context, c *cluster, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		for _, p := range c.procs {
			if gone, err := p.exited(); gone {
				return fmt.Errorf("broker pid %d exited during start-up (%v); see %s", p.pid(), err, p.log)
			}
		}
		if last = pingBrokers(ctx, c, len(c.procs)); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond): // polling remote processes: nothing to wait on
		}
	}
	return fmt.Errorf("cluster not ready within %v (%v); see %s", timeout, last, c.logs())
}

// errTooFewBrokers is pingBrokers' answer while brokers are missing from
// the metadata.
var errTooFewBrokers = errors.New("metadata lists fewer brokers than started")
