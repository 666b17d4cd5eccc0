package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestRESTOperations runs every operation of webpubsub-api.md §1 against a hub with two live connections and
// checks the exact success code and the state change each one makes.
func TestRESTOperations(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	alice := v.dial("chat", subprotocolJSON, "alice", nil, []string{"room"})
	bob := v.dial("chat", subprotocolJSON, "bob", nil, nil)
	const hub = "/api/hubs/chat"

	steps := []struct {
		name, method, path, contentType, body string
		want                                  int
	}{
		{"health", http.MethodHead, "/api/health" + apiV, "", "", 200},
		{"send to all", "POST", hub + "/:send" + apiV, "application/json", `{"a":1}`, 202},
		{"send to group", "POST", hub + "/groups/room/:send" + apiV, "text/plain", "hi", 202},
		{"send to user", "POST", hub + "/users/bob/:send" + apiV, "application/octet-stream", "\x00\x01", 202},
		{"send to connection", "POST", hub + "/connections/" + alice.id + "/:send" + apiV + "&messageTtlSeconds=300", "text/plain", "x", 202},
		{"connection exists", http.MethodHead, hub + "/connections/" + alice.id + apiV, "", "", 200},
		{"connection missing", http.MethodHead, hub + "/connections/nope" + apiV, "", "", 404},
		{"group exists", http.MethodHead, hub + "/groups/room" + apiV, "", "", 200},
		{"group missing", http.MethodHead, hub + "/groups/empty" + apiV, "", "", 404},
		{"user exists", http.MethodHead, hub + "/users/alice" + apiV, "", "", 200},
		{"user missing", http.MethodHead, hub + "/users/carol" + apiV, "", "", 404},
		{"add connection to group", "PUT", hub + "/groups/g2/connections/" + bob.id + apiV, "", "", 200},
		{"g2 exists", http.MethodHead, hub + "/groups/g2" + apiV, "", "", 200},
		{"add unknown connection", "PUT", hub + "/groups/g2/connections/nope" + apiV, "", "", 404},
		{"remove connection from group", "DELETE", hub + "/groups/g2/connections/" + bob.id + apiV, "", "", 204},
		{"g2 gone", http.MethodHead, hub + "/groups/g2" + apiV, "", "", 404},
		{"add user to group", "PUT", hub + "/users/bob/groups/g3" + apiV, "", "", 200},
		{"g3 exists", http.MethodHead, hub + "/groups/g3" + apiV, "", "", 200},
		{"remove user from group", "DELETE", hub + "/users/bob/groups/g3" + apiV, "", "", 204},
		{"g3 gone", http.MethodHead, hub + "/groups/g3" + apiV, "", "", 404},
		{"add user to group again", "PUT", hub + "/users/bob/groups/g4" + apiV, "", "", 200},
		{"remove user from all groups", "DELETE", hub + "/users/bob/groups" + apiV, "", "", 204},
		{"g4 gone", http.MethodHead, hub + "/groups/g4" + apiV, "", "", 404},
		{"add connections to groups", "POST", hub + "/:addToGroups" + apiV, "application/json",
			`{"groups":["g5","g6"],"filter":"userId eq 'bob'"}`, 200},
		{"g6 exists", http.MethodHead, hub + "/groups/g6" + apiV, "", "", 200},
		{"remove connections from groups", "POST", hub + "/:removeFromGroups" + apiV, "application/json", `{"groups":["g6"]}`, 200},
		{"g6 gone", http.MethodHead, hub + "/groups/g6" + apiV, "", "", 404},
		{"remove connection from all groups", "DELETE", hub + "/connections/" + bob.id + "/groups" + apiV, "", "", 204},
		{"g5 gone", http.MethodHead, hub + "/groups/g5" + apiV, "", "", 404},
		{"list connections in group", "GET", hub + "/groups/room/connections" + apiV, "", "", 200},
		{"check permission not granted", http.MethodHead, hub + "/permissions/sendToGroup/connections/" + bob.id + apiV + "&targetName=room", "", "", 404},
		{"grant permission", "PUT", hub + "/permissions/sendToGroup/connections/" + bob.id + apiV + "&targetName=room", "", "", 200},
		{"check permission granted", http.MethodHead, hub + "/permissions/sendToGroup/connections/" + bob.id + apiV + "&targetName=room", "", "", 200},
		{"revoke permission", "DELETE", hub + "/permissions/sendToGroup/connections/" + bob.id + apiV + "&targetName=room", "", "", 204},
		{"check permission revoked", http.MethodHead, hub + "/permissions/sendToGroup/connections/" + bob.id + apiV + "&targetName=room", "", "", 404},
		{"generate token", "POST", hub + "/:generateToken" + apiV + "&userId=u1&role=webpubsub.joinLeaveGroup&group=g&minutesToExpire=5", "", "", 200},
		{"close connection", "DELETE", hub + "/connections/" + bob.id + apiV + "&reason=bye", "", "", 204},
		{"closed connection is gone at once", http.MethodHead, hub + "/connections/" + bob.id + apiV, "", "", 404},
		{"close user connections", "POST", hub + "/users/nobody/:closeConnections" + apiV, "", "", 204},
		{"close group connections", "POST", hub + "/groups/room/:closeConnections" + apiV + "&excluded=fake&reason=r", "", "", 204},
		{"alice is gone", http.MethodHead, hub + "/users/alice" + apiV, "", "", 404},
		{"close all connections", "POST", hub + "/:closeConnections" + apiV, "", "", 204},
	}
	for _, s := range steps {
		r := v.call(s.method, s.path, s.contentType, []byte(s.body))
		if r.status != s.want {
			t.Fatalf("%s: %s %s = %d %s, want %d", s.name, s.method, s.path, r.status, r.body, s.want)
		}
		if got := r.header.Get("api-supported-versions"); !strings.Contains(got, "2024-12-01") {
			t.Fatalf("%s: api-supported-versions = %q", s.name, got)
		}
		if s.method == http.MethodHead && len(r.body) != 0 {
			t.Fatalf("%s: HEAD answered a body %q", s.name, r.body)
		}
	}
	st := v.e.Stats()
	if st.SendsAccepted != 4 || st.Requests["SendToAll"] != 1 || st.Requests["GroupExists"] != 10 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestRESTPathEscaping(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	c := v.dial("chat", subprotocolJSON, "a/b c", nil, nil)
	// Group and user names are percent-encoded with no safe characters, as both SDKs do.
	group := "a/b c"
	r := v.call("PUT", "/api/hubs/chat/groups/"+url.PathEscape("a/b c")+"/connections/"+c.id+apiV, "", nil)
	if r.status != 200 {
		t.Fatalf("add = %d %s", r.status, r.body)
	}
	if r := v.call("HEAD", "/api/hubs/chat/groups/a%2Fb%20c"+apiV, "", nil); r.status != 200 {
		t.Fatalf("group exists = %d", r.status)
	}
	if r := v.call("HEAD", "/api/hubs/chat/users/a%2Fb%20c"+apiV, "", nil); r.status != 200 {
		t.Fatalf("user exists = %d", r.status)
	}
	if !v.e.hub("chat", false).groupExists(group) {
		t.Fatalf("group %q not in state", group)
	}
}

func TestRESTValidation(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	c := v.dial("chat", subprotocolJSON, "u", nil, nil)
	long := strings.Repeat("g", 1025)
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		code                                  string
	}{
		{"missing api-version", "POST", "/api/hubs/chat/:send", "text/plain", "x", 400, "MissingApiVersionParameter"},
		{"unsupported api-version", "POST", "/api/hubs/chat/:send?api-version=2020-01-01", "text/plain", "x", 400, "UnsupportedApiVersion"},
		{"older api-version ok", "POST", "/api/hubs/chat/:send?api-version=2021-10-01", "text/plain", "x", 202, ""},
		{"hub starts with a digit", "POST", "/api/hubs/1chat/:send" + apiV, "text/plain", "x", 400, "InvalidHubName"},
		{"hub with a dash", "POST", "/api/hubs/ch-at/:send" + apiV, "text/plain", "x", 400, "InvalidHubName"},
		{"hub with allowed punctuation", "POST", "/api/hubs/c_h%60a,t.%5B1%5D/:send" + apiV, "text/plain", "x", 202, ""},
		{"whitespace group", "POST", "/api/hubs/chat/groups/%20%20/:send" + apiV, "text/plain", "x", 400, "InvalidGroupName"},
		{"group with line break", "PUT", "/api/hubs/chat/groups/a%0Ab/connections/" + c.id + apiV, "", "", 400, "InvalidGroupName"},
		{"group too long", "POST", "/api/hubs/chat/groups/" + long + "/:send" + apiV, "text/plain", "x", 400, "InvalidGroupName"},
		{"ttl too large", "POST", "/api/hubs/chat/:send" + apiV + "&messageTtlSeconds=301", "text/plain", "x", 400, "InvalidParameter"},
		{"ttl negative", "POST", "/api/hubs/chat/:send" + apiV + "&messageTtlSeconds=-1", "text/plain", "x", 400, "InvalidParameter"},
		{"unsupported content type", "POST", "/api/hubs/chat/:send" + apiV, "application/xml", "<a/>", 400, "InvalidContentType"},
		{"missing content type", "POST", "/api/hubs/chat/:send" + apiV, "", "x", 400, "InvalidContentType"},
		{"content type with charset ok", "POST", "/api/hubs/chat/:send" + apiV, "text/plain; charset=utf-8", "x", 202, ""},
		{"invalid json body", "POST", "/api/hubs/chat/:send" + apiV, "application/json", "{", 400, "InvalidBody"},
		{"bad filter", "POST", "/api/hubs/chat/:send" + apiV + "&filter=" + url.QueryEscape("userId eq"), "text/plain", "x", 400, "InvalidFilter"},
		{"maxpagesize 0", "GET", "/api/hubs/chat/groups/g/connections" + apiV + "&maxpagesize=0", "", "", 400, "InvalidParameter"},
		{"maxpagesize 201", "GET", "/api/hubs/chat/groups/g/connections" + apiV + "&maxpagesize=201", "", "", 400, "InvalidParameter"},
		{"top 0", "GET", "/api/hubs/chat/groups/g/connections" + apiV + "&top=0", "", "", 400, "InvalidParameter"},
		{"bad continuation token", "GET", "/api/hubs/chat/groups/g/connections" + apiV + "&continuationToken=%21", "", "", 400, "InvalidParameter"},
		{"unknown permission", "PUT", "/api/hubs/chat/permissions/admin/connections/" + c.id + apiV, "", "", 400, "InvalidPermission"},
		{"minutesToExpire 0", "POST", "/api/hubs/chat/:generateToken" + apiV + "&minutesToExpire=0", "", "", 400, "InvalidParameter"},
		{"clientType unknown", "POST", "/api/hubs/chat/:generateToken" + apiV + "&clientType=SocketIO", "", "", 400, "InvalidParameter"},
		{"clientType mqtt any case", "POST", "/api/hubs/chat/:generateToken" + apiV + "&clientType=mqtt", "", "", 200, ""},
		{"addToGroups unknown field", "POST", "/api/hubs/chat/:addToGroups" + apiV, "application/json", `{"groups":["a"],"x":1}`, 400, "InvalidBody"},
		{"addToGroups bad filter", "POST", "/api/hubs/chat/:addToGroups" + apiV, "application/json", `{"groups":["a"],"filter":"x"}`, 400, "InvalidFilter"},
		{"addToGroups no groups", "POST", "/api/hubs/chat/:addToGroups" + apiV, "application/json", `{"groups":[]}`, 400, "InvalidBody"},
		{"body too large", "POST", "/api/hubs/chat/:send" + apiV, "text/plain", strings.Repeat("x", maxBody+1), 413, "PayloadTooLarge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := v.call(tc.method, tc.path, tc.contentType, []byte(tc.body))
			if r.status != tc.status {
				t.Fatalf("status = %d %s, want %d", r.status, r.body, tc.status)
			}
			if tc.code == "" {
				return
			}
			if got := r.header.Get("x-ms-error-code"); got != tc.code {
				t.Fatalf("x-ms-error-code = %q, want %q", got, tc.code)
			}
			if got := r.errorCode(t); got != tc.code {
				t.Fatalf("body code = %q, want %q", got, tc.code)
			}
		})
	}
}

