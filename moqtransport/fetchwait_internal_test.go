package moqtransport

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestUniCreditRoomSince: once the peer has room for another stream,
// roomSince says since when, never an older time. closed lowered the open
// count and then stored the time in a second step: a roomSince between the
// two saw room, with the time room last began before, and a fetch whose
// publisher had had no room for StreamTimeout was cancelled as if it had
// had room all along.
func TestUniCreditRoomSince(t *testing.T) {
	var u uniCredit
	u.limit.Store(1)
	u.since = time.Now().Add(-time.Hour)
	var before atomic.Int64 // when the stream being closed was still open
	stop := make(chan struct{})
	defer close(stop)
	bad := make(chan time.Time, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			// before first: once it is set, the stream is open, and room
			// comes only with a close made after it.
			b := before.Load()
			if since, room := u.roomSince(); room {
				if b != 0 && since.UnixNano() < b {
					select {
					case bad <- since:
					default:
					}
					return
				}
			}
		}
	}()
	deadline := time.Now().Add(time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		u.opened()
		before.Store(time.Now().UnixNano())
		u.closed()
		before.Store(0)
		select {
		case since := <-bad:
			t.Fatalf("round %d: roomSince reported room since %v, before the stream that made room was closed", i, since)
		default:
		}
	}
}
