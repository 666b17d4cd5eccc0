package router

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"

	retry "github.com/sethvargo/go-retry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/wps"
)

// touchInterval is how often a retrying message is touched (JetStream
// InProgress) while the router waits to retry it.
const touchInterval = 5 * time.Second

// lane is one ordering lane's worker state. Only its goroutine uses it.
type lane struct {
	r      *Router
	q      chan *item
	batch  []*item
	linger *time.Timer
	call   call
}

// runLane sends the lane's commands one after another until ctx is done.
// Items it takes but does not finish are naked on shutdown with their message.
func (r *Router) runLane(ctx context.Context, q chan *item) {
	// The calls' timeout contexts register with the lane's own context, not
	// with the one all lanes share (and contend for).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := &lane{r: r, q: q, batch: make([]*item, 0, 8)}
	var carry *item
	for {
		it := carry
		carry = nil
		if it == nil {
			select {
			case <-ctx.Done():
				return
			case it = <-q:
				r.m.queued(-1)
			}
		}
		if ctx.Err() != nil {
			return
		}
		l.batch = append(l.batch[:0], it)
		if coalescible(it.cmd) {
			carry = l.gather(ctx)
		}
		l.deliver(ctx, l.batch)
		clear(l.batch)
	}
}

// coalescible reports a JSON send whose route opted into coalescing.
func coalescible(c *codec.Command) bool {
	if c.Coalesce == nil || c.Coalesce.Count < 2 || c.DataType != codec.DataJSON {
		return false
	}
	switch c.Action {
	case codec.SendToAll, codec.SendToGroup, codec.SendToUser, codec.SendToConnection:
		return true
	}
	return false
}

// mergeable reports whether b may share one JSON-array call with a: same key,
// action, hub, target, options and coalescing policy.
func mergeable(a, b *codec.Command) bool {
	return b.Coalesce != nil && *a.Coalesce == *b.Coalesce && b.DataType == codec.DataJSON &&
		a.Key == b.Key && a.Action == b.Action && a.Hub == b.Hub &&
		a.Group == b.Group && a.UserID == b.UserID && a.ConnectionID == b.ConnectionID &&
		a.Filter == b.Filter && a.TTL == b.TTL && slices.Equal(a.Excluded, b.Excluded)
}

// gather appends to l.batch the commands directly following batch[0] in the
// lane's queue that can merge with it, waiting up to Linger for them, bounded
// by Count and Bytes. It returns the first item that cannot merge (to be
// processed next), or nil.
func (l *lane) gather(ctx context.Context) *item {
	first := l.batch[0].cmd
	pol := first.Coalesce
	size := len(first.Data) + 2
	waiting := false
	defer func() {
		if waiting {
			l.linger.Stop()
		}
	}()
	for len(l.batch) < pol.Count {
		var next *item
		select {
		case next = <-l.q:
		default:
			if pol.Linger <= 0 {
				return nil
			}
			if !waiting {
				waiting = true
				if l.linger == nil {
					l.linger = time.NewTimer(pol.Linger)
				} else {
					l.linger.Reset(pol.Linger)
				}
			}
			select {
			case next = <-l.q:
			case <-l.linger.C:
				waiting = false
				return nil
			case <-ctx.Done():
				return nil
			}
		}
		l.r.m.queued(-1)
		if !mergeable(first, next.cmd) || (pol.Bytes > 0 && size+1+len(next.cmd.Data) > pol.Bytes) {
			return next
		}
		l.batch = append(l.batch, next)
		size += 1 + len(next.cmd.Data)
	}
	return nil
}

// call is the scratch state of one delivery (one or more merged commands).
type call struct {
	cmd     codec.Command // a modified copy: capped TTL, merged body
	body    bytes.Buffer  // merged JSON array
	bodyFor int           // how many items body holds
}

