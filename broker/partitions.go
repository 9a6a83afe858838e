package broker

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// partitions is the set of partitions this broker holds, kept in line with
// the metadata store by reconcile.
type partitions struct {
	b *Broker

	reconcileMu sync.Mutex // serialises reconcile and closeAll

	mu sync.RWMutex // guards m
	m  map[topicPartition]*partition

	// verifier is the transaction coordinator's KIP-890 check, nil until
	// it is installed (see partition_txn.go).
	verifier atomic.Pointer[verifierHolder]

	// opened and openedBytes count the partition logs opened (recovered)
	// and their sizes, for start-up progress (recovery.go).
	opened, openedBytes atomic.Int64
}

func newPartitions(b *Broker) *partitions {
	return &partitions{b: b, m: make(map[topicPartition]*partition)}
}

func (ps *partitions) get(topic string, index int32) *partition {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.m[topicPartition{topic, index}]
}

func (ps *partitions) all() []*partition {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	out := make([]*partition, 0, len(ps.m))
	for _, p := range ps.m {
		out = append(out, p)
	}
	return out
}

// logsDir holds one directory per partition, named topic-partition as
// Kafka's are, each with a partition.metadata file naming the topic id so a
// topic deleted and created again under the same name is not confused with
// its predecessor.
func (ps *partitions) logsDir() string { return filepath.Join(ps.b.cfg.DataDir, "logs") }

func partitionDirName(topic string, index int32) string {
	return topic + "-" + strconv.Itoa(int(index))
}

