package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/app"
	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/gctune"
	"github.com/wps-bridge/bridge/internal/source/sourcetest"
	"github.com/wps-bridge/bridge/tests/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// A broker that is down at start delays readiness; it does not stop the
// process, and the operations endpoint says why.
func TestNotReadyWhileTheBrokerIsDown(t *testing.T) {
	t.Setenv("GOGC", "") // a GOGC set by whoever runs the tests would turn the GC tuning off
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "nats://" + dead.Addr().String()
	dead.Close() // nothing listens there now

	cfg, err := config.Parse([]byte(`webpubsub:
  connectionString: ${CS:-Endpoint=http://127.0.0.1:1;AccessKey=test-key-not-secret;Version=1.0;}
  hub: chat
  allowInsecureHTTP: true
sources:
  - {name: cmds, type: nats, url: "`+deadURL+`", subjects: ["wps.>"]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	b, err := app.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, ln) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, base+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, `source "cmds": connect`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %q, want 503 naming the source", code, body)
		}
		time.Sleep(20 * time.Millisecond) // polling an HTTP endpoint: no signal to wait on
	}
	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "wpsbridge_ready 0") {
		t.Errorf("/metrics = %d, want wpsbridge_ready 0 in:\n%.400s", code, body)
	}
	if strings.Contains(b.Ready().Error(), "test-key-not-secret") {
		t.Error("readiness leaks the access key")
	}
	// While Run runs, the collector keeps runtime.gcHeapFloorMiB of room:
	// this test's heap is far below 32 MiB, so GOGC goes to its cap.
	testkit.Eventually(t, 10*time.Second, "GOGC raised while the bridge runs", func() (bool, string) {
		runtime.GC() // the tuner adjusts after each collection
		got := gctune.GOGC()
		return got == 400, fmt.Sprintf("GOGC %d, want 400", got)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if got := gctune.GOGC(); got != gogcAtStart {
		t.Errorf("GOGC after Run = %d, want %d as before", got, gogcAtStart)
	}
}

var gogcAtStart = gctune.GOGC()

// A dead letter that is down at start does not block New or the operations
// endpoint: the bridge reports it as not ready and keeps trying.
func TestNotReadyWhileTheDeadLetterIsDown(t *testing.T) {
	ns := sourcetest.NATSServer(t, nil)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "nats://" + dead.Addr().String()
	dead.Close()
	cfg, err := config.Parse([]byte(`webpubsub:
  connectionString: ${CS:-Endpoint=http://127.0.0.1:1;AccessKey=test-key-not-secret;Version=1.0;}
  hub: chat
  allowInsecureHTTP: true
sources:
  - {name: cmds, type: nats, url: "`+ns.ClientURL()+`", subjects: ["wps.>"]}
deadLetter: {type: nats, url: "`+deadURL+`", subject: dlq.wps}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	b, err := app.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := b.Ready()
		if err != nil && strings.Contains(err.Error(), "deadLetter") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %v, want the dead letter named", err)
		}
		time.Sleep(20 * time.Millisecond) // readiness has no change signal
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
}
