package moqtransport

import (
	"errors"
	"testing"

	"github.com/moqgo/moq/moqtransport/wire"
)

// TestRequestIDsAtTheVarintLimit: request IDs and grants stop at 2^62-1,
// the largest varint: the last IDs are allocated, then requests fail with
// ErrRequestIDsExhausted instead of waiting for a grant that cannot come;
// our own grants never pass 2^62-1 (they could not be encoded).
func TestRequestIDsAtTheVarintLimit(t *testing.T) {
	for _, client := range []bool{true, false} {
		r := newRequestIDs(client, 100)
		if err := r.setPeerMax(wire.MaxVarint, true); err != nil {
			t.Fatal(err)
		}
		last := uint64(wire.MaxVarint - 1) // even: the client's
		if !client {
			last = wire.MaxVarint - 2 // odd and below the grant
		}
		r.next = last - 2
		for _, want := range []uint64{last - 2, last} {
			id, wait, _, _, err := r.tryAllocate()
			if err != nil || wait != nil || id != want {
				t.Fatalf("client %v: allocate = %d, %v, %v; want %d", client, id, wait != nil, err, want)
			}
		}
		if _, wait, _, _, err := r.tryAllocate(); !errors.Is(err, ErrRequestIDsExhausted) || wait != nil {
			t.Fatalf("client %v: past the last ID: wait %v, err %v; want ErrRequestIDsExhausted", client, wait != nil, err)
		}

		// The peer's side: a grant near the limit is clamped to it.
		r.peerNext = wire.MaxVarint - 10
		r.ourMax = r.peerNext + 2
		r.open = 0
		grant := r.topUp()
		if grant != wire.MaxVarint {
			t.Fatalf("client %v: grant %d near the limit, want %d", client, grant, uint64(wire.MaxVarint))
		}
		if _, err := wire.AppendMessage(nil, &wire.MaxRequestID{Max: grant}); err != nil {
			t.Fatalf("the grant cannot be sent: %v", err)
		}
		if again := r.topUp(); again != 0 {
			t.Fatalf("client %v: a second grant %d past the limit", client, again)
		}
	}
	// A window as large as the ID space starts clamped.
	if g := newRequestIDs(true, 1<<61).initialGrant(); g > wire.MaxVarint {
		t.Fatalf("initial grant %d past the varint limit", g)
	}
}