func TestRESTAuthentication(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{AccessKey: "a-test-access-key-that-is-long-enough-000"})
	u := v.srv.URL + "/api/hubs/chat/:send" + apiV
	valid := func(aud string, exp time.Time) jwt.RegisteredClaims {
		return jwt.RegisteredClaims{Audience: jwt.ClaimStrings{aud}, ExpiresAt: jwt.NewNumericDate(exp)}
	}
	hour := time.Now().Add(time.Hour)
	host := strings.TrimPrefix(v.srv.URL, "http://")
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"exact url", sign(t, v.key, valid(u, hour)), 202},
		{"no query, other scheme, trailing slash, upper-case host",
			sign(t, v.key, valid("https://"+strings.ToUpper(host)+"/api/hubs/chat/:send/", hour)), 202},
		{"expired within skew", sign(t, v.key, valid(u, time.Now().Add(-time.Minute))), 202},
		{"no token", "", 401},
		{"garbage", "not.a.jwt", 401},
		{"bad signature", sign(t, "another-key-another-key-another-key", valid(u, hour)), 401},
		{"expired", sign(t, v.key, valid(u, time.Now().Add(-10*time.Minute))), 401},
		{"no exp", sign(t, v.key, jwt.RegisteredClaims{Audience: jwt.ClaimStrings{u}}), 401},
		{"wrong path", sign(t, v.key, valid(v.srv.URL+"/api/hubs/other/:send", hour)), 401},
		{"wrong host", sign(t, v.key, valid("http://example.com/api/hubs/chat/:send", hour)), 401},
		{"HS512", func() string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodHS512, valid(u, hour)).SignedString([]byte(v.key))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := v.callWithToken("POST", u, "text/plain", []byte("x"), tc.token)
			if r.status != tc.want {
				t.Fatalf("status = %d %s, want %d", r.status, r.body, tc.want)
			}
			if tc.want == 401 {
				if r.header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
				if strings.Contains(string(r.body), v.key) || (tc.token != "" && strings.Contains(string(r.body), tc.token)) {
					t.Fatal("error body leaks the key or the token")
				}
			}
		})
	}
	t.Run("head 401 has no body", func(t *testing.T) {
		r := v.callWithToken("HEAD", v.srv.URL+"/api/hubs/chat/users/u"+apiV, "", nil, "")
		if r.status != 401 || len(r.body) != 0 {
			t.Fatalf("status %d body %q", r.status, r.body)
		}
	})
	t.Run("health needs no token", func(t *testing.T) {
		r := v.callWithToken("HEAD", v.srv.URL+"/api/health", "", nil, "")
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	})
}

