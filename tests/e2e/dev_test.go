package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/wps-bridge/bridge/internal/app"
)

// TestDevMode runs `bridge dev` in-process: a WebSocket client of the dev
// environment (user "demo", group "demo") receives an envelope published to
// JetStream, and RunDev returns nil once cancelled.
func TestDevMode(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan app.DevInfo, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.RunDev(ctx, app.DevOptions{
			NATSAddr: "127.0.0.1:0", EmulatorAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			StoreDir: t.TempDir(), Logger: testLogger(t),
		}, func(info app.DevInfo) { ready <- info })
	}()

	var info app.DevInfo
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("RunDev returned before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev environment not ready within 60s")
	}
	t.Logf("dev: nats %s, emulator %s, ops %s", info.NATSURL, info.EmulatorURL, info.OpsURL)

	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	ws, resp, err := websocket.Dial(wctx, info.ClientURL, &websocket.DialOptions{Subprotocols: []string{"json.webpubsub.azure.v1"}})
	if err != nil {
		t.Fatalf("dial %s: %v", info.ClientURL, err)
	}
	defer ws.CloseNow()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "json.webpubsub.azure.v1" {
		t.Errorf("subprotocol %q, want json.webpubsub.azure.v1", got)
	}
	var connected struct{ Type, Event, UserID string }
	readJSON(t, wctx, ws, &connected)
	if connected.Type != "system" || connected.Event != "connected" || connected.UserID != "demo" {
		t.Fatalf("first frame %+v, want system/connected for user demo", connected)
	}

	nc, js := connectNATS(t, info.NATSURL)
	defer nc.Close()
	jsPublish(t, js, &nats.Msg{Subject: "wps.demo", Data: []byte(`{"actionName":"sendToGroup","group":"demo","dataType":"text","data":"hello"}`)})

	// A REST send reaches JSON-subprotocol clients as a message from the server.
	var msg struct{ Type, From, DataType, Data string }
	readJSON(t, wctx, ws, &msg)
	if msg.Type != "message" || msg.From != "server" || msg.DataType != "text" || msg.Data != "hello" {
		t.Fatalf("received %+v, want the text \"hello\" from the server", msg)
	}
	_ = ws.Close(websocket.StatusNormalClosure, "done")
	nc.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunDev after cancel: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("RunDev did not return within 60s of cancel")
	}
}

// readJSON reads one WebSocket text frame and decodes it into v.
func readJSON(t *testing.T, ctx context.Context, ws *websocket.Conn, v any) {
	t.Helper()
	typ, data, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("frame type %v, want text: %q", typ, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
}
