package moqtransport

import (
	"cmp"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"weak"
)

// DefaultCacheBudget is a sane CacheBudget limit for a relay: 1 GiB across
// every track.
const DefaultCacheBudget int64 = 1 << 30

// CacheBudget bounds the bytes cached by every track that shares it
// (TrackConfig.Budget), on top of each track's own limits: a relay gives one
// to all its tracks, so that a peer publishing many tracks cannot make it
// hold many times TrackConfig.MaxBytes.
//
// Bytes are counted as TrackConfig.MaxBytes counts them (payload,
// extensions and CacheEntryOverhead per cached event). When a write takes
// the total over the limit, the writer evicts, before it returns, down to
// 15/16 of the limit: first the older groups (all but the newest) of the
// least recently read tracks, in that order; then, if that is not enough,
// the oldest events of those tracks' newest groups (the group is then
// truncated, as when it alone outgrows MaxBytes), always keeping each
// track's last event. A track is read when a TrackReader is created for it
// or its Next is called, or when its cache answers a FETCH; a
// track nobody reads is the first to lose its cache. Readers that miss an
// evicted event get EventSkipped, as for any eviction.
//
// The total may exceed the limit by the objects being written at the
// moment (each at most the reader's object size limit), and by each track's
// last event when nothing else is left to evict (then by up to a sixteenth
// of the limit more before the tracks are scanned again). A closed track's bytes are
// no longer counted: it takes no more writes, and its cache is freed when
// its readers let it go. The budget holds its tracks weakly: a track
// dropped without Close leaves it when the garbage collector frees it.
//
// A CacheBudget is safe for concurrent use.
type CacheBudget struct {
	limit int64
	used  atomic.Int64
	// clock ticks at every write; a track's lastRead is its value at the
	// track's last read.
	clock atomic.Uint64

	regMu  sync.Mutex // guards tracks; a leaf lock
	tracks map[*budgetShare]weak.Pointer[Track]

	evictMu       sync.Mutex   // one evictor at a time; taken before any t.mu, never under one
	stuck         atomic.Int64 // the total when an eviction last found nothing left to evict; 0 after one that reached its target
	evictedGroups atomic.Int64
	evictedBytes  atomic.Int64
}

// NewCacheBudget returns a budget of limit bytes (DefaultCacheBudget when
// limit <= 0).
func NewCacheBudget(limit int64) *CacheBudget {
	if limit <= 0 {
		limit = DefaultCacheBudget
	}
	return &CacheBudget{limit: limit, tracks: map[*budgetShare]weak.Pointer[Track]{}}
}

// CacheBudgetStats is a snapshot of a CacheBudget.
type CacheBudgetStats struct {
	Limit         int64
	Used          int64 // bytes the open tracks cache now
	Tracks        int   // open tracks sharing the budget
	EvictedGroups int64 // groups (older ones whole, newest ones in part) evicted for the budget
	EvictedBytes  int64 // bytes evicted for the budget
}

// Stats returns the budget's figures.
func (b *CacheBudget) Stats() CacheBudgetStats {
	b.regMu.Lock()
	n := len(b.tracks)
	b.regMu.Unlock()
	return CacheBudgetStats{Limit: b.limit, Used: b.used.Load(), Tracks: n,
		EvictedGroups: b.evictedGroups.Load(), EvictedBytes: b.evictedBytes.Load()}
}

// budgetShare is a track's part of its budget. It outlives the track: the
// cleanup that runs when a track is freed without Close takes its bytes
// back through it.
type budgetShare struct {
	charged atomic.Int64 // bytes counted in the budget
	closed  bool         // uncharged for good; guarded by the track's mu
}

// add registers t, which must have t.budget and t.share set.
func (b *CacheBudget) add(t *Track) {
	t.lastRead.Store(b.clock.Load())
	b.regMu.Lock()
	b.tracks[t.share] = weak.Make(t)
	b.regMu.Unlock()
	runtime.AddCleanup(t, b.drop, t.share)
}

