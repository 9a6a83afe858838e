package console

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The message browser (GET /api/topics/{topic}/messages): it reads a
// topic's partitions from a starting point up to their end offsets as
// they were when the request came, keeps the records that pass the
// filters, and stops at the limit, the end, or the time budget.
//
// Query parameters: from=earliest|latest|offset|timestamp (default
// latest), offset=N (from=offset), timestamp=RFC3339 or Unix ms
// (from=timestamp), partition=N (default all), limit=N (default 50, at most
// maxBrowseLimit), key=K (the key equals K), q=S (key, value or a header
// value contains S).

const (
	defaultBrowseLimit = 50
	maxBrowseLimit     = 1000
	// maxBrowseScan bounds the records read for one request, so that a
	// filter matching nothing in a large topic answers.
	maxBrowseScan = 100_000
	// browseBudget bounds the time one request reads records.
	browseBudget = 5 * time.Second
)

// BrowseRequest is a message browser query, parsed.
type BrowseRequest struct {
	From      string // earliest, latest, offset, timestamp
	Offset    int64
	Timestamp string // as given
	Partition int32  // -1: all
	Limit     int
	Key       string
	Query     string
}

// Messages is the message browser's answer.
type Messages struct {
	Topic   string    `json:"topic"`
	Records []Message `json:"records"`
	// Scanned is how many records were read to find these.
	Scanned int `json:"scanned"`
	// Truncated is true when the read stopped at the scan bound or the
	// time budget before the end of the topic.
	Truncated bool `json:"truncated"`
}

// Message is one record as the browser shows it.
type Message struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Timestamp int64    `json:"timestamp"` // Unix ms
	Time      string   `json:"time"`      // RFC 3339, UTC
	Key       *Payload `json:"key"`       // nil for a null key
	Value     *Payload `json:"value"`     // nil for a tombstone
	Headers   []Header `json:"headers,omitempty"`
}

// Header is a record header.
type Header struct {
	Key   string   `json:"key"`
	Value *Payload `json:"value"`
}

// Payload is a key, value or header value, decoded for display: Encoding
// is "avro" (registry wire format, Text holds the record as JSON, SchemaID
// its schema), "json" (valid JSON, or JSON-schema wire format, Text holds
// it indented), "text" (valid UTF-8), or "binary" (Text holds a hex dump,
// Base64 the bytes).
type Payload struct {
	Encoding string `json:"encoding"`
	Text     string `json:"text"`
	Base64   string `json:"base64,omitempty"`
	Size     int    `json:"size"`
	SchemaID int    `json:"schemaId,omitempty"`
}

func decodePayload(b []byte) *Payload {
	if b == nil {
		return nil
	}
	p := &Payload{Size: len(b)}
	switch {
	case len(b) > 0 && (b[0] == '{' || b[0] == '[') && json.Valid(b):
		var buf bytes.Buffer
		json.Indent(&buf, b, "", "  ")
		p.Encoding, p.Text = "json", buf.String()
	case utf8.Valid(b) && printable(b):
		p.Encoding, p.Text = "text", string(b)
	default:
		p.Encoding, p.Base64 = "binary", base64.StdEncoding.EncodeToString(b)
		p.Text = fmt.Sprintf("% x", b[:min(len(b), 256)])
		if len(b) > 256 {
			p.Text += " …"
		}
	}
	return p
}

// printable reports whether b has no control characters but whitespace.
func printable(b []byte) bool {
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}

func parseBrowse(r *http.Request) (BrowseRequest, error) {
	q := r.URL.Query()
	br := BrowseRequest{From: q.Get("from"), Partition: -1, Limit: defaultBrowseLimit,
		Key: q.Get("key"), Query: q.Get("q"), Timestamp: q.Get("timestamp")}
	if br.From == "" {
		br.From = "latest"
	}
	var err error
	switch br.From {
	case "earliest", "latest":
	case "offset":
		if br.Offset, err = strconv.ParseInt(q.Get("offset"), 10, 64); err != nil || br.Offset < 0 {
			return br, badRequest("console: from=offset needs offset=N, N >= 0, not %q", q.Get("offset"))
		}
	case "timestamp":
		if _, err := parseTimestamp(br.Timestamp); err != nil {
			return br, err
		}
	default:
		return br, badRequest("console: from must be earliest, latest, offset or timestamp, not %q", br.From)
	}
	if s := q.Get("partition"); s != "" {
		p, err := strconv.ParseInt(s, 10, 32)
		if err != nil || p < -1 {
			return br, badRequest("console: partition must be a partition number, not %q", s)
		}
		br.Partition = int32(p)
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxBrowseLimit {
			return br, badRequest("console: limit must be 1 to %d, not %q", maxBrowseLimit, s)
		}
		br.Limit = n
	}
	return br, nil
}

