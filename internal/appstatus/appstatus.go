// Package appstatus is the record a running stream application publishes
// about itself, and the console reads: its topology, its instances, and
// the tasks of each with their restore progress, rates and lag.
//
// Every instance of every application writes, every few seconds, one
// record to the compacted topic Topic, keyed by application id and
// process (Key); compaction keeps the newest record of each instance. The
// value is a JSON Status with a version, so that a newer console reads an
// older runtime's records (unknown fields are ignored). An instance that
// stops cleanly writes a tombstone (a null value) for its key; one that
// crashes leaves its last record, which a reader recognizes as stale by
// its Time, older than a few Intervals.
//
// Why a topic rather than the group member's UserData: UserData is sent
// only when a member joins the group, so rates, lag and restore progress
// would be as old as the last rebalance; a topic is readable over the
// Kafka protocol by any console, even against Apache Kafka, and holds the
// topology of an application whose members are gone.
package appstatus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Topic is the compacted topic the applications publish their status to.
const Topic = "_runnel_app_status"

// Version is the version of Status this package writes.
const Version = 1

// Status is one instance of an application, as it describes itself.
type Status struct {
	Version int `json:"v"`
	// App is the application id, also the name of its consumer group.
	App string `json:"app"`
	// Process names the instance (one per state directory).
	Process string `json:"process"`
	// Endpoint is the instance's application.server, if it set one.
	Endpoint string `json:"endpoint,omitempty"`
	// State is the application's state (RUNNING, REBALANCING, ...).
	State string `json:"state"`
	// TimeMs is when the record was written (Unix milliseconds), and
	// IntervalMs how often the instance writes one.
	TimeMs     int64 `json:"timeMs"`
	IntervalMs int64 `json:"intervalMs"`
	// Workers is the instance's number of stream threads.
	Workers int `json:"workers"`
	// Topology is the application's topology as topology.Describe prints
	// it (Kafka Streams' TopologyDescription layout).
	Topology string `json:"topology"`
	// Topics maps the topic names of Topology that differ on the cluster
	// (repartition topics by base name) to their name there.
	Topics map[string]string `json:"topics,omitempty"`
	// Changelogs maps each logged store to its changelog topic.
	Changelogs map[string]string `json:"changelogs,omitempty"`
	// Tasks are the tasks the instance runs, active and standby.
	Tasks []Task `json:"tasks"`
}

// Task is one task of an instance.
type Task struct {
	// ID is "<sub-topology>_<partition>".
	ID string `json:"id"`
	// Standby is set for a standby task (a warm copy of the state of a
	// task active elsewhere); Worker is the worker of an active task.
	Standby bool `json:"standby,omitempty"`
	Worker  int  `json:"worker"`
	// Processed counts the input records the task processed since the
	// instance started, and RecordsPerSec is the rate over the last
	// interval.
	Processed     int64   `json:"processed"`
	RecordsPerSec float64 `json:"recordsPerSec"`
	// Lag is the records in the task's input partitions past its
	// position, as of its last fetch.
	Lag int64 `json:"lag"`
	// LatencyMs is the mean end-to-end latency (processing time minus
	// record timestamp) over the last interval; 0 without records.
	LatencyMs float64 `json:"latencyMs"`
	// Restoring is set while the task restores its stores; Restored,
	// RestoreRemaining and RestoreRate describe its last or current
	// restoration.
	Restoring        bool    `json:"restoring,omitempty"`
	Restored         int64   `json:"restored"`
	RestoreRemaining int64   `json:"restoreRemaining"`
	RestoreRate      float64 `json:"restoreRate"`
}

// Key is the record key of an instance's status.
func Key(app, process string) []byte { return []byte(app + "/" + process) }

// ParseKey splits a record key made by Key.
func ParseKey(key []byte) (app, process string, err error) {
	app, process, ok := strings.Cut(string(key), "/")
	if !ok || app == "" || process == "" {
		return "", "", fmt.Errorf("appstatus: bad key %q", key)
	}
	return app, process, nil
}

// Encode returns s as a record value.
func Encode(s Status) []byte {
	s.Version = Version
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("appstatus: encode: %v", err)) // strings, numbers and maps of strings
	}
	return b
}

// ErrTombstone is returned by Decode for a null value: the instance
// stopped.
var ErrTombstone = errors.New("appstatus: instance stopped")

// Decode reads a record value written by Encode.
func Decode(b []byte) (Status, error) {
	var s Status
	if b == nil {
		return s, ErrTombstone
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("appstatus: decode: %w", err)
	}
	if s.Version < 1 || s.App == "" || s.Process == "" {
		return s, fmt.Errorf("appstatus: decode: version %d, app %q, process %q", s.Version, s.App, s.Process)
	}
	return s, nil
}
