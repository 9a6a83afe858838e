package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/broker/internal/log"
	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// errorCode maps an error from the metadata store or a log to the Kafka
// error a client understands. Anything unexpected is UNKNOWN_SERVER_ERROR;
// the caller logs it.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, meta.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, meta.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, meta.ErrPartitionLimit):
		return kerr.PolicyViolation.Code
	case errors.Is(err, meta.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, meta.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, meta.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, meta.ErrNotController):
		return kerr.NotController.Code
	case errors.Is(err, log.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, log.ErrUnsupportedCompression):
		return kerr.UnsupportedCompressionType.Code
	case errors.Is(err, log.ErrCorrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, log.ErrMessageTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, log.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, errNotLeader), errors.Is(err, log.ErrClosed):
		return kerr.NotLeaderForPartition.Code
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is the text sent with errors in APIs that carry one.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
