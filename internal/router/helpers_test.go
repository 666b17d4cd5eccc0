package router

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/wps"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait of these tests.
const wait = 20 * time.Second

// ---- source ----

// memSource is an in-memory Source fed through a channel. Closing the feed
// ends the input (ErrEndOfInput).
type memSource struct {
	feed    chan *source.Message
	reads   atomic.Int64
	read    chan struct{} // a token per message read
	settled chan settlement
	touched chan *source.Message // a message was touched (buffered, best effort)

	mu      sync.Mutex
	settles map[*source.Message]int
	touches map[*source.Message]int
}

type settlement struct {
	msg *source.Message
	err error
}

func newMemSource(capacity int) *memSource {
	return &memSource{
		feed:    make(chan *source.Message, capacity),
		read:    make(chan struct{}, capacity),
		settled: make(chan settlement, capacity),
		touched: make(chan *source.Message, 64),
		settles: make(map[*source.Message]int),
		touches: make(map[*source.Message]int),
	}
}

func (s *memSource) Read(ctx context.Context) (*source.Message, source.AckFunc, error) {
	select {
	case m, ok := <-s.feed:
		if !ok {
			return nil, nil, source.ErrEndOfInput
		}
		s.reads.Add(1)
		select {
		case s.read <- struct{}{}:
		default:
		}
		m.Touch = func(context.Context) error {
			s.mu.Lock()
			s.touches[m]++
			s.mu.Unlock()
			select {
			case s.touched <- m:
			default:
			}
			return nil
		}
		return m, func(_ context.Context, err error) error {
			s.mu.Lock()
			s.settles[m]++
			s.mu.Unlock()
			s.settled <- settlement{m, err}
			return nil
		}, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

func (s *memSource) Close(context.Context) error { return nil }

// push feeds a message with body b on subject "cmds".
func (s *memSource) push(b []byte, hdr ...source.Header) *source.Message {
	m := &source.Message{Source: "in", Body: b, Headers: hdr, Subject: "cmds"}
	s.feed <- m
	return m
}

// collect waits for n settlements.
func (s *memSource) collect(t *testing.T, n int) []settlement {
	t.Helper()
	out := make([]settlement, 0, n)
	timeout := time.After(wait)
	for len(out) < n {
		select {
		case st := <-s.settled:
			out = append(out, st)
		case <-timeout:
			t.Fatalf("got %d of %d acks/naks", len(out), n)
		}
	}
	return out
}

// waitReads waits until n messages were read (counting from the start).
func (s *memSource) waitReads(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(wait)
	for s.reads.Load() < int64(n) {
		select {
		case <-s.read:
		case <-timeout:
			t.Fatalf("read %d of %d messages", s.reads.Load(), n)
		}
	}
}

// receive waits for a value from ch, failing the test after the wait bound.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// checkOnce fails the test if any message was settled more than once.
func (s *memSource) checkOnce(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for m, n := range s.settles {
		if n != 1 {
			t.Errorf("message %s settled %d times", m.Body, n)
		}
	}
}

func (s *memSource) touchCount(m *source.Message) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.touches[m]
}

// ---- dead letter ----

// recPublisher records dead letters; fail makes Publish return an error.
type recPublisher struct {
	mu   sync.Mutex
	msgs []*source.Message
	fail error
}

func (p *recPublisher) Publish(_ context.Context, m *source.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.msgs = append(p.msgs, m)
	return nil
}

func (p *recPublisher) Close(context.Context) error { return nil }

func (p *recPublisher) all() []*source.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*source.Message(nil), p.msgs...)
}

// stuckPublisher is a dead letter that never confirms: Publish blocks until
// its ctx ends, after signalling entered.
type stuckPublisher struct{ entered chan struct{} }

func (p *stuckPublisher) Publish(ctx context.Context, _ *source.Message) error {
	p.entered <- struct{}{}
	<-ctx.Done()
	return fmt.Errorf("publish: %w", ctx.Err())
}

func (p *stuckPublisher) Close(context.Context) error { return nil }

// ---- codec ----

// env is the tiny envelope of these tests (the real codec is tested in its
// own package).
type env struct {
	Op        string          `json:"op"`
	Hub       string          `json:"hub"`
	Group     string          `json:"group"`
	UserID    string          `json:"userId"`
	Groups    []string        `json:"groups"`
	UserIDs   []string        `json:"userIds"`
	Filter    string          `json:"filter"`
	TTL       int             `json:"ttl"`
	ID        string          `json:"id"`
	Key       string          `json:"key"`
	ExpiresAt time.Time       `json:"expiresAt"`
	Data      json.RawMessage `json:"data"`
	Coalesce  *codec.Coalesce `json:"coalesce"`
	Trace     string          `json:"traceparent"`
}

var testActions = map[string]codec.Action{
	"sendToAll": codec.SendToAll, "sendToGroup": codec.SendToGroup, "sendToUser": codec.SendToUser,
	"sendToGroups": codec.SendToGroups, "sendToUsers": codec.SendToUsers,
	"addUserToGroup": codec.AddUserToGroup,
}

