package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/log"
)

// Zero-copy fetch.
//
// A Fetch response's record batches are not read into memory: the log
// returns where they lie in its segment files (log.Region, each pinned by
// its own descriptor until released), the writer encodes the response
// around them, and sends each region from the file to the socket with
// sendfile, so the bytes go from the page cache to the socket without
// passing through user space. Everything else (the frame header, the
// per-partition framing, offsets and aborted transactions) is encoded
// into one buffer and written between the regions.
//
//	[size corr tags | throttle … partition 0 … len0] [region 0] [… len1] [region 1] [… tags]
//	 written from memory                              sendfile   memory   sendfile   memory
//
// Regions the log holds in memory (its direct writes' cache,
// broker/internal/log/tailcache.go) go out with the encoded parts around
// them in one writev instead (writeZeroCopy).
//
// The regions are charged to the fetch budget (queued.max.response.bytes)
// like copied records, and given back once written, so the budget still
// bounds what slow readers pin (descriptors and page cache, now).
//
// A response this file cannot encode (one carrying tagged fields, which
// the broker does not set today) is read into memory and encoded by kmsg
// instead: correctness never depends on the fast path.

// regionWriter sends a region of a file to a connection. Plain TCP
// connections on Linux use sendfile; anything else (TLS, pipes in tests)
// copies through a buffer.
type regionWriter interface {
	writeRegion(f *os.File, pos, n int64) error
}

// copyRegionWriter is the copying fallback: pread into a buffer, write it.
type copyRegionWriter struct {
	w   net.Conn
	buf []byte
}

func (cw *copyRegionWriter) writeRegion(f *os.File, pos, n int64) error {
	if cw.buf == nil {
		cw.buf = make([]byte, 64<<10)
	}
	for n > 0 {
		chunk := cw.buf[:min(n, int64(len(cw.buf)))]
		m, err := f.ReadAt(chunk, pos)
		if m < len(chunk) {
			return fmt.Errorf("broker: reading %d bytes of %s at %d: %d read: %v", len(chunk), f.Name(), pos, m, err)
		}
		if _, err := cw.w.Write(chunk); err != nil {
			return err
		}
		pos += int64(m)
		n -= int64(m)
	}
	return nil
}

// zeroCopyFetch is a Fetch response some of whose partitions' record
// batches are file regions. It is a kmsg.Response so that it passes
// through the finisher; the connection's writer recognises it.
type zeroCopyFetch struct {
	*kmsg.FetchResponse
	c *conn
	// regions are the pinned regions in response order (by topic, then
	// partition), so the encoder meets them in turn.
	regions []fetchRegion
}

type fetchRegion struct {
	ti, pi int
	r      *log.Region
}

// newZeroCopyFetch returns the zero-copy state of a fetch on c, or nil
// when the connection cannot take it.
func newZeroCopyFetch(c *conn, resp *kmsg.FetchResponse) *zeroCopyFetch {
	if c.regions == nil || resp.Version < 4 || resp.Version > 18 {
		return nil
	}
	return &zeroCopyFetch{FetchResponse: resp, c: c}
}

// fetchRead is one partition's read: copied batches, or a region.
type fetchRead struct {
	log.ReadResult
	region *log.Region
}

func (fr *fetchRead) size() int {
	if fr.region != nil {
		return int(fr.region.Len)
	}
	return len(fr.Records)
}

func (fr *fetchRead) count() int64 {
	if fr.region != nil {
		return fr.region.Records
	}
	return countRecords(fr.Records)
}

func (fr *fetchRead) next() int64 {
	if fr.region != nil {
		return fr.region.Next
	}
	return nextOffset(fr.Records)
}

// read reads a partition for a fetch: as a region when z is set, copied
// otherwise.
func (z *zeroCopyFetch) read(p *partition, offset int64, maxBytes int32, upTo int64) (fetchRead, error) {
	if z == nil {
		rr, err := p.log.Read(offset, maxBytes, upTo)
		return fetchRead{ReadResult: rr}, err
	}
	// Closing the log (to truncate it) closes this connection rather
	// than let it send bytes that change under it.
	res, err := p.log.ReadRegion(offset, maxBytes, upTo, z.c.close)
	if errors.Is(err, log.ErrNoPin) {
		// Out of descriptors (many partitions, many consumers): copy.
		rr, err := p.log.Read(offset, maxBytes, upTo)
		return fetchRead{ReadResult: rr}, err
	}
	return fetchRead{ReadResult: log.ReadResult{LogStartOffset: res.LogStartOffset}, region: res.Region}, err
}

