package main

// The baseline's origin runs in a child process (this binary again, with
// originEnv set), as the relay does: the two paths then have the same
// shape (a server process, and this process with the thin subscribers),
// get the same share of a busy machine, and the origin's CPU and RSS are
// its own, read from /proc like the relay's.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// originEnv, when set in the environment, makes this binary the baseline's
// origin; its value is the originConfig in JSON.
const originEnv = "MOQ_BENCH_ORIGIN"

// originConfig is what the origin needs of a run.
type originConfig struct {
	Pubs         int `json:"pubs"`
	Subs         int `json:"subs"`
	Size         int `json:"size"`
	GroupObjects int `json:"group_objects"`
}

// coalesceBytes bounds one write of objects queued on one stream (the
// relay's own bound).
const coalesceBytes = 16 << 10

// originRecord is one object to send: publisher, object number, due time;
// three big-endian uint64 on the origin's stdin.
const originRecord = 24

// The origin's protocol with its parent: on stdout the line "ADDR
// FINGERPRINT" once it listens, then "ready" once all subscribers are
// connected; on stdin a record per object, then EOF when publishing ends;
// it writes what it holds, closes its streams and exits once its
// subscribers have closed their connections (or after originLinger).
// Errors go to stderr, and the exit status is 1.
const originLinger = time.Minute

