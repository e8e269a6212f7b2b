// Package netem is a shaping UDP proxy for tests and benchmarks: it sits
// between QUIC clients and a server on loopback and gives each direction a
// link with a token-bucket rate, a bounded queue with tail drop, a one-way
// delay, and optional random loss and reordering.
//
// A Proxy is one link: every client address that sends to it gets its own
// upstream socket to the target (so the server sees one peer per client),
// but all of them share the proxy's queue and rate in each direction, as
// viewers behind one access link do. Use one Proxy per client to shape
// clients independently.
//
// The model of one direction, in order:
//
//  1. loss: each packet read is dropped with probability Link.Loss;
//  2. queue: the packet joins a FIFO of at most Link.QueueBytes bytes, or
//     is dropped at the tail when it does not fit;
//  3. rate: the head of the queue leaves when a token bucket filled at
//     Link.RateBitsPerSec holds enough tokens for it (the bucket holds a
//     few milliseconds' worth, and at least two full-size packets);
//  4. delay: it is written Link.Delay after it left the queue; with
//     probability Link.Reorder a packet is held back and written right
//     after the next one (or after a few milliseconds when none follows).
//
// Randomness comes from a generator seeded with Link.Seed, so a run with
// the same traffic sees the same losses. Link settings change at runtime
// with SetUp and SetDown; packets already queued keep their place.
//
// The proxy trusts nothing it reads: it forwards datagrams without
// looking inside them, and it only talks to the target it was given and to
// the client addresses that wrote to it. It is meant for loopback tests and
// benchmarks, not for production traffic. It logs nothing.
package netem

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Link is the shaping of one direction.
type Link struct {
	// RateBitsPerSec is the link rate; 0 means unlimited.
	RateBitsPerSec int64
	// QueueBytes bounds the queue in front of the rate limiter; a packet
	// that does not fit is dropped (tail drop). 0 means the bytes the rate
	// carries in 200 ms (at least 16 KiB), or 4 MiB when the rate is
	// unlimited.
	QueueBytes int
	// Delay is the one-way propagation delay added after the rate limiter.
	Delay time.Duration
	// Loss is the probability, 0..1, that a packet is dropped on arrival.
	Loss float64
	// Reorder is the probability, 0..1, that a packet is held back and
	// written after the next one.
	Reorder float64
	// Seed seeds the loss and reordering decisions; SetUp and SetDown
	// restart the generator from the new Link's Seed.
	Seed int64
}

// Config is the shaping of both directions.
type Config struct {
	Up   Link // client to target
	Down Link // target to client
}

// DirStats counts one direction's packets.
type DirStats struct {
	Received      int64 // packets read from the socket
	Packets       int64 // packets written on
	Bytes         int64 // bytes written on
	Lost          int64 // packets dropped by Link.Loss
	Dropped       int64 // packets dropped because the queue was full
	DroppedBytes  int64
	Reordered     int64 // packets held back behind the next one
	QueuedBytes   int64 // bytes in the queue now
	WriteErrors   int64 // packets the socket refused (the peer is gone)
	MaxQueueBytes int64 // the largest QueuedBytes seen
}

// Stats is a snapshot of both directions.
type Stats struct {
	Up, Down DirStats
	Clients  int // client addresses seen
}

const (
	maxDatagram = 64 << 10 // read buffer: any UDP payload
	maxClients  = 4096     // distinct client addresses served
	defaultHold = 5 * time.Millisecond
	minBurst    = 2 * 1500
	burstTime   = 5 * time.Millisecond
	// maxInFlight bounds the packets waiting out their delay, so a huge
	// delay with an unlimited rate cannot grow memory without bound.
	maxInFlight = 1 << 16
)

// Proxy forwards UDP datagrams between clients and one target, shaping each
// direction.
type Proxy struct {
	target *net.UDPAddr
	ln     *net.UDPConn
	up     *shaper
	down   *shaper

	mu      sync.Mutex
	clients map[string]*client
	closed  bool

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
	once sync.Once
}

