package wps

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Defaults used when the matching option is not given.
const (
	DefaultAPIVersion      = "2024-12-01"      // WithAPIVersion
	DefaultMaxConnsPerHost = 64                // WithMaxConnsPerHost
	DefaultTimeout         = 10 * time.Second  // WithTimeout
	DefaultTokenTTL        = time.Hour         // WithTokenTTL
	DefaultUserAgent       = "wps-bridge-go/1" // WithUserAgent
	entraScope             = "https://webpubsub.azure.com/.default"
	maxTokenCacheEntries   = 10000
)

// Option configures a Client. Options return an error wrapping
// ErrInvalidOption for a bad value; NewClient reports it.
type Option func(*clientConfig) error

type clientConfig struct {
	accessKey       string
	credential      azcore.TokenCredential
	reverseProxy    string
	httpClient      *http.Client
	maxConnsPerHost int
	timeout         time.Duration
	userAgent       string
	apiVersion      string
	tokenTTL        time.Duration
	tokenCache      bool
	now             func() time.Time
	insecureHTTP    bool
	logger          *slog.Logger
}

func defaultConfig() clientConfig {
	return clientConfig{
		maxConnsPerHost: DefaultMaxConnsPerHost,
		timeout:         DefaultTimeout,
		userAgent:       DefaultUserAgent,
		apiVersion:      DefaultAPIVersion,
		tokenTTL:        DefaultTokenTTL,
		tokenCache:      true,
		now:             time.Now,
	}
}

func optionError(name, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, name, reason)
}

// WithAccessKey authenticates with the hub's access key: every request carries
// an HS256 JWT signed with the key's UTF-8 bytes. Exactly one of WithAccessKey
// and WithTokenCredential is required.
func WithAccessKey(key string) Option {
	return func(c *clientConfig) error {
		if key == "" {
			return optionError("WithAccessKey", "empty key")
		}
		c.accessKey = key
		return nil
	}
}

// WithTokenCredential authenticates with Microsoft Entra ID: every request
// carries a bearer token for the scope https://webpubsub.azure.com/.default,
// cached until shortly before it expires.
func WithTokenCredential(cred azcore.TokenCredential) Option {
	return func(c *clientConfig) error {
		if cred == nil {
			return optionError("WithTokenCredential", "nil credential")
		}
		c.credential = cred
		return nil
	}
}

// WithReverseProxy sends requests to an API Management or other reverse proxy
// endpoint (scheme, host, port and an optional path prefix) instead of the
// service endpoint. The access-key JWT's aud still names the service URL.
func WithReverseProxy(endpoint string) Option {
	return func(c *clientConfig) error {
		if endpoint == "" {
			return optionError("WithReverseProxy", "empty endpoint")
		}
		c.reverseProxy = endpoint
		return nil
	}
}

// WithHTTPClient sends the requests with hc instead of the client's own
// transport. By default the client uses one transport cloned from
// http.DefaultTransport, sized by WithMaxConnsPerHost, and does not follow
// redirects (a 3xx is returned as a *StatusError). With this option
// WithMaxConnsPerHost has no effect and hc's CheckRedirect decides.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *clientConfig) error {
		if hc == nil {
			return optionError("WithHTTPClient", "nil client")
		}
		c.httpClient = hc
		return nil
	}
}

// WithMaxConnsPerHost sizes the shared transport's MaxConnsPerHost and
// MaxIdleConnsPerHost; set it to at least the caller's in-flight limit.
// Default 64.
func WithMaxConnsPerHost(n int) Option {
	return func(c *clientConfig) error {
		if n < 1 {
			return optionError("WithMaxConnsPerHost", "must be at least 1")
		}
		c.maxConnsPerHost = n
		return nil
	}
}

// WithTimeout bounds each request (connect, send, response body) through its
// context. Default 10s; 0 disables the per-request timeout (the caller's
// context still applies).
func WithTimeout(d time.Duration) Option {
	return func(c *clientConfig) error {
		if d < 0 {
			return optionError("WithTimeout", "must not be negative")
		}
		c.timeout = d
		return nil
	}
}

// WithUserAgent sets the User-Agent header. Default "wps-bridge-go/1".
func WithUserAgent(s string) Option {
	return func(c *clientConfig) error {
		if s == "" {
			return optionError("WithUserAgent", "empty user agent")
		}
		c.userAgent = s
		return nil
	}
}

// WithAPIVersion sets the api-version query parameter. Default "2024-12-01".
func WithAPIVersion(v string) Option {
	return func(c *clientConfig) error {
		if v == "" {
			return optionError("WithAPIVersion", "empty version")
		}
		c.apiVersion = v
		return nil
	}
}

// WithTokenTTL sets the lifetime of the access-key JWTs signed for REST calls.
// Default 1h. Cached tokens are re-signed when less than 5 minutes (or half
// the TTL, if shorter than 10 minutes) remain.
func WithTokenTTL(d time.Duration) Option {
	return func(c *clientConfig) error {
		if d < time.Second {
			return optionError("WithTokenTTL", "must be at least 1s")
		}
		c.tokenTTL = d
		return nil
	}
}

// WithTokenCache turns the per-URL JWT cache on or off. Default on; turning
// it off signs a token for every request (useful only for benchmarks).
func WithTokenCache(enabled bool) Option {
	return func(c *clientConfig) error {
		c.tokenCache = enabled
		return nil
	}
}

// WithClock replaces time.Now for token iat/exp, cache expiry and
// Retry-After dates. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *clientConfig) error {
		if now == nil {
			return optionError("WithClock", "nil clock")
		}
		c.now = now
		return nil
	}
}

// WithInsecureHTTP allows plain http:// endpoints on non-loopback hosts.
// Default false: http:// is accepted only for localhost and loopback IPs,
// since the credential would otherwise travel in clear text.
func WithInsecureHTTP(allow bool) Option {
	return func(c *clientConfig) error {
		c.insecureHTTP = allow
		return nil
	}
}

// WithLogger sets the logger for debug records about failed requests
// (operation, status, duration; never a token or key). Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(c *clientConfig) error {
		c.logger = l
		return nil
	}
}
