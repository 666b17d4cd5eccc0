package codec

// field names one input of a command, whatever carried it (envelope member,
// header, route template). It indexes the per-action rules and error names.
type field uint8

const (
	fAction field = iota
	fHub
	fID
	fExpiresAt
	fGroup
	fUserID
	fConnectionID
	fGroups
	fUserIDs
	fExcluded
	fFilter
	fTTL
	fReason
	fPermission
	fTargetName
	fData
	fDataType
	fieldCount
)

// fieldSet is a set of fields.
type fieldSet uint32

func setOf(fs ...field) fieldSet {
	var s fieldSet
	for _, f := range fs {
		s |= 1 << f
	}
	return s
}

func (s fieldSet) has(f field) bool { return s&(1<<f) != 0 }

// jsonNames are the envelope member names, used in errors and the schema.
var jsonNames = [fieldCount]string{
	fAction:       "actionName",
	fHub:          "hub",
	fID:           "id",
	fExpiresAt:    "expiresAt",
	fGroup:        "group",
	fUserID:       "userId",
	fConnectionID: "connectionId",
	fGroups:       "groups",
	fUserIDs:      "userIds",
	fExcluded:     "excluded",
	fFilter:       "filter",
	fTTL:          "ttl",
	fReason:       "reason",
	fPermission:   "permission",
	fTargetName:   "targetName",
	fData:         "data",
	fDataType:     "dataType",
}

// headerNames are the header-mode names (after the "wps-" prefix, except
// data, which is the body).
var headerNames = [fieldCount]string{
	fAction:       "wps-action",
	fHub:          "wps-hub",
	fID:           "wps-id",
	fExpiresAt:    "wps-expires-at",
	fGroup:        "wps-group",
	fUserID:       "wps-user-id",
	fConnectionID: "wps-connection-id",
	fGroups:       "wps-groups",
	fUserIDs:      "wps-user-ids",
	fExcluded:     "wps-excluded",
	fFilter:       "wps-filter",
	fTTL:          "wps-ttl",
	fReason:       "wps-reason",
	fPermission:   "wps-permission",
	fTargetName:   "wps-target-name",
	fData:         "body",
	fDataType:     "wps-data-type",
}

// commonFields are accepted by every action.
var commonFields = setOf(fAction, fHub, fID, fExpiresAt)

// sendFields are the payload fields of every send.
var sendFields = setOf(fData, fDataType)

// actionSpec lists what an action requires and what it accepts (required is
// a subset of allowed). Anything else given non-empty is an error.
type actionSpec struct {
	required fieldSet
	allowed  fieldSet
}

func spec(required, optional fieldSet) actionSpec {
	return actionSpec{required: required, allowed: required | optional | commonFields}
}

// specs is the per-action table of design.md §2 and the REST API: it drives
// both the decoder and the JSON Schema generator.
var specs = [actionCount]actionSpec{
	SendToAll:                     spec(setOf(fData), setOf(fDataType, fExcluded, fFilter, fTTL)),
	SendToGroup:                   spec(setOf(fGroup, fData), setOf(fDataType, fExcluded, fFilter, fTTL)),
	SendToUser:                    spec(setOf(fUserID, fData), setOf(fDataType, fFilter, fTTL)),
	SendToConnection:              spec(setOf(fConnectionID, fData), setOf(fDataType, fTTL)),
	AddConnectionToGroup:          spec(setOf(fGroup, fConnectionID), 0),
	RemoveConnectionFromGroup:     spec(setOf(fGroup, fConnectionID), 0),
	RemoveConnectionFromAllGroups: spec(setOf(fConnectionID), 0),
	AddUserToGroup:                spec(setOf(fGroup, fUserID), 0),
	RemoveUserFromGroup:           spec(setOf(fGroup, fUserID), 0),
	RemoveUserFromAllGroups:       spec(setOf(fUserID), 0),
	AddConnectionsToGroups:        spec(setOf(fGroups), setOf(fFilter)),
	RemoveConnectionsFromGroups:   spec(setOf(fGroups), setOf(fFilter)),
	CloseConnection:               spec(setOf(fConnectionID), setOf(fReason)),
	CloseAllConnections:           spec(0, setOf(fExcluded, fReason)),
	CloseGroupConnections:         spec(setOf(fGroup), setOf(fExcluded, fReason)),
	CloseUserConnections:          spec(setOf(fUserID), setOf(fExcluded, fReason)),
	GrantPermission:               spec(setOf(fPermission, fConnectionID), setOf(fTargetName)),
	RevokePermission:              spec(setOf(fPermission, fConnectionID), setOf(fTargetName)),
	SendToGroups:                  spec(setOf(fGroups, fData), setOf(fDataType, fExcluded, fFilter, fTTL)),
	SendToUsers:                   spec(setOf(fUserIDs, fData), setOf(fDataType, fExcluded, fFilter, fTTL)),
}

