package moqtransport

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestControlQueueKeepsOrder: whatever the chunking, reuse and compaction
// of its buffer, and however often its writer ends and another starts, the
// queue hands the writers every byte once, in push order, one writer at a
// time; once everything is written no writer is left and flush returns;
// past the backlog limit a push fails and the writer is told.
func TestControlQueueKeepsOrder(t *testing.T) {
	var q controlQueue
	q.init()
	var msgs [][]byte
	var want, got bytes.Buffer
	for i := 0; want.Len() < 3<<20; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 1+(i*7919)%(3*controlChunk))
		msgs = append(msgs, msg)
		want.Write(msg)
	}
	var wg sync.WaitGroup
	var running, started, overlaps atomic.Int32
	writer := func() {
		defer wg.Done()
		for {
			b, overflow, ok := q.take()
			if !ok || overflow {
				// The queue no longer counts this writer: the next push
				// may start another while this goroutine returns.
				return
			}
			// A writer holds a chunk from take to wrote: one at a time.
			// (Counted here, not for the goroutine's whole life: that
			// counted one returning as still running, a flake in CI.)
			if running.Add(1) > 1 {
				overlaps.Add(1)
			}
			if len(b) > controlChunk {
				t.Errorf("chunk of %d bytes", len(b))
			}
			got.Write(b) // one writer at a time: checked by overlaps
			running.Add(-1)
			q.wrote()
		}
	}
	// Pushes before enable only queue.
	if err := q.push(msgs[0], 1<<30, func() {}); err != nil {
		t.Fatal(err)
	}
	q.enable(func() {
		started.Add(1)
		wg.Add(1)
		go writer()
	})
	for i, msg := range msgs[1:] {
		if err := q.push(msg, 1<<30, func() {}); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 { // let the writer drain and end now and then
			q.flush(nil, time.Minute)
		}
	}
	q.flush(nil, time.Minute)
	wg.Wait()
	if n := overlaps.Load(); n > 0 {
		t.Fatalf("%d writers started while another ran", n)
	}
	if g, w := got.Bytes(), want.Bytes(); !bytes.Equal(g, w) {
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		t.Fatalf("the writers got %d bytes, %d pushed; they differ from byte %d", len(g), len(w), i)
	}
	if n := started.Load(); n < 2 {
		t.Fatalf("%d writers started: the writer should end whenever the queue is empty", n)
	}
	q.mu.Lock()
	running2 := q.running
	q.mu.Unlock()
	if running2 {
		t.Fatal("the queue is empty but still counts a writer as running")
	}

	// The backlog limit.
	var full controlQueue
	full.init()
	if err := full.push(make([]byte, 100), 150, func() {}); err != nil {
		t.Fatal(err)
	}
	if err := full.push(make([]byte, 100), 150, func() {}); !errors.Is(err, errControlBacklog) {
		t.Fatalf("push past the limit: %v", err)
	}
	if _, overflow, _ := full.take(); !overflow {
		t.Fatal("the writer was not told of the overflow")
	}
}
