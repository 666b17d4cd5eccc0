// Package wpsname holds the Web PubSub naming rules (hub pattern, group
// rules, URL path segments) shared by the REST client and the codec, so that
// an envelope the codec accepts is one the client will send. It has no
// dependencies. The emulator keeps its own copy on purpose: it is the
// independent check of the client.
package wpsname

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Limits of the service.
const (
	MaxHubLen   = 128
	MaxGroupLen = 1024
)

// HubReason explains why name is not a valid hub, or returns "". The service
// pattern is ^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$.
func HubReason(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > MaxHubLen:
		return "must be at most 128 characters"
	case !isLetter(name[0]):
		return fmt.Sprintf("must start with a letter, got %q", name)
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
		return fmt.Sprintf("may contain only letters, digits and _ ` , . [ ], got %q", name)
	}
	return ""
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// GroupReason explains why g is not a valid group name, or returns "": 1..1024
// characters of valid UTF-8, not whitespace only, no line breaks (the pattern
// ^(?!\s+$).+$ in JavaScript regex terms).
func GroupReason(g string) string {
	if g == "" {
		return "must not be empty"
	}
	if len(g) > MaxGroupLen && utf8.RuneCountInString(g) > MaxGroupLen {
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

// SegmentReason refuses values that cannot be one URL path segment: empty,
// "." and "..". (Every other character is percent-encoded.)
func SegmentReason(s string) string {
	switch s {
	case "":
		return "must not be empty"
	case ".", "..":
		return `must not be "." or ".."`
	}
	return ""
}

// PathGroupReason is GroupReason for a group that is also a path segment.
func PathGroupReason(g string) string {
	if r := SegmentReason(g); r != "" {
		return r
	}
	return GroupReason(g)
}