// deliver sends batch (one command, or merged ones) until it succeeds, fails
// for good, or ctx ends (then the messages are left for the shutdown nak).
// Expired commands are dropped before every attempt.
func (l *lane) deliver(ctx context.Context, batch []*item) {
	r := l.r
	l.call.bodyFor = 0
	var (
		bo        retry.Backoff
		attempts  int
		paused    bool
		lastTouch time.Time
	)
	defer func() {
		switch {
		case !paused:
		case ctx.Err() != nil: // abandoned on shutdown: nothing healed
			r.pause.leave()
		default: // every command of the batch expired while paused
			r.leavePause()
		}
	}()
	for {
		batch = r.dropExpired(ctx, batch)
		if len(batch) == 0 {
			return
		}
		cmd := l.call.command(batch, r.cfg.Now())
		if r.gate.wait(ctx) != nil {
			return
		}
		epoch, err := r.limiter.acquire(ctx)
		if err != nil {
			return
		}
		attempts++
		start := time.Now()
		err = r.execute(ctx, cmd)
		r.limiter.release(epoch, outcomeOf(err))
		input := batch[0].msg.input
		action := cmd.Action.String()
		if err != nil && ctx.Err() != nil {
			return // cancelled by shutdown: not the service's answer
		}
		r.m.callDone(input, action, err, time.Since(start))
		if err == nil {
			if paused {
				paused = false
				r.leavePause()
			}
			for _, it := range batch {
				r.commandDone(ctx, it.msg, nil)
			}
			return
		}

		class := classify(err)
		switch class {
		case wps.ClassInvalid:
			r.fail(ctx, batch, err, class, attempts)
			return
		case wps.ClassSystemic:
			if !paused {
				paused = true
				r.enterPause(err)
			} else {
				r.pause.update(err)
			}
			r.m.retry(input, action, class)
			if !r.waitRetry(ctx, r.cfg.SystemicInterval, batch, &lastTouch) {
				return
			}
		default:
			if paused { // no longer an auth problem
				paused = false
				r.leavePause()
			}
			if bo == nil {
				bo = r.newBackoff()
			}
			d, stop := bo.Next()
			if stop {
				r.fail(ctx, batch, err, wps.ClassTransient, attempts)
				return
			}
			if ra, ok := wps.RetryAfter(err); ok {
				// Honoured up to the whole retry budget: waiting longer
				// cannot save the command, and a bogus header must not
				// stall every lane for days (or overflow the gate).
				ra = min(ra, r.cfg.Retry.MaxElapsed)
				r.gate.hold(time.Now().Add(ra))
				d = max(d, ra)
			}
			r.m.retry(input, action, wps.ClassTransient)
			r.log.Debug("retrying", "source", input, "action", action, "id", cmd.ID, "attempt", attempts,
				"retryIn", d, "error", err)
			if !r.waitRetry(ctx, d, batch, &lastTouch) {
				return
			}
		}
	}
}

// command returns what to send for batch: the command itself when nothing
// changes, else a copy with the TTL capped to expiresAt and, for coalescing
// commands, the JSON array of their data as body. A coalescing command that
// found no follower is still sent as a one-element array, so that clients of
// a coalescing route always receive arrays.
func (c *call) command(batch []*item, now time.Time) *codec.Command {
	first := batch[0].cmd
	if len(batch) == 1 && !coalescible(first) {
		ttl := first.CappedTTL(now)
		if ttl == first.TTL {
			return first
		}
		c.cmd = *first
		c.cmd.TTL = ttl
		return &c.cmd
	}
	if c.bodyFor != len(batch) {
		c.body.Reset()
		c.body.WriteByte('[')
		for i, it := range batch {
			if i > 0 {
				c.body.WriteByte(',')
			}
			c.body.Write(it.cmd.Data)
		}
		c.body.WriteByte(']')
		c.bodyFor = len(batch)
	}
	c.cmd = *first
	c.cmd.Data = c.body.Bytes()
	for _, it := range batch[1:] {
		if e := it.cmd.ExpiresAt; !e.IsZero() && (c.cmd.ExpiresAt.IsZero() || e.Before(c.cmd.ExpiresAt)) {
			c.cmd.ExpiresAt = e
		}
	}
	c.cmd.TTL = c.cmd.CappedTTL(now) // at the batch's earliest expiresAt
	return &c.cmd
}

