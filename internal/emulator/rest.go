package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wps-bridge/bridge/internal/emulator/filter"
)

// SupportedAPIVersions lists the api-version values the REST API accepts, oldest first.
var SupportedAPIVersions = []string{"2021-10-01", "2022-11-01", "2023-07-01", "2024-01-01", "2024-12-01"}

var supportedVersionsHeader = strings.Join(SupportedAPIVersions, ", ")

// maxBody is the largest REST request body accepted (413 above).
const maxBody = 1 << 20

type opID int

const (
	opHealth opID = iota
	opSendToAll
	opSendToGroup
	opSendToUser
	opSendToConnection
	opCloseAllConnections
	opCloseGroupConnections
	opCloseUserConnections
	opCloseConnection
	opConnectionExists
	opGroupExists
	opUserExists
	opAddConnectionToGroup
	opRemoveConnectionFromGroup
	opRemoveConnectionFromAllGroups
	opAddUserToGroup
	opRemoveUserFromGroup
	opRemoveUserFromAllGroups
	opAddConnectionsToGroups
	opRemoveConnectionsFromGroups
	opListConnectionsInGroup
	opGrantPermission
	opRevokePermission
	opCheckPermission
	opGenerateClientToken
	opCount
)

var opNames = [opCount]string{
	"GetServiceStatus", "SendToAll", "SendToGroup", "SendToUser", "SendToConnection",
	"CloseAllConnections", "CloseGroupConnections", "CloseUserConnections", "CloseConnection",
	"ConnectionExists", "GroupExists", "UserExists",
	"AddConnectionToGroup", "RemoveConnectionFromGroup", "RemoveConnectionFromAllGroups",
	"AddUserToGroup", "RemoveUserFromGroup", "RemoveUserFromAllGroups",
	"AddConnectionsToGroups", "RemoveConnectionsFromGroups", "ListConnectionsInGroup",
	"GrantPermission", "RevokePermission", "CheckPermission", "GenerateClientToken",
}