func TestListConnectionsInGroupPaging(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	want := map[string]string{}
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		c := v.dial("chat", subprotocolJSON, u, nil, []string{"g"})
		want[c.id] = u
	}
	v.dial("chat", subprotocolJSON, "outsider", nil, []string{"other"})

	list := func(t *testing.T, first string) (got map[string]string, pages int) {
		got = map[string]string{}
		next := v.srv.URL + first
		for next != "" {
			pages++
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			r := v.callWithToken("GET", next, "", nil, v.restToken(next))
			if r.status != 200 {
				t.Fatalf("GET %s = %d %s", next, r.status, r.body)
			}
			var page groupMemberPage
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatalf("page %s: %v", r.body, err)
			}
			for _, m := range page.Value {
				if _, dup := got[m.ConnectionID]; dup {
					t.Fatalf("connection %s listed twice", m.ConnectionID)
				}
				got[m.ConnectionID] = m.UserID
			}
			next = page.NextLink
			if next != "" && (!strings.HasPrefix(next, v.srv.URL+"/api/hubs/chat/groups/g/connections?") ||
				!strings.Contains(next, "api-version=2024-12-01")) {
				t.Fatalf("nextLink %q is not absolute with api-version", next)
			}
		}
		return got, pages
	}
	t.Run("all pages", func(t *testing.T) {
		got, pages := list(t, "/api/hubs/chat/groups/g/connections"+apiV+"&maxpagesize=2")
		if pages != 3 || len(got) != 5 {
			t.Fatalf("pages=%d got=%v", pages, got)
		}
		for id, u := range want {
			if got[id] != u {
				t.Fatalf("connection %s: user %q, want %q", id, got[id], u)
			}
		}
	})
	t.Run("top caps the total", func(t *testing.T) {
		got, pages := list(t, "/api/hubs/chat/groups/g/connections"+apiV+"&maxpagesize=2&top=3")
		if pages != 2 || len(got) != 3 {
			t.Fatalf("pages=%d got=%v", pages, got)
		}
	})
	t.Run("empty group", func(t *testing.T) {
		got, pages := list(t, "/api/hubs/chat/groups/none/connections"+apiV)
		if pages != 1 || len(got) != 0 {
			t.Fatalf("pages=%d got=%v", pages, got)
		}
	})
}

