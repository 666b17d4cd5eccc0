package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DevAccessKey is the fixed development access key used when Config.AccessKey is empty. It is public on purpose:
// the emulator is a local development tool, never a secret store.
const DevAccessKey = "emulator-dev-access-key-0123456789-not-a-secret"

// DefaultQueueLimit is the per-connection send queue length used when Config.QueueLimit is 0.
const DefaultQueueLimit = 1024

// Config configures an Emulator. The zero value is usable.
type Config struct {
	// AccessKey signs and verifies tokens; "" means DevAccessKey. It is never logged.
	AccessKey string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// QueueLimit is the per-connection send queue length in messages (default 1024). A client whose queue
	// overflows is disconnected with close code 1013 (try again later); nobody else is slowed down.
	QueueLimit int
	// Faults are the global default faults; SetFaults and PUT /admin/faults change them later.
	Faults Faults
	// NoFanout counts accepted REST sends but skips the delivery to clients (a benchmark sink).
	NoFanout bool
}

// Faults describe injected failures for REST data-plane calls. HEAD /api/health is never faulted.
type Faults struct {
	// Rate429 is the fraction (0..1) of requests answered 429 Too Many Requests.
	Rate429 float64
	// Rate503 is the fraction (0..1) of requests answered 503 Service Unavailable.
	Rate503 float64
	// RetryAfter, when positive, is sent as a Retry-After header (whole seconds, rounded up) with 429 answers.
	RetryAfter time.Duration
	// Latency is added before every request is handled.
	Latency time.Duration
}

type faultsJSON struct {
	Rate429    float64 `json:"rate429"`
	Rate503    float64 `json:"rate503"`
	RetryAfter string  `json:"retryAfter,omitempty"`
	Latency    string  `json:"latency,omitempty"`
}

// MarshalJSON encodes the durations as Go duration strings such as "2s".
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{Rate429: f.Rate429, Rate503: f.Rate503}
	if f.RetryAfter != 0 {
		j.RetryAfter = f.RetryAfter.String()
	}
	if f.Latency != 0 {
		j.Latency = f.Latency.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes durations written as Go duration strings such as "250ms" and validates the result.
// Unknown fields are rejected, so a misspelt field cannot silently clear the faults.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("decode faults: %w", err)
	}
	out := Faults{Rate429: j.Rate429, Rate503: j.Rate503}
	var err error
	if j.RetryAfter != "" {
		if out.RetryAfter, err = time.ParseDuration(j.RetryAfter); err != nil {
			return fmt.Errorf("faults retryAfter: %w", err)
		}
	}
	if j.Latency != "" {
		if out.Latency, err = time.ParseDuration(j.Latency); err != nil {
			return fmt.Errorf("faults latency: %w", err)
		}
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*f = out
	return nil
}

// Validate reports rates outside 0..1, a total rate above 1 and negative durations.
func (f Faults) Validate() error {
	var errs []error
	if f.Rate429 < 0 || f.Rate429 > 1 || math.IsNaN(f.Rate429) {
		errs = append(errs, errors.New("rate429 must be within 0..1"))
	}
	if f.Rate503 < 0 || f.Rate503 > 1 || math.IsNaN(f.Rate503) {
		errs = append(errs, errors.New("rate503 must be within 0..1"))
	}
	if f.Rate429+f.Rate503 > 1 {
		errs = append(errs, errors.New("rate429 + rate503 must not exceed 1"))
	}
	if f.RetryAfter < 0 {
		errs = append(errs, errors.New("retryAfter must not be negative"))
	}
	if f.Latency < 0 {
		errs = append(errs, errors.New("latency must not be negative"))
	}
	return errors.Join(errs...)
}

func (f Faults) isZero() bool { return f == Faults{} }

// Request describes one authenticated REST request, as passed to the OnRequest hook.
type Request struct {
	Op          string // operation name without the WebPubSub_ prefix, e.g. "SendToGroup"
	Method      string
	Hub         string
	RawPath     string // escaped path
	RawQuery    string
	ContentType string
	Body        []byte
	Status      int // status code of the answer
	At          time.Time
}