func (e *Emulator) routes() *http.ServeMux {
	m := http.NewServeMux()
	const h = "/api/hubs/{hub}"
	const perm = h + "/permissions/{permission}/connections/{connectionId}"
	for _, r := range []struct {
		pattern string
		op      opID
		fn      func(*restCtx)
	}{
		{"HEAD /api/health", opHealth, func(x *restCtx) { x.reply(http.StatusOK) }},
		{"POST " + h + "/:send", opSendToAll, func(x *restCtx) { x.send(scope{all: true}, true, true) }},
		{"POST " + h + "/groups/{group}/:send", opSendToGroup, func(x *restCtx) { x.send(scope{group: x.group}, true, true) }},
		{"POST " + h + "/users/{userId}/:send", opSendToUser, func(x *restCtx) { x.send(scope{user: x.path("userId")}, false, true) }},
		{"POST " + h + "/connections/{connectionId}/:send", opSendToConnection, func(x *restCtx) {
			x.send(scope{connectionID: x.path("connectionId")}, false, false)
		}},
		{"POST " + h + "/:closeConnections", opCloseAllConnections, func(x *restCtx) { x.close(scope{all: true}, true) }},
		{"POST " + h + "/groups/{group}/:closeConnections", opCloseGroupConnections, func(x *restCtx) { x.close(scope{group: x.group}, true) }},
		{"POST " + h + "/users/{userId}/:closeConnections", opCloseUserConnections, func(x *restCtx) { x.close(scope{user: x.path("userId")}, true) }},
		{"DELETE " + h + "/connections/{connectionId}", opCloseConnection, func(x *restCtx) {
			x.close(scope{connectionID: x.path("connectionId")}, false)
		}},
		{"HEAD " + h + "/connections/{connectionId}", opConnectionExists, func(x *restCtx) { x.exists(x.hub.conn(x.path("connectionId")) != nil) }},
		{"HEAD " + h + "/groups/{group}", opGroupExists, func(x *restCtx) { x.exists(x.hub.groupExists(x.group)) }},
		{"HEAD " + h + "/users/{userId}", opUserExists, func(x *restCtx) { x.exists(x.hub.userExists(x.path("userId"))) }},
		{"PUT " + h + "/groups/{group}/connections/{connectionId}", opAddConnectionToGroup, func(x *restCtx) {
			c := x.hub.conn(x.path("connectionId"))
			if c == nil {
				x.fail(http.StatusNotFound, "ConnectionNotFound", "connection does not exist")
				return
			}
			x.hub.join(c, x.group)
			x.reply(http.StatusOK)
		}},
		{"DELETE " + h + "/groups/{group}/connections/{connectionId}", opRemoveConnectionFromGroup, func(x *restCtx) {
			if c := x.hub.conn(x.path("connectionId")); c != nil {
				x.hub.leave(c, x.group)
			}
			x.reply(http.StatusNoContent)
		}},
		{"DELETE " + h + "/connections/{connectionId}/groups", opRemoveConnectionFromAllGroups, func(x *restCtx) {
			if c := x.hub.conn(x.path("connectionId")); c != nil {
				x.hub.removeConnFromAllGroups(c)
			}
			x.reply(http.StatusNoContent)
		}},
		{"PUT " + h + "/users/{userId}/groups/{group}", opAddUserToGroup, func(x *restCtx) {
			x.hub.addUserToGroup(x.path("userId"), x.group)
			x.reply(http.StatusOK)
		}},
		{"DELETE " + h + "/users/{userId}/groups/{group}", opRemoveUserFromGroup, func(x *restCtx) {
			x.hub.removeUserFromGroups(x.path("userId"), []string{x.group})
			x.reply(http.StatusNoContent)
		}},
		{"DELETE " + h + "/users/{userId}/groups", opRemoveUserFromAllGroups, func(x *restCtx) {
			x.hub.removeUserFromGroups(x.path("userId"), nil)
			x.reply(http.StatusNoContent)
		}},
		{"POST " + h + "/:addToGroups", opAddConnectionsToGroups, func(x *restCtx) { x.changeGroups(true) }},
		{"POST " + h + "/:removeFromGroups", opRemoveConnectionsFromGroups, func(x *restCtx) { x.changeGroups(false) }},
		{"GET " + h + "/groups/{group}/connections", opListConnectionsInGroup, (*restCtx).listConnections},
		{"PUT " + perm, opGrantPermission, func(x *restCtx) { x.permission(true) }},
		{"DELETE " + perm, opRevokePermission, func(x *restCtx) { x.permission(false) }},
		{"HEAD " + perm, opCheckPermission, (*restCtx).checkPermission},
		{"POST " + h + "/:generateToken", opGenerateClientToken, (*restCtx).generateToken},
	} {
		m.Handle(r.pattern, e.api(r.op, r.fn))
	}
	m.HandleFunc("GET /client/hubs/{hub}", e.handleClient)
	m.HandleFunc("GET /client", e.handleClient)
	e.adminRoutes(m)
	return m
}

// restCtx carries one REST request through validation and its operation.
type restCtx struct {
	e      *Emulator
	w      http.ResponseWriter
	r      *http.Request
	op     opID
	q      url.Values
	hub    *hub
	group  string
	body   []byte
	status int
}

func (x *restCtx) path(name string) string { return x.r.PathValue(name) }

// api wraps an operation with the checks every REST call gets, in this order: api-version (400), token (401),
// hub and group names (400), injected faults (latency, 429, 503), request body (413); then the operation runs
// and the OnRequest hook sees the result.
func (e *Emulator) api(op opID, fn func(*restCtx)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("api-supported-versions", supportedVersionsHeader)
		x := &restCtx{e: e, w: w, r: r, op: op, q: r.URL.Query()}
		v, hasVersion := x.q["api-version"]
		switch {
		case !hasVersion && op != opHealth:
			x.fail(http.StatusBadRequest, "MissingApiVersionParameter", "the api-version query parameter is required")
			return
		case hasVersion && (len(v) != 1 || !slices.Contains(SupportedAPIVersions, v[0])):
			x.fail(http.StatusBadRequest, "UnsupportedApiVersion",
				fmt.Sprintf("api-version %q is not supported; use one of %s", strings.Join(v, ","), supportedVersionsHeader))
			return
		}
		if op == opHealth {
			x.reply(http.StatusOK)
			return
		}
		if _, err := e.auth.verify(bearerToken(r.Header.Get("Authorization")), r.Host, r.URL.Path, time.Now()); err != nil {
			e.stats.rejected401.Add(1)
			e.log.Info("REST request refused", "op", opNames[op], "error", err)
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			x.fail(http.StatusUnauthorized, "Unauthorized", "invalid or missing access token")
			return
		}
		e.opCounters[op].Add(1)
		defer x.notify()
		hubName := r.PathValue("hub")
		if err := validateHub(hubName); err != nil {
			x.fail(http.StatusBadRequest, "InvalidHubName", err.Error())
			return
		}
		if strings.Contains(r.Pattern, "{group}") {
			g := r.PathValue("group")
			if err := validateGroup(g); err != nil {
				x.fail(http.StatusBadRequest, "InvalidGroupName", err.Error())
				return
			}
			x.group = g
		}
		if !x.injectFaults(hubName) {
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			b, err := readBody(r.Body, r.ContentLength, maxBody)
			if errors.Is(err, errBodyTooLarge) {
				x.fail(http.StatusRequestEntityTooLarge, "PayloadTooLarge", fmt.Sprintf("request body exceeds %d bytes", maxBody))
				return
			}
			if err != nil {
				x.fail(http.StatusBadRequest, "InvalidBody", err.Error())
				return
			}
			x.body = b
		}
		x.hub = e.hub(hubName, true)
		fn(x)
	})
}

