package emulator

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

// TestSimpleClientReceivesRawFrames checks the simple-client rendering of each REST content type.
func TestSimpleClientReceivesRawFrames(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	c := v.dial("chat", "", "simple", nil, []string{"g"})
	tests := []struct {
		contentType, body string
		wantType          websocket.MessageType
	}{
		{"application/json", `"Hello"`, websocket.MessageText},
		{"text/plain", "plain text", websocket.MessageText},
		{"application/octet-stream", "\x00\xffbin", websocket.MessageBinary},
	}
	for _, tc := range tests {
		if r := v.call("POST", "/api/hubs/chat/groups/g/:send"+apiV, tc.contentType, []byte(tc.body)); r.status != 202 {
			t.Fatalf("send: %d %s", r.status, r.body)
		}
		typ, b := c.read()
		if typ != tc.wantType || string(b) != tc.body {
			t.Fatalf("%s: got %v %q, want %v %q", tc.contentType, typ, b, tc.wantType, tc.body)
		}
	}
}

// TestJSONClientMessages checks server and group messages of each dataType on both JSON subprotocols, and
// that the reliable one numbers messages 1, 2, 3 while the plain one does not.
func TestJSONClientMessages(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{subprotocolJSON, subprotocolReliable} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			v := newEnv(t, Config{})
			c := v.dial("chat", proto, "alice", []string{"webpubsub.sendToGroup", "webpubsub.joinLeaveGroup"}, []string{"g"})
			sender := v.dial("chat", subprotocolJSON, "bob", []string{"webpubsub.sendToGroup.g"}, nil)
			rest := []struct {
				path, contentType, body string
				want                    map[string]any
			}{
				{"/api/hubs/chat/:send", "application/json", `{"n": 1}`,
					map[string]any{"from": "server", "dataType": "json", "data": map[string]any{"n": 1.0}}},
				{"/api/hubs/chat/users/alice/:send", "application/json", `"Hello"`,
					map[string]any{"from": "server", "dataType": "json", "data": "Hello"}},
				{"/api/hubs/chat/connections/" + c.id + "/:send", "text/plain", "héllo",
					map[string]any{"from": "server", "dataType": "text", "data": "héllo"}},
				{"/api/hubs/chat/groups/g/:send", "application/octet-stream", "\x01\x02",
					map[string]any{"from": "server", "dataType": "binary", "data": base64.StdEncoding.EncodeToString([]byte{1, 2})}},
			}
			seq := 0.0
			check := func(m map[string]any, want map[string]any) {
				t.Helper()
				if m["type"] != "message" {
					t.Fatalf("type = %v in %v", m["type"], m)
				}
				for k, w := range want {
					if !equalJSON(m[k], w) {
						t.Fatalf("%s = %#v, want %#v (message %v)", k, m[k], w, m)
					}
				}
				id, has := m["sequenceId"]
				if proto == subprotocolReliable {
					seq++
					if id != seq {
						t.Fatalf("sequenceId = %v, want %v", id, seq)
					}
				} else if has {
					t.Fatalf("sequenceId on a non-reliable connection: %v", m)
				}
			}
			for _, r := range rest {
				if resp := v.call("POST", r.path+apiV, r.contentType, []byte(r.body)); resp.status != 202 {
					t.Fatalf("send %s: %d %s", r.path, resp.status, resp.body)
				}
				check(c.readJSON(), r.want)
			}
			if m := sender.readJSON(); m["from"] != "server" {
				t.Fatalf("sender missed the broadcast: %v", m)
			}
			group := []struct {
				dataType string
				data     any
			}{{"json", map[string]any{"k": []any{1.0, "x"}}}, {"text", "hi"}, {"binary", base64.StdEncoding.EncodeToString([]byte("bin"))}}
			for i, g := range group {
				ackID := uint64(i + 1)
				sender.send(map[string]any{"type": "sendToGroup", "group": "g", "ackId": ackID, "dataType": g.dataType, "data": g.data})
				if ack := sender.readJSON(); ack["type"] != "ack" || ack["ackId"] != float64(ackID) || ack["success"] != true {
					t.Fatalf("ack = %v", ack)
				}
				check(c.readJSON(), map[string]any{"from": "group", "group": "g", "fromUserId": "bob", "dataType": g.dataType, "data": g.data})
			}
		})
	}
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !equalJSON(x[k], y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// TestClientGroupActions covers joinGroup/leaveGroup/sendToGroup acks, Forbidden, REST grants, noEcho,
// duplicate ack ids on the reliable protocol and ping.
func TestClientGroupActions(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	member := v.dial("chat", subprotocolReliable, "m", []string{"webpubsub.joinLeaveGroup"}, nil)
	limited := v.dial("chat", subprotocolJSON, "l", []string{"webpubsub.joinLeaveGroup.allowed", "webpubsub.sendToGroups.team.*"}, nil)

	expectAck := func(c *client, id uint64, wantErr string) {
		t.Helper()
		m := c.readJSON()
		if m["type"] != "ack" || m["ackId"] != float64(id) {
			t.Fatalf("want ack %d, got %v", id, m)
		}
		if wantErr == "" {
			if m["success"] != true {
				t.Fatalf("ack %d failed: %v", id, m)
			}
			return
		}
		e, _ := m["error"].(map[string]any)
		if m["success"] != false || e == nil || e["name"] != wantErr {
			t.Fatalf("ack %d = %v, want error %s", id, m, wantErr)
		}
	}

	member.send(map[string]any{"type": "joinGroup", "group": "room", "ackId": 1})
	expectAck(member, 1, "")
	if !v.e.hub("chat", false).groupExists("room") {
		t.Fatal("joinGroup did not join")
	}
	member.send(map[string]any{"type": "joinGroup", "group": "room", "ackId": 1})
	expectAck(member, 1, "Duplicate")

	limited.send(map[string]any{"type": "joinGroup", "group": "room", "ackId": 1})
	expectAck(limited, 1, "Forbidden")
	limited.send(map[string]any{"type": "joinGroup", "group": "allowed", "ackId": 2})
	expectAck(limited, 2, "")
	limited.send(map[string]any{"type": "sendToGroup", "group": "room", "ackId": 3, "dataType": "text", "data": "x"})
	expectAck(limited, 3, "Forbidden")
	limited.send(map[string]any{"type": "sendToGroup", "group": "team.a.b", "ackId": 4, "dataType": "text", "data": "x"})
	expectAck(limited, 4, "Forbidden") // * does not cross '.'
	limited.send(map[string]any{"type": "sendToGroup", "group": "team.a", "ackId": 5, "dataType": "text", "data": "x"})
	expectAck(limited, 5, "")

	// A REST grant lets the limited client send to room; the member receives it.
	if r := v.call("PUT", "/api/hubs/chat/permissions/sendToGroup/connections/"+limited.id+apiV+"&targetName=room", "", nil); r.status != 200 {
		t.Fatalf("grant: %d", r.status)
	}
	limited.send(map[string]any{"type": "sendToGroup", "group": "room", "ackId": 6, "dataType": "text", "data": "granted"})
	expectAck(limited, 6, "")
	if m := member.readJSON(); m["data"] != "granted" || m["group"] != "room" || m["fromUserId"] != "l" {
		t.Fatalf("member got %v", m)
	}

	// noEcho: the sender does not get its own message; without it, it does.
	if r := v.call("PUT", "/api/hubs/chat/permissions/sendToGroup/connections/"+member.id+apiV, "", nil); r.status != 200 {
		t.Fatalf("grant: %d", r.status)
	}
	member.send(map[string]any{"type": "sendToGroup", "group": "room", "ackId": 2, "noEcho": true, "dataType": "text", "data": "quiet"})
	expectAck(member, 2, "")
	member.send(map[string]any{"type": "sendToGroup", "group": "room", "ackId": 3, "dataType": "text", "data": "echo"})
	// The echo and the ack may come in either order; the noEcho message must not come at all.
	for range 2 {
		m := member.readJSON()
		switch {
		case m["type"] == "ack" && m["ackId"] == 3.0 && m["success"] == true:
		case m["type"] == "message" && m["data"] == "echo":
		default:
			t.Fatalf("member got %v, want its echo and ack 3", m)
		}
	}

	member.send(map[string]any{"type": "leaveGroup", "group": "room", "ackId": 4})
	expectAck(member, 4, "")
	if v.e.hub("chat", false).groupExists("room") {
		t.Fatal("leaveGroup did not leave")
	}
	member.send(map[string]any{"type": "ping"})
	if m := member.readJSON(); m["type"] != "pong" {
		t.Fatalf("ping answered %v", m)
	}
	member.send(map[string]any{"type": "event", "event": "hello", "ackId": 5, "dataType": "text", "data": "x"})
	expectAck(member, 5, "")
	member.send(map[string]any{"type": "sendToGroup", "group": "room", "ackId": 6, "dataType": "binary", "data": "%%%"})
	expectAck(member, 6, "BadRequest")
}

func TestCheckPermissionReportsTokenRoles(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	c := v.dial("chat", subprotocolJSON, "u", []string{"webpubsub.joinLeaveGroup.a", "webpubsub.sendToGroup"}, nil)
	base := "/api/hubs/chat/permissions/"
	tests := []struct {
		perm, target string
		want         int
	}{
		{"joinLeaveGroup", "a", 200},
		{"joinLeaveGroup", "b", 404},
		{"joinLeaveGroup", "", 404},
		{"sendToGroup", "", 200},
		{"sendToGroup", "any", 200},
	}
	for _, tc := range tests {
		r := v.call("HEAD", base+tc.perm+"/connections/"+c.id+apiV+"&targetName="+tc.target, "", nil)
		if r.status != tc.want {
			t.Errorf("%s/%q = %d, want %d", tc.perm, tc.target, r.status, tc.want)
		}
	}
	if r := v.call("DELETE", base+"sendToGroup/connections/"+c.id+apiV, "", nil); r.status != 204 {
		t.Fatalf("revoke: %d", r.status)
	}
	if r := v.call("HEAD", base+"sendToGroup/connections/"+c.id+apiV+"&targetName=any", "", nil); r.status != 404 {
		t.Fatalf("after revoke: %d", r.status)
	}
}

func TestRESTCloseSendsReason(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	jc := v.dial("chat", subprotocolJSON, "j", nil, nil)
	sc := v.dial("chat", "", "s", nil, nil)
	if r := v.call("POST", "/api/hubs/chat/connections/"+jc.id+"/:send"+apiV, "text/plain", []byte("before")); r.status != 202 {
		t.Fatalf("send: %d", r.status)
	}
	if r := v.call("DELETE", "/api/hubs/chat/connections/"+jc.id+apiV+"&reason=maintenance", "", nil); r.status != 204 {
		t.Fatalf("close: %d", r.status)
	}
	if m := jc.readJSON(); m["data"] != "before" {
		t.Fatalf("queued message lost: %v", m)
	}
	if m := jc.readJSON(); m["type"] != "system" || m["event"] != "disconnected" || m["message"] != "maintenance" {
		t.Fatalf("got %v, want disconnected system message", m)
	}
	if code, reason := jc.expectClose(); reason != "maintenance" {
		t.Fatalf("close %v %q", code, reason)
	}
	if r := v.call("POST", "/api/hubs/chat/users/s/:closeConnections"+apiV+"&reason=bye", "", nil); r.status != 204 {
		t.Fatalf("close user: %d", r.status)
	}
	if _, reason := sc.expectClose(); reason != "bye" {
		t.Fatalf("simple close reason %q", reason)
	}
}

func TestClientTokenChecks(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	base := "ws" + strings.TrimPrefix(v.srv.URL, "http")
	claims := func(aud string, exp time.Time) tokenClaims {
		return tokenClaims{RegisteredClaims: jwt.RegisteredClaims{Audience: jwt.ClaimStrings{aud}, ExpiresAt: jwt.NewNumericDate(exp)}}
	}
	hour := time.Now().Add(time.Hour)
	tests := []struct {
		name, path, token string
		header            bool
		ok                bool
	}{
		{"valid", "/client/hubs/chat", sign(t, v.key, claims(v.srv.URL+"/client/hubs/chat", hour)), false, true},
		{"valid in header", "/client/hubs/chat", sign(t, v.key, claims(v.srv.URL+"/client/hubs/chat", hour)), true, true},
		{"hub as query", "/client?hub=chat", sign(t, v.key, claims(v.srv.URL+"/client/hubs/chat", hour)), false, true},
		{"wrong hub", "/client/hubs/chat", sign(t, v.key, claims(v.srv.URL+"/client/hubs/other", hour)), false, false},
		{"expired", "/client/hubs/chat", sign(t, v.key, claims(v.srv.URL+"/client/hubs/chat", time.Now().Add(-time.Hour))), false, false},
		{"bad signature", "/client/hubs/chat", sign(t, "x-other-key-x-other-key-x-other-key", claims(v.srv.URL+"/client/hubs/chat", hour)), false, false},
		{"no token", "/client/hubs/chat", "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := base + tc.path
			h := http.Header{}
			switch {
			case tc.header:
				h.Set("Authorization", "Bearer "+tc.token)
			case tc.token != "":
				sep := "?"
				if strings.Contains(u, "?") {
					sep = "&"
				}
				u += sep + "access_token=" + url.QueryEscape(tc.token)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
			if resp != nil && resp.Body != nil {
				resp.Body.Close()
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				_ = ws.Close(websocket.StatusNormalClosure, "")
				return
			}
			if err == nil {
				_ = ws.CloseNow()
				t.Fatal("connection accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("want 401, got %v (%v)", resp, err)
			}
		})
	}
}

func TestReliableReconnectIsRefusedWith1008(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	u := "ws" + strings.TrimPrefix(v.srv.URL, "http") + "/client/hubs/chat?access_token=" + v.clientToken("chat", "u", nil, nil) +
		"&awps_connection_id=abc&awps_reconnection_token=def"
	c := dialURL(t, u, subprotocolReliable)
	if code, _ := c.expectClose(); code != websocket.StatusPolicyViolation {
		t.Fatalf("close code %v, want 1008", code)
	}
}

// TestSlowClientIsDisconnected fills a non-reading client's queue and checks that it is closed with 1013 while a
// reading client in the same group receives everything and REST sends never block.
func TestSlowClientIsDisconnected(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{QueueLimit: 4})
	slow := v.dial("chat", "", "slow", nil, []string{"g"})
	fast := v.dial("chat", "", "fast", nil, []string{"g"})
	payload := strings.Repeat("x", 256<<10)

	received := make(chan int, 1)
	const sends = 64
	go func() {
		n := 0
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		for n < sends {
			if _, _, err := fast.ws.Read(ctx); err != nil {
				break
			}
			n++
		}
		received <- n
	}()
	for i := 0; i < sends; i++ {
		if r := v.call("POST", "/api/hubs/chat/groups/g/:send"+apiV, "text/plain", []byte(payload)); r.status != 202 {
			t.Fatalf("send %d: %d", i, r.status)
		}
	}
	if n := <-received; n != sends {
		t.Fatalf("fast client received %d of %d", n, sends)
	}
	if code, reason := slow.expectClose(); code != websocket.StatusTryAgainLater || reason != "send queue full" {
		t.Fatalf("slow client closed with %v %q", code, reason)
	}
	if st := v.e.Stats(); st.SlowClientsDisconnected != 1 || st.Connections != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestReliableRecovery drops a reliable client's socket without a close frame, sends while it is away, and
// reconnects with the connection id and reconnection token: the same connection continues and every message
// not acknowledged arrives with its original sequenceId.
func TestReliableRecovery(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	token := v.clientToken("chat", "rel", nil, []string{"g"})
	base := "ws" + strings.TrimPrefix(v.srv.URL, "http") + "/client/hubs/chat?access_token=" + token
	c := dialURL(t, base, subprotocolReliable)
	connected := c.readJSON()
	id, _ := connected["connectionId"].(string)
	reconnectionToken, _ := connected["reconnectionToken"].(string)
	if id == "" || reconnectionToken == "" {
		t.Fatalf("connected = %v", connected)
	}
	send := func(text string) {
		t.Helper()
		if r := v.call("POST", "/api/hubs/chat/groups/g/:send"+apiV, "text/plain", []byte(text)); r.status != 202 {
			t.Fatalf("send: %d", r.status)
		}
	}
	expect := func(c *client, seq float64, text string) {
		t.Helper()
		if m := c.readJSON(); m["sequenceId"] != seq || m["data"] != text {
			t.Fatalf("got %v, want sequenceId %v data %q", m, seq, text)
		}
	}
	send("one")
	send("two")
	expect(c, 1, "one")
	expect(c, 2, "two")
	c.send(map[string]any{"type": "sequenceAck", "sequenceId": 1})
	c.send(map[string]any{"type": "joinGroup", "group": "x", "ackId": 7}) // Forbidden, but remembered
	if m := c.readJSON(); m["ackId"] != 7.0 {
		t.Fatalf("ack = %v", m)
	}
	_ = c.ws.CloseNow() // drop without a close frame

	// The connection waits for recovery: it still exists and still gets group messages.
	waitFor(t, "the socket drop is noticed", func() bool {
		c := v.e.hub("chat", false).conn(id)
		if c == nil {
			return false
		}
		c.sockMu.Lock()
		defer c.sockMu.Unlock()
		return c.recovering
	})
	if r := v.call("HEAD", "/api/hubs/chat/connections/"+id+apiV, "", nil); r.status != 200 {
		t.Fatalf("connection exists during recovery = %d", r.status)
	}
	send("three")

	bad := dialURL(t, base+"&awps_connection_id="+id+"&awps_reconnection_token=wrong", subprotocolReliable)
	if code, _ := bad.expectClose(); code != websocket.StatusPolicyViolation {
		t.Fatalf("wrong token: close %v, want 1008", code)
	}
	again := dialURL(t, base+"&awps_connection_id="+id+"&awps_reconnection_token="+url.QueryEscape(reconnectionToken), subprotocolReliable)
	m := again.readJSON()
	if m["event"] != "connected" || m["connectionId"] != id || m["reconnectionToken"] == reconnectionToken {
		t.Fatalf("recovered connected = %v", m)
	}
	expect(again, 2, "two") // sent before the drop, never acknowledged
	expect(again, 3, "three")
	again.send(map[string]any{"type": "joinGroup", "group": "x", "ackId": 7})
	if m := again.readJSON(); m["type"] != "ack" || m["error"].(map[string]any)["name"] != "Duplicate" {
		t.Fatalf("repeated ackId after recovery = %v", m)
	}
	send("four")
	expect(again, 4, "four")

	// The old token is spent; a client close frame ends the connection for good.
	if err := again.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitFor(t, "the connection ends", func() bool { return v.e.hub("chat", false).conn(id) == nil })
}

func TestReliableRecoveryWindowExpires(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	v.e.recoveryWindow = 50 * time.Millisecond
	c := v.dial("chat", subprotocolReliable, "u", nil, nil)
	_ = c.ws.CloseNow()
	waitFor(t, "the suspended connection expires", func() bool { return v.e.hub("chat", false).conn(c.id) == nil })
}

// waitFor polls cond until it holds; state changes made by other goroutines have no signal to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTokenClaimsAsStrings accepts third-party tokens whose role and webpubsub.group claims are plain strings.
func TestTokenClaimsAsStrings(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	tok := sign(t, v.key, jwt.MapClaims{
		"aud": v.srv.URL + "/client/hubs/chat", "exp": time.Now().Add(time.Hour).Unix(), "sub": "s",
		"role": "webpubsub.joinLeaveGroup", "webpubsub.group": "lobby",
	})
	c := dialURL(t, "ws"+strings.TrimPrefix(v.srv.URL, "http")+"/client/hubs/chat?access_token="+tok, subprotocolJSON)
	if m := c.readJSON(); m["event"] != "connected" || m["userId"] != "s" {
		t.Fatalf("connected = %v", m)
	}
	if !v.e.hub("chat", false).groupExists("lobby") {
		t.Fatal("string webpubsub.group claim not joined")
	}
	c.send(map[string]any{"type": "joinGroup", "group": "other", "ackId": 1})
	if m := c.readJSON(); m["success"] != true {
		t.Fatalf("string role claim not honoured: %v", m)
	}
}

// TestRESTCloseEndsSuspendedConnection closes, through REST, a reliable connection whose socket dropped: with no
// writer to deliver the close, the connection must end at once rather than linger for the recovery window.
func TestRESTCloseEndsSuspendedConnection(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	c := v.dial("chat", subprotocolReliable, "u", nil, nil)
	conn := v.e.hub("chat", false).conn(c.id)
	_ = c.ws.CloseNow()
	waitFor(t, "the socket drop is noticed", func() bool {
		conn.sockMu.Lock()
		defer conn.sockMu.Unlock()
		return conn.recovering
	})
	if r := v.call("DELETE", "/api/hubs/chat/connections/"+c.id+apiV, "", nil); r.status != 204 {
		t.Fatalf("close: %d %s", r.status, r.body)
	}
	waitFor(t, "the suspended connection ends", conn.killed) // the recovery window is 30 s, the wait 10 s
}

// TestSubprotocolMatchesCaseInsensitively checks that a subprotocol echoed in another spelling is served as
// that protocol, not as a simple client.
func TestSubprotocolMatchesCaseInsensitively(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	u := "ws" + strings.TrimPrefix(v.srv.URL, "http") + "/client/hubs/chat?access_token=" + v.clientToken("chat", "u", nil, nil)
	c := dialURL(t, u, "JSON.WebPubSub.Azure.v1")
	if m := c.readJSON(); m["type"] != "system" || m["event"] != "connected" {
		t.Fatalf("first message = %v, want connected", m)
	}
}
