package moqtransport

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// UniStreamLimitConn is a Conn that reports how many unidirectional
// streams its peer may have open at once on it: the QUIC limit this
// endpoint grants (MAX_STREAMS), which QUIC keeps at that number as
// streams end. moqnative's connections implement it. A session uses it to
// tell a publisher that cannot open a fetch's stream yet (every stream it
// may open is open) from one that does not (see
// FetchOptions.StreamTimeout). 0 means not known.
type UniStreamLimitConn interface {
	Conn
	MaxIncomingUniStreams() int64
}

// uniCredit follows the peer's unidirectional streams: how many of them
// the session is reading, against the limit the Conn reports, and since
// when the peer has had room to open another. It is an estimate from our
// side: a stream counts from its accept until the session has finished
// reading it (QUIC frees its credit when it has the stream's end), and
// streams quic-go holds before they are accepted are not counted (the
// session accepts every stream at once).
type uniCredit struct {
	limit atomic.Int64 // 0: not known
	// mu makes a stream's count and the time room began one change:
	// read apart, a roomSince between a close's two steps saw room with
	// the time room had begun before, and a fetch waiting for a stream
	// it had had no room for was cancelled as if it had.
	mu    sync.Mutex
	open  int64
	since time.Time // when open last fell below limit

	// watchHook, when set (by tests), is told each time a fetch's
	// stream is found late, whether the peer had room to open it.
	watchHook atomic.Pointer[func(room bool)]
}

// start notes the Conn's limit; the peer has had room since now.
func (u *uniCredit) start(c Conn) {
	if l, ok := c.(UniStreamLimitConn); ok {
		u.limit.Store(l.MaxIncomingUniStreams())
	}
	u.mu.Lock()
	u.since = time.Now()
	u.mu.Unlock()
}

func (u *uniCredit) opened() {
	u.mu.Lock()
	u.open++
	u.mu.Unlock()
}

func (u *uniCredit) closed() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.open--; u.open == u.limit.Load()-1 {
		u.since = time.Now()
	}
}

// roomSince reports whether the peer may open another unidirectional
// stream now and, if so, since when it has been able to. With no limit
// known it always may, since the session started.
func (u *uniCredit) roomSince() (time.Time, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if l := u.limit.Load(); l > 0 && u.open >= l {
		return time.Time{}, false
	}
	return u.since, true
}

// ErrFetchStreamTimeout is what ReadObject returns for a fetch whose
// publisher sent FETCH_OK but did not open its stream within
// FetchOptions.StreamTimeout while it could have: the fetch was cancelled
// (FETCH_CANCEL).
var ErrFetchStreamTimeout = errors.New("moqt: the publisher answered FETCH_OK but did not open the fetch stream in time")

// watchStream bounds the wait for f's stream after FETCH_OK to d of the
// time the peer could have opened it (see FetchOptions.StreamTimeout): a
// timer, re-armed while the peer had no room, stopped when the stream
// comes or the fetch ends without it (abort).
func (f *Fetch) watchStream(d time.Duration) {
	okAt := time.Now()
	var check func()
	check = func() {
		select {
		case <-f.stream: // came, or the fetch ended without it
			return
		default:
		}
		wait := d // no room: look again later
		since, room := f.s.uniRoom.roomSince()
		if room {
			wait = d - time.Since(later(okAt, since))
		}
		if h := f.s.uniRoom.watchHook.Load(); h != nil {
			(*h)(room)
		}
		if wait <= 0 {
			f.streamTimedOut(d)
			return
		}
		f.mu.Lock()
		if f.watch != nil {
			f.watch.Reset(wait)
		}
		f.mu.Unlock()
	}
	f.mu.Lock()
	f.watch = time.AfterFunc(d, check)
	f.mu.Unlock()
}

// stopWatch stops the timer of watchStream, if any.
func (f *Fetch) stopWatch() {
	f.mu.Lock()
	if f.watch != nil {
		f.watch.Stop()
		f.watch = nil
	}
	f.mu.Unlock()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// streamTimedOut ends a fetch whose stream did not come (watchStream):
// FETCH_CANCEL, and ReadObject returns ErrFetchStreamTimeout. A stream
// that comes later is refused with STOP_SENDING.
func (f *Fetch) streamTimedOut(d time.Duration) {
	// abort first: a stream that came since check won streamOnce, and
	// the fetch is then the stream's to end, not cancelled.
	if !f.abort(ErrFetchStreamTimeout) {
		return // ended meanwhile: its stream came, or Cancel, or the session's end
	}
	s := f.s
	s.mu.Lock()
	_, open := s.fetches[f.id]
	delete(s.fetches, f.id)
	s.mu.Unlock()
	if !open {
		return // ended meanwhile: the session's end, or a malformed track
	}
	s.log.Warn("the publisher did not open a fetch stream after FETCH_OK; cancelling the fetch", "track", f.name.String(), "request", f.id, "waited", d)
	s.sendOrFail(&wire.FetchCancel{RequestID: f.id})
}
