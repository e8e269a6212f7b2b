package moqtransport

// Track aliases of ended subscriptions.
//
// A publisher goes on sending a subscription's data for a while after we
// end it: streams it had opened, or opens before our UNSUBSCRIBE reaches
// it. Their alias is no longer known, and the draft asks a subscriber to
// "retain sufficient state to quickly discard these unwanted Objects,
// rather than treating them as belonging to an unknown Track Alias"
// (draft-14 §10.1). Treated as unknown, each waited the whole
// PendingStreamTimeout for a SUBSCRIBE_OK that never comes, in one of the
// MaxPendingStreams places, and pushed out a stream that came just before
// its own SUBSCRIBE_OK. So the session remembers the aliases of the
// subscriptions that ended and stops their streams at once.
//
// An alias is remembered when the subscription holding it ends (ours,
// or a track the peer pushed with PUBLISH), when a late SUBSCRIBE_OK
// names it for a SUBSCRIBE we gave up, and when we refuse a PUBLISH. It is
// forgotten when a SUBSCRIBE_OK or PUBLISH names it again: the draft only
// forbids one alias for two tracks at the same time (§9.8), so a
// publisher may reuse it once the subscription ended; data for the reused
// alias that comes before its SUBSCRIBE_OK cannot be told from the old
// subscription's and is stopped too.
//
// Memory: at most endedAliasesKept aliases, 16 bytes each and an index
// entry (tens of kilobytes in all), made as
// subscriptions end (a session that never ends one holds none). A
// publisher can add to them only by ending subscriptions, and each one
// took a request ID (a SUBSCRIBE of ours, or a PUBLISH of its own within
// our MAX_REQUEST_ID grant); past the bound the oldest is forgotten, and
// a late stream for it waits like one for an unknown alias, within
// MaxPendingStreams and PendingStreamTimeout. A hostile publisher can thus
// make us forget, not grow.
const endedAliasesKept = 1024

// aliasRing holds the aliases of the latest endedAliasesKept
// subscriptions that ended. A lookup (made for every waiting stream each
// time the session learns of an alias) is one map read: latest maps each
// alias to the number of its latest ending; the ring keeps the endings in
// order, to forget the oldest, and an ending whose alias ended again since
// or was forgotten (its number is no longer latest's) forgets nothing.
type aliasRing struct {
	ring   []endedAlias // up to endedAliasesKept
	next   int          // the place the next ending takes once it is full
	seq    uint64       // the endings numbered so far
	latest map[uint64]uint64
}

type endedAlias struct{ alias, seq uint64 }

func (r *aliasRing) add(alias uint64) {
	if r.latest == nil {
		r.latest = map[uint64]uint64{}
	}
	r.seq++
	e := endedAlias{alias, r.seq}
	r.latest[alias] = e.seq
	if len(r.ring) < endedAliasesKept {
		r.ring = append(r.ring, e)
		return
	}
	if old := r.ring[r.next]; r.latest[old.alias] == old.seq {
		delete(r.latest, old.alias)
	}
	r.ring[r.next] = e
	r.next = (r.next + 1) % endedAliasesKept
}

func (r *aliasRing) has(alias uint64) bool {
	_, ok := r.latest[alias]
	return ok
}

// forget drops alias: its endings left in the ring no longer count.
func (r *aliasRing) forget(alias uint64) { delete(r.latest, alias) }

// publishRefused remembers the alias of a PUBLISH this session refused:
// the streams the peer sent under it are stopped at once.
func (s *Session) publishRefused(alias uint64) {
	s.mu.Lock()
	s.aliasEndedLocked(alias)
	s.mu.Unlock()
}

// aliasEndedLocked remembers the alias of a subscription that ended (or
// that a late SUBSCRIBE_OK or a refused PUBLISH named), unless a live
// subscription holds it, and tells the streams waiting for their alias.
// Called with s.mu held.
func (s *Session) aliasEndedLocked(alias uint64) {
	if _, bound := s.subsByAlas[alias]; bound {
		return
	}
	s.endedAliases.add(alias)
	s.aliasNewsLocked()
}

// aliasNewsLocked wakes the data streams waiting for their alias, to look
// again. Only the streams in s.waiting wait on the channel (each takes it
// under s.mu and leaves s.waiting when it stops waiting), so with none
// there is nothing to wake, and no channel is made: a SUBSCRIBE answered
// or ended costs no allocation here. Called with s.mu held.
func (s *Session) aliasNewsLocked() {
	if len(s.waiting) == 0 {
		return
	}
	close(s.aliasNews)
	s.aliasNews = make(chan struct{})
}

// aliasMayComeLocked tells whether a data stream for an alias the session
// does not know can still become valid: a SUBSCRIBE of ours waits for its
// answer, whose SUBSCRIBE_OK may name the alias, or the peer may push a
// track with PUBLISH (we have a handler for it). A publisher opens a
// subscription's streams only after it got the SUBSCRIBE, so with none of
// ours waiting and no PUBLISH taken, no control message to come can name
// the alias (draft-14 §10.4.2 allows abandoning the stream; buffering is
// only "to handle reordering with the control message that establishes
// the Track Alias"). The draft ties an alias to nothing else: the
// publisher chooses it freely in SUBSCRIBE_OK or PUBLISH (§10.1), so an
// alias that is not one of our request IDs may still be valid. Called with
// s.mu held.
func (s *Session) aliasMayComeLocked() bool {
	return s.subscribesOut > 0 || s.cfg.Handler.Publish != nil
}
