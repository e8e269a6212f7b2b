package moqtransport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// recordConn is a Conn whose one unidirectional stream records its
// writes; the first write waits for release.
type recordConn struct {
	sinkConn
	str *recordStream
}

func (c *recordConn) OpenUniStreamSync(context.Context) (SendStream, error) { return c.str, nil }

type recordStream struct {
	entered chan struct{} // closed when the first write starts
	release chan struct{} // the first write returns once closed
	closed  chan struct{}
	mu      sync.Mutex
	writes  [][]byte
}

func (s *recordStream) Write(b []byte) (int, error) {
	s.mu.Lock()
	first := len(s.writes) == 0
	s.writes = append(s.writes, bytes.Clone(b))
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.release
	}
	return len(b), nil
}
func (s *recordStream) Close() error                     { close(s.closed); return nil }
func (s *recordStream) CancelWrite(uint64)               {}
func (s *recordStream) SetPriority(uint8)                {}
func (s *recordStream) SetWriteDeadline(time.Time) error { return nil }

// TestWriterCoalesces: objects queued while the writer is blocked go out
// in one write after it, and the stream's bytes are the subgroup's header
// and objects, in order.
func TestWriterCoalesces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	str := &recordStream{entered: make(chan struct{}), release: make(chan struct{}), closed: make(chan struct{})}
	conn := &recordConn{sinkConn: sinkConn{ctx: ctx}, str: str}
	s := newSession(conn, &Config{DefaultDeliveryTimeout: 10 * time.Second}, false)
	defer s.cancel()
	name := wire.FullTrackName{Namespace: wire.Namespace{"t"}, Name: "coalesce"}
	track := NewTrack(name, TrackConfig{})
	sv := s.newServed(&wire.Subscribe{RequestID: 0, Namespace: name.Namespace, Name: name.Name, Forward: true,
		Filter: wire.Filter{Type: wire.FilterNextGroupStart}})
	sv.reader, sv.track = track.NewReader(ReaderFilter{}), track
	done := make(chan struct{})
	go func() {
		defer close(done)
		sv.deliver()
		sv.wg.Wait()
	}()
	w, err := track.OpenSubgroup(0, 0, SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{[]byte("zero"), bytes.Repeat([]byte{1}, 1000), bytes.Repeat([]byte{2}, 3000), nil}
	if err := w.WriteObject(0, payloads[0], nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-str.entered:
	case <-ctx.Done():
		t.Fatal("no write")
	}
	var queued int64
	for id, p := range payloads[1:] {
		if err := w.WriteObject(uint64(id+1), p, nil); err != nil {
			t.Fatal(err)
		}
		queued += int64(len(p)) + CacheEntryOverhead
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The dispatcher queues the three objects behind the blocked write.
	for sv.backlog.Load() != queued {
		select {
		case <-ctx.Done():
			t.Fatalf("backlog %d, want %d", sv.backlog.Load(), queued)
		case <-time.After(time.Millisecond):
		}
	}
	close(str.release)
	select {
	case <-str.closed:
	case <-ctx.Done():
		t.Fatal("stream not closed")
	}
	track.Close(nil)
	<-done
	str.mu.Lock()
	writes := str.writes
	str.mu.Unlock()
	if len(writes) != 2 {
		t.Fatalf("%d writes, want 2 (the first object, then the three queued behind it)", len(writes))
	}
	r, err := wire.NewStreamReader(bytes.NewReader(bytes.Join(writes, nil)), wire.StreamReaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	for id, p := range payloads {
		o, err := r.ReadObject()
		if err != nil {
			t.Fatalf("object %d: %v", id, err)
		}
		if o.ID != uint64(id) || !bytes.Equal(o.Payload, p) {
			t.Fatalf("object %d: got ID %d, %d bytes", id, o.ID, len(o.Payload))
		}
	}
	if _, err := r.ReadObject(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last object: %v, want io.EOF", err)
	}
}

// TestWriteCoalesceHolds: with Config.WriteCoalesce, a writer holds a small
// object of a stream whose objects come close together until the objects
// behind it fill a write or the subgroup ends (with a window of an hour,
// only those end the hold), and then writes them together; with a short
// window, a held object goes out without more objects or the subgroup's
// end.
func TestWriteCoalesceHolds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		window   time.Duration
		payloads [][]byte // the first is written alone: the stream has no pace yet
		close    bool     // end the subgroup before waiting for the second write
	}{
		{"subgroup end", time.Hour, [][]byte{[]byte("a"), []byte("b"), bytes.Repeat([]byte{1}, 1000), []byte("d")}, true},
		{"full write", time.Hour, [][]byte{[]byte("a"), bytes.Repeat([]byte{1}, 3000), bytes.Repeat([]byte{2}, 3000), bytes.Repeat([]byte{3}, 3000)}, false},
		{"window passes", 100 * time.Millisecond, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			release := make(chan struct{})
			close(release)
			str := &recordStream{entered: make(chan struct{}), release: release, closed: make(chan struct{})}
			conn := &recordConn{sinkConn: sinkConn{ctx: ctx}, str: str}
			s := newSession(conn, &Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: tc.window}, false)
			defer s.cancel()
			name := wire.FullTrackName{Namespace: wire.Namespace{"t"}, Name: "hold"}
			track := NewTrack(name, TrackConfig{})
			sv := s.newServed(&wire.Subscribe{RequestID: 0, Namespace: name.Namespace, Name: name.Name, Forward: true,
				Filter: wire.Filter{Type: wire.FilterNextGroupStart}})
			sv.reader, sv.track = track.NewReader(ReaderFilter{}), track
			done := make(chan struct{})
			go func() {
				defer close(done)
				sv.deliver()
				sv.wg.Wait()
			}()
			w, err := track.OpenSubgroup(0, 0, SubgroupOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for id, p := range tc.payloads {
				if err := w.WriteObject(uint64(id), p, nil); err != nil {
					t.Fatal(err)
				}
				if id == 0 {
					select {
					case <-str.entered:
					case <-ctx.Done():
						t.Fatal("the first object was not written")
					}
				}
				if id == 1 && tc.window == time.Hour {
					waitHolding(t, ctx, s, sv)
				}
			}
			if tc.close {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			// Every object arrives, in order, without the subgroup's end
			// unless the case closes it.
			var writes [][]byte
			for {
				str.mu.Lock()
				writes = slices.Clone(str.writes)
				str.mu.Unlock()
				if n := countObjects(t, bytes.Join(writes, nil)); n == len(tc.payloads) {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("the objects were not all written: %d writes", len(writes))
				case <-time.After(time.Millisecond):
				}
			}
			if tc.window == time.Hour && len(writes) != 2 {
				t.Fatalf("%d writes, want 2: the first object, then the held one with those behind it", len(writes))
			}
			r, err := wire.NewStreamReader(bytes.NewReader(bytes.Join(writes, nil)), wire.StreamReaderConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			for id, p := range tc.payloads {
				o, err := r.ReadObject()
				if err != nil {
					t.Fatalf("object %d: %v", id, err)
				}
				if o.ID != uint64(id) || !bytes.Equal(o.Payload, p) {
					t.Fatalf("object %d: got ID %d, %d bytes", id, o.ID, len(o.Payload))
				}
			}
			if !tc.close {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-str.closed:
			case <-ctx.Done():
				t.Fatal("stream not closed")
			}
			track.Close(nil)
			<-done
		})
	}
}

// countObjects returns how many whole objects b, a subgroup stream's
// first bytes, carries.
func countObjects(t *testing.T, b []byte) int {
	t.Helper()
	if len(b) == 0 {
		return 0
	}
	r, err := wire.NewStreamReader(bytes.NewReader(b), wire.StreamReaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	n := 0
	for {
		if _, err := r.ReadObject(); err != nil {
			return n
		}
		n++
	}
}

// waitHolding waits until the writer of sv's one stream holds an object.
func waitHolding(t *testing.T, ctx context.Context, s *Session, sv *servedSubscription) {
	t.Helper()
	for {
		if list := s.sched.streamsOf(sv); len(list) == 1 {
			st := list[0]
			st.mu.Lock()
			held := st.held
			st.mu.Unlock()
			if held > 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the writer does not hold the object")
		case <-time.After(time.Millisecond):
		}
	}
}