// keep adds a partition's region, if it has one, to the response.
func (z *zeroCopyFetch) keep(ti, pi int, fr *fetchRead) {
	if fr.region == nil {
		return
	}
	z.regions = append(z.regions, fetchRegion{ti: ti, pi: pi, r: fr.region})
}

// release gives back every region held: before a fetch reads again, and
// once its response is written or dropped.
func (z *zeroCopyFetch) release() {
	if z == nil {
		return
	}
	for _, fr := range z.regions {
		fr.r.Release()
	}
	z.regions = z.regions[:0]
}

// finisher wraps a fetch's finisher: its response goes out zero-copy when
// it holds regions and can be encoded here, copied otherwise.
func (z *zeroCopyFetch) finisher(fin finisher) finisher {
	return func(ctx context.Context) (resp kmsg.Response) {
		defer func() {
			if r := recover(); r != nil {
				z.release()
				panic(r)
			}
		}()
		resp = fin(ctx)
		if len(z.regions) == 0 {
			return resp
		}
		if !encodable(z.FetchResponse) {
			if err := z.materialize(); err != nil {
				z.c.b.logger.Error("fetch read", "err", err)
				z.c.close()
			}
			return resp
		}
		return z
	}
}

// materialize reads the regions into the response, for the kmsg encoder.
func (z *zeroCopyFetch) materialize() error {
	defer z.release()
	for _, fr := range z.regions {
		buf, err := fr.r.Bytes()
		if err != nil {
			return fmt.Errorf("broker: reading a fetch region: %w", err)
		}
		z.Topics[fr.ti].Partitions[fr.pi].RecordBatches = buf
	}
	return nil
}

// encodable reports whether appendFetch encodes resp as kmsg would: no
// tagged field is set.
func encodable(resp *kmsg.FetchResponse) bool {
	if resp.UnknownTags.Len() > 0 || len(resp.Brokers) > 0 {
		return false
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.UnknownTags.Len() > 0 ||
				p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1 || p.DivergingEpoch.UnknownTags.Len() > 0 ||
				p.CurrentLeader.LeaderID != -1 || p.CurrentLeader.LeaderEpoch != -1 || p.CurrentLeader.UnknownTags.Len() > 0 ||
				p.SnapshotID.EndOffset != -1 || p.SnapshotID.Epoch != -1 || p.SnapshotID.UnknownTags.Len() > 0 {
				return false
			}
			for k := range p.AbortedTransactions {
				if p.AbortedTransactions[k].UnknownTags.Len() > 0 {
					return false
				}
			}
		}
	}
	return true
}

// cut is a region to send after the first at bytes of an encoded frame.
type cut struct {
	at int
	r  *log.Region
}

// appendFetch frames z's response as appendResponse would, with each
// region's bytes left out: cuts say where they go. The frame's size
// counts them.
func (z *zeroCopyFetch) appendFetch(dst []byte, req *request, cuts []cut) ([]byte, []cut) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, req.corr)
	v := z.FetchResponse
	flexible := v.Version >= 12
	if flexible {
		dst = append(dst, 0) // response header tags
	}
	appendArrayLen := func(dst []byte, n int) []byte {
		if flexible {
			return kbin.AppendCompactArrayLen(dst, n)
		}
		return kbin.AppendArrayLen(dst, n)
	}
	dst = kbin.AppendInt32(dst, v.ThrottleMillis)
	if v.Version >= 7 {
		dst = kbin.AppendInt16(dst, v.ErrorCode)
		dst = kbin.AppendInt32(dst, v.SessionID)
	}
	regions := z.regions
	var sent int64
	dst = appendArrayLen(dst, len(v.Topics))
	for ti := range v.Topics {
		t := &v.Topics[ti]
		switch {
		case v.Version >= 13:
			dst = kbin.AppendUuid(dst, t.TopicID)
		case flexible:
			dst = kbin.AppendCompactString(dst, t.Topic)
		default:
			dst = kbin.AppendString(dst, t.Topic)
		}
		dst = appendArrayLen(dst, len(t.Partitions))
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			dst = kbin.AppendInt32(dst, p.Partition)
			dst = kbin.AppendInt16(dst, p.ErrorCode)
			dst = kbin.AppendInt64(dst, p.HighWatermark)
			dst = kbin.AppendInt64(dst, p.LastStableOffset)
			if v.Version >= 5 {
				dst = kbin.AppendInt64(dst, p.LogStartOffset)
			}
			if flexible {
				dst = kbin.AppendCompactNullableArrayLen(dst, len(p.AbortedTransactions), p.AbortedTransactions == nil)
			} else {
				dst = kbin.AppendNullableArrayLen(dst, len(p.AbortedTransactions), p.AbortedTransactions == nil)
			}
			for _, a := range p.AbortedTransactions {
				dst = kbin.AppendInt64(dst, a.ProducerID)
				dst = kbin.AppendInt64(dst, a.FirstOffset)
				if flexible {
					dst = append(dst, 0)
				}
			}
			if v.Version >= 11 {
				dst = kbin.AppendInt32(dst, p.PreferredReadReplica)
			}
			if len(regions) > 0 && regions[0].ti == ti && regions[0].pi == pi {
				r := regions[0].r
				regions = regions[1:]
				// The length prefix of the bytes the region holds.
				if flexible {
					dst = kbin.AppendUvarint(dst, uint32(r.Len)+1)
				} else {
					dst = kbin.AppendInt32(dst, int32(r.Len))
				}
				cuts = append(cuts, cut{at: len(dst), r: r})
				sent += r.Len
			} else if flexible {
				dst = kbin.AppendCompactNullableBytes(dst, p.RecordBatches)
			} else {
				dst = kbin.AppendNullableBytes(dst, p.RecordBatches)
			}
			if flexible {
				dst = append(dst, 0) // partition tags
			}
		}
		if flexible {
			dst = append(dst, 0) // topic tags
		}
	}
	if flexible {
		dst = append(dst, 0) // response tags
	}
	kbin.AppendInt32(dst[start:start], int32(int64(len(dst)-start-4)+sent))
	return dst, cuts
}

