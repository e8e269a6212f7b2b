package eyevinn

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Eyevinn/moqtransport"
)

// The clock format of moq-clock (moq-rs's moq-clock-ietf): a group a
// minute whose object 0 is "YYYY-MM-DD HH:MM:" and whose objects 1..n are
// the seconds "SS"; or one datagram a second, object 0, payload
// "YYYY-MM-DD HH:MM:SS", the group ID adding one a second.
var (
	baseRE      = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:$`)
	secondsRE   = regexp.MustCompile(`^\d{2}$`)
	timestampRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)
)

// knownBase is object 0 of group g as the Eyevinn publishers write it: the
// minute is the group ID, so that a moq-clock line names its group.
func knownBase(g uint64) string { return fmt.Sprintf("2026-01-01 00:%02d:", g%60) }

// knownSeconds is object i (i >= 1) of any group: its ID, so that a
// moq-clock line names its object.
func knownSeconds(i uint64) string { return fmt.Sprintf("%02d", i) }

// knownTimestamp is the payload of the i-th datagram.
func knownTimestamp(i uint64) string { return fmt.Sprintf("2026-01-01 00:00:%02d", i) }

// clockTrack is an Eyevinn publisher of one track in moq-clock's format,
// with payloads that name their group and object IDs: group g's object 0
// is knownBase(g), its object i is knownSeconds(i). It serves every
// SUBSCRIBE for its track and refuses others with TRACK_DOES_NOT_EXIST.
type clockTrack struct {
	ns   []string
	name string

	// Finite publication: these groups, each with objects 0..objects on
	// one subgroup stream, then PUBLISH_DONE (TRACK_ENDED).
	groups  []uint64
	objects uint64
	// datagrams sends datagrams instead: one per group in groups, object
	// 0, payload knownTimestamp(i) for the i-th.
	datagrams bool
	// live publishes groups 0, 1, 2, ... (objects 0 and 1) every interval
	// until the subscriber unsubscribes, then sends PUBLISH_DONE.
	live     bool
	interval time.Duration

	mu         sync.Mutex
	subscribes []*moqtransport.SubscribeMessage
	sent       []string // "group/object" of every object written
	changed    chan struct{}
	ended      []error // how each publication ended
}

func newClockTrack(ns []string, name string) *clockTrack {
	return &clockTrack{ns: ns, name: name, changed: make(chan struct{}), interval: 50 * time.Millisecond}
}

func (c *clockTrack) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// expectedLines is what a moq-clock subscriber prints for a finite
// publication.
func (c *clockTrack) expectedLines() []string {
	var out []string
	for i, g := range c.groups {
		if c.datagrams {
			out = append(out, knownTimestamp(uint64(i)))
			continue
		}
		for o := uint64(1); o <= c.objects; o++ {
			out = append(out, knownBase(g)+knownSeconds(o))
		}
	}
	return out
}

// HandleSubscribe implements moqtransport.SubscribeHandler. Eyevinn calls
// it on its control-stream reader, so it answers at once and publishes on
// its own goroutine.
func (c *clockTrack) HandleSubscribe(w *moqtransport.SubscribeResponseWriter, m *moqtransport.SubscribeMessage) {
	if !slices.Equal(m.Namespace, c.ns) || m.Track != c.name {
		_ = w.Reject(moqtransport.ErrorCodeSubscribeTrackDoesNotExist, "unknown track")
		return
	}
	if err := w.Accept(); err != nil {
		return
	}
	c.mu.Lock()
	c.subscribes = append(c.subscribes, m)
	c.notifyLocked()
	c.mu.Unlock()
	go func() {
		err := c.publish(w)
		c.mu.Lock()
		c.ended = append(c.ended, err)
		c.notifyLocked()
		c.mu.Unlock()
	}()
}

func (c *clockTrack) record(g, o uint64) {
	c.mu.Lock()
	c.sent = append(c.sent, fmt.Sprintf("%d/%d", g, o))
	c.notifyLocked()
	c.mu.Unlock()
}

// publish writes the objects, then ends the subscription with
// PUBLISH_DONE: TRACK_ENDED, or SUBSCRIPTION_ENDED once unsubscribed. It
// returns nil, or the error that ended the live publication.
func (c *clockTrack) publish(w *moqtransport.SubscribeResponseWriter) error {
	// Let SUBSCRIBE_OK go first: a datagram that overtakes it has an
	// unknown Track Alias, which a receiver may drop (§10.3).
	time.Sleep(50 * time.Millisecond)
	if c.live {
		for g := uint64(0); ; g++ {
			sg, err := w.OpenSubgroup(g, 0, 0)
			if err != nil {
				// Eyevinn refuses new subgroups once the subscriber
				// unsubscribed.
				_ = w.CloseWithError(0x3, "unsubscribed") // SUBSCRIPTION_ENDED
				return err
			}
			if _, err := sg.WriteObject(0, []byte(knownBase(g))); err == nil {
				c.record(g, 0)
			}
			if _, err := sg.WriteObject(1, []byte(knownSeconds(1))); err == nil {
				c.record(g, 1)
			}
			_ = sg.Close()
			time.Sleep(c.interval)
		}
	}
	for i, g := range c.groups {
		if c.datagrams {
			if err := w.SendDatagram(moqtransport.Object{GroupID: g, ObjectID: 0, Payload: []byte(knownTimestamp(uint64(i)))}); err != nil {
				return err
			}
			c.record(g, 0)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		sg, err := w.OpenSubgroup(g, 0, 0)
		if err != nil {
			return err
		}
		if _, err := sg.WriteObject(0, []byte(knownBase(g))); err != nil {
			return err
		}
		c.record(g, 0)
		for o := uint64(1); o <= c.objects; o++ {
			if _, err := sg.WriteObject(o, []byte(knownSeconds(o))); err != nil {
				return err
			}
			c.record(g, o)
		}
		if err := sg.Close(); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	return w.CloseWithError(codeTrackEnded, "track ended")
}

// subscribeCount is how many SUBSCRIBEs the track accepted.
func (c *clockTrack) subscribeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subscribes)
}

// endedWith is how the first publication ended; ok is false while it runs.
func (c *clockTrack) endedWith() (err error, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ended) == 0 {
		return nil, false
	}
	return c.ended[0], true
}

// wait waits until cond holds on the track's state.
func (c *clockTrack) wait(ctx context.Context, what string, cond func() bool) error {
	for {
		c.mu.Lock()
		ok, ch := cond(), c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// object is an object an Eyevinn subscriber read.
type object struct {
	group, subgroup, id uint64
	payload             string
}

func (o object) String() string {
	return fmt.Sprintf("g%d/s%d/o%d %q", o.group, o.subgroup, o.id, o.payload)
}

// reader reads an Eyevinn RemoteTrack on its own goroutine.
type reader struct {
	mu      sync.Mutex
	objects []object
	err     error // why reading stopped
	changed chan struct{}
	done    chan struct{}
}

func readTrack(ctx context.Context, rt *moqtransport.RemoteTrack) *reader {
	r := &reader{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			o, err := rt.ReadObject(ctx)
			r.mu.Lock()
			if o != nil {
				// Eyevinn returns a buffered object with a plain
				// context.Canceled once the subscription is done; the
				// next read returns the PUBLISH_DONE (or the next
				// buffered object).
				// Object.ForwardingPreference cannot tell datagrams
				// from streams: Eyevinn v0.9.0 gives both constants
				// the value 0.
				r.objects = append(r.objects, object{group: o.GroupID, subgroup: o.SubGroupID, id: o.ObjectID, payload: string(o.Payload)})
			} else if err != nil {
				r.err = err
			}
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
			if o == nil && err != nil {
				return
			}
		}
	}()
	return r
}

// waitObjects waits until at least n objects were read, or reading ended.
func (r *reader) waitObjects(ctx context.Context, n int) ([]object, error) {
	for {
		r.mu.Lock()
		objs, err, ch := slices.Clone(r.objects), r.err, r.changed
		r.mu.Unlock()
		if len(objs) >= n {
			return objs, nil
		}
		if err != nil {
			return objs, fmt.Errorf("the track ended after %d objects, want %d: %w", len(objs), n, err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return objs, fmt.Errorf("read %d objects, want %d: %w", len(objs), n, ctx.Err())
		}
	}
}

// end waits until reading ended and returns why.
func (r *reader) end(ctx context.Context) ([]object, error) {
	select {
	case <-r.done:
	case <-ctx.Done():
		return r.snapshot(), fmt.Errorf("the track did not end: %w", ctx.Err())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.objects), r.err
}

func (r *reader) snapshot() []object {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.objects)
}

// subscribeDone returns the status of a PUBLISH_DONE that ended a read.
func subscribeDone(err error) (uint64, bool) {
	var d *moqtransport.ErrSubscribeDone
	if errors.As(err, &d) {
		return d.Status, true
	}
	return 0, false
}

// clockObjects maps a moq-clock publisher's printed lines to the objects
// it published: "group/object" -> payload. In stream mode the first group
// is the minute of the first line and each later minute adds one; object
// 0 of each group is the base, object k its k-th second. In datagram mode
// each line is a group (the first the minute, then one more a line) with
// object 0.
func clockObjects(lines []string, datagrams bool) (map[string]string, error) {
	out := map[string]string{}
	var group, next uint64
	var base string
	for i, l := range lines {
		if !timestampRE.MatchString(l) {
			return nil, fmt.Errorf("publisher line %q is not YYYY-MM-DD HH:MM:SS", l)
		}
		t, err := time.Parse("2006-01-02 15:04:05", l)
		if err != nil {
			return nil, err
		}
		if datagrams {
			if i == 0 {
				group = uint64(t.Minute())
			} else {
				group++
			}
			out[fmt.Sprintf("%d/0", group)] = l
			continue
		}
		b, s := l[:17], l[17:]
		switch {
		case i == 0:
			group, base, next = uint64(t.Minute()), b, 1
			out[fmt.Sprintf("%d/0", group)] = b
		case b != base:
			group, base, next = group+1, b, 1
			out[fmt.Sprintf("%d/0", group)] = b
		}
		out[fmt.Sprintf("%d/%d", group, next)] = s
		next++
	}
	return out, nil
}

// checkClockObjects checks what an Eyevinn subscriber read from a moq-clock
// publisher against the lines the publisher printed: every object has the
// format of its kind, the group and object IDs and payload the publisher
// gave it, and the object IDs of each group follow each other.
func checkClockObjects(t *testing.T, objs []object, lines []string, datagrams bool) {
	t.Helper()
	want, err := clockObjects(lines, datagrams)
	if err != nil {
		t.Fatal(err)
	}
	last := map[uint64]uint64{}
	for _, o := range objs {
		switch {
		case datagrams:
			if o.id != 0 || !timestampRE.MatchString(o.payload) {
				t.Errorf("%v: want object 0 with a 19-byte YYYY-MM-DD HH:MM:SS payload", o)
			}
		case o.id == 0:
			if !baseRE.MatchString(o.payload) {
				t.Errorf("%v: want object 0 to be the 17-byte base YYYY-MM-DD HH:MM:", o)
			}
		default:
			if !secondsRE.MatchString(o.payload) {
				t.Errorf("%v: want 2 digits", o)
			}
		}
		key := fmt.Sprintf("%d/%d", o.group, o.id)
		if p, ok := want[key]; !ok {
			t.Errorf("%v: the publisher printed no object %s", o, key)
		} else if p != o.payload {
			t.Errorf("%v: the publisher's object %s is %q", o, key, p)
		}
		if !datagrams {
			if prev, ok := last[o.group]; ok && o.id != prev+1 {
				t.Errorf("%v: follows object %d of its group", o, prev)
			}
			last[o.group] = o.id
		}
	}
	if t.Failed() {
		t.Logf("publisher lines:\n%s", strings.Join(lines, "\n"))
	}
}
