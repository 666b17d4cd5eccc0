package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/wps"
)

func TestAdaptiveLimiter(t *testing.T) {
	t.Parallel()
	l := newLimiter(1, 8, nil)
	ctx := context.Background()
	epochs := make([]uint64, 8)
	for i := range epochs {
		e, err := l.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		epochs[i] = e
	}
	blocked := func() bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		e, err := l.acquire(ctx)
		if err == nil {
			l.release(e, outcomeNeutral)
			return false
		}
		return true
	}
	if !blocked() {
		t.Fatal("a 9th call started with a limit of 8")
	}

	// A burst of overloads from calls of one epoch halves the limit once.
	for _, e := range epochs[:3] {
		l.release(e, outcomeOverload)
	}
	if got := l.current(); got != 4 {
		t.Fatalf("limit after a burst of 3 overloads = %d, want 4", got)
	}
	// 5 calls still in flight ≥ 4: new calls wait.
	if !blocked() {
		t.Fatal("a call started above the decreased limit")
	}
	for _, e := range epochs[3:] {
		l.release(e, outcomeNeutral)
	}

	// Each call started after a decrease may decrease again, down to min.
	for _, want := range []int{2, 1, 1} {
		e, err := l.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l.release(e, outcomeOverload)
		if got := l.current(); got != want {
			t.Fatalf("limit = %d, want %d", got, want)
		}
	}

	// Additive increase: +1 after `limit` successes.
	for _, want := range []int{2, 2, 3} {
		e, err := l.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l.release(e, outcomeSuccess)
		if got := l.current(); got != want {
			t.Fatalf("limit = %d, want %d", got, want)
		}
	}

	// A waiter wakes up when a slot frees.
	l2 := newLimiter(1, 1, nil)
	e, _ := l2.acquire(ctx)
	got := make(chan error, 1)
	go func() {
		e, err := l2.acquire(ctx)
		if err == nil {
			l2.release(e, outcomeSuccess)
		}
		got <- err
	}()
	l2.release(e, outcomeSuccess)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("waiter never woke up")
	}
}

// limiterState reads the limiter's counters.
func limiterState(l *limiter) (inflight, waiting int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight, l.waiting.Len()
}

// waitForLimiter polls the limiter's state (waiters park inside it: there is
// no signal to wait on) until cond holds.
func waitForLimiter(t *testing.T, l *limiter, what string, cond func(inflight, waiting int) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond(limiterState(l)) {
		if time.Now().After(deadline) {
			in, w := limiterState(l)
			t.Fatalf("%s: inflight %d, waiting %d", what, in, w)
		}
		runtime.Gosched()
	}
}

// A freed slot goes to the oldest waiter, and only to it; a waiter that gives
// up leaves the queue.
func TestLimiterServesWaitersInOrder(t *testing.T) {
	t.Parallel()
	l := newLimiter(1, 1, nil)
	ctx := context.Background()
	held, err := l.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		name  string
		epoch uint64
		err   error
	}
	got := make(chan result, 3)
	cctx, cancelC := context.WithCancel(ctx)
	defer cancelC()
	for i, w := range []struct {
		name string
		ctx  context.Context
	}{{"A", ctx}, {"B", ctx}, {"C", cctx}} {
		go func() {
			e, err := l.acquire(w.ctx)
			got <- result{w.name, e, err}
		}()
		waitForLimiter(t, l, "waiter "+w.name+" queued", func(_, waiting int) bool { return waiting == i+1 })
	}
	next := func(want string, wantErr bool) result {
		t.Helper()
		select {
		case r := <-got:
			if r.name != want || (r.err != nil) != wantErr {
				t.Fatalf("got %s (err %v), want %s (error: %v)", r.name, r.err, want, wantErr)
			}
			return r
		case <-time.After(wait):
			t.Fatalf("%s never returned", want)
			return result{}
		}
	}
	l.release(held, outcomeSuccess)
	a := next("A", false)
	if in, w := limiterState(l); in != 1 || w != 2 {
		t.Fatalf("after one release: inflight %d, waiting %d; want 1 and 2 (one slot, one waiter served)", in, w)
	}
	l.release(a.epoch, outcomeSuccess)
	b := next("B", false)
	cancelC()
	next("C", true)
	if in, w := limiterState(l); in != 1 || w != 0 {
		t.Fatalf("after C gave up: inflight %d, waiting %d; want 1 and 0", in, w)
	}
	l.release(b.epoch, outcomeSuccess)
	if in, w := limiterState(l); in != 0 || w != 0 {
		t.Fatalf("at rest: inflight %d, waiting %d", in, w)
	}
}

