package wps

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseConnectionString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want ConnectionString
		err  string
	}{
		{name: "standard", in: "Endpoint=https://x.webpubsub.azure.com;AccessKey=abc=;Version=1.0;",
			want: ConnectionString{Endpoint: "https://x.webpubsub.azure.com", AccessKey: "abc=", Version: "1.0"}},
		{name: "case-insensitive keys, any order", in: "version=1.0;ACCESSKEY=k;eNdPoInT=https://x.webpubsub.azure.com/",
			want: ConnectionString{Endpoint: "https://x.webpubsub.azure.com", AccessKey: "k", Version: "1.0"}},
		{name: "port overrides", in: "Endpoint=http://localhost:8080;Port=8081;AccessKey=k",
			want: ConnectionString{Endpoint: "http://localhost:8081", AccessKey: "k", Port: "8081"}},
		{name: "port added", in: "Endpoint=https://x.webpubsub.azure.com;AccessKey=k;Port=443",
			want: ConnectionString{Endpoint: "https://x.webpubsub.azure.com:443", AccessKey: "k", Port: "443"}},
		{name: "ipv6 port", in: "Endpoint=http://[::1]:1;AccessKey=k;Port=2",
			want: ConnectionString{Endpoint: "http://[::1]:2", AccessKey: "k", Port: "2"}},
		{name: "no scheme gets https", in: "Endpoint=x.webpubsub.azure.com;AccessKey=k",
			want: ConnectionString{Endpoint: "https://x.webpubsub.azure.com", AccessKey: "k"}},
		{name: "first duplicate wins, unknown ignored", in: "Endpoint=https://a;Endpoint=https://b;AccessKey=k1;AccessKey=k2;Foo=bar",
			want: ConnectionString{Endpoint: "https://a", AccessKey: "k1"}},
		{name: "value not trimmed", in: "Endpoint=https://a;AccessKey= k ",
			want: ConnectionString{Endpoint: "https://a", AccessKey: " k "}},
		{name: "missing endpoint", in: "AccessKey=secret-value-1", err: "missing Endpoint"},
		{name: "missing key", in: "Endpoint=https://a;Version=1.0", err: "missing AccessKey"},
		{name: "empty key", in: "Endpoint=https://a;AccessKey=", err: "missing AccessKey"},
		{name: "other scheme", in: "Endpoint=ftp://x;AccessKey=secret-value-1", err: "must be an http or https URL"},
		{name: "segment without =", in: "Endpoint=https://a;secret-value-1;AccessKey=k", err: "segment 2 has no '='"},
		{name: "bad port", in: "Endpoint=https://a;AccessKey=secret-value-1;Port=http", err: "Port must be"},
		{name: "port out of range", in: "Endpoint=https://a;AccessKey=k;Port=70000", err: "Port must be"},
		{name: "bad endpoint", in: "Endpoint=https://;AccessKey=secret-value-1", err: "Endpoint is not"},
		{name: "empty", in: "", err: "missing Endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseConnectionString(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalidOption) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "secret-value-1") {
					t.Errorf("error leaks the key: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestNewClientFromConnectionString(t *testing.T) {
	t.Parallel()
	f := newFakeService(t, status(200))
	port := f.srv.URL[strings.LastIndex(f.srv.URL, ":")+1:]
	cs := "Endpoint=http://127.0.0.1:1;AccessKey=" + testKey + ";Version=1.0;Port=" + port
	c, err := NewClientFromConnectionString(cs, WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	if c.Endpoint() != f.srv.URL {
		t.Errorf("Endpoint() = %s, want %s", c.Endpoint(), f.srv.URL)
	}
	ok, err := c.ServiceStatus(testCtx(t))
	if !ok || err != nil {
		t.Fatalf("ServiceStatus = %v, %v", ok, err)
	}
	if r := f.only(t); r.AuthErr != "" {
		t.Error(r.AuthErr)
	}
	if _, err := NewClientFromConnectionString("AccessKey=k"); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("err = %v", err)
	}
}

func TestServiceStatusUnhealthy(t *testing.T) {
	t.Parallel()
	f := newFakeService(t, status(503))
	ok, err := newTestClient(t, f).ServiceStatus(testCtx(t))
	if ok || !IsRetriable(err) {
		t.Fatalf("ServiceStatus = %v, %v", ok, err)
	}
}

func TestNewClientOptions(t *testing.T) {
	t.Parallel()
	const ep = "https://x.webpubsub.azure.com"
	key := WithAccessKey(testKey)
	for _, tc := range []struct {
		name     string
		endpoint string
		opts     []Option
		ok       bool
	}{
		{"key", ep, []Option{key}, true},
		{"credential", ep, []Option{WithTokenCredential(&fakeCredential{})}, true},
		{"everything", ep, []Option{key, WithReverseProxy("https://apim.example.com/wps"), WithHTTPClient(&http.Client{}),
			WithMaxConnsPerHost(8), WithTimeout(0), WithUserAgent("ua"), WithAPIVersion("2024-01-01"), WithTokenTTL(time.Minute),
			WithTokenCache(false), WithClock(time.Now), WithInsecureHTTP(false), WithLogger(nil), nil}, true},
		{"no credential", ep, nil, false},
		{"both credentials", ep, []Option{key, WithTokenCredential(&fakeCredential{})}, false},
		{"empty key", ep, []Option{WithAccessKey("")}, false},
		{"nil credential", ep, []Option{WithTokenCredential(nil)}, false},
		{"nil http client", ep, []Option{key, WithHTTPClient(nil)}, false},
		{"zero conns", ep, []Option{key, WithMaxConnsPerHost(0)}, false},
		{"negative timeout", ep, []Option{key, WithTimeout(-time.Second)}, false},
		{"empty user agent", ep, []Option{key, WithUserAgent("")}, false},
		{"empty api version", ep, []Option{key, WithAPIVersion("")}, false},
		{"tiny ttl", ep, []Option{key, WithTokenTTL(time.Millisecond)}, false},
		{"nil clock", ep, []Option{key, WithClock(nil)}, false},
		{"empty proxy", ep, []Option{key, WithReverseProxy("")}, false},
		{"bad proxy", ep, []Option{key, WithReverseProxy("ftp://apim")}, false},
		{"plain http proxy", ep, []Option{key, WithReverseProxy("http://apim.example.com")}, false},
		{"http remote refused", "http://x.webpubsub.azure.com", []Option{key}, false},
		{"http remote allowed", "http://x.webpubsub.azure.com", []Option{key, WithInsecureHTTP(true)}, true},
		{"http localhost", "http://localhost:8080", []Option{key}, true},
		{"http ipv6 loopback", "http://[::1]:8080", []Option{key}, true},
		{"no host", "https://", []Option{key}, false},
		{"query", ep + "?a=b", []Option{key}, false},
		{"user info", "https://u:p@x", []Option{key}, false},
		{"not a url", "://", []Option{key}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewClient(tc.endpoint, tc.opts...)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidOption) || strings.Contains(err.Error(), testKey) {
					t.Errorf("err = %v: must wrap ErrInvalidOption and not show the key", err)
				}
				return
			}
			c.CloseIdleConnections()
		})
	}
}
