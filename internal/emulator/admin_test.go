package emulator

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{Faults: Faults{Rate429: 1, RetryAfter: 1500 * time.Millisecond}})
	send := func(hub string) response {
		return v.call("POST", "/api/hubs/"+hub+"/:send"+apiV, "text/plain", []byte("x"))
	}
	r := send("chat")
	if r.status != 429 || r.header.Get("Retry-After") != "2" || r.errorCode(t) != "TooManyRequests" {
		t.Fatalf("global 429: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}

	v.e.SetFaults("other", Faults{Rate503: 1})
	if r := send("other"); r.status != 503 || r.header.Get("Retry-After") != "" {
		t.Fatalf("hub 503: %d %v", r.status, r.header)
	}

	// The admin endpoint replaces the global faults: latency only.
	put := func(query, body string) int {
		req, err := http.NewRequest(http.MethodPut, v.srv.URL+"/admin/faults"+query, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := v.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put("", `{"latency":"150ms"}`); code != 200 {
		t.Fatalf("PUT faults: %d", code)
	}
	start := time.Now()
	if r := send("chat"); r.status != 202 {
		t.Fatalf("after reset: %d", r.status)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("latency not applied: %v", d)
	}
	if code := put("?hub=other", `{"rate429":2}`); code != 400 {
		t.Fatalf("invalid rate accepted: %d", code)
	}
	if code := put("?hub=other", `{"latency":"soon"}`); code != 400 {
		t.Fatalf("invalid duration accepted: %d", code)
	}
	if code := put("?hub=other", `{"rate_503":0}`); code != 400 {
		t.Fatalf("misspelt field accepted (it would clear the hub's faults): %d", code)
	}

	resp, err := v.srv.Client().Get(v.srv.URL + "/admin/faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var view FaultsView
	if err := json.NewDecoder(resp.Body).Decode(&view); err != nil {
		t.Fatal(err)
	}
	if view.Global.Latency != 150*time.Millisecond || view.Hubs["other"].Rate503 != 1 {
		t.Fatalf("faults view %+v", view)
	}
	if st := v.e.Stats(); st.FaultsInjected != 2 {
		t.Fatalf("FaultsInjected = %d", st.FaultsInjected)
	}
	if r := v.callWithToken("HEAD", v.srv.URL+"/api/health", "", nil, ""); r.status != 200 {
		t.Fatalf("health faulted: %d", r.status)
	}
}

func TestFaultsPartialRate(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{Faults: Faults{Rate503: 0.5}})
	counts := map[int]int{}
	for range 200 {
		counts[v.call("POST", "/api/hubs/chat/:send"+apiV, "text/plain", []byte("x")).status]++
	}
	// With p=0.5 over 200 trials, each outcome below 50 has probability < 1e-12.
	if counts[503] < 50 || counts[202] < 50 || counts[503]+counts[202] != 200 {
		t.Fatalf("outcomes %v", counts)
	}
}

func TestSendFilterAndExcluded(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	a := v.dial("chat", subprotocolJSON, "listener-a", nil, []string{"g"})
	b := v.dial("chat", subprotocolJSON, "other", nil, []string{"g"})
	c := v.dial("chat", subprotocolJSON, "listener-c", nil, nil)
	q := url.Values{"api-version": {"2024-12-01"}, "filter": {"startswith(userId, 'listener-')"}, "excluded": {c.id, "fake"}}
	if r := v.call("POST", "/api/hubs/chat/:send?"+q.Encode(), "text/plain", []byte("one")); r.status != 202 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	q.Set("filter", "not ('g' in groups) or userId eq 'other'")
	q.Del("excluded")
	if r := v.call("POST", "/api/hubs/chat/:send?"+q.Encode(), "text/plain", []byte("two")); r.status != 202 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	if m := a.readJSON(); m["data"] != "one" {
		t.Fatalf("a got %v", m)
	}
	if m := b.readJSON(); m["data"] != "two" {
		t.Fatalf("b got %v (the first send must not reach it)", m)
	}
	if m := c.readJSON(); m["data"] != "two" {
		t.Fatalf("c got %v (excluded from the first send)", m)
	}
}

func TestOnRequestAndState(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	var mu sync.Mutex
	var seen []Request
	v.e.OnRequest(func(r Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r)
	})
	c := v.dial("chat", subprotocolJSON, "u1", []string{"webpubsub.joinLeaveGroup"}, []string{"g1"})
	v.call("POST", "/api/hubs/chat/groups/g1/:send"+apiV+"&messageTtlSeconds=10", "application/json", []byte(`{"x":1}`))
	v.call("POST", "/api/hubs/chat/:send", "text/plain", []byte("no version")) // rejected before auth: not reported
	c.readJSON()

	mu.Lock()
	if len(seen) != 1 {
		mu.Unlock()
		t.Fatalf("hook saw %d requests, want 1", len(seen))
	}
	r := seen[0]
	mu.Unlock()
	if r.Op != "SendToGroup" || r.Method != "POST" || r.Hub != "chat" || r.RawPath != "/api/hubs/chat/groups/g1/:send" ||
		!strings.Contains(r.RawQuery, "messageTtlSeconds=10") || r.ContentType != "application/json" ||
		string(r.Body) != `{"x":1}` || r.Status != 202 || r.At.IsZero() {
		t.Fatalf("request = %+v", r)
	}

	resp, err := v.srv.Client().Get(v.srv.URL + "/admin/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Hubs) != 1 || st.Hubs[0].Name != "chat" || len(st.Hubs[0].Connections) != 1 {
		t.Fatalf("state %+v", st)
	}
	conn := st.Hubs[0].Connections[0]
	if conn.ConnectionID != c.id || conn.UserID != "u1" || conn.Protocol != subprotocolJSON ||
		len(conn.Groups) != 1 || conn.Groups[0] != "g1" || conn.Delivered != 1 || conn.Grants["joinLeaveGroup"][0] != "*" {
		t.Fatalf("connection state %+v", conn)
	}
	if len(st.Hubs[0].Groups) != 1 || st.Hubs[0].Users[0].Name != "u1" || len(st.Recent) != 1 || st.Recent[0].Preview != `{"x":1}` {
		t.Fatalf("hub state %+v recent %+v", st.Hubs[0], st.Recent)
	}
}

func TestInspectorPageAndEvents(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	resp, err := v.srv.Client().Get(v.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !strings.Contains(string(page), "/admin/events") {
		t.Fatalf("inspector page: %d %v", resp.StatusCode, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.srv.URL+"/admin/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	events, err := v.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	if ct := events.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := bufio.NewScanner(events.Body)
	// The subscription exists once the first bytes ("retry:") arrive.
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "retry:") {
		t.Fatalf("first line %q: %v", lines.Text(), lines.Err())
	}
	if r := v.call("POST", "/api/hubs/chat/:send"+apiV, "text/plain", []byte("feed me")); r.status != 202 {
		t.Fatalf("send: %d", r.status)
	}
	for lines.Scan() {
		data, ok := strings.CutPrefix(lines.Text(), "data: ")
		if !ok {
			continue
		}
		var ev FeedEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		if ev.Kind == "delivery" {
			if ev.Preview != "feed me" || ev.Hub != "chat" || ev.Target != "all" || ev.DataType != "text" {
				t.Fatalf("event %+v", ev)
			}
			return
		}
	}
	t.Fatalf("stream ended: %v", lines.Err())
}

func TestServeShutsDownCleanly(t *testing.T) {
	t.Parallel()
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	tok := sign(t, DevAccessKey, jwt.RegisteredClaims{
		Audience:  jwt.ClaimStrings{base + "/client/hubs/chat"},
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	})
	c := dialURL(t, "ws://"+ln.Addr().String()+"/client/hubs/chat?access_token="+tok, subprotocolJSON)
	c.readJSON()
	cancel()
	if code, _ := c.expectClose(); code != 1001 {
		t.Fatalf("close code %v, want 1001", code)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Serve did not return")
	}
	resp, err := http.Get(base + "/api/health")
	if err == nil {
		resp.Body.Close()
		t.Fatal("server still answers after shutdown")
	}
}

func TestConnectionString(t *testing.T) {
	t.Parallel()
	got := ConnectionString("http://127.0.0.1:8080/", "k")
	if got != "Endpoint=http://127.0.0.1:8080;AccessKey=k;Version=1.0;" {
		t.Fatalf("got %q", got)
	}
	if len(DevAccessKey) < 32 {
		t.Fatal("DevAccessKey too short")
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{QueueLimit: -1}, {Faults: Faults{Rate429: 0.7, Rate503: 0.7}}, {Faults: Faults{Latency: -1}}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
