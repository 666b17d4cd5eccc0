package wps

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "dGVzdC1rZXktbm90LWJhc2U2NC1kZWNvZGVk+/=" // used as UTF-8 bytes, never decoded

// testNow is the fixed clock of most tests.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// seen is one request as the fake service received it.
type seen struct {
	Method     string
	RequestURI string // escaped path + "?" + raw query, exactly as sent
	Header     http.Header
	Body       string
	Aud        string // the verified JWT's aud ("" for non-JWT auth)
	AuthErr    string // why the JWT was refused, "" when it verified
}

// fakeService is an httptest server standing in for Web PubSub: it verifies
// the access-key JWT (HS256 with the key bytes, claims exactly aud/iat/exp,
// exp-iat = 1h, aud = the full URL as sent) and answers with respond.
type fakeService struct {
	srv     *httptest.Server
	audBase string // scheme://host[/prefix-stripped] the aud must start with

	mu      sync.Mutex
	reqs    []seen
	respond func(w http.ResponseWriter, r *http.Request)
}

func newFakeService(t testing.TB, respond func(w http.ResponseWriter, r *http.Request)) *fakeService {
	t.Helper()
	f := &fakeService{respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.audBase = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// status answers every request with code.
func status(code int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: string(body)}
	s.Aud, s.AuthErr = verifyJWT(r.Header.Get("Authorization"), f.audBase+r.RequestURI)
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	respond := f.respond
	f.mu.Unlock()
	if respond != nil {
		respond(w, r)
	}
}

func (f *fakeService) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// only returns the single request received, failing otherwise.
func (f *fakeService) only(t testing.TB) seen {
	t.Helper()
	r := f.requests()
	if len(r) != 1 {
		t.Fatalf("service got %d requests, want 1", len(r))
	}
	return r[0]
}

// verifyJWT checks an access-key bearer token and returns its aud.
func verifyJWT(authz, wantAud string) (aud, problem string) {
	raw, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok {
		return "", "no bearer token"
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return []byte(testKey), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(fixedClock), jwt.WithIssuedAt())
	if err != nil {
		return "", "verify: " + err.Error()
	}
	if len(tok.Header) != 2 || tok.Header["typ"] != "JWT" {
		return "", "unexpected header fields"
	}
	if len(claims) != 3 {
		return "", "claims are not exactly aud, iat, exp"
	}
	aud, _ = claims["aud"].(string)
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	switch {
	case aud != wantAud:
		return aud, "aud " + aud + " != " + wantAud
	case int64(iat) != testNow.Unix():
		return aud, "iat is not the injected clock"
	case exp-iat != 3600:
		return aud, "exp - iat != 3600"
	}
	return aud, ""
}

// newTestClient returns a client for f with the access key and fixed clock.
func newTestClient(t testing.TB, f *fakeService, opts ...Option) *Client {
	t.Helper()
	all := append([]Option{WithAccessKey(testKey), WithClock(fixedClock)}, opts...)
	c, err := NewClient(f.srv.URL, all...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func mustHub(t testing.TB, c *Client, name string) *HubClient {
	t.Helper()
	h, err := c.Hub(name)
	if err != nil {
		t.Fatalf("Hub(%q): %v", name, err)
	}
	return h
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
