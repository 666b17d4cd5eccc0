// Package inspector checks the emulator's inspector page in headless Chromium, driven over the DevTools
// protocol: the page shows live connections and a message sent through REST appears without a reload. The test
// skips, with a message, when Chromium is not installed (Debian: apt-get install -y chromium).
package inspector

import (
	"github.com/wps-bridge/bridge/tests/testkit"

	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/emulator"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const deadline = 60 * time.Second

func findChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (Debian: apt-get install -y chromium); skipping the inspector test")
	return ""
}

// launchChromium starts headless Chromium and returns its DevTools HTTP address (host:port).
func launchChromium(t *testing.T, bin string) string {
	t.Helper()
	profile := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--window-size=1280,900", "--user-data-dir="+profile, "--remote-debugging-port=0", "about:blank")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// Chromium writes the port it picked to DevToolsActivePort once DevTools listens; there is no other signal.
	portFile := filepath.Join(profile, "DevToolsActivePort")
	stop := time.Now().Add(deadline)
	for {
		b, err := os.ReadFile(portFile)
		if err == nil {
			if port, _, ok := strings.Cut(string(b), "\n"); ok && port != "" {
				return "127.0.0.1:" + port
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("chromium exited before DevTools came up: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(stop) {
			t.Fatalf("no DevToolsActivePort after %v\n%s", deadline, stderr.String())
		}
	}
}

// cdp is a minimal DevTools protocol client for one page target.
type cdp struct {
	t  *testing.T
	ws *websocket.Conn
	id int
}

func openPage(t *testing.T, devtools string) *cdp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+devtools+"/json/new?about:blank", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("create page target: %v", err)
	}
	defer resp.Body.Close()
	var target struct {
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&target); err != nil || target.WebSocketDebuggerURL == "" {
		t.Fatalf("page target: %v %+v", err, target)
	}
	ws, wsResp, err := websocket.Dial(ctx, target.WebSocketDebuggerURL, nil)
	if err != nil {
		t.Fatalf("dial devtools: %v", err)
	}
	if wsResp.Body != nil {
		wsResp.Body.Close()
	}
	ws.SetReadLimit(64 << 20) // screenshots
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &cdp{t: t, ws: ws}
}

// call sends one command and returns its result, skipping events.
func (c *cdp) call(method string, params any) json.RawMessage {
	c.t.Helper()
	c.id++
	msg, err := json.Marshal(map[string]any{"id": c.id, "method": method, "params": params})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			c.t.Fatalf("%s: %v", method, err)
		}
		var reply struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &reply); err != nil {
			c.t.Fatalf("%s: bad reply %q: %v", method, b, err)
		}
		if reply.ID != c.id {
			continue
		}
		if reply.Error != nil {
			c.t.Fatalf("%s: %s", method, reply.Error.Message)
		}
		return reply.Result
	}
}

// eval evaluates a JavaScript expression in the page and returns its JSON value.
func (c *cdp) eval(expr string) json.RawMessage {
	c.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails any `json:"exceptionDetails"`
	}
	raw := c.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err := json.Unmarshal(raw, &r); err != nil {
		c.t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		c.t.Fatalf("evaluate %s: %v", expr, r.ExceptionDetails)
	}
	return r.Result.Value
}

// waitTrue polls a boolean expression until it is true.
func (c *cdp) waitTrue(what, expr string) {
	c.t.Helper()
	stop := time.Now().Add(deadline)
	for string(c.eval(expr)) != "true" {
		if time.Now().After(stop) {
			c.t.Fatalf("timed out waiting until %s; page text:\n%s", what, c.eval("document.body.innerText"))
		}
		time.Sleep(100 * time.Millisecond) // the DOM offers no signal over CDP short of a mutation observer
	}
}

func sign(t *testing.T, aud string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"aud": aud, "exp": time.Now().Add(time.Hour).Unix(), "sub": "inspector-user", "webpubsub.group": []string{"room"},
	}).SignedString([]byte(emulator.DevAccessKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInspectorShowsLiveMessages(t *testing.T) {
	bin := findChromium(t)
	_, base := testkit.StartEmulator(t)
	devtools := launchChromium(t, bin)
	page := openPage(t, devtools)

	// A live client the page should list.
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	clientURL := "ws" + strings.TrimPrefix(base, "http") + "/client/hubs/demo?access_token=" + sign(t, base+"/client/hubs/demo")
	ws, resp, err := websocket.Dial(ctx, clientURL, &websocket.DialOptions{Subprotocols: []string{"json.webpubsub.azure.v1"}})
	if err != nil {
		t.Fatalf("client dial: %v", err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	defer ws.CloseNow()
	var connected struct{ ConnectionID string }
	if _, b, err := ws.Read(ctx); err != nil || json.Unmarshal(b, &connected) != nil || connected.ConnectionID == "" {
		t.Fatalf("connected message: %v %s", err, b)
	}

	page.call("Page.enable", nil)
	page.call("Page.navigate", map[string]any{"url": base + "/"})
	page.waitTrue("the event stream is live", `document.readyState === "complete" && document.getElementById("live").textContent === "live"`)
	page.waitTrue("the connection is listed", `document.getElementById("hubs").innerText.includes(`+strconv.Quote(connected.ConnectionID)+`)`)

	marker := fmt.Sprintf("hello from the inspector test %d", time.Now().UnixNano())
	sendURL := base + "/api/hubs/demo/groups/room/:send?api-version=2024-12-01"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sendURL, strings.NewReader(marker))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", "Bearer "+sign(t, sendURL))
	sendResp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("REST send: %v", err)
	}
	_, _ = io.Copy(io.Discard, sendResp.Body)
	sendResp.Body.Close()
	if sendResp.StatusCode != http.StatusAccepted {
		t.Fatalf("REST send: %d", sendResp.StatusCode)
	}
	page.waitTrue("the message appears in the feed", `document.getElementById("feed").innerText.includes(`+strconv.Quote(marker)+`)`)
	page.waitTrue("the feed names the target group", `document.getElementById("feed").innerText.includes("group room")`)
	page.waitTrue("the counters update", `document.getElementById("s-sends").textContent === "1"`)

	var shot struct{ Data string }
	if err := json.Unmarshal(page.call("Page.captureScreenshot", map[string]any{"format": "png"}), &shot); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
	}
	path := os.Getenv("INSPECTOR_SCREENSHOT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "inspector.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot saved to %s", path)
	if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("client close: %v", err)
	}
}