// injectFaults applies the hub's faults; it reports false when it answered the request itself.
func (x *restCtx) injectFaults(hubName string) bool {
	f := x.e.faultsFor(hubName)
	if f.isZero() {
		return true
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-x.r.Context().Done():
			t.Stop()
			x.status = 499 // client went away; nothing is written
			return false
		}
	}
	p := rand.Float64()
	switch {
	case p < f.Rate429:
		x.e.stats.faults.Add(1)
		if f.RetryAfter > 0 {
			x.w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds()))))
		}
		x.fail(http.StatusTooManyRequests, "TooManyRequests", "injected fault: too many requests")
		return false
	case p < f.Rate429+f.Rate503:
		x.e.stats.faults.Add(1)
		x.fail(http.StatusServiceUnavailable, "ServiceUnavailable", "injected fault: service unavailable")
		return false
	}
	return true
}

func (x *restCtx) notify() {
	fn := x.e.onRequest.Load()
	if fn == nil {
		return
	}
	(*fn)(Request{
		Op:          opNames[x.op],
		Method:      x.r.Method,
		Hub:         x.r.PathValue("hub"),
		RawPath:     x.r.URL.EscapedPath(),
		RawQuery:    x.r.URL.RawQuery,
		ContentType: x.r.Header.Get("Content-Type"),
		Body:        x.body,
		Status:      x.status,
		At:          time.Now(),
	})
}

func (x *restCtx) reply(status int) {
	x.status = status
	x.w.WriteHeader(status)
}

func (x *restCtx) replyJSON(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		x.fail(http.StatusInternalServerError, "InternalServerError", "encode response: "+err.Error())
		return
	}
	x.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	x.status = status
	x.w.WriteHeader(status)
	_, _ = x.w.Write(b) // the client may have gone away; nothing to do about it
}

// fail answers with an error code header and, except for HEAD, a JSON ErrorDetail body.
func (x *restCtx) fail(status int, code, msg string) {
	x.w.Header().Set("x-ms-error-code", code)
	x.status = status
	if x.r.Method == http.MethodHead {
		x.w.WriteHeader(status)
		return
	}
	b, _ := json.Marshal(map[string]string{"code": code, "message": msg}) // strings only
	x.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	x.w.WriteHeader(status)
	_, _ = x.w.Write(b)
}

func (x *restCtx) exists(ok bool) {
	if ok {
		x.reply(http.StatusOK)
		return
	}
	x.reply(http.StatusNotFound)
}

var hubPattern = regexp.MustCompile("^[A-Za-z][A-Za-z0-9_`,.\\[\\]]{0,127}$")

func validateHub(h string) error {
	if !hubPattern.MatchString(h) {
		return fmt.Errorf("invalid hub name %q: 1-128 characters, a letter first, then letters, digits and _`,.[]", h)
	}
	return nil
}

func validateGroup(g string) error {
	n := utf8.RuneCountInString(g)
	switch {
	case n == 0 || n > 1024:
		return fmt.Errorf("invalid group name: length %d is outside 1..1024", n)
	case strings.ContainsAny(g, "\r\n"):
		return errors.New("invalid group name: it contains a line break")
	case strings.TrimFunc(g, unicode.IsSpace) == "":
		return errors.New("invalid group name: it is whitespace only")
	}
	return nil
}

