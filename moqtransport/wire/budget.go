package wire

import (
	"errors"
	"sync/atomic"
)

// ErrBudgetExhausted is returned (wrapped) when a reader would allocate
// more for an object in progress than its ByteBudget has left. Like
// ErrObjectTooLarge it is a local limit, not a protocol error: the receiver
// cancels the stream (draft-14 §"Resource Exhaustion": an endpoint "MUST
// cancel a stream ... after reaching a resource limit") and the session
// goes on.
var ErrBudgetExhausted = errors.New("wire: the budget for objects in progress is spent")

// ByteBudget bounds the bytes that StreamReaders hold for objects not yet
// complete: the buffers of partly read payloads and extensions. A session
// gives one to every data stream it reads, so what a peer can make it
// allocate by declaring large objects and sending little is bounded by the
// budget, whatever the number of streams. A budget may have a parent (for
// example one shared by every session of a process); a reservation must fit
// in both. It is safe for concurrent use; a nil *ByteBudget allows
// everything.
type ByteBudget struct {
	limit   int64
	parent  *ByteBudget
	used    atomic.Int64
	peak    atomic.Int64
	refused atomic.Int64
}

// NewByteBudget returns a budget of limit bytes (limit <= 0: no limit,
// only counted), charged to parent too when parent is not nil.
func NewByteBudget(limit int64, parent *ByteBudget) *ByteBudget {
	return &ByteBudget{limit: limit, parent: parent}
}

// Reserve takes n bytes from the budget (and its parent's), or takes
// nothing and reports false when they would exceed a limit.
func (b *ByteBudget) Reserve(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	for {
		used := b.used.Load()
		if b.limit > 0 && used+n > b.limit {
			b.refused.Add(1)
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			for {
				p := b.peak.Load()
				if used+n <= p || b.peak.CompareAndSwap(p, used+n) {
					break
				}
			}
			break
		}
	}
	if !b.parent.Reserve(n) {
		b.used.Add(-n)
		b.refused.Add(1)
		return false
	}
	return true
}

// Release returns n reserved bytes.
func (b *ByteBudget) Release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.used.Add(-n)
	b.parent.Release(n)
}

// BudgetStats is a snapshot of a ByteBudget.
type BudgetStats struct {
	Limit   int64 // 0: no limit
	Used    int64 // reserved now
	Peak    int64 // the most reserved at once
	Refused int64 // reservations refused
}

// Stats returns the budget's figures; the zero value for a nil budget.
func (b *ByteBudget) Stats() BudgetStats {
	if b == nil {
		return BudgetStats{}
	}
	return BudgetStats{Limit: b.limit, Used: b.used.Load(), Peak: b.peak.Load(), Refused: b.refused.Load()}
}
