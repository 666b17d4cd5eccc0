package filter

import (
	"errors"
	"strings"
	"testing"
)

func groups(gs ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(gs))
	for _, g := range gs {
		m[g] = struct{}{}
	}
	return m
}

func TestMatch(t *testing.T) {
	t.Parallel()
	user1 := &Target{UserID: "user1", ConnectionID: "c1", Groups: groups("group1")}
	quoted := &Target{UserID: "user'1", ConnectionID: "c2", Groups: groups()}
	anon := &Target{ConnectionID: "c3", Groups: groups("group2", "group3")}
	abde := &Target{UserID: "user-ab-de", ConnectionID: "c4", Groups: groups("group1", "group2")}
	listener := &Target{UserID: "listener-7", ConnectionID: "c5"}

	tests := []struct {
		filter string
		target *Target
		want   bool
	}{
		{"'group1' in groups or 'group2' in groups", user1, true},
		{"'group1' in groups or 'group2' in groups", anon, true},
		{"'group1' in groups or 'group2' in groups", quoted, false},
		{"userId in ('user1','user2') and 'group1' in groups", user1, true},
		{"userId in ('user1','user2') and 'group1' in groups", abde, false},
		{"userId eq 'user1' and connectionId ne '123'", user1, true},
		{"userId eq 'user1' and connectionId ne 'c1'", user1, false},
		{"userId eq 'user1' and (not ('group1' in groups))", user1, false},
		{"userId eq 'user''1'", quoted, true},
		{"userId eq 'user''1'", user1, false},
		{"userId eq null", anon, true},
		{"userId eq null", user1, false},
		{"userId ne null", anon, false},
		{"null eq userId", anon, true},
		{"length(groups) gt 1", anon, true},
		{"length(groups) gt 1", user1, false},
		{"length(groups) eq 0", listener, true},
		{"substring(userId,5,2) eq 'ab'", abde, true},
		{"substring(userId,5) eq 'ab-de'", abde, true},
		{"substring(userId,50) eq ''", abde, true},
		{"substring(userId,-3,2) eq 'us'", abde, true},
		{"startswith(userId, 'listener-')", listener, true},
		{"startswith(userId, 'listener-')", user1, false},
		{"startswith(userId, 'x')", anon, false},
		{"endswith(userId, 'de') and contains(userId, '-ab-')", abde, true},
		{"indexof(userId, 'ab') eq 5", abde, true},
		{"indexof(userId, 'zz') eq -1", abde, true},
		{"length(userId) ge 10", abde, true},
		{"length(userId) le 5", user1, true},
		{"length(userId) lt 5", user1, false},
		{"tolower('ABC') eq 'abc' and toupper(userId) eq 'USER1'", user1, true},
		{"trim('  x  ') eq 'x'", user1, true},
		{"concat(userId, '!') eq 'user1!'", user1, true},
		{"concat(userId, '!') eq null", anon, true},
		{"userId gt 'user0' and userId lt 'user2'", user1, true},
		{"userId gt 'a'", anon, false},
		{"USERID EQ 'user1' AND ConnectionId Eq 'c1'", user1, true},
		{"'GROUP1' in groups", user1, false}, // values are case-sensitive
		{"true", user1, true},
		{"false or true and false", user1, false},
		{"true or true and false", user1, true},         // and binds tighter than or
		{"not false and false", user1, false},           // not binds tighter than and
		{"not (length(userId) gt 5)", user1, true},      // parenthesised comparison
		{"((userId eq 'user1'))", user1, true},          // nested parentheses
		{"1 lt 2 and -1 lt +1 and 3 ge 3", user1, true}, // integers
		{"userId in ('a', null)", anon, true},           // null in a list
		{"connectionId in ('c1')", user1, true},         // single-item list
		{"not not true", user1, true},                   // repeated not
		{"('x' in groups) eq false", user1, true},       // membership compared to a boolean
		{"contains(userId, '') and indexof(userId, '') eq 0", user1, true},
	}
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			t.Parallel()
			e, err := Parse(tc.filter)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := e.Match(tc.target); got != tc.want {
				t.Fatalf("Match(%+v) = %v, want %v", *tc.target, got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ filter, wantInMessage string }{
		{"", "unexpected end of input"},
		{"userId eq", "unexpected end of input"},
		{"userId eq 'a", "unterminated string"},
		{"userId = 'a'", "unexpected character"},
		{"user eq 'a'", "unknown identifier"},
		{"foo(userId)", "unknown function"},
		{"not length(userId) gt 5", "'not' needs a boolean operand"},
		{"userId", "not a boolean"},
		{"length(userId)", "not a boolean"},
		{"userId eq 1", "cannot compare a string with a integer"},
		{"userId gt true", "cannot order"},
		{"groups eq 'a'", "'groups' can only be used"},
		{"'a' in groups and", "unexpected end of input"},
		{"1 in groups", "needs a string"},
		{"userId in ()", "unexpected ')'"},
		{"userId in ('a' 'b')", "expected ',' or ')'"},
		{"userId in 'a'", "expected '(' or 'groups'"},
		{"startswith(userId)", "takes 2 arguments"},
		{"substring(userId, 'a')", "argument 2 of substring() must be a integer"},
		{"(userId eq 'a'", "expected ')'"},
		{"userId eq 'a')", "unexpected ')'"},
		{"userId eq 99999999999999999999", "integer out of range"},
		{"userId eq 'a' or", "unexpected end of input"},
		{strings.Repeat("(", 100) + "true" + strings.Repeat(")", 100), "nested deeper"},
		{"true and 1", "needs boolean operands"},
	}
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.filter)
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			if !strings.Contains(err.Error(), tc.wantInMessage) {
				t.Fatalf("error %q does not mention %q", err, tc.wantInMessage)
			}
		})
	}
}

func TestLongFilterOfManyClauses(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 500 {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString("userId eq 'u")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString("'")
	}
	e, err := Parse(b.String())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !e.Match(&Target{UserID: "uxxx"}) || e.Match(&Target{UserID: "v"}) {
		t.Fatal("wrong result for a long or-chain")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"'group1' in groups or 'group2' in groups",
		"userId in ('user1','user2') and 'group1' in groups",
		"userId eq 'user''1'", "userId eq null", "length(groups) gt 1", "substring(userId,5,2) eq 'ab'",
		"not (length(userId) gt 5)", "startswith(userId, 'listener-')", "indexof(concat(trim(userId), 'x'), 'x') ge -1",
		"((((", "'", "not not not", "substring(userId, 1, -1) eq ''",
	} {
		f.Add(s)
	}
	target := &Target{UserID: "user-ab", ConnectionID: "c", Groups: groups("g", "group1")}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		e.Match(target)
		e.Match(&Target{})
	})
}