// writeZeroCopy writes a zero-copy fetch response: the encoded parts
// through w, each region straight from its file. A failed write closes
// the connection, as in write: a frame cut short is never followed by
// another. Its regions are released whatever happens.
//
// Regions held in memory go out with the encoded parts around them in
// one writev (gather), so that a response served from the tail cache is
// one system call and reaches the reader whole: written in pieces, each
// small part would leave as a segment of its own (the connection has
// TCP_NODELAY) and wake the reader for a few bytes.
func (c *conn) writeZeroCopy(w *bufio.Writer, req *request, z *zeroCopyFetch, buf []byte) []byte {
	defer z.release()
	buf, cuts := z.appendFetch(buf[:0], req, nil)
	c.b.metrics.observeRequest(req.key, time.Since(req.received))
	if c.ctx.Err() != nil {
		return buf
	}
	prev := 0
	g := &c.gather
	for _, ct := range cuts {
		if mem := ct.r.Mem(); mem != nil {
			if len(g.vec) == 0 && w.Buffered() > 0 {
				// What w holds goes first.
				if err := w.Flush(); err != nil {
					c.close()
					return buf
				}
			}
			g.add(buf[prev:ct.at])
			for _, b := range mem {
				g.add(b)
			}
			prev = ct.at
			continue
		}
		if err := c.writeGathered(g); err != nil {
			c.close()
			return buf
		}
		if _, err := w.Write(buf[prev:ct.at]); err != nil {
			c.close()
			return buf
		}
		// The region goes around w: what w holds must go first.
		if err := w.Flush(); err != nil {
			c.close()
			return buf
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.b.cfg.ConnectionsMaxIdle))
		if err := c.regions.writeRegion(ct.r.File(), ct.r.Pos, ct.r.Len); err != nil {
			c.b.logger.Debug("fetch region write", "remote", c.nc.RemoteAddr().String(), "err", err)
			c.close()
			return buf
		}
		prev = ct.at
	}
	if len(g.vec) > 0 {
		// The frame's end joins the gathered write rather than waiting
		// in w for a pipelined response that rarely follows a fetch.
		g.add(buf[prev:])
		if err := c.writeGathered(g); err != nil {
			c.close()
		}
		return buf
	}
	c.write(w, buf[prev:])
	return buf
}

// gather is the slices of one vectored write, in order.
type gather struct{ vec net.Buffers }

func (g *gather) add(b []byte) {
	if len(b) > 0 {
		g.vec = append(g.vec, b)
	}
}

// writeGathered writes what g holds with as few writev calls as the
// kernel allows (Go splits above IOV_MAX), and empties it.
func (c *conn) writeGathered(g *gather) error {
	if len(g.vec) == 0 {
		return nil
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.b.cfg.ConnectionsMaxIdle))
	vec := g.vec // WriteTo consumes the slice it is called on
	_, err := vec.WriteTo(c.nc)
	clear(g.vec)
	g.vec = g.vec[:0]
	return err
}
