package moqtransport

// BenchmarkServeObjects measures the per-object write path of a served
// subscription, alone: Track write -> TrackReader -> dispatcher -> subgroup
// writer -> SendStream.Write, for N subscriptions of one track, over an
// in-memory transport whose streams take every write at once (no QUIC, so
// the figures are this package's own cost). One op is one object written to
// the track and to every subscriber's stream. allocs/op and B/op are
// process-wide per object (all subscribers together); writes/obj is
// SendStream.Write calls per object per subscriber.
//
// Groups have serveBenchGroupObjects objects
// per group, one subgroup (one stream per group and subscriber); the
// benchmark waits for every stream of a group to be closed (FIN) before the
// next group, so the backlog never grows. The streams implement
// SetWriteDeadline as quic-go's do, and the session has a default delivery
// timeout as a relay has, so the deadline bookkeeping is on the path.
//
// Not run by plain `go test` (no -bench).

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

const serveBenchGroupObjects = 30

// sinkConn is a Conn whose unidirectional streams discard what is written.
type sinkConn struct {
	ctx    context.Context
	writes atomic.Int64
	bytes  atomic.Int64
	closes atomic.Int64
	closed chan struct{} // one send per stream closed
	// With want set, the write that makes writes reach it sends on
	// reached (paced benchmarks: every subscriber wrote the object).
	want    atomic.Int64
	reached chan struct{}
}

var errSinkConn = errors.New("sinkConn: not supported")

