package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/source"
)

// tracerName is the instrumentation scope of the router's spans.
const tracerName = "github.com/wps-bridge/bridge/internal/router"

// RetryPolicy is the backoff for transient errors: exponential from Initial,
// full jitter, each wait capped at Max, giving up (dead letter) once MaxElapsed
// has passed since the first failure.
type RetryPolicy struct {
	Initial    time.Duration // default 100ms
	Max        time.Duration // default 30s
	MaxElapsed time.Duration // default 10m
}

// Config tunes a Router. Zero values take the documented defaults; negative
// values are errors.
type Config struct {
	// Lanes is the number of ordering lanes (worker goroutines); a command
	// goes to lane hash(cmd.Key) % Lanes. Default 64.
	Lanes int
	// LaneQueue is the capacity of each lane's queue, in commands. Default 256.
	LaneQueue int
	// MaxInFlight caps the adaptive limit of concurrent REST calls. Default 64.
	MaxInFlight int
	// MinInFlight is the floor of the adaptive limit. Default 1.
	MinInFlight int
	// MaxPending bounds the messages read but not yet finished; Read is not
	// called while it is reached. Default 4096.
	MaxPending int
	// Retry is the backoff for transient errors.
	Retry RetryPolicy
	// SystemicInterval is how often a command failing with 401/403 is retried
	// while reading is paused. Default 5s.
	SystemicInterval time.Duration
	// DrainTimeout is how long queued work may still run after ctx is
	// cancelled before in-flight calls are cancelled. Default 10s.
	DrainTimeout time.Duration
	// MulticastChunk is the most targets per filtered sendToAll compiled from
	// sendToGroups/sendToUsers. Default 100.
	MulticastChunk int
	// Logger receives the router's logs; nil discards them.
	Logger *slog.Logger
	// Metrics, when non-nil, is updated as the router works.
	Metrics *Metrics
	// Now is the wall clock for expiresAt and dead-letter timestamps.
	// Default time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultLanes            = 64
	DefaultLaneQueue        = 256
	DefaultMaxInFlight      = 64
	DefaultMinInFlight      = 1
	DefaultMaxPending       = 4096
	DefaultRetryInitial     = 100 * time.Millisecond
	DefaultRetryMax         = 30 * time.Second
	DefaultRetryMaxElapsed  = 10 * time.Minute
	DefaultSystemicInterval = 5 * time.Second
	DefaultDrainTimeout     = 10 * time.Second
	DefaultMulticastChunk   = 100
)

func (c *Config) setDefaults() {
	setDefault(&c.Lanes, DefaultLanes)
	setDefault(&c.LaneQueue, DefaultLaneQueue)
	setDefault(&c.MaxInFlight, DefaultMaxInFlight)
	setDefault(&c.MinInFlight, DefaultMinInFlight)
	setDefault(&c.MaxPending, DefaultMaxPending)
	setDefault(&c.Retry.Initial, DefaultRetryInitial)
	setDefault(&c.Retry.Max, DefaultRetryMax)
	setDefault(&c.Retry.MaxElapsed, DefaultRetryMaxElapsed)
	setDefault(&c.SystemicInterval, DefaultSystemicInterval)
	setDefault(&c.DrainTimeout, DefaultDrainTimeout)
	setDefault(&c.MulticastChunk, DefaultMulticastChunk)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

func (c *Config) validate() error {
	var errs []error
	positive := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("router: %s: must not be negative", name))
		}
	}
	positive("lanes", int64(c.Lanes))
	positive("laneQueue", int64(c.LaneQueue))
	positive("maxInFlight", int64(c.MaxInFlight))
	positive("minInFlight", int64(c.MinInFlight))
	positive("maxPending", int64(c.MaxPending))
	positive("retry.initial", int64(c.Retry.Initial))
	positive("retry.max", int64(c.Retry.Max))
	positive("retry.maxElapsed", int64(c.Retry.MaxElapsed))
	positive("systemicInterval", int64(c.SystemicInterval))
	positive("drainTimeout", int64(c.DrainTimeout))
	positive("multicastChunk", int64(c.MulticastChunk))
	if c.MinInFlight > c.MaxInFlight {
		errs = append(errs, fmt.Errorf("router: minInFlight %d is above maxInFlight %d", c.MinInFlight, c.MaxInFlight))
	}
	if c.Retry.Initial > c.Retry.Max {
		errs = append(errs, fmt.Errorf("router: retry.initial %s is above retry.max %s", c.Retry.Initial, c.Retry.Max))
	}
	return errors.Join(errs...)
}

// Input is one named source the router consumes.
type Input struct {
	// Name labels metrics, logs and dead letters (wps-bridge-source).
	Name string
	// Source is read by one goroutine of the router.
	Source source.Source
}

const (
	stateNew int32 = iota
	stateRunning
	stateStopped
)

var (
	errNotStarted = errors.New("router: not started")
	errStopped    = errors.New("router: stopped")
)

