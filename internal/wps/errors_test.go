package wps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func TestStatusErrorsAndClasses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		class     Class
		code, msg string
		retry     time.Duration
		hasRetry  bool
		errString string
	}{
		{name: "429 with header code", status: 429, header: map[string]string{"x-ms-error-code": "ThrottleError", "Retry-After": "7"},
			body: `{"code":"Other","message":"slow down"}`, class: ClassTransient, code: "ThrottleError", msg: "slow down",
			retry: 7 * time.Second, hasRetry: true, errString: "wps: sendToGroup: 429 Too Many Requests: ThrottleError: slow down"},
		{name: "408", status: 408, class: ClassTransient, errString: "wps: sendToGroup: 408 Request Timeout"},
		{name: "500 body code", status: 500, body: `{"code":"InternalServerError","message":"boom"}`, class: ClassTransient,
			code: "InternalServerError", msg: "boom"},
		{name: "502 html", status: 502, body: "<html>bad gateway</html>", class: ClassTransient},
		{name: "503 retry date", status: 503, header: map[string]string{"Retry-After": testNow.Add(90 * time.Second).Format(http.TimeFormat)},
			class: ClassTransient, retry: 90 * time.Second, hasRetry: true},
		{name: "504 retry-after-ms", status: 504, header: map[string]string{"retry-after-ms": "250"}, class: ClassTransient,
			retry: 250 * time.Millisecond, hasRetry: true},
		{name: "401", status: 401, header: map[string]string{"x-ms-error-code": "Unauthorized"}, class: ClassSystemic, code: "Unauthorized"},
		{name: "403", status: 403, class: ClassSystemic},
		{name: "400 bad filter", status: 400, body: `{"code":"InvalidFilter","message":"Invalid syntax for 'x': y (Parameter 'filter')"}`,
			class: ClassInvalid, code: "InvalidFilter", msg: "Invalid syntax for 'x': y (Parameter 'filter')"},
		{name: "404", status: 404, class: ClassInvalid},
		{name: "409", status: 409, class: ClassInvalid},
		{name: "413", status: 413, body: "payload\n too   large", class: ClassInvalid, msg: "payload too large",
			errString: "wps: sendToGroup: 413 Request Entity Too Large: payload too large"},
		{name: "302 not followed", status: 302, header: map[string]string{"Location": "https://elsewhere.example/"}, class: ClassInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeService(t, func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			h := mustHub(t, newTestClient(t, f), "hub1")
			err := h.SendToGroup(testCtx(t), "g", []byte("x"), ContentText, nil)
			se, ok := errors.AsType[*StatusError](err)
			if !ok {
				t.Fatalf("err = %v, want *StatusError", err)
			}
			if se.StatusCode != tc.status || se.Op != "sendToGroup" || se.Code != tc.code || se.Message != tc.msg {
				t.Errorf("got %+v, want status %d code %q message %q", se, tc.status, tc.code, tc.msg)
			}
			if c := Classify(err); c != tc.class {
				t.Errorf("Classify = %s, want %s", c, tc.class)
			}
			if IsRetriable(err) != (tc.class == ClassTransient) {
				t.Errorf("IsRetriable disagrees with class %s", tc.class)
			}
			d, ok := RetryAfter(fmt.Errorf("wrapped: %w", err))
			if ok != tc.hasRetry || d != tc.retry || se.HasRetryAfter() != tc.hasRetry {
				t.Errorf("RetryAfter = %v, %v; want %v, %v", d, ok, tc.retry, tc.hasRetry)
			}
			if tc.errString != "" && err.Error() != tc.errString {
				t.Errorf("Error() = %q, want %q", err, tc.errString)
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "Bearer") {
				t.Errorf("error leaks a secret: %q", err)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (the client never retries)", n)
			}
		})
	}
}

func TestHeadErrorHasNoBody(t *testing.T) {
	t.Parallel()
	f := newFakeService(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("x-ms-error-code", "Forbidden")
		w.WriteHeader(403)
	})
	h := mustHub(t, newTestClient(t, f), "hub1")
	ok, err := h.UserExists(testCtx(t), "u")
	if ok || Classify(err) != ClassSystemic || err.Error() != "wps: userExists: 403 Forbidden: Forbidden" {
		t.Fatalf("UserExists = %v, %v", ok, err)
	}
}