func (c *sinkConn) OpenStreamSync(context.Context) (Stream, error) { return nil, errSinkConn }
func (c *sinkConn) AcceptStream(context.Context) (Stream, error)   { return nil, errSinkConn }
func (c *sinkConn) OpenUniStreamSync(context.Context) (SendStream, error) {
	return &sinkStream{c: c}, nil
}
func (c *sinkConn) AcceptUniStream(ctx context.Context) (ReceiveStream, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (c *sinkConn) SendDatagram([]byte) error { return errSinkConn }
func (c *sinkConn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (c *sinkConn) CloseWithError(uint64, string) error { return nil }
func (c *sinkConn) Context() context.Context            { return c.ctx }
func (c *sinkConn) Protocol() Protocol                  { return ProtocolQUIC }

type sinkStream struct{ c *sinkConn }

func (s *sinkStream) Write(b []byte) (int, error) {
	if n := s.c.writes.Add(1); n == s.c.want.Load() {
		s.c.reached <- struct{}{}
	}
	s.c.bytes.Add(int64(len(b)))
	return len(b), nil
}
func (s *sinkStream) Close() error {
	s.c.closes.Add(1)
	s.c.closed <- struct{}{}
	return nil
}
func (s *sinkStream) CancelWrite(uint64)               {}
func (s *sinkStream) SetPriority(uint8)                {}
func (s *sinkStream) SetWriteDeadline(time.Time) error { return nil }

func BenchmarkServeObjects(b *testing.B) {
	for _, size := range []int{1200, 16 << 10} {
		for _, n := range []int{1, 16} {
			b.Run(fmt.Sprintf("size=%d/subs=%d", size, n), func(b *testing.B) {
				benchServeObjects(b, size, n, serveBenchGroupObjects, false, nil)
			})
		}
	}
}

// BenchmarkServeObjectsObserved is BenchmarkServeObjects' 1200-byte cases
// with Config.ObserveDelivery set, as a relay sets it to fill its
// delivery-latency histogram: compare its allocs/op and ns/op with the
// same cases there (without it).
func BenchmarkServeObjectsObserved(b *testing.B) {
	var n, sum atomic.Int64
	observe := func(wait time.Duration) {
		n.Add(1)
		sum.Add(int64(wait))
	}
	for _, subs := range []int{1, 16} {
		b.Run(fmt.Sprintf("size=1200/subs=%d", subs), func(b *testing.B) {
			n.Store(0)
			benchServeObjects(b, 1200, subs, serveBenchGroupObjects, false, observe)
			if n.Load() < int64(b.N*subs) {
				b.Fatalf("ObserveDelivery saw %d objects, %d were written", n.Load(), b.N*subs)
			}
		})
	}
}

// BenchmarkServeFanout is BenchmarkServeObjects for a relay's fan-out: 1000
// subscribers of one track, each in a session of its own, 4 KiB objects.
// goroutines/sub is the goroutines each subscription holds with a stream
// open and nothing to send (see idleGoroutines).
//
// mutex-ns/op is the time goroutines spent waiting for a sync.Mutex or
// RWMutex (runtime/metrics /sync/mutex/wait/total), per object, all
// subscribers together: the lock convoy of a thousand dispatchers on the
// one track. The paced case writes one object at a time and waits until
// every subscriber has written it, as a live track at a low rate is
// served (every object wakes every dispatcher): its ns/op is the time from
// a write to the last subscriber's stream write.
func BenchmarkServeFanout(b *testing.B) {
	b.Run("size=4096/sessions=1000", func(b *testing.B) {
		benchServeObjects(b, 4096, 1000, serveBenchGroupObjects, true, nil)
	})
	b.Run("size=4096/sessions=1000/paced", func(b *testing.B) {
		benchServe(b, 4096, 1000, serveBenchGroupObjects, true, nil, true, 0)
	})
}

// mutexWait reads the process's total time waiting on sync mutexes.
func mutexWait() time.Duration {
	s := []metrics.Sample{{Name: "/sync/mutex/wait/total:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

// BenchmarkServeStreams is BenchmarkServeObjects with one object per group:
// every object opens, writes and closes a stream per subscriber, so
// allocs/op over subs is what a subgroup stream costs (its writer's state,
// the open, the scheduler, the expire timer) on top of one object.
func BenchmarkServeStreams(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("size=1200/subs=%d", n), func(b *testing.B) {
			benchServeObjects(b, 1200, n, 1, false, nil)
		})
	}
}

// BenchmarkServeObjectsCoalesce is BenchmarkServeObjects' 1200-byte case
// for 16 subscribers with Config.WriteCoalesce at moq-relay's default
// (8 ms): every object goes through hold's checks (a fanned-out track,
// small objects, well within their delivery timeout) and is let go by the
// burst rule, as the objects come back to back. Compare its ns/op with
// the same case there: what hold's checks cost on the write path.
func BenchmarkServeObjectsCoalesce(b *testing.B) {
	b.Run("size=1200/subs=16", func(b *testing.B) {
		benchServe(b, 1200, 16, serveBenchGroupObjects, false, nil, false, 8*time.Millisecond)
	})
}

func benchServeObjects(b *testing.B, size, subs, groupObjects int, sessionEach bool, observe func(time.Duration)) {
	benchServe(b, size, subs, groupObjects, sessionEach, observe, false, 0)
}

func benchServe(b *testing.B, size, subs, groupObjects int, sessionEach bool, observe func(time.Duration), paced bool, coalesce time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := &sinkConn{ctx: ctx, closed: make(chan struct{}, subs), reached: make(chan struct{}, 1)}
	g0 := runtime.NumGoroutine()
	var s *Session
	newSess := func() {
		s = newSession(conn, &Config{DefaultDeliveryTimeout: 5 * time.Second, ObserveDelivery: observe, WriteCoalesce: coalesce}, false)
		b.Cleanup(s.cancel)
	}
	newSess()
	name := wire.FullTrackName{Namespace: wire.Namespace{"bench"}, Name: "serve"}
	track := NewTrack(name, TrackConfig{})
	var done []chan struct{}
	for i := range subs {
		if sessionEach && i > 0 {
			newSess()
		}
		sv := s.newServed(&wire.Subscribe{RequestID: uint64(2 * i), Namespace: name.Namespace, Name: name.Name,
			SubscriberPriority: DefaultPriority, GroupOrder: wire.GroupOrderAscending, Forward: true,
			Filter: wire.Filter{Type: wire.FilterNextGroupStart}})
		sv.reader = track.NewReader(ReaderFilter{})
		sv.track = track
		ch := make(chan struct{})
		done = append(done, ch)
		go func() {
			defer close(ch)
			sv.deliver()
			sv.wg.Wait()
		}()
	}
	payload := make([]byte, size)
	timeout := time.NewTimer(time.Hour)
	timeout.Stop()
	group := func(g uint64, objects int) {
		w, err := track.OpenSubgroup(g, 0, SubgroupOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for id := range objects {
			if paced {
				conn.want.Store(conn.writes.Load() + int64(subs))
			}
			if err := w.WriteObject(uint64(id), payload, nil); err != nil {
				b.Fatal(err)
			}
			if paced {
				select {
				case <-conn.reached:
				case <-time.After(20 * time.Second):
					b.Fatalf("group %d object %d: not written to every subscriber", g, id)
				}
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		// One timer for the whole wait: a timer per stream would count
		// in allocs/op.
		timeout.Reset(20 * time.Second)
		for range subs {
			select {
			case <-conn.closed:
			case <-timeout.C:
				b.Fatalf("group %d: a stream was not closed", g)
			}
		}
		timeout.Stop()
	}
	group(0, serveBenchGroupObjects) // warm-up
	// What an idle subscription holds: one object of a new group written
	// to every subscriber, its stream open, nothing more to send.
	idle := idleGoroutines(b, track, conn, subs, g0)
	w0 := conn.writes.Load()
	b.ReportAllocs()
	b.SetBytes(int64(size * subs))
	m0 := mutexWait()
	b.ResetTimer()
	g := uint64(2)
	for left := b.N; left > 0; left -= groupObjects {
		group(g, min(left, groupObjects))
		g++
	}
	b.StopTimer()
	b.ReportMetric(float64(mutexWait()-m0)/float64(b.N), "mutex-ns/op")
	b.ReportMetric(float64(conn.writes.Load()-w0)/float64(b.N*subs), "writes/obj")
	b.ReportMetric(float64(idle-g0)/float64(subs), "goroutines/sub")
	track.Close(nil)
	for _, ch := range done {
		<-ch
	}
}

// idleGoroutines writes one object of group 1 to track, waits until every
// one of subs subscribers has written it, then counts the goroutines once
// the idle writers have had time to end (up to 3 s: sched.go's writerIdle
// sweeps), and ends the group. g0+subs, one dispatcher each, is the least
// it can be.
func idleGoroutines(b *testing.B, track *Track, conn *sinkConn, subs, g0 int) int {
	w0 := conn.writes.Load()
	w, err := track.OpenSubgroup(1, 0, SubgroupOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.WriteObject(0, []byte("idle"), nil); err != nil {
		b.Fatal(err)
	}
	for conn.writes.Load()-w0 < int64(subs) {
		time.Sleep(time.Millisecond)
	}
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(3 * time.Second); n > g0+subs && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	for range subs {
		<-conn.closed
	}
	return n
}