// Router consumes inputs and delivers their commands; see the package
// documentation. Create it with New.
type Router struct {
	cfg    Config
	dec    codec.Codec
	exec   Executor
	dlq    source.Publisher
	log    *slog.Logger
	m      *Metrics
	tracer trace.Tracer

	limiter *limiter
	gate    gate
	pause   pauser
	pending *pendingSet
	lanes   []chan *item
	ackCtx  context.Context // Run's ctx without cancellation; nil before Run

	state atomic.Int32
}

// New checks cfg and returns a Router that decodes with dec, delivers with
// exec, and parks failed messages on deadLetter (nil: no dead letter; failed
// messages are then logged, counted and acked).
func New(cfg Config, dec codec.Codec, exec Executor, deadLetter source.Publisher) (*Router, error) {
	// Validate after the defaults: a zero field means its default, so
	// MinInFlight 8 with MaxInFlight unset is compared with 64, not 0.
	// setDefaults leaves negative values alone for validate to report.
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if dec == nil {
		return nil, errors.New("router: nil codec")
	}
	if exec == nil {
		return nil, errors.New("router: nil executor")
	}
	r := &Router{
		cfg:     cfg,
		dec:     dec,
		exec:    exec,
		dlq:     deadLetter,
		log:     cfg.Logger,
		m:       cfg.Metrics,
		tracer:  otel.Tracer(tracerName),
		limiter: newLimiter(cfg.MinInFlight, cfg.MaxInFlight, cfg.Metrics),
		pending: newPendingSet(cfg.MaxPending, cfg.Metrics),
		lanes:   make([]chan *item, cfg.Lanes),
	}
	for i := range r.lanes {
		r.lanes[i] = make(chan *item, cfg.LaneQueue)
	}
	r.m.setReady(false)
	return r, nil
}

// Ready returns nil while the router is consuming, else why not: not started,
// stopped, or paused by a systemic error ("paused: wps: sendToGroup: 401 …").
// It also sets the wpsbridge_ready gauge. Safe for concurrent use.
func (r *Router) Ready() error {
	var err error
	switch r.state.Load() {
	case stateNew:
		err = errNotStarted
	case stateStopped:
		err = errStopped
	default:
		err = r.pause.err()
	}
	r.m.setReady(err == nil)
	return err
}

// Run consumes inputs until ctx is cancelled or every input reached
// source.ErrEndOfInput and all its work finished. On cancel it stops reading at
// once, lets the lanes finish queued work for up to DrainTimeout, then cancels
// in-flight calls and naks every unfinished message with source.ErrShutdown.
// It returns nil after such a clean shutdown, and an error only when it
// cannot start (no inputs, a nil source, or a second call).
func (r *Router) Run(ctx context.Context, inputs ...Input) error {
	if len(inputs) == 0 {
		return errors.New("router: no inputs")
	}
	for i, in := range inputs {
		if in.Source == nil {
			return fmt.Errorf("router: inputs[%d] (%q): nil source", i, in.Name)
		}
	}
	if !r.state.CompareAndSwap(stateNew, stateRunning) {
		return errors.New("router: Run called more than once")
	}
	defer func() {
		r.state.Store(stateStopped)
		r.m.setReady(false)
	}()
	r.m.setReady(true)

	r.ackCtx = context.WithoutCancel(ctx)
	// workCtx outlives ctx by the drain: lanes, dead-letter publishes and
	// REST calls run on it until it is cancelled after DrainTimeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()

	var lanes sync.WaitGroup
	for _, q := range r.lanes {
		lanes.Go(func() { r.runLane(workCtx, q) })
	}

	readersDone := make(chan struct{})
	var readers sync.WaitGroup
	var left atomic.Int32
	left.Store(int32(len(inputs)))
	for _, in := range inputs {
		readers.Go(func() {
			defer func() {
				if left.Add(-1) == 0 {
					close(readersDone)
				}
			}()
			r.read(readCtx, in)
		})
	}
	r.log.Info("router started", "inputs", len(inputs), "lanes", r.cfg.Lanes, "maxInFlight", r.cfg.MaxInFlight)

	select {
	case <-ctx.Done():
	case <-readersDone: // every input ended
	}
	cancelRead()
	readers.Wait()
	idle := r.pending.closeAdds()

	if ctx.Err() == nil {
		select { // inputs ended: finish all work, unless cancelled meanwhile
		case <-idle:
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		drain := time.NewTimer(r.cfg.DrainTimeout)
		select {
		case <-idle:
		case <-drain.C:
			r.log.Warn("router drain timed out; cancelling in-flight calls", "drainTimeout", r.cfg.DrainTimeout,
				"unfinished", r.pending.len())
		}
		drain.Stop()
	}
	cancelWork()
	lanes.Wait()

	// Whatever is still unfinished (queued, retrying, cancelled mid-call)
	// goes back to its broker so that another replica takes it.
	nakCtx, cancelNak := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.DrainTimeout)
	defer cancelNak()
	if n := r.pending.abandonAll(nakCtx, r); n > 0 {
		r.log.Info("router naked unfinished messages on shutdown", "messages", n)
	}
	for _, q := range r.lanes { // release what the lanes never took
		for len(q) > 0 {
			<-q
			r.m.queued(-1)
		}
	}
	r.log.Info("router stopped")
	return nil
}
