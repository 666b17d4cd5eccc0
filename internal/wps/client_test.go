package wps

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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

// TestRedirectIsReportedNotFollowed: a 3xx would send the token, signed for
// this URL, somewhere else; the client reports it instead of following.
func TestRedirectIsReportedNotFollowed(t *testing.T) {
	t.Parallel()
	f := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	c := newTestClient(t, f)
	err := mustHub(t, c, "hub1").SendToGroup(testCtx(t), "g", []byte("x"), ContentText, nil)
	se, ok := errors.AsType[*StatusError](err)
	if !ok || se.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("err = %v, want a *StatusError with status 307", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests reached the service, want 1 (the redirect was followed)", n)
	}
}

// TestTransportErrorNamesTheCall: a failed connection is a *url.Error naming
// the method and URL (as http.Client.Do reports it), classified transient.
func TestTransportErrorNamesTheCall(t *testing.T) {
	t.Parallel()
	f := newFakeService(t, status(http.StatusAccepted))
	c := newTestClient(t, f)
	f.srv.Close()
	err := mustHub(t, c, "hub1").SendToGroup(testCtx(t), "g", []byte("x"), ContentText, nil)
	ue, ok := errors.AsType[*url.Error](err)
	if !ok {
		t.Fatalf("err = %v (%T), want a *url.Error in the chain", err, err)
	}
	if ue.Op != "Post" || !strings.HasPrefix(ue.URL, f.srv.URL+"/api/hubs/hub1/groups/g/:send?api-version=") {
		t.Errorf("url.Error Op %q URL %q", ue.Op, ue.URL)
	}
	if got := Classify(err); got != ClassTransient {
		t.Errorf("Classify = %v, want transient", got)
	}
}