// dropExpired finishes (as dropped) the commands of batch whose expiresAt has
// passed, and returns the others.
func (r *Router) dropExpired(ctx context.Context, batch []*item) []*item {
	now := r.cfg.Now()
	live := batch[:0]
	for _, it := range batch {
		if e := it.cmd.ExpiresAt; e.IsZero() || now.Before(e) {
			live = append(live, it)
			continue
		}
		r.m.dropped(it.msg.input, "expired")
		r.log.Debug("command expired: dropped", "source", it.msg.input, "action", it.cmd.Action.String(),
			"id", it.cmd.ID, "expiresAt", it.cmd.ExpiresAt)
		r.commandDone(ctx, it.msg, nil)
	}
	clear(batch[len(live):])
	return live
}

// fail ends every command of batch with the same permanent failure.
func (r *Router) fail(ctx context.Context, batch []*item, err error, class wps.Class, attempts int) {
	status := httpStatus(err)
	for _, it := range batch {
		r.commandDone(ctx, it.msg, &failure{err: err, class: class, status: status, attempts: attempts, cmdID: it.cmd.ID, action: it.cmd.Action.String()})
	}
}

// classify is wps.Classify, with decode errors invalid.
func classify(err error) wps.Class {
	if errors.Is(err, codec.ErrDecode) {
		return wps.ClassInvalid
	}
	return wps.Classify(err)
}

// newBackoff is the transient retry policy: exponential from Initial, capped
// at Max, full jitter, stopping once MaxElapsed passed.
func (r *Router) newBackoff() retry.Backoff {
	p := r.cfg.Retry
	return retry.WithMaxDuration(p.MaxElapsed,
		retry.WithFullJitter(retry.WithCappedDuration(p.Max, retry.NewExponential(p.Initial))))
}

// waitRetry waits d before a retry, touching the batch's messages when it
// starts and then every touchInterval. It reports false if ctx ended.
func (r *Router) waitRetry(ctx context.Context, d time.Duration, batch []*item, lastTouch *time.Time) bool {
	deadline := time.Now().Add(d)
	for {
		if time.Since(*lastTouch) >= touchInterval {
			r.touch(ctx, batch)
			*lastTouch = time.Now()
		}
		left := time.Until(deadline)
		if left <= 0 {
			return ctx.Err() == nil
		}
		if !sleepCtx(ctx, min(left, touchInterval-time.Since(*lastTouch))) {
			return false
		}
	}
}

// touch tells the brokers that the batch's messages are still being worked on.
func (r *Router) touch(ctx context.Context, batch []*item) {
	var prev *tracked
	for _, it := range batch {
		t := it.msg
		if t == prev || t.msg.Touch == nil {
			continue
		}
		prev = t
		if err := t.msg.Touch(ctx); err != nil {
			r.log.Debug("touch failed", "source", t.input, "origin", origin(t.msg), "error", err)
		}
	}
}

// execute runs cmd through the executor, inside a span continuing the
// message's trace when it carried a traceparent.
func (r *Router) execute(ctx context.Context, cmd *codec.Command) error {
	if cmd.TraceParent == "" {
		return r.exec.Execute(ctx, cmd)
	}
	ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": cmd.TraceParent})
	ctx, span := r.tracer.Start(ctx, "wps "+cmd.Action.String(),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("wps.action", cmd.Action.String()),
			attribute.String("wps.hub", cmd.Hub),
			attribute.String("wps.command_id", cmd.ID),
		))
	defer span.End()
	err := r.exec.Execute(ctx, cmd)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// enterPause stops reading because of a systemic error.
func (r *Router) enterPause(err error) {
	r.pause.enter(err)
	r.m.setReady(false)
	r.log.Error("systemic error: reading paused until it heals", "error", err)
}

// leavePause ends one command's systemic failure; reading resumes with the last.
func (r *Router) leavePause() {
	if r.pause.leave() {
		if r.state.Load() == stateRunning {
			r.m.setReady(true)
		}
		r.log.Info("systemic error healed: reading resumed")
	}
}
