// Package moqtest holds what tests share about MoQT endpoints: a server
// on loopback that serves sessions with a Handler (a stand-in relay for
// clients under test), goroutine counts, and a connection that withholds
// its streams (a hostile publisher).
package moqtest

import (
	"context"
	"encoding/hex"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
)

// Server is a loopback moqnative.Server whose sessions Serve runs.
type Server struct {
	*moqnative.Server
	// URL is the server's raw QUIC URL with the root path:
	// moqt://127.0.0.1:port/.
	URL string
	// Fingerprint is the hex SHA-256 of its generated certificate, for a
	// client's --fingerprint.
	Fingerprint string
}

// Serve listens on 127.0.0.1 with cfg (its zero value generates a
// certificate) and runs a MoQT session with h on every connection, raw
// QUIC or WebTransport, until the test ends; then it closes the sessions
// and the server and waits for every goroutine it started.
func Serve(t testing.TB, cfg moqnative.ServerConfig, h moqtransport.Handler) *Server {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			in, err := srv.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				s, err := moqtransport.Accept(ctx, in.Conn, in.Path, &moqtransport.Config{Handler: h})
				if err != nil {
					return
				}
				select {
				case <-s.Done():
				case <-ctx.Done():
				}
				_ = s.Close()
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		wg.Wait()
	})
	fp, _ := srv.Fingerprint()
	return &Server{Server: srv, URL: "moqt://" + srv.Addr().String() + "/", Fingerprint: hex.EncodeToString(fp[:])}
}

// Stacks returns the stacks of all goroutines (runtime.Stack), whole.
func Stacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Goroutines counts the goroutines that functions of the packages named by
// prefixes started (runtime.Stack's "created by"), by the innermost
// function in each one's stack of the first of those packages it shows:
// for example
// Goroutines("github.com/moqgo/moq/moqtransport.") counts a session's
// control reader as "(*Session).readControl". A test that bounds the
// goroutines a component keeps per client compares two counts.
func Goroutines(prefixes ...string) map[string]int {
	buf := Stacks()
	of := func(fn string) string {
		for _, p := range prefixes {
			if strings.HasPrefix(fn, p) {
				return p
			}
		}
		return ""
	}
	counts := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		created := ""
		for _, l := range lines {
			if c, ok := strings.CutPrefix(l, "created by "); ok {
				created = c
			}
		}
		p := of(created)
		if p == "" {
			continue
		}
		top := strings.TrimPrefix(created, p)
	frames:
		for _, q := range prefixes { // the first package listed that the stack shows
			for _, l := range lines[1:] {
				if strings.HasPrefix(l, q) {
					if i := strings.LastIndexByte(l, '('); i > 0 {
						l = l[:i]
					}
					top = strings.TrimPrefix(l, q)
					break frames
				}
			}
		}
		counts[top]++
	}
	return counts
}

// GoroutinesAdded is how many goroutines after has more than before, in
// total over their owners (an owner only one of them has counts too).
func GoroutinesAdded(before, after map[string]int) int {
	n := 0
	for _, c := range after {
		n += c
	}
	for _, c := range before {
		n -= c
	}
	return n
}

// WithheldStreams is a MoQT connection that never opens a unidirectional
// stream: a hostile publisher's, whose session answers a FETCH with
// FETCH_OK and then waits for a fetch stream that never comes, until the
// FETCH is cancelled or the session ends. Each open given up is reported
// on GaveUp (which holds 16 reports; more are dropped).
type WithheldStreams struct {
	moqtransport.Conn
	GaveUp chan struct{}
}

// WithholdStreams returns c, withholding its unidirectional streams.
func WithholdStreams(c moqtransport.Conn) *WithheldStreams {
	return &WithheldStreams{Conn: c, GaveUp: make(chan struct{}, 16)}
}

// OpenUniStreamSync waits until ctx ends, reports it on GaveUp, and
// returns ctx's error.
func (c *WithheldStreams) OpenUniStreamSync(ctx context.Context) (moqtransport.SendStream, error) {
	<-ctx.Done()
	select {
	case c.GaveUp <- struct{}{}:
	default: // 16 unread reports: the session must not wait on the test
	}
	return nil, ctx.Err()
}
