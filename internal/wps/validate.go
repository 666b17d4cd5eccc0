package wps

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	maxHubLen      = 128
	maxGroupLen    = 1024
	maxTTLSeconds  = 300
	maxPageSizeCap = 200
)

// validHub reports whether name matches the service's hub pattern
// ^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$.
func validHub(name string) bool {
	if len(name) == 0 || len(name) > maxHubLen || !isLetter(name[0]) {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if isLetter(c) || ('0' <= c && c <= '9') {
			continue
		}
		switch c {
		case '_', '`', ',', '.', '[', ']':
			continue
		}
		return false
	}
	return true
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// hubReason explains why a hub name is refused, or returns "".
func hubReason(name string) string {
	if validHub(name) {
		return ""
	}
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > maxHubLen:
		return "must be at most 128 characters"
	case !isLetter(name[0]):
		return "must start with a letter"
	default:
		return "may contain only letters, digits and _ ` , . [ ]"
	}
}

// groupReason explains why a group name is refused, or returns "". The rules
// are the service's: 1..1024 characters, not whitespace-only, no line breaks
// (the pattern ^(?!\s+$).+$ in JavaScript regex terms).
func groupReason(g string) string {
	if g == "" {
		return "must not be empty"
	}
	if len(g) > maxGroupLen && utf8.RuneCountInString(g) > maxGroupLen {
		return "must be at most 1024 characters"
	}
	if !utf8.ValidString(g) {
		return "must be valid UTF-8"
	}
	blank := true
	for _, r := range g {
		switch r {
		case '\n', '\r', '\u2028', '\u2029':
			return "must not contain line breaks"
		}
		if blank && !unicode.IsSpace(r) {
			blank = false
		}
	}
	if blank {
		return "must not be whitespace only"
	}
	return ""
}

// segmentReason refuses values that would be unsafe as one path segment:
// empty, "." and "..". (Other characters are percent-encoded.)
func segmentReason(s string) string {
	switch s {
	case "":
		return "must not be empty"
	case ".", "..":
		return `must not be "." or ".."`
	}
	return ""
}

// pathGroupReason combines the group rules with the path segment rules.
func pathGroupReason(g string) string {
	if r := segmentReason(g); r != "" {
		return r
	}
	return groupReason(g)
}

func checkSegment(op, field, v string) error {
	if r := segmentReason(v); r != "" {
		return &ValidationError{Op: op, Field: field, Reason: r}
	}
	return nil
}

func checkGroup(op, field, g string) error {
	if r := pathGroupReason(g); r != "" {
		return &ValidationError{Op: op, Field: field, Reason: r}
	}
	return nil
}

func checkContentType(op string, ct ContentType) error {
	switch ct {
	case ContentJSON, ContentText, ContentBinary:
		return nil
	}
	return &ValidationError{Op: op, Field: "contentType", Reason: "must be application/json, text/plain or application/octet-stream"}
}

func checkPermission(op string, p Permission) error {
	switch p {
	case PermissionSendToGroup, PermissionJoinLeaveGroup:
		return nil
	}
	return &ValidationError{Op: op, Field: "permission", Reason: "must be sendToGroup or joinLeaveGroup"}
}

func checkExcluded(op string, ids []string) error {
	for _, id := range ids {
		if id == "" {
			return &ValidationError{Op: op, Field: "excluded", Reason: "must not contain empty connection ids"}
		}
	}
	return nil
}

func checkTTL(op string, ttl int) error {
	if ttl < 0 || ttl > maxTTLSeconds {
		return &ValidationError{Op: op, Field: "ttl", Reason: "must be between 0 and 300 seconds"}
	}
	return nil
}

// encodeURIComponent appends s to dst percent-encoded like JavaScript's
// encodeURIComponent: every byte except A-Z a-z 0-9 - _ . ! ~ * ' ( ) is
// escaped as %XX of its UTF-8 encoding. (url.PathEscape keeps :@&=+$ and
// more, which the official SDKs escape.)
func encodeURIComponent(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if uriUnreserved[c] {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&0xF])
	}
	return dst
}

var uriUnreserved = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.!~*'()" {
		t[c] = true
	}
	return t
}()

// hasPrefixFold reports whether s starts with prefix, ASCII case-insensitively.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
