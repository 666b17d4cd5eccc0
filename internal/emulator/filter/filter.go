package filter

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every error Parse returns.
var ErrSyntax = errors.New("invalid filter syntax")

// MaxLength is the longest filter, in bytes, that Parse accepts.
const MaxLength = 64 << 10

// maxDepth bounds the nesting of parentheses, not and function calls.
const maxDepth = 64

// Target is the connection an expression is evaluated against.
type Target struct {
	// UserID is the connection's user; "" means anonymous, which the filter sees as null.
	UserID string
	// ConnectionID is the connection's id.
	ConnectionID string
	// Groups is the set of groups the connection is in. It is only read.
	Groups map[string]struct{}
}

// Expr is a parsed, type-checked filter expression.
type Expr struct {
	src  string
	root node
}

// String returns the source text of the expression.
func (e *Expr) String() string { return e.src }

// Match reports whether the expression is true for t.
func (e *Expr) Match(t *Target) bool {
	v := e.root.eval(t)
	return v.kind == kindBool && v.b
}

// Parse parses and type-checks a filter expression. Errors wrap ErrSyntax and name the position of the problem.
func Parse(src string) (*Expr, error) {
	if len(src) > MaxLength {
		return nil, fmt.Errorf("%w: filter longer than %d bytes", ErrSyntax, MaxLength)
	}
	if !utf8.ValidString(src) {
		return nil, fmt.Errorf("%w: filter is not valid UTF-8", ErrSyntax)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errorf(t, "unexpected %s", t)
	}
	if root.typ() != kindBool {
		return nil, fmt.Errorf("%w: the expression is a %s, not a boolean", ErrSyntax, root.typ())
	}
	return &Expr{src: src, root: root}, nil
}

// ---- values and types ----

type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindInt
	kindString
	kindGroups
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "boolean"
	case kindInt:
		return "integer"
	case kindString:
		return "string"
	case kindGroups:
		return "collection"
	default:
		return "string or collection"
	}
}

type value struct {
	kind kind
	b    bool
	i    int64
	s    string
}

var nullValue = value{kind: kindNull}

func boolValue(b bool) value { return value{kind: kindBool, b: b} }

// ---- lexer ----

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokInt
	tokLParen
	tokRParen
	tokComma
)

type token struct {
	kind tokKind
	text string // identifier (original case) or decoded string literal
	num  int64
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of input"
	case tokIdent:
		return fmt.Sprintf("'%s'", t.text)
	case tokString:
		return "string literal"
	case tokInt:
		return "integer " + strconv.FormatInt(t.num, 10)
	case tokLParen:
		return "'('"
	case tokRParen:
		return "')'"
	default:
		return "','"
	}
}

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{kind: tokLParen, pos: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, pos: i})
			i++
		case c == ',':
			toks = append(toks, token{kind: tokComma, pos: i})
			i++
		case c == '\'':
			start := i
			var sb strings.Builder
			i++
			closed := false
			for i < len(src) {
				if src[i] == '\'' {
					if i+1 < len(src) && src[i+1] == '\'' {
						sb.WriteByte('\'')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				sb.WriteByte(src[i])
				i++
			}
			if !closed {
				return nil, fmt.Errorf("%w: unterminated string literal at position %d", ErrSyntax, start)
			}
			toks = append(toks, token{kind: tokString, text: sb.String(), pos: start})
		case isDigit(c) || ((c == '-' || c == '+') && i+1 < len(src) && isDigit(src[i+1])):
			start := i
			i++
			for i < len(src) && isDigit(src[i]) {
				i++
			}
			n, err := strconv.ParseInt(src[start:i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: integer out of range at position %d", ErrSyntax, start)
			}
			toks = append(toks, token{kind: tokInt, num: n, pos: start})
		case isIdentStart(c):
			start := i
			for i < len(src) && isIdentPart(src[i]) {
				i++
			}
			toks = append(toks, token{kind: tokIdent, text: src[start:i], pos: start})
		default:
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, fmt.Errorf("%w: unexpected character %q at position %d", ErrSyntax, r, i)
		}
	}
	return append(toks, token{kind: tokEOF, pos: len(src)}), nil
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// ---- parser ----

type parser struct {
	toks  []token
	pos   int
	depth int
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return fmt.Errorf("%w: %s at position %d", ErrSyntax, fmt.Sprintf(format, args...), t.pos)
}

func (p *parser) keyword(word string) bool {
	t := p.peek()
	return t.kind == tokIdent && strings.EqualFold(t.text, word)
}

func (p *parser) expect(k tokKind, what string) (token, error) {
	t := p.next()
	if t.kind != k {
		return t, p.errorf(t, "expected %s, found %s", what, t)
	}
	return t, nil
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf(t, "expression nested deeper than %d levels", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) parseOr() (node, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		t := p.next()
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		if err := requireBool(p, t, "or", left, right); err != nil {
			return nil, err
		}
		left = &logicNode{or: true, left: left, right: right}
	}
	return left, nil
}

func (p *parser) parseAnd() (node, error) {
	left, err := p.parseCmp()
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		t := p.next()
		right, err := p.parseCmp()
		if err != nil {
			return nil, err
		}
		if err := requireBool(p, t, "and", left, right); err != nil {
			return nil, err
		}
		left = &logicNode{left: left, right: right}
	}
	return left, nil
}