// A waiter that gives up just as a slot is handed to it passes the slot on:
// no slot is lost, whichever of the two its select sees first.
func TestLimiterCancelRacingHandOff(t *testing.T) {
	t.Parallel()
	l := newLimiter(1, 1, nil)
	ctx := context.Background()
	for range 500 {
		held, err := l.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		first := make(chan error, 1)
		var firstEpoch uint64
		go func() {
			var err error
			firstEpoch, err = l.acquire(wctx)
			first <- err
		}()
		waitForLimiter(t, l, "first waiter queued", func(_, waiting int) bool { return waiting == 1 })
		second := make(chan uint64, 1)
		go func() {
			e, err := l.acquire(ctx)
			if err != nil {
				t.Error(err)
			}
			second <- e
		}()
		waitForLimiter(t, l, "second waiter queued", func(_, waiting int) bool { return waiting == 2 })
		cancel()
		l.release(held, outcomeNeutral)
		if err := <-first; err == nil {
			l.release(firstEpoch, outcomeNeutral) // it got the slot before seeing the cancel
		}
		select {
		case e := <-second:
			l.release(e, outcomeNeutral)
		case <-time.After(wait):
			in, w := limiterState(l)
			t.Fatalf("the slot was lost: the second waiter never ran (inflight %d, waiting %d)", in, w)
		}
		if in, w := limiterState(l); in != 0 || w != 0 {
			t.Fatalf("at rest: inflight %d, waiting %d", in, w)
		}
	}
}

func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want outcome
	}{
		{nil, outcomeSuccess},
		{&wps.StatusError{StatusCode: 429}, outcomeOverload},
		{&wps.StatusError{StatusCode: 503}, outcomeOverload},
		{&wps.StatusError{StatusCode: 408}, outcomeOverload},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), outcomeOverload},
		{&wps.StatusError{StatusCode: 400}, outcomeNeutral},
		{&wps.StatusError{StatusCode: 401}, outcomeNeutral},
		{errors.New("connection reset"), outcomeNeutral},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			if got := outcomeOf(tt.err); got != tt.want {
				t.Errorf("outcomeOf = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCompileMulticast(t *testing.T) {
	t.Parallel()
	groups := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("g%d", i)
		}
		return out
	}
	tests := []struct {
		name    string
		cmd     codec.Command
		chunk   int
		filters []string
	}{
		{"groups", codec.Command{Action: codec.SendToGroups, Groups: []string{"a", "b"}}, 100,
			[]string{"'a' in groups or 'b' in groups"}},
		{"quotes doubled", codec.Command{Action: codec.SendToUsers, UserIDs: []string{"o'brien", "x''y"}}, 100,
			[]string{"userId in ('o''brien','x''''y')"}},
		{"and-ed with own filter", codec.Command{Action: codec.SendToUsers, UserIDs: []string{"a"}, Filter: "'vip' in groups or userId eq 'b'"}, 100,
			[]string{"('vip' in groups or userId eq 'b') and (userId in ('a'))"}},
		{"chunked", codec.Command{Action: codec.SendToGroups, Groups: groups(5)}, 2,
			[]string{"'g0' in groups or 'g1' in groups", "'g2' in groups or 'g3' in groups", "'g4' in groups"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cmd.Hub, tt.cmd.Key, tt.cmd.Data, tt.cmd.TTL = "h", "k", []byte(`1`), 5
			got, err := compileMulticast(&tt.cmd, tt.chunk, -1)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.filters) {
				t.Fatalf("%d commands, want %d", len(got), len(tt.filters))
			}
			for i, c := range got {
				if c.Filter != tt.filters[i] {
					t.Errorf("filter[%d] = %q, want %q", i, c.Filter, tt.filters[i])
				}
				if c.Action != codec.SendToAll || c.Hub != "h" || c.Key != "k" || string(c.Data) != "1" ||
					c.TTL != 5 || c.Groups != nil || c.UserIDs != nil {
					t.Errorf("command[%d] = %+v, want a sendToAll keeping hub, key, data and ttl", i, c)
				}
			}
		})
	}
	t.Run("no targets", func(t *testing.T) {
		t.Parallel()
		_, err := expand([]codec.Command{{Action: codec.SendToAll}, {Action: codec.SendToUsers}}, 100)
		var de *codec.DecodeError
		if !errors.As(err, &de) || de.Field != "userIds" || de.Index != 1 {
			t.Errorf("expand = %v, want a DecodeError for [1].userIds", err)
		}
	})
	t.Run("order kept", func(t *testing.T) {
		t.Parallel()
		in := []codec.Command{{Action: codec.SendToGroup, ID: "a"}, {Action: codec.SendToGroups, Groups: groups(3), ID: "b"}, {Action: codec.SendToUser, ID: "c"}}
		out, err := expand(in, 2)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range out {
			ids = append(ids, c.ID+":"+c.Action.String())
		}
		if got := strings.Join(ids, " "); got != "a:sendToGroup b:sendToAll b:sendToAll c:sendToUser" {
			t.Errorf("expanded to %s", got)
		}
	})
}

