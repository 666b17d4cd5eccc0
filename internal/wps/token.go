package wps

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wps-bridge/bridge/internal/wpsname"
)

// ClientProtocol selects the client endpoint a client access URL points to.
type ClientProtocol string

// Client protocols; matched case-insensitively, "" means ProtocolDefault.
const (
	ProtocolDefault  ClientProtocol = "Default"  // /client/hubs/{hub}
	ProtocolMQTT     ClientProtocol = "MQTT"     // /clients/mqtt/hubs/{hub}
	ProtocolSocketIO ClientProtocol = "SocketIO" // /clients/socketio/hubs/{hub}
)

// TokenOptions describe a client access token. The zero value is an
// anonymous Default-protocol token valid for 60 minutes.
type TokenOptions struct {
	UserID   string         // "sub" claim; "" = anonymous
	Roles    []string       // "role" claim, e.g. "webpubsub.joinLeaveGroup.g1"
	Groups   []string       // "webpubsub.group": groups joined at connect
	Lifetime time.Duration  // default 60m, at least 1m; REST rounds down to minutes
	Protocol ClientProtocol // default ProtocolDefault
	// JWTHeaders are merged into a locally signed token's header (e.g.
	// "kid"); "alg" cannot be set. The REST path ignores them.
	JWTHeaders map[string]any
}

// ClientAccess is what a WebSocket client needs to connect.
type ClientAccess struct {
	BaseURL string // e.g. wss://host/client/hubs/chat
	Token   string // the client access JWT
	URL     string // BaseURL + "?access_token=" + Token
}

type tokenParams struct {
	minutes  int64
	lifetime time.Duration
	protocol ClientProtocol
	path     string
}

func checkToken(op string, o *TokenOptions) (tokenParams, error) {
	p := tokenParams{minutes: 60, lifetime: time.Hour, protocol: ProtocolDefault, path: "/client/hubs/"}
	if o == nil {
		return p, nil
	}
	var err error
	if p.minutes, err = lifetimeMinutes(op, o.Lifetime); err != nil {
		return p, err
	}
	if o.Lifetime != 0 {
		p.lifetime = o.Lifetime
	}
	switch {
	case o.Protocol == "" || strings.EqualFold(string(o.Protocol), string(ProtocolDefault)):
	case strings.EqualFold(string(o.Protocol), string(ProtocolMQTT)):
		p.protocol, p.path = ProtocolMQTT, "/clients/mqtt/hubs/"
	case strings.EqualFold(string(o.Protocol), string(ProtocolSocketIO)):
		p.protocol, p.path = ProtocolSocketIO, "/clients/socketio/hubs/"
	default:
		return p, &ValidationError{Op: op, Field: "protocol", Reason: "must be Default, MQTT or SocketIO"}
	}
	for _, r := range o.Roles {
		if r == "" {
			return p, &ValidationError{Op: op, Field: "roles", Reason: "must not contain empty roles"}
		}
	}
	for _, g := range o.Groups {
		if r := wpsname.GroupReason(g); r != "" {
			return p, &ValidationError{Op: op, Field: "groups", Reason: "each group " + r}
		}
	}
	if _, ok := o.JWTHeaders["alg"]; ok {
		return p, &ValidationError{Op: op, Field: "jwtHeaders", Reason: `must not set "alg"`}
	}
	return p, nil
}

// GenerateClientToken asks the service to sign a client access token (POST
// /api/hubs/{hub}/:generateToken, 200 {"token": ...}). It works with both
// credentials; GetClientAccessToken signs locally when it can.
func (h *HubClient) GenerateClientToken(ctx context.Context, o *TokenOptions) (string, error) {
	const op = "generateClientToken"
	p, err := checkToken(op, o)
	if err != nil {
		return "", err
	}
	return h.generateToken(ctx, op, o, p)
}

func (h *HubClient) generateToken(ctx context.Context, op string, o *TokenOptions, p tokenParams) (string, error) {
	u := h.c.endPath(h.c.newURL(h.path).lit("/:generateToken"))
	if o == nil {
		o = &TokenOptions{}
	}
	if o.UserID != "" {
		u.param("userId", o.UserID)
	}
	u.params("role", o.Roles)
	u.lit("&minutesToExpire=").lit(strconv.FormatInt(p.minutes, 10))
	u.params("group", o.Groups)
	if p.protocol != ProtocolDefault {
		u.param("clientType", string(p.protocol))
	}
	var resp struct {
		Token string `json:"token"`
	}
	if _, err := h.c.do(ctx, op, http.MethodPost, u, nil, "", &resp, http.StatusOK, 0); err != nil {
		return "", err
	}
	if resp.Token == "" {
		return "", fmt.Errorf("wps: %s: response has no token", op)
	}
	return resp.Token, nil
}

// GetClientAccessToken returns a client access token and URL for this hub.
// With an access key the token is signed locally (HS256; claims aud, iat,
// exp, and sub, role, webpubsub.group when given); with an Entra ID
// credential it comes from GenerateClientToken. The URL uses the service
// endpoint (lowercased, http→ws, https→wss), not a reverse proxy.
func (h *HubClient) GetClientAccessToken(ctx context.Context, o *TokenOptions) (*ClientAccess, error) {
	const op = "getClientAccessToken"
	p, err := checkToken(op, o)
	if err != nil {
		return nil, err
	}
	httpBase := strings.ToLower(h.c.endpoint) + p.path + h.name
	var tok string
	if h.c.signer != nil {
		tok, err = h.c.signClientToken(op, httpBase, o, p)
	} else {
		tok, err = h.generateToken(ctx, op, o, p)
	}
	if err != nil {
		return nil, err
	}
	base := "ws" + strings.TrimPrefix(httpBase, "http")
	return &ClientAccess{BaseURL: base, Token: tok, URL: base + "?access_token=" + tok}, nil
}

func (c *Client) signClientToken(op, aud string, o *TokenOptions, p tokenParams) (string, error) {
	now := c.now()
	claims := jwt.MapClaims{
		"aud": aud,
		"iat": now.Unix(),
		"exp": now.Add(p.lifetime).Unix(),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	if o != nil {
		if o.UserID != "" {
			claims["sub"] = o.UserID
		}
		if len(o.Roles) > 0 {
			claims["role"] = o.Roles
		}
		if len(o.Groups) > 0 {
			claims["webpubsub.group"] = o.Groups
		}
		for k, v := range o.JWTHeaders {
			t.Header[k] = v
		}
	}
	s, err := t.SignedString(c.signer.key)
	if err != nil {
		return "", fmt.Errorf("wps: %s: sign client token: %w", op, err)
	}
	return s, nil
}