// functionsAliases are the spellings of the Azure Functions Web PubSub output
// binding that differ from the canonical names (besides case).
var functionsAliases = map[string]Action{
	"closeClientConnection": CloseConnection,
}

// actionLookup maps a normalized spelling (see normalizeAction) to its action.
var actionLookup = func() map[string]Action {
	m := make(map[string]Action, 2*int(actionCount))
	var buf [maxActionLen]byte
	add := func(name string, a Action) {
		n, ok := normalizeAction(name, &buf)
		if !ok {
			panic("codec: action name too long: " + name)
		}
		m[string(buf[:n])] = a
	}
	for _, a := range Actions() {
		add(a.String(), a)
	}
	for name, a := range functionsAliases {
		add(name, a)
	}
	return m
}()

const maxActionLen = 48

// normalizeAction lowercases s into buf, drops '_', '-' and ' ', and strips a
// trailing "action" (the Functions class names, e.g. SendToAllAction).
func normalizeAction(s string, buf *[maxActionLen]byte) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c == '-' || c == ' ':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if n == len(buf) {
			return 0, false
		}
		buf[n] = c
		n++
	}
	const suffix = "action"
	if n > len(suffix) && string(buf[n-len(suffix):n]) == suffix {
		n -= len(suffix)
	}
	return n, true
}

// ParseAction returns the action named by s. Matching ignores case, '_', '-'
// and a trailing "Action", so the canonical names (sendToAll), the Azure
// Functions spellings (SendToAll, SendToAllAction, closeClientConnection) and
// snake case (send_to_all) are all accepted. It does not allocate.
func ParseAction(s string) (Action, bool) {
	var buf [maxActionLen]byte
	n, ok := normalizeAction(s, &buf)
	if !ok || n == 0 {
		return ActionUnknown, false
	}
	a, ok := actionLookup[string(buf[:n])]
	return a, ok
}

// Permission names of grantPermission and revokePermission.
const (
	PermissionSendToGroup    = "sendToGroup"
	PermissionJoinLeaveGroup = "joinLeaveGroup"
)

// parsePermission returns the canonical spelling of a permission, matched
// case-insensitively.
func parsePermission(s string) (string, bool) {
	switch {
	case equalFoldASCII(s, PermissionSendToGroup):
		return PermissionSendToGroup, true
	case equalFoldASCII(s, PermissionJoinLeaveGroup):
		return PermissionJoinLeaveGroup, true
	}
	return "", false
}

// parseDataType reads json, text or binary, case-insensitively.
func parseDataType(s string) (DataType, bool) {
	switch {
	case equalFoldASCII(s, "json"):
		return DataJSON, true
	case equalFoldASCII(s, "text"):
		return DataText, true
	case equalFoldASCII(s, "binary"):
		return DataBinary, true
	}
	return DataJSON, false
}

func equalFoldASCII(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
