package router

import (
	"container/list"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wps-bridge/bridge/internal/wps"
)

// outcome is what a finished REST call tells the adaptive limiter.
type outcome uint8

const (
	outcomeNeutral  outcome = iota // neither success nor overload (e.g. 400, connection reset)
	outcomeSuccess                 // the call succeeded
	outcomeOverload                // 429, 408, 5xx or a timeout: the service is struggling
)

// limiter is a semaphore whose limit moves AIMD between min and max: halved on
// overload, +1 after a window of `limit` successes. A burst of overload
// answers halves it once: only a call started after the last decrease can
// decrease it again. Waiting calls are served in arrival order, one per free
// slot: a release hands its slot to the oldest waiter instead of waking them
// all.
type limiter struct {
	m *Metrics

	mu        sync.Mutex
	min, max  int
	limit     int
	inflight  int       // calls started, including slots handed to waiters not yet running
	epoch     uint64    // incremented on each decrease
	successes int       // since the last change of limit
	waiting   list.List // of chan uint64 (capacity 1): receives the epoch when a slot is handed over
}

func newLimiter(minimum, maximum int, m *Metrics) *limiter {
	l := &limiter{m: m, min: minimum, max: maximum, limit: maximum}
	m.setInflightLimit(maximum)
	return l
}

// acquire blocks until a call may start or ctx is done. It returns the epoch
// to hand back to release.
func (l *limiter) acquire(ctx context.Context) (uint64, error) {
	l.mu.Lock()
	if l.inflight < l.limit && l.waiting.Len() == 0 {
		l.inflight++
		epoch := l.epoch
		l.mu.Unlock()
		l.m.inflightDelta(1)
		return epoch, nil
	}
	ready := make(chan uint64, 1)
	elem := l.waiting.PushBack(ready)
	l.mu.Unlock()
	select {
	case epoch := <-ready: // the releaser counted this call in inflight
		l.m.inflightDelta(1)
		return epoch, nil
	case <-ctx.Done():
		l.mu.Lock()
		select {
		case <-ready: // handed a slot while giving up: pass it on
			l.inflight--
			l.handOffLocked()
		default:
			l.waiting.Remove(elem)
		}
		l.mu.Unlock()
		return 0, ctx.Err()
	}
}

// release ends a call started in epoch and adapts the limit to its outcome.
func (l *limiter) release(epoch uint64, o outcome) {
	l.mu.Lock()
	l.inflight--
	switch o {
	case outcomeOverload:
		if epoch == l.epoch && l.limit > l.min {
			l.limit = max(l.min, l.limit/2)
			l.epoch++
			l.successes = 0
			l.m.setInflightLimit(l.limit)
		}
	case outcomeSuccess:
		if l.limit < l.max {
			l.successes++
			if l.successes >= l.limit {
				l.limit++
				l.successes = 0
				l.m.setInflightLimit(l.limit)
			}
		}
	}
	l.handOffLocked()
	l.mu.Unlock()
	l.m.inflightDelta(-1)
}

// handOffLocked gives the free slots to the oldest waiters, counting them in
// inflight; each call starts in the current epoch.
func (l *limiter) handOffLocked() {
	for l.inflight < l.limit && l.waiting.Len() > 0 {
		ready := l.waiting.Remove(l.waiting.Front()).(chan uint64)
		l.inflight++
		ready <- l.epoch
	}
}

// current returns the limit (for tests and logs).
func (l *limiter) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// outcomeOf maps a call's error to what the limiter learns from it.
func outcomeOf(err error) outcome {
	if err == nil {
		return outcomeSuccess
	}
	if se, ok := errors.AsType[*wps.StatusError](err); ok {
		if c := se.StatusCode; c == http.StatusTooManyRequests || c == http.StatusRequestTimeout || c >= 500 {
			return outcomeOverload
		}
		return outcomeNeutral
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return outcomeOverload
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return outcomeOverload
	}
	return outcomeNeutral
}

// gate holds every new call until a Retry-After deadline has passed.
type gate struct {
	until atomic.Int64 // unix nanoseconds; 0 = open
}

// hold closes the gate until t (it only ever moves the deadline later).
func (g *gate) hold(t time.Time) {
	n := t.UnixNano()
	for {
		cur := g.until.Load()
		if cur >= n || g.until.CompareAndSwap(cur, n) {
			return
		}
	}
}

// wait blocks until the gate is open or ctx is done.
func (g *gate) wait(ctx context.Context) error {
	for {
		u := g.until.Load()
		if u == 0 {
			return nil
		}
		d := time.Until(time.Unix(0, u))
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// pauser stops reading while commands fail with systemic errors. Each such
// command enters once and leaves when it succeeds, fails otherwise, or is
// abandoned; reading resumes when none is left.
type pauser struct {
	mu      sync.Mutex
	count   int
	cause   error
	resumed chan struct{} // nil while not paused; closed on resume
}

func (p *pauser) enter(cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count++
	p.cause = cause
	if p.resumed == nil {
		p.resumed = make(chan struct{})
	}
}

// update records a newer cause while still paused.
func (p *pauser) update(cause error) {
	p.mu.Lock()
	p.cause = cause
	p.mu.Unlock()
}

// leave reports whether reading resumed (no systemic failure is left).
func (p *pauser) leave() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count--
	if p.count > 0 {
		return false
	}
	p.cause = nil
	close(p.resumed)
	p.resumed = nil
	return true
}

// err returns why reading is paused, or nil.
func (p *pauser) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count == 0 {
		return nil
	}
	return &pausedError{cause: p.cause}
}

// wait blocks while paused, until resumed or ctx is done.
func (p *pauser) wait(ctx context.Context) error {
	p.mu.Lock()
	ch := p.resumed
	p.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pausedError is what Ready returns while a systemic error pauses reading.
type pausedError struct{ cause error }

func (e *pausedError) Error() string { return "paused: " + e.cause.Error() }
func (e *pausedError) Unwrap() error { return e.cause }
