package netem

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink is a UDP target that records what reaches it.
type sink struct {
	conn *net.UDPConn
	wg   sync.WaitGroup

	mu      sync.Mutex
	packets int
	bytes   int
	first   time.Time
	last    time.Time
	seqs    []uint32    // the first 4 bytes of each packet, in arrival order
	arrived chan uint32 // every packet's sequence number, when not full
}

func newSink(t *testing.T) *sink {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{conn: conn, arrived: make(chan uint32, 1<<14)}
	s.wg.Go(func() {
		buf := make([]byte, maxDatagram)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			now := time.Now()
			var seq uint32
			if n >= 4 {
				seq = binary.BigEndian.Uint32(buf)
			}
			s.mu.Lock()
			if s.packets == 0 {
				s.first = now
			}
			s.packets++
			s.bytes += n
			s.last = now
			s.seqs = append(s.seqs, seq)
			s.mu.Unlock()
			select {
			case s.arrived <- seq:
			default:
			}
		}
	})
	t.Cleanup(func() { conn.Close(); s.wg.Wait() })
	return s
}

func (s *sink) totals() (packets, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.packets, s.bytes
}

func newProxy(t *testing.T, target net.Addr, cfg Config) *Proxy {
	t.Helper()
	p, err := New(target.String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dialProxy(t *testing.T, p *Proxy) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UDPConn, seq uint32, size int) {
	t.Helper()
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, seq)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// waitStats polls the proxy's counters until cond holds (the proxy has no
// event to wait on for a packet it dropped).
func waitStats(t *testing.T, p *Proxy, what string, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := p.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRate sends far more than the link carries at once and checks the
// bytes that got through over the window against the rate: never above it
// (plus the bucket), and not absurdly below.
func TestRate(t *testing.T) {
	const rate = 4_000_000 // 500 KB/s
	const size, n = 1000, 200
	sk := newSink(t)
	p := newProxy(t, sk.conn.LocalAddr(), Config{Up: Link{RateBitsPerSec: rate, QueueBytes: 1 << 20}})
	c := dialProxy(t, p)
	start := time.Now()
	for i := range n {
		send(t, c, uint32(i), size)
		if i%20 == 19 {
			// Let the proxy drain its socket: loss in the kernel
			// would make the test measure the wrong thing.
			waitStats(t, p, "packets read", func(s Stats) bool { return s.Up.Received == int64(i+1) })
		}
	}
	st := waitStats(t, p, "all packets forwarded", func(s Stats) bool { return s.Up.Packets+s.Up.Dropped+s.Up.Lost == n })
	if st.Up.Dropped != 0 || st.Up.Lost != 0 {
		t.Fatalf("drops on a queue large enough: %+v", st.Up)
	}
	for range n {
		select {
		case <-sk.arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("sink did not get every packet")
		}
	}
	elapsed := time.Since(start)
	_, bytes := sk.totals()
	if bytes != n*size {
		t.Fatalf("sink got %d bytes, want %d", bytes, n*size)
	}
	// elapsed includes everything since the first send, so this rate is
	// an upper bound of the real one: exceeding the link is a bug.
	got := float64(bytes-burst(Link{RateBitsPerSec: rate})) * 8 / elapsed.Seconds()
	if got > rate*1.1 {
		t.Errorf("%.0f bit/s through a %d bit/s link", got, rate)
	}
	if got < rate/10 {
		t.Errorf("%.0f bit/s through a %d bit/s link: far too slow", got, rate)
	}
	if st.Up.MaxQueueBytes < 20*size {
		t.Errorf("the queue never built up (max %d bytes): the rate was not applied", st.Up.MaxQueueBytes)
	}
	t.Logf("%.2f Mbit/s over %v", got/1e6, elapsed)
}

// TestTailDrop fills a small queue on a slow link: what does not fit is
// dropped, and what fits gets through in order.
func TestTailDrop(t *testing.T) {
	const size, n, queue = 1000, 60, 10_000
	sk := newSink(t)
	p := newProxy(t, sk.conn.LocalAddr(), Config{Up: Link{RateBitsPerSec: 80_000, QueueBytes: queue}})
	c := dialProxy(t, p)
	for i := range n {
		send(t, c, uint32(i), size)
		if i%10 == 9 { // keep the kernel's socket buffer from overflowing
			waitStats(t, p, "packets read", func(s Stats) bool { return s.Up.Received == int64(i+1) })
		}
	}
	st := waitStats(t, p, "every packet read", func(s Stats) bool { return s.Up.Received == n })
	// 80 kbit/s is 10 bytes a millisecond: while 60 packets arrive the
	// link carries a handful; the queue holds 10.
	if st.Up.Dropped < n/2 {
		t.Errorf("%d of %d packets dropped, want most: %+v", st.Up.Dropped, n, st.Up)
	}
	if st.Up.DroppedBytes != st.Up.Dropped*size {
		t.Errorf("dropped bytes %d for %d packets", st.Up.DroppedBytes, st.Up.Dropped)
	}
	if st.Up.MaxQueueBytes > queue {
		t.Errorf("queue grew to %d bytes, bound %d", st.Up.MaxQueueBytes, queue)
	}
	// The first packet goes through at once (the bucket holds it).
	select {
	case seq := <-sk.arrived:
		if seq != 0 {
			t.Errorf("first packet through is %d, want 0", seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing got through")
	}
}

// TestDelay: a packet takes at least the one-way delay, each way.
func TestDelay(t *testing.T) {
	const delay = 60 * time.Millisecond
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFromUDP(buf)
			if err != nil {
				return
			}
			echo.WriteToUDP(buf[:n], from)
		}
	})
	defer wg.Wait()
	defer echo.Close()
	p := newProxy(t, echo.LocalAddr(), Config{Up: Link{Delay: delay}, Down: Link{Delay: delay}})
	c := dialProxy(t, p)
	for i := range 3 {
		start := time.Now()
		send(t, c, uint32(i), 100)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2048)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(start); rtt < 2*delay {
			t.Errorf("round trip %v through two %v delays", rtt, delay)
		}
	}
	// A delay changed at runtime applies to later packets.
	p.SetUp(Link{})
	p.SetDown(Link{Delay: 3 * delay})
	start := time.Now()
	send(t, c, 9, 100)
	buf := make([]byte, 2048)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 3*delay {
		t.Errorf("round trip %v after SetDown(%v)", rtt, 3*delay)
	}
	// The counters move just after the write the client saw.
	st := waitStats(t, p, "four packets each way", func(s Stats) bool { return s.Down.Packets == 4 })
	if st.Up.Packets != 4 || st.Clients != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestLoss: with a fixed seed the loss ratio is close to the one asked
// for, and what is not lost arrives.
func TestLoss(t *testing.T) {
	const n, loss = 2000, 0.2
	sk := newSink(t)
	p := newProxy(t, sk.conn.LocalAddr(), Config{Up: Link{Loss: loss, Seed: 7}})
	c := dialProxy(t, p)
	for i := range n {
		send(t, c, uint32(i), 64)
		if i%100 == 99 {
			waitStats(t, p, "packets read", func(s Stats) bool { return s.Up.Received == int64(i+1) })
		}
	}
	st := waitStats(t, p, "every packet handled", func(s Stats) bool { return s.Up.Packets+s.Up.Lost == n })
	if r := float64(st.Up.Lost) / n; r < loss-0.04 || r > loss+0.04 {
		t.Errorf("lost %.3f of the packets, want about %.2f", r, loss)
	}
	for range st.Up.Packets {
		select {
		case <-sk.arrived:
		case <-time.After(5 * time.Second):
			t.Fatalf("sink got fewer than the %d packets forwarded", st.Up.Packets)
		}
	}
}

// TestReorder: some packets arrive after the one sent after them; none is
// lost.
func TestReorder(t *testing.T) {
	const n = 400
	sk := newSink(t)
	p := newProxy(t, sk.conn.LocalAddr(), Config{Up: Link{Reorder: 0.2, Seed: 3, Delay: time.Millisecond}})
	c := dialProxy(t, p)
	for i := range n {
		send(t, c, uint32(i), 64)
		if i%50 == 49 {
			waitStats(t, p, "packets read", func(s Stats) bool { return s.Up.Received == int64(i+1) })
		}
	}
	for range n {
		select {
		case <-sk.arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("a packet was lost")
		}
	}
	sk.mu.Lock()
	inversions := 0
	for i := 1; i < len(sk.seqs); i++ {
		if sk.seqs[i] < sk.seqs[i-1] {
			inversions++
		}
	}
	sk.mu.Unlock()
	st := p.Stats()
	if st.Up.Reordered == 0 || inversions == 0 {
		t.Errorf("no reordering: %d held back, %d inversions", st.Up.Reordered, inversions)
	}
	if st.Up.Reordered > n/2 {
		t.Errorf("%d of %d held back at 20%%", st.Up.Reordered, n)
	}
}

// TestCloseEndsEverything: Close with clients, queued and delayed packets
// ends every goroutine (goleak checks it in TestMain, this test checks it
// right away) and the address stops answering.
func TestCloseEndsEverything(t *testing.T) {
	sk := newSink(t)
	p, err := New(sk.conn.LocalAddr().String(), Config{
		Up:   Link{RateBitsPerSec: 100_000, Delay: time.Second},
		Down: Link{Delay: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c := dialProxy(t, p)
		for i := range 20 {
			send(t, c, uint32(i), 500)
		}
	}
	waitStats(t, p, "three clients", func(s Stats) bool { return s.Clients == 3 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Only the sink's reader may remain.
	if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/moqgo/moq/internal/netem.newSink.func1")); err != nil {
		t.Errorf("goroutines left after Close: %v", err)
	}
	if _, err := p.ln.WriteToUDP([]byte("x"), sk.conn.LocalAddr().(*net.UDPAddr)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listening socket still open: %v", err)
	}
}

// TestSetAtRuntime: packets queued behind a crawling link leave as soon as
// the link is opened up.
func TestSetAtRuntime(t *testing.T) {
	const n, size = 20, 1000
	sk := newSink(t)
	p := newProxy(t, sk.conn.LocalAddr(), Config{Up: Link{RateBitsPerSec: 8000, QueueBytes: 100_000}}) // 1 KB/s
	c := dialProxy(t, p)
	for i := range n {
		send(t, c, uint32(i), size)
	}
	st := waitStats(t, p, "a queue", func(s Stats) bool { return s.Up.Received == n })
	if st.Up.QueuedBytes < (n-4)*size {
		t.Fatalf("queue %d bytes: the crawling link let too much through", st.Up.QueuedBytes)
	}
	p.SetUp(Link{})
	// At 1 KB/s the rest would take over 15 s; opened up, it is at once.
	for i := range n {
		select {
		case <-sk.arrived:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d packets through after SetUp: %+v", i, n, p.Stats().Up)
		}
	}
	if st := p.Stats(); st.Up.Dropped != 0 || st.Up.QueuedBytes != 0 {
		t.Errorf("after SetUp: %+v", st.Up)
	}
}

// TestIPv6: an IPv6 target gets a proxy on [::1].
func TestIPv6(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	}
	defer conn.Close()
	p := newProxy(t, conn.LocalAddr(), Config{})
	if !p.Addr().IP.Equal(net.IPv6loopback) {
		t.Fatalf("proxy on %v for an IPv6 target", p.Addr())
	}
	c := dialProxy(t, p)
	send(t, c, 1, 10)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, from, err := conn.ReadFromUDP(buf)
	if err != nil || n != 10 {
		t.Fatalf("target read %d bytes: %v", n, err)
	}
	if !from.IP.Equal(net.IPv6loopback) {
		t.Errorf("target sees the client as %v", from)
	}
}

func TestNewErrors(t *testing.T) {
	for _, target := range []string{"", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:x"} {
		if p, err := New(target, Config{}); err == nil {
			p.Close()
			t.Errorf("New(%q) accepted", target)
		}
	}
}