// client is one client address and its upstream socket.
type client struct {
	addr *net.UDPAddr
	conn *net.UDPConn // connected to the target
}

// New starts a proxy to target (host:port, a literal IP address). It
// listens on 127.0.0.1:0, or [::1]:0 when target is IPv6.
func New(target string, cfg Config) (*Proxy, error) {
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, fmt.Errorf("netem: target %q: %w", target, err)
	}
	if taddr.IP == nil || taddr.Port == 0 {
		return nil, fmt.Errorf("netem: target %q needs an IP address and a port", target)
	}
	listen := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if taddr.IP.To4() == nil {
		listen = &net.UDPAddr{IP: net.IPv6loopback}
	}
	ln, err := net.ListenUDP("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("netem: listening: %w", err)
	}
	p := &Proxy{target: taddr, ln: ln, clients: map[string]*client{}, done: make(chan struct{})}
	p.up = newShaper(cfg.Up, p.done)
	p.down = newShaper(cfg.Down, p.done)
	for _, s := range []*shaper{p.up, p.down} {
		p.wg.Add(2)
		go func() { defer p.wg.Done(); s.pace() }()
		go func() { defer p.wg.Done(); s.deliver() }()
	}
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.readClients() }()
	return p, nil
}

// Addr is the address clients send to.
func (p *Proxy) Addr() *net.UDPAddr { return p.ln.LocalAddr().(*net.UDPAddr) }

// SetUp changes the client-to-target shaping.
func (p *Proxy) SetUp(l Link) { p.up.set(l) }

// SetDown changes the target-to-client shaping.
func (p *Proxy) SetDown(l Link) { p.down.set(l) }

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	n := len(p.clients)
	p.mu.Unlock()
	return Stats{Up: p.up.stats(), Down: p.down.stats(), Clients: n}
}

// Close stops the proxy: it closes every socket and waits for every
// goroutine it started. Packets still queued are discarded.
func (p *Proxy) Close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		p.mu.Lock()
		p.closed = true
		clients := p.clients
		p.mu.Unlock()
		err = p.ln.Close()
		for _, c := range clients {
			c.conn.Close()
		}
		p.wg.Wait()
	})
	return err
}

// readClients reads datagrams from clients and queues them upstream.
func (p *Proxy) readClients() {
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := p.ln.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP errors reported on the socket
		}
		c := p.client(addr)
		if c == nil {
			continue
		}
		conn := c.conn
		p.up.enqueue(buf[:n], func(b []byte) error { _, err := conn.Write(b); return err })
	}
}

// client returns the client for addr, creating its upstream socket and
// reader the first time; nil when closed or full.
func (p *Proxy) client(addr *net.UDPAddr) *client {
	key := addr.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[key]; ok {
		return c
	}
	if p.closed || len(p.clients) >= maxClients {
		return nil
	}
	conn, err := net.DialUDP("udp", nil, p.target)
	if err != nil {
		return nil
	}
	c := &client{addr: addr, conn: conn}
	p.clients[key] = c
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.readTarget(c) }()
	return c
}

// readTarget reads the target's datagrams to client c and queues them
// downstream.
func (p *Proxy) readTarget(c *client) {
	buf := make([]byte, maxDatagram)
	to := c.addr
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP port unreachable while the target restarts
		}
		p.down.enqueue(buf[:n], func(b []byte) error { _, err := p.ln.WriteToUDP(b, to); return err })
	}
}

// packet is a datagram in a shaper.
type packet struct {
	b     []byte
	write func([]byte) error
	due   time.Time // when the delay stage writes it
}

