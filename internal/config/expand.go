package config

import (
	"errors"
	"fmt"
	"strings"
)

// expand replaces ${VAR} and ${VAR:-default} in s with values from lookup, and
// $$ with $. A $ followed by anything else is kept. It reports whether s held
// at least one variable reference. A default is used when VAR is unset or
// empty and may itself hold references. An unset VAR without a default is an
// error naming VAR (never its value).
func expand(s string, lookup func(string) (string, bool)) (out string, referenced bool, err error) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte(c)
			i++
			continue
		}
		end := matchingBrace(s, i+2)
		if end < 0 {
			return "", true, errors.New("unterminated ${")
		}
		value, err := expandRef(s[i+2:end], lookup)
		if err != nil {
			return "", true, err
		}
		b.WriteString(value)
		referenced = true
		i = end + 1
	}
	return b.String(), referenced, nil
}

// expandRef resolves the inside of one ${...}.
func expandRef(ref string, lookup func(string) (string, bool)) (string, error) {
	name, def, hasDefault := strings.Cut(ref, ":-")
	if !validVarName(name) {
		// The text is not echoed: it may be a mistyped secret.
		return "", errors.New("invalid variable reference: want ${NAME} or ${NAME:-default}")
	}
	if v, ok := lookup(name); ok && (v != "" || !hasDefault) {
		return v, nil
	}
	if !hasDefault {
		return "", fmt.Errorf("environment variable %s is not set (write ${%s:-} to allow empty)", name, name)
	}
	v, _, err := expand(def, lookup)
	return v, err
}

// matchingBrace returns the index of the } closing a ${ whose content starts
// at from, counting nested ${...}, or -1.
func matchingBrace(s string, from int) int {
	depth := 0
	for j := from; j < len(s); j++ {
		switch {
		case s[j] == '$' && j+1 < len(s) && s[j+1] == '{':
			depth++
			j++
		case s[j] == '}':
			if depth == 0 {
				return j
			}
			depth--
		}
	}
	return -1
}

func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
