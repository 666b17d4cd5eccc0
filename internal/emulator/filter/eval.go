package filter

import (
	"strings"
	"unicode/utf8"
)

// kindAny is a parameter kind accepting a string or the groups collection (length()).
const kindAny kind = 255

type node interface {
	typ() kind
	eval(t *Target) value
}

type litNode struct{ v value }

func (n *litNode) typ() kind          { return n.v.kind }
func (n *litNode) eval(*Target) value { return n.v }

type identUserID struct{}

func (identUserID) typ() kind { return kindString }
func (identUserID) eval(t *Target) value {
	if t.UserID == "" {
		return nullValue
	}
	return value{kind: kindString, s: t.UserID}
}

type identConnectionID struct{}

func (identConnectionID) typ() kind { return kindString }
func (identConnectionID) eval(t *Target) value {
	return value{kind: kindString, s: t.ConnectionID}
}

type identGroups struct{}

func (identGroups) typ() kind { return kindGroups }
func (identGroups) eval(t *Target) value {
	return value{kind: kindGroups, i: int64(len(t.Groups))}
}

type logicNode struct {
	or          bool
	left, right node
}

func (n *logicNode) typ() kind { return kindBool }
func (n *logicNode) eval(t *Target) value {
	l := truthy(n.left.eval(t))
	if n.or {
		return boolValue(l || truthy(n.right.eval(t)))
	}
	return boolValue(l && truthy(n.right.eval(t)))
}

func truthy(v value) bool { return v.kind == kindBool && v.b }

type notNode struct{ operand node }

func (n *notNode) typ() kind            { return kindBool }
func (n *notNode) eval(t *Target) value { return boolValue(!truthy(n.operand.eval(t))) }

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opGt
	opLt
	opGe
	opLe
)

type cmpNode struct {
	op          cmpOp
	left, right node
}

func (n *cmpNode) typ() kind { return kindBool }
func (n *cmpNode) eval(t *Target) value {
	return boolValue(compare(n.op, n.left.eval(t), n.right.eval(t)))
}

// compare applies op. Null equals only null, and every ordering involving null is false.
func compare(op cmpOp, a, b value) bool {
	if a.kind == kindNull || b.kind == kindNull {
		both := a.kind == b.kind
		switch op {
		case opEq:
			return both
		case opNe:
			return !both
		default:
			return false
		}
	}
	var c int
	switch a.kind {
	case kindString:
		c = strings.Compare(a.s, b.s)
	case kindInt:
		switch {
		case a.i < b.i:
			c = -1
		case a.i > b.i:
			c = 1
		}
	case kindBool:
		if a.b != b.b {
			c = 1
		}
	}
	switch op {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opGt:
		return c > 0
	case opLt:
		return c < 0
	case opGe:
		return c >= 0
	default:
		return c <= 0
	}
}

type inListNode struct {
	item node
	list []node
}

func (n *inListNode) typ() kind { return kindBool }
func (n *inListNode) eval(t *Target) value {
	v := n.item.eval(t)
	for _, el := range n.list {
		if compare(opEq, v, el.eval(t)) {
			return boolValue(true)
		}
	}
	return boolValue(false)
}

type inGroupsNode struct{ item node }

func (n *inGroupsNode) typ() kind { return kindBool }
func (n *inGroupsNode) eval(t *Target) value {
	v := n.item.eval(t)
	if v.kind != kindString {
		return boolValue(false)
	}
	_, ok := t.Groups[v.s]
	return boolValue(ok)
}

type function struct {
	params       []kind
	optional     int  // number of trailing optional parameters
	optionalKind kind // their kind
	result       kind
	impl         func(args []value) value
}

func (f function) arity() string {
	n := len(f.params)
	switch {
	case f.optional > 0:
		return itoa(n) + " or " + itoa(n+f.optional) + " arguments"
	case n == 1:
		return "1 argument"
	default:
		return itoa(n) + " arguments"
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

type callNode struct {
	fn   function
	args []node
}

func (n *callNode) typ() kind { return n.fn.result }
func (n *callNode) eval(t *Target) value {
	var buf [3]value
	args := buf[:0]
	for _, a := range n.args {
		args = append(args, a.eval(t))
	}
	return n.fn.impl(args)
}

func strFn2Bool(f func(a, b string) bool) function {
	return function{params: []kind{kindString, kindString}, result: kindBool, impl: func(v []value) value {
		if v[0].kind != kindString || v[1].kind != kindString {
			return boolValue(false)
		}
		return boolValue(f(v[0].s, v[1].s))
	}}
}

func strFn1(f func(string) string) function {
	return function{params: []kind{kindString}, result: kindString, impl: func(v []value) value {
		if v[0].kind != kindString {
			return nullValue
		}
		return value{kind: kindString, s: f(v[0].s)}
	}}
}

var functions = map[string]function{
	"startswith": strFn2Bool(strings.HasPrefix),
	"endswith":   strFn2Bool(strings.HasSuffix),
	"contains":   strFn2Bool(strings.Contains),
	"tolower":    strFn1(strings.ToLower),
	"toupper":    strFn1(strings.ToUpper),
	"trim":       strFn1(strings.TrimSpace),
	"indexof": {params: []kind{kindString, kindString}, result: kindInt, impl: func(v []value) value {
		if v[0].kind != kindString || v[1].kind != kindString {
			return nullValue
		}
		i := strings.Index(v[0].s, v[1].s)
		if i > 0 {
			i = utf8.RuneCountInString(v[0].s[:i])
		}
		return value{kind: kindInt, i: int64(i)}
	}},
	"length": {params: []kind{kindAny}, result: kindInt, impl: func(v []value) value {
		switch v[0].kind {
		case kindString:
			return value{kind: kindInt, i: int64(utf8.RuneCountInString(v[0].s))}
		case kindGroups:
			return value{kind: kindInt, i: v[0].i}
		}
		return nullValue
	}},
	"concat": {params: []kind{kindString, kindString}, result: kindString, impl: func(v []value) value {
		if v[0].kind != kindString || v[1].kind != kindString {
			return nullValue
		}
		return value{kind: kindString, s: v[0].s + v[1].s}
	}},
	"substring": {params: []kind{kindString, kindInt}, optional: 1, optionalKind: kindInt, result: kindString,
		impl: func(v []value) value {
			if v[0].kind != kindString || v[1].kind != kindInt {
				return nullValue
			}
			r := []rune(v[0].s)
			start := clamp(v[1].i, int64(len(r)))
			end := int64(len(r))
			if len(v) == 3 {
				if v[2].kind != kindInt {
					return nullValue
				}
				end = start + clamp(v[2].i, int64(len(r))-start)
			}
			return value{kind: kindString, s: string(r[start:end])}
		}},
}

func clamp(n, limit int64) int64 {
	return max(0, min(n, limit))
}