// shaper is one direction: the queue, the rate limiter (pace) and the
// delay line (deliver).
type shaper struct {
	done <-chan struct{}

	mu       sync.Mutex
	link     Link
	rng      *rand.Rand
	queue    []packet // waiting for the rate limiter
	qbytes   int
	inFlight []packet // waiting out the delay, ordered by due
	tokens   float64  // bytes
	last     time.Time

	paceWake    chan struct{} // a packet was queued or the link changed
	deliverWake chan struct{} // a packet entered the delay line

	st struct {
		received, packets, bytes, lost, dropped, droppedBytes, reordered, writeErrors, maxQueue atomic.Int64
	}
}

func newShaper(l Link, done <-chan struct{}) *shaper {
	s := &shaper{done: done, paceWake: make(chan struct{}, 1), deliverWake: make(chan struct{}, 1), last: time.Now()}
	s.link = l
	s.rng = newRand(l.Seed)
	s.tokens = float64(burst(l))
	return s
}

func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x6e6574656d)) // "netem"
}

func (s *shaper) set(l Link) {
	s.mu.Lock()
	s.refill(time.Now())
	s.link = l
	s.rng = newRand(l.Seed)
	if b := float64(burst(l)); s.tokens > b {
		s.tokens = b
	}
	s.mu.Unlock()
	wake(s.paceWake)
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// queueLimit is the queue bound of l.
func queueLimit(l Link) int {
	if l.QueueBytes > 0 {
		return l.QueueBytes
	}
	if l.RateBitsPerSec <= 0 {
		return 4 << 20
	}
	return max(int(l.RateBitsPerSec/8/5), 16<<10)
}

// burst is the token bucket's depth in bytes.
func burst(l Link) int {
	if l.RateBitsPerSec <= 0 {
		return 0
	}
	return max(int(float64(l.RateBitsPerSec)/8*burstTime.Seconds()), minBurst)
}

// refill adds the tokens earned since s.last. s.mu is held.
func (s *shaper) refill(now time.Time) {
	if r := s.link.RateBitsPerSec; r > 0 {
		s.tokens += now.Sub(s.last).Seconds() * float64(r) / 8
		if b := float64(burst(s.link)); s.tokens > b {
			s.tokens = b
		}
	}
	s.last = now
}

// enqueue copies b into the queue, or counts it lost or dropped.
func (s *shaper) enqueue(b []byte, write func([]byte) error) {
	s.st.received.Add(1)
	s.mu.Lock()
	if s.link.Loss > 0 && s.rng.Float64() < s.link.Loss {
		s.mu.Unlock()
		s.st.lost.Add(1)
		return
	}
	if s.qbytes+len(b) > queueLimit(s.link) {
		s.mu.Unlock()
		s.st.dropped.Add(1)
		s.st.droppedBytes.Add(int64(len(b)))
		return
	}
	s.queue = append(s.queue, packet{b: append([]byte(nil), b...), write: write})
	s.qbytes += len(b)
	if q := int64(s.qbytes); q > s.st.maxQueue.Load() {
		s.st.maxQueue.Store(q) // only enqueue writes it, under s.mu
	}
	s.mu.Unlock()
	wake(s.paceWake)
}

// pace moves packets from the queue to the delay line at the link rate.
func (s *shaper) pace() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := s.paceOnce()
		if wait == 0 {
			select {
			case <-s.paceWake:
				continue
			case <-s.done:
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.paceWake:
		case <-s.done:
			return
		}
	}
}

