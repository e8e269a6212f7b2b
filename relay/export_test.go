package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/moqgo/moq/moqtransport"
	dto "github.com/prometheus/client_model/go"
)

// BytesReceived reads moq_relay_bytes_received_total.
func BytesReceived(r *Relay) int64 {
	var m dto.Metric
	_ = r.metrics.bytesReceived.Write(&m)
	return int64(m.GetCounter().GetValue())
}

// ReadCoordinatorFileLocked reads a coordinator file as the coordinator
// does, under its shared lock, so that a test never sees it half
// rewritten; a missing file reads as nil.
func ReadCoordinatorFileLocked(path string) ([]byte, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil, err
	}
	f, err := (&FileCoordinator{path: path}).read(context.Background())
	if err != nil {
		return nil, err
	}
	return json.Marshal(f)
}

// ObserveDelivery records one delivery latency, as the sessions do.
func ObserveDelivery(r *Relay, d time.Duration) { r.metrics.observeDelivery(d) }

// PendingGrants counts the request-token state the relay holds: noted
// grants not taken yet and live subscription expiry timers.
func PendingGrants(r *Relay) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.sessions {
		n += len(p.grants) + len(p.subExpiry)
	}
	return n
}

// TrackRefs counts the references to the relayed track ns/name of scope
// scName (its waiting and served subscribers); -1 when it has none.
func TrackRefs(r *Relay, scName string, ns []string, name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	sc := r.scopes[scName]
	if sc == nil {
		return -1
	}
	rt := sc.tracks[trackKey(ns, name)]
	if rt == nil {
		return -1
	}
	return rt.refs
}

// StatusWaiting counts the downstream TRACK_STATUS requests waiting for
// an upstream answer, over every flight in progress.
func StatusWaiting(r *Relay) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, f := range r.statuses {
		n += f.waiting
	}
	return n
}

// Timeouts returns the relay's UpstreamTimeout and TrackStatusTimeout as
// New settled them.
func Timeouts(r *Relay) (upstream, status time.Duration) {
	return r.cfg.UpstreamTimeout, r.cfg.TrackStatusTimeout
}

// EndFetchPause ends the pause in which the relay answers FETCHes for the
// publisher of ns (scope scName) from its cache without asking it, as if
// the pause's time had passed; it reports whether there was one.
func EndFetchPause(r *Relay, scName string, ns []string) bool {
	r.mu.Lock()
	sc := r.scopes[scName]
	var o *origin
	if sc != nil {
		o = sc.origins[nsKey(ns)]
	}
	r.mu.Unlock()
	if o == nil {
		return false
	}
	o.fetchSilence.mu.Lock()
	defer o.fetchSilence.mu.Unlock()
	paused := time.Now().Before(o.fetchSilence.until)
	o.fetchSilence.until = time.Time{}
	return paused
}

// Closing reports whether Close has begun.
func Closing(r *Relay) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// OnRemoteFound makes f run whenever a lookup has found the session to
// another relay, before the lookup counts its use of it.
func OnRemoteFound(r *Relay, f func(*moqtransport.Session)) { r.remoteFoundHook.Store(&f) }

// UpstreamIndex checks that Relay.upstream's two tables agree: every
// relayed track under its key is under the same key in its session's
// table, and nothing else is there (no track of another session, no
// session left with none). It returns how many tracks each session has
// in the index, in increasing order.
func UpstreamIndex(r *Relay) ([]int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := &r.upstream
	for key, rt := range u.byKey {
		if rt == nil {
			return nil, fmt.Errorf("no track under %v", key)
		}
		if key != rt.upstreamKey() {
			return nil, fmt.Errorf("track %q of scope %q is under another key (%q of scope %q)", rt.key, rt.scope, key.k, key.scope)
		}
		if got := u.byFrom[key.from][key]; got != rt {
			return nil, fmt.Errorf("track %q of scope %q is not in its session's table (it has %p)", rt.key, rt.scope, got)
		}
	}
	var counts []int
	n := 0
	for s, from := range u.byFrom {
		if len(from) == 0 {
			return nil, fmt.Errorf("a session is left with an empty table")
		}
		for key, rt := range from {
			if key.from != s || u.byKey[key] != rt {
				return nil, fmt.Errorf("track %q of scope %q is in a session's table but not under its key", rt.key, rt.scope)
			}
		}
		counts = append(counts, len(from))
		n += len(from)
	}
	if n != len(u.byKey) {
		return nil, fmt.Errorf("%d tracks by session, %d by key", n, len(u.byKey))
	}
	slices.Sort(counts)
	return counts, nil
}