// parseTimestamp reads Unix milliseconds or an RFC 3339 time (with or
// without seconds and zone, as a datetime-local input sends it, in UTC).
func parseTimestamp(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, badRequest("console: timestamp must be Unix milliseconds or RFC 3339, not %q", s)
}

func (c *Console) browse(ctx context.Context, r *http.Request) (any, error) {
	br, err := parseBrowse(r)
	if err != nil {
		return nil, err
	}
	return c.readMessages(ctx, r.PathValue("topic"), br)
}

func (c *Console) readMessages(ctx context.Context, topic string, br BrowseRequest) (*Messages, error) {
	starts, err := c.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("console: start offsets: %w", err)
	}
	if ps, ok := starts[topic]; !ok || len(ps) == 0 {
		return nil, notFound("console: no topic %q", topic)
	}
	for _, o := range starts[topic] {
		if errors.Is(o.Err, kerr.UnknownTopicOrPartition) || errors.Is(o.Err, kerr.InvalidTopicException) {
			return nil, notFound("console: no topic %q", topic)
		}
	}
	ends, err := c.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("console: end offsets: %w", err)
	}
	var at map[int32]int64 // from=timestamp: the first offset at or after it
	if br.From == "timestamp" {
		ms, _ := parseTimestamp(br.Timestamp)
		lo, err := c.adm.ListOffsetsAfterMilli(ctx, ms, topic)
		if err != nil {
			return nil, fmt.Errorf("console: offsets for time: %w", err)
		}
		at = map[int32]int64{}
		for p, o := range lo[topic] {
			if o.Err == nil {
				at[p] = o.Offset
			}
		}
	}
	// Where to start and where to stop in each partition.
	from, until := map[int32]kgo.Offset{}, map[int32]int64{}
	for p, so := range starts[topic] {
		eo, ok := ends.Lookup(topic, p)
		if so.Err != nil || !ok || eo.Err != nil || (br.Partition >= 0 && p != br.Partition) {
			continue
		}
		start, end := so.Offset, eo.Offset
		switch br.From {
		case "latest":
			start = max(start, end-int64(br.Limit))
		case "offset":
			start = max(start, br.Offset)
		case "timestamp":
			if o, ok := at[p]; ok && o >= 0 {
				start = max(start, o)
			} else {
				start = end
			}
		}
		if start < end {
			from[p], until[p] = kgo.NewOffset().At(start), end
		}
	}
	if br.Partition >= 0 && starts[topic][br.Partition].Topic == "" {
		return nil, notFound("console: topic %q has no partition %d", topic, br.Partition)
	}
	out := &Messages{Topic: topic, Records: []Message{}}
	if len(from) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(c.cfg.ClientOpts), kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))...)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, browseBudget)
	defer cancel()
	for len(until) > 0 && len(out.Records) < br.Limit && out.Scanned < maxBrowseScan {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			out.Truncated = true
			break
		}
		for _, e := range fs.Errors() {
			return nil, fmt.Errorf("console: fetch %s/%d: %w", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			end, ok := until[rec.Partition]
			if !ok || rec.Offset >= end {
				return
			}
			if rec.Offset+1 >= end {
				delete(until, rec.Partition)
			}
			out.Scanned++
			if len(out.Records) < br.Limit && br.matches(rec) {
				out.Records = append(out.Records, c.toMessage(ctx, rec))
			}
		})
	}
	if len(until) > 0 && out.Scanned >= maxBrowseScan {
		out.Truncated = true
	}
	slices.SortFunc(out.Records, func(a, b Message) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return out, nil
}

func (br BrowseRequest) matches(rec *kgo.Record) bool {
	if br.Key != "" && string(rec.Key) != br.Key {
		return false
	}
	if br.Query == "" {
		return true
	}
	q := []byte(br.Query)
	if bytes.Contains(rec.Key, q) || bytes.Contains(rec.Value, q) {
		return true
	}
	for _, h := range rec.Headers {
		if bytes.Contains(h.Value, q) || bytes.Contains([]byte(h.Key), q) {
			return true
		}
	}
	return false
}

func (c *Console) toMessage(ctx context.Context, rec *kgo.Record) Message {
	decode := func(b []byte) *Payload {
		if p, ok := c.decodeRegistered(ctx, b); ok {
			return p
		}
		return decodePayload(b)
	}
	m := Message{Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp.UnixMilli(),
		Time: rec.Timestamp.UTC().Format(time.RFC3339Nano), Key: decode(rec.Key), Value: decode(rec.Value)}
	for _, h := range rec.Headers {
		v := decodePayload(h.Value)
		if v == nil {
			v = &Payload{Encoding: "text"}
		}
		m.Headers = append(m.Headers, Header{Key: h.Key, Value: v})
	}
	return m
}
