package moqtest

import "testing"

// GoroutinesAdded counts, over every owner, the goroutines after has more
// than before: owners that came and owners that went count too.
func TestGoroutinesAdded(t *testing.T) {
	for _, c := range []struct {
		before, after map[string]int
		want          int
	}{
		{nil, nil, 0},
		{map[string]int{"a": 2}, map[string]int{"a": 5}, 3},
		{map[string]int{"a": 2}, map[string]int{"a": 2, "b": 4}, 4},
		{map[string]int{"a": 2, "gone": 3}, map[string]int{"a": 4}, -1},
		{map[string]int{"a": 7}, nil, -7},
	} {
		if got := GoroutinesAdded(c.before, c.after); got != c.want {
			t.Errorf("GoroutinesAdded(%v, %v) = %d, want %d", c.before, c.after, got, c.want)
		}
	}
}
