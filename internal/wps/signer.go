package wps

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/golang-jwt/jwt/v5"
)

// authorizer produces the Authorization header value for a request whose
// full service URL (the JWT aud) is aud. The returned slice is shared and
// must not be modified.
type authorizer interface {
	authorization(ctx context.Context, aud string) ([]string, error)
}

// keySigner signs HS256 JWTs with the access key, cached per aud.
type keySigner struct {
	key           []byte
	ttl           time.Duration
	refreshBefore time.Duration
	now           func() time.Time
	cache         *tokenCache // nil: sign every request
	signs         atomic.Int64
}

func newKeySigner(key string, ttl time.Duration, cache bool, now func() time.Time) *keySigner {
	s := &keySigner{key: []byte(key), ttl: ttl, now: now, refreshBefore: 5 * time.Minute}
	if ttl < 10*time.Minute {
		s.refreshBefore = ttl / 2
	}
	if cache {
		s.cache = newTokenCache(maxTokenCacheEntries)
	}
	return s
}

func (s *keySigner) authorization(_ context.Context, aud string) ([]string, error) {
	now := s.now()
	if s.cache != nil {
		if v, ok := s.cache.get(aud, now.UnixNano()); ok {
			return v, nil
		}
	}
	tok, err := s.sign(aud, now)
	if err != nil {
		return nil, err
	}
	v := []string{"Bearer " + tok}
	if s.cache != nil {
		s.cache.put(aud, v, now.Add(s.ttl-s.refreshBefore).UnixNano(), now.UnixNano())
	}
	return v, nil
}

// sign returns a JWT with exactly the claims aud, exp and iat.
func (s *keySigner) sign(aud string, now time.Time) (string, error) {
	s.signs.Add(1)
	claims := &restClaims{Aud: aud, Iat: now.Unix(), Exp: now.Add(s.ttl).Unix()}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return tok, nil
}

// restClaims is the claim set of a REST access token. Unlike
// jwt.RegisteredClaims it serialises aud as a string, as both official SDKs do.
type restClaims struct {
	Aud string `json:"aud"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

func (c *restClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.Exp, 0)), nil
}
func (c *restClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.Iat, 0)), nil
}
func (c *restClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *restClaims) GetIssuer() (string, error)              { return "", nil }
func (c *restClaims) GetSubject() (string, error)             { return "", nil }
func (c *restClaims) GetAudience() (jwt.ClaimStrings, error)  { return jwt.ClaimStrings{c.Aud}, nil }

// tokenCache maps aud to a cached Authorization header value. It holds at
// most about max entries (concurrent inserts may overshoot by a few): an
// insert into a full cache first sweeps out expired entries and, if that is
// not enough, drops arbitrary entries until half the bound is left, so a
// flood of distinct URLs cannot grow memory without bound.
type tokenCache struct {
	m     sync.Map // string -> *cachedToken
	size  atomic.Int64
	max   int64
	sweep sync.Mutex
}

type cachedToken struct {
	header    []string
	refreshAt int64 // unix nanos
}

func newTokenCache(max int) *tokenCache { return &tokenCache{max: int64(max)} }

func (c *tokenCache) get(aud string, now int64) ([]string, bool) {
	v, ok := c.m.Load(aud)
	if !ok {
		return nil, false
	}
	e := v.(*cachedToken)
	if now >= e.refreshAt {
		return nil, false
	}
	return e.header, true
}

func (c *tokenCache) put(aud string, header []string, refreshAt, now int64) {
	if c.size.Load() >= c.max {
		c.evict(now)
	}
	if _, loaded := c.m.Swap(aud, &cachedToken{header: header, refreshAt: refreshAt}); !loaded {
		c.size.Add(1)
	}
}

func (c *tokenCache) evict(now int64) {
	if !c.sweep.TryLock() {
		return // another goroutine is sweeping
	}
	defer c.sweep.Unlock()
	c.m.Range(func(k, v any) bool {
		if now >= v.(*cachedToken).refreshAt {
			if _, ok := c.m.LoadAndDelete(k); ok {
				c.size.Add(-1)
			}
		}
		return true
	})
	c.m.Range(func(k, _ any) bool {
		if c.size.Load() <= c.max/2 {
			return false
		}
		if _, ok := c.m.LoadAndDelete(k); ok {
			c.size.Add(-1)
		}
		return true
	})
}

func (c *tokenCache) len() int { return int(c.size.Load()) }

// credentialAuth gets Entra ID bearer tokens and reuses one until 5 minutes
// before it expires (or its RefreshOn, when earlier).
type credentialAuth struct {
	cred azcore.TokenCredential
	now  func() time.Time
	mu   sync.Mutex // serialises GetToken calls
	cur  atomic.Pointer[cachedToken]
}

var entraScopes = []string{entraScope}

func (a *credentialAuth) authorization(ctx context.Context, _ string) ([]string, error) {
	if t := a.cur.Load(); t != nil && a.now().UnixNano() < t.refreshAt {
		return t.header, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if t := a.cur.Load(); t != nil && now.UnixNano() < t.refreshAt {
		return t.header, nil
	}
	at, err := a.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: entraScopes})
	if err != nil {
		return nil, &credentialError{err: err}
	}
	refresh := at.ExpiresOn.Add(-5 * time.Minute)
	if !at.RefreshOn.IsZero() && at.RefreshOn.Before(refresh) {
		refresh = at.RefreshOn
	}
	t := &cachedToken{header: []string{"Bearer " + at.Token}, refreshAt: refresh.UnixNano()}
	a.cur.Store(t)
	return t.header, nil
}
