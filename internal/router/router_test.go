package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/wps"
)

// seqOf returns the "seq" of a JSON body {"seq":n}.
func seqOf(t *testing.T, body string) int {
	t.Helper()
	var v struct{ Seq int }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return v.Seq
}

func requireAllAcked(t *testing.T, sts []settlement) {
	t.Helper()
	for _, st := range sts {
		if st.err != nil {
			t.Errorf("message %s naked: %v", st.msg.Body, st.err)
		}
	}
}

func TestPerKeyOrderManyKeysFewLanes(t *testing.T) {
	t.Parallel()
	const total, keys = 5000, 50
	srv := newWPSServer(t, nil)
	src := newMemSource(total)
	for i := range total {
		src.push(sendBody(fmt.Sprintf("g%d", i%keys), i))
	}
	cfg := fastConfig()
	cfg.Lanes = 8
	start(t, cfg, srv.executor(t), nil, Input{Name: "in", Source: src})

	requireAllAcked(t, src.collect(t, total))
	src.checkOnce(t)

	last := map[string]int{}
	reqs := srv.requests()
	if len(reqs) != total {
		t.Fatalf("server saw %d requests, want %d", len(reqs), total)
	}
	for _, r := range reqs {
		seq := seqOf(t, r.Body)
		if prev, ok := last[r.Path]; ok && seq <= prev {
			t.Fatalf("%s: seq %d after %d: order broken", r.Path, seq, prev)
		}
		last[r.Path] = seq
	}
	if len(last) != keys {
		t.Errorf("saw %d groups, want %d", len(last), keys)
	}
}

