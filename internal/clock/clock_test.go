package clock

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// at is 2026-04-13 hh:mm:ss.ms UTC.
func at(hh, mm, ss, ms int) time.Time {
	return time.Date(2026, 4, 13, hh, mm, ss, ms*int(time.Millisecond), time.UTC)
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFormat(t *testing.T) {
	tm := at(18, 37, 5, 999)
	if got := Base(tm); got != "2026-04-13 18:37:" || len(got) != 17 {
		t.Errorf("Base = %q (%d bytes)", got, len(got))
	}
	if got := Seconds(tm); got != "05" {
		t.Errorf("Seconds = %q", got)
	}
	if got := Timestamp(tm); got != "2026-04-13 18:37:05" || len(got) != 19 {
		t.Errorf("Timestamp = %q (%d bytes)", got, len(got))
	}
	if got := FirstGroup(tm); got != 37 {
		t.Errorf("FirstGroup = %d", got)
	}
	// Always UTC, whatever the zone of the time given.
	local := tm.In(time.FixedZone("UTC+2", 2*3600))
	if Timestamp(local) != "2026-04-13 18:37:05" || FirstGroup(local) != 37 {
		t.Errorf("non-UTC input: %q group %d", Timestamp(local), FirstGroup(local))
	}
	// Half-hour zones change the minute number too; UTC decides.
	if got := FirstGroup(tm.In(time.FixedZone("UTC+5:30", 5*3600+1800))); got != 37 {
		t.Errorf("FirstGroup in UTC+5:30 = %d", got)
	}
}

// TestWireVectors checks the clock's bytes against moq-rs-vectors.md §8 (what
// moq-clock-ietf emits): the payloads, framed as moq-rs frames them.
func TestWireVectors(t *testing.T) {
	tm := at(18, 37, 5, 0)

	// Subgroup stream header as moq-rs sends it (type 0x15: explicit
	// subgroup ID, extensions), group 37, subgroup 0, priority 0.
	h := wire.SubgroupHeader{TrackAlias: 0, GroupID: FirstGroup(tm), SubgroupID: 0, PublisherPriority: StreamPriority,
		IDMode: wire.SubgroupIDExplicit, Extensions: true}
	b, err := wire.AppendSubgroupHeader(nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "15 00 25 00 00"); !bytes.Equal(b, want) {
		t.Errorf("header = % x, want % x", b, want)
	}
	st := wire.NewSubgroupState(h)
	obj := func(id uint64, payload string) []byte {
		b, err := st.AppendObject(nil, &wire.ObjectHeader{ID: id, PayloadLength: uint64(len(payload))})
		if err != nil {
			t.Fatal(err)
		}
		return append(b, payload...)
	}
	base := obj(0, Base(tm))
	if want := unhex(t, "00 00 11 32 30 32 36 2d 30 34 2d 31 33 20 31 38 3a 33 37 3a"); !bytes.Equal(base, want) {
		t.Errorf("object 0 = % x, want % x", base, want)
	}
	secs := obj(1, Seconds(tm))
	if want := unhex(t, "00 00 02 30 35"); !bytes.Equal(secs, want) {
		t.Errorf("object 1 = % x, want % x", secs, want)
	}

	// The datagram moq-clock-ietf sends (type 0x00, explicit object ID 0).
	dg, err := wire.AppendDatagram(nil, &wire.Datagram{TrackAlias: 0, Group: FirstGroup(tm), Object: 0, ExplicitObjectID: true,
		PublisherPriority: DatagramPriority, Payload: []byte(Timestamp(tm))})
	if err != nil {
		t.Fatal(err)
	}
	wantDG := unhex(t, "00 00 25 00 7f 32 30 32 36 2d 30 34 2d 31 33 20 31 38 3a 33 37 3a 30 35")
	if !bytes.Equal(dg, wantDG) {
		t.Errorf("datagram = % x, want % x", dg, wantDG)
	}

	// And the other way: moq-rs's bytes decode to our payloads.
	ph, n, err := wire.ParseSubgroupHeader(unhex(t, "15 00 25 00 00"))
	if err != nil || n != 5 || ph.GroupID != 37 || ph.SubgroupID != 0 || ph.PublisherPriority != 0 {
		t.Fatalf("parsed header %+v, %d, %v", ph, n, err)
	}
	rs := wire.NewSubgroupState(ph)
	stream := append(unhex(t, "00 00 11 32 30 32 36 2d 30 34 2d 31 33 20 31 38 3a 33 37 3a"), unhex(t, "00 00 02 30 35")...)
	var got []string
	for len(stream) > 0 {
		oh, n, err := rs.ParseObject(stream)
		if err != nil {
			t.Fatal(err)
		}
		end := n + int(oh.PayloadLength)
		got = append(got, fmt.Sprintf("%d:%s", oh.ID, stream[n:end]))
		stream = stream[end:]
	}
	if want := []string{"0:2026-04-13 18:37:", "1:05"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parsed objects %q, want %q", got, want)
	}
	pd, err := wire.ParseDatagram(wantDG)
	if err != nil || pd.Group != 37 || pd.Object != 0 || pd.PublisherPriority != 127 || string(pd.Payload) != Timestamp(tm) || len(pd.Payload) != 19 {
		t.Fatalf("parsed datagram %+v, %v", pd, err)
	}
}

// obj is an event as the tests compare it.
type obj struct {
	kind     moqtransport.EventKind
	group    uint64
	subgroup uint64
	id       uint64
	prio     uint8
	payload  string
	datagram bool
}

func (o obj) String() string {
	if o.kind != moqtransport.EventObject {
		return fmt.Sprintf("%s g%d/s%d", o.kind, o.group, o.subgroup)
	}
	return fmt.Sprintf("object g%d/s%d/o%d p%d dg=%v %q", o.group, o.subgroup, o.id, o.prio, o.datagram, o.payload)
}

// readAll reads a closed track's events from a reader made before it was
// written.
func readAll(t *testing.T, r *moqtransport.TrackReader) []obj {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []obj
	for {
		ev, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		o := obj{kind: ev.Kind, group: ev.Group, subgroup: ev.Subgroup, datagram: ev.Datagram}
		if ev.Kind == moqtransport.EventObject {
			if ev.Object.Status != wire.StatusNormal || len(ev.Object.Extensions) != 0 {
				t.Errorf("object %+v: want a normal object without extensions", ev.Object)
			}
			o.id, o.prio, o.payload = ev.Object.ID, ev.Object.PublisherPriority, string(ev.Object.Payload)
		}
		out = append(out, o)
	}
}

func compare(t *testing.T, got, want []obj) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events:\n%s\nwant:\n%s", join(got), join(want))
	}
}

