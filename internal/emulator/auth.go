package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// clockSkew is the leeway applied to exp, nbf and iat.
const clockSkew = 5 * time.Minute

// tokenCacheSize bounds the verified-token cache; the cache is emptied when it fills up.
const tokenCacheSize = 8192

var errUnauthorized = errors.New("unauthorized")

// stringList is a JWT claim that may be a single string or an array of strings.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or an array of strings: %w", err)
	}
	*s = many
	return nil
}

// tokenClaims is the claim set of REST and client tokens.
type tokenClaims struct {
	jwt.RegisteredClaims
	Role   stringList `json:"role,omitempty"`
	Groups stringList `json:"webpubsub.group,omitempty"`
}

// verifiedToken is what the cache remembers about a token whose signature and claims checked out.
type verifiedToken struct {
	claims  *tokenClaims
	audHost string // lowercased, default port removed
	audPath string // percent-decoded, trailing slash removed
	exp     time.Time
}

// authenticator verifies HS256 tokens signed with the access key and signs client tokens.
type authenticator struct {
	key    []byte
	parser *jwt.Parser

	mu    sync.Mutex
	cache map[string]*verifiedToken
}

func newAuthenticator(accessKey string) *authenticator {
	return &authenticator{
		key: []byte(accessKey),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithLeeway(clockSkew),
			jwt.WithExpirationRequired(),
		),
		cache: make(map[string]*verifiedToken),
	}
}

// verify checks the token's signature, expiry and audience. The audience must name host (compared
// case-insensitively, default ports ignored) and path (percent-decoded, compared exactly, trailing "/" ignored);
// its scheme and query are ignored. When host is "" only the path is compared. Errors never contain the token.
func (a *authenticator) verify(token, host, path string, now time.Time) (*tokenClaims, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no access token", errUnauthorized)
	}
	a.mu.Lock()
	vt := a.cache[token]
	a.mu.Unlock()
	if vt == nil {
		var claims tokenClaims
		if _, err := a.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return a.key, nil }); err != nil {
			return nil, fmt.Errorf("%w: %w", errUnauthorized, err)
		}
		if len(claims.Audience) != 1 {
			return nil, fmt.Errorf("%w: token must have exactly one audience", errUnauthorized)
		}
		audHost, audPath, err := splitAudience(claims.Audience[0])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errUnauthorized, err)
		}
		vt = &verifiedToken{claims: &claims, audHost: audHost, audPath: audPath, exp: claims.ExpiresAt.Time}
		a.mu.Lock()
		if len(a.cache) >= tokenCacheSize {
			clear(a.cache)
		}
		a.cache[token] = vt
		a.mu.Unlock()
	} else if now.After(vt.exp.Add(clockSkew)) {
		return nil, fmt.Errorf("%w: token is expired", errUnauthorized)
	}
	if vt.audPath != strings.TrimSuffix(path, "/") {
		return nil, fmt.Errorf("%w: audience path does not match the request path", errUnauthorized)
	}
	if host != "" && vt.audHost != normalizeHost(host) {
		return nil, fmt.Errorf("%w: audience host does not match the request host", errUnauthorized)
	}
	return vt.claims, nil
}

func splitAudience(aud string) (host, path string, err error) {
	u, err := url.Parse(aud)
	if err != nil || u.Host == "" {
		return "", "", errors.New("audience is not an absolute URL")
	}
	return normalizeHost(u.Host), strings.TrimSuffix(u.Path, "/"), nil
}

func normalizeHost(h string) string {
	h = strings.ToLower(h)
	if host, port, err := net.SplitHostPort(h); err == nil && (port == "80" || port == "443") {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return h
}

// signClientToken signs a client access token with the claim set the SDKs produce locally.
func (a *authenticator) signClientToken(aud, userID string, roles, groups []string, ttl time.Duration, now time.Time) (string, error) {
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Audience:  jwt.ClaimStrings{aud},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			Subject:   userID,
		},
		Role:   roles,
		Groups: groups,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("sign client token: %w", err)
	}
	return s, nil
}

// bearerToken returns the token of an "Authorization: Bearer ..." header value, or "".
func bearerToken(h string) string {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
