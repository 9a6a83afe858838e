package runnel

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The application's group members tell each other two things the consumer
// protocol has no field for, in the UserData of their subscription and of
// their assignment. Both are JSON objects with a version, so that a later
// runtime can add fields and still read an older member's data.

// memberInfoVersion is the version of memberInfo this runtime writes.
const memberInfoVersion = 1

// memberInfo is what a member says about itself when it joins (the UserData
// of its ConsumerMemberMetadata).
type memberInfo struct {
	Version int `json:"v"`
	// Process names the instance (one per state directory); the workers of
	// one instance share it, and their state. A standby never goes to the
	// process running the task's active copy.
	Process string `json:"process"`
	// Endpoint is the instance's application.server (host:port), for
	// interactive queries; empty when not set.
	Endpoint string `json:"endpoint,omitempty"`
	// State maps the tasks whose state the process holds locally to the sum
	// of their stores' changelog positions: the higher, the less there is
	// to restore. A task the member runs as active is caughtUp.
	State map[string]int64 `json:"state,omitempty"`
}

// caughtUp marks, in memberInfo.State, a task the member runs as active:
// its state is the newest there is.
const caughtUp = int64(-2)

// assignmentInfo is what the group leader tells each member beyond its
// partitions (the UserData of its ConsumerMemberAssignment).
type assignmentInfo struct {
	Version int `json:"v"`
	// Standbys are the tasks the member keeps a warm copy of.
	Standbys []string `json:"standbys,omitempty"`
}

func encodeInfo(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("stream: encode %T: %v", v, err)) // plain structs of strings and ints
	}
	return b
}

// decodeMemberInfo reads a member's UserData. A member of another runtime
// (or a corrupt one) yields an error; the balancer then treats the member
// as holding no state.
func decodeMemberInfo(b []byte) (memberInfo, error) {
	var m memberInfo
	if len(b) == 0 {
		return m, fmt.Errorf("stream: member metadata carries no runnel info")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("stream: decode member info: %w", err)
	}
	if m.Version < 1 {
		return m, fmt.Errorf("stream: member info version %d", m.Version)
	}
	return m, nil
}

func decodeAssignmentInfo(b []byte) (assignmentInfo, error) {
	var a assignmentInfo
	if len(b) == 0 {
		return a, nil // no standbys
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("stream: decode assignment info: %w", err)
	}
	return a, nil
}

// String prints the task id as Kafka Streams does: "<sub-topology>_<partition>".
func (k taskKey) String() string { return strconv.Itoa(k.sub) + "_" + strconv.Itoa(int(k.part)) }

// parseTaskKey reads a task id printed by taskKey.String.
func parseTaskKey(s string) (taskKey, error) {
	sub, part, ok := strings.Cut(s, "_")
	if !ok {
		return taskKey{}, fmt.Errorf("stream: bad task id %q", s)
	}
	si, err1 := strconv.Atoi(sub)
	pi, err2 := strconv.ParseInt(part, 10, 32)
	if err1 != nil || err2 != nil || si < 0 || pi < 0 {
		return taskKey{}, fmt.Errorf("stream: bad task id %q", s)
	}
	return taskKey{si, int32(pi)}, nil
}

func compareTasks(a, b taskKey) int {
	if a.sub != b.sub {
		return a.sub - b.sub
	}
	return int(a.part - b.part)
}

func sortTasks(ts []taskKey) { slices.SortFunc(ts, compareTasks) }