func join(os []obj) string {
	var b strings.Builder
	for _, o := range os {
		b.WriteString("  " + o.String() + "\n")
	}
	return b.String()
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runPublisher runs a publisher on a fresh track with a manual clock
// starting at start, feeds it ticks, and returns the track's events and
// the lines it printed.
func runPublisher(t *testing.T, datagrams bool, start time.Time, ticks ...time.Time) ([]obj, string) {
	t.Helper()
	track := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"clock"}, Name: "now"}, moqtransport.TrackConfig{})
	r := track.NewReader(moqtransport.ReaderFilter{})
	defer r.Close()
	clk := NewManual(start)
	var out lockedBuffer
	p := &Publisher{Track: track, Datagrams: datagrams, Out: &out, Now: clk.Now, NewTicker: clk.NewTicker}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	// The first second is published before any tick, at the start time.
	for out.String() == "" {
		if ctx.Err() != nil {
			t.Fatal("the publisher published nothing")
		}
		time.Sleep(time.Millisecond)
	}
	for _, tk := range ticks {
		if err := clk.Tick(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	// Tick returns once the publisher took the tick; a last tick makes sure
	// it has handled the one before (the same second: nothing published).
	if len(ticks) > 0 {
		if err := clk.Tick(ctx, ticks[len(ticks)-1]); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	track.Close(nil)
	return readAll(t, r), out.String()
}

func TestPublisherStream(t *testing.T) {
	o := func(g, id uint64, payload string) obj {
		return obj{kind: moqtransport.EventObject, group: g, id: id, prio: 0, payload: payload}
	}
	end := func(g uint64) obj { return obj{kind: moqtransport.EventSubgroupEnd, group: g} }
	got, lines := runPublisher(t, false, at(18, 37, 57, 250),
		at(18, 37, 58, 0), at(18, 37, 58, 600), // the same second twice: one object
		at(18, 37, 59, 1), at(18, 38, 0, 2), at(18, 38, 1, 0))
	compare(t, got, []obj{
		o(37, 0, "2026-04-13 18:37:"), o(37, 1, "57"), o(37, 2, "58"), o(37, 3, "59"), end(37),
		o(38, 0, "2026-04-13 18:38:"), o(38, 1, "00"), o(38, 2, "01"), end(38),
	})
	want := "2026-04-13 18:37:57\n2026-04-13 18:37:58\n2026-04-13 18:37:59\n2026-04-13 18:38:00\n2026-04-13 18:38:01\n"
	if lines != want {
		t.Errorf("printed %q, want %q", lines, want)
	}
}

// TestPublisherStreamHour: group IDs keep counting past 59 (no modulo),
// and a late tick that skips seconds just publishes the second it reads.
func TestPublisherStreamHour(t *testing.T) {
	o := func(g, id uint64, payload string) obj {
		return obj{kind: moqtransport.EventObject, group: g, id: id, payload: payload}
	}
	end := func(g uint64) obj { return obj{kind: moqtransport.EventSubgroupEnd, group: g} }
	got, _ := runPublisher(t, false, at(18, 59, 59, 0), at(19, 0, 0, 0), at(19, 0, 3, 0), at(19, 1, 0, 0))
	compare(t, got, []obj{
		o(59, 0, "2026-04-13 18:59:"), o(59, 1, "59"), end(59),
		o(60, 0, "2026-04-13 19:00:"), o(60, 1, "00"), o(60, 2, "03"), end(60),
		o(61, 0, "2026-04-13 19:01:"), o(61, 1, "00"), end(61),
	})
}

func TestPublisherDatagrams(t *testing.T) {
	d := func(g uint64, payload string) obj {
		return obj{kind: moqtransport.EventObject, group: g, subgroup: 0, id: 0, prio: 127, payload: payload, datagram: true}
	}
	got, lines := runPublisher(t, true, at(18, 37, 58, 500),
		at(18, 37, 59, 0), at(18, 37, 59, 900), at(18, 38, 0, 0), at(18, 38, 1, 0))
	compare(t, got, []obj{
		d(37, "2026-04-13 18:37:58"), d(38, "2026-04-13 18:37:59"), d(39, "2026-04-13 18:38:00"), d(40, "2026-04-13 18:38:01"),
	})
	for _, o := range got {
		if len(o.payload) != 19 {
			t.Errorf("datagram payload %q is %d bytes, want 19", o.payload, len(o.payload))
		}
	}
	want := "2026-04-13 18:37:58\n2026-04-13 18:37:59\n2026-04-13 18:38:00\n2026-04-13 18:38:01\n"
	if lines != want {
		t.Errorf("printed %q, want %q", lines, want)
	}
}

// TestPublisherTrackClosed: a track that refuses objects ends Run with an
// error.
func TestPublisherTrackClosed(t *testing.T) {
	for _, datagrams := range []bool{false, true} {
		track := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"clock"}, Name: "now"}, moqtransport.TrackConfig{})
		track.Close(nil)
		clk := NewManual(at(18, 37, 0, 0))
		p := &Publisher{Track: track, Datagrams: datagrams, Now: clk.Now, NewTicker: clk.NewTicker}
		if err := p.Run(context.Background()); !errors.Is(err, moqtransport.ErrTrackClosed) {
			t.Errorf("datagrams=%v: Run on a closed track = %v", datagrams, err)
		}
	}
}

