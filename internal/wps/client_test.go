package wps

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestFailureLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFakeService(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("x-ms-error-code", "InvalidToken")
		w.WriteHeader(http.StatusUnauthorized)
	})
	c := newTestClient(t, f, WithLogger(logger))
	err := mustHub(t, c, "hub1").SendToGroup(testCtx(t), "g", []byte("payload"), ContentText, nil)
	if Classify(err) != ClassSystemic {
		t.Fatalf("err = %v", err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{"op=sendToGroup", "status=401", "class=systemic"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	token := strings.TrimPrefix(f.only(t).Header.Get("Authorization"), "Bearer ")
	for _, secret := range []string{testKey, token, "Bearer"} {
		if strings.Contains(out, secret) || strings.Contains(err.Error(), secret) {
			t.Errorf("log or error contains a secret: %q / %q", out, err)
		}
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

// TestConcurrentSends shares one client between goroutines (run with -race):
// every request must carry a valid token for its own URL.
func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	f := newFakeService(t, status(http.StatusAccepted))
	c := newTestClient(t, f, WithMaxConnsPerHost(4))
	const workers, perWorker, groups = 8, 25, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			h, err := c.Hub("hub1")
			if err != nil {
				errs <- err
				return
			}
			for i := range perWorker {
				if err := h.SendToGroup(testCtx(t), fmt.Sprintf("g%d", (w+i)%groups), []byte("x"), ContentText, nil); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	reqs := f.requests()
	if len(reqs) != workers*perWorker {
		t.Fatalf("%d requests, want %d", len(reqs), workers*perWorker)
	}
	for _, r := range reqs {
		if r.AuthErr != "" {
			t.Fatal(r.AuthErr)
		}
	}
	if n := c.signer.signs.Load(); n < groups || n > groups*workers {
		t.Errorf("%d signatures for %d distinct URLs", n, groups)
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{{"abc", 5, "abc"}, {"abcdef", 3, "abc…"}, {"aéb", 2, "a…"}} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
