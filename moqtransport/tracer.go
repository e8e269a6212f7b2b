package moqtransport

import (
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// Tracer receives a session's MoQT events as they happen: every control
// message parsed or created, every subgroup header and object read or
// written, every datagram. Package mlog writes them as a qlog MoQT event
// log. Methods are called on the session's goroutines, concurrently; they
// must not block and must not keep the payloads.
type Tracer interface {
	ControlMessage(created bool, m wire.Message)
	SubgroupHeader(created bool, h *wire.SubgroupHeader)
	SubgroupObject(created bool, h *wire.SubgroupHeader, o *wire.ObjectHeader)
	FetchHeader(created bool, requestID uint64)
	FetchObject(created bool, o *wire.ObjectHeader)
	Datagram(created bool, d *wire.Datagram)
}

// MultiTracer returns a Tracer that passes every event to each of ts (nil
// ones are skipped). When only one is not nil, it is that one: a relay
// builds one per session, and most have only its metrics' tracer.
func MultiTracer(ts ...Tracer) Tracer {
	var one Tracer
	n := 0
	for _, t := range ts {
		if t != nil {
			one = t
			n++
		}
	}
	if n == 1 {
		return one
	}
	out := make(multiTracer, 0, n)
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

type multiTracer []Tracer

func (m multiTracer) ControlMessage(c bool, msg wire.Message) {
	for _, t := range m {
		t.ControlMessage(c, msg)
	}
}

func (m multiTracer) SubgroupHeader(c bool, h *wire.SubgroupHeader) {
	for _, t := range m {
		t.SubgroupHeader(c, h)
	}
}

func (m multiTracer) SubgroupObject(c bool, h *wire.SubgroupHeader, o *wire.ObjectHeader) {
	for _, t := range m {
		t.SubgroupObject(c, h, o)
	}
}

func (m multiTracer) FetchHeader(c bool, id uint64) {
	for _, t := range m {
		t.FetchHeader(c, id)
	}
}

func (m multiTracer) FetchObject(c bool, o *wire.ObjectHeader) {
	for _, t := range m {
		t.FetchObject(c, o)
	}
}

func (m multiTracer) Datagram(c bool, d *wire.Datagram) {
	for _, t := range m {
		t.Datagram(c, d)
	}
}

// observerGuard guards an observer of the session's (Config.Tracer,
// ObserveDelivery, ObserveHold): application code called on the session's
// delivery and reading goroutines, for every object, where nothing else
// recovers a panic (one crashed the process). A panic in the observer is
// logged at Error with its stack, and the session calls that observer no
// more: observing is not the session's work, so it and its requests go on
// without it. The guard is an atomic load and an open-coded defer per
// call.
type observerGuard struct {
	off  atomic.Bool
	s    *Session
	name string
}

// done recovers a panic of the observer (deferred by each call); method
// names the Tracer's method, if it is one.
func (g *observerGuard) done(method string) {
	if v := recover(); v != nil {
		g.off.Store(true)
		g.s.log.Error(g.name+" panicked; the session goes on without it", "method", method, "panic", v, "stack", string(debug.Stack()))
	}
}

// guardedTracer is the session's view of Config.Tracer (observerGuard).
type guardedTracer struct {
	t Tracer
	observerGuard
}

func (g *guardedTracer) ControlMessage(c bool, m wire.Message) {
	if g.off.Load() {
		return
	}
	defer g.done("ControlMessage")
	g.t.ControlMessage(c, m)
}

func (g *guardedTracer) SubgroupHeader(c bool, h *wire.SubgroupHeader) {
	if g.off.Load() {
		return
	}
	defer g.done("SubgroupHeader")
	g.t.SubgroupHeader(c, h)
}

func (g *guardedTracer) SubgroupObject(c bool, h *wire.SubgroupHeader, o *wire.ObjectHeader) {
	if g.off.Load() {
		return
	}
	defer g.done("SubgroupObject")
	g.t.SubgroupObject(c, h, o)
}

func (g *guardedTracer) FetchHeader(c bool, requestID uint64) {
	if g.off.Load() {
		return
	}
	defer g.done("FetchHeader")
	g.t.FetchHeader(c, requestID)
}

func (g *guardedTracer) FetchObject(c bool, o *wire.ObjectHeader) {
	if g.off.Load() {
		return
	}
	defer g.done("FetchObject")
	g.t.FetchObject(c, o)
}

func (g *guardedTracer) Datagram(c bool, d *wire.Datagram) {
	if g.off.Load() {
		return
	}
	defer g.done("Datagram")
	g.t.Datagram(c, d)
}

// guardObservers replaces the session's observers with guarded ones
// (observerGuard).
func (s *Session) guardObservers() {
	if t := s.cfg.Tracer; t != nil {
		s.cfg.Tracer = &guardedTracer{t: t, observerGuard: observerGuard{s: s, name: "Tracer"}}
	}
	if f := s.cfg.ObserveDelivery; f != nil {
		g := &observerGuard{s: s, name: "ObserveDelivery"}
		s.cfg.ObserveDelivery = func(wait time.Duration) {
			if g.off.Load() {
				return
			}
			defer g.done("")
			f(wait)
		}
	}
	if f := s.cfg.ObserveHold; f != nil {
		g := &observerGuard{s: s, name: "ObserveHold"}
		s.cfg.ObserveHold = func(held time.Duration, objects int) {
			if g.off.Load() {
				return
			}
			defer g.done("")
			f(held, objects)
		}
	}
}
