package wps

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func parseClientToken(t *testing.T, tok string) (jwt.MapClaims, map[string]any) {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(testKey), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(fixedClock))
	if err != nil {
		t.Fatalf("client token does not verify with the key: %v", err)
	}
	return claims, parsed.Header
}

func TestGetClientAccessTokenLocal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		endpoint string
		opts     *TokenOptions
		baseURL  string
		claims   map[string]any
		header   map[string]any
	}{
		{name: "default anonymous", endpoint: "https://X.WebPubSub.Azure.com", opts: nil,
			baseURL: "wss://x.webpubsub.azure.com/client/hubs/Chat",
			claims:  map[string]any{"aud": "https://x.webpubsub.azure.com/client/hubs/Chat", "iat": float64(testNow.Unix()), "exp": float64(testNow.Add(time.Hour).Unix())}},
		{name: "mqtt user roles groups", endpoint: "https://x.webpubsub.azure.com",
			opts:    &TokenOptions{UserID: "alice", Roles: []string{"webpubsub.joinLeaveGroup.g1", "webpubsub.sendToGroup"}, Groups: []string{"g1", "g 2"}, Lifetime: 90 * time.Minute, Protocol: "mqtt"},
			baseURL: "wss://x.webpubsub.azure.com/clients/mqtt/hubs/Chat",
			claims: map[string]any{"aud": "https://x.webpubsub.azure.com/clients/mqtt/hubs/Chat", "iat": float64(testNow.Unix()),
				"exp": float64(testNow.Add(90 * time.Minute).Unix()), "sub": "alice",
				"role":            []any{"webpubsub.joinLeaveGroup.g1", "webpubsub.sendToGroup"},
				"webpubsub.group": []any{"g1", "g 2"}}},
		{name: "socketio over http with kid", endpoint: "http://127.0.0.1:8080",
			opts:    &TokenOptions{UserID: "bob", Protocol: ProtocolSocketIO, Lifetime: time.Minute, JWTHeaders: map[string]any{"kid": "k1"}},
			baseURL: "ws://127.0.0.1:8080/clients/socketio/hubs/Chat",
			claims: map[string]any{"aud": "http://127.0.0.1:8080/clients/socketio/hubs/Chat", "iat": float64(testNow.Unix()),
				"exp": float64(testNow.Add(time.Minute).Unix()), "sub": "bob"},
			header: map[string]any{"alg": "HS256", "typ": "JWT", "kid": "k1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewClient(tc.endpoint, WithAccessKey(testKey), WithClock(fixedClock))
			if err != nil {
				t.Fatal(err)
			}
			ca, err := mustHub(t, c, "Chat").GetClientAccessToken(testCtx(t), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if ca.BaseURL != tc.baseURL || ca.URL != tc.baseURL+"?access_token="+ca.Token {
				t.Errorf("BaseURL %q URL %q, want %q", ca.BaseURL, ca.URL, tc.baseURL)
			}
			claims, header := parseClientToken(t, ca.Token)
			if !reflect.DeepEqual(map[string]any(claims), tc.claims) {
				t.Errorf("claims\n got %v\nwant %v", claims, tc.claims)
			}
			if tc.header != nil && !reflect.DeepEqual(header, tc.header) {
				t.Errorf("header = %v, want %v", header, tc.header)
			}
		})
	}
}

func TestClientTokenViaREST(t *testing.T) {
	t.Parallel()
	respond := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain") // the service may label JSON as text/plain
		_, _ = w.Write([]byte(`{"token":"service.signed.jwt"}`))
	}
	opts := &TokenOptions{UserID: "u 1", Roles: []string{"r1", "r2"}, Groups: []string{"g1", "g2"}, Lifetime: 30 * time.Minute, Protocol: ProtocolMQTT}
	wantURI := hubP + "/:generateToken" + apiQ + "&userId=u%201&role=r1&role=r2&minutesToExpire=30&group=g1&group=g2&clientType=MQTT"

	t.Run("GenerateClientToken with access key", func(t *testing.T) {
		f := newFakeService(t, respond)
		tok, err := mustHub(t, newTestClient(t, f), "hub1").GenerateClientToken(testCtx(t), opts)
		if err != nil || tok != "service.signed.jwt" {
			t.Fatalf("token %q, err %v", tok, err)
		}
		r := f.only(t)
		if r.Method != "POST" || r.RequestURI != wantURI || r.AuthErr != "" || r.Body != "" {
			t.Errorf("got %s %s auth %q body %q, want POST %s", r.Method, r.RequestURI, r.AuthErr, r.Body, wantURI)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		f := newFakeService(t, respond)
		if _, err := mustHub(t, newTestClient(t, f), "hub1").GenerateClientToken(testCtx(t), nil); err != nil {
			t.Fatal(err)
		}
		if got, want := f.only(t).RequestURI, hubP+"/:generateToken"+apiQ+"&minutesToExpire=60"; got != want {
			t.Errorf("RequestURI = %s, want %s", got, want)
		}
	})
	t.Run("GetClientAccessToken with Entra ID", func(t *testing.T) {
		f := newFakeService(t, respond)
		c, err := NewClient(f.srv.URL, WithTokenCredential(&fakeCredential{expiry: time.Now().Add(time.Hour)}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		ca, err := mustHub(t, c, "hub1").GetClientAccessToken(testCtx(t), opts)
		if err != nil {
			t.Fatal(err)
		}
		wantBase := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/clients/mqtt/hubs/hub1"
		if ca.Token != "service.signed.jwt" || ca.BaseURL != wantBase || ca.URL != wantBase+"?access_token=service.signed.jwt" {
			t.Errorf("got %+v", ca)
		}
		r := f.only(t)
		if r.RequestURI != wantURI || r.Header.Get("Authorization") != "Bearer entra-token-123" {
			t.Errorf("request %s with %q", r.RequestURI, r.Header.Get("Authorization"))
		}
	})
	t.Run("empty token", func(t *testing.T) {
		f := newFakeService(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) })
		if _, err := mustHub(t, newTestClient(t, f), "hub1").GenerateClientToken(testCtx(t), nil); err == nil {
			t.Fatal("no error for a response without a token")
		}
	})
}