// maybeOrigin runs the origin and exits when originEnv is set.
func maybeOrigin() {
	v := os.Getenv(originEnv)
	if v == "" {
		return
	}
	if err := runOrigin(v, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "origin: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// origin is the baseline's server: it sends every publisher's objects to N
// raw client connections, one unidirectional stream per group per
// publisher and subscriber, carrying the draft-14 subgroup stream bytes a
// relay would send (header, then each object's header and payload in one
// write). Objects go to every connection's sender queue (unbounded, as a
// relay's track cache never blocks its publisher); one sender goroutine
// per connection writes.
type origin struct {
	cfg     originConfig
	ctx     context.Context
	sendWG  sync.WaitGroup
	senders []*rawSender
	errMu   sync.Mutex
	sendErr error
}

type rawItem struct {
	pub int
	k   int64
	at  int64
}

type rawSender struct {
	conn  *quic.Conn
	mu    sync.Mutex
	items []rawItem
	ended bool
	sig   chan struct{}
}

func runOrigin(cfgJSON string, in io.Reader, out io.Writer) error {
	var cfg originConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil || cfg.Subs < 1 || cfg.Pubs < 1 || cfg.Size < 8 || cfg.GroupObjects < 1 {
		return fmt.Errorf("bad %s %q", originEnv, cfgJSON)
	}
	ss, err := moqnative.GenerateSelfSigned()
	if err != nil {
		return err
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer udp.Close()
	tr := &quic.Transport{Conn: udp}
	defer tr.Close()
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{ss.Certificate}, NextProtos: []string{rawALPN}, MinVersion: tls.VersionTLS13}, rawQUICConfig())
	if err != nil {
		return err
	}
	defer ln.Close()
	fp := sha256.Sum256(ss.DER)
	fmt.Fprintf(out, "%s %s\n", udp.LocalAddr(), hex.EncodeToString(fp[:]))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := &origin{cfg: cfg, ctx: ctx}
	actx, acancel := context.WithTimeout(ctx, setupTimeout(cfg.Subs))
	for range cfg.Subs {
		c, err := ln.Accept(actx)
		if err != nil {
			acancel()
			return fmt.Errorf("accepting subscribers: %w", err)
		}
		s := &rawSender{conn: c, sig: make(chan struct{}, 1)}
		o.senders = append(o.senders, s)
		o.sendWG.Go(func() { o.send(s) })
	}
	acancel()
	fmt.Fprintln(out, "ready")
	rd := bufio.NewReader(in)
	var rec [originRecord]byte
	for {
		if _, err := io.ReadFull(rd, rec[:]); err != nil {
			if err == io.EOF {
				break
			}
			return fmt.Errorf("reading objects: %w", err)
		}
		pub := binary.BigEndian.Uint64(rec[0:])
		if pub >= uint64(cfg.Pubs) {
			return fmt.Errorf("object of publisher %d, of %d", pub, cfg.Pubs)
		}
		o.publish(rawItem{pub: int(pub), k: int64(binary.BigEndian.Uint64(rec[8:])), at: int64(binary.BigEndian.Uint64(rec[16:]))})
	}
	o.finish()
	o.sendWG.Wait()
	// The subscribers read what is still in flight, then close.
	linger := time.NewTimer(originLinger)
	defer linger.Stop()
	for _, s := range o.senders {
		select {
		case <-s.conn.Context().Done():
		case <-linger.C:
		}
	}
	o.errMu.Lock()
	defer o.errMu.Unlock()
	return o.sendErr
}

// publish hands an object to every connection's sender.
func (o *origin) publish(it rawItem) {
	for _, s := range o.senders {
		s.mu.Lock()
		s.items = append(s.items, it)
		s.mu.Unlock()
		select {
		case s.sig <- struct{}{}:
		default:
		}
	}
}

// finish tells the senders that no more objects come: they write what
// they hold, close their streams and end.
func (o *origin) finish() {
	for _, s := range o.senders {
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		select {
		case s.sig <- struct{}{}:
		default:
		}
	}
}

// send is the sender of one connection.
func (o *origin) send(s *rawSender) {
	g := int64(o.cfg.GroupObjects)
	buf := make([]byte, 0, 64+o.cfg.Size)
	open := make([]*quic.SendStream, o.cfg.Pubs)
	state := make([]wire.SubgroupState, o.cfg.Pubs)
	var batch []rawItem
	fail := func(err error) {
		o.errMu.Lock()
		if o.sendErr == nil && o.ctx.Err() == nil && s.conn.Context().Err() == nil {
			o.sendErr = err
			fmt.Fprintf(os.Stderr, "sending: %v\n", err) // the parent reads it at once
		}
		o.errMu.Unlock()
	}
	defer func() {
		for _, str := range open {
			if str != nil {
				_ = str.Close()
			}
		}
	}()
	for {
		s.mu.Lock()
		batch, s.items = s.items, batch[:0]
		ended := s.ended
		s.mu.Unlock()
		// Objects queued behind each other on one stream go out in one
		// write of up to coalesceBytes, as the relay's lagging writer
		// does.
		var pending *quic.SendStream
		flush := func() bool {
			if pending == nil || len(buf) == 0 {
				buf = buf[:0]
				return true
			}
			_, err := pending.Write(buf)
			buf = buf[:0]
			if err != nil {
				fail(err)
				return false
			}
			return true
		}
		for _, it := range batch {
			id := it.k % g
			if id == 0 {
				str, err := s.conn.OpenUniStreamSync(o.ctx)
				if err != nil {
					fail(err)
					return
				}
				str.SetPriority(rawUrgency, false)
				open[it.pub] = str
				state[it.pub] = wire.SubgroupState{Header: wire.SubgroupHeader{
					TrackAlias: uint64(it.pub), GroupID: uint64(it.k / g), IDMode: wire.SubgroupIDZero,
					PublisherPriority: moqtransport.DefaultPriority, EndOfGroup: true,
				}}
			}
			str := open[it.pub]
			if str != pending {
				if !flush() {
					return
				}
				pending = str
			}
			var err error
			if buf, err = appendBenchObject(buf, &state[it.pub], uint64(id), o.cfg.Size, it.at); err != nil {
				fail(err)
				return
			}
			if id == g-1 || len(buf) >= coalesceBytes {
				if !flush() {
					return
				}
			}
			if id == g-1 {
				_ = str.Close()
				open[it.pub], pending = nil, nil
			}
		}
		if !flush() {
			return
		}
		if ended && len(batch) == 0 {
			return
		}
		if len(batch) == 0 {
			select {
			case <-s.sig:
			case <-o.ctx.Done():
				return
			}
		}
	}
}