func requireBool(p *parser, t token, op string, operands ...node) error {
	for _, n := range operands {
		if n.typ() != kindBool {
			return p.errorf(t, "'%s' needs boolean operands, found a %s", op, n.typ())
		}
	}
	return nil
}

var cmpOps = map[string]cmpOp{"eq": opEq, "ne": opNe, "gt": opGt, "lt": opLt, "ge": opGe, "le": opLe}

func (p *parser) parseCmp() (node, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind != tokIdent {
		return left, nil
	}
	word := strings.ToLower(t.text)
	if op, ok := cmpOps[word]; ok {
		p.next()
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if err := checkComparable(op, left.typ(), right.typ()); err != nil {
			return nil, p.errorf(t, "%v", err)
		}
		return &cmpNode{op: op, left: left, right: right}, nil
	}
	if word != "in" {
		return left, nil
	}
	p.next()
	if left.typ() == kindGroups {
		return nil, p.errorf(t, "'groups' cannot be the left operand of 'in'")
	}
	if p.keyword("groups") {
		p.next()
		if left.typ() != kindString && left.typ() != kindNull {
			return nil, p.errorf(t, "'in groups' needs a string on the left, found a %s", left.typ())
		}
		return &inGroupsNode{item: left}, nil
	}
	open, err := p.expect(tokLParen, "'(' or 'groups' after 'in'")
	if err != nil {
		return nil, err
	}
	if err := p.enter(open); err != nil {
		return nil, err
	}
	defer p.leave()
	list := &inListNode{item: left}
	for {
		el, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if err := checkComparable(opEq, left.typ(), el.typ()); err != nil {
			return nil, p.errorf(open, "in list: %v", err)
		}
		list.list = append(list.list, el)
		sep := p.next()
		if sep.kind == tokRParen {
			return list, nil
		}
		if sep.kind != tokComma {
			return nil, p.errorf(sep, "expected ',' or ')' in the 'in' list, found %s", sep)
		}
	}
}

func checkComparable(op cmpOp, a, b kind) error {
	if a == kindGroups || b == kindGroups {
		return errors.New("'groups' can only be used with 'in' and length()")
	}
	if op == opEq || op == opNe {
		if a == b || a == kindNull || b == kindNull {
			return nil
		}
		return fmt.Errorf("cannot compare a %s with a %s", a, b)
	}
	if (a == kindInt || a == kindString) && (a == b || b == kindNull) || a == kindNull && (b == kindInt || b == kindString) {
		return nil
	}
	return fmt.Errorf("cannot order a %s and a %s", a, b)
}

func (p *parser) parseUnary() (node, error) {
	if p.keyword("not") {
		t := p.next()
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer p.leave()
		operand, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if operand.typ() != kindBool {
			return nil, p.errorf(t, "'not' needs a boolean operand, found a %s (use parentheses: not (a eq b))", operand.typ())
		}
		return &notNode{operand: operand}, nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (node, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return &litNode{v: value{kind: kindString, s: t.text}}, nil
	case tokInt:
		return &litNode{v: value{kind: kindInt, i: t.num}}, nil
	case tokLParen:
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer p.leave()
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "')'"); err != nil {
			return nil, err
		}
		return inner, nil
	case tokIdent:
		word := strings.ToLower(t.text)
		if p.peek().kind == tokLParen {
			if fn, ok := functions[word]; ok {
				return p.parseCall(t, word, fn)
			}
			return nil, p.errorf(t, "unknown function '%s'", t.text)
		}
		switch word {
		case "true", "false":
			return &litNode{v: boolValue(word == "true")}, nil
		case "null":
			return &litNode{v: nullValue}, nil
		case "userid":
			return identUserID{}, nil
		case "connectionid":
			return identConnectionID{}, nil
		case "groups":
			return identGroups{}, nil
		}
		return nil, p.errorf(t, "unknown identifier '%s' (use userId, connectionId or groups)", t.text)
	default:
		return nil, p.errorf(t, "unexpected %s", t)
	}
}

func (p *parser) parseCall(name token, word string, fn function) (node, error) {
	open := p.next() // '('
	if err := p.enter(open); err != nil {
		return nil, err
	}
	defer p.leave()
	var args []node
	if p.peek().kind == tokRParen {
		p.next()
	} else {
		for {
			a, err := p.parseOr()
			if err != nil {
				return nil, err
			}
			args = append(args, a)
			sep := p.next()
			if sep.kind == tokRParen {
				break
			}
			if sep.kind != tokComma {
				return nil, p.errorf(sep, "expected ',' or ')' in %s(), found %s", word, sep)
			}
		}
	}
	if len(args) < len(fn.params) || len(args) > len(fn.params)+fn.optional {
		return nil, p.errorf(name, "%s() takes %s", word, fn.arity())
	}
	for i, a := range args {
		want := fn.params[min(i, len(fn.params)-1)]
		if i >= len(fn.params) {
			want = fn.optionalKind
		}
		got := a.typ()
		if got == want || got == kindNull && want == kindString || want == kindAny && (got == kindString || got == kindGroups || got == kindNull) {
			continue
		}
		return nil, p.errorf(name, "argument %d of %s() must be a %s, found a %s", i+1, word, want, got)
	}
	return &callNode{fn: fn, args: args}, nil
}
