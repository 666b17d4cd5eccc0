package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds the GOGC the tuner sets: the heap may grow to at most
// five times the live heap of the last cycle. The bound matters when the live
// heap jumps between two cycles (a burst of fetched records): the GOGC set
// for a small heap applies to the bigger one until the next cycle.
const maxPercent = 400

const liveMetric = "/gc/heap/live:bytes"

// The tuner is process-wide, like GOGC: Starts nest, the last stop restores.
var (
	mu      sync.Mutex
	starts  int
	current *tuner
)

type tuner struct {
	floor uint64
	base  int // GOGC when tuning started

	mu      sync.Mutex
	stopped bool
	percent int // GOGC set last
	sample  [1]metrics.Sample
}

// sentinel is garbage whose cleanup marks the end of a GC cycle. It holds a
// pointer and is larger than the tiny allocator's 16 bytes so that it gets an
// allocation of its own.
type sentinel struct {
	_ [4]*byte
}

// Start makes the collector leave at least floor bytes of growth over the
// live heap between cycles, within maxPercent: after every cycle GOGC is set
// to max(base, min(400, 100·floor/live)), base being the GOGC in force at the
// first Start. It reports whether it tunes: it does nothing (and stop does
// nothing) when floor is 0, when the GOGC environment variable is set (the
// operator chose), when the collector is off or when the runtime does not
// report the live heap. Calls nest: the tuner keeps
// the floor of the first Start, and the last stop ends it and restores base.
func Start(floor uint64) (stop func(), tuning bool) {
	noop := func() {}
	if floor == 0 || os.Getenv("GOGC") != "" {
		return noop, false
	}
	mu.Lock()
	defer mu.Unlock()
	if starts == 0 {
		base := GOGC()
		t := &tuner{floor: floor, base: base, percent: base}
		t.sample[0].Name = liveMetric
		metrics.Read(t.sample[:])
		if base < 0 || t.sample[0].Value.Kind() != metrics.KindUint64 {
			return noop, false // collector off, or a runtime without the live-heap metric
		}
		current = t
		current.arm()
	}
	starts++
	t := current
	var once sync.Once
	return func() { once.Do(func() { release(t) }) }, true
}

func release(t *tuner) {
	mu.Lock()
	defer mu.Unlock()
	starts--
	if starts > 0 {
		return
	}
	current = nil
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetGCPercent(t.base)
}

// arm allocates a sentinel whose cleanup runs cycle once a GC found it
// unreachable, that is, after the next cycle.
func (t *tuner) arm() {
	runtime.AddCleanup(&sentinel{}, (*tuner).cycle, t)
}

// cycle adapts GOGC to the live heap of the cycle that just ended, and
// re-arms.
func (t *tuner) cycle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	metrics.Read(t.sample[:])
	if p := percentFor(t.floor, t.sample[0].Value.Uint64(), t.base); p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	t.arm()
}

// GOGC returns the GOGC in force (negative: the collector is off).
func GOGC() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// percentFor is the GOGC that lets a heap of live bytes grow by at least
// floor bytes, and never less than base.
func percentFor(floor, live uint64, base int) int {
	if live == 0 || floor*100/live >= maxPercent {
		return max(base, maxPercent)
	}
	return max(base, int(floor*100/live))
}
