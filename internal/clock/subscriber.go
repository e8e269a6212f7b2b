package clock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Subscriber prints the clock from a track: "{object 0}{object N}" for every
// object N >= 1 of a group, and the payload of every datagram, one a line.
//
// Payloads come from the network (a publisher or relay of any
// implementation) and the lines usually go to a terminal: only payloads of
// the clock's layouts are printed (object 0 as BaseLayout, the seconds as
// a number 0..60 (isSeconds), a datagram as TimestampLayout). Anything else is logged
// at Warn with a short, escaped excerpt and skipped, so that no escape
// sequence or oversized line reaches Out.
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
			p := string(o.Payload)
			if ev.Datagram {
				if !isLayout(TimestampLayout, p) {
					warnPayload(log, "datagram", o)
					continue
				}
				if _, err := fmt.Fprintln(s.Out, p); err != nil {
					return err
				}
				continue
			}
			if o.ID == 0 {
				if !isLayout(BaseLayout, p) {
					warnPayload(log, "base", o)
					baseless[o.Group] = true // its seconds are skipped without another log line
					continue
				}
				bases[o.Group] = p
				continue
			}
			if !isSeconds(p) {
				warnPayload(log, "seconds", o)
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
			if _, err := fmt.Fprintln(s.Out, base+p); err != nil {
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
		case o.ID == 0:
			warnPayload(s.Logger, "base", o)
		case !isSeconds(p):
			warnPayload(s.Logger, "seconds", o)
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

// isSeconds reports whether s is a seconds object: one or two ASCII
// digits, 0..60, optionally a fraction (a dot and up to nine digits).
// moq-rs writes two digits (SecondsLayout; older versions "SS.mmm");
// moxygen's date publisher writes the number without a leading zero; 60
// is a leap second.
func isSeconds(s string) bool {
	whole, frac, dotted := strings.Cut(s, ".")
	if len(whole) < 1 || len(whole) > 2 || !allDigits(whole) || (dotted && (len(frac) < 1 || len(frac) > 9 || !allDigits(frac))) {
		return false
	}
	n, _ := strconv.Atoi(whole)
	return n <= 60
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// excerptLen bounds the payload excerpt logged for an invalid object.
const excerptLen = 32

// warnPayload logs an object whose payload is not of the clock's layouts,
// with at most excerptLen bytes of it, Go-quoted (control bytes escaped).
// A nil log is silent.
func warnPayload(log *slog.Logger, what string, o *moqtransport.Object) {
	if log == nil {
		return
	}
	p := o.Payload
	if len(p) > excerptLen {
		p = p[:excerptLen]
	}
	log.Warn("skipped an object that is not a clock "+what, "group", o.Group, "object", o.ID,
		"size", len(o.Payload), "excerpt", strconv.Quote(string(p)))
}
