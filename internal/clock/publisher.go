package clock

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Publisher writes the clock into a track, once a second, and prints each
// timestamp it publishes.
type Publisher struct {
	// Track receives the objects.
	Track *moqtransport.Track
	// Datagrams publishes one datagram a second instead of a subgroup
	// stream a minute.
	Datagrams bool
	// Out gets one line ("YYYY-MM-DD HH:MM:SS") per published second; nil
	// prints nothing.
	Out io.Writer
	// Now reads the clock at start; nil means time.Now.
	Now func() time.Time
	// NewTicker makes the ticker that paces the publisher: each tick
	// carries the time to publish. nil means NewSecondTicker.
	NewTicker func() Ticker
}

// Run publishes the current second at once and then the second of every
// tick (a tick within a second already published publishes nothing), until
// ctx ends (it returns nil then, having ended the open subgroup with a FIN)
// or the track refuses an object. It does not close the track.
func (p *Publisher) Run(ctx context.Context) error {
	now, newTicker := p.Now, p.NewTicker
	if now == nil {
		now = time.Now
	}
	if newTicker == nil {
		newTicker = NewSecondTicker
	}
	out := p.Out
	if out == nil {
		out = io.Discard
	}
	tick := newTicker()
	defer tick.Stop()

	var emit func(time.Time) error
	if p.Datagrams {
		d := &datagramWriter{track: p.Track, out: out}
		emit = d.emit
	} else {
		s := &streamWriter{track: p.Track, out: out}
		defer s.close()
		emit = s.emit
	}
	if err := emit(now()); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case t := <-tick.C():
			if err := emit(t); err != nil {
				return err
			}
		}
	}
}

// streamWriter writes a group a minute on subgroup 0.
type streamWriter struct {
	track *moqtransport.Track
	out   io.Writer

	w       *moqtransport.SubgroupWriter
	group   uint64
	base    string
	seconds string
	next    uint64 // the next object ID
}

func (s *streamWriter) emit(t time.Time) error {
	base, seconds := Base(t), Seconds(t)
	if s.w != nil && base == s.base && seconds == s.seconds {
		return nil // a second tick within the same second
	}
	if s.w == nil || base != s.base {
		group := FirstGroup(t)
		if s.w != nil {
			// The minute changed: end its group's stream, start the next.
			group = s.group + 1
			s.close()
		}
		w, err := s.track.OpenSubgroup(group, 0, moqtransport.SubgroupOptions{Priority: StreamPriority})
		if err != nil {
			return fmt.Errorf("opening group %d: %w", group, err)
		}
		if err := w.WriteObject(0, []byte(base), nil); err != nil {
			w.Abort(uint64(wire.ResetInternalError))
			return fmt.Errorf("writing the base of group %d: %w", group, err)
		}
		s.w, s.group, s.base, s.next = w, group, base, 1
	}
	if err := s.w.WriteObject(s.next, []byte(seconds), nil); err != nil {
		return fmt.Errorf("writing object %d of group %d: %w", s.next, s.group, err)
	}
	s.next++
	s.seconds = seconds
	_, err := fmt.Fprintln(s.out, base+seconds)
	return err
}

// close ends the open subgroup with a FIN.
func (s *streamWriter) close() {
	if s.w != nil {
		_ = s.w.Close()
		s.w = nil
	}
}

// datagramWriter writes one datagram a second, a group each.
type datagramWriter struct {
	track   *moqtransport.Track
	out     io.Writer
	started bool
	group   uint64
	last    string
}

func (d *datagramWriter) emit(t time.Time) error {
	ts := Timestamp(t)
	if d.started && ts == d.last {
		return nil
	}
	if !d.started {
		d.group, d.started = FirstGroup(t), true
	} else {
		d.group++
	}
	d.last = ts
	err := d.track.WriteDatagram(moqtransport.Object{Group: d.group, ID: 0, PublisherPriority: DatagramPriority, Payload: []byte(ts)})
	if err != nil {
		return fmt.Errorf("writing datagram of group %d: %w", d.group, err)
	}
	_, err = fmt.Fprintln(d.out, ts)
	return err
}
