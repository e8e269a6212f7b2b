package relay

import (
	"testing"
	"time"
)

// TestFetchSilencePauses: the pauses after FETCHes left unanswered. FETCHes
// in flight together are one silence (seven at once reached the 600x cap
// at the first silence); each later silence doubles the pause up to 600
// times the wait; an answer ends the pause at once and starts the doubling
// over (it only reset the count, so a publisher that answered was still
// skipped for the rest of the pause); NOT_SUPPORTED ends the asking.
func TestFetchSilencePauses(t *testing.T) {
	const wait = time.Second
	var f fetchSilence
	t0 := time.Unix(1000, 0)
	if f.skip(t0) {
		t.Fatal("a publisher never silent is skipped")
	}
	for i := range 7 { // seven FETCHes in flight time out together
		if p := f.missed(t0.Add(time.Duration(i)*time.Millisecond), wait); p > 10*wait {
			t.Fatalf("FETCH %d of one silence: pause %v, want at most %v", i, p, 10*wait)
		}
	}
	if !f.skip(t0.Add(9*wait)) || f.skip(t0.Add(10*wait)) {
		t.Fatalf("after one silence at t0: skipped at +9s %v, at +10s %v; want a 10 s pause", f.skip(t0.Add(9*wait)), f.skip(t0.Add(10*wait)))
	}
	now := t0.Add(10 * wait)
	want := []time.Duration{20, 40, 80, 160, 320, 600, 600}
	for i, w := range want {
		p := f.missed(now, wait)
		if p != w*wait {
			t.Fatalf("silence %d: pause %v, want %v", i+2, p, w*wait)
		}
		now = now.Add(p)
	}
	f.missed(now, wait)
	f.answered()
	if f.skip(now) {
		t.Fatal("a publisher that answered is still skipped")
	}
	if p := f.missed(now, wait); p != 10*wait {
		t.Fatalf("the first silence after an answer: pause %v, want %v", p, 10*wait)
	}
	f.refused()
	if !f.skip(now.Add(time.Hour)) {
		t.Fatal("a publisher that answered NOT_SUPPORTED is asked again")
	}
}