// intParam parses an optional integer query parameter within lo..hi.
func (x *restCtx) intParam(name string, lo, hi, def int64) (int64, bool) {
	s := x.q.Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		x.fail(http.StatusBadRequest, "InvalidParameter", fmt.Sprintf("%s must be an integer within %d..%d", name, lo, hi))
		return 0, false
	}
	return n, true
}

// parseFilter parses an OData filter; "" gives nil (everything matches).
func (x *restCtx) parseFilter(src string) (*filter.Expr, bool) {
	if src == "" {
		return nil, true
	}
	f, err := filter.Parse(src)
	if err != nil {
		x.fail(http.StatusBadRequest, "InvalidFilter", fmt.Sprintf("Invalid syntax for '%s': %v (Parameter 'filter')", src, err))
		return nil, false
	}
	return f, true
}

// dataTypeOf maps a send's Content-Type to the delivered dataType.
func dataTypeOf(contentType string) (string, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", fmt.Errorf("invalid Content-Type %q", contentType)
	}
	switch mt {
	case "application/json":
		return "json", nil
	case "text/plain":
		return "text", nil
	case "application/octet-stream":
		return "binary", nil
	}
	return "", fmt.Errorf("Content-Type %q is not one of application/json, text/plain, application/octet-stream", mt)
}

func (x *restCtx) send(sc scope, allowExcluded, allowFilter bool) {
	if _, ok := x.intParam("messageTtlSeconds", 0, 300, 0); !ok {
		return
	}
	var f *filter.Expr
	if allowFilter {
		var ok bool
		if f, ok = x.parseFilter(x.q.Get("filter")); !ok {
			return
		}
	}
	dataType, err := dataTypeOf(x.r.Header.Get("Content-Type"))
	if err != nil {
		x.fail(http.StatusBadRequest, "InvalidContentType", err.Error())
		return
	}
	if dataType == "json" && !json.Valid(x.body) {
		x.fail(http.StatusBadRequest, "InvalidBody", "the body is not valid JSON although Content-Type is application/json")
		return
	}
	var excluded []string
	if allowExcluded {
		excluded = x.q["excluded"]
	}
	x.e.stats.sendsAccepted.Add(1)
	if !x.e.noFanout {
		targets := x.hub.selectConns(sc, excluded, f)
		x.e.fanout(targets, newDelivery("server", "", "", dataType, x.body))
		x.e.feed.delivery(x.hub.name, sc.String(), "REST "+opNames[x.op], dataType, x.body, len(targets))
	}
	x.reply(http.StatusAccepted)
}

func (sc scope) String() string {
	switch {
	case sc.all:
		return "all"
	case sc.connectionID != "":
		return "connection " + sc.connectionID
	case sc.user != "":
		return "user " + sc.user
	default:
		return "group " + sc.group
	}
}

func (x *restCtx) close(sc scope, allowExcluded bool) {
	var excluded []string
	if allowExcluded {
		excluded = x.q["excluded"]
	}
	reason := x.q.Get("reason")
	for _, c := range x.hub.selectConns(sc, excluded, nil) {
		c.closeGracefully(reason)
	}
	x.reply(http.StatusNoContent)
}

type groupsRequest struct {
	Groups []string `json:"groups"`
	Filter string   `json:"filter,omitempty"`
}

