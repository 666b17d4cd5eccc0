package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	bridgeapp "github.com/wps-bridge/bridge/internal/app"
)

// The README's tour: in the dev environment, what `bridge publish` sends
// reaches a WebSocket client (the printed client URL, user and group "demo")
// and the inspector's live feed.
func TestPublishReachesClientAndInspectorInDev(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan bridgeapp.DevInfo, 1)
	done := make(chan error, 1)
	go func() {
		done <- bridgeapp.RunDev(ctx, bridgeapp.DevOptions{
			NATSAddr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", StoreDir: t.TempDir(),
		}, func(info bridgeapp.DevInfo) { ready <- info })
	}()
	var info bridgeapp.DevInfo
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("dev stopped before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev not ready within 60s")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunDev: %v", err)
		}
	}()

	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	// The inspector page's feed.
	req, err := http.NewRequestWithContext(wctx, http.MethodGet, info.EmulatorURL+"/admin/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	feedResp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer feedResp.Body.Close()
	// A plain WebSocket client (no subprotocol) gets the payload as-is.
	ws, _, err := websocket.Dial(wctx, info.ClientURL, nil)
	if err != nil {
		t.Fatalf("dial client URL: %v", err)
	}
	defer ws.CloseNow()

	const text = "hello from bridge publish"
	code, _, stderr := runCLI(t, "publish", "-c", filepath.Join("..", "..", "bridge.yaml"), "--url", info.NATSURL,
		"--subject", "wps.demo", `{"actionName":"sendToGroup","group":"demo","dataType":"text","data":"`+text+`"}`)
	if code != 0 {
		t.Fatalf("publish: exit %d: %s", code, stderr)
	}
	typ, data, err := ws.Read(wctx)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if typ != websocket.MessageText || string(data) != text {
		t.Errorf("client got %v %q, want the text frame %q", typ, data, text)
	}

	sc := bufio.NewScanner(feedResp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct{ Kind, Hub, Target, Preview string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("feed event %q: %v", line, err)
		}
		if ev.Kind == "delivery" && ev.Target == "group demo" && strings.Contains(ev.Preview, text) {
			return
		}
	}
	t.Fatalf("the inspector feed ended without the delivery: %v", sc.Err())
}

// The commands the banner prints read the file dev was started with.
func TestDevBannerPassesTheConfigOn(t *testing.T) {
	t.Parallel()
	info := bridgeapp.DevInfo{NATSURL: "nats://127.0.0.1:4222", EmulatorURL: "http://127.0.0.1:8080", ClientURL: "http://127.0.0.1:8080/client"}
	tests := []struct{ configArg, publish, replay string }{
		{"", "go run ./cmd/bridge publish --url nats://127.0.0.1:4222 --subject wps.demo",
			"NATS_URL=nats://127.0.0.1:4222 go run ./cmd/bridge dlq replay --dry-run"},
		{" -c my.yaml", "go run ./cmd/bridge publish -c my.yaml --url nats://127.0.0.1:4222 --subject wps.demo",
			"NATS_URL=nats://127.0.0.1:4222 go run ./cmd/bridge dlq replay -c my.yaml --dry-run"},
	}
	for _, tt := range tests {
		t.Run(tt.configArg, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			if err := printDevBanner(&app{stdout: &out}, info, tt.configArg); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{tt.publish, tt.replay, "ws://127.0.0.1:8080/client"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("banner lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}