// drop takes a track's bytes out of the budget and forgets it.
func (b *CacheBudget) drop(sh *budgetShare) {
	b.used.Add(-sh.charged.Swap(0))
	b.stuck.Store(0) // what is left may be evictable again
	b.regMu.Lock()
	delete(b.tracks, sh)
	b.regMu.Unlock()
}

// charge counts delta more cached bytes of t. Called with t.mu held.
func (t *Track) charge(delta int64) {
	if t.budget == nil || t.share.closed {
		return
	}
	t.share.charged.Add(delta)
	t.budget.used.Add(delta)
	if delta > 0 {
		t.budget.clock.Add(1)
	}
}

// uncharge takes t's bytes out of its budget for good (t is closed).
// Called with t.mu held.
func (t *Track) uncharge() {
	if t.budget == nil || t.share.closed {
		return
	}
	t.share.closed = true
	t.budget.drop(t.share)
}

// Budget returns the CacheBudget the track's cache counts against
// (TrackConfig.Budget), or nil.
func (c TrackCache) Budget() *CacheBudget { return c.t.budget }

// touch records a read of t.
func (t *Track) touch() {
	if b := t.budget; b != nil {
		if now := b.clock.Load(); t.lastRead.Load() != now {
			t.lastRead.Store(now)
		}
	}
}

// settle runs after a write, without t.mu: it evicts if the write took the
// budget over its limit.
func (t *Track) settle() {
	b := t.budget
	if b == nil {
		return
	}
	used := b.used.Load()
	if used <= b.limit {
		if b.stuck.Load() != 0 {
			b.stuck.Store(0)
		}
		return
	}
	if used > b.stuck.Load()+b.limit/16 {
		b.evict()
	}
}

// evict brings the total down to 15/16 of the limit, least recently read
// tracks first. A writer that finds another evicting waits for it, so
// that writers cannot outrun eviction, and then has nothing left to do.
func (b *CacheBudget) evict() {
	b.evictMu.Lock()
	defer b.evictMu.Unlock()
	if used := b.used.Load(); used <= b.limit || used <= b.stuck.Load()+b.limit/16 {
		return
	}
	target := b.limit - b.limit/16
	b.regMu.Lock()
	ts := make([]*Track, 0, len(b.tracks))
	for _, wp := range b.tracks {
		if t := wp.Value(); t != nil {
			ts = append(ts, t)
		}
	}
	b.regMu.Unlock()
	type entry struct {
		t    *Track
		read uint64
	}
	es := make([]entry, len(ts))
	for i, t := range ts {
		es[i] = entry{t, t.lastRead.Load()}
	}
	slices.SortFunc(es, func(x, y entry) int { return cmp.Compare(x.read, y.read) })
	for _, newest := range []bool{false, true} {
		for _, e := range es {
			over := b.used.Load() - target
			if over <= 0 {
				b.stuck.Store(0)
				return
			}
			groups, bytes := e.t.shed(over, newest)
			b.evictedGroups.Add(int64(groups))
			b.evictedBytes.Add(bytes)
		}
	}
	// Nothing more to evict: every track is down to its last event. Until
	// the total grows by another sixteenth of the limit, writes do not
	// scan the tracks again for nothing.
	b.stuck.Store(b.used.Load())
}

// shed evicts up to need bytes from t's cache: its older groups, smallest
// ID first, and with newest its newest group's oldest events too. It
// returns the groups touched and the bytes freed.
func (t *Track) shed(need int64, newest bool) (groups int, freed int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, 0
	}
	before := t.bytes
	for len(t.groups) > 1 && before-t.bytes < need {
		t.evictGroup(0)
		groups++
	}
	if newest && len(t.groups) == 1 && before-t.bytes < need {
		if t.truncate(t.groups[0], max(t.bytes-(need-(before-t.bytes)), 0)) {
			groups++
		}
	}
	t.trimLog()
	return groups, before - t.bytes
}
