package codec

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/wpsname"
)

type bodyMode uint8

const (
	bodyAuto bodyMode = iota
	bodyRaw
	bodyEnvelope
)

// route is a compiled Route.
type route struct {
	hasMatch bool
	match    []string
	source   string
	action   Action
	body     bodyMode
	// tpl holds the templates of fHub, fGroup, fUserID, fConnectionID,
	// fFilter and fDataType; nil when the route leaves the field alone.
	tpl      [fieldCount]*template
	key      *template
	ttl      int
	coalesce *Coalesce
}

// templated lists the route fields that are templates, in Route order.
var templated = [...]field{fHub, fGroup, fUserID, fConnectionID, fFilter, fDataType}

func compileRoute(i int, rc *Route) (route, []error) {
	r := route{source: rc.Source, ttl: rc.TTL, coalesce: rc.Coalesce}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("routes[%d].%s: %s", i, name, fmt.Sprintf(format, args...)))
	}
	if rc.Match != "" {
		toks, reason := compilePattern(rc.Match)
		if reason != "" {
			bad("match", "%s", reason)
		}
		r.hasMatch, r.match = true, toks
	}
	if rc.Action != "" {
		a, ok := ParseAction(rc.Action)
		if !ok {
			bad("action", "unknown action %q", rc.Action)
		}
		r.action = a
	}
	switch {
	case rc.Body == "":
	case strings.EqualFold(rc.Body, BodyRaw):
		r.body = bodyRaw
	case strings.EqualFold(rc.Body, BodyEnvelope):
		r.body = bodyEnvelope
	default:
		bad("body", "must be raw or envelope, got %q", rc.Body)
	}
	values := [fieldCount]string{
		fHub: rc.Hub, fGroup: rc.Group, fUserID: rc.UserID, fConnectionID: rc.ConnectionID,
		fFilter: rc.Filter, fDataType: rc.DataType,
	}
	for _, f := range templated {
		src := values[f]
		if src == "" {
			continue
		}
		t, err := parseTemplate(src)
		if err != nil {
			bad(jsonNames[f], "%v", err)
			continue
		}
		r.tpl[f] = t
		if t.literal {
			if reason := literalReason(f, src); reason != "" {
				bad(jsonNames[f], "%s", reason)
			}
		}
	}
	if rc.Key != "" {
		t, err := parseTemplate(rc.Key)
		if err != nil {
			bad("key", "%v", err)
		}
		r.key = t
	}
	if rc.TTL < 0 || rc.TTL > MaxTTL {
		bad("ttl", "must be 0..300, got %d", rc.TTL)
	}
	if c := rc.Coalesce; c != nil && (c.Count < 0 || c.Bytes < 0 || c.Linger < 0) {
		bad("coalesce", "count, bytes and linger must not be negative")
	}
	if r.action != ActionUnknown {
		sp := specs[r.action]
		for _, f := range templated[1:] {
			if r.tpl[f] != nil && !sp.allowed.has(f) {
				bad(jsonNames[f], "%s does not take %s", r.action, jsonNames[f])
			}
		}
		if rc.TTL != 0 && !sp.allowed.has(fTTL) {
			bad("ttl", "%s does not take ttl", r.action)
		}
		if rc.Coalesce != nil && !r.action.IsSend() {
			bad("coalesce", "%s is not a send", r.action)
		}
	}
	return r, errs
}

// literalReason validates a template without placeholders at config time.
func literalReason(f field, v string) string {
	switch f {
	case fHub:
		return wpsname.HubReason(v)
	case fGroup:
		return wpsname.PathGroupReason(v)
	case fUserID, fConnectionID:
		return wpsname.SegmentReason(v)
	case fDataType:
		if _, ok := parseDataType(v); !ok {
			return "must be json, text or binary, got " + strconv.Quote(v)
		}
	}
	return ""
}

// apply sets the fields the route fixes. Fields the action does not take are
// left alone when the action comes from the message, so that one route can
// serve several actions.
func (r *route) apply(dr *draft, sp actionSpec, msg *source.Message) *DecodeError {
	for _, f := range templated {
		t := r.tpl[f]
		if t == nil || (f != fHub && !sp.allowed.has(f)) {
			continue
		}
		v, reason := t.expand(msg)
		dr.origin[f] = fromRoute
		if reason != "" {
			return dr.fail(f, reason)
		}
		switch f {
		case fHub:
			dr.hub = v
		case fGroup:
			dr.group = v
		case fUserID:
			dr.userID = v
		case fConnectionID:
			dr.connID = v
		case fFilter:
			dr.filter = v
		case fDataType:
			dr.dataType = v
		}
		if v == "" {
			return dr.fail(f, "must not be empty")
		}
	}
	if r.ttl != 0 && sp.allowed.has(fTTL) {
		dr.ttl, dr.ttlSet, dr.origin[fTTL] = r.ttl, true, fromRoute
	}
	if r.key != nil {
		v, reason := r.key.expand(msg)
		if reason != "" {
			return &DecodeError{Index: -1, Field: "key", Reason: "from route template " + strconv.Quote(r.key.src) + ": " + reason}
		}
		dr.key, dr.keySet = v, true
	}
	return nil
}

