package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testTimeout = 10 * time.Second

// env is an emulator served by an httptest server.
type env struct {
	t   testing.TB
	e   *Emulator
	srv *httptest.Server
	key string
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(func() {
		_ = e.Close()
		srv.Close()
	})
	key := cfg.AccessKey
	if key == "" {
		key = DevAccessKey
	}
	return &env{t: t, e: e, srv: srv, key: key}
}

// sign returns an HS256 token with the given claims, signed with key.
func sign(t testing.TB, key string, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// restToken signs an access token for the exact URL, as the SDKs do.
func (v *env) restToken(fullURL string) string {
	return sign(v.t, v.key, jwt.RegisteredClaims{
		Audience:  jwt.ClaimStrings{fullURL},
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	})
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// errorCode decodes the JSON ErrorDetail code of r.
func (r response) errorCode(t testing.TB) string {
	t.Helper()
	var d struct{ Code, Message string }
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	if d.Code == "" || d.Message == "" {
		t.Fatalf("error body %q lacks code or message", r.body)
	}
	return d.Code
}

// call performs a signed REST request. pathAndQuery is relative to the server, e.g.
// "/api/hubs/chat/:send?api-version=2024-12-01".
func (v *env) call(method, pathAndQuery, contentType string, body []byte) response {
	v.t.Helper()
	u := v.srv.URL + pathAndQuery
	return v.callWithToken(method, u, contentType, body, v.restToken(u))
}

func (v *env) callWithToken(method, fullURL, contentType string, body []byte, token string) response {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, fullURL, bytes.NewReader(body))
	if err != nil {
		v.t.Fatalf("new request: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := v.srv.Client().Do(req)
	if err != nil {
		v.t.Fatalf("%s %s: %v", method, fullURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// clientToken signs a client token for hub on this server.
func (v *env) clientToken(hub, userID string, roles, groups []string) string {
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Audience:  jwt.ClaimStrings{v.srv.URL + "/client/hubs/" + hub},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
			Subject:   userID,
		},
		Role:   roles,
		Groups: groups,
	}
	return sign(v.t, v.key, claims)
}

// client is a test WebSocket client.
type client struct {
	t  testing.TB
	ws *websocket.Conn
	id string
}

// dial connects to hub with the given subprotocol ("" = simple client) and, for JSON protocols, reads the
// connected message.
func (v *env) dial(hub, subprotocol, userID string, roles, groups []string) *client {
	v.t.Helper()
	u := "ws" + strings.TrimPrefix(v.srv.URL, "http") + "/client/hubs/" + hub + "?access_token=" +
		url.QueryEscape(v.clientToken(hub, userID, roles, groups))
	c := dialURL(v.t, u, subprotocol)
	if c.ws.Subprotocol() != subprotocol {
		v.t.Fatalf("negotiated subprotocol %q, want %q", c.ws.Subprotocol(), subprotocol)
	}
	if subprotocol != "" {
		m := c.readJSON()
		if m["type"] != "system" || m["event"] != "connected" {
			v.t.Fatalf("first message = %v, want connected", m)
		}
		c.id, _ = m["connectionId"].(string)
		if c.id == "" {
			v.t.Fatalf("connected message without connectionId: %v", m)
		}
		_, hasToken := m["reconnectionToken"]
		if hasToken != (subprotocol == subprotocolReliable) {
			v.t.Fatalf("reconnectionToken present=%v for %s", hasToken, subprotocol)
		}
	} else {
		c.id = v.waitConnectionOf(hub, userID)
	}
	return c
}

// waitConnectionOf returns the id of the single connection of user in hub, waiting until it is registered.
func (v *env) waitConnectionOf(hub, userID string) string {
	v.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		if h := v.e.hub(hub, false); h != nil {
			h.mu.RLock()
			for c := range h.users[userID] {
				h.mu.RUnlock()
				return c.id
			}
			h.mu.RUnlock()
		}
		time.Sleep(5 * time.Millisecond) // registration happens right after the upgrade; no signal to wait on
	}
	v.t.Fatalf("no connection of user %q in hub %q", userID, hub)
	return ""
}

func (c *client) read() (websocket.MessageType, []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return typ, b
}

func (c *client) readJSON() map[string]any {
	c.t.Helper()
	typ, b := c.read()
	if typ != websocket.MessageText {
		c.t.Fatalf("got a %v frame, want text", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("frame %q is not JSON: %v", b, err)
	}
	return m
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("marshal: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// expectClose reads until the connection closes and returns the close code and reason.
func (c *client) expectClose() (websocket.StatusCode, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		_, _, err := c.ws.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce.Code, ce.Reason
	}
}

const apiV = "?api-version=2024-12-01"

// dialURL connects to a full client URL with one offered subprotocol ("" = none).
func dialURL(t testing.TB, u, subprotocol string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var opts websocket.DialOptions
	if subprotocol != "" {
		opts.Subprotocols = []string{subprotocol}
	}
	ws, resp, err := websocket.Dial(ctx, u, &opts)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	ws.SetReadLimit(4 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: t, ws: ws}
}
