package broker

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/log"
)

// BenchmarkTLSFetchWrite measures the broker's side of a zero-copy fetch
// over TLS (issue 16's benchmark target): frames of six 1 MiB regions
// encrypted and written to a loopback socket whose reader takes the bytes
// undecrypted, so that the process's CPU time per GB (cpu-s/GB) is the
// writer's plus a reader's that differs only by how the bytes arrive. The
// variants are the writer as it is and two alternatives measured and
// left out (bench/README.md, "The broker over TLS and SASL_SSL"):
//
//	copy:    writeZeroCopy's loop: each part through bufio, flushed, each
//	         region pread 64 KiB at a time and written (copyRegionWriter)
//	batched: copy, with the records crypto/tls writes one by one gathered
//	         below it into one write per response (benchBatcher)
//	mmap:    each region mapped (MAP_POPULATE) and encrypted from the
//	         page cache, without the pread copy
//
// Run it with go test ./broker -run XXX -bench TLSFetchWrite -benchtime
// 1000x -count 6, and -cpuprofile for where the time goes.
func BenchmarkTLSFetchWrite(b *testing.B) {
	l, err := log.Open(b.TempDir(), log.Config{RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	value := strings.Repeat("v", 1000)
	for range 1100 {
		if _, err := l.Append(MakeTestBatch(-1, 0, 0, false, value), 0); err != nil {
			b.Fatal(err)
		}
	}
	res, err := l.ReadRegion(0, 1<<20, l.EndOffset(), nil)
	if err != nil || res.Region == nil {
		b.Fatal(err)
	}
	defer res.Region.Release()
	frame := make([]byte, 6*64)
	var cuts []cut
	for i := range 6 {
		cuts = append(cuts, cut{at: (i + 1) * 64, r: res.Region})
	}
	frameBytes := int64(len(frame)) + 6*res.Region.Len
	cert := benchCert(b)

	for _, variant := range []string{"copy", "batched", "mmap"} {
		b.Run(variant, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			done := make(chan int64)
			go func() {
				// The reader: a TLS handshake, then the raw bytes.
				nc, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					done <- -1
					return
				}
				defer nc.Close()
				tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
				if err := tc.Handshake(); err != nil {
					done <- -1
					return
				}
				n, _ := io.CopyBuffer(io.Discard, nc, make([]byte, 256<<10))
				done <- n
			}()
			raw, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			batch := &benchBatcher{Conn: raw}
			under := net.Conn(raw)
			if variant == "batched" {
				under = batch
			}
			tc := tls.Server(under, &tls.Config{Certificates: []tls.Certificate{cert}})
			if err := tc.Handshake(); err != nil {
				b.Fatal(err)
			}
			w := bufio.NewWriterSize(tc, connWriteBuffer)
			cw := &copyRegionWriter{w: tc}
			writeParts := func() {
				prev := 0
				for _, ct := range cuts {
					w.Write(frame[prev:ct.at])
					w.Flush()
					if err := cw.writeRegion(ct.r.File(), ct.r.Pos, ct.r.Len); err != nil {
						b.Fatal(err)
					}
					prev = ct.at
				}
			}
			var before syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			start := time.Now()
			b.ResetTimer()
			for range b.N {
				switch variant {
				case "copy":
					writeParts()
				case "batched":
					batch.held = true
					writeParts()
					batch.held = false
					if _, err := raw.Write(batch.buf); err != nil {
						b.Fatal(err)
					}
					batch.buf = batch.buf[:0]
				case "mmap":
					prev := 0
					for _, ct := range cuts {
						w.Write(frame[prev:ct.at])
						w.Flush()
						page := ct.r.Pos &^ 4095
						m, err := syscall.Mmap(int(ct.r.File().Fd()), page, int(ct.r.Pos-page+ct.r.Len), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
						if err != nil {
							b.Fatal(err)
						}
						for data := m[ct.r.Pos-page:]; len(data) > 0; {
							n := min(len(data), 256<<10)
							tc.Write(data[:n])
							data = data[n:]
						}
						syscall.Munmap(m)
						prev = ct.at
					}
				}
			}
			b.StopTimer()
			var after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
			gb := float64(frameBytes) * float64(b.N) / 1e9
			b.ReportMetric(cpu.Seconds()/gb, "cpu-s/GB")
			b.ReportMetric(gb/time.Since(start).Seconds(), "GB/s")
			b.SetBytes(frameBytes)
			tc.Close()
			if n := <-done; n < 0 {
				b.Fatal("reader failed")
			}
		})
	}
}

func benchCert(b *testing.B) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// benchBatcher gathers what is written to it while held, for the batched
// variant: one goroutine writes, so it needs no lock.
type benchBatcher struct {
	net.Conn
	held bool
	buf  []byte
}

func (bb *benchBatcher) Write(p []byte) (int, error) {
	if !bb.held {
		return bb.Conn.Write(p)
	}
	bb.buf = append(bb.buf, p...)
	return len(p), nil
}
