package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// A declared length is a promise, not a size to allocate: a reader given
// an object that declares a large payload (or extension block) and then
// ends allocates about EagerObjectBytes, not the declared length. Measured:
// bytes allocated on the heap while reading.
func TestStreamReaderGrowsAsBytesArrive(t *testing.T) {
	const declared = 8 << 20
	cfg := StreamReaderConfig{MaxExtensionsLen: declared}
	for _, c := range []struct {
		name string
		wire []byte
	}{
		{"subgroup payload", dpCat(dpHex("10 01 02 80 | 00"), dpVarint(declared), []byte("0123456789"))},
		{"fetch payload", dpCat(dpHex("05 01 | 00 00 00 80 00"), dpVarint(declared), []byte("0123456789"))},
		{"subgroup extensions", dpCat(dpHex("11 01 02 80 | 00"), dpVarint(declared), dpHex("3c01 01 61"))},
	} {
		var err error
		n := dpAllocated(func() { _, err = dpReadStream(c.wire, cfg) })
		if errors.Is(err, ErrObjectTooLarge) || err == nil || err == io.EOF {
			t.Errorf("%s: %v, want the stream to end inside the object", c.name, err)
		}
		// The reader and its 2 KiB buffer, the eager block and errors.
		if n > 4*EagerObjectBytes {
			t.Errorf("%s: declaring %d bytes and sending 10 allocated %d bytes, want < %d", c.name, declared, n, 4*EagerObjectBytes)
		}
	}
}

// Objects larger than EagerObjectBytes come out whole and byte-exact, with
// their buffer no larger than needed.
func TestStreamReaderLargeObjects(t *testing.T) {
	for _, size := range []int{EagerObjectBytes - 1, EagerObjectBytes, EagerObjectBytes + 1, 3*EagerObjectBytes + 7, 1<<20 + 5} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		b := dpCat(dpHex("10 01 02 80 | 00"), dpVarint(uint64(size)), payload, dpHex("01 03 616263"))
		objs, err := dpReadStream(b, StreamReaderConfig{})
		if err != io.EOF || len(objs) != 2 {
			t.Fatalf("%d bytes: %d objects, %v", size, len(objs), err)
		}
		if !bytes.Equal(objs[0].Payload, payload) || string(objs[1].Payload) != "abc" {
			t.Errorf("%d bytes: payload differs", size)
		}
		if cap(objs[0].Payload) != size {
			t.Errorf("%d bytes: buffer capacity %d, want the payload's size", size, cap(objs[0].Payload))
		}
	}
}

// A ByteBudget bounds what the readers sharing it hold for objects in
// progress: a reservation that does not fit fails the read with
// ErrBudgetExhausted (a local limit, not a session error), and every byte
// comes back once the objects are returned and the readers released.
func TestStreamReaderBudget(t *testing.T) {
	const limit = 64 << 10
	parent := NewByteBudget(0, nil)
	budget := NewByteBudget(limit, parent)
	cfg := StreamReaderConfig{Budget: budget}

	// An object that fits is read, and only the reader's buffer stays
	// charged until Release.
	fits := dpCat(dpHex("10 01 02 80 | 00"), dpVarint(24<<10), make([]byte, 24<<10))
	r, err := NewStreamReader(bytes.NewReader(fits), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadObject(); err != nil {
		t.Fatal(err)
	}
	if st := budget.Stats(); st.Used != ReaderBufferSize || st.Peak < 24<<10 {
		t.Errorf("after a 24 KiB object: %+v, want Used %d and a peak of at least 24 KiB", st, ReaderBufferSize)
	}
	r.Release()
	if st := budget.Stats(); st.Used != 0 {
		t.Errorf("after Release: %+v, want nothing used", st)
	}

	// Streams that each declare 1 MiB, send 10 bytes and wait: each
	// holds its reader buffer and EagerObjectBytes, until the budget is
	// spent and the next stream's read is refused.
	type result struct {
		r   *StreamReader
		err error
	}
	perStream := int64(ReaderBufferSize + EagerObjectBytes)
	fit := int(limit / perStream)
	var pipes []*io.PipeWriter
	results := make(chan result, 10)
	var done []result
	for i := range 10 {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		go func() {
			r, err := NewStreamReader(pr, cfg)
			if err == nil {
				_, err = r.ReadObject()
			}
			results <- result{r, err}
		}()
		b := dpCat(dpHex("10 01"), dpVarint(uint64(i)), dpHex("80 | 00"), dpVarint(1<<20), []byte("0123456789"))
		go func() { _, _ = pw.Write(b) }()
		// One stream at a time: it is in progress once its block is
		// reserved, or refused.
		want := int64(min(i+1, fit)) * perStream
		deadline := time.Now().Add(5 * time.Second)
		for i >= fit && len(done) < i+1-fit || i < fit && budget.Stats().Used < want {
			select {
			case d := <-results:
				done = append(done, d)
			case <-time.After(time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream %d: neither in progress nor refused; budget %+v", i, budget.Stats())
			}
		}
	}
	for _, d := range done {
		if !errors.Is(d.err, ErrBudgetExhausted) {
			t.Errorf("a stream over the budget: %v, want ErrBudgetExhausted", d.err)
		}
		var se *SessionError
		if errors.As(d.err, &se) {
			t.Errorf("ErrBudgetExhausted is a local limit, not a session error: %v", d.err)
		}
		if d.r != nil {
			d.r.Release()
		}
	}
	if st := budget.Stats(); st.Used != int64(fit)*perStream || st.Peak > limit || st.Refused < int64(10-fit) {
		t.Errorf("budget %+v with %d streams in progress: want Used %d, Peak <= %d, %d refusals", st, fit, int64(fit)*perStream, limit, 10-fit)
	}
	if st := parent.Stats(); st.Used != budget.Stats().Used {
		t.Errorf("parent %+v, child %+v: the parent is charged what the child is", st, budget.Stats())
	}
	for _, pw := range pipes {
		pw.CloseWithError(errors.New("reset"))
	}
	for range fit {
		d := <-results
		if d.err == nil || errors.Is(d.err, ErrBudgetExhausted) {
			t.Errorf("a stream reset inside its object: %v", d.err)
		}
		if d.r != nil {
			d.r.Release()
		}
	}
	if st := budget.Stats(); st.Used != 0 || parent.Stats().Used != 0 {
		t.Errorf("after every stream ended: %+v (parent %+v), want nothing used", st, parent.Stats())
	}
}

// A parent's limit binds its children.
func TestByteBudgetParent(t *testing.T) {
	parent := NewByteBudget(100, nil)
	a, b := NewByteBudget(80, parent), NewByteBudget(80, parent)
	if !a.Reserve(60) {
		t.Fatal("60 of 80 refused")
	}
	if b.Reserve(60) {
		t.Fatal("the parent's 100 allowed 120")
	}
	if st := b.Stats(); st.Used != 0 || st.Refused != 1 {
		t.Errorf("child refused by its parent: %+v, want nothing held and one refusal", st)
	}
	if !b.Reserve(40) {
		t.Fatal("40 more within the parent's 100 refused")
	}
	a.Release(60)
	b.Release(40)
	if st := parent.Stats(); st.Used != 0 || st.Peak != 100 {
		t.Errorf("parent %+v, want nothing used and a peak of 100", st)
	}
	var none *ByteBudget
	if !none.Reserve(1 << 40) {
		t.Error("a nil budget refused")
	}
}