// paceOnce releases what the bucket allows and returns how long to wait
// for the next packet's tokens, or 0 when the queue is empty.
func (s *shaper) paceOnce() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.refill(now)
	moved := false
	for len(s.queue) > 0 {
		pk := s.queue[0]
		r := s.link.RateBitsPerSec
		if r > 0 && s.tokens < float64(len(pk.b)) {
			if s.tokens < 0 {
				s.tokens = 0
			}
			need := float64(len(pk.b)) - s.tokens
			if moved {
				wake(s.deliverWake)
			}
			return max(time.Duration(need*8/float64(r)*float64(time.Second)), time.Microsecond)
		}
		if len(s.inFlight) >= maxInFlight {
			// The delay line is full: this packet is lost at the
			// queue's head, as on a link whose buffer overflowed.
			s.dropHead()
			s.st.dropped.Add(1)
			s.st.droppedBytes.Add(int64(len(pk.b)))
			continue
		}
		if r > 0 {
			s.tokens -= float64(len(pk.b))
		}
		s.dropHead()
		pk.due = now.Add(s.link.Delay)
		if n := len(s.inFlight); n > 0 && pk.due.Before(s.inFlight[n-1].due) {
			pk.due = s.inFlight[n-1].due // the delay shrank: keep FIFO
		}
		s.inFlight = append(s.inFlight, pk)
		moved = true
	}
	if moved {
		wake(s.deliverWake)
	}
	return 0
}

func (s *shaper) dropHead() {
	s.qbytes -= len(s.queue[0].b)
	s.queue[0] = packet{}
	s.queue = s.queue[1:]
	if len(s.queue) == 0 {
		s.queue = nil // let the backing array go
	}
}

// deliver writes packets from the delay line when they are due, holding
// some back behind the next one.
func (s *shaper) deliver() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var held *packet
	var heldUntil time.Time
	for {
		now := time.Now()
		s.mu.Lock()
		var ready []packet
		for len(s.inFlight) > 0 && !s.inFlight[0].due.After(now) {
			ready = append(ready, s.inFlight[0])
			s.inFlight[0] = packet{}
			s.inFlight = s.inFlight[1:]
		}
		if len(s.inFlight) == 0 {
			s.inFlight = nil
		}
		var next time.Time
		if len(s.inFlight) > 0 {
			next = s.inFlight[0].due
		}
		reorder := s.link.Reorder
		var draws []bool
		if reorder > 0 {
			draws = make([]bool, len(ready))
			for i := range ready {
				draws[i] = s.rng.Float64() < reorder
			}
		}
		s.mu.Unlock()

		for i, pk := range ready {
			if held == nil && draws != nil && draws[i] {
				h := pk
				held, heldUntil = &h, now.Add(defaultHold)
				s.st.reordered.Add(1)
				continue
			}
			s.write(pk)
			if held != nil {
				s.write(*held)
				held = nil
			}
		}
		if held != nil && !now.Before(heldUntil) {
			s.write(*held)
			held = nil
		}

		var wait time.Duration = -1
		if !next.IsZero() {
			wait = next.Sub(now)
		}
		if held != nil && (wait < 0 || heldUntil.Sub(now) < wait) {
			wait = heldUntil.Sub(now)
		}
		if wait < 0 {
			select {
			case <-s.deliverWake:
				continue
			case <-s.done:
				return
			}
		}
		timer.Reset(max(wait, time.Microsecond))
		select {
		case <-timer.C:
		case <-s.deliverWake:
		case <-s.done:
			return
		}
	}
}

func (s *shaper) write(pk packet) {
	if err := pk.write(pk.b); err != nil {
		s.st.writeErrors.Add(1)
		return
	}
	s.st.packets.Add(1)
	s.st.bytes.Add(int64(len(pk.b)))
}

func (s *shaper) stats() DirStats {
	s.mu.Lock()
	q := s.qbytes
	s.mu.Unlock()
	return DirStats{
		Received:      s.st.received.Load(),
		Packets:       s.st.packets.Load(),
		Bytes:         s.st.bytes.Load(),
		Lost:          s.st.lost.Load(),
		Dropped:       s.st.dropped.Load(),
		DroppedBytes:  s.st.droppedBytes.Load(),
		Reordered:     s.st.reordered.Load(),
		QueuedBytes:   int64(q),
		WriteErrors:   s.st.writeErrors.Load(),
		MaxQueueBytes: s.st.maxQueue.Load(),
	}
}
