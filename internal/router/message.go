package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/wps"
)

// failure is why a command, and so its message, failed for good.
type failure struct {
	err      error
	class    wps.Class
	status   int    // HTTP status, 0 when there was no response
	attempts int    // REST calls made for the failing command
	cmdID    string // the envelope's id, if any
	action   string // the failing command's action, "" for decode errors
}

// tracked is one source message between Read and its ack or nak.
type tracked struct {
	msg   *source.Message
	ack   source.AckFunc
	input string

	remaining atomic.Int32 // commands not yet finished
	finished  atomic.Bool  // acked or naked (exactly once)

	mu   sync.Mutex
	fail *failure // the first failure of one of its commands

	one [1]item // the lane item of a message with a single command (most of them)
}

func (t *tracked) setFailure(f *failure) {
	t.mu.Lock()
	if t.fail == nil {
		t.fail = f
	}
	t.mu.Unlock()
}

func (t *tracked) failure() *failure {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fail
}

// commandDone records the outcome of one of t's commands (f nil: success or
// dropped as expired); the last one to finish settles the message.
func (r *Router) commandDone(ctx context.Context, t *tracked, f *failure) {
	if f != nil {
		t.setFailure(f)
	}
	if t.remaining.Add(-1) == 0 {
		r.finish(ctx, t)
	}
}

// finish acks t, or dead-letters it and then acks it. If ctx (the lane's
// work context, or the reader's context for a decode failure) ends while the
// dead letter is published, t is naked at once with source.ErrShutdown, so
// that the drain does not wait for a message nobody works on.
func (r *Router) finish(ctx context.Context, t *tracked) {
	ackCtx := r.ackContext(ctx)
	f := t.failure()
	if f == nil {
		r.settle(ackCtx, t, nil)
		return
	}
	if r.dlq == nil {
		r.log.Error("message failed and no dead letter is configured: dropping it",
			"source", t.input, "origin", origin(t.msg), "id", f.cmdID, "class", f.class.String(),
			"attempts", f.attempts, "error", f.err)
		r.m.dropped(t.input, "no_dead_letter")
		r.settle(ackCtx, t, nil)
		return
	}
	if err := r.dlq.Publish(ctx, r.deadLetterMessage(t, f)); err != nil {
		if ctx.Err() != nil { // shutting down: give it back, it is not poison
			r.settle(ackCtx, t, source.ErrShutdown)
			return
		}
		err = fmt.Errorf("router: publish dead letter: %w", err)
		r.log.Error("dead letter publish failed: naking the message",
			"source", t.input, "origin", origin(t.msg), "id", f.cmdID, "class", f.class.String(), "error", err)
		r.settle(ackCtx, t, errors.Join(f.err, err))
		return
	}
	r.m.deadLettered(t.input, f.class)
	r.log.Warn("message dead-lettered",
		"source", t.input, "origin", origin(t.msg), "id", f.cmdID, "class", f.class.String(),
		"attempts", f.attempts, "error", f.err)
	r.settle(ackCtx, t, nil)
}

// ackContext is ctx without its cancellation: acks and naks must reach the
// broker even during shutdown. Run prepares it once; it is per message only
// outside Run.
func (r *Router) ackContext(ctx context.Context) context.Context {
	if r.ackCtx != nil {
		return r.ackCtx
	}
	return context.WithoutCancel(ctx)
}

// settle acks (err == nil) or naks t, exactly once, and frees its slot.
func (r *Router) settle(ctx context.Context, t *tracked, err error) {
	if !t.finished.CompareAndSwap(false, true) {
		return
	}
	if aerr := t.ack(ctx, err); aerr != nil {
		verb := "ack"
		if err != nil {
			verb = "nak"
		}
		r.log.Error("source "+verb+" failed", "source", t.input, "origin", origin(t.msg), "error", aerr)
	}
	if err == nil {
		r.m.acked(t.input)
	} else {
		r.m.nacked(t.input)
	}
	r.pending.remove(t)
}

// pendingSet holds the messages read but not yet settled: it bounds them
// (MaxPending), tells when it is empty after the readers stopped, and lets
// shutdown nak the rest.
type pendingSet struct {
	slots chan struct{}
	m     *Metrics

	mu     sync.Mutex
	set    map[*tracked]struct{}
	closed bool // no more adds: idle is closed once set is empty
	idle   chan struct{}
}

func newPendingSet(limit int, m *Metrics) *pendingSet {
	return &pendingSet{
		slots: make(chan struct{}, limit),
		m:     m,
		set:   make(map[*tracked]struct{}, min(limit, 1024)),
		idle:  make(chan struct{}),
	}
}

// acquire blocks until a message may be read, or ctx is done.
func (p *pendingSet) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives back a slot taken by acquire that did not become a message.
func (p *pendingSet) release() { <-p.slots }

func (p *pendingSet) add(t *tracked) {
	p.mu.Lock()
	p.set[t] = struct{}{}
	p.mu.Unlock()
	p.m.pendingDelta(1)
}

func (p *pendingSet) remove(t *tracked) {
	p.mu.Lock()
	delete(p.set, t)
	if p.closed && len(p.set) == 0 {
		closeOnce(p.idle)
	}
	p.mu.Unlock()
	<-p.slots
	p.m.pendingDelta(-1)
}

// closeAdds marks the end of reading and returns a channel closed once every
// pending message is settled.
func (p *pendingSet) closeAdds() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if len(p.set) == 0 {
		closeOnce(p.idle)
	}
	return p.idle
}

func (p *pendingSet) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.set)
}

// abandonAll naks every unsettled message with source.ErrShutdown and returns
// how many it naked. Only call it once nothing else settles messages.
func (p *pendingSet) abandonAll(ctx context.Context, r *Router) int {
	p.mu.Lock()
	left := make([]*tracked, 0, len(p.set))
	for t := range p.set {
		left = append(left, t)
	}
	p.mu.Unlock()
	for _, t := range left {
		r.settle(ctx, t, source.ErrShutdown)
	}
	return len(left)
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}
