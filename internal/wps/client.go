package wps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/wps-bridge/bridge/internal/wpsname"
)

// Client talks to one Web PubSub service endpoint. It is safe for concurrent
// use; create one per endpoint and share it.
type Client struct {
	endpoint   string // service endpoint, no trailing "/": the JWT aud base
	requestURL string // where requests go: endpoint or reverse proxy
	apiQuery   string // "?api-version=<escaped>"
	apiVersion string
	http       httpDoer
	auth       authorizer
	signer     *keySigner // non-nil with an access key
	timeout    time.Duration
	now        func() time.Time
	userAgent  []string
	log        *slog.Logger

	hubs     sync.Map // name -> *HubClient
	hubCount atomic.Int64
}

// maxCachedHubs bounds Client.Hub's cache; further hubs are still served,
// just not cached.
const maxCachedHubs = 1024

var (
	acceptJSON      = []string{"application/json"}
	contentJSONHdr  = []string{string(ContentJSON)}
	contentTextHdr  = []string{string(ContentText)}
	contentBinHdr   = []string{string(ContentBinary)}
	discardLogger   = slog.New(slog.DiscardHandler)
	errNoCredential = fmt.Errorf("%w: one of WithAccessKey or WithTokenCredential is required", ErrInvalidOption)
)

// NewClient returns a client for endpoint (e.g.
// "https://<name>.webpubsub.azure.com"). One of WithAccessKey or
// WithTokenCredential is required. Plain http:// endpoints are refused unless
// the host is loopback or WithInsecureHTTP(true) is given. Errors wrap
// ErrInvalidOption.
func NewClient(endpoint string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	ep, err := normalizeEndpoint("endpoint", endpoint, cfg.insecureHTTP)
	if err != nil {
		return nil, err
	}
	c := &Client{
		endpoint:   ep,
		requestURL: ep,
		apiVersion: cfg.apiVersion,
		apiQuery:   "?api-version=" + string(encodeURIComponent(nil, cfg.apiVersion)),
		timeout:    cfg.timeout,
		now:        cfg.now,
		userAgent:  []string{cfg.userAgent},
		log:        cfg.logger,
	}
	if c.log == nil {
		c.log = discardLogger
	}
	if cfg.reverseProxy != "" {
		if c.requestURL, err = normalizeEndpoint("WithReverseProxy", cfg.reverseProxy, cfg.insecureHTTP); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.accessKey != "" && cfg.credential != nil:
		return nil, fmt.Errorf("%w: WithAccessKey and WithTokenCredential are mutually exclusive", ErrInvalidOption)
	case cfg.accessKey != "":
		c.signer = newKeySigner(cfg.accessKey, cfg.tokenTTL, cfg.tokenCache, cfg.now)
		c.auth = c.signer
	case cfg.credential != nil:
		c.auth = &credentialAuth{cred: cfg.credential, now: cfg.now}
	default:
		return nil, errNoCredential
	}
	if cfg.httpClient != nil {
		c.http = cfg.httpClient
	} else {
		c.http = transportDoer{newTransport(cfg.maxConnsPerHost)}
	}
	return c, nil
}

// NewClientFromConnectionString parses cs (see ParseConnectionString) and
// returns a client for its endpoint and access key. opts are applied after
// the connection string's, so they may add e.g. WithReverseProxy.
func NewClientFromConnectionString(cs string, opts ...Option) (*Client, error) {
	parsed, err := ParseConnectionString(cs)
	if err != nil {
		return nil, err
	}
	all := make([]Option, 0, len(opts)+1)
	all = append(all, WithAccessKey(parsed.AccessKey))
	all = append(all, opts...)
	return NewClient(parsed.Endpoint, all...)
}

// httpDoer sends one request: the *http.Client of WithHTTPClient, or
// transportDoer.
type httpDoer interface {
	Do(req *http.Request) (*http.Response, error)
	CloseIdleConnections()
}

func newTransport(maxConns int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = maxConns
	tr.MaxIdleConnsPerHost = maxConns
	tr.MaxIdleConns = max(tr.MaxIdleConns, maxConns)
	return tr
}