// Stats is a snapshot of the emulator's counters.
type Stats struct {
	// Requests counts authenticated REST requests by operation name (e.g. "SendToAll").
	Requests map[string]uint64 `json:"requests"`
	// SendsAccepted counts send operations answered 202.
	SendsAccepted uint64 `json:"sendsAccepted"`
	// MessagesDelivered counts message frames written to client sockets (REST and client publishes).
	MessagesDelivered uint64 `json:"messagesDelivered"`
	// Rejected401 counts REST requests and client connections refused for authentication.
	Rejected401 uint64 `json:"rejected401"`
	// FaultsInjected counts injected 429 and 503 answers.
	FaultsInjected uint64 `json:"faultsInjected"`
	// SlowClientsDisconnected counts connections closed because their send queue overflowed.
	SlowClientsDisconnected uint64 `json:"slowClientsDisconnected"`
	// Connections is the number of live client connections.
	Connections int `json:"connections"`
}

// Emulator is a local Azure Web PubSub data plane: REST API, WebSocket client endpoint, inspector and admin API.
// Create it with New; all methods are safe for concurrent use.
type Emulator struct {
	log        *slog.Logger
	auth       *authenticator
	queueLimit int
	noFanout   bool
	mux        *http.ServeMux

	hubsMu sync.RWMutex
	hubs   map[string]*hub

	faultsMu   sync.RWMutex
	faults     map[string]Faults // "" = global
	hasFaults  atomic.Bool
	onRequest  atomic.Pointer[func(Request)]
	feed       *feed
	opCounters [opCount]atomic.Uint64
	stats      struct {
		sendsAccepted, delivered, rejected401, faults, slow atomic.Uint64
	}

	// lifecycle of client connections
	clientsMu sync.Mutex // orders clientsWG.Add before Wait
	closing   atomic.Bool
	clientsWG sync.WaitGroup
	nextID    atomic.Uint64
	idPrefix  string

	recoveryWindow time.Duration // how long a dropped reliable connection waits for its client to reconnect
}

// unackedLimit is how many unacknowledged messages a reliable connection may have before it is closed (the
// service closes at 1000, webpubsub-api.md §8); a larger QueueLimit raises it.
func (e *Emulator) unackedLimit() int { return max(1000, e.queueLimit) }

// New returns an Emulator configured by cfg.
func New(cfg Config) (*Emulator, error) {
	if err := cfg.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("emulator faults: %w", err)
	}
	if cfg.QueueLimit < 0 {
		return nil, errors.New("emulator: QueueLimit must not be negative")
	}
	key := cfg.AccessKey
	if key == "" {
		key = DevAccessKey
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	limit := cfg.QueueLimit
	if limit == 0 {
		limit = DefaultQueueLimit
	}
	e := &Emulator{
		log:        logger,
		auth:       newAuthenticator(key),
		queueLimit: limit,
		noFanout:   cfg.NoFanout,
		hubs:       make(map[string]*hub),
		faults:     make(map[string]Faults),
		feed:       newFeed(),
		idPrefix:   randomID(6),

		recoveryWindow: 30 * time.Second,
	}
	e.setFaults("", cfg.Faults)
	e.mux = e.routes()
	return e, nil
}

// Handler returns the single handler serving REST (/api/...), the client WebSocket endpoint (/client/...),
// the admin API (/admin/...) and the inspector page (/).
func (e *Emulator) Handler() http.Handler { return e.mux }

// Serve serves Handler on ln until ctx is done, then disconnects every client (close code 1001), shuts the HTTP
// server down and returns nil. It returns an error when serving fails for another reason.
func (e *Emulator) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           e.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	e.log.Info("web pubsub emulator listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		e.Close()
		return fmt.Errorf("emulator serve: %w", err)
	case <-ctx.Done():
	}
	e.Close()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("emulator shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("emulator serve: %w", err)
	}
	return nil
}

// Close disconnects every client connection with close code 1001 (going away), refuses new ones and waits for
// their goroutines to end. Use it when serving Handler through your own server (httptest.Server), before closing
// that server. It is idempotent and always returns nil.
func (e *Emulator) Close() error {
	e.clientsMu.Lock()
	e.closing.Store(true)
	e.clientsMu.Unlock()
	for _, h := range e.hubList() {
		for _, c := range h.connList() {
			c.kill(closeGoingAway, "emulator shutting down")
		}
	}
	e.clientsWG.Wait()
	e.feed.closeAll()
	return nil
}

