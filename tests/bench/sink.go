package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wps-bridge/bridge/internal/emulator"
)

// Sink kinds (-sink).
const (
	sinkMinimal  = "minimal"  // answers 202 to every request, verifies nothing
	sinkEmulator = "emulator" // the emulator with NoFanout: checks JWTs, URLs and api-version
)

// tsField marks the publish timestamp inside a payload; it is followed by
// exactly tsDigits decimal digits (Unix nanoseconds, zero-padded).
var tsField = []byte(`"ts":`)

const tsDigits = 19

// sink is the counting Web PubSub endpoint. It counts REST requests and the
// messages they carry (one per timestamp in the body, so a coalesced JSON
// array counts each element), remembers when the first request arrived and
// when a target count was reached, and records latencies (receive time minus
// the publish timestamp of the payload) while recording is on. Safe for
// concurrent use.
type sink struct {
	next http.Handler // nil: answer 202 directly
	emu  *emulator.Emulator
	srv  *http.Server
	url  string
	done chan error

	requests  atomic.Int64
	messages  atomic.Int64
	failures  atomic.Int64 // answers other than 2xx from next
	firstNano atomic.Int64 // first request of the run
	recording atomic.Bool

	target atomic.Int64 // message count that closes reached; MaxInt64 when nobody waits

	mu        sync.Mutex
	reached   chan struct{}
	reachedAt time.Time
	latencies []time.Duration
	bufPool   sync.Pool
}

// startSink serves the sink of kind on a random loopback port.
func startSink(kind string) (*sink, error) {
	s := &sink{done: make(chan error, 1)}
	s.target.Store(noTarget)
	s.bufPool.New = func() any { return new(bytes.Buffer) }
	switch kind {
	case sinkMinimal:
	case sinkEmulator:
		e, err := emulator.New(emulator.Config{NoFanout: true})
		if err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
		s.emu, s.next = e, e.Handler()
	default:
		return nil, fmt.Errorf("-sink: %q is not %s or %s", kind, sinkMinimal, sinkEmulator)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink listen: %w", err)
	}
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// close stops the server and the emulator.
func (s *sink) close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if s.emu != nil {
		err = errors.Join(err, s.emu.Close())
	}
	if err != nil {
		return fmt.Errorf("sink close: %w", err)
	}
	return nil
}

// ServeHTTP counts the request and its messages, then answers 202 (minimal)
// or lets the emulator answer.
func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	buf := s.bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer s.bufPool.Put(buf)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	body := buf.Bytes()
	if s.next != nil {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.next.ServeHTTP(rec, r)
		if rec.status/100 != 2 {
			s.failures.Add(1)
			return // not accepted: not delivered
		}
	} else {
		w.WriteHeader(http.StatusAccepted)
	}
	s.firstNano.CompareAndSwap(0, now.UnixNano())
	s.requests.Add(1)
	n := int64(0)
	recording := s.recording.Load()
	var lat [8]time.Duration
	lats := lat[:0]
	for rest := body; ; {
		i := bytes.Index(rest, tsField)
		if i < 0 {
			break
		}
		rest = rest[i+len(tsField):]
		n++
		if recording && len(rest) >= tsDigits {
			if ts, ok := parseDigits(rest[:tsDigits]); ok {
				lats = append(lats, now.Sub(time.Unix(0, ts)))
			}
		}
	}
	if n == 0 {
		return // not a benchmark payload (e.g. a health probe)
	}
	total := s.messages.Add(n)
	if len(lats) == 0 && total < s.target.Load() {
		return
	}
	s.mu.Lock()
	s.latencies = append(s.latencies, lats...)
	if s.reached != nil && total >= s.target.Load() {
		s.reachedAt = now
		close(s.reached)
		s.reached = nil
		s.target.Store(noTarget)
	}
	s.mu.Unlock()
}

const noTarget = 1<<63 - 1

func parseDigits(b []byte) (int64, bool) {
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// statusRecorder remembers the status the wrapped handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// reset zeroes the counters for a new run and sets whether latencies are
// recorded. Call it only while no system sends.
func (s *sink) reset(record bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests.Store(0)
	s.messages.Store(0)
	s.failures.Store(0)
	s.firstNano.Store(0)
	s.latencies = s.latencies[:0]
	s.reached = nil
	s.target.Store(noTarget)
	s.reachedAt = time.Time{}
	s.recording.Store(record)
}

// waitFor blocks until the sink counted want messages in this run, ctx is
// done, or no message arrived for stall. It returns when the count was
// reached.
func (s *sink) waitFor(ctx context.Context, want int64, stall time.Duration, progress func(int64)) (time.Time, error) {
	s.mu.Lock()
	if s.messages.Load() >= want {
		s.mu.Unlock()
		return time.Now(), nil
	}
	reached := make(chan struct{})
	s.reached = reached
	s.target.Store(want)
	s.mu.Unlock()
	if s.messages.Load() >= want { // counted between the check and the store
		s.mu.Lock()
		if s.reached == reached {
			s.reached, s.reachedAt = nil, time.Now()
			s.target.Store(noTarget)
			close(reached)
		}
		s.mu.Unlock()
	}

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastChange := s.messages.Load(), time.Now()
	for {
		select {
		case <-reached:
			s.mu.Lock()
			at := s.reachedAt
			s.mu.Unlock()
			return at, nil
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case now := <-tick.C:
			n := s.messages.Load()
			if progress != nil {
				progress(n)
			}
			if n != last {
				last, lastChange = n, now
				continue
			}
			if now.Sub(lastChange) > stall {
				return time.Time{}, fmt.Errorf("sink: stalled at %d of %d messages for %s (%d requests refused)",
					n, want, stall, s.failures.Load())
			}
		}
	}
}

// first is the time of the run's first request.
func (s *sink) first() time.Time { return time.Unix(0, s.firstNano.Load()) }

// latencyStats returns p50, p99 and max of the recorded latencies.
func (s *sink) latencyStats() (p50, p99, maxLat time.Duration, n int) {
	s.mu.Lock()
	l := slices.Clone(s.latencies)
	s.mu.Unlock()
	if len(l) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(l)
	q := func(p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
	return q(0.50), q(0.99), l[len(l)-1], len(l)
}
