package relay_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/quicvarint"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// Issue 10 row: "one session PUBLISHes 12 tracks of 32 MiB: 406 MB RSS (the
// cache limit is per track, with no relay-wide budget)". Here one session
// PUBLISHes 12 tracks of 1.5 MiB each (18 MiB) to a relay whose tracks
// may cache 32 MiB each but 1.5 MiB together. What the relay caches stays within
// the budget, and the heap grows by about the budget, not by what was
// published. Measured: the budget's figures, the relay's cache gauge and
// HeapInuse after a GC (the publisher's tracks, in this process too, cache
// 1 MiB each).
func TestPublishManyTracksCacheBudget(t *testing.T) {
	const (
		tracks   = 12
		groups   = 8
		object   = 192 << 10 // one object per group
		budget   = 1536 << 10
		perTrack = groups * object
	)
	forEachTransport(t, func(t *testing.T, scheme string) {
		cb := moqtransport.NewCacheBudget(budget)
		e, r := startRelayFor(t, scheme, relay.Config{Track: moqtransport.TrackConfig{Budget: cb}})
		s := e.connect("/", nil)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		payload := make([]byte, object)
		var want int64
		var maxUsed int64
		for i := range tracks {
			tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"flood"}, Name: fmt.Sprint(i)},
				moqtransport.TrackConfig{MaxBytes: 1 << 20, MaxGroups: 2})
			defer tr.Close(nil)
			if _, err := s.Publish(ctxFor(t), tr, moqtransport.PublishOptions{}); err != nil {
				t.Fatal(err)
			}
			for g := range uint64(groups) {
				w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if err := w.WriteObject(0, payload, nil); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				// One group at a time: the relay has cached it, and its
				// write has evicted what it had to, before the next. The
				// relay counts a received object at its header, before
				// the payload is read and charged to the budget, so the
				// count alone would let two objects be written at once.
				// The budget is sampled on the way, while the object is
				// being written.
				// Every byte charged to the budget is either still
				// cached or was evicted for it (the tracks' own limits
				// are far above what they get here), so Used +
				// EvictedBytes grows by the object when the relay has
				// charged it.
				want += object
				deadline := time.Now().Add(10 * time.Second)
				for {
					st := cb.Stats()
					maxUsed = max(maxUsed, st.Used)
					if st.Used+st.EvictedBytes >= want && st.Used <= budget {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the relay has charged %d bytes (want %d) and caches %d (budget %d)", st.Used+st.EvictedBytes, want, st.Used, budget)
					}
					time.Sleep(time.Millisecond)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		grow := int64(after.HeapInuse) - int64(before.HeapInuse)
		st := cb.Stats()
		t.Logf("%s: %d tracks x %d KiB published; budget %+v, most used %d; HeapInuse %+.1f MiB", scheme, tracks, perTrack>>10, st, maxUsed, float64(grow)/(1<<20))
		// Each track's newest group is kept whole when nothing else is left:
		// allow one object over.
		if maxUsed > budget+object+moqtransport.CacheEntryOverhead*4 {
			t.Errorf("the relay cached %d bytes, budget %d", maxUsed, budget)
		}
		if st.Tracks != tracks || st.EvictedBytes < tracks*perTrack-budget-object {
			t.Errorf("budget %+v: want %d tracks and at least %d bytes evicted", st, tracks, tracks*perTrack-budget)
		}
		// Without the budget the relay would hold all 18 MiB; QUIC buffers
		// and goroutines add about a MiB.
		if limit := int64(2*budget + 4<<20); grow > limit {
			t.Errorf("heap grew by %.1f MiB for %d MiB published, budget %.1f MiB: want < %.1f MiB", float64(grow)/(1<<20), tracks*perTrack>>20, float64(budget)/(1<<20), float64(limit)/(1<<20))
		}
		var b strings.Builder
		if err := r.WriteMetrics(&b); err != nil {
			t.Fatal(err)
		}
		if m := b.String(); !strings.Contains(m, "moq_relay_cache_budget_used_bytes ") || metricValue(t, m, "moq_relay_cache_budget_bytes") != budget {
			t.Errorf("metrics lack the cache budget:\n%s", b.String())
		}
	})
}

// A relay without budgets configured gets the default ones.
func TestDefaultCacheBudget(t *testing.T) {
	r := relay.New(relay.Config{})
	if st := r.CacheBudget().Stats(); st.Limit != moqtransport.DefaultCacheBudget {
		t.Errorf("default budget %+v, want %d bytes", st, moqtransport.DefaultCacheBudget)
	}
	if r.SessionConfig().Track.Budget != r.CacheBudget() {
		t.Error("sessions do not share the relay's budget")
	}
	if st := r.InFlightBudget().Stats(); st.Limit != relay.DefaultInFlightBudget {
		t.Errorf("default in-flight budget %+v, want %d bytes", st, relay.DefaultInFlightBudget)
	}
	if r.SessionConfig().Reader.Budget != r.InFlightBudget() {
		t.Error("sessions do not share the relay's in-flight budget")
	}
}

// Issue 10 row: "300 streams each declaring a 1 MiB object and sending a
// few bytes: +316 MB heap", against the relay. Two publishers each
// PUBLISH a track and open 20 streams on it that declare a 1 MiB object
// and send 10 bytes. Each stream holds a reader buffer and one 16 KiB
// chunk; the relay-wide in-flight budget (room for 30 such streams) is
// shared, so 10 of the 40 are cancelled with STOP_SENDING CANCELLED, and
// the heap grows by about 30 chunks, not 40 MiB.
func TestDeclaredObjectsInFlightBudget(t *testing.T) {
	const (
		perSession = 20
		perStream  = wire.ReaderBufferSize + wire.EagerObjectBytes
		fit        = 30
	)
	forEachTransport(t, func(t *testing.T, scheme string) {
		inFlight := wire.NewByteBudget(fit*perStream, nil)
		e, _ := startRelayFor(t, scheme, relay.Config{Session: moqtransport.Config{Reader: wire.StreamReaderConfig{Budget: inFlight}}})
		srv := e.srv
		fp, _ := srv.Fingerprint()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var strs []moqtransport.SendStream
		for i := range 2 {
			d, err := moqnative.Dial(ctxFor(t), fmt.Sprintf("%s://%s/", scheme, srv.Addr()),
				moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
			if err != nil {
				t.Fatal(err)
			}
			s, err := moqtransport.Connect(ctxFor(t), d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = s.Close()
				_ = d.Close()
			})
			tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"declared"}, Name: fmt.Sprint(i)}, moqtransport.TrackConfig{})
			t.Cleanup(func() { tr.Close(nil) })
			pub, err := s.Publish(ctxFor(t), tr, moqtransport.PublishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for g := range uint64(perSession) {
				b, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: pub.RequestID(), GroupID: 1000 + g})
				b = quicvarint.Append(quicvarint.Append(b, 0), 1<<20)
				str, err := d.Conn.OpenUniStreamSync(ctxFor(t))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := str.Write(append(b, "0123456789"...)); err != nil {
					t.Fatal(err)
				}
				strs = append(strs, str)
			}
		}
		// The relay reads them: each is refused or in progress (holding a
		// reader buffer and a chunk), and about fit are in progress.
		// (Streams reserve their reader buffer and then their chunk, so
		// concurrent ones can leave the last chunks' room split among
		// reader buffers: at worst every stream holds one.)
		st := waitSettled(t, inFlight, 2*perSession)
		inProgress := int(st.Used / perStream)
		if least := (fit*perStream - 2*perSession*wire.ReaderBufferSize) / wire.EagerObjectBytes; inProgress < least || inProgress > fit {
			t.Errorf("%d streams in progress, want %d to %d; in flight %+v", inProgress, least, fit, st)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		grow := int64(after.HeapInuse) - int64(before.HeapInuse)
		// STOP_SENDING arrives soon after a refusal; a write after it fails.
		stopped := 0
		isStopped := make([]bool, len(strs))
		for end := time.Now().Add(5 * time.Second); stopped < 2*perSession-inProgress && time.Now().Before(end); {
			for i, str := range strs {
				if isStopped[i] {
					continue
				}
				if _, err := str.Write([]byte{0}); err != nil {
					var se *moqtransport.StreamError
					if !errors.As(err, &se) || se.Code != uint64(wire.ResetCancelled) {
						t.Errorf("a refused stream: %v, want STOP_SENDING CANCELLED", err)
					}
					isStopped[i] = true
					stopped++
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("%s: %d streams declaring 1 MiB, 10 bytes sent each: relay in flight %+v, %d stopped; HeapInuse %+.1f MiB", scheme, 2*perSession, st, stopped, float64(grow)/(1<<20))
		if st.Peak > fit*perStream {
			t.Errorf("in flight peaked at %d bytes, budget %d", st.Peak, fit*perStream)
		}
		if stopped != 2*perSession-inProgress {
			t.Errorf("%d streams stopped, want the %d refused", stopped, 2*perSession-inProgress)
		}
		if limit := int64(2 * perSession * 128 << 10); grow > limit {
			t.Errorf("heap grew by %.1f MiB, want < %.1f MiB (at the declared length it is 40 MiB)", float64(grow)/(1<<20), float64(limit)/(1<<20))
		}
	})
}

// startRelayFor starts a relay with cfg on a loopback server, and returns
// the relay too.
func startRelayFor(t *testing.T, scheme string, cfg relay.Config) (*relayEnv, *relay.Relay) {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r := relay.New(cfg)
	rs := relay.NewServer(r, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rs.Serve(ctx)
	}()
	t.Cleanup(func() {
		checkUpstream(t, rs.Relay) // the test's sessions ending
		cancel()
		rs.Close()
		_ = srv.Close()
		<-done
		checkUpstream(t, rs.Relay)
	})
	return &relayEnv{t: t, scheme: scheme, srv: srv, rs: rs}, r
}

// waitReceived waits until the relay has received want payload bytes.
func waitReceived(t *testing.T, r *relay.Relay, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for relay.BytesReceived(r) < want {
		if time.Now().After(deadline) {
			t.Fatalf("the relay received %d bytes, want %d", relay.BytesReceived(r), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// The cache budget evicts from the tracks nobody reads first: a session
// floods six tracks that nobody subscribes to, while a viewer watches a
// seventh through the relay. The watched track's history stays in the
// relay's cache (a late joiner's FETCH gets all of it), and the flood is
// what the budget evicts.
func TestCacheBudgetSparesWatchedTrack(t *testing.T) {
	const (
		rounds = 16
		flood  = 6
		object = 64 << 10 // a flood object: six of them and the watched track fit the budget
		frame  = 16 << 10 // a watched object: 16 of them fit the budget
		budget = 1 << 20
	)
	forEachTransport(t, func(t *testing.T, scheme string) {
		cb := moqtransport.NewCacheBudget(budget)
		e, r := startRelayFor(t, scheme, relay.Config{Track: moqtransport.TrackConfig{Budget: cb}})
		ns := wire.Namespace{"watched"}
		pub := e.connect("/", nil)
		live := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "live"}, moqtransport.TrackConfig{})
		t.Cleanup(func() { live.Close(nil) })
		if _, err := pub.Publish(ctxFor(t), live, moqtransport.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		flooder := e.connect("/", nil)
		var floods []*moqtransport.Track
		for i := range flood {
			tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"flood"}, Name: fmt.Sprint(i)}, moqtransport.TrackConfig{MaxBytes: 1 << 20, MaxGroups: 2})
			t.Cleanup(func() { tr.Close(nil) })
			if _, err := flooder.Publish(ctxFor(t), tr, moqtransport.PublishOptions{}); err != nil {
				t.Fatal(err)
			}
			floods = append(floods, tr)
		}
		viewer := e.connect("/", nil)
		sub, err := viewer.Subscribe(ctxFor(t), ns, "live", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rd := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer rd.Close()
		writeOne := func(tr *moqtransport.Track, g uint64, size int) {
			w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteObject(0, make([]byte, size), nil); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
		var want int64
		for g := range uint64(rounds) {
			writeOne(live, g, frame)
			want += frame
			waitReceived(t, r, want)
			// The viewer gets the group before the flood of this round.
			for {
				ev, err := rd.Next(ctxFor(t))
				if err != nil {
					t.Fatalf("viewer, round %d: %v", g, err)
				}
				if ev.Kind == moqtransport.EventObject && ev.Object.Group == g {
					break
				}
			}
			for _, tr := range floods {
				writeOne(tr, g, object)
				want += object
				waitReceived(t, r, want)
			}
		}
		// A late joiner fetches the watched track's history from the cache.
		late := e.connect("/", nil)
		f, err := late.Fetch(ctxFor(t), moqtransport.FetchOptions{Namespace: ns, Name: "live", End: wire.Location{Group: rounds}})
		if err != nil {
			t.Fatal(err)
		}
		fetched := 0
		for {
			o, err := f.ReadObject(ctxFor(t))
			if err != nil {
				break
			}
			if o.Status == wire.StatusNormal {
				fetched++
			}
		}
		st := cb.Stats()
		t.Logf("%s: budget %+v; a late joiner fetched %d of %d watched groups", scheme, st, fetched, rounds)
		if fetched != rounds {
			t.Errorf("a late joiner fetched %d groups of the watched track, want all %d: the budget evicted the watched track before the flood", fetched, rounds)
		}
		if st.EvictedBytes < flood*rounds*object-budget || st.Used > budget+object {
			t.Errorf("budget %+v: want the flood evicted and the cache within the budget", st)
		}
	})
}

// waitSettled waits until each of n data streams is either refused by
// budget or in progress, holding a reader buffer and one chunk.
func waitSettled(t *testing.T, b *wire.ByteBudget, n int) wire.BudgetStats {
	t.Helper()
	const perStream = wire.ReaderBufferSize + wire.EagerObjectBytes
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := b.Stats()
		if st.Used%perStream == 0 && int(st.Used/perStream+st.Refused) == n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("in flight %+v: want each of %d streams refused or holding %d bytes", st, n, perStream)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
