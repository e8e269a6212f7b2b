package moqtransport

import (
	"testing"

	"github.com/moqgo/moq/moqtransport/wire"
)

// PUBLISH_OK's Subscriber Priority ranks the pushed track's streams
// (§7: subscriber priority first): it was stored and never used, so a
// pushed track stayed at DefaultPriority.
func TestPublishOKSubscriberPriorityRanks(t *testing.T) {
	sess := &Session{pending: map[uint64]*pendingRequest{}, served: map[uint64]*servedSubscription{}}
	p := &sess.sched
	track := NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"n"}, Name: "t"}, TrackConfig{})
	open := func(sv *servedSubscription) *prioStream {
		ps := &prioStream{prio: -1}
		p.add(&outStream{sv: sv, key: subgroupKey{1, 0}, pubPrio: 128, str: ps, urgency: -1, applied: -1})
		return ps
	}
	subscribed := &servedSubscription{s: sess, order: wire.GroupOrderAscending}
	subscribed.subPrio.Store(64)
	pushed := &servedSubscription{s: sess, order: wire.GroupOrderAscending, pushed: true, reader: track.NewReader(ReaderFilter{})}
	pushed.subPrio.Store(uint32(DefaultPriority))
	sess.pending[2] = &pendingRequest{kind: wire.TypePublish}
	sess.served[2] = pushed
	sub, push := open(subscribed), open(pushed)
	if sub.prio >= push.prio {
		t.Fatalf("before PUBLISH_OK: subscribed at %d, pushed at %d; want the subscribed (64) first", sub.prio, push.prio)
	}
	if err := sess.applyPublishOK(&wire.PublishOK{RequestID: 2, Forward: true, SubscriberPriority: 0,
		GroupOrder: wire.GroupOrderAscending, Filter: wire.Filter{Type: wire.FilterLargestObject}}); err != nil {
		t.Fatal(err)
	}
	if push.prio >= sub.prio {
		t.Errorf("after PUBLISH_OK with subscriber priority 0: pushed at %d, subscribed (64) at %d; want the pushed first", push.prio, sub.prio)
	}
}

// The streams that make room for a subscription's backlog are picked
// among those with something to give up: a stream whose writer has exited
// (with a FIN; it stays listed until exit removes it) was picked again and
// again, abandon did nothing to it, and the dispatcher spun.
func TestOldestStreamsSkipsExited(t *testing.T) {
	sv := &servedSubscription{}
	exited := &outStream{sv: sv, key: subgroupKey{1, 0}, exited: true, end: true}
	live := &outStream{sv: sv, key: subgroupKey{2, 0}}
	newest := &outStream{sv: sv, key: subgroupKey{3, 0}}
	got := oldestStreams([]*outStream{exited, live, newest}, newest, 1)
	if len(got) != 1 || got[0] != live {
		t.Errorf("oldest stream to abandon: %v, want group 2's (group 1's writer has exited)", got)
	}
}