// testCodec decodes one env object or an array of them.
var testCodec = codec.CodecFunc(func(m *source.Message) ([]codec.Command, error) {
	var envs []env
	if len(m.Body) > 0 && m.Body[0] == '[' {
		if err := json.Unmarshal(m.Body, &envs); err != nil {
			return nil, &codec.DecodeError{Index: -1, Field: "body", Reason: err.Error()}
		}
	} else {
		var e env
		if err := json.Unmarshal(m.Body, &e); err != nil {
			return nil, &codec.DecodeError{Index: -1, Field: "body", Reason: "not JSON"}
		}
		envs = []env{e}
	}
	out := make([]codec.Command, len(envs))
	for i, e := range envs {
		a, ok := testActions[e.Op]
		if !ok {
			return nil, &codec.DecodeError{Index: i, Field: "op", Reason: "unknown action"}
		}
		if e.Hub == "" {
			e.Hub = "hub"
		}
		if e.Key == "" {
			e.Key = e.Hub + "/" + e.Group + e.UserID
		}
		out[i] = codec.Command{Action: a, Hub: e.Hub, Group: e.Group, UserID: e.UserID, Groups: e.Groups,
			UserIDs: e.UserIDs, Filter: e.Filter, TTL: e.TTL, ID: e.ID, Key: e.Key, ExpiresAt: e.ExpiresAt,
			Data: e.Data, Coalesce: e.Coalesce, TraceParent: e.Trace}
	}
	return out, nil
})

// sendBody is an envelope sending data to group g with ordering key.
func sendBody(g string, seq int) []byte {
	return fmt.Appendf(nil, `{"op":"sendToGroup","group":%q,"data":{"seq":%d}}`, g, seq)
}

// ---- WPS server ----

// request is what the fake Web PubSub saw.
type request struct {
	Method, Path string
	Query        url.Values
	ContentType  string
	Body         string
	At           time.Time
}

// wpsServer is a recording Web PubSub stand-in. respond picks the status of
// each request (nil: the operation's success code); it may set headers.
type wpsServer struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []request
	respond func(w http.ResponseWriter, r *request) int
	seen    chan struct{} // receives a token per request, if non-nil
}

func newWPSServer(t *testing.T, respond func(w http.ResponseWriter, r *request) int) *wpsServer {
	t.Helper()
	s := &wpsServer{respond: respond, seen: make(chan struct{}, 1<<16)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *wpsServer) serve(w http.ResponseWriter, hr *http.Request) {
	body, err := io.ReadAll(hr.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if hr.Header.Get("Authorization") == "" {
		http.Error(w, "no token", http.StatusUnauthorized)
		return
	}
	r := request{Method: hr.Method, Path: hr.URL.EscapedPath(), Query: hr.URL.Query(),
		ContentType: hr.Header.Get("Content-Type"), Body: string(body), At: time.Now()}
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	code := 0
	if s.respond != nil {
		code = s.respond(w, &r)
	}
	if code == 0 {
		code = successCode(hr.Method, r.Path)
	}
	if code >= 400 {
		w.Header().Set("x-ms-error-code", "TestError")
	}
	w.WriteHeader(code)
	select {
	case s.seen <- struct{}{}:
	default:
	}
}

// successCode follows webpubsub-api.md: 202 for sends, 200 for PUT and
// :addToGroups/:removeFromGroups, 204 for the rest.
func successCode(method, path string) int {
	switch {
	case method == http.MethodPost && (hasSuffix(path, "/:send")):
		return http.StatusAccepted
	case method == http.MethodPut, hasSuffix(path, "/:addToGroups"), hasSuffix(path, "/:removeFromGroups"):
		return http.StatusOK
	}
	return http.StatusNoContent
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

func (s *wpsServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func (s *wpsServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// waitRequests waits until the server saw at least n requests.
func (s *wpsServer) waitRequests(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(wait)
	for s.count() < n {
		select {
		case <-s.seen:
		case <-timeout:
			t.Fatalf("server saw %d of %d requests", s.count(), n)
		}
	}
}

// executor is the real wps client pointed at s.
func (s *wpsServer) executor(t *testing.T) Executor {
	t.Helper()
	c, err := wps.NewClient(s.URL, wps.WithAccessKey("test-key-not-a-secret"), wps.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatalf("wps.NewClient: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return NewWPSExecutor(c)
}

// ---- router ----

// fastConfig keeps waits short for tests.
func fastConfig() Config {
	return Config{
		Lanes:            8,
		Retry:            RetryPolicy{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, MaxElapsed: 10 * time.Second},
		SystemicInterval: 20 * time.Millisecond,
		DrainTimeout:     2 * time.Second,
	}
}

// running is a Router running in the background of a test.
type running struct {
	*Router
	cancel context.CancelFunc
	done   chan error
}

// start runs a router over inputs; stop (also a cleanup) cancels it and
// checks that Run returned nil.
func start(t *testing.T, cfg Config, exec Executor, dlq *recPublisher, inputs ...Input) *running {
	t.Helper()
	return startWith(t, cfg, testCodec, exec, dlq, inputs...)
}

// startWith is start with another codec.
func startWith(t *testing.T, cfg Config, dec codec.Codec, exec Executor, dlq *recPublisher, inputs ...Input) *running {
	t.Helper()
	var pub source.Publisher // nil, not a nil *recPublisher, when there is no dead letter
	if dlq != nil {
		pub = dlq
	}
	r, err := New(cfg, dec, exec, pub)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{Router: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx, inputs...) }()
	t.Cleanup(func() { rr.stop(t) })
	return rr
}

func (rr *running) stop(t *testing.T) {
	t.Helper()
	rr.cancel()
	select {
	case err, ok := <-rr.done:
		if !ok {
			return // stopped before
		}
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
		close(rr.done)
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
}
