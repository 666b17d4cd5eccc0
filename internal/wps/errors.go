package wps

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// ErrInvalidOption is wrapped by every error an Option or a constructor
// returns for a bad configuration value.
var ErrInvalidOption = errors.New("wps: invalid option")

// ErrValidation is wrapped by every *ValidationError, so callers can test
// with errors.Is(err, wps.ErrValidation).
var ErrValidation = errors.New("wps: validation failed")

// ValidationError reports an argument the client refused before any network
// call: a bad hub, group, id, ttl, permission, page size or token lifetime.
// Its message names the operation and the field, never the value of a secret.
type ValidationError struct {
	Op     string // operation, e.g. "sendToGroup"
	Field  string // the offending argument, e.g. "group" or "ttl"
	Reason string // what is wrong with it
}

// Error implements error.
func (e *ValidationError) Error() string {
	return "wps: " + e.Op + ": invalid " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrValidation.
func (e *ValidationError) Unwrap() error { return ErrValidation }

// StatusError is returned when the service answers with a status code other
// than the operation's documented success code(s).
type StatusError struct {
	Op         string        // operation, e.g. "sendToGroup"
	StatusCode int           // HTTP status code
	Code       string        // x-ms-error-code header, else the body's "code"
	Message    string        // the body's "message" (or a short text body)
	RetryAfter time.Duration // parsed Retry-After; see HasRetryAfter

	hasRetryAfter bool
}

// Error implements error, e.g.
// "wps: sendToGroup: 429 Too Many Requests: ThrottleError: slow down".
func (e *StatusError) Error() string {
	var b strings.Builder
	b.Grow(64 + len(e.Code) + len(e.Message))
	b.WriteString("wps: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// HasRetryAfter reports whether the response carried a parseable Retry-After
// (or retry-after-ms / x-ms-retry-after-ms) header.
func (e *StatusError) HasRetryAfter() bool { return e.hasRetryAfter }

// Class is the router-facing classification of an error; see Classify.
type Class int

// Error classes. See the package documentation for what the router does
// with each.
const (
	ClassNone      Class = iota // no error
	ClassTransient              // retry with backoff: network, timeouts, 408, 429, 5xx
	ClassSystemic               // pause consumption: 401, 403, credential failures
	ClassInvalid                // dead-letter at once: validation, other 4xx (400, 404, 413, ...)
)

// String returns "none", "transient", "systemic" or "invalid".
func (c Class) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassTransient:
		return "transient"
	case ClassSystemic:
		return "systemic"
	case ClassInvalid:
		return "invalid"
	default:
		return "class(" + strconv.Itoa(int(c)) + ")"
	}
}

// Classify maps an error returned by this package to a Class:
//
//   - nil: ClassNone.
//   - *ValidationError, ErrInvalidOption: ClassInvalid.
//   - *StatusError: 408, 429 and 5xx are ClassTransient; 401 and 403 are
//     ClassSystemic; every other status (other 4xx such as 400, 404, 409,
//     413, and unexpected 1xx/2xx/3xx answers) is ClassInvalid.
//   - Entra ID credential failures (azidentity.AuthenticationFailedError,
//     credential unavailable): ClassSystemic.
//   - Everything else, notably network errors, timeouts (including the
//     per-request timeout), io.EOF and connection resets: ClassTransient.
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	if _, ok := errors.AsType[*ValidationError](err); ok {
		return ClassInvalid
	}
	if errors.Is(err, ErrInvalidOption) {
		return ClassInvalid
	}
	if se, ok := errors.AsType[*StatusError](err); ok {
		switch c := se.StatusCode; {
		case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
			return ClassTransient
		case c == http.StatusUnauthorized, c == http.StatusForbidden:
			return ClassSystemic
		default:
			return ClassInvalid
		}
	}
	if isCredentialFailure(err) {
		return ClassSystemic
	}
	return ClassTransient
}

// credentialError wraps a failure to get an Entra ID token.
type credentialError struct{ err error }

func (e *credentialError) Error() string { return "get Entra ID token: " + e.err.Error() }
func (e *credentialError) Unwrap() error { return e.err }

// isCredentialFailure reports a credential that cannot produce a token
// (bad secret, missing identity): that will not heal by retrying soon.
// Network trouble on the way to Entra ID stays transient.
func isCredentialFailure(err error) bool {
	if afe, ok := errors.AsType[*azidentity.AuthenticationFailedError](err); ok {
		if r := afe.RawResponse; r != nil && (r.StatusCode == http.StatusTooManyRequests || r.StatusCode >= 500) {
			return false
		}
		return true
	}
	if _, ok := errors.AsType[*credentialError](err); ok {
		return !isTransportError(err)
	}
	return false
}

// IsRetriable reports whether Classify(err) is ClassTransient. It is meant as
// the router's retry predicate.
func IsRetriable(err error) bool { return Classify(err) == ClassTransient }

// RetryAfter returns the delay the service asked for with a Retry-After
// header (seconds or an HTTP date) on a *StatusError in err's chain.
func RetryAfter(err error) (time.Duration, bool) {
	se, ok := errors.AsType[*StatusError](err)
	if !ok || !se.hasRetryAfter {
		return 0, false
	}
	return se.RetryAfter, true
}

// parseRetryAfter reads retry-after-ms, x-ms-retry-after-ms (milliseconds,
// as azure-core does) and Retry-After (delta seconds or an HTTP date).
func parseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	for _, k := range [...]string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := h.Get(k); v != "" {
			if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				if d, ok := scaleDuration(ms, time.Millisecond); ok {
					return d, true
				}
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		return scaleDuration(secs, time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// scaleDuration returns v units, refusing NaN and negative values (which
// strconv.ParseFloat accepts) and saturating instead of overflowing.
func scaleDuration(v float64, unit time.Duration) (time.Duration, bool) {
	if math.IsNaN(v) || v < 0 {
		return 0, false
	}
	if v >= float64(math.MaxInt64)/float64(unit) {
		return math.MaxInt64, true
	}
	return time.Duration(v * float64(unit)), true
}

// isTransportError reports well-known network and timeout failures.
func isTransportError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, context.DeadlineExceeded)
}