// TestSubscriberInterleaved: objects of several groups arrive interleaved;
// each group prints with its own base, and a group joined after its object
// 0 prints nothing.
func TestSubscriberInterleaved(t *testing.T) {
	track := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"clock"}, Name: "now"}, moqtransport.TrackConfig{})
	open := func(g uint64) *moqtransport.SubgroupWriter {
		w, err := track.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	write := func(w *moqtransport.SubgroupWriter, id uint64, payload string) {
		if err := w.WriteObject(id, []byte(payload), nil); err != nil {
			t.Fatal(err)
		}
	}
	late, g37, g38 := open(36), open(37), open(38)
	write(late, 40, "40") // joined group 36 after its object 0
	write(g37, 0, "2026-04-13 18:37:")
	write(g37, 1, "58")
	write(g38, 0, "2026-04-13 18:38:")
	write(late, 41, "41")
	write(g38, 1, "00")
	write(g37, 2, "59")
	if err := g37.WriteStatus(3, wire.StatusEndOfGroup, nil); err != nil { // a status object prints nothing
		t.Fatal(err)
	}
	_ = g37.Close()
	write(g38, 1+1, "01")
	late.Abort(uint64(wire.ResetCancelled))
	_ = g38.Close()
	// A new subgroup of a group whose stream ended starts without a base.
	again := open(38)
	write(again, 5, "05")
	_ = again.Close()
	track.Close(nil)

	var out, logs bytes.Buffer
	s := &Subscriber{Out: &out, Logger: newTestLogger(&logs)}
	if err := s.Run(context.Background(), track); err != nil {
		t.Fatalf("Run = %v, want nil at the end of the track", err)
	}
	want := "2026-04-13 18:37:58\n2026-04-13 18:38:00\n2026-04-13 18:37:59\n2026-04-13 18:38:01\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	if !strings.Contains(logs.String(), "group=36") || !strings.Contains(logs.String(), "group=38") {
		t.Errorf("the baseless groups are not logged: %s", logs.String())
	}
}

