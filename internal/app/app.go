package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sethvargo/go-retry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/gctune"
	"github.com/wps-bridge/bridge/internal/router"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/wps"
)

// Bridge is one configured bridge: sources, router, dead letter and the
// operations endpoint. Create it with New, run it with Run.
type Bridge struct {
	cfg      *config.Config
	log      *slog.Logger
	registry *prometheus.Registry
	client   *wps.Client
	router   *router.Router
	metrics  *router.Metrics
	inputs   []router.Input
	dlq      *lazyPublisher // nil when deadLetter.type is none

	connectedMu sync.Mutex
	connectErr  error // why the sources are not all connected yet; nil once they are
}

// New builds every component of cfg (which must be validated, as
// config.Load returns it). It connects to nothing: the sources and the dead
// letter connect in Run, which retries while a broker is down (readiness
// says why meanwhile).
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Bridge, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// W3C trace context: a traceparent on a source message continues into the
	// REST call (the router extracts it, the wps client injects it).
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	b := &Bridge{cfg: cfg, log: logger, registry: prometheus.NewRegistry(), connectErr: errors.New("sources: not connected yet")}
	b.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	client, err := NewWPSClient(cfg.WebPubSub, logger.With("component", "wps"))
	if err != nil {
		return nil, err
	}
	b.client = client
	dec, err := NewCodec(cfg)
	if err != nil {
		return nil, err
	}
	for _, s := range cfg.Sources {
		src, err := NewSource(s, logger)
		if err != nil {
			return nil, fmt.Errorf("sources %q: %w", s.Name, err)
		}
		b.inputs = append(b.inputs, router.Input{Name: s.Name, Source: src})
	}
	var dlq source.Publisher // an untyped nil tells the router there is none
	if cfg.DeadLetter.Type != config.BrokerNone && cfg.DeadLetter.Type != "" {
		b.dlq = &lazyPublisher{}
		dlq = b.dlq
	}
	b.metrics = router.NewMetrics(b.registry)
	r, err := router.New(RouterConfig(cfg, logger.With("component", "router"), b.metrics), dec, router.NewWPSExecutor(client), dlq)
	if err != nil {
		b.closeAll(ctx)
		return nil, err
	}
	b.router = r
	return b, nil
}

// Registry is the Prometheus registry the bridge's metrics live in.
func (b *Bridge) Registry() *prometheus.Registry { return b.registry }

// Ready returns nil when the bridge consumes normally, else why not: sources
// not connected, not started, or paused by a systemic Web PubSub error.
func (b *Bridge) Ready() error {
	b.connectedMu.Lock()
	err := b.connectErr
	b.connectedMu.Unlock()
	if err != nil {
		return err
	}
	return b.router.Ready()
}

// Handler serves /metrics, /healthz (the process is alive) and /readyz (200
// when Ready is nil, 503 with the reason otherwise).
func (b *Bridge) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.registry, promhttp.HandlerOpts{Registry: b.registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := b.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// Run connects the sources (retrying with backoff while the brokers are
// unreachable), serves the operations endpoint on ln (nil: none), and runs
// the router until ctx is cancelled. It returns nil after a clean shutdown.
// While it runs, the process's garbage collector keeps the heap floor of
// runtime.gcHeapFloorMiB (package gctune).
func (b *Bridge) Run(ctx context.Context, ln net.Listener) error {
	defer b.closeAll(context.WithoutCancel(ctx))
	stopGCTuning, tuning := gctune.Start(uint64(b.cfg.Runtime.GCHeapFloorMiB) << 20)
	defer stopGCTuning()
	if !tuning {
		b.log.Info("garbage collector left as configured (GOGC set in the environment); runtime.gcHeapFloorMiB does not apply")
	}

	var srvErr chan error
	if ln != nil {
		srv := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 5 * time.Second}
		srvErr = make(chan error, 1)
		go func() { srvErr <- srv.Serve(ln) }()
		defer func() {
			shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdownCtx) // closes ln; Serve then returns ErrServerClosed
			if err := <-srvErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
				b.log.Error("operations endpoint", "err", err)
			}
		}()
		b.log.Info("operations endpoint", "url", "http://"+ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	}

	if err := b.connect(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	b.log.Info("bridge running", "sources", len(b.inputs), "endpoint", b.client.Endpoint(), "hub", b.cfg.WebPubSub.Hub)
	lagCtx, stopLag := context.WithCancel(ctx)
	var lag sync.WaitGroup
	lag.Go(func() { b.reportLag(lagCtx) })
	defer func() {
		stopLag()
		lag.Wait()
	}()
	return b.router.Run(ctx, b.inputs...)
}

