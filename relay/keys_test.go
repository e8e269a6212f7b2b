package relay

import (
	"strings"
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
		// Lengths of one to four digits.
		{wire.Namespace{strings.Repeat("n", 9), strings.Repeat("m", 10)}, strings.Repeat("x", 99)},
		{wire.Namespace{strings.Repeat("n", 100)}, strings.Repeat("x", 1000)},
		{make(wire.Namespace, 32), strings.Repeat("x", 4096)},
	}
	seen := map[string]int{}
	for i, tr := range tracks {
		k := trackKey(tr.ns, tr.name)
		if n := trackKeyLen(tr.ns, tr.name); n != len(k) {
			t.Errorf("trackKey(%v, %q) is %d bytes, sized %d", tr.ns, tr.name, len(k), n)
		}
		if k, n := nsKey(tr.ns), nsKeyLen(tr.ns); n != len(k) {
			t.Errorf("nsKey(%v) is %d bytes, sized %d", tr.ns, len(k), n)
		}
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

// BenchmarkKeys measures the keys a SUBSCRIBE computes: one allocation
// each, sized to the key.
func BenchmarkKeys(b *testing.B) {
	ns := wire.Namespace{"live", "room-42"}
	b.Run("trackKey", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = trackKey(ns, "video")
		}
	})
	b.Run("nsKey", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = nsKey(ns)
		}
	})
}