func TestSubscriberDatagrams(t *testing.T) {
	track := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"clock"}, Name: "now"}, moqtransport.TrackConfig{})
	for i, ts := range []string{"2026-04-13 18:37:58", "2026-04-13 18:37:59"} {
		if err := track.WriteDatagram(moqtransport.Object{Group: 37 + uint64(i), PublisherPriority: 127, Payload: []byte(ts)}); err != nil {
			t.Fatal(err)
		}
	}
	track.Close(nil)
	var out bytes.Buffer
	if err := (&Subscriber{Out: &out}).Run(context.Background(), track); err != nil {
		t.Fatal(err)
	}
	if want := "2026-04-13 18:37:58\n2026-04-13 18:37:59\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

// TestSubscriberRejectsPayloads: payloads that are not of the clock's
// layouts (an escape sequence, an oversized line) in any position (a
// base, a second, a datagram, a joined object) are logged, bounded and
// escaped, and never reach the output; the valid ones still print.
func TestSubscriberRejectsPayloads(t *testing.T) {
	const esc = "\x1b]0;pwned\x07\x1b[2J"
	huge := strings.Repeat("A", 1<<16)
	track := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"clock"}, Name: "now"}, moqtransport.TrackConfig{})
	open := func(g uint64) *moqtransport.SubgroupWriter {
		w, err := track.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	write := func(w *moqtransport.SubgroupWriter, id uint64, payload string) {
		if err := w.WriteObject(id, []byte(payload), nil); err != nil {
			t.Fatal(err)
		}
	}
	g37 := open(37)
	write(g37, 0, "2026-04-13 18:37:")
	write(g37, 1, "58")
	write(g37, 2, esc)
	write(g37, 3, huge)
	write(g37, 4, "5"+esc)
	write(g37, 5, "59")
	write(g37, 6, "7")     // moxygen writes no leading zero
	write(g37, 7, "60")    // a leap second
	write(g37, 8, "61")    // not a second
	write(g37, 9, "5.123") // older moq-rs: SS.mmm
	_ = g37.Close()
	g38 := open(38) // a bad base: its seconds are skipped
	write(g38, 0, esc+"2026-04-13 18:38:")
	write(g38, 1, "00")
	_ = g38.Close()
	g39 := open(39)
	write(g39, 0, huge)
	write(g39, 1, "00")
	_ = g39.Close()
	track.Close(nil)
	// A track is of streams or of datagrams: the datagrams on another.
	dgrams := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"clock"}, Name: "now"}, moqtransport.TrackConfig{})
	for i, p := range []string{"2026-04-13 18:40:00", esc, huge, "2026-04-13 18:40:01"} {
		if err := dgrams.WriteDatagram(moqtransport.Object{Group: 100 + uint64(i), PublisherPriority: 127, Payload: []byte(p)}); err != nil {
			t.Fatal(err)
		}
	}
	dgrams.Close(nil)

	joined := []*moqtransport.Object{
		{Group: 36, ID: 0, Payload: []byte("2026-04-13 18:36:")},
		{Group: 36, ID: 1, Payload: []byte("10")},
		{Group: 36, ID: 2, Payload: []byte(esc)}, // not the newest line
	}
	var out, logs bytes.Buffer
	s := &Subscriber{Out: &out, Logger: newTestLogger(&logs), Joined: joined}
	if err := s.Run(context.Background(), track); err != nil {
		t.Fatal(err)
	}
	if err := (&Subscriber{Out: &out, Logger: newTestLogger(&logs)}).Run(context.Background(), dgrams); err != nil {
		t.Fatal(err)
	}
	want := "2026-04-13 18:36:10\n2026-04-13 18:37:58\n2026-04-13 18:37:59\n2026-04-13 18:37:7\n2026-04-13 18:37:60\n2026-04-13 18:37:5.123\n2026-04-13 18:40:00\n2026-04-13 18:40:01\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	if strings.Contains(logs.String(), "\x1b") {
		t.Errorf("an escape byte reached the log: %q", logs.String())
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 9 {
		t.Errorf("%d warnings, want 9 (one a bad payload):\n%s", n, logs.String())
	}
	if logs.Len() > 9*400 {
		t.Errorf("the log is %d bytes: the excerpts are not bounded", logs.Len())
	}
}

