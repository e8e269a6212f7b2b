package relay

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
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
		go func() {
			defer s.wg.Done()
			s.run(ctx, in)
		}()
	}
}

func (s *Server) run(ctx context.Context, in *moqnative.Incoming) {
	m := &s.Relay.metrics
	sess, err := moqtransport.Accept(ctx, in.Conn, in.Path, s.Relay.SessionConfig())
	if err != nil {
		m.countError("moq_relay_connection_errors_total", "stage", "session_accept")
		s.Relay.log.Debug("session setup failed", "remote", in.RemoteAddr, "err", err)
		return
	}
	if err := s.Relay.Admit(sess); err != nil {
		m.countError("moq_relay_connection_errors_total", "stage", "scope_resolve")
		s.Relay.log.Info("session refused", "remote", in.RemoteAddr, "err", err)
		return
	}
	if n := m.ActiveConnections.Add(1); s.Relay.cfg.MaxSessions > 0 && n > int64(s.Relay.cfg.MaxSessions) {
		m.ActiveConnections.Add(-1)
		m.countError("moq_relay_connection_errors_total", "stage", "limit")
		s.Relay.log.Warn("session refused: the relay is at its session limit", "remote", in.RemoteAddr, "limit", s.Relay.cfg.MaxSessions)
		sess.CloseWithError(wire.InternalError, "relay full: try another relay or later")
		return
	}
	m.ConnectionsTotal.Add(1)
	defer func() {
		m.ActiveConnections.Add(-1)
		m.ConnectionsClosedTotal.Add(1)
	}()
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		_ = sess.SendGoAway("")
	} else {
		s.sessions[sess] = struct{}{}
		s.mu.Unlock()
	}
	s.Relay.log.Info("session started", "remote", in.RemoteAddr, "path", sess.Path(), "peer", sess.PeerImplementation())
	<-sess.Done()
	s.Relay.SessionEnded(sess)
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	s.Relay.log.Info("session ended", "remote", in.RemoteAddr, "err", sess.Err())
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