func TestWPSExecutorMapsEveryAction(t *testing.T) {
	t.Parallel()
	srv := newWPSServer(t, nil)
	exec := srv.executor(t)
	base := codec.Command{Hub: "hub", Data: []byte(`{"a":1}`)}
	tests := []struct {
		name   string
		cmd    codec.Command
		method string
		path   string
		query  url.Values
		ctype  string
		body   string
	}{
		{"sendToAll", codec.Command{Action: codec.SendToAll, Excluded: []string{"c1", "c2"}, Filter: "userId eq 'a'", TTL: 9},
			"POST", "/api/hubs/hub/:send", url.Values{"excluded": {"c1", "c2"}, "filter": {"userId eq 'a'"}, "messageTtlSeconds": {"9"}}, "application/json", `{"a":1}`},
		{"sendToGroup text", codec.Command{Action: codec.SendToGroup, Group: "g 1", DataType: codec.DataText, Data: []byte("hi")},
			"POST", "/api/hubs/hub/groups/g%201/:send", nil, "text/plain", "hi"},
		{"sendToUser binary", codec.Command{Action: codec.SendToUser, UserID: "u1", DataType: codec.DataBinary, Data: []byte{0, 1}},
			"POST", "/api/hubs/hub/users/u1/:send", nil, "application/octet-stream", "\x00\x01"},
		{"sendToConnection", codec.Command{Action: codec.SendToConnection, ConnectionID: "c1", TTL: 3},
			"POST", "/api/hubs/hub/connections/c1/:send", url.Values{"messageTtlSeconds": {"3"}}, "application/json", `{"a":1}`},
		{"addConnectionToGroup", codec.Command{Action: codec.AddConnectionToGroup, Group: "g", ConnectionID: "c1"},
			"PUT", "/api/hubs/hub/groups/g/connections/c1", nil, "", ""},
		{"removeConnectionFromGroup", codec.Command{Action: codec.RemoveConnectionFromGroup, Group: "g", ConnectionID: "c1"},
			"DELETE", "/api/hubs/hub/groups/g/connections/c1", nil, "", ""},
		{"removeConnectionFromAllGroups", codec.Command{Action: codec.RemoveConnectionFromAllGroups, ConnectionID: "c1"},
			"DELETE", "/api/hubs/hub/connections/c1/groups", nil, "", ""},
		{"addUserToGroup", codec.Command{Action: codec.AddUserToGroup, Group: "g", UserID: "u1"},
			"PUT", "/api/hubs/hub/users/u1/groups/g", nil, "", ""},
		{"removeUserFromGroup", codec.Command{Action: codec.RemoveUserFromGroup, Group: "g", UserID: "u1"},
			"DELETE", "/api/hubs/hub/users/u1/groups/g", nil, "", ""},
		{"removeUserFromAllGroups", codec.Command{Action: codec.RemoveUserFromAllGroups, UserID: "u1"},
			"DELETE", "/api/hubs/hub/users/u1/groups", nil, "", ""},
		{"addConnectionsToGroups", codec.Command{Action: codec.AddConnectionsToGroups, Groups: []string{"a", "b"}, Filter: "userId eq 'x'"},
			"POST", "/api/hubs/hub/:addToGroups", nil, "application/json", `{"groups":["a","b"],"filter":"userId eq 'x'"}`},
		{"removeConnectionsFromGroups", codec.Command{Action: codec.RemoveConnectionsFromGroups, Groups: []string{"a"}},
			"POST", "/api/hubs/hub/:removeFromGroups", nil, "application/json", `{"groups":["a"]}`},
		{"closeConnection", codec.Command{Action: codec.CloseConnection, ConnectionID: "c1", Reason: "bye"},
			"DELETE", "/api/hubs/hub/connections/c1", url.Values{"reason": {"bye"}}, "", ""},
		{"closeAllConnections", codec.Command{Action: codec.CloseAllConnections, Excluded: []string{"c9"}, Reason: "r"},
			"POST", "/api/hubs/hub/:closeConnections", url.Values{"excluded": {"c9"}, "reason": {"r"}}, "", ""},
		{"closeGroupConnections", codec.Command{Action: codec.CloseGroupConnections, Group: "g"},
			"POST", "/api/hubs/hub/groups/g/:closeConnections", nil, "", ""},
		{"closeUserConnections", codec.Command{Action: codec.CloseUserConnections, UserID: "u1"},
			"POST", "/api/hubs/hub/users/u1/:closeConnections", nil, "", ""},
		{"grantPermission", codec.Command{Action: codec.GrantPermission, Permission: "sendToGroup", ConnectionID: "c1", TargetName: "g"},
			"PUT", "/api/hubs/hub/permissions/sendToGroup/connections/c1", url.Values{"targetName": {"g"}}, "", ""},
		{"revokePermission", codec.Command{Action: codec.RevokePermission, Permission: "joinLeaveGroup", ConnectionID: "c1"},
			"DELETE", "/api/hubs/hub/permissions/joinLeaveGroup/connections/c1", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := tt.cmd
			cmd.Hub = base.Hub
			if cmd.Data == nil && cmd.Action.IsSend() {
				cmd.Data = base.Data
			}
			before := srv.count()
			if err := exec.Execute(context.Background(), &cmd); err != nil {
				t.Fatalf("Execute: %v", err)
			}
			reqs := srv.requests()
			if len(reqs) != before+1 {
				t.Fatalf("%d requests, want 1", len(reqs)-before)
			}
			r := reqs[before]
			if r.Method != tt.method || r.Path != tt.path {
				t.Errorf("%s %s, want %s %s", r.Method, r.Path, tt.method, tt.path)
			}
			for k, want := range tt.query {
				if got := r.Query[k]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("query %s = %v, want %v", k, got, want)
				}
			}
			if tt.ctype != "" && r.ContentType != tt.ctype {
				t.Errorf("content type %q, want %q", r.ContentType, tt.ctype)
			}
			if tt.body != "" && r.Body != tt.body {
				t.Errorf("body %q, want %q", r.Body, tt.body)
			}
		})
	}
	t.Run("multicast is not a single call", func(t *testing.T) {
		err := exec.Execute(context.Background(), &codec.Command{Action: codec.SendToUsers, Hub: "hub", UserIDs: []string{"a"}})
		if wps.Classify(err) != wps.ClassInvalid {
			t.Errorf("Execute(sendToUsers) = %v, want an invalid error", err)
		}
	})
}

