package moqtransport

import (
	"testing"

	"github.com/moqgo/moq/moqtransport/wire"
)

// countTracer counts the control messages it sees.
type countTracer struct{ n *int }

func (c countTracer) ControlMessage(bool, wire.Message)                           { *c.n++ }
func (countTracer) SubgroupHeader(bool, *wire.SubgroupHeader)                     {}
func (countTracer) SubgroupObject(bool, *wire.SubgroupHeader, *wire.ObjectHeader) {}
func (countTracer) FetchHeader(bool, uint64)                                      {}
func (countTracer) FetchObject(bool, *wire.ObjectHeader)                          {}
func (countTracer) Datagram(bool, *wire.Datagram)                                 {}

// TestMultiTracer: every tracer that is not nil sees each event once; a
// single one is returned as it is, with nothing allocated.
func TestMultiTracer(t *testing.T) {
	var a, b int
	ta, tb := countTracer{&a}, countTracer{&b}
	MultiTracer(nil, ta, nil, tb).ControlMessage(true, &wire.GoAway{})
	MultiTracer(ta, nil).ControlMessage(true, &wire.GoAway{})
	MultiTracer().ControlMessage(true, &wire.GoAway{})
	if a != 2 || b != 1 {
		t.Errorf("events seen: %d and %d, want 2 and 1", a, b)
	}
	if got := MultiTracer(nil, tb, nil); got != Tracer(tb) {
		t.Errorf("a single tracer came back as %T", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = MultiTracer(nil, ta, nil) }); n != 0 {
		t.Errorf("MultiTracer of one tracer: %v allocations, want 0", n)
	}
}