func (x *restCtx) changeGroups(add bool) {
	var req groupsRequest
	dec := json.NewDecoder(bytes.NewReader(x.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		x.fail(http.StatusBadRequest, "InvalidBody", "body must be {\"groups\":[...],\"filter\":\"...\"}: "+err.Error())
		return
	}
	if len(req.Groups) == 0 {
		x.fail(http.StatusBadRequest, "InvalidBody", "groups must list at least one group")
		return
	}
	for _, g := range req.Groups {
		if err := validateGroup(g); err != nil {
			x.fail(http.StatusBadRequest, "InvalidGroupName", err.Error())
			return
		}
	}
	f, ok := x.parseFilter(req.Filter)
	if !ok {
		return
	}
	x.hub.changeGroups(req.Groups, f, add)
	x.reply(http.StatusOK)
}

type groupMember struct {
	ConnectionID string `json:"connectionId"`
	UserID       string `json:"userId,omitempty"`
}

type groupMemberPage struct {
	Value    []groupMember `json:"value"`
	NextLink string        `json:"nextLink,omitempty"`
}

func (x *restCtx) listConnections() {
	pageSize, ok := x.intParam("maxpagesize", 1, 200, 100)
	if !ok {
		return
	}
	top, ok := x.intParam("top", 1, math.MaxInt32, math.MaxInt32)
	if !ok {
		return
	}
	after := ""
	if tok := x.q.Get("continuationToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || !bytes.HasPrefix(b, []byte("after:")) {
			x.fail(http.StatusBadRequest, "InvalidParameter", "continuationToken is not a token this service issued")
			return
		}
		after = string(b[len("after:"):])
	}
	members := x.hub.groupMembers(x.group)
	page := groupMemberPage{Value: []groupMember{}}
	limit := min(pageSize, top)
	rest := 0
	for _, c := range members {
		if c.id <= after {
			continue
		}
		if int64(len(page.Value)) >= limit {
			rest++
			break
		}
		page.Value = append(page.Value, groupMember{ConnectionID: c.id, UserID: c.userID})
	}
	if remaining := top - int64(len(page.Value)); rest > 0 && remaining > 0 {
		last := page.Value[len(page.Value)-1].ConnectionID
		q := url.Values{}
		q.Set("api-version", x.q.Get("api-version"))
		q.Set("maxpagesize", strconv.FormatInt(pageSize, 10))
		if x.q.Has("top") {
			q.Set("top", strconv.FormatInt(remaining, 10))
		}
		q.Set("continuationToken", base64.RawURLEncoding.EncodeToString([]byte("after:"+last)))
		page.NextLink = x.origin() + x.r.URL.EscapedPath() + "?" + q.Encode()
	}
	x.replyJSON(http.StatusOK, page)
}

// origin is the scheme and host the client used.
func (x *restCtx) origin() string {
	scheme := "http"
	if x.r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + x.r.Host
}

func (x *restCtx) permission(grant bool) {
	p, ok := x.permissionName()
	if !ok {
		return
	}
	target := x.q.Get("targetName")
	c := x.hub.conn(x.path("connectionId"))
	if c == nil {
		if grant {
			x.fail(http.StatusNotFound, "ConnectionNotFound", "connection does not exist")
			return
		}
		x.reply(http.StatusNoContent)
		return
	}
	x.hub.setGrant(c, p, target, grant)
	x.e.feed.stateChanged()
	if grant {
		x.reply(http.StatusOK)
		return
	}
	x.reply(http.StatusNoContent)
}

func (x *restCtx) permissionName() (string, bool) {
	switch p := x.path("permission"); p {
	case permSendToGroup, permJoinLeaveGroup:
		return p, true
	default:
		x.fail(http.StatusBadRequest, "InvalidPermission", fmt.Sprintf("permission %q is not sendToGroup or joinLeaveGroup", p))
		return "", false
	}
}

func (x *restCtx) checkPermission() {
	p, ok := x.permissionName()
	if !ok {
		return
	}
	c := x.hub.conn(x.path("connectionId"))
	x.exists(c != nil && x.hub.allowed(c, p, x.q.Get("targetName")))
}

func (x *restCtx) generateToken() {
	minutes, ok := x.intParam("minutesToExpire", 1, math.MaxInt32, 60)
	if !ok {
		return
	}
	path := "/client/hubs/"
	switch ct := x.q.Get("clientType"); {
	case ct == "" || strings.EqualFold(ct, "Default"):
	case strings.EqualFold(ct, "MQTT"):
		path = "/clients/mqtt/hubs/"
	default:
		x.fail(http.StatusBadRequest, "InvalidParameter", fmt.Sprintf("clientType %q is not Default or MQTT", ct))
		return
	}
	for _, g := range x.q["group"] {
		if err := validateGroup(g); err != nil {
			x.fail(http.StatusBadRequest, "InvalidGroupName", err.Error())
			return
		}
	}
	ttl := time.Duration(math.MaxInt64) // about 292 years: minutesToExpire may exceed what a Duration holds
	if minutes < int64(ttl/time.Minute) {
		ttl = time.Duration(minutes) * time.Minute
	}
	aud := x.origin() + path + x.hub.name
	tok, err := x.e.auth.signClientToken(aud, x.q.Get("userId"), x.q["role"], x.q["group"], ttl, time.Now())
	if err != nil {
		x.fail(http.StatusInternalServerError, "InternalServerError", err.Error())
		return
	}
	x.replyJSON(http.StatusOK, map[string]string{"token": tok})
}