// ConnectionString returns a Web PubSub connection string for an emulator at baseURL (e.g. "http://127.0.0.1:8080").
func ConnectionString(baseURL, accessKey string) string {
	return "Endpoint=" + strings.TrimSuffix(baseURL, "/") + ";AccessKey=" + accessKey + ";Version=1.0;"
}

// SetFaults sets the faults of hub, or the global default faults when hub is "". Zero Faults on a hub removes
// its override so the global faults apply again. Invalid faults are ignored and logged.
func (e *Emulator) SetFaults(hub string, f Faults) {
	if err := f.Validate(); err != nil {
		e.log.Warn("ignoring invalid faults", "hub", hub, "error", err)
		return
	}
	e.setFaults(hub, f)
}

func (e *Emulator) setFaults(hub string, f Faults) {
	e.faultsMu.Lock()
	defer e.faultsMu.Unlock()
	if hub != "" && f.isZero() {
		delete(e.faults, hub)
	} else {
		e.faults[hub] = f
	}
	any := false
	for _, v := range e.faults {
		any = any || !v.isZero()
	}
	e.hasFaults.Store(any)
}

func (e *Emulator) faultsFor(hub string) Faults {
	if !e.hasFaults.Load() {
		return Faults{}
	}
	e.faultsMu.RLock()
	defer e.faultsMu.RUnlock()
	if f, ok := e.faults[hub]; ok {
		return f
	}
	return e.faults[""]
}

func (e *Emulator) faultsSnapshot() map[string]Faults {
	e.faultsMu.RLock()
	defer e.faultsMu.RUnlock()
	out := make(map[string]Faults, len(e.faults))
	for k, v := range e.faults {
		out[k] = v
	}
	return out
}

// Stats returns a snapshot of the counters.
func (e *Emulator) Stats() Stats {
	s := Stats{
		Requests:                make(map[string]uint64),
		SendsAccepted:           e.stats.sendsAccepted.Load(),
		MessagesDelivered:       e.stats.delivered.Load(),
		Rejected401:             e.stats.rejected401.Load(),
		FaultsInjected:          e.stats.faults.Load(),
		SlowClientsDisconnected: e.stats.slow.Load(),
	}
	for i := range e.opCounters {
		if n := e.opCounters[i].Load(); n > 0 {
			s.Requests[opNames[i]] = n
		}
	}
	for _, h := range e.hubList() {
		s.Connections += h.connCount()
	}
	return s
}

// OnRequest installs fn, called synchronously after each authenticated REST request is answered. nil removes it.
// fn must not block for long: it runs on the request's goroutine.
func (e *Emulator) OnRequest(fn func(Request)) {
	if fn == nil {
		e.onRequest.Store(nil)
		return
	}
	e.onRequest.Store(&fn)
}

// hub returns the named hub, creating it when create is true; it returns nil otherwise.
func (e *Emulator) hub(name string, create bool) *hub {
	e.hubsMu.RLock()
	h := e.hubs[name]
	e.hubsMu.RUnlock()
	if h != nil || !create {
		return h
	}
	e.hubsMu.Lock()
	defer e.hubsMu.Unlock()
	if h = e.hubs[name]; h == nil {
		h = newHub(e, name)
		e.hubs[name] = h
	}
	return h
}

func (e *Emulator) hubList() []*hub {
	e.hubsMu.RLock()
	defer e.hubsMu.RUnlock()
	out := make([]*hub, 0, len(e.hubs))
	for _, h := range e.hubs {
		out = append(out, h)
	}
	return out
}

// readBody reads at most limit bytes of r; length is the announced Content-Length (-1 = unknown).
func readBody(r io.Reader, length, limit int64) ([]byte, error) {
	if length > limit {
		return nil, errBodyTooLarge
	}
	if length >= 0 {
		b := make([]byte, length)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, errBodyTooLarge
	}
	return b, nil
}

var errBodyTooLarge = errors.New("request body too large")