// reconcile opens partitions that metadata assigns to this broker, updates
// the epoch and configs of open ones, and closes and deletes those whose
// topic is gone. On first call it also removes directories left by topics
// deleted while the broker was down.
func (ps *partitions) reconcile() error {
	ps.reconcileMu.Lock()
	defer ps.reconcileMu.Unlock()
	cl := ps.b.meta.Cluster()
	node := ps.b.cfg.NodeID
	var errs []error

	want := make(map[topicPartition]bool)
	var toOpen []openJob
	for _, t := range cl.Topics {
		cfg, cfgErr := ps.b.logConfig(t.Configs)
		for _, mp := range t.Partitions {
			if !containsID(mp.Replicas, node) {
				continue
			}
			tp := topicPartition{t.Name, mp.Index}
			want[tp] = true
			if cfgErr != nil {
				errs = append(errs, fmt.Errorf("topic %s: %w", t.Name, cfgErr))
				continue
			}
			ps.mu.RLock()
			p := ps.m[tp]
			ps.mu.RUnlock()
			if p != nil && p.topicID != t.ID {
				// Same name, new topic: the old one was deleted.
				ps.drop(tp, p)
				p = nil
			}
			if p != nil {
				if err := p.update(cfg); err != nil {
					errs = append(errs, err)
				}
				if err := ps.applyRole(tp, p, t, mp, cl); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			toOpen = append(toOpen, openJob{t: t, mp: mp, cfg: cfg})
		}
	}
	errs = append(errs, ps.openAll(toOpen))
	// The partitions just opened take their role (lead or follow).
	for _, j := range toOpen {
		tp := topicPartition{j.t.Name, j.mp.Index}
		ps.mu.RLock()
		p := ps.m[tp]
		ps.mu.RUnlock()
		if p == nil {
			continue // failed to open, reported above
		}
		if err := ps.applyRole(tp, p, j.t, j.mp, cl); err != nil {
			errs = append(errs, err)
		}
	}
	ps.mu.RLock()
	var gone []topicPartition
	for tp := range ps.m {
		if !want[tp] {
			gone = append(gone, tp)
		}
	}
	ps.mu.RUnlock()
	for _, tp := range gone {
		ps.mu.RLock()
		p := ps.m[tp]
		ps.mu.RUnlock()
		ps.drop(tp, p)
	}
	errs = append(errs, ps.removeStrayDirs(want))
	return errors.Join(errs...)
}

// openJob is a partition reconcile must open.
type openJob struct {
	t   *meta.Topic
	mp  meta.Partition
	cfg log.Config
}

// openParallelism is how many partitions are opened at once. Opening is
// bound by fsync latency (recovery makes each log durable), not CPU, so a
// restart with tens of thousands of partitions overlaps their fsyncs.
const openParallelism = 32

// openAll opens jobs with openParallelism workers and adds each partition
// as it opens; a partition that fails to open is reported and skipped.
// REQUIRES: ps.reconcileMu held.
func (ps *partitions) openAll(jobs []openJob) error {
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		mu   sync.Mutex // guards errs
		errs []error
	)
	for range min(openParallelism, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				j := jobs[i]
				p, err := ps.open(j.t, j.mp, j.cfg)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				ps.mu.Lock()
				ps.m[topicPartition{j.t.Name, j.mp.Index}] = p
				ps.mu.Unlock()
				ps.b.metrics.partitionsOpened.Inc()
				ps.b.metrics.addTopic(j.t.Name)
				ps.opened.Add(1)
				ps.openedBytes.Add(p.log.Size())
				ps.b.cleanerAdd(p)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// applyRole makes p lead or follow as mp says, and starts or stops
// fetching it from its leader.
// REQUIRES: ps.reconcileMu held.
func (ps *partitions) applyRole(tp topicPartition, p *partition, t *meta.Topic, mp meta.Partition, cl *meta.Cluster) error {
	b := ps.b
	node := b.cfg.NodeID
	minISR, err := strconv.Atoi(b.topicConfigInForce(cl, t.Configs, "min.insync.replicas"))
	if err != nil || minISR < 1 {
		minISR = 1
	}
	if mp.Leader == node && cl.Brokers[node].Incarnation != b.incarnation {
		// This process's registration is not applied here yet, so mp
		// may name an epoch this broker led before it restarted, with
		// a log its followers may have more of: its registration moves
		// it to a new one (meta's state.restarted). Lead at that one.
		mp.Leader = -1
	}
	if err := p.role(mp, node, minISR, b.cfg.ReplicaLagTimeMax, time.Now()); err != nil {
		return fmt.Errorf("broker: %s-%d: %w", tp.topic, tp.partition, err)
	}
	if leader, epoch, ok := p.following(); ok {
		b.fetchers.follow(tp, leader, epoch)
	} else {
		b.fetchers.unfollow(tp)
	}
	// A coordinator's shard follows its partition's leadership
	// (coordinator_placement.go).
	b.placement.place(tp, p)
	return nil
}

// truncate cuts a follower's log back to offset (see log.TruncateDir).
// Called by its fetcher.
func (ps *partitions) truncate(tp topicPartition, p *partition, offset int64) error {
	return ps.rewrite(tp, p, func(dir string) error { return log.TruncateDir(dir, offset) })
}

// reset empties a follower's log to start at offset (see log.ResetDir),
// when the leader's log starts past its end. Called by its fetcher.
func (ps *partitions) reset(tp topicPartition, p *partition, offset int64) error {
	return ps.rewrite(tp, p, func(dir string) error { return log.ResetDir(dir, offset) })
}

// rewrite changes a follower's closed log with fn: the partition is
// closed, fn applied to its directory, and the partition opened again in
// its place with its role, so nothing reads or writes the log meanwhile.
func (ps *partitions) rewrite(tp topicPartition, p *partition, fn func(dir string) error) error {
	ps.reconcileMu.Lock()
	defer ps.reconcileMu.Unlock()
	ps.mu.RLock()
	cur := ps.m[tp]
	ps.mu.RUnlock()
	if cur != p {
		return nil // reconciled away meanwhile
	}
	cl := ps.b.meta.Cluster()
	t := cl.Topics[tp.topic]
	if t == nil || t.ID != p.topicID || int(tp.partition) >= len(t.Partitions) {
		return nil
	}
	mp := t.Partitions[tp.partition]
	cfg, err := ps.b.logConfig(t.Configs)
	if err != nil {
		return err
	}
	ps.mu.Lock()
	delete(ps.m, tp)
	ps.mu.Unlock()
	ps.b.cleanerRemove(p)
	if err := p.close(); err != nil {
		return err
	}
	if err := fn(p.log.Dir()); err != nil {
		return err
	}
	np, err := ps.open(t, mp, cfg)
	if err != nil {
		return err
	}
	ps.mu.Lock()
	ps.m[tp] = np
	ps.mu.Unlock()
	ps.b.cleanerAdd(np)
	return ps.applyRole(tp, np, t, mp, cl)
}

// drop closes a partition and deletes its data.
func (ps *partitions) drop(tp topicPartition, p *partition) {
	ps.b.fetchers.unfollow(tp)
	ps.b.placement.forget(tp)
	ps.mu.Lock()
	delete(ps.m, tp)
	ps.mu.Unlock()
	ps.b.cleanerRemove(p)
	close(p.stop)
	p.wg.Wait()
	if err := p.log.Delete(); err != nil {
		ps.b.logger.Error("delete partition", "topic", tp.topic, "partition", tp.partition, "err", err)
	}
}

func (ps *partitions) open(t *meta.Topic, mp meta.Partition, cfg log.Config) (*partition, error) {
	dir := filepath.Join(ps.logsDir(), partitionDirName(t.Name, mp.Index))
	idFile := filepath.Join(dir, "partition.metadata")
	id := hex.EncodeToString(t.ID[:])
	// A directory is made in steps (directory, id file, log files), any
	// of which a crash may interrupt; each step is redone only when
	// missing, so opening is idempotent and a restart does not rewrite
	// (and fsync) what is already there.
	raw, err := os.ReadFile(idFile)
	switch {
	case err == nil && strings.TrimSpace(string(raw)) == id:
	case err == nil:
		// Left by an earlier topic of the same name.
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("broker: remove stale partition dir: %w", err)
		}
		fallthrough
	default:
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("broker: partition dir: %w", err)
		}
		if err := writeFileSync(idFile, []byte(id+"\n")); err != nil {
			return nil, fmt.Errorf("broker: partition metadata: %w", err)
		}
	}
	l, err := log.Open(dir, cfg, log.WithClock(ps.b.cfg.Now), log.WithLogger(ps.b.logger.With("topic", t.Name, "partition", mp.Index)))
	if err != nil {
		return nil, fmt.Errorf("broker: open %s-%d: %w", t.Name, mp.Index, err)
	}
	// A lone replica's log is all committed. A replicated one's high
	// watermark is not known until the leader's followers (or a
	// follower's leader) report: it starts at the last checkpoint (or
	// the log start) and only grows (role and replication raise it), so
	// nothing is exposed that the ISR may not have.
	hw := l.EndOffset()
	if len(mp.Replicas) > 1 {
		hw = max(l.StartOffset(), min(readHWCheckpoint(dir), l.EndOffset()))
	}
	// The epoch is the leader's when it leads (role assigns it); a
	// follower's comes from the batches it copies.
	p := newPartition(t.Name, t.ID, mp.Index, l, -1, cfg.FlushMessages <= 1, hw, ps.b.metrics.logFlush)
	p.directWrites = !ps.b.cfg.DisableDirectWrites
	if p.directWrites {
		// Its files' pages are not in the page cache: what the tail
		// cache does not hold is read with O_DIRECT.
		l.SetDirectReads(ps.b.directReads)
	}
	if p.directWrites && ps.b.tailCache != nil {
		p.tailCached = true
		l.SetTailCache(ps.b.tailCache)
	}
	return p, nil
}

