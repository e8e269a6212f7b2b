package clock

import (
	"context"
	"sync"
	"time"
)

// Ticker wakes a publisher once a second.
type Ticker interface {
	// C delivers the current time at (or just after) every whole second.
	// A reader that falls behind gets the latest tick only.
	C() <-chan time.Time
	// Stop ends the ticks and releases the ticker.
	Stop()
}

// NewSecondTicker returns a Ticker of the system clock that ticks at every
// whole second, as moq-clock-ietf sleeps until the next second.
func NewSecondTicker() Ticker { return newSecondTicker(time.Now) }

type secondTicker struct {
	c    chan time.Time
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newSecondTicker(now func() time.Time) *secondTicker {
	t := &secondTicker{c: make(chan time.Time, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go t.run(now)
	return t
}

// untilNextSecond is how long from n to the next whole second.
func untilNextSecond(n time.Time) time.Duration {
	return n.Truncate(time.Second).Add(time.Second).Sub(n)
}

func (t *secondTicker) run(now func() time.Time) {
	defer close(t.done)
	timer := time.NewTimer(untilNextSecond(now()))
	defer timer.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-timer.C:
			select { // keep only the newest tick
			case <-t.c:
			default:
			}
			t.c <- now()
			timer.Reset(untilNextSecond(now()))
		}
	}
}

func (t *secondTicker) C() <-chan time.Time { return t.c }

func (t *secondTicker) Stop() {
	t.once.Do(func() { close(t.stop) })
	<-t.done
}

// Manual is a clock that a test drives: Now returns the time last set, and
// the tickers it makes tick only when Tick is called, with the time given.
// It is safe for concurrent use.
type Manual struct {
	mu  sync.Mutex
	now time.Time
	c   chan time.Time
}

// NewManual returns a Manual clock showing t.
func NewManual(t time.Time) *Manual { return &Manual{now: t, c: make(chan time.Time)} }

// Now returns the time last set.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Set moves the clock to t without a tick.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	m.now = t
	m.mu.Unlock()
}

// NewTicker returns a ticker that ticks on Tick.
func (m *Manual) NewTicker() Ticker { return manualTicker{m.c} }

// Tick moves the clock to t and delivers a tick, waiting until a ticker's
// reader takes it or ctx ends.
func (m *Manual) Tick(ctx context.Context, t time.Time) error {
	m.Set(t)
	select {
	case m.c <- t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type manualTicker struct{ c chan time.Time }

func (t manualTicker) C() <-chan time.Time { return t.c }
func (manualTicker) Stop()                 {}