// transportDoer hands requests straight to the client's own transport. It
// behaves as an http.Client without cookie jar or timeout whose
// CheckRedirect returns http.ErrUseLastResponse (a redirect would carry a
// token signed for another URL, so the 3xx is reported, not followed), and
// skips the copies of the header and URL that http.Client.Do makes for
// every request in case it redirects.
type transportDoer struct{ tr *http.Transport }

// Do sends req; errors are *url.Error, as http.Client.Do returns them.
func (d transportDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.tr.RoundTrip(req)
	if err != nil {
		return nil, &url.Error{Op: urlErrorOp(req.Method), URL: req.URL.String(), Err: err}
	}
	return resp, nil
}

func (d transportDoer) CloseIdleConnections() { d.tr.CloseIdleConnections() }

// urlErrorOp is the Op of a *url.Error for method, as net/http spells it
// ("Post"); the client always names a method.
func urlErrorOp(method string) string {
	return method[:1] + strings.ToLower(method[1:])
}

// normalizeEndpoint checks an http(s) URL with a host and no query, and
// returns it without a trailing "/".
func normalizeEndpoint(name, raw string, insecure bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %s: not a URL", ErrInvalidOption, name)
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: %s: must be an http(s) URL with a host", ErrInvalidOption, name)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: %s: must not have user info, query or fragment", ErrInvalidOption, name)
	}
	if scheme == "http" && !insecure && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("%w: %s: plain http is allowed only for loopback hosts (see WithInsecureHTTP)", ErrInvalidOption, name)
	}
	u.Scheme = scheme
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Endpoint returns the service endpoint without a trailing "/".
func (c *Client) Endpoint() string { return c.endpoint }

// Hub returns the client for hub name, validating the name against the
// service's pattern. HubClients are cached, so calling Hub on every message
// is cheap.
func (c *Client) Hub(name string) (*HubClient, error) {
	if h, ok := c.hubs.Load(name); ok {
		return h.(*HubClient), nil
	}
	if r := wpsname.HubReason(name); r != "" {
		return nil, &ValidationError{Op: "hub", Field: "hub", Reason: r}
	}
	h := &HubClient{c: c, name: name, path: "/api/hubs/" + string(encodeURIComponent(nil, name))}
	if c.hubCount.Load() < maxCachedHubs {
		if prev, loaded := c.hubs.LoadOrStore(name, h); loaded {
			return prev.(*HubClient), nil
		}
		c.hubCount.Add(1)
	}
	return h, nil
}

// ServiceStatus reports whether the service is healthy (HEAD /api/health
// answers 200). Any other answer returns false and a *StatusError.
func (c *Client) ServiceStatus(ctx context.Context) (bool, error) {
	u := c.newURL("")
	u.lit("/api/health")
	if _, err := c.do(ctx, "serviceStatus", http.MethodHead, u, nil, "", nil, http.StatusOK, 0); err != nil {
		return false, err
	}
	return true, nil
}

// CloseIdleConnections closes idle connections of the underlying transport.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// urlBuf builds a request URL (path and query) in a pooled buffer.
type urlBuf struct {
	b        []byte
	hasQuery bool
	base     int // len(c.endpoint)
}

var urlPool = sync.Pool{New: func() any { return &urlBuf{b: make([]byte, 0, 256)} }}

// newURL starts "<endpoint><hubPath>".
func (c *Client) newURL(hubPath string) *urlBuf {
	u := urlPool.Get().(*urlBuf)
	u.b = append(append(u.b[:0], c.endpoint...), hubPath...)
	u.hasQuery = false
	u.base = len(c.endpoint)
	return u
}

func (u *urlBuf) lit(s string) *urlBuf { u.b = append(u.b, s...); return u }
func (u *urlBuf) seg(s string) *urlBuf { u.b = encodeURIComponent(u.b, s); return u }

// param appends "&key=value" with the value encoded.
func (u *urlBuf) param(key, value string) *urlBuf {
	u.b = append(u.b, '&')
	u.b = append(u.b, key...)
	u.b = append(u.b, '=')
	u.b = encodeURIComponent(u.b, value)
	return u
}