func TestAckOnlyAfterAllCommandsSucceeded(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	exec := ExecutorFunc(func(ctx context.Context, cmd *codec.Command) error {
		if cmd.Group != "slow" {
			return nil
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	src := newMemSource(3)
	multi := src.push([]byte(`[{"op":"sendToGroup","group":"a","data":1},{"op":"sendToGroup","group":"slow","data":2},{"op":"sendToGroup","group":"b","data":3}]`))
	// Same keys as the fast commands: once these are acked, the fast commands
	// of the first message (earlier on the same lanes) have finished.
	src.push([]byte(`{"op":"sendToGroup","group":"a","data":4}`))
	src.push([]byte(`{"op":"sendToGroup","group":"b","data":5}`))
	start(t, fastConfig(), exec, nil, Input{Name: "in", Source: src})

	for _, st := range src.collect(t, 2) {
		if st.msg == multi {
			t.Fatalf("message settled (%v) before its slow command succeeded", st.err)
		}
	}
	close(release)
	st := src.collect(t, 1)[0]
	if st.msg != multi || st.err != nil {
		t.Errorf("got %s settled with %v, want the first message acked", st.msg.Body, st.err)
	}
}

func TestTransient503RetriedThenDelivered(t *testing.T) {
	t.Parallel()
	var failures atomic.Int32
	srv := newWPSServer(t, func(w http.ResponseWriter, r *request) int {
		if failures.Add(1) <= 6 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	dlq := &recPublisher{}
	src := newMemSource(3)
	msgs := []*source.Message{src.push(sendBody("room", 0)), src.push(sendBody("room", 1)), src.push(sendBody("room", 2))}
	cfg := fastConfig()
	cfg.Metrics = m
	start(t, cfg, srv.executor(t), dlq, Input{Name: "in", Source: src})

	requireAllAcked(t, src.collect(t, 3))
	if n := len(dlq.all()); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	var got []int
	for _, r := range srv.requests()[6:] {
		got = append(got, seqOf(t, r.Body))
	}
	if fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("delivered %v, want [0 1 2] after 6 failures", got)
	}
	if n := testutil.ToFloat64(m.retried.WithLabelValues("in", "sendToGroup", "transient")); n != 6 {
		t.Errorf("retried = %v, want 6", n)
	}
	if n := testutil.ToFloat64(m.sent.WithLabelValues("in", "sendToGroup", "5xx")); n != 6 {
		t.Errorf("sent{5xx} = %v, want 6", n)
	}
	if n := testutil.ToFloat64(m.sent.WithLabelValues("in", "sendToGroup", "2xx")); n != 3 {
		t.Errorf("sent{2xx} = %v, want 3", n)
	}
	if src.touchCount(msgs[0]) == 0 {
		t.Error("the retried message was never touched")
	}
	if lim := testutil.ToFloat64(m.inflightLimit); lim >= DefaultMaxInFlight {
		t.Errorf("inflight limit %v did not decrease after 503s", lim)
	}
}

func TestRetryAfterGateHoldsAllLanes(t *testing.T) {
	t.Parallel()
	var first atomic.Bool
	srv := newWPSServer(t, func(w http.ResponseWriter, r *request) int {
		if first.CompareAndSwap(false, true) {
			w.Header().Set("Retry-After", "1")
			return http.StatusTooManyRequests
		}
		return 0
	})
	dlq := &recPublisher{}
	src := newMemSource(2)
	a := src.push(sendBody("a", 0))
	rr := start(t, fastConfig(), srv.executor(t), dlq, Input{Name: "in", Source: src})
	select { // a retry begins with a touch, after the gate was closed
	case m := <-src.touched:
		if m != a {
			t.Fatalf("touched %s", m.Body)
		}
	case <-time.After(wait):
		t.Fatal("the 429 was not retried")
	}
	src.push(sendBody("b", 1)) // another lane: it must wait for the gate too

	requireAllAcked(t, src.collect(t, 2))
	rr.stop(t)
	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("server saw %d requests, want 3 (429, then a and b)", len(reqs))
	}
	for _, r := range reqs[1:] {
		if d := r.At.Sub(reqs[0].At); d < time.Second {
			t.Errorf("%s sent %v after the 429, want ≥ 1s (Retry-After)", r.Path, d)
		}
	}
	if n := len(dlq.all()); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// TestRetryAfterCappedByRetryBudget: a Retry-After beyond Retry.MaxElapsed
// is honoured only up to it (regression: one bogus header closed the gate
// for every lane for as long as it said).
func TestRetryAfterCappedByRetryBudget(t *testing.T) {
	t.Parallel()
	var first atomic.Bool
	srv := newWPSServer(t, func(w http.ResponseWriter, r *request) int {
		if first.CompareAndSwap(false, true) {
			w.Header().Set("Retry-After", "86400")
			return http.StatusTooManyRequests
		}
		return 0
	})
	dlq := &recPublisher{}
	src := newMemSource(1)
	src.push(sendBody("a", 0))
	cfg := fastConfig()
	cfg.Retry.MaxElapsed = time.Second
	start(t, cfg, srv.executor(t), dlq, Input{Name: "in", Source: src})

	requireAllAcked(t, src.collect(t, 1))
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("server saw %d requests, want 2 (429, then the retry)", len(reqs))
	}
	if d := reqs[1].At.Sub(reqs[0].At); d < time.Second {
		t.Errorf("retried %v after the 429, want ≥ 1s (the capped Retry-After)", d)
	}
	if n := len(dlq.all()); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

func TestSystemic401PausesReadingUntilHealed(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	broken.Store(true)
	srv := newWPSServer(t, func(w http.ResponseWriter, r *request) int {
		if broken.Load() {
			return http.StatusUnauthorized
		}
		return 0
	})
	m := NewMetrics(prometheus.NewRegistry())
	dlq := &recPublisher{}
	src := newMemSource(64)
	src.push(sendBody("g0", 0))
	cfg := fastConfig()
	cfg.Metrics = m
	rr := start(t, cfg, srv.executor(t), dlq, Input{Name: "in", Source: src})

	srv.waitRequests(t, 2) // the failing call and its first systemic retry
	err := rr.Ready()
	if err == nil || !strings.HasPrefix(err.Error(), "paused: ") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Ready() = %v, want paused by a 401", err)
	}
	if g := testutil.ToFloat64(m.ready); g != 0 {
		t.Errorf("wpsbridge_ready = %v while paused, want 0", g)
	}
	for i := 1; i <= 50; i++ {
		src.push(sendBody(fmt.Sprintf("g%d", i), i))
	}
	seen := srv.count()
	srv.waitRequests(t, seen+3) // three more systemic retries while paused
	if n := src.reads.Load(); n > 2 {
		t.Errorf("read %d messages while paused, want ≤ 2 (one Read may have been pending)", n)
	}
	if n := len(dlq.all()); n != 0 {
		t.Errorf("%d dead letters while paused, want none", n)
	}

	broken.Store(false) // the key was fixed
	requireAllAcked(t, src.collect(t, 51))
	if err := rr.Ready(); err != nil {
		t.Errorf("Ready() after healing = %v", err)
	}
	if g := testutil.ToFloat64(m.ready); g != 1 {
		t.Errorf("wpsbridge_ready = %v after healing, want 1", g)
	}
	if n := len(dlq.all()); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

func TestInvalidGoesToDeadLetterWithHeaders(t *testing.T) {
	t.Parallel()
	srv := newWPSServer(t, func(w http.ResponseWriter, r *request) int {
		if strings.Contains(r.Path, "/groups/bad/") {
			return http.StatusBadRequest
		}
		return 0
	})
	failedAt := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	m := NewMetrics(prometheus.NewRegistry())
	dlq := &recPublisher{}
	src := newMemSource(4)
	src.push(sendBody("g1", 0))
	bad := src.push([]byte(`{"op":"sendToGroup","group":"bad","id":"cmd-7","data":{"seq":1}}`),
		source.Header{Key: "x-app", Value: "kept"}, source.Header{Key: "Wps-Bridge-Error", Value: "stale"})
	notJSON := src.push([]byte(`{not json`))
	src.push(sendBody("g1", 2))
	cfg := fastConfig()
	cfg.Now = func() time.Time { return failedAt }
	cfg.Metrics = m
	start(t, cfg, srv.executor(t), dlq, Input{Name: "in", Source: src})

	requireAllAcked(t, src.collect(t, 4))
	var delivered []int
	for _, r := range srv.requests() {
		if strings.Contains(r.Path, "/groups/g1/") {
			delivered = append(delivered, seqOf(t, r.Body))
		}
	}
	if fmt.Sprint(delivered) != "[0 2]" {
		t.Errorf("neighbours delivered %v, want [0 2]", delivered)
	}
	if n := srv.count(); n != 3 {
		t.Errorf("server saw %d requests, want 3 (a 400 is not retried)", n)
	}

	dls := map[string]*source.Message{}
	for _, d := range dlq.all() {
		dls[string(d.Body)] = d
	}
	if len(dls) != 2 {
		t.Fatalf("dead letters: %d, want 2", len(dls))
	}
	tests := []struct {
		name  string
		orig  *source.Message
		want  map[string]string
		error string
	}{
		{"400 from the service", bad, map[string]string{
			HeaderErrorClass: "invalid", HeaderStatus: "400", HeaderAttempts: "1", HeaderSource: "in",
			HeaderOrigin: "subject=cmds", HeaderFailedAt: "2025-03-04T05:06:07Z", HeaderCommandID: "cmd-7", HeaderAction: "sendToGroup", "x-app": "kept",
		}, "400"},
		{"decode error", notJSON, map[string]string{
			HeaderErrorClass: "invalid", HeaderStatus: "", HeaderAttempts: "0", HeaderSource: "in",
			HeaderOrigin: "subject=cmds", HeaderFailedAt: "2025-03-04T05:06:07Z",
		}, "invalid command: body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dls[string(tt.orig.Body)]
			if d == nil {
				t.Fatalf("no dead letter with body %s", tt.orig.Body)
			}
			for k, v := range tt.want {
				if got, ok := d.Headers.Get(k); !ok || got != v {
					t.Errorf("header %s = %q (present %v), want %q", k, got, ok, v)
				}
			}
			if got, _ := d.Headers.Get(HeaderError); !strings.Contains(got, tt.error) || got == "stale" {
				t.Errorf("%s = %q, want it to mention %q", HeaderError, got, tt.error)
			}
			n := 0
			for _, h := range d.Headers {
				if strings.EqualFold(h.Key, HeaderError) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d %s headers, want 1", n, HeaderError)
			}
		})
	}
	if n := testutil.ToFloat64(m.deadLetters.WithLabelValues("in", "invalid")); n != 2 {
		t.Errorf("dead_lettered{invalid} = %v, want 2", n)
	}
}

func TestDeadLetterPublishFailureNaks(t *testing.T) {
	t.Parallel()
	srv := newWPSServer(t, func(w http.ResponseWriter, r *request) int { return http.StatusNotFound })
	dlqErr := errors.New("dead letter stream unavailable")
	dlq := &recPublisher{fail: dlqErr}
	m := NewMetrics(prometheus.NewRegistry())
	src := newMemSource(1)
	src.push(sendBody("g", 0))
	cfg := fastConfig()
	cfg.Metrics = m
	rr := start(t, cfg, srv.executor(t), dlq, Input{Name: "in", Source: src})

	st := src.collect(t, 1)[0]
	rr.stop(t) // the counters are updated after the nak returns
	if !errors.Is(st.err, dlqErr) {
		t.Errorf("nak error %v does not wrap the dead-letter error", st.err)
	}
	if _, ok := errors.AsType[*wps.StatusError](st.err); !ok {
		t.Errorf("nak error %v does not carry the cause", st.err)
	}
	if n := testutil.ToFloat64(m.naks.WithLabelValues("in")); n != 1 {
		t.Errorf("nacked = %v, want 1", n)
	}
}

func TestNoDeadLetterLogsCountsAndAcks(t *testing.T) {
	t.Parallel()
	srv := newWPSServer(t, func(w http.ResponseWriter, r *request) int { return http.StatusBadRequest })
	var logs bytes.Buffer
	var logMu sync.Mutex
	m := NewMetrics(prometheus.NewRegistry())
	src := newMemSource(1)
	src.push(sendBody("g", 0))
	cfg := fastConfig()
	cfg.Metrics = m
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelError}))
	rr := start(t, cfg, srv.executor(t), nil, Input{Name: "in", Source: src})

	requireAllAcked(t, src.collect(t, 1))
	rr.stop(t)
	if n := testutil.ToFloat64(m.drops.WithLabelValues("in", "no_dead_letter")); n != 1 {
		t.Errorf("dropped{no_dead_letter} = %v, want 1", n)
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "no dead letter") || !strings.Contains(out, "400") {
		t.Errorf("error log does not give the reason: %q", out)
	}
	if strings.Contains(out, "test-key-not-a-secret") {
		t.Error("the access key leaked into the logs")
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestExpiredCommandDroppedAndAcked(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	srv := newWPSServer(t, nil)
	m := NewMetrics(prometheus.NewRegistry())
	dlq := &recPublisher{}
	src := newMemSource(2)
	src.push(fmt.Appendf(nil, `{"op":"sendToGroup","group":"g","data":1,"expiresAt":%q}`, now.Add(-time.Second).Format(time.RFC3339)))
	src.push(sendBody("g", 2))
	cfg := fastConfig()
	cfg.Now = func() time.Time { return now }
	cfg.Metrics = m
	start(t, cfg, srv.executor(t), dlq, Input{Name: "in", Source: src})

	requireAllAcked(t, src.collect(t, 2))
	reqs := srv.requests()
	if len(reqs) != 1 || seqOf(t, reqs[0].Body) != 2 {
		t.Errorf("requests %+v, want only the unexpired command", reqs)
	}
	if n := testutil.ToFloat64(m.drops.WithLabelValues("in", "expired")); n != 1 {
		t.Errorf("dropped{expired} = %v, want 1", n)
	}
	if n := len(dlq.all()); n != 0 {
		t.Errorf("%d dead letters, want none (expired commands are dropped)", n)
	}
}

func TestTTLCappedToExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		ttl     int
		expires time.Duration // from now; 0 = no expiresAt
		want    string        // messageTtlSeconds, "" = not sent
	}{
		{"no ttl, 30s left", 0, 30 * time.Second, "30"},
		{"ttl above time left", 100, 30 * time.Second, "30"},
		{"ttl below time left", 10, 30 * time.Second, "10"},
		{"no ttl, an hour left", 0, time.Hour, ""},
		{"no ttl, 300s left", 0, 300 * time.Second, "300"},
		{"half a second left", 0, 500 * time.Millisecond, "1"},
		{"no expiry", 7, 0, "7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newWPSServer(t, nil)
			src := newMemSource(1)
			exp := ""
			if tt.expires != 0 {
				exp = fmt.Sprintf(`,"expiresAt":%q`, now.Add(tt.expires).Format(time.RFC3339Nano))
			}
			src.push(fmt.Appendf(nil, `{"op":"sendToGroup","group":"g","data":1,"ttl":%d%s}`, tt.ttl, exp))
			cfg := fastConfig()
			cfg.Now = func() time.Time { return now }
			start(t, cfg, srv.executor(t), nil, Input{Name: "in", Source: src})
			requireAllAcked(t, src.collect(t, 1))
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if got := reqs[0].Query.Get("messageTtlSeconds"); got != tt.want {
				t.Errorf("messageTtlSeconds = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCoalescingMergesConsecutiveSends(t *testing.T) {
	t.Parallel()
	t.Run("1000 sends to one group", func(t *testing.T) {
		t.Parallel()
		const total = 1000
		srv := newWPSServer(t, nil)
		src := newMemSource(total)
		for i := range total {
			src.push(fmt.Appendf(nil, `{"op":"sendToGroup","group":"room","data":{"seq":%d},"coalesce":{"Count":100,"Linger":5000000}}`, i))
		}
		start(t, fastConfig(), srv.executor(t), nil, Input{Name: "in", Source: src})
		requireAllAcked(t, src.collect(t, total))

		reqs := srv.requests()
		if len(reqs) > 20 {
			t.Errorf("%d calls for %d coalesced sends, want ≤ 20", len(reqs), total)
		}
		next := 0
		for _, r := range reqs {
			var arr []struct{ Seq int }
			if err := json.Unmarshal([]byte(r.Body), &arr); err != nil {
				t.Fatalf("body %q is not a JSON array: %v", r.Body, err)
			}
			if r.ContentType != "application/json" {
				t.Errorf("content type %q", r.ContentType)
			}
			for _, e := range arr {
				if e.Seq != next {
					t.Fatalf("element seq %d, want %d", e.Seq, next)
				}
				next++
			}
		}
		if next != total {
			t.Errorf("delivered %d elements, want %d", next, total)
		}
	})
	t.Run("stops at a different command", func(t *testing.T) {
		t.Parallel()
		srv := newWPSServer(t, nil)
		src := newMemSource(7)
		for i, f := range []string{"", "", "", "userId eq 'x'", "", "", ""} {
			src.push(fmt.Appendf(nil, `{"op":"sendToGroup","group":"room","key":"k","filter":%q,"data":%d,"coalesce":{"Count":10,"Linger":1000000000}}`, f, i))
		}
		start(t, fastConfig(), srv.executor(t), nil, Input{Name: "in", Source: src})
		requireAllAcked(t, src.collect(t, 7))
		var bodies []string
		for _, r := range srv.requests() {
			bodies = append(bodies, r.Body)
		}
		if got := strings.Join(bodies, " "); got != "[0,1,2] [3] [4,5,6]" {
			t.Errorf("calls %s, want [0,1,2] [3] [4,5,6]", got)
		}
	})
	t.Run("a failing merged call fails every command", func(t *testing.T) {
		t.Parallel()
		srv := newWPSServer(t, func(w http.ResponseWriter, r *request) int { return http.StatusBadRequest })
		dlq := &recPublisher{}
		src := newMemSource(3)
		for i := range 3 {
			src.push(fmt.Appendf(nil, `{"op":"sendToGroup","group":"room","data":%d,"coalesce":{"Count":3,"Linger":5000000000}}`, i))
		}
		start(t, fastConfig(), srv.executor(t), dlq, Input{Name: "in", Source: src})
		requireAllAcked(t, src.collect(t, 3))
		if n, d := srv.count(), len(dlq.all()); n != 1 || d != 3 {
			t.Errorf("%d calls and %d dead letters, want 1 and 3", n, d)
		}
	})
}

func TestMulticastToUsersCompiledToFilteredSendToAll(t *testing.T) {
	t.Parallel()
	srv := newWPSServer(t, nil)
	users := make([]string, 500)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	ids, err := json.Marshal(users)
	if err != nil {
		t.Fatal(err)
	}
	src := newMemSource(1)
	src.push(fmt.Appendf(nil, `{"op":"sendToUsers","userIds":%s,"data":{"hi":1},"ttl":9}`, ids))
	start(t, fastConfig(), srv.executor(t), nil, Input{Name: "in", Source: src})
	requireAllAcked(t, src.collect(t, 1))

	reqs := srv.requests()
	if len(reqs) > 5 {
		t.Fatalf("%d calls for 500 users, want ≤ 5", len(reqs))
	}
	next := 0
	for _, r := range reqs {
		if r.Method != http.MethodPost || r.Path != "/api/hubs/hub/:send" || r.Body != `{"hi":1}` ||
			r.Query.Get("messageTtlSeconds") != "9" {
			t.Errorf("request %s %s ttl=%s body=%s, want a sendToAll with ttl 9", r.Method, r.Path,
				r.Query.Get("messageTtlSeconds"), r.Body)
		}
		f := r.Query.Get("filter")
		want := "userId in ('" + strings.Join(users[next:next+100], "','") + "')"
		if f != want {
			t.Errorf("filter %.60s…, want %.60s…", f, want)
		}
		next += 100
	}
	if next != 500 {
		t.Errorf("filters covered %d users, want 500", next)
	}
}

func TestShutdownNaksUnfinishedExactlyOnce(t *testing.T) {
	t.Parallel()
	srv := newWPSServer(t, func(w http.ResponseWriter, r *request) int { return http.StatusServiceUnavailable })
	dlq := &recPublisher{}
	src := newMemSource(5)
	for i := range 5 {
		src.push(sendBody("g", i)) // one lane: the first retries, the rest wait behind it
	}
	cfg := fastConfig()
	cfg.DrainTimeout = 100 * time.Millisecond
	rr := start(t, cfg, srv.executor(t), dlq, Input{Name: "in", Source: src})
	srv.waitRequests(t, 5) // retrying

	began := time.Now()
	rr.stop(t)
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	sts := src.collect(t, 5)
	for _, st := range sts {
		if !errors.Is(st.err, source.ErrShutdown) {
			t.Errorf("message %s settled with %v, want ErrShutdown", st.msg.Body, st.err)
		}
	}
	src.checkOnce(t)
	if n := len(dlq.all()); n != 0 {
		t.Errorf("%d dead letters on shutdown, want none", n)
	}
	if err := rr.Ready(); !errors.Is(err, errStopped) {
		t.Errorf("Ready() after Run = %v, want %v", err, errStopped)
	}
}

// TestShutdownNaksDeadLetterInterruptedOnReader: a decode failure whose dead
// letter is still being published when shutdown begins is naked at once
// (regression: it stayed pending, so the drain waited DrainTimeout for a
// message no lane would ever finish).
func TestShutdownNaksDeadLetterInterruptedOnReader(t *testing.T) {
	t.Parallel()
	exec := ExecutorFunc(func(context.Context, *codec.Command) error { return nil })
	dlq := &stuckPublisher{entered: make(chan struct{}, 1)}
	src := newMemSource(1)
	bad := src.push([]byte(`{not json`))
	cfg := fastConfig()
	cfg.DrainTimeout = time.Minute
	r, err := New(cfg, testCodec, exec, dlq)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, Input{Name: "in", Source: src}) }()
	receive(t, dlq.entered, "the dead-letter publish")
	cancel()
	if err := receive(t, done, "Run to return well before DrainTimeout"); err != nil {
		t.Errorf("Run = %v", err)
	}
	st := src.collect(t, 1)[0]
	if st.msg != bad || !errors.Is(st.err, source.ErrShutdown) {
		t.Errorf("settled %s with %v, want the bad message naked with ErrShutdown", st.msg.Body, st.err)
	}
	src.checkOnce(t)
}

func TestShutdownDrainsQueuedWork(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	exec := ExecutorFunc(func(ctx context.Context, cmd *codec.Command) error {
		entered <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	src := newMemSource(3)
	for i := range 3 {
		src.push(sendBody("g", i))
	}
	cfg := fastConfig()
	cfg.DrainTimeout = wait
	rr := start(t, cfg, exec, nil, Input{Name: "in", Source: src})
	receive(t, entered, "the first call")
	src.waitReads(t, 3) // a message read is queued, even if reading stops
	rr.cancel()         // shutdown while one call is in flight and two are queued
	close(release)
	requireAllAcked(t, src.collect(t, 3))
	rr.stop(t)
}

func TestRunReturnsWhenInputsEnd(t *testing.T) {
	t.Parallel()
	srv := newWPSServer(t, nil)
	a, b := newMemSource(10), newMemSource(10)
	for i := range 10 {
		a.push(sendBody("a", i))
		b.push(sendBody("b", i))
	}
	close(a.feed)
	close(b.feed)
	r, err := New(fastConfig(), testCodec, srv.executor(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(); !errors.Is(err, errNotStarted) {
		t.Errorf("Ready() before Run = %v", err)
	}
	if err := r.Run(context.Background(), Input{Name: "a", Source: a}, Input{Name: "b", Source: b}); err != nil {
		t.Fatalf("Run = %v", err)
	}
	requireAllAcked(t, append(a.collect(t, 10), b.collect(t, 10)...))
	if n := srv.count(); n != 20 {
		t.Errorf("%d requests, want 20", n)
	}
	if err := r.Run(context.Background(), Input{Name: "a", Source: a}); err == nil {
		t.Error("second Run succeeded")
	}
}

// flakySource fails its first Reads before reading from its memSource.
type flakySource struct {
	*memSource
	errs []error
}

func (f *flakySource) Read(ctx context.Context) (*source.Message, source.AckFunc, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, nil, err
	}
	return f.memSource.Read(ctx)
}

func TestReadErrorsAreRetried(t *testing.T) {
	t.Parallel()
	srv := newWPSServer(t, nil)
	mem := newMemSource(2)
	mem.push(sendBody("g", 0))
	mem.push(sendBody("g", 1))
	src := &flakySource{memSource: mem, errs: []error{source.ErrNotConnected, source.ErrNotConnected, errors.New("boom")}}
	start(t, fastConfig(), srv.executor(t), nil, Input{Name: "in", Source: src})
	requireAllAcked(t, mem.collect(t, 2))
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	exec := ExecutorFunc(func(context.Context, *codec.Command) error { return nil })
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative lanes", Config{Lanes: -1}, "lanes"},
		{"min above max", Config{MinInFlight: 10, MaxInFlight: 5}, "minInFlight"},
		{"min above default max", Config{MinInFlight: 100}, "minInFlight"},
		{"initial above max", Config{Retry: RetryPolicy{Initial: time.Minute}}, "retry.initial"},
		{"negative drain", Config{DrainTimeout: -time.Second}, "drainTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.cfg, testCodec, exec, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	// A zero field is its default, also when another field is compared
	// with it (regression: these were refused against a maximum of 0).
	for name, cfg := range map[string]Config{
		"min with default max":     {MinInFlight: 8},
		"initial with default max": {Retry: RetryPolicy{Initial: time.Second}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(cfg, testCodec, exec, nil); err != nil {
				t.Errorf("New = %v, want the defaults to fill the other bound", err)
			}
		})
	}
	if _, err := New(Config{}, nil, exec, nil); err == nil {
		t.Error("New accepted a nil codec")
	}
	if _, err := New(Config{}, testCodec, nil, nil); err == nil {
		t.Error("New accepted a nil executor")
	}
}

func TestWithRealCodec(t *testing.T) {
	t.Parallel()
	dec, err := codec.New(codec.Config{DefaultHub: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	srv := newWPSServer(t, nil)
	dlq := &recPublisher{}
	src := newMemSource(3)
	src.push([]byte(`{"actionName":"sendToGroup","group":"room","data":{"m":1}}`))
	src.push([]byte(`{"actionName":"sendToUsers","userIds":["a","b'c"],"data":"hi","dataType":"text"}`))
	bad := src.push([]byte(`{"actionName":"sendToGroup","group":"room","data":1,"ttl":301,"id":"bad-1"}`))
	startWith(t, fastConfig(), dec, srv.executor(t), dlq, Input{Name: "in", Source: src})
	requireAllAcked(t, src.collect(t, 3))

	var got []string
	for _, r := range srv.requests() {
		got = append(got, r.Method+" "+r.Path+" "+r.Query.Get("filter")+" "+r.ContentType+" "+r.Body)
	}
	slices.Sort(got) // different keys: no order between them
	want := []string{
		`POST /api/hubs/chat/:send userId in ('a','b''c') text/plain hi`,
		`POST /api/hubs/chat/groups/room/:send  application/json {"m":1}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	dls := dlq.all()
	if len(dls) != 1 || !bytes.Equal(dls[0].Body, bad.Body) {
		t.Fatalf("dead letters %v, want the ttl 301 message", dls)
	}
	if e, _ := dls[0].Headers.Get(HeaderError); !strings.Contains(e, "ttl") {
		t.Errorf("%s = %q, want it to name the ttl field", HeaderError, e)
	}
}

func TestMaxPendingBoundsReads(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	exec := ExecutorFunc(func(ctx context.Context, cmd *codec.Command) error {
		entered <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	m := NewMetrics(prometheus.NewRegistry())
	src := newMemSource(10)
	for i := range 10 {
		src.push(sendBody(fmt.Sprintf("g%d", i), i)) // ten keys: the lanes would take them all
	}
	cfg := fastConfig()
	cfg.MaxPending = 3
	cfg.Metrics = m
	start(t, cfg, exec, nil, Input{Name: "in", Source: src})
	for range 3 {
		receive(t, entered, "a call")
	}
	if n := src.reads.Load(); n != 3 {
		t.Errorf("read %d messages with MaxPending 3, want 3", n)
	}
	if g := testutil.ToFloat64(m.pending); g != 3 {
		t.Errorf("wpsbridge_pending_messages = %v, want 3", g)
	}
	close(release)
	requireAllAcked(t, src.collect(t, 10))
}
