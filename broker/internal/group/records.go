package group

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/recordbatch"
)

// ErrCorrupt is returned when a batch read back from __consumer_offsets
// cannot be decoded.
var ErrCorrupt = errors.New("group: corrupt record batch")

// Versions of the __consumer_offsets record formats this package writes,
// the ones Kafka 4 writes for classic groups.
const (
	offsetKeyVersion   = 1
	offsetValueVersion = 3
	groupKeyVersion    = 2
	groupValueVersion  = 3
)

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = offsetKeyVersion
	k.Group, k.Topic, k.Partition = group, topic, partition
	return k.AppendTo(nil)
}

func offsetValue(o offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTime.UnixMilli()
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = groupKeyVersion
	k.Group = group
	return k.AppendTo(nil)
}

// Batch attributes for transactions.
const (
	attrTransactional = recordbatch.AttrTransactional
	attrControl       = recordbatch.AttrControl
)

// markerRecord is the one record of a transaction marker: a
// ControlRecordKey (version 0, type 1 for COMMIT, 0 for ABORT) and an
// EndTxnMarker value with the coordinator epoch.
func markerRecord(commit bool, coordinatorEpoch int32) recordbatch.Record {
	k := kmsg.NewControlRecordKey()
	if commit {
		k.Type = kmsg.ControlRecordKeyTypeCommit
	}
	v := kmsg.NewEndTxnMarker()
	v.CoordinatorEpoch = coordinatorEpoch
	return recordbatch.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}