func TestTransientExhaustedGoesToDeadLetter(t *testing.T) {
	t.Parallel()
	srv := newWPSServer(t, func(w http.ResponseWriter, r *request) int { return http.StatusBadGateway })
	dlq := &recPublisher{}
	src := newMemSource(1)
	src.push([]byte(`{"op":"sendToGroup","group":"g","data":1,"id":"x1"}`))
	cfg := fastConfig()
	cfg.Retry.MaxElapsed = 100 * time.Millisecond
	start(t, cfg, srv.executor(t), dlq, Input{Name: "in", Source: src})

	requireAllAcked(t, src.collect(t, 1))
	dls := dlq.all()
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	h := dls[0].Headers
	class, _ := h.Get(HeaderErrorClass)
	status, _ := h.Get(HeaderStatus)
	attempts, _ := h.Get(HeaderAttempts)
	if class != "transient" || status != "502" || attempts != fmt.Sprint(srv.count()) || srv.count() < 2 {
		t.Errorf("class=%s status=%s attempts=%s (server saw %d), want transient, 502, every attempt", class, status, attempts, srv.count())
	}
}

// TestTraceParentContinued is not parallel: it swaps the global tracer provider.
func TestTraceParentContinued(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	exec := ExecutorFunc(func(context.Context, *codec.Command) error { return nil })
	src := newMemSource(2)
	src.push([]byte(`{"op":"sendToGroup","group":"g","data":1,"traceparent":"00-` + traceID + `-00f067aa0ba902b7-01"}`))
	src.push([]byte(`{"op":"sendToGroup","group":"g","data":2}`))
	rr := start(t, fastConfig(), exec, nil, Input{Name: "in", Source: src})
	requireAllAcked(t, src.collect(t, 2))
	rr.stop(t)

	var spans []string
	for _, s := range rec.Ended() {
		if strings.HasPrefix(s.Name(), "wps ") {
			spans = append(spans, s.Name()+"/"+s.SpanContext().TraceID().String()+"/"+s.Parent().SpanID().String())
		}
	}
	if want := "wps sendToGroup/" + traceID + "/00f067aa0ba902b7"; len(spans) != 1 || spans[0] != want {
		t.Errorf("spans %v, want [%s]", spans, want)
	}
}

