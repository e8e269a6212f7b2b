package clock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Subscriber prints the clock from a track: "{object 0}{object N}" for every
// object N >= 1 of a group, and the payload of every datagram, one a line.
type Subscriber struct {
	// Out gets the lines.
	Out io.Writer
	// Logger gets what is not a clock line; nil is silent.
	Logger *slog.Logger
	// Joined are the objects a joining FETCH returned for the group the
	// subscription started in, from its object 0 (see cli.Join). Run
	// prints the newest timestamp they make at once, and the group's later
	// seconds with their date.
	Joined []*moqtransport.Object
}

// Run reads t from its oldest cached object until the track ends: it
// returns nil when the track ended normally, ctx.Err() when ctx ended, and
// the track's error (or a write error of Out) otherwise.
//
// Groups are read concurrently: their objects may arrive interleaved, each
// group keeps its own base. A group whose object 0 was not received (a
// subscription that starts in the middle of a minute begins after it) is
// skipped: its seconds cannot be printed without the date.
func (s *Subscriber) Run(ctx context.Context, t *moqtransport.Track) error {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := t.NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	bases := map[uint64]string{}  // group -> object 0
	baseless := map[uint64]bool{} // groups joined after object 0 (logged once)
	if line := s.join(bases); line != "" {
		if _, err := fmt.Fprintln(s.Out, line); err != nil {
			return err
		}
	}
	for {
		ev, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch ev.Kind {
		case moqtransport.EventObject:
			o := ev.Object
			if o.Status != wire.StatusNormal || len(o.Payload) == 0 {
				continue // a status object (or an empty one a relay re-made) has no time
			}
			if ev.Datagram {
				if _, err := fmt.Fprintln(s.Out, string(o.Payload)); err != nil {
					return err
				}
				continue
			}
			if o.ID == 0 {
				bases[o.Group] = string(o.Payload)
				continue
			}
			base, ok := bases[o.Group]
			if !ok {
				if !baseless[o.Group] {
					baseless[o.Group] = true
					log.Info("joined a minute after its first object: its seconds are not printed", "group", o.Group, "object", o.ID)
				}
				continue
			}
			if _, err := fmt.Fprintln(s.Out, base+string(o.Payload)); err != nil {
				return err
			}
		case moqtransport.EventSubgroupEnd, moqtransport.EventSubgroupAbort:
			delete(bases, ev.Group)
			delete(baseless, ev.Group)
			if ev.Kind == moqtransport.EventSubgroupAbort {
				log.Debug("group stream reset", "group", ev.Group, "code", ev.Code)
			}
		case moqtransport.EventSkipped:
			clear(bases)
			clear(baseless)
			log.Warn("fell behind the track; some seconds were dropped")
		}
	}
}

// join takes the bases of the Joined objects and returns the newest
// timestamp they make: a second with its group's date, or a datagram
// mode's full timestamp; "" if none.
func (s *Subscriber) join(bases map[uint64]string) string {
	var line string
	for _, o := range s.Joined {
		if o.Status != wire.StatusNormal || len(o.Payload) == 0 {
			continue
		}
		p := string(o.Payload)
		switch {
		case o.ID == 0 && isLayout(BaseLayout, p):
			bases[o.Group] = p
		case o.ID == 0 && isLayout(TimestampLayout, p):
			line = p // a datagram: one full timestamp a group
		case bases[o.Group] != "":
			line = bases[o.Group] + p
		}
	}
	return line
}

func isLayout(layout, s string) bool {
	_, err := time.Parse(layout, s)
	return err == nil
}
