package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

const (
	rawALPN = "moq-bench-raw"
	// rawUrgency is the urgency the session gives its data streams for
	// DefaultPriority (priority/32, non-incremental).
	rawUrgency = moqtransport.DefaultPriority / 32
)

// rawQUICConfig has the values of moqnative's quic.Config (its exported
// constants).
func rawQUICConfig() *quic.Config {
	return &quic.Config{
		EnableDatagrams:                  true,
		EnableStreamResetPartialDelivery: true,
		MaxIncomingUniStreams:            moqnative.MaxIncomingUniStreams,
		MaxIncomingStreams:               moqnative.MaxIncomingStreams,
		KeepAlivePeriod:                  moqnative.KeepAlivePeriod,
		MaxIdleTimeout:                   moqnative.MaxIdleTimeout,
		InitialStreamReceiveWindow:       moqnative.InitialStreamReceiveWindow,
		MaxStreamReceiveWindow:           moqnative.MaxStreamReceiveWindow,
		InitialConnectionReceiveWindow:   moqnative.InitialConnectionReceiveWindow,
		MaxConnectionReceiveWindow:       moqnative.MaxConnectionReceiveWindow,
	}
}

// rawPath is the baseline: an in-process quic-go origin that sends every
// publisher's objects to N raw client connections, one unidirectional
// stream per group per publisher and subscriber, carrying the draft-14
// subgroup stream bytes a relay would send (header, then each object's
// header and payload in one write), so that its receivers are the thin
// subscribers' own parser (thin.go) with no MoQT handshake before. The
// publishers hand each object to every connection's sender queue
// (unbounded, as a relay's track cache never blocks its publisher); one
// sender goroutine per connection writes.
type rawPath struct {
	prm     *params
	rec     *recorder
	ctx     context.Context
	cancel  context.CancelFunc
	udp     *net.UDPConn
	tr      *quic.Transport
	ln      *quic.Listener
	wg      sync.WaitGroup // receivers
	sendWG  sync.WaitGroup // senders
	mu      sync.Mutex
	clients []*thinConn
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

func newRawPath(prm *params, rec *recorder) *rawPath {
	r := &rawPath{prm: prm, rec: rec}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

func (r *rawPath) name() string { return "raw-quic" }

func (r *rawPath) setup(ctx context.Context) error {
	ss, err := moqnative.GenerateSelfSigned()
	if err != nil {
		return err
	}
	leaf := ss.Certificate.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(ss.DER); err != nil {
			return err
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	if r.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		return err
	}
	r.tr = &quic.Transport{Conn: r.udp}
	if r.ln, err = r.tr.Listen(&tls.Config{
		Certificates: []tls.Certificate{ss.Certificate},
		NextProtos:   []string{rawALPN},
		MinVersion:   tls.VersionTLS13,
	}, rawQUICConfig()); err != nil {
		return err
	}
	// The server side: one sender per accepted connection.
	accepted := make(chan error, 1)
	go func() {
		for range r.prm.subs {
			c, err := r.ln.Accept(ctx)
			if err != nil {
				accepted <- err
				return
			}
			s := &rawSender{conn: c, sig: make(chan struct{}, 1)}
			r.mu.Lock()
			r.senders = append(r.senders, s)
			r.mu.Unlock()
			r.sendWG.Go(func() { r.send(s) })
		}
		accepted <- nil
	}()
	clientTLS := &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{rawALPN}, MinVersion: tls.VersionTLS13}
	aliases := make([]uint64, r.prm.pubs) // the origin's track alias of publisher i is i
	for i := range aliases {
		aliases[i] = uint64(i)
	}
	err = dialAll(ctx, r.prm.subs, func(ctx context.Context, i int) error {
		c, err := dialThin(ctx, r.udp.LocalAddr(), clientTLS)
		if err != nil {
			return fmt.Errorf("raw subscriber %d: %w", i, err)
		}
		r.mu.Lock()
		r.clients = append(r.clients, c)
		r.mu.Unlock()
		tr := &thinReceiver{i: i, conn: c.conn, aliases: aliases, maxObj: uint64(r.prm.size), sink: r.rec.recordAt, bad: &r.rec.bad, wg: &r.wg, ctx: r.ctx}
		r.wg.Go(tr.run)
		return nil
	})
	if err != nil {
		return err
	}
	return <-accepted
}

// publish hands object k of publisher i to every connection's sender.
func (r *rawPath) publish(i int, k int64, at int64) error {
	it := rawItem{pub: i, k: k, at: at}
	for _, s := range r.senders {
		s.mu.Lock()
		s.items = append(s.items, it)
		s.mu.Unlock()
		select {
		case s.sig <- struct{}{}:
		default:
		}
	}
	return nil
}

func (r *rawPath) endPublish(int) {}

// finishSenders tells the senders that no more objects come: they write
// what they hold, close their streams and end.
func (r *rawPath) finishSenders() {
	for _, s := range r.senders {
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
func (r *rawPath) send(s *rawSender) {
	g := int64(r.prm.groupObjects)
	buf := make([]byte, 0, 64+r.prm.size)
	open := make([]*quic.SendStream, r.prm.pubs)
	state := make([]wire.SubgroupState, r.prm.pubs)
	var batch []rawItem
	fail := func(err error) {
		r.errMu.Lock()
		if r.sendErr == nil && r.ctx.Err() == nil {
			r.sendErr = err
		}
		r.errMu.Unlock()
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
		for _, it := range batch {
			id := it.k % g
			if id == 0 {
				str, err := s.conn.OpenUniStreamSync(r.ctx)
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
			var err error
			if buf, err = appendBenchObject(buf[:0], &state[it.pub], uint64(id), r.prm.size, it.at); err != nil {
				fail(err)
				return
			}
			if _, err := str.Write(buf); err != nil {
				fail(err)
				return
			}
			if id == g-1 {
				_ = str.Close()
				open[it.pub] = nil
			}
		}
		if ended && len(batch) == 0 {
			return
		}
		if len(batch) == 0 {
			select {
			case <-s.sig:
			case <-r.ctx.Done():
				return
			}
		}
	}
}

func (r *rawPath) err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.sendErr
}

func (r *rawPath) close() {
	r.finishSenders()
	r.cancel()
	r.sendWG.Wait()
	r.mu.Lock()
	clients, senders := r.clients, r.senders
	r.mu.Unlock()
	for _, c := range clients {
		_ = c.conn.CloseWithError(0, "")
	}
	r.wg.Wait()
	for _, s := range senders {
		_ = s.conn.CloseWithError(0, "")
	}
	for _, c := range clients {
		c.close(0, "")
	}
	if r.ln != nil {
		_ = r.ln.Close()
	}
	if r.tr != nil {
		_ = r.tr.Close()
	}
	if r.udp != nil {
		_ = r.udp.Close()
	}
}