// benchSource yields n copies of one message, then ends.
type benchSource struct {
	msg   source.Message
	left  atomic.Int64
	acked atomic.Int64
}

func (s *benchSource) Read(ctx context.Context) (*source.Message, source.AckFunc, error) {
	if s.left.Add(-1) < 0 {
		return nil, nil, source.ErrEndOfInput
	}
	return &s.msg, s.ack, nil
}

func (s *benchSource) ack(_ context.Context, err error) error {
	if err == nil {
		s.acked.Add(1)
	}
	return nil
}

func (s *benchSource) Close(context.Context) error { return nil }

// BenchmarkRouter measures the router's own cost per message (one command,
// 256 keys, a no-op executor): read, decode lookup, lane, limiter, ack.
func BenchmarkRouter(b *testing.B) {
	cmds := make([][]codec.Command, 256)
	for i := range cmds {
		cmds[i] = []codec.Command{{Action: codec.SendToGroup, Hub: "hub", Group: fmt.Sprint(i), Key: fmt.Sprint(i), Data: []byte(`{}`)}}
	}
	var n atomic.Uint64
	dec := codec.CodecFunc(func(*source.Message) ([]codec.Command, error) {
		return cmds[n.Add(1)%uint64(len(cmds))], nil
	})
	exec := ExecutorFunc(func(context.Context, *codec.Command) error { return nil })
	src := &benchSource{msg: source.Message{Body: []byte(`{}`), Subject: "s"}}
	src.left.Store(int64(b.N))
	r, err := New(Config{}, dec, exec, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if err := r.Run(context.Background(), Input{Name: "bench", Source: src}); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got := src.acked.Load(); got != int64(b.N) {
		b.Fatalf("acked %d of %d", got, b.N)
	}
}