func TestGenerateTokenConnects(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	r := v.call("POST", "/api/hubs/chat/:generateToken"+apiV+"&userId=zoe&role=webpubsub.sendToGroup.room&group=room&group=lobby", "", nil)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal(r.body, &tok); err != nil || tok.Token == "" {
		t.Fatalf("body %s: %v", r.body, err)
	}
	claims := &tokenClaims{}
	if _, err := jwt.ParseWithClaims(tok.Token, claims, func(*jwt.Token) (any, error) { return []byte(v.key), nil }); err != nil {
		t.Fatalf("parse token: %v", err)
	}
	if claims.Subject != "zoe" || claims.Audience[0] != v.srv.URL+"/client/hubs/chat" ||
		len(claims.Role) != 1 || len(claims.Groups) != 2 {
		t.Fatalf("claims = %+v", claims)
	}
	if d := time.Until(claims.ExpiresAt.Time); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("token lives %v, want 60m", d)
	}
	ws := dialURL(t, "ws"+strings.TrimPrefix(v.srv.URL, "http")+"/client/hubs/chat?access_token="+tok.Token, subprotocolJSON)
	m := ws.readJSON()
	if m["event"] != "connected" || m["userId"] != "zoe" {
		t.Fatalf("connected = %v", m)
	}
	if !v.e.hub("chat", false).groupExists("lobby") {
		t.Fatal("token group not joined")
	}
}

// TestGenerateTokenLongestExpiry asks for the largest minutesToExpire the API allows (int32): the token must
// still expire in the future instead of overflowing into the past.
func TestGenerateTokenLongestExpiry(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	r := v.call("POST", "/api/hubs/chat/:generateToken"+apiV+"&minutesToExpire=2147483647", "", nil)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal(r.body, &tok); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	claims := &tokenClaims{}
	if _, err := jwt.ParseWithClaims(tok.Token, claims, func(*jwt.Token) (any, error) { return []byte(v.key), nil }); err != nil {
		t.Fatalf("parse token: %v", err)
	}
	if d := time.Until(claims.ExpiresAt.Time); d < 100*365*24*time.Hour {
		t.Fatalf("token expires in %v, want a century or more", d)
	}
}
