package wps

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// manualClock is a clock tests move by hand.
type manualClock struct{ ns atomic.Int64 }

func newManualClock(t time.Time) *manualClock {
	c := &manualClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *manualClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *manualClock) add(d time.Duration) { c.ns.Add(int64(d)) }

func TestTokenCache(t *testing.T) {
	t.Parallel()
	clk := newManualClock(testNow)
	f := newFakeService(t, status(202))
	c := newTestClient(t, f, WithClock(clk.now))
	h := mustHub(t, c, "hub1")
	ctx := testCtx(t)
	send := func(group string) {
		t.Helper()
		if err := h.SendToGroup(ctx, group, []byte("x"), ContentText, nil); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		advance time.Duration
		group   string
		signs   int64
	}{
		{"first call signs", 0, "g1", 1},
		{"same URL reuses", 0, "g1", 1},
		{"other URL signs", 0, "g2", 2},
		{"54m later still cached", 54 * time.Minute, "g1", 2},
		{"under 5m left re-signs", 2 * time.Minute, "g1", 3},
		{"fresh token cached again", time.Minute, "g1", 3},
	}
	for _, s := range steps {
		clk.add(s.advance)
		send(s.group)
		if got := c.signer.signs.Load(); got != s.signs {
			t.Fatalf("%s: %d signatures, want %d", s.name, got, s.signs)
		}
	}
	reqs := f.requests()
	if reqs[0].Header.Get("Authorization") != reqs[1].Header.Get("Authorization") {
		t.Error("cached request did not reuse the token")
	}
	if reqs[3].Header.Get("Authorization") == reqs[4].Header.Get("Authorization") {
		t.Error("re-signed token equals the old one")
	}
}

func TestTokenCacheOff(t *testing.T) {
	t.Parallel()
	f := newFakeService(t, status(202))
	c := newTestClient(t, f, WithTokenCache(false))
	h := mustHub(t, c, "hub1")
	for range 3 {
		if err := h.SendToAll(testCtx(t), nil, ContentJSON, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.signer.signs.Load(); got != 3 {
		t.Errorf("%d signatures with the cache off, want 3", got)
	}
	for _, r := range f.requests() {
		if r.AuthErr != "" {
			t.Error(r.AuthErr)
		}
	}
}

func TestTokenCacheIsBounded(t *testing.T) {
	t.Parallel()
	clk := newManualClock(testNow)
	s := newKeySigner(testKey, time.Hour, true, clk.now)
	s.cache.max = 100
	ctx := context.Background()
	for i := range 1000 {
		if _, err := s.authorization(ctx, "https://x/"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		if n := s.cache.len(); n > 100 {
			t.Fatalf("cache grew to %d entries", n)
		}
	}
	// Expired entries are swept first: after the tokens age out, a new
	// insert past the bound empties the old ones.
	clk.add(time.Hour)
	for i := range 101 {
		if _, err := s.authorization(ctx, "https://y/"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.cache.len(); n > 100 {
		t.Fatalf("cache holds %d entries", n)
	}
	if _, ok := s.cache.get("https://y/100", clk.now().UnixNano()); !ok {
		t.Error("the newest entry was evicted")
	}
}

// fakeCredential is an azcore.TokenCredential returning a fixed token.
type fakeCredential struct {
	calls  atomic.Int32
	scopes atomic.Value // []string
	expiry time.Time
}

func (f *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.calls.Add(1)
	f.scopes.Store(o.Scopes)
	return azcore.AccessToken{Token: "entra-token-123", ExpiresOn: f.expiry}, nil
}

func TestEntraIDCredential(t *testing.T) {
	t.Parallel()
	clk := newManualClock(testNow)
	cred := &fakeCredential{expiry: testNow.Add(time.Hour)}
	f := newFakeService(t, status(204))
	c, err := NewClient(f.srv.URL, WithTokenCredential(cred), WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	h := mustHub(t, c, "hub1")
	for _, step := range []struct {
		advance time.Duration
		calls   int32
	}{{0, 1}, {0, 1}, {54 * time.Minute, 1}, {2 * time.Minute, 2}} {
		clk.add(step.advance)
		if err := h.RemoveUserFromAllGroups(testCtx(t), "u"); err != nil {
			t.Fatal(err)
		}
		if got := cred.calls.Load(); got != step.calls {
			t.Fatalf("GetToken called %d times, want %d", got, step.calls)
		}
	}
	if got := cred.scopes.Load().([]string); len(got) != 1 || got[0] != "https://webpubsub.azure.com/.default" {
		t.Errorf("scopes = %v", got)
	}
	for _, r := range f.requests() {
		if a := r.Header.Get("Authorization"); a != "Bearer entra-token-123" {
			t.Errorf("Authorization = %q", a)
		}
	}
}

type failingCredential struct{ err error }

func (f failingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, f.err
}

func TestEntraIDFailureIsSystemic(t *testing.T) {
	t.Parallel()
	f := newFakeService(t, status(202))
	c, err := NewClient(f.srv.URL, WithTokenCredential(failingCredential{err: errSentinel}))
	if err != nil {
		t.Fatal(err)
	}
	err = mustHub(t, c, "hub1").SendToAll(testCtx(t), nil, ContentJSON, nil)
	if Classify(err) != ClassSystemic || err.Error() != "wps: sendToAll: get Entra ID token: no identity" {
		t.Fatalf("err = %v (%s)", err, Classify(err))
	}
	if len(f.requests()) != 0 {
		t.Error("request sent without a token")
	}
}

var errSentinel = &sentinelError{}

type sentinelError struct{}

func (*sentinelError) Error() string { return "no identity" }

func TestReverseProxy(t *testing.T) {
	t.Parallel()
	const service = "https://svc.webpubsub.azure.com"
	f := newFakeService(t, status(202))
	f.audBase = service // the JWT must name the service, not the proxy
	c, err := NewClient(service+"/", WithAccessKey(testKey), WithClock(fixedClock), WithReverseProxy(f.srv.URL+"/apim/wps/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	if c.Endpoint() != service {
		t.Errorf("Endpoint() = %q", c.Endpoint())
	}
	// The request path keeps the proxy's prefix, which the aud must not have.
	f.audBase = service
	if err := mustHub(t, c, "hub1").SendToGroup(testCtx(t), "g 1", []byte("x"), ContentText, nil); err != nil {
		t.Fatal(err)
	}
	r := f.only(t)
	if want := "/apim/wps/api/hubs/hub1/groups/g%201/:send" + apiQ; r.RequestURI != want {
		t.Errorf("RequestURI = %s, want %s", r.RequestURI, want)
	}
	if want := service + "/api/hubs/hub1/groups/g%201/:send" + apiQ; r.Aud != want {
		t.Errorf("aud = %s, want %s", r.Aud, want)
	}
}

func TestTraceContextPropagation(t *testing.T) {
	// Not parallel: it swaps the global propagator.
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })

	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(testCtx(t), sc)
	f := newFakeService(t, status(202))
	if err := mustHub(t, newTestClient(t, f), "hub1").SendToAll(ctx, nil, ContentJSON, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := f.only(t).Header.Get("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got != want {
		t.Errorf("traceparent = %q, want %q", got, want)
	}
}
