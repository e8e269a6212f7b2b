package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport/wire"
)

// benchStream returns a subgroup stream of track alias 7 with objects
// 0..n-1 of size bytes stamped 1000+id, and the offsets where each object
// ends. With ext, the stream type carries extensions.
func benchStream(t testing.TB, n, size int, ext bool) ([]byte, []int) {
	t.Helper()
	st := wire.SubgroupState{Header: wire.SubgroupHeader{TrackAlias: 7, GroupID: 3, IDMode: wire.SubgroupIDZero, PublisherPriority: 128, EndOfGroup: true, Extensions: ext}}
	var b []byte
	var ends []int
	for id := range n {
		var err error
		if b, err = appendBenchObject(b, &st, uint64(id), size, int64(1000+id)); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, len(b))
	}
	return b, ends
}

func isViolation(err error) bool {
	var se *wire.SessionError
	return errors.As(err, &se) && se.Code == wire.ProtocolViolation && se.Reason != ""
}

// TestSubgroupParser: the thin subscribers' parser reads the objects of a
// valid stream, also one byte at a time through a small buffer, and
// rejects every malformed variant with PROTOCOL_VIOLATION, never a panic.
func TestSubgroupParser(t *testing.T) {
	accept7 := func(a uint64) bool { return a == 7 }
	parse := func(p *subgroupParser, r io.Reader, maxObj uint64) ([]int64, int, error) {
		var ats []int64
		n, err := p.parse(r, maxObj, accept7, func(at int64, size int) {
			ats = append(ats, at)
			if size != 100 {
				t.Errorf("object of %d bytes, want 100", size)
			}
		})
		return ats, n, err
	}
	for _, ext := range []bool{false, true} {
		stream, ends := benchStream(t, 5, 100, ext)
		for name, p := range map[string]*subgroupParser{"32KiB": {buf: make([]byte, 32<<10)}, "16B": {buf: make([]byte, 16)}} {
			for rname, r := range map[string]io.Reader{"whole": bytes.NewReader(stream), "1 byte": iotest.OneByteReader(bytes.NewReader(stream))} {
				ats, n, err := parse(p, r, 100)
				if err != nil || n != 5 || len(ats) != 5 || ats[0] != 1000 || ats[4] != 1004 {
					t.Errorf("ext %v, buffer %s, %s reads: %d objects %v, %v", ext, name, rname, n, ats, err)
				}
			}
		}
		// Every prefix: a clean end after the header or an object (a
		// stream may end right after its header), else a violation.
		p := &subgroupParser{buf: make([]byte, 64)}
		_, hlen, _ := wire.ParseSubgroupHeader(stream)
		for cut := range len(stream) {
			_, n, err := parse(p, bytes.NewReader(stream[:cut]), 100)
			boundary := -1
			if cut == hlen {
				boundary = 0
			}
			for i, e := range ends {
				if e == cut {
					boundary = i + 1
				}
			}
			if boundary >= 0 {
				if err != nil || n != boundary {
					t.Errorf("ext %v, cut at object end %d: %d objects, %v", ext, cut, n, err)
				}
			} else if !isViolation(err) {
				t.Errorf("ext %v, cut at %d: %v, want PROTOCOL_VIOLATION", ext, cut, err)
			}
		}
	}
	stream, _ := benchStream(t, 2, 100, false)
	status := wire.SubgroupState{Header: wire.SubgroupHeader{TrackAlias: 7}}
	withStatus, _ := wire.AppendSubgroupHeader(nil, &status.Header)
	withStatus, _ = status.AppendObject(withStatus, &wire.ObjectHeader{ID: 0, Status: wire.StatusEndOfGroup})
	p := &subgroupParser{buf: make([]byte, 1024)}
	if ats, n, err := parse(p, bytes.NewReader(withStatus), 100); err != nil || n != 0 || len(ats) != 0 {
		t.Errorf("a status object: %d objects, %v; want it skipped", n, err)
	}
	for name, b := range map[string][]byte{
		"fetch stream":    append([]byte{wire.StreamTypeFetch}, 1, 0, 0, 0),
		"unknown type":    {0x30, 7, 0, 0},
		"unknown alias":   append([]byte{0x10, 8}, stream[2:]...),
		"empty":           {},
		"object too big":  stream,
		"bad status":      {0x10, 7, 0, 128, 0, 0, 0x7f},
		"bad extensions":  {0x11, 7, 0, 128, 0, 5, 1, 2},
		"huge payload id": {0x10, 7, 0, 128, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		max := uint64(100)
		if name == "object too big" {
			max = 99
		}
		if _, _, err := parse(p, bytes.NewReader(b), max); !isViolation(err) {
			t.Errorf("%s: %v, want PROTOCOL_VIOLATION", name, err)
		}
	}
}

// TestSubgroupParserAllocs: reading a stream allocates nothing per object
// (nor per stream, with a reused parser).
func TestSubgroupParserAllocs(t *testing.T) {
	stream, _ := benchStream(t, 200, 1200, false)
	p := &subgroupParser{buf: make([]byte, 32<<10)}
	r := bytes.NewReader(stream)
	count := 0
	accept := func(uint64) bool { return true }
	object := func(int64, int) { count++ }
	allocs := testing.AllocsPerRun(20, func() {
		r.Reset(stream)
		if n, err := p.parse(r, 1200, accept, object); err != nil || n != 200 {
			t.Fatalf("%d objects, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per 200-object stream, want 0", allocs)
	}
}

// TestThinReceiverRejectsGarbage: over a real loopback QUIC connection, a
// thin receiver reads a good stream, then closes the connection with
// PROTOCOL_VIOLATION when a stream carries malformed bytes; from a socket
// of its own and from a shared one (--client-sockets).
func TestThinReceiverRejectsGarbage(t *testing.T) {
	for _, sockets := range []int{0, 2} {
		t.Run(fmt.Sprintf("client-sockets=%d", sockets), func(t *testing.T) { testThinReceiverRejectsGarbage(t, sockets) })
	}
}

func testThinReceiverRejectsGarbage(t *testing.T, sockets int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ss, err := moqnative.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(ss.DER)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	defer udp.Close()
	defer tr.Close()
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{ss.Certificate}, NextProtos: []string{rawALPN}, MinVersion: tls.VersionTLS13}, rawQUICConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	socks := &thinSockets{n: sockets}
	defer socks.close()
	c, err := socks.dial(ctx, udp.LocalAddr(), &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{rawALPN}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close(0, "")
	if shared := c.udp == nil; shared != (sockets > 0) {
		t.Errorf("--client-sockets %d: the connection's socket is shared: %v", sockets, shared)
	}
	sc, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(epoch, 1, 100, 3)
	var wgDone = make(chan struct{})
	rcv := &thinReceiver{i: 0, conn: c.conn, aliases: []uint64{7}, maxObj: 100, sink: rec.recordAt, bad: &rec.bad, wg: nil, ctx: ctx}
	rcv.wg = new(sync.WaitGroup)
	go func() { defer close(wgDone); rcv.run(); rcv.wg.Wait() }()

	good, _ := benchStream(t, 3, 100, false)
	// Stamps of "now", so that the latencies are real.
	now := int64(time.Since(epoch))
	for i := range 3 {
		off := len(good) - (3-i)*100
		binary.LittleEndian.PutUint64(good[off:], uint64(now))
	}
	send := func(b []byte) {
		s, err := sc.OpenUniStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(b); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	}
	send(good)
	select {
	case <-rec.done:
	case <-ctx.Done():
		t.Fatalf("good stream: %d of 3 objects", rec.got.Load())
	}
	send([]byte{0x10, 7, 0, 128, 0, 0, 0x7f}) // a zero-length object with an unknown status
	<-sc.Context().Done()
	var ae *quic.ApplicationError
	if err := context.Cause(sc.Context()); !errors.As(err, &ae) || ae.ErrorCode != quic.ApplicationErrorCode(wire.ProtocolViolation) || !ae.Remote {
		t.Errorf("origin's connection ended with %v, want the receiver's PROTOCOL_VIOLATION", err)
	}
	<-wgDone
	if rec.bad.Load() != 1 || rec.got.Load() != 3 {
		t.Errorf("bad %d, got %d; want 1 and 3", rec.bad.Load(), rec.got.Load())
	}
}

// BenchmarkSubgroupParser: the thin subscribers' cost per object, parsing
// from memory (ns/op and allocs/op per object).
func BenchmarkSubgroupParser(b *testing.B) {
	for _, size := range []int{1024, 16384} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			stream, _ := benchStream(b, 100, size, false)
			p := &subgroupParser{buf: make([]byte, 32<<10)}
			r := bytes.NewReader(stream)
			accept := func(uint64) bool { return true }
			object := func(int64, int) {}
			b.ReportAllocs()
			b.SetBytes(int64(100 * size))
			for b.Loop() {
				r.Reset(stream)
				if _, err := p.parse(r, uint64(size), accept, object); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
