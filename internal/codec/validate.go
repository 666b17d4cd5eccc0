package codec

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/wps-bridge/bridge/internal/wpsname"
)

const (
	// MaxTTL is the largest messageTtlSeconds the service accepts.
	MaxTTL = 300
	// DefaultMaxBodyBytes is the default Config.MaxBodyBytes: the service's
	// 1 MiB message limit.
	DefaultMaxBodyBytes = 1 << 20
)

// ErrInvalidName is wrapped by ValidateHub and ValidateGroup errors.
var ErrInvalidName = errors.New("invalid name")

// ValidateHub checks a hub name against the service pattern
// ^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$. The error wraps ErrInvalidName and
// says what is wrong.
func ValidateHub(s string) error {
	if r := wpsname.HubReason(s); r != "" {
		return fmt.Errorf("%w: %s", ErrInvalidName, r)
	}
	return nil
}

// ValidateGroup checks a group name against the service rules: 1..1024
// characters, not whitespace only, no line breaks (\n, \r, U+2028, U+2029),
// valid UTF-8; and, because a group is a URL path segment, not "." or "..".
// The error wraps ErrInvalidName and says what is wrong.
func ValidateGroup(s string) error {
	if r := wpsname.PathGroupReason(s); r != "" {
		return fmt.Errorf("%w: %s", ErrInvalidName, r)
	}
	return nil
}

// Validate checks that c is a command the decoder could have produced: a
// known action, a valid hub, every target the action requires and nothing it
// does not take, valid names, ttl in 0..MaxTTL. It returns a *DecodeError
// (Index -1) naming the envelope field. The router may use it on commands
// built by other means; the fuzz test uses it on every decoded command.
func (c *Command) Validate() error {
	if c.Action == ActionUnknown || c.Action >= actionCount {
		return &DecodeError{Index: -1, Field: jsonNames[fAction], Reason: "unknown action"}
	}
	sp := specs[c.Action]
	bad := func(f field, reason string) error {
		return &DecodeError{Index: -1, Field: jsonNames[f], Reason: reason}
	}
	if r := wpsname.HubReason(c.Hub); r != "" {
		return bad(fHub, r)
	}
	present := [fieldCount]bool{
		fGroup:        c.Group != "",
		fUserID:       c.UserID != "",
		fConnectionID: c.ConnectionID != "",
		fGroups:       len(c.Groups) > 0,
		fUserIDs:      len(c.UserIDs) > 0,
		fExcluded:     len(c.Excluded) > 0,
		fFilter:       c.Filter != "",
		fTTL:          c.TTL != 0,
		fReason:       c.Reason != "",
		fPermission:   c.Permission != "",
		fTargetName:   c.TargetName != "",
		fData:         c.Action.IsSend(),
	}
	for f := fGroup; f < fieldCount; f++ {
		switch {
		case present[f] && !sp.allowed.has(f):
			return bad(f, c.Action.String()+" does not take it")
		case !present[f] && sp.required.has(f):
			return bad(f, "required by "+c.Action.String())
		}
	}
	if !c.Action.IsSend() && (len(c.Data) > 0 || c.DataType != DataJSON) {
		return bad(fData, c.Action.String()+" does not take it")
	}
	if present[fGroup] {
		if r := wpsname.PathGroupReason(c.Group); r != "" {
			return bad(fGroup, r)
		}
	}
	if present[fTargetName] {
		if r := wpsname.PathGroupReason(c.TargetName); r != "" {
			return bad(fTargetName, r)
		}
	}
	for _, id := range [...]struct {
		f field
		v string
	}{{fUserID, c.UserID}, {fConnectionID, c.ConnectionID}} {
		if present[id.f] {
			if r := wpsname.SegmentReason(id.v); r != "" {
				return bad(id.f, r)
			}
		}
	}
	for i, g := range c.Groups {
		if r := wpsname.PathGroupReason(g); r != "" {
			return &DecodeError{Index: -1, Field: fmt.Sprintf("groups[%d]", i), Reason: r}
		}
	}
	for i, u := range c.UserIDs {
		if r := wpsname.SegmentReason(u); r != "" {
			return &DecodeError{Index: -1, Field: fmt.Sprintf("userIds[%d]", i), Reason: r}
		}
	}
	for i, x := range c.Excluded {
		if x == "" {
			return &DecodeError{Index: -1, Field: fmt.Sprintf("excluded[%d]", i), Reason: "must not be empty"}
		}
	}
	if c.TTL < 0 || c.TTL > MaxTTL {
		return bad(fTTL, fmt.Sprintf("must be 0..300, got %d", c.TTL))
	}
	if present[fPermission] {
		if p, ok := parsePermission(c.Permission); !ok || p != c.Permission {
			return bad(fPermission, fmt.Sprintf("must be sendToGroup or joinLeaveGroup, got %q", c.Permission))
		}
	}
	if c.DataType > DataBinary {
		return bad(fDataType, "unknown data type")
	}
	if c.Action.IsSend() {
		switch c.DataType {
		case DataJSON:
			if !jsonValid(c.Data) {
				return bad(fData, "is not valid JSON")
			}
		case DataText:
			if !utf8.Valid(c.Data) {
				return bad(fData, "text is not valid UTF-8")
			}
		}
	}
	return nil
}