func TestTransportErrorsAreTransient(t *testing.T) {
	t.Parallel()
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		f := newFakeService(t, status(202))
		c := newTestClient(t, f)
		f.srv.Close()
		err := mustHub(t, c, "hub1").SendToAll(testCtx(t), nil, ContentJSON, nil)
		if err == nil || Classify(err) != ClassTransient || !strings.HasPrefix(err.Error(), "wps: sendToAll: ") {
			t.Fatalf("err = %v, class %s", err, Classify(err))
		}
	})
	t.Run("per-request timeout", func(t *testing.T) {
		t.Parallel()
		f := newFakeService(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		c := newTestClient(t, f, WithTimeout(50*time.Millisecond))
		err := mustHub(t, c, "hub1").SendToAll(testCtx(t), nil, ContentJSON, nil)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 50ms") {
			t.Fatalf("err = %v, want a per-request timeout", err)
		}
		if Classify(err) != ClassTransient {
			t.Errorf("Classify = %s", Classify(err))
		}
	})
	t.Run("connection dropped", func(t *testing.T) {
		t.Parallel()
		f := newFakeService(t, func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		})
		err := mustHub(t, newTestClient(t, f), "hub1").SendToAll(testCtx(t), nil, ContentJSON, nil)
		if !errors.Is(err, io.EOF) || Classify(err) != ClassTransient {
			t.Fatalf("err = %v, want EOF, transient", err)
		}
	})
}

func TestClassify(t *testing.T) {
	t.Parallel()
	authFailed := &azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: 401, Request: &http.Request{}}}
	entraDown := &azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: 503, Request: &http.Request{}}}
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassNone},
		{"validation", &ValidationError{Op: "x", Field: "f", Reason: "r"}, ClassInvalid},
		{"option", fmt.Errorf("cfg: %w", ErrInvalidOption), ClassInvalid},
		{"unknown", errors.New("something odd"), ClassTransient},
		{"canceled", context.Canceled, ClassTransient},
		{"eof", io.ErrUnexpectedEOF, ClassTransient},
		{"credential rejected", &credentialError{err: authFailed}, ClassSystemic},
		{"credential unavailable", &credentialError{err: errors.New("no managed identity endpoint")}, ClassSystemic},
		{"credential network", &credentialError{err: fmt.Errorf("dial: %w", context.DeadlineExceeded)}, ClassTransient},
		{"entra 503", &credentialError{err: entraDown}, ClassTransient},
		{"status 599", &StatusError{StatusCode: 599}, ClassTransient},
		{"status 418", &StatusError{StatusCode: 418}, ClassInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
	for c, s := range map[Class]string{ClassNone: "none", ClassTransient: "transient", ClassSystemic: "systemic", ClassInvalid: "invalid", 9: "class(9)"} {
		if c.String() != s {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), c.String(), s)
		}
	}
	if _, ok := RetryAfter(errors.New("x")); ok {
		t.Error("RetryAfter on a plain error reported ok")
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   time.Duration
		ok     bool
	}{
		{"none", nil, 0, false},
		{"seconds", map[string]string{"Retry-After": "120"}, 2 * time.Minute, true},
		{"fraction", map[string]string{"Retry-After": " 1.5 "}, 1500 * time.Millisecond, true},
		{"zero", map[string]string{"Retry-After": "0"}, 0, true},
		{"negative", map[string]string{"Retry-After": "-3"}, 0, false},
		{"http date", map[string]string{"Retry-After": testNow.Add(time.Hour).Format(http.TimeFormat)}, time.Hour, true},
		{"past date", map[string]string{"Retry-After": testNow.Add(-time.Hour).Format(http.TimeFormat)}, 0, true},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0, false},
		{"ms wins", map[string]string{"retry-after-ms": "20", "Retry-After": "9"}, 20 * time.Millisecond, true},
		{"x-ms ms", map[string]string{"x-ms-retry-after-ms": "1000"}, time.Second, true},
		{"bad ms falls back", map[string]string{"retry-after-ms": "x", "Retry-After": "2"}, 2 * time.Second, true},
		// ParseFloat accepts these: regression, they became negative or
		// overflowed durations.
		{"NaN", map[string]string{"Retry-After": "NaN"}, 0, false},
		{"NaN ms falls back", map[string]string{"retry-after-ms": "NaN", "Retry-After": "2"}, 2 * time.Second, true},
		{"huge", map[string]string{"Retry-After": "1e300"}, math.MaxInt64, true},
		{"infinite ms", map[string]string{"retry-after-ms": "+Inf"}, math.MaxInt64, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			got, ok := parseRetryAfter(h, testNow)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parseRetryAfter = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
