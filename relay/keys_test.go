package relay

import (
	"testing"

	"github.com/moqgo/moq/moqtransport/wire"
)

// TestKeys: namespace and track keys tell apart what differs only in
// where the fields split, and cost one allocation each (a SUBSCRIBE
// computes them while a join waits).
func TestKeys(t *testing.T) {
	tracks := []struct {
		ns   wire.Namespace
		name string
	}{
		{nil, ""}, {nil, "a"}, {wire.Namespace{""}, ""}, {wire.Namespace{"a"}, ""},
		{wire.Namespace{"a", "b"}, "c"}, {wire.Namespace{"a:b"}, "c"}, {wire.Namespace{"a"}, "b:c"},
		{wire.Namespace{"1:a"}, ""}, {wire.Namespace{"", "1:a"}, ""}, {wire.Namespace{"a|"}, "b"},
	}
	seen := map[string]int{}
	for i, tr := range tracks {
		k := trackKey(tr.ns, tr.name)
		if j, dup := seen[k]; dup {
			t.Errorf("tracks %v/%q and %v/%q share the key %q", tracks[j].ns, tracks[j].name, tr.ns, tr.name, k)
		}
		seen[k] = i
	}
	if got, want := trackKey(wire.Namespace{"live", "room"}, "video"), "2|4:live4:room5:video"; got != want {
		t.Errorf("trackKey = %q, want %q", got, want)
	}
	if got, want := nsKey(wire.Namespace{"live", "room"}), "4:live4:room"; got != want {
		t.Errorf("nsKey = %q, want %q", got, want)
	}
	ns := wire.Namespace{"live", "room-42"}
	if n := testing.AllocsPerRun(100, func() { _ = trackKey(ns, "video") }); n != 1 {
		t.Errorf("trackKey: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = nsKey(ns) }); n != 1 {
		t.Errorf("nsKey: %v allocations, want 1", n)
	}
}
