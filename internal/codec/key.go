package codec

// DefaultKey returns the default ordering key of c: hub + "/" + target, where
// the target is "conn:<id>" for connection-targeted actions (sendToConnection,
// add/removeConnectionToGroup, removeConnectionFromAllGroups,
// closeConnection, grant/revokePermission), "user:<id>" for user actions
// (sendToUser, add/removeUserToGroup, removeUserFromAllGroups,
// closeUserConnections), "group:<name>" for sendToGroup and
// closeGroupConnections, and "all" for sendToAll, closeAllConnections,
// the multicasts and the filtered add/removeConnectionsToGroups. Hub names
// cannot contain "/", so keys of different hubs never collide.
func DefaultKey(c *Command) string {
	kind, target := "all", ""
	switch c.Action {
	case SendToConnection, AddConnectionToGroup, RemoveConnectionFromGroup, RemoveConnectionFromAllGroups,
		CloseConnection, GrantPermission, RevokePermission:
		kind, target = "conn:", c.ConnectionID
	case SendToUser, AddUserToGroup, RemoveUserFromGroup, RemoveUserFromAllGroups, CloseUserConnections:
		kind, target = "user:", c.UserID
	case SendToGroup, CloseGroupConnections:
		kind, target = "group:", c.Group
	}
	return c.Hub + "/" + kind + target
}