// LagInterval is how often source lag is read from the brokers.
const LagInterval = 5 * time.Second

// reportLag sets wpsbridge_source_lag for every source that can tell, every
// LagInterval, until ctx ends.
func (b *Bridge) reportLag(ctx context.Context) {
	t := time.NewTicker(LagInterval)
	defer t.Stop()
	for {
		for _, in := range b.inputs {
			l, ok := in.Source.(source.Lagger)
			if !ok {
				continue
			}
			n, err := l.Lag(ctx)
			if err != nil {
				if ctx.Err() == nil {
					b.log.Debug("source lag", "source", in.Name, "err", err)
				}
				continue
			}
			b.metrics.SetSourceLag(in.Name, n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// connect connects every source that needs it, retrying each with capped
// exponential backoff until ctx ends: a broker that is down at start delays
// readiness, it does not crash the process.
func (b *Bridge) connect(ctx context.Context) error {
	for _, in := range b.inputs {
		c, ok := in.Source.(source.Connector)
		if !ok {
			continue
		}
		backoff := retry.WithCappedDuration(10*time.Second, retry.NewExponential(200*time.Millisecond))
		err := retry.Do(ctx, backoff, func(ctx context.Context) error {
			// Adapters may wait inside Connect until the broker answers.
			b.setConnectErr(fmt.Errorf("source %q: connecting", in.Name))
			if err := c.Connect(ctx); err != nil {
				err = fmt.Errorf("source %q: connect: %w", in.Name, err)
				b.setConnectErr(err)
				b.log.Warn("source not connected, retrying", "source", in.Name, "err", err)
				return retry.RetryableError(err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if b.dlq != nil {
		backoff := retry.WithCappedDuration(10*time.Second, retry.NewExponential(200*time.Millisecond))
		err := retry.Do(ctx, backoff, func(ctx context.Context) error {
			b.setConnectErr(errors.New("deadLetter: connecting"))
			p, err := NewPublisher(ctx, b.cfg.DeadLetter, b.log.With("component", "dead-letter"))
			if err != nil {
				err = fmt.Errorf("deadLetter: %w", err)
				b.setConnectErr(err)
				b.log.Warn("dead letter not connected, retrying", "err", err)
				return retry.RetryableError(err)
			}
			b.dlq.set(p)
			return nil
		})
		if err != nil {
			return err
		}
	}
	b.setConnectErr(nil)
	return nil
}

// lazyPublisher is the router's dead letter, connected by Run after New.
// The router publishes only once Run connected it.
type lazyPublisher struct {
	mu sync.Mutex
	p  source.Publisher
}

func (l *lazyPublisher) set(p source.Publisher) {
	l.mu.Lock()
	l.p = p
	l.mu.Unlock()
}

func (l *lazyPublisher) get() source.Publisher {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p
}

// Publish forwards to the connected publisher.
func (l *lazyPublisher) Publish(ctx context.Context, msg *source.Message) error {
	p := l.get()
	if p == nil {
		return errors.New("dead letter not connected")
	}
	return p.Publish(ctx, msg)
}

// Close closes the connected publisher, if any.
func (l *lazyPublisher) Close(ctx context.Context) error {
	if p := l.get(); p != nil {
		return p.Close(ctx)
	}
	return nil
}

func (b *Bridge) setConnectErr(err error) {
	b.connectedMu.Lock()
	b.connectErr = err
	b.connectedMu.Unlock()
}

// closeAll closes the sources, the dead letter and idle HTTP connections.
func (b *Bridge) closeAll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var closers []func(context.Context) error
	for _, in := range b.inputs {
		closers = append(closers, in.Source.Close)
	}
	if b.dlq != nil {
		closers = append(closers, b.dlq.Close)
	}
	if err := joinClose(ctx, closers); err != nil {
		b.log.Warn("close", "err", err)
	}
	if b.client != nil {
		b.client.CloseIdleConnections()
	}
}
