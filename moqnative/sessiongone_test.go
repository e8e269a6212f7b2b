package moqnative

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"
	"github.com/quic-go/webtransport-go"
)

// TestCancelReadReleasesSessionGoneRead: a Read of a WebTransport stream
// that the peer reset with WT_SESSION_GONE waits, in webtransport-go, for
// its session to close the stream; CancelRead stops webtransport-go from
// tracking the stream, so that close never came and the Read waited for
// ever, past the session's and the connection's end (goleak caught it in
// ./relay: a subscription that ended stopped its open streams while their
// readers were blocked). Our CancelRead ends it.
func TestCancelReadReleasesSessionGoneRead(t *testing.T) {
	srv := startServer(t, ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := Dial(ctx, fmt.Sprintf("https://%s/app", srv.Addr()), pinned(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in, err := srv.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Conn.CloseWithError(0, "")

	// A WebTransport uni stream written by hand on the client's QUIC
	// connection (type 0x54, the session's ID: its CONNECT stream, the
	// connection's first request stream, 0), so that it can be reset
	// with WT_SESSION_GONE, which webtransport-go's API does not send.
	qs, err := d.Conn.(*wtConn).qconn.OpenUniStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hdr := quicvarint.Append(quicvarint.Append(nil, 0x54), 0)
	if _, err := qs.Write(append(hdr, 'x')); err != nil {
		t.Fatal(err)
	}
	rs, err := in.Conn.AcceptUniStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := rs.Read(buf); n != 1 || err != nil {
		t.Fatalf("first Read: %d, %v", n, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := rs.Read(buf)
		done <- err
	}()
	qs.CancelWrite(quic.StreamErrorCode(webtransport.WTSessionGoneErrorCode))
	// The Read now waits for the session to close the stream.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(stacks(), "handleSessionGoneError"); {
		if time.Now().After(deadline) {
			t.Fatal("the Read never waited for the session (WT_SESSION_GONE not seen)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rs.CancelRead(0)
	select {
	case err := <-done:
		if err == nil {
			t.Error("the Read after CancelRead returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Read is still blocked 5 s after CancelRead (it waited for a session close that no longer reaches the stream)")
	}
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
