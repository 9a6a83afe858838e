package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runnel-dev/runnel/internal/freeport"
)

const clusterSynopsis = "cluster [--nodes N] [--data-dir DIR] [--log-level LEVEL]"

// clusterLayout is the ports a local cluster was given, kept in
// DIR/cluster.json: the controller quorum's addresses are in its
// metadata, so a cluster started again on the same directory must use
// the same ones.
type clusterLayout struct {
	Nodes []clusterNodeLayout `json:"nodes"`
}

type clusterNodeLayout struct {
	ID         int32  `json:"id"`
	Listen     string `json:"listen"`
	Controller string `json:"controller"`
	Voter      bool   `json:"voter"`
}

// runCluster runs a local cluster for development and tests: N brokers,
// each a `runnel broker` process of its own (so one can be killed to
// watch a failover), on free loopback ports, with data in DIR/node-ID.
// The first three (or all, when fewer) are also the controller quorum's
// voters. Once every broker serves it prints
// "runnel cluster bootstrap HOST:PORT,HOST:PORT,..." and one line per
// broker with its process id; brokers' output goes to standard error,
// each line prefixed with its node. It runs until interrupted, then stops
// the brokers.
func runCluster(ctx context.Context, e env, g *globals, args []string) error {
	fs := newFlagSet(e, g, "cluster", clusterSynopsis, false)
	nodes := fs.Int("nodes", 3, "brokers to run")
	dir := fs.String("data-dir", "./runnel-cluster", "directory for the brokers' data, one subdirectory per broker")
	logLevel := fs.String("log-level", "info", "brokers' log level: debug, info, warn or error")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(fs, pos); err != nil {
		return err
	}
	if *nodes < 1 || *nodes > 64 {
		return usagef(fs, "--nodes %d must be between 1 and 64", *nodes)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the runnel executable: %w", err)
	}
	layout, err := loadLayout(*dir, *nodes)
	if err != nil {
		return err
	}
	var quorum []string
	for _, n := range layout.Nodes {
		if n.Voter {
			quorum = append(quorum, fmt.Sprintf("%d@%s", n.ID, n.Controller))
		}
	}

	// The brokers wait for each other at start (a quorum majority, and
	// enough brokers for the internal topics' replicas), so all start at
	// once.
	var procs []*clusterProc
	var out sync.Mutex // serialises lines written to stderr
	stopAll := func() {
		for _, p := range procs {
			p.signal()
		}
		for _, p := range procs {
			p.wait()
		}
	}
	ready := make(chan error, len(layout.Nodes))
	for _, n := range layout.Nodes {
		args := []string{"broker", "--node-id", strconv.Itoa(int(n.ID)),
			"--data-dir", filepath.Join(*dir, "node-"+strconv.Itoa(int(n.ID))),
			"--listen", n.Listen, "--controller-listen", n.Controller,
			"--controller-quorum", strings.Join(quorum, ","),
			"--default-replication-factor", strconv.Itoa(min(3, len(layout.Nodes))),
			"--log-level", *logLevel,
			// The brokers share the machine: each takes its
			// direct-writes cache as its appends need it rather
			// than an eighth of the memory at start.
			"--direct-writes-cache-prefault=false"}
		p, err := startClusterProc(self, args, n.ID, e.stderr, &out, ready)
		if err != nil {
			stopAll()
			return err
		}
		procs = append(procs, p)
	}
	for range procs {
		select {
		case err := <-ready:
			if err != nil {
				stopAll()
				return err
			}
		case <-ctx.Done():
			stopAll()
			return nil
		}
	}
	var seeds []string
	for _, n := range layout.Nodes {
		seeds = append(seeds, n.Listen)
	}
	fmt.Fprintf(e.stdout, "runnel cluster bootstrap %s\n", strings.Join(seeds, ","))
	for i, p := range procs {
		n := layout.Nodes[i]
		role := "broker"
		if n.Voter {
			role = "broker+controller"
		}
		fmt.Fprintf(e.stdout, "runnel cluster node %d pid %d %s listening on %s\n", n.ID, p.cmd.Process.Pid, role, n.Listen)
	}
	<-ctx.Done()
	if e.stopSignals != nil {
		e.stopSignals()
	}
	stopAll()
	return nil
}

// loadLayout reads DIR/cluster.json, or chooses free ports for n nodes
// and writes it. A layout for a different node count is an error.
func loadLayout(dir string, n int) (*clusterLayout, error) {
	path := filepath.Join(dir, "cluster.json")
	if raw, err := os.ReadFile(path); err == nil {
		var l clusterLayout
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if len(l.Nodes) != n {
			return nil, fmt.Errorf("%s holds a cluster of %d nodes, not %d", dir, len(l.Nodes), n)
		}
		return &l, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// Ports below the ephemeral range: the layout is kept, and a restart
	// must find its ports free, not taken by some outgoing connection.
	addrs, err := freeport.Addrs(2 * n)
	if err != nil {
		return nil, err
	}
	var l clusterLayout
	for i := range n {
		l.Nodes = append(l.Nodes, clusterNodeLayout{ID: int32(i + 1), Listen: addrs[2*i], Controller: addrs[2*i+1], Voter: i < 3})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	raw, _ := json.MarshalIndent(l, "", "  ")
	if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
		return nil, err
	}
	return &l, nil
}

// clusterProc is one broker process of a local cluster.
type clusterProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// startClusterProc starts `runnel broker` with args. Its standard output
// is watched for the listening line (then nil goes to ready; an exit
// before it sends an error) and, like its standard error, copied to w
// with a "[node N] " prefix.
func startClusterProc(self string, args []string, id int32, w io.Writer, out *sync.Mutex, ready chan<- error) (*clusterProc, error) {
	cmd := exec.Command(self, args...)
	dieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start broker %d: %w", id, err)
	}
	p := &clusterProc{cmd: cmd, done: make(chan struct{})}
	prefix := fmt.Sprintf("[node %d] ", id)
	copyLines := func(r io.Reader, onLine func(string)) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if onLine != nil {
				onLine(sc.Text())
			}
			out.Lock()
			fmt.Fprintln(w, prefix+sc.Text())
			out.Unlock()
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	signalled := false
	go func() {
		defer wg.Done()
		copyLines(stdout, func(line string) {
			if !signalled && strings.HasPrefix(line, "runnel broker listening on ") {
				signalled = true
				ready <- nil
			}
		})
	}()
	go func() { defer wg.Done(); copyLines(stderr, nil) }()
	go func() {
		wg.Wait()
		err := cmd.Wait()
		if !signalled {
			ready <- fmt.Errorf("broker %d exited before serving: %v", id, err)
		}
		close(p.done)
	}()
	return p, nil
}

// signal asks the broker to shut down (SIGTERM).
func (p *clusterProc) signal() { p.cmd.Process.Signal(syscall.SIGTERM) }

// wait waits for the broker to exit, and kills it if it has not within
// 30 seconds.
func (p *clusterProc) wait() {
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}