func TestSubscriberEnds(t *testing.T) {
	name := wire.FullTrackName{Namespace: wire.Namespace{"clock"}, Name: "now"}
	// A track that fails: its error.
	failed := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	boom := moqtransport.PublishDoneError(wire.DoneGoingAway, "the publisher's session ended")
	failed.Close(boom)
	if err := (&Subscriber{Out: io.Discard}).Run(context.Background(), failed); !errors.Is(err, boom) {
		t.Errorf("Run on a failed track = %v, want %v", err, boom)
	}
	// A cancelled context: its error.
	open := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Subscriber{Out: io.Discard}).Run(ctx, open) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v", err)
	}
	// A failing output: its error.
	w, _ := open.OpenSubgroup(1, 0, moqtransport.SubgroupOptions{})
	_ = w.WriteObject(0, []byte("2026-04-13 18:01:"), nil)
	_ = w.WriteObject(1, []byte("00"), nil)
	open.Close(nil)
	if err := (&Subscriber{Out: failWriter{}}).Run(context.Background(), open); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Run with a failing output = %v", err)
	}
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestUntilNextSecond(t *testing.T) {
	for _, c := range []struct {
		at   time.Time
		want time.Duration
	}{
		{at(12, 0, 0, 250), 750 * time.Millisecond},
		{at(12, 0, 0, 0), time.Second},
		{at(12, 0, 59, 999), time.Millisecond},
	} {
		if got := untilNextSecond(c.at); got != c.want {
			t.Errorf("untilNextSecond(%v) = %v, want %v", c.at, got, c.want)
		}
	}
}

// TestSecondTicker runs the real ticker on a clock shifted to just before a
// whole second: the tick comes at once, at the whole second.
func TestSecondTicker(t *testing.T) {
	start := time.Now()
	shift := start.Truncate(time.Second).Add(time.Second - 20*time.Millisecond).Sub(start)
	now := func() time.Time { return time.Now().Add(shift) }
	tk := newSecondTicker(now)
	defer tk.Stop()
	select {
	case tick := <-tk.C():
		if frac := tick.Sub(tick.Truncate(time.Second)); frac > 500*time.Millisecond {
			t.Errorf("tick at %v, %v after a whole second", tick, frac)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no tick")
	}
	tk.Stop() // idempotent; the deferred Stop runs too
}
