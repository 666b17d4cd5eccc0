package codec

import (
	"encoding/json"
	"unicode/utf8"
)

// fastEnvelope decodes one JSON object into e in a single pass, for the
// envelopes producers write: exact-case member names, strings without
// escapes. It reports false, leaving e in an unspecified state, for anything
// else (escapes, a member name that only matches case-insensitively, a
// duplicate member, a null or mistyped member, invalid JSON, deep nesting),
// and the caller decodes the body again with encoding/json, which gives the
// same result on every input fastEnvelope accepts (FuzzFastEnvelope checks
// this) and the detailed error on invalid ones.
//
// Unlike encoding/json it does not copy data: e.Data aliases body, which the
// message owns.
func fastEnvelope(body []byte, e *envelope) bool {
	p := fastParser{b: body}
	p.ws()
	var seen uint32
	ok := p.sequence('{', '}', func() bool {
		key, ok := p.plainString()
		if !ok || !p.colon() {
			return false
		}
		f := envelopeMember(key)
		if f < 0 {
			_, ok := p.value(0)
			return ok && !foldsToMember(key)
		}
		if seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		return p.member(f, e)
	})
	return ok && p.end()
}

// Members of envelope, by index into envelopeMembers.
const (
	mActionName = iota
	mOp
	mHub
	mData
	mDataType
	mGroup
	mUserID
	mConnectionID
	mGroups
	mUserIDs
	mExcluded
	mFilter
	mTTL
	mMessageTTLSeconds
	mReason
	mPermission
	mTargetName
	mID
	mExpiresAt
)

// envelopeMembers are the JSON names of envelope's fields, in the order of
// the m* constants.
var envelopeMembers = [...]string{
	"actionName", "op", "hub", "data", "dataType", "group", "userId", "connectionId",
	"groups", "userIds", "excluded", "filter", "ttl", "messageTtlSeconds", "reason",
	"permission", "targetName", "id", "expiresAt",
}

func envelopeMember(key []byte) int {
	for i, m := range envelopeMembers {
		if string(key) == m {
			return i
		}
	}
	return -1
}

// foldsToMember reports whether encoding/json might match key to a member
// case-insensitively: any key with a non-ASCII byte (Unicode folding), or an
// ASCII key equal to a member name but for case.
func foldsToMember(key []byte) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	for _, m := range envelopeMembers {
		if equalFoldASCII(m, string(key)) {
			return true
		}
	}
	return false
}

// member decodes the value of member f into e.
func (p *fastParser) member(f int, e *envelope) bool {
	switch f {
	case mData:
		raw, ok := p.value(0)
		e.Data = json.RawMessage(raw)
		return ok
	case mTTL, mMessageTTLSeconds:
		raw, ok := p.value(0)
		if !ok {
			return false
		}
		t := &e.TTL
		if f == mMessageTTLSeconds {
			t = &e.MessageTTLSeconds
		}
		return t.UnmarshalJSON(raw) == nil
	case mGroups, mUserIDs, mExcluded:
		list, ok := p.stringList()
		switch f {
		case mGroups:
			e.Groups = list
		case mUserIDs:
			e.UserIDs = list
		default:
			e.Excluded = list
		}
		return ok
	}
	s, ok := p.plainString()
	if !ok {
		return false
	}
	var str string
	if f == mActionName || f == mOp {
		str = internAction(s)
	} else {
		str = string(s)
	}
	switch f {
	case mActionName:
		e.ActionName = str
	case mOp:
		e.Op = str
	case mHub:
		e.Hub = str
	case mDataType:
		e.DataType = str
	case mGroup:
		e.Group = str
	case mUserID:
		e.UserID = str
	case mConnectionID:
		e.ConnectionID = str
	case mFilter:
		e.Filter = str
	case mReason:
		e.Reason = str
	case mPermission:
		e.Permission = str
	case mTargetName:
		e.TargetName = str
	case mID:
		e.ID = str
	case mExpiresAt:
		e.ExpiresAt = str
	}
	return true
}

// internAction returns the action names producers write most without
// allocating.
func internAction(s []byte) string {
	for _, a := range [...]string{"sendToAll", "sendToGroup", "sendToUser", "sendToConnection", "addConnectionToGroup", "removeConnectionFromGroup"} {
		if string(s) == a {
			return a
		}
	}
	return string(s)
}

// fastParser scans JSON, accepting only a subset of valid JSON: whatever it
// accepts encoding/json accepts with the same meaning.
type fastParser struct {
	b []byte
	i int
}

// maxFastDepth bounds nesting in skipped values (encoding/json allows 10000;
// deeper input takes the slow path).
const maxFastDepth = 256

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only whitespace follows.
func (p *fastParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// plainString reads a string without escapes and returns its contents; a
// string with an escape, a control character or invalid UTF-8 is refused
// (encoding/json would decode or replace them).
func (p *fastParser) plainString() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	ascii := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		p.i++
	}
	return nil, false
}

// stringList reads an array of plain strings; [] gives an empty, non-nil
// list, as encoding/json does.
func (p *fastParser) stringList() ([]string, bool) {
	list := []string{}
	ok := p.sequence('[', ']', func() bool {
		s, ok := p.plainString()
		if ok {
			list = append(list, string(s))
		}
		return ok
	})
	return list, ok
}

// sequence reads open, then elements separated by commas up to close, with
// whitespace around each; elem reads one element.
func (p *fastParser) sequence(open, close byte, elem func() bool) bool {
	if !p.eat(open) {
		return false
	}
	p.ws()
	if p.eat(close) {
		return true
	}
	for {
		p.ws()
		if !elem() {
			return false
		}
		p.ws()
		if p.eat(close) {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// colon reads the ':' after a member name, and the whitespace around it.
func (p *fastParser) colon() bool {
	p.ws()
	ok := p.eat(':')
	p.ws()
	return ok
}

// value skips one valid JSON value and returns its bytes.
func (p *fastParser) value(depth int) ([]byte, bool) {
	if p.i >= len(p.b) || depth > maxFastDepth {
		return nil, false
	}
	start := p.i
	var ok bool
	switch c := p.b[p.i]; {
	case c == '{':
		ok = p.object(depth + 1)
	case c == '[':
		ok = p.array(depth + 1)
	case c == '"':
		ok = p.anyString()
	case c == 't':
		ok = p.literal("true")
	case c == 'f':
		ok = p.literal("false")
	case c == 'n':
		ok = p.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		ok = p.number()
	}
	return p.b[start:p.i], ok
}

func (p *fastParser) object(depth int) bool {
	return p.sequence('{', '}', func() bool {
		if !p.anyString() || !p.colon() {
			return false
		}
		_, ok := p.value(depth)
		return ok
	})
}

func (p *fastParser) array(depth int) bool {
	return p.sequence('[', ']', func() bool {
		_, ok := p.value(depth)
		return ok
	})
}

// anyString skips a valid JSON string, escapes included.
func (p *fastParser) anyString() bool {
	if !p.eat('"') {
		return false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				return false
			}
			switch p.b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				if p.i+4 >= len(p.b) {
					return false
				}
				for _, h := range p.b[p.i+1 : p.i+5] {
					if !isHex(h) {
						return false
					}
				}
				p.i += 5
			default:
				return false
			}
		default:
			p.i++
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (p *fastParser) literal(lit string) bool {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return false
	}
	p.i += len(lit)
	return true
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastParser) number() bool {
	p.eat('-')
	switch {
	case p.eat('0'):
	case p.digits() == 0:
		return false
	}
	if p.eat('.') && p.digits() == 0 {
		return false
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

func (p *fastParser) digits() int {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}
