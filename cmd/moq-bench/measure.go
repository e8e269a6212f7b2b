package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moqgo/moq/internal/relayproc"
)

// recorder counts what the subscribers of one path read, and when. Every
// payload starts with its release time (ns since epoch, little-endian): the
// publishers and subscribers all live in this process, so one monotonic
// clock times both ends.
type recorder struct {
	epoch    time.Time
	size     int
	expected int64 // objects, summed over subscribers
	subs     []recSub
	got      atomic.Int64
	bytes    atomic.Int64
	bad      atomic.Int64
	skipped  atomic.Int64 // objects a subscriber's track reported lost
	last     atomic.Int64 // arrival of the last object, ns since epoch
	done     chan struct{}
	doneOnce sync.Once
}

type recSub struct {
	mu  sync.Mutex
	lat []int64
}

func newRecorder(epoch time.Time, n, size int, expected int64) *recorder {
	r := &recorder{epoch: epoch, size: size, expected: expected, subs: make([]recSub, n), done: make(chan struct{})}
	if n > 0 {
		per := expected / int64(n)
		for i := range r.subs {
			r.subs[i].lat = make([]int64, 0, per) // no growth while objects arrive
		}
	}
	return r
}

func (r *recorder) now() int64 { return int64(time.Since(r.epoch)) }

// record notes that subscriber i read payload p.
func (r *recorder) record(i int, p []byte) {
	at := int64(0)
	if len(p) >= 8 {
		at = int64(binary.LittleEndian.Uint64(p))
	}
	r.recordAt(i, at, len(p))
}

// recordAt notes that subscriber i read an n-byte payload stamped at (ns
// since epoch).
func (r *recorder) recordAt(i int, at int64, n int) {
	now := r.now()
	if n != r.size || n < 8 {
		r.bad.Add(1)
		return
	}
	s := &r.subs[i]
	s.mu.Lock()
	s.lat = append(s.lat, now-at)
	s.mu.Unlock()
	r.bytes.Add(int64(n))
	for {
		l := r.last.Load()
		if now <= l || r.last.CompareAndSwap(l, now) {
			break
		}
	}
	if r.got.Add(1) >= r.expected {
		r.doneOnce.Do(func() { close(r.done) })
	}
}

// latencies returns every latency recorded, sorted, in ns.
func (r *recorder) latencies() []int64 {
	var all []int64
	for i := range r.subs {
		s := &r.subs[i]
		s.mu.Lock()
		all = append(all, s.lat...)
		s.mu.Unlock()
	}
	slices.Sort(all)
	return all
}

func quantile(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(q*float64(len(sorted))), len(sorted)-1)
	return float64(sorted[i]) / 1e6
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc/PID/stat.
const clockTicks = 100

// procCPU reads utime+stime of process pid from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// rssSampler records the peak VmRSS of this process and of the relay (pid
// 0: none) while it runs.
type rssSampler struct {
	stop     chan struct{}
	done     chan struct{}
	selfPeak int64 // kB
	relPeak  int64 // kB
}

func startRSS(relayPID int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := func() {
		if v, err := relayproc.StatusKB(0, "VmRSS"); err == nil {
			s.selfPeak = max(s.selfPeak, v)
		}
		if relayPID > 0 {
			if v, err := relayproc.StatusKB(relayPID, "VmRSS"); err == nil {
				s.relPeak = max(s.relPeak, v)
			}
		}
	}
	sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return s
}

// finish stops sampling and returns the peaks in MB.
func (s *rssSampler) finish() (self, relay float64) {
	close(s.stop)
	<-s.done
	return float64(s.selfPeak) / 1024, float64(s.relPeak) / 1024
}
