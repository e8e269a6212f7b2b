package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
)

// Server runs a relay on a moqnative server: every connection becomes a
// session of the relay.
type Server struct {
	Relay *Relay
	srv   *moqnative.Server

	mu       sync.Mutex
	sessions map[*moqtransport.Session]struct{}
	draining bool
	wg       sync.WaitGroup
}

// NewServer returns a relay server on srv.
func NewServer(r *Relay, srv *moqnative.Server) *Server {
	return &Server{Relay: r, srv: srv, sessions: map[*moqtransport.Session]struct{}{}}
}

// Serve accepts connections until ctx ends or the moqnative server closes,
// then waits for the setups it started. Sessions go on until they end or
// Close.
func (s *Server) Serve(ctx context.Context) error {
	defer s.Relay.Close()
	defer s.wg.Wait()
	for {
		in, err := s.srv.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, moqnative.ErrServerClosed) {
				return nil
			}
			return err
		}
		s.wg.Add(1)
		go s.run(ctx, in)
	}
}

// run sets up a session; it returns once the session runs, and what its
// end calls for is done then, from the session's context: a relay holds
// thousands of sessions, and a goroutine each that only waits for its end
// costs a stack each. s.wg counts the session until then.
func (s *Server) run(ctx context.Context, in *moqnative.Incoming) {
	running := false
	defer func() {
		if !running {
			s.wg.Done()
		}
	}()
	m := s.Relay.metrics
	// The session is admitted (or refused) by its CLIENT_SETUP, inside
	// Accept, before its control loop runs; its end reaches the relay
	// however it ends.
	p := &peer{role: roleClient, authority: in.Authority, ownTracer: true}
	sess, err := moqtransport.Accept(ctx, in.Conn, in.Path, s.Relay.sessionConfig(p))
	if err != nil {
		p.close() // refused or failed before admission: nothing else to drop
		if !p.refused {
			m.connectionErrors.WithLabelValues("session_accept").Inc()
		}
		p.log.Debug("session setup failed", "remote", fmt.Sprint(in.RemoteAddr), "err", err)
		return
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		_ = sess.SendGoAway("")
	} else {
		s.sessions[sess] = struct{}{}
		s.mu.Unlock()
	}
	p.log.Info("session started", "remote", fmt.Sprint(in.RemoteAddr), "path", sess.Path(), "peer", sess.PeerImplementation())
	running = true
	context.AfterFunc(sess.Context(), func() {
		defer s.wg.Done()
		<-sess.Done()
		s.Relay.SessionEnded(sess)
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
		p.log.Info("session ended", "remote", fmt.Sprint(in.RemoteAddr), "err", sess.Err())
	})
}

// Draining reports whether Drain has begun.
func (s *Server) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// Sessions returns how many sessions are running.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Drain sends GOAWAY (with uri, empty for "reconnect here") to every
// session; each closes once its subscriptions and fetches have ended, or
// with GOAWAY_TIMEOUT when ctx ends first.
func (s *Server) Drain(ctx context.Context, uri string) {
	s.mu.Lock()
	s.draining = true
	all := make([]*moqtransport.Session, 0, len(s.sessions))
	for sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sess := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = sess.Drain(ctx, uri)
		}()
	}
	wg.Wait()
}

// Close ends every session now.
func (s *Server) Close() {
	s.mu.Lock()
	all := make([]*moqtransport.Session, 0, len(s.sessions))
	for sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		_ = sess.Close()
	}
}

// DefaultDrainTimeout is how long Drain waits by default in moq-relay.
const DefaultDrainTimeout = 10 * time.Second
