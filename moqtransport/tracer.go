package moqtransport

import "github.com/moqgo/moq/moqtransport/wire"

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
