package router

import (
	"context"
	"errors"
	"time"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/wps"
)

// Read error backoff: 50ms doubling up to 5s.
const (
	readBackoffMin = 50 * time.Millisecond
	readBackoffMax = 5 * time.Second
)

// item is one command on its way through a lane.
type item struct {
	cmd *codec.Command
	msg *tracked
}

// read is the reader goroutine of one input: it reads while there is room and
// no systemic pause, decodes, and queues each command on its lane. It returns
// when ctx is done or the input ended.
func (r *Router) read(ctx context.Context, in Input) {
	log := r.log.With("source", in.Name)
	failures := 0
	for {
		if r.pause.wait(ctx) != nil || r.pending.acquire(ctx) != nil {
			return
		}
		msg, ack, err := in.Source.Read(ctx)
		if err == nil && (msg == nil || ack == nil) {
			err = errors.New("router: source returned a nil message or ack func")
		}
		if err != nil {
			r.pending.release()
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, source.ErrEndOfInput) {
				log.Info("input ended")
				return
			}
			failures++
			d := min(readBackoffMax, readBackoffMin<<min(failures-1, 10))
			switch {
			case !errors.Is(err, source.ErrNotConnected):
				log.Error("source read failed", "error", err, "retryIn", d)
			case failures == 1:
				log.Warn("source not connected; waiting", "retryIn", d)
			}
			if !sleepCtx(ctx, d) {
				return
			}
			continue
		}
		failures = 0
		r.handle(ctx, in.Name, msg, ack)
	}
}

// handle decodes msg and queues its commands. A message whose commands could
// not all be queued, or whose dead letter could not be published, before ctx
// ended is naked at once (source.ErrShutdown).
func (r *Router) handle(ctx context.Context, input string, msg *source.Message, ack source.AckFunc) {
	t := &tracked{msg: msg, ack: ack, input: input}
	r.pending.add(t)
	r.m.receivedMsg(input)

	cmds, err := r.dec.Decode(msg)
	if err == nil {
		cmds, err = expand(cmds, r.cfg.MulticastChunk)
	}
	if err != nil {
		t.remaining.Store(1)
		r.commandDone(ctx, t, &failure{err: err, class: wps.ClassInvalid})
		return
	}
	if len(cmds) == 0 {
		r.finish(ctx, t)
		return
	}
	t.remaining.Store(int32(len(cmds)))
	var items []item
	if len(cmds) == 1 {
		items = t.one[:]
	} else {
		items = make([]item, len(cmds))
	}
	for i := range cmds {
		it := &items[i]
		it.cmd, it.msg = &cmds[i], t
		q := r.lanes[laneOf(cmds[i].Key, len(r.lanes))]
		r.m.queued(1)
		select {
		case q <- it: // room: queue it even if reading just stopped
			continue
		default:
		}
		select {
		case q <- it:
		case <-ctx.Done():
			// Reading stopped with this message only partly queued: it can
			// never finish, so give it back now rather than let the drain
			// wait for it. Commands already queued still run; their outcome
			// no longer settles it (settle is once).
			r.m.queued(-1)
			r.settle(r.ackContext(ctx), t, source.ErrShutdown)
			return
		}
	}
}

// laneOf hashes key (FNV-1a, 64 bit) onto one of n lanes.
func laneOf(key string, n int) int {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return int(h % uint64(n))
}

// sleepCtx waits d; it reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
