package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wps-bridge/bridge/internal/emulator"
)

// emulatorServer is the Web PubSub emulator with every REST request recorded
// through its OnRequest hook.
type emulatorServer struct {
	emu  *emulator.Emulator
	url  string
	mu   sync.Mutex
	reqs []emulator.Request
	got  chan struct{} // receives after each request (non-blocking)
}

func startEmulator(t *testing.T) *emulatorServer {
	t.Helper()
	emu, err := emulator.New(emulator.Config{AccessKey: accessKey})
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	s := &emulatorServer{emu: emu, got: make(chan struct{}, 1)}
	emu.OnRequest(func(r emulator.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.mu.Unlock()
		select {
		case s.got <- struct{}{}:
		default:
		}
	})
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() {
		_ = emu.Close()
		srv.Close()
	})
	s.url = srv.URL
	return s
}

// waitOps waits until cond holds for the recorded requests.
func (s *emulatorServer) waitOps(t *testing.T, timeout time.Duration, what string, cond func([]emulator.Request) bool) []emulator.Request {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		reqs := append([]emulator.Request(nil), s.reqs...)
		s.mu.Unlock()
		if cond(reqs) {
			return reqs
		}
		select {
		case <-s.got:
		case <-timer.C:
			t.Fatalf("%s: not reached within %v (%d requests)", what, timeout, len(reqs))
		}
	}
}

var quoted = regexp.MustCompile(`'((?:[^']|'')*)'`)

// TestMulticastAndCoalescing counts REST calls at the emulator: a multicast
// to 500 users costs at most 5 calls, and 1,000 sends to one group through a
// coalescing route (linger 5 ms) cost at most 20.
func TestMulticastAndCoalescing(t *testing.T) {
	t.Parallel()
	emu := startEmulator(t)
	natsURL := startNATS(t)
	_, js := connectNATS(t, natsURL)
	n := newJSNames(t, js)

	// Everything is in the stream before the bridge starts, as after a backlog.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: n.stream, Subjects: []string{n.subject + ".>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	const users, sends = 500, 1000
	ids := make([]string, users)
	for i := range ids {
		ids[i] = fmt.Sprintf("user-%03d", i)
	}
	ids[7] = "o'brien" // a quote that the filter must double
	multicast, err := json.Marshal(map[string]any{"actionName": "sendToUsers", "userIds": ids, "data": map[string]string{"note": "to 500"}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*nats.Msg{{Subject: n.subject + ".multicast", Data: multicast}}
	for i := range sends {
		msgs = append(msgs, &nats.Msg{Subject: n.subject + ".coalesce", Data: fmt.Appendf(nil, `{"actionName":"sendToGroup","group":"room","data":{"i":%d}}`, i)})
	}
	jsPublish(t, js, msgs...)

	routes := fmt.Sprintf(`routes:
  - match: "%s.coalesce"
    body: envelope
    coalesce: {count: 100, linger: 5ms}
`, n.subject)
	br := startBridge(t, yamlWPS("")+"sources:\n"+yamlJSSource("js", natsURL, n, "")+routes+yamlJSDLQ(natsURL, n),
		map[string]string{envConn: emulator.ConnectionString(emu.url, accessKey)})

	t.Run("multicast to 500 users", func(t *testing.T) {
		reqs := emu.waitOps(t, 60*time.Second, "500 users covered", func(rs []emulator.Request) bool {
			return len(multicastUsers(t, rs)) >= users
		})
		calls := 0
		for _, r := range reqs {
			if r.Op == "SendToAll" {
				calls++
				if r.Status != 202 {
					t.Errorf("SendToAll answered %d", r.Status)
				}
			}
		}
		t.Logf("multicast to %d users: %d REST calls", users, calls)
		if calls > 5 {
			t.Errorf("%d SendToAll calls, want ≤ 5", calls)
		}
		got := multicastUsers(t, reqs)
		for _, id := range ids {
			if !got[id] {
				t.Errorf("user %q not in any filter", id)
			}
		}
	})

	t.Run("coalescing 1000 sends", func(t *testing.T) {
		var items []int
		reqs := emu.waitOps(t, 60*time.Second, "1000 sends delivered", func(rs []emulator.Request) bool {
			items = coalescedItems(t, rs)
			return len(items) >= sends
		})
		calls := 0
		for _, r := range reqs {
			if r.Op == "SendToGroup" {
				calls++
			}
		}
		t.Logf("coalescing %d sends to one group (linger 5ms): %d REST calls", sends, calls)
		if calls > 20 {
			t.Errorf("%d SendToGroup calls, want ≤ 20", calls)
		}
		for i, v := range items {
			if v != i {
				t.Fatalf("item %d of the merged arrays is %d: order or count broken", i, v)
			}
		}
	})

	if dl := jsDLQ(t, js, n.dlqStream); len(dl) != 0 {
		t.Errorf("%d messages dead-lettered: %q", len(dl), dl[0].Headers["wps-bridge-error"])
	}
	if err := br.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// multicastUsers returns the users named by the filters of accepted SendToAll calls.
func multicastUsers(t *testing.T, reqs []emulator.Request) map[string]bool {
	got := map[string]bool{}
	for _, r := range reqs {
		if r.Op != "SendToAll" || r.Status != 202 {
			continue
		}
		q, err := url.ParseQuery(r.RawQuery)
		if err != nil {
			t.Fatalf("query %q: %v", r.RawQuery, err)
		}
		f := q.Get("filter")
		if !strings.HasPrefix(f, "userId in (") {
			t.Fatalf("multicast filter %q, want userId in (…)", f)
		}
		for _, m := range quoted.FindAllStringSubmatch(f, -1) {
			got[strings.ReplaceAll(m[1], "''", "'")] = true
		}
	}
	return got
}

// coalescedItems concatenates the "i" values of the JSON-array bodies of the
// accepted SendToGroup calls, in arrival order.
func coalescedItems(t *testing.T, reqs []emulator.Request) []int {
	var out []int
	for _, r := range reqs {
		if r.Op != "SendToGroup" || r.Status != 202 {
			continue
		}
		var arr []struct{ I int }
		if err := json.Unmarshal(r.Body, &arr); err != nil {
			t.Fatalf("coalesced body %q is not a JSON array: %v", r.Body, err)
		}
		for _, x := range arr {
			out = append(out, x.I)
		}
	}
	return out
}