// compilePattern splits a NATS-style pattern into tokens.
func compilePattern(p string) ([]string, string) {
	toks := strings.Split(p, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return nil, fmt.Sprintf("empty token in pattern %q", p)
		case t == ">" && i != len(toks)-1:
			return nil, fmt.Sprintf("'>' must be the last token of %q", p)
		case t != ">" && t != "*" && strings.ContainsAny(t, "*>"):
			return nil, fmt.Sprintf("wildcards must be whole tokens in %q", p)
		}
	}
	return toks, ""
}

// matchSubject reports whether subj matches the pattern tokens: `*` matches
// one token, `>` one or more trailing tokens. It does not allocate.
func matchSubject(pat []string, subj string) bool {
	rest, more := subj, true
	for _, p := range pat {
		if !more {
			return false
		}
		if p == ">" {
			return true
		}
		var tok string
		tok, rest, more = strings.Cut(rest, ".")
		if p != "*" && p != tok {
			return false
		}
	}
	return !more
}

type placeholder uint8

const (
	phLiteral placeholder = iota
	phSubject
	phSubjectToken
	phTopic
	phKey
	phPartition
	phHeader
)

type tplPart struct {
	kind placeholder
	lit  string // literal text, or the header name
	n    int    // token index of {subject.N}
}

// template is a parsed route template.
type template struct {
	src     string
	parts   []tplPart
	literal bool
}

func parseTemplate(src string) (*template, error) {
	t := &template{src: src}
	rest := src
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			t.parts = append(t.parts, tplPart{lit: rest})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, tplPart{lit: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed '{' in %q", src)
		}
		name := rest[open+1 : open+end]
		part, ok := parsePlaceholder(name)
		if !ok {
			return nil, fmt.Errorf("unknown placeholder %q in %q (want {subject}, {subject.N}, {topic}, {key}, {partition} or {header.Name})", "{"+name+"}", src)
		}
		t.parts = append(t.parts, part)
		rest = rest[open+end+1:]
	}
	t.literal = len(t.parts) == 1 && t.parts[0].kind == phLiteral
	return t, nil
}

func parsePlaceholder(name string) (tplPart, bool) {
	switch name {
	case "subject":
		return tplPart{kind: phSubject}, true
	case "topic":
		return tplPart{kind: phTopic}, true
	case "key":
		return tplPart{kind: phKey}, true
	case "partition":
		return tplPart{kind: phPartition}, true
	}
	if n, ok := strings.CutPrefix(name, "subject."); ok {
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || strconv.Itoa(i) != n {
			return tplPart{}, false
		}
		return tplPart{kind: phSubjectToken, n: i}, true
	}
	if h, ok := strings.CutPrefix(name, "header."); ok && h != "" {
		return tplPart{kind: phHeader, lit: h}, true
	}
	return tplPart{}, false
}

// expand renders the template for msg; a non-empty reason says why it cannot.
// A template of one part returns that part without allocating (except
// {key} and {partition}).
func (t *template) expand(msg *source.Message) (string, string) {
	if len(t.parts) == 1 {
		return t.parts[0].value(msg)
	}
	var b strings.Builder
	for i := range t.parts {
		v, reason := t.parts[i].value(msg)
		if reason != "" {
			return "", reason
		}
		b.WriteString(v)
	}
	return b.String(), ""
}

func (p *tplPart) value(msg *source.Message) (string, string) {
	switch p.kind {
	case phSubject:
		return msg.Subject, ""
	case phSubjectToken:
		if tok, ok := subjectToken(msg.Subject, p.n); ok {
			return tok, ""
		}
		return "", fmt.Sprintf("subject %q has no token %d", msg.Subject, p.n)
	case phTopic:
		return msg.Topic, ""
	case phKey:
		return string(msg.Key), ""
	case phPartition:
		return strconv.FormatInt(int64(msg.Partition), 10), ""
	case phHeader:
		if v, ok := msg.Headers.Get(p.lit); ok {
			return v, ""
		}
		return "", fmt.Sprintf("the message has no header %q", p.lit)
	}
	return p.lit, ""
}

// subjectToken returns the n-th (0-based) dot-separated token of subj.
func subjectToken(subj string, n int) (string, bool) {
	for i := 0; ; i++ {
		tok, rest, more := strings.Cut(subj, ".")
		if i == n {
			return tok, true
		}
		if !more {
			return "", false
		}
		subj = rest
	}
}