// removeStrayDirs deletes partition directories no partition wants (their
// topic was deleted while the broker was down).
func (ps *partitions) removeStrayDirs(want map[topicPartition]bool) error {
	entries, err := os.ReadDir(ps.logsDir())
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	keep := make(map[string]bool, len(want))
	for tp := range want {
		keep[partitionDirName(tp.topic, tp.partition)] = true
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || keep[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(ps.logsDir(), e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (ps *partitions) enforceRetention(now time.Time) {
	for _, p := range ps.all() {
		n, err := p.log.EnforceRetention(now)
		if err != nil {
			ps.b.logger.Error("retention", "topic", p.topic, "partition", p.index, "err", err)
		}
		if n > 0 {
			ps.b.metrics.segmentsDeleted.Add(float64(n))
		}
		p.log.ExpireProducers(now, ps.b.cfg.ProducerIDExpiration)
	}
}

func (ps *partitions) closeAll() error {
	ps.reconcileMu.Lock()
	defer ps.reconcileMu.Unlock()
	ps.mu.Lock()
	m := ps.m
	ps.m = make(map[topicPartition]*partition)
	ps.mu.Unlock()
	// Closing flushes each log: overlap the fsyncs as openAll does.
	work := make(chan *partition)
	errc := make(chan error, len(m))
	var wg sync.WaitGroup
	for range min(openParallelism, len(m)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				errc <- p.close()
			}
		}()
	}
	for _, p := range m {
		work <- p
	}
	close(work)
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// writeFileSync writes a small file durably: temp file, fsync, rename.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
