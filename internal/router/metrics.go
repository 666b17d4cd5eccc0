package router

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wps-bridge/bridge/internal/wps"
)

// Metrics holds the router's Prometheus collectors. A nil *Metrics is valid
// and records nothing. Safe for concurrent use.
type Metrics struct {
	received      *prometheus.CounterVec
	sent          *prometheus.CounterVec
	retried       *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	drops         *prometheus.CounterVec
	acks          *prometheus.CounterVec
	naks          *prometheus.CounterVec
	inflight      prometheus.Gauge
	inflightLimit prometheus.Gauge
	queueDepth    prometheus.Gauge
	pending       prometheus.Gauge
	ready         prometheus.Gauge
	duration      *prometheus.HistogramVec
	sourceLag     *prometheus.GaugeVec

	// Children resolved once: WithLabelValues hashes, validates and locks on
	// every call, which cost more than the rest of the router's hot path.
	inputs sync.Map // source name -> *inputMetrics
	calls  sync.Map // callKey -> *callMetrics
}

// inputMetrics are the per-source counters of every message.
type inputMetrics struct {
	received, acked, nacked prometheus.Counter
}

// callKey identifies the children of one kind of finished REST call.
type callKey struct{ source, action, class string }

type callMetrics struct {
	sent     prometheus.Counter
	duration prometheus.Observer
}

func (m *Metrics) input(source string) *inputMetrics {
	if v, ok := m.inputs.Load(source); ok {
		return v.(*inputMetrics)
	}
	im := &inputMetrics{
		received: m.received.WithLabelValues(source),
		acked:    m.acks.WithLabelValues(source),
		nacked:   m.naks.WithLabelValues(source),
	}
	v, _ := m.inputs.LoadOrStore(source, im)
	return v.(*inputMetrics)
}

func (m *Metrics) call(source, action, class string) *callMetrics {
	k := callKey{source, action, class}
	if v, ok := m.calls.Load(k); ok {
		return v.(*callMetrics)
	}
	cm := &callMetrics{
		sent:     m.sent.WithLabelValues(source, action, class),
		duration: m.duration.WithLabelValues(action, class),
	}
	v, _ := m.calls.LoadOrStore(k, cm)
	return v.(*callMetrics)
}

// NewMetrics creates the router's collectors (names in the package
// documentation of cmd/bridge and the Grafana dashboard: wpsbridge_*) and
// registers them with reg unless reg is nil. Registering twice with the same
// registry reuses the collectors already there. Like prometheus.MustRegister
// it panics if reg holds a different collector under one of these names,
// which is a programming error.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wpsbridge_messages_received_total", Help: "Source messages read.",
		}, []string{"source"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wpsbridge_commands_sent_total", Help: "Web PubSub REST calls finished, by status class (2xx, 4xx, 5xx, error).",
		}, []string{"source", "action", "status_class"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wpsbridge_commands_retried_total", Help: "REST calls retried, by error class.",
		}, []string{"source", "action", "error_class"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wpsbridge_messages_dead_lettered_total", Help: "Messages published to the dead letter, by error class.",
		}, []string{"source", "error_class"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wpsbridge_commands_dropped_total", Help: "Commands dropped (expired) or failed messages dropped for want of a dead letter.",
		}, []string{"source", "reason"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wpsbridge_messages_acked_total", Help: "Source messages acknowledged.",
		}, []string{"source"}),
		naks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wpsbridge_messages_nacked_total", Help: "Source messages given back to the broker.",
		}, []string{"source"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wpsbridge_inflight_requests", Help: "Web PubSub REST calls in flight.",
		}),
		inflightLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wpsbridge_inflight_limit", Help: "Current adaptive limit of REST calls in flight.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wpsbridge_lane_queue_depth", Help: "Commands queued in the ordering lanes (all lanes).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wpsbridge_pending_messages", Help: "Source messages read but not yet acked or naked.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wpsbridge_ready", Help: "1 while the router consumes, 0 while stopped or paused by a systemic error.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wpsbridge_wps_request_duration_seconds",
			Help:    "Duration of Web PubSub REST calls.",
			Buckets: []float64{.0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"action", "status_class"}),
		sourceLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wpsbridge_source_lag", Help: "Messages waiting in the broker for this source, when the adapter can tell.",
		}, []string{"source"}),
	}
	if reg != nil {
		m.received = register(reg, m.received)
		m.sent = register(reg, m.sent)
		m.retried = register(reg, m.retried)
		m.deadLetters = register(reg, m.deadLetters)
		m.drops = register(reg, m.drops)
		m.acks = register(reg, m.acks)
		m.naks = register(reg, m.naks)
		m.inflight = register(reg, m.inflight)
		m.inflightLimit = register(reg, m.inflightLimit)
		m.queueDepth = register(reg, m.queueDepth)
		m.pending = register(reg, m.pending)
		m.ready = register(reg, m.ready)
		m.duration = register(reg, m.duration)
		m.sourceLag = register(reg, m.sourceLag)
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("router: register metrics: %v", err))
}

// SetSourceLag records how many messages wait in the broker for source (JetStream
// NumPending, Kafka lag). Adapters or the binary call it when they can tell.
func (m *Metrics) SetSourceLag(source string, lag int64) {
	if m == nil {
		return
	}
	m.sourceLag.WithLabelValues(source).Set(float64(lag))
}

// statusClass is the status_class label of a finished call.
func statusClass(err error) string {
	if err == nil {
		return "2xx"
	}
	if se, ok := errors.AsType[*wps.StatusError](err); ok {
		switch {
		case se.StatusCode >= 500:
			return "5xx"
		case se.StatusCode >= 400:
			return "4xx"
		}
	}
	return "error"
}

// httpStatus is the HTTP status carried by err, or 0.
func httpStatus(err error) int {
	if se, ok := errors.AsType[*wps.StatusError](err); ok {
		return se.StatusCode
	}
	return 0
}

func (m *Metrics) receivedMsg(source string) {
	if m != nil {
		m.input(source).received.Inc()
	}
}

func (m *Metrics) callDone(source, action string, err error, d time.Duration) {
	if m == nil {
		return
	}
	c := m.call(source, action, statusClass(err))
	c.sent.Inc()
	c.duration.Observe(d.Seconds())
}

func (m *Metrics) retry(source, action string, class wps.Class) {
	if m != nil {
		m.retried.WithLabelValues(source, action, class.String()).Inc()
	}
}

func (m *Metrics) deadLettered(source string, class wps.Class) {
	if m != nil {
		m.deadLetters.WithLabelValues(source, class.String()).Inc()
	}
}

func (m *Metrics) dropped(source, reason string) {
	if m != nil {
		m.drops.WithLabelValues(source, reason).Inc()
	}
}

func (m *Metrics) acked(source string) {
	if m != nil {
		m.input(source).acked.Inc()
	}
}

func (m *Metrics) nacked(source string) {
	if m != nil {
		m.input(source).nacked.Inc()
	}
}

func (m *Metrics) inflightDelta(d int) {
	if m != nil {
		m.inflight.Add(float64(d))
	}
}

func (m *Metrics) setInflightLimit(n int) {
	if m != nil {
		m.inflightLimit.Set(float64(n))
	}
}

func (m *Metrics) queued(d int) {
	if m != nil {
		m.queueDepth.Add(float64(d))
	}
}

func (m *Metrics) pendingDelta(d int) {
	if m != nil {
		m.pending.Add(float64(d))
	}
}

func (m *Metrics) setReady(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.ready.Set(1)
	} else {
		m.ready.Set(0)
	}
}
