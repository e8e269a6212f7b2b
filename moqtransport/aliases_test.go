package moqtransport

import "testing"

// The ended aliases a session remembers are bounded whatever a peer ends:
// past endedAliasesKept the oldest are forgotten, the latest kept, and an
// alias named again is no longer ended.
func TestAliasRingBounded(t *testing.T) {
	var r aliasRing
	const n = 10 * endedAliasesKept
	for a := uint64(0); a < n; a++ {
		r.add(a)
	}
	if len(r.ring) != endedAliasesKept || cap(r.ring) > 2*endedAliasesKept {
		t.Fatalf("ring holds %d aliases (capacity %d) after %d ended, want %d", len(r.ring), cap(r.ring), n, endedAliasesKept)
	}
	if len(r.latest) != endedAliasesKept {
		t.Errorf("the index holds %d aliases, want the ring's %d", len(r.latest), endedAliasesKept)
	}
	for _, a := range []uint64{0, n - endedAliasesKept - 1} {
		if r.has(a) {
			t.Errorf("alias %d, ended %d aliases ago, is still remembered", a, n-a)
		}
	}
	for _, a := range []uint64{n - endedAliasesKept, n - 1} {
		if !r.has(a) {
			t.Errorf("alias %d, among the latest %d ended, is forgotten", a, endedAliasesKept)
		}
	}
	r.forget(n - 1)
	if r.has(n - 1) {
		t.Error("an alias named again is still ended")
	}
	r.add(n - 1)
	if !r.has(n - 1) {
		t.Error("an alias that ended again is not ended")
	}
	// An alias that ended twice stays remembered until its latest ending
	// is the oldest one pushed out; a forgotten one stays forgotten when
	// its ending is pushed out.
	r.add(7)
	r.add(7)
	for range endedAliasesKept - 1 {
		r.add(n)
	}
	if !r.has(7) {
		t.Error("an alias still in one place is forgotten")
	}
	r.add(n)
	if r.has(7) || len(r.latest) > endedAliasesKept {
		t.Errorf("an alias whose places were all reused is remembered (index %d)", len(r.latest))
	}
	r.add(8)
	r.forget(8)
	r.add(9)
	for range endedAliasesKept {
		if r.has(8) {
			t.Fatal("a forgotten alias is remembered again")
		}
		r.add(n + 1)
	}
	if r.has(9) || len(r.latest) > endedAliasesKept {
		t.Errorf("alias 9 is remembered after %d endings (index %d)", endedAliasesKept, len(r.latest))
	}
}
