package moqtransport

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestControlQueueKeepsOrder: whatever the chunking, reuse and compaction
// of its buffer, the queue hands the writer every byte once, in push
// order; past the backlog limit a push fails and the writer is told.
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
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer close(done)
		for got.Len() < want.Len() {
			b, overflow, err := q.take(ctx)
			if err != nil || overflow {
				return
			}
			if len(b) > controlChunk {
				t.Errorf("chunk of %d bytes", len(b))
			}
			got.Write(b)
			q.wrote()
		}
	}()
	for _, msg := range msgs {
		if err := q.push(msg, 1<<30, func() {}); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if g, w := got.Bytes(), want.Bytes(); !bytes.Equal(g, w) {
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		t.Fatalf("the writer got %d bytes, %d pushed; they differ from byte %d", len(g), len(w), i)
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
	if _, overflow, _ := full.take(ctx); !overflow {
		t.Fatal("the writer was not told of the overflow")
	}
}
