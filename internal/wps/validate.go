package wps

import (
	"strings"

	"github.com/wps-bridge/bridge/internal/wpsname"
)

const (
	maxTTLSeconds  = 300
	maxPageSizeCap = 200
)

func checkSegment(op, field, v string) error {
	if r := wpsname.SegmentReason(v); r != "" {
		return &ValidationError{Op: op, Field: field, Reason: r}
	}
	return nil
}

func checkGroup(op, field, g string) error {
	if r := wpsname.PathGroupReason(g); r != "" {
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
