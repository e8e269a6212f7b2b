package moqnative

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// TestAcceptBurst: a burst of concurrent dials, several times quic-go's
// accept queue of 32 handshaken connections, all become connections
// Accept returns; none is refused (CONNECTION_REFUSED from quic-go, or
// "server busy" from MaxPending) while the application accepts promptly.
// One P (GOMAXPROCS 1) makes handshakes complete in bunches while the
// server's accepting goroutines wait to be scheduled, as on a relay whose
// CPU is short: with one accepting goroutine, three runs of four (without
// -race) lost dials this way, after 35 to 63 were accepted. The test takes
// about a second; its bounds are generous for a loaded machine (under
// -race, on one P, a handshake can wait seconds for the CPU).
func TestAcceptBurst(t *testing.T) {
	const n = 150
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	srv := startServer(t, ServerConfig{})

	var (
		mu       sync.Mutex
		ins      []*Incoming
		dialed   []*Dialed
		closeErr error // the first client connection closed by the server
	)
	event := make(chan struct{}, 1) // an accept or a close
	notify := func() {
		select {
		case event <- struct{}{}:
		default:
		}
	}
	actx, stopAccept := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			in, err := srv.Accept(actx)
			if err != nil {
				return
			}
			mu.Lock()
			ins = append(ins, in)
			mu.Unlock()
			notify()
		}
	})
	defer func() {
		stopAccept()
		wg.Wait()
		for _, in := range ins {
			in.Conn.CloseWithError(0, "")
		}
	}()

	// One client socket for every dial keeps the client side cheap.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	defer udp.Close()
	defer tr.Close()
	cfg := pinned(srv)
	cfg.Transport = tr
	cfg.QUICConfig = &quic.Config{HandshakeIdleTimeout: 30 * time.Second}
	var dials sync.WaitGroup
	for range n {
		dials.Go(func() {
			d, err := Dial(ctx, "moqt://"+srv.Addr().String()+"/", cfg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if closeErr == nil {
					closeErr = err
				}
				notify()
				return
			}
			dialed = append(dialed, d)
			context.AfterFunc(d.Conn.Context(), func() {
				mu.Lock()
				if closeErr == nil && ctx.Err() == nil {
					closeErr = context.Cause(d.Conn.Context())
				}
				mu.Unlock()
				notify()
			})
		})
	}
	defer func() {
		dials.Wait()
		for _, d := range dialed {
			d.Close()
		}
	}()
	for {
		mu.Lock()
		accepted, cerr := len(ins), closeErr
		mu.Unlock()
		if cerr != nil {
			t.Fatalf("%d of %d dials accepted, then a connection was closed: %v", accepted, n, cerr)
		}
		if accepted == n {
			return
		}
		select {
		case <-event:
		case <-ctx.Done():
			t.Fatalf("%d of %d dials accepted within the test's time", accepted, n)
		}
	}
}