func (u *urlBuf) params(key string, values []string) *urlBuf {
	for _, v := range values {
		u.param(key, v)
	}
	return u
}

// endPath appends the api-version query, which always comes first.
func (c *Client) endPath(u *urlBuf) *urlBuf {
	u.b = append(u.b, c.apiQuery...)
	u.hasQuery = true
	return u
}

// finish returns the service URL (the JWT aud) and the URL the request is
// sent to, and recycles the buffer.
func (c *Client) finish(u *urlBuf) (aud, target string) {
	if !u.hasQuery {
		c.endPath(u)
	}
	aud = string(u.b)
	if c.requestURL == c.endpoint {
		target = aud
	} else {
		target = c.requestURL + aud[u.base:]
	}
	if cap(u.b) <= 4096 {
		urlPool.Put(u)
	}
	return aud, target
}

// do performs one request. want is the success status; alt, when non-zero,
// is a second accepted status (404 for the exists checks). On success with
// out != nil the JSON body is decoded into out.
func (c *Client) do(ctx context.Context, op, method string, u *urlBuf, body []byte, ct ContentType, out any, want, alt int) (int, error) {
	aud, target := c.finish(u)
	return c.doURL(ctx, op, method, aud, target, body, ct, out, want, alt)
}

func (c *Client) doURL(ctx context.Context, op, method, aud, target string, body []byte, ct ContentType, out any, want, alt int) (int, error) {
	start := time.Now()
	reqCtx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(reqCtx, method, target, rd)
	if err != nil {
		return 0, fmt.Errorf("wps: %s: build request: %w", op, err)
	}
	authz, err := c.auth.authorization(reqCtx, aud)
	if err != nil {
		return 0, fmt.Errorf("wps: %s: %w", op, err)
	}
	h := req.Header
	h["Authorization"] = authz
	h["Accept"] = acceptJSON
	h["User-Agent"] = c.userAgent
	switch ct {
	case "":
	case ContentJSON:
		h["Content-Type"] = contentJSONHdr
	case ContentText:
		h["Content-Type"] = contentTextHdr
	case ContentBinary:
		h["Content-Type"] = contentBinHdr
	default:
		h.Set("Content-Type", string(ct))
	}
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(h))

	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("wps: %s: request timed out after %s: %w", op, c.timeout, err)
		} else {
			err = fmt.Errorf("wps: %s: %w", op, err)
		}
		c.logFailure(ctx, op, 0, start, err)
		return 0, err
	}
	defer func() {
		// Drain (bounded) so the connection can be reused. Most answers
		// (202, 204) have no body: skip the reader then.
		if resp.ContentLength != 0 {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		}
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != want && (alt == 0 || resp.StatusCode != alt) {
		err := c.statusError(op, resp)
		c.logFailure(ctx, op, resp.StatusCode, start, err)
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode == want {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("wps: %s: decode response: %w", op, err)
		}
	}
	return resp.StatusCode, nil
}

func (c *Client) logFailure(ctx context.Context, op string, status int, start time.Time, err error) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "wps request failed",
		slog.String("op", op), slog.Int("status", status),
		slog.Duration("elapsed", time.Since(start)), slog.String("class", Classify(err).String()),
		slog.String("error", err.Error()))
}

// statusError builds a *StatusError from an unexpected response.
func (c *Client) statusError(op string, resp *http.Response) *StatusError {
	se := &StatusError{Op: op, StatusCode: resp.StatusCode, Code: resp.Header.Get("X-Ms-Error-Code")}
	se.RetryAfter, se.hasRetryAfter = parseRetryAfter(resp.Header, c.now())
	if resp.Request != nil && resp.Request.Method == http.MethodHead {
		return se
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // best effort: the status is the error
	var detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &detail) == nil {
		if se.Code == "" {
			se.Code = detail.Code
		}
		se.Message = detail.Message
	} else if text := strings.TrimSpace(string(raw)); text != "" && !strings.HasPrefix(text, "<") {
		se.Message = text
	}
	se.Message = truncate(strings.Join(strings.Fields(se.Message), " "), 512)
	se.Code = truncate(se.Code, 128)
	return se
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
