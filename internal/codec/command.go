package codec

import (
	"errors"
	"strings"
	"time"

	"github.com/wps-bridge/bridge/internal/source"
)

// Action is one Web PubSub data-plane operation named by an envelope.
type Action uint8

// The actions of envelope v1 (design.md §2). SendToGroups and SendToUsers are
// the bridge's multicast extensions.
const (
	ActionUnknown Action = iota
	SendToAll
	SendToGroup
	SendToUser
	SendToConnection
	AddConnectionToGroup
	RemoveConnectionFromGroup
	RemoveConnectionFromAllGroups
	AddUserToGroup
	RemoveUserFromGroup
	RemoveUserFromAllGroups
	AddConnectionsToGroups
	RemoveConnectionsFromGroups
	CloseConnection
	CloseAllConnections
	CloseGroupConnections
	CloseUserConnections
	GrantPermission
	RevokePermission
	SendToGroups
	SendToUsers
	actionCount
)

var actionNames = [actionCount]string{
	ActionUnknown:                 "unknown",
	SendToAll:                     "sendToAll",
	SendToGroup:                   "sendToGroup",
	SendToUser:                    "sendToUser",
	SendToConnection:              "sendToConnection",
	AddConnectionToGroup:          "addConnectionToGroup",
	RemoveConnectionFromGroup:     "removeConnectionFromGroup",
	RemoveConnectionFromAllGroups: "removeConnectionFromAllGroups",
	AddUserToGroup:                "addUserToGroup",
	RemoveUserFromGroup:           "removeUserFromGroup",
	RemoveUserFromAllGroups:       "removeUserFromAllGroups",
	AddConnectionsToGroups:        "addConnectionsToGroups",
	RemoveConnectionsFromGroups:   "removeConnectionsFromGroups",
	CloseConnection:               "closeConnection",
	CloseAllConnections:           "closeAllConnections",
	CloseGroupConnections:         "closeGroupConnections",
	CloseUserConnections:          "closeUserConnections",
	GrantPermission:               "grantPermission",
	RevokePermission:              "revokePermission",
	SendToGroups:                  "sendToGroups",
	SendToUsers:                   "sendToUsers",
}

// String returns the canonical (camelCase) name of the action.
func (a Action) String() string {
	if a >= actionCount {
		return actionNames[ActionUnknown]
	}
	return actionNames[a]
}

// Actions returns every known action except ActionUnknown, in declaration order.
func Actions() []Action {
	out := make([]Action, 0, actionCount-1)
	for a := SendToAll; a < actionCount; a++ {
		out = append(out, a)
	}
	return out
}

// IsSend reports whether the action carries a payload (send*, multicast).
func (a Action) IsSend() bool {
	switch a {
	case SendToAll, SendToGroup, SendToUser, SendToConnection, SendToGroups, SendToUsers:
		return true
	}
	return false
}

// DataType is how a send's payload is encoded on the wire.
type DataType uint8

// Data types of envelope v1.
const (
	DataJSON DataType = iota
	DataText
	DataBinary
)

// String returns "json", "text" or "binary".
func (d DataType) String() string {
	switch d {
	case DataText:
		return "text"
	case DataBinary:
		return "binary"
	}
	return "json"
}

// ContentType returns the REST Content-Type for the data type.
func (d DataType) ContentType() string {
	switch d {
	case DataText:
		return "text/plain"
	case DataBinary:
		return "application/octet-stream"
	}
	return "application/json"
}

// Coalesce is a route's opt-in policy for merging consecutive JSON sends to the
// same target into one REST call whose body is a JSON array.
type Coalesce struct {
	// Count is the most commands merged into one call (≥ 2 to have an effect).
	Count int
	// Bytes caps the merged body size.
	Bytes int
	// Linger is how long the first command waits for followers.
	Linger time.Duration
}

// Command is one decoded envelope: everything the router needs to make one
// Web PubSub call (or, for multicast, a few). Fields that the action does not
// use are empty. Commands are values; the router never mutates Data.
type Command struct {
	Action       Action
	Hub          string
	Group        string
	UserID       string
	ConnectionID string
	Groups       []string
	UserIDs      []string
	Excluded     []string
	Filter       string
	// TTL is messageTtlSeconds (0..300); 0 means none was given.
	TTL        int
	Reason     string
	Permission string
	TargetName string
	// ID is the producer's id, carried into logs, dead letters and traces.
	ID string
	// ExpiresAt, when not zero, is the time past which the command is dropped.
	ExpiresAt time.Time
	DataType  DataType
	// Data is the exact REST body: JSON text, UTF-8 text or raw bytes.
	Data []byte
	// Key is the ordering key: commands with equal keys are sent in order.
	// Default: hub + "/" + kind + ":" + target, e.g. "chat/group:room42" (see DefaultKey).
	Key string
	// Coalesce is the route's coalescing policy, nil when off.
	Coalesce *Coalesce
	// TraceParent is the W3C traceparent header of the source message, if any.
	TraceParent string
}

// Codec turns a source message into the commands it carries, in order. A
// message that cannot be decoded yields an error wrapping ErrDecode (a
// *DecodeError naming the field) and no commands.
type Codec interface {
	Decode(msg *source.Message) ([]Command, error)
}

// CodecFunc adapts a function to Codec.
type CodecFunc func(msg *source.Message) ([]Command, error)

// Decode calls f(msg).
func (f CodecFunc) Decode(msg *source.Message) ([]Command, error) { return f(msg) }

// ErrDecode is wrapped by every decode and validation error: the input is
// invalid and goes to the dead letter without retries.
var ErrDecode = errors.New("invalid command")

// DecodeError names the field that made a message invalid. Index is the
// position in an array body, or -1 for a single object / header / route mode.
type DecodeError struct {
	Index  int
	Field  string
	Reason string
}

// Error renders e.g. `invalid command: [3].ttl: must be 0..300`.
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(ErrDecode.Error())
	b.WriteString(": ")
	if e.Index >= 0 {
		b.WriteByte('[')
		b.WriteString(itoa(e.Index))
		b.WriteByte(']')
		if e.Field != "" {
			b.WriteByte('.')
		}
	}
	b.WriteString(e.Field)
	if e.Field != "" || e.Index >= 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrDecode) true.
func (e *DecodeError) Unwrap() error { return ErrDecode }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var buf [20]byte
	n := len(buf)
	neg := i < 0
	if neg {
		i = -i
	}
	for i > 0 {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
	}
	if neg {
		n--
		buf[n] = '-'
	}
	return string(buf[n:])
}
