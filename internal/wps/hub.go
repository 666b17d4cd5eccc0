package wps

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wps-bridge/bridge/internal/wpsname"
)

// ContentType is the media type of a message sent with a Send* call.
type ContentType string

// The content types the service accepts for messages.
const (
	ContentJSON   ContentType = "application/json"
	ContentText   ContentType = "text/plain"
	ContentBinary ContentType = "application/octet-stream"
)

// Permission is a connection permission for Grant/Revoke/CheckPermission.
type Permission string

// The permissions the service knows.
const (
	PermissionSendToGroup    Permission = "sendToGroup"
	PermissionJoinLeaveGroup Permission = "joinLeaveGroup"
)

// SendOptions are the optional parts of a send. The zero value sends to
// everyone with no TTL.
type SendOptions struct {
	// Excluded connection ids (SendToAll, SendToGroup only). Unknown ids are
	// ignored by the service.
	Excluded []string
	// Filter is an OData filter picking the recipients (not for
	// SendToConnection).
	Filter string
	// TTL is the message time-to-live in seconds, 0..300; 0 means none and
	// is not sent.
	TTL int
}

// CloseOptions are the optional parts of a close-connections call.
type CloseOptions struct {
	Excluded []string // connection ids to keep open
	Reason   string   // reason sent to the clients; "" = none
}

// ListOptions page ListConnectionsInGroup. Zero values are not sent.
type ListOptions struct {
	MaxPageSize int // 1..200 members per page
	Top         int // at most this many members in total, >= 1
}

// GroupMember is one connection of a group.
type GroupMember struct {
	ConnectionID string `json:"connectionId"`
	UserID       string `json:"userId,omitempty"`
}

// HubClient performs the data-plane operations of one hub. It is safe for
// concurrent use. Every method validates its arguments first and returns a
// *ValidationError without any network call when they break the service's
// rules; a response other than the operation's success code is a
// *StatusError; see Classify.
type HubClient struct {
	c    *Client
	name string
	path string // "/api/hubs/<escaped hub>"
}

// Name returns the hub name.
func (h *HubClient) Name() string { return h.name }

func (h *HubClient) send(ctx context.Context, op string, u *urlBuf, body []byte, ct ContentType, o *SendOptions) error {
	h.c.endPath(u)
	if o != nil {
		u.params("excluded", o.Excluded)
		if o.Filter != "" {
			u.param("filter", o.Filter)
		}
		if o.TTL != 0 {
			u.lit("&messageTtlSeconds=").lit(strconv.Itoa(o.TTL))
		}
	}
	_, err := h.c.do(ctx, op, http.MethodPost, u, body, ct, nil, http.StatusAccepted, 0)
	return err
}

func checkSend(op string, ct ContentType, o *SendOptions) error {
	if err := checkContentType(op, ct); err != nil {
		return err
	}
	if o == nil {
		return nil
	}
	if err := checkExcluded(op, o.Excluded); err != nil {
		return err
	}
	return checkTTL(op, o.TTL)
}

// SendToAll sends body to every connection of the hub (POST
// /api/hubs/{hub}/:send, 202). o may be nil.
func (h *HubClient) SendToAll(ctx context.Context, body []byte, ct ContentType, o *SendOptions) error {
	const op = "sendToAll"
	if err := checkSend(op, ct, o); err != nil {
		return err
	}
	return h.send(ctx, op, h.c.newURL(h.path).lit("/:send"), body, ct, o)
}

// SendToGroup sends body to the connections in group (POST
// /api/hubs/{hub}/groups/{group}/:send, 202). o may be nil.
func (h *HubClient) SendToGroup(ctx context.Context, group string, body []byte, ct ContentType, o *SendOptions) error {
	const op = "sendToGroup"
	if err := checkGroup(op, "group", group); err != nil {
		return err
	}
	if err := checkSend(op, ct, o); err != nil {
		return err
	}
	return h.send(ctx, op, h.c.newURL(h.path).lit("/groups/").seg(group).lit("/:send"), body, ct, o)
}

// SendToUser sends body to the connections of userID (POST
// /api/hubs/{hub}/users/{userId}/:send, 202). o may be nil; o.Excluded is
// not supported by the service and is refused.
func (h *HubClient) SendToUser(ctx context.Context, userID string, body []byte, ct ContentType, o *SendOptions) error {
	const op = "sendToUser"
	if err := checkSegment(op, "userId", userID); err != nil {
		return err
	}
	if o != nil && len(o.Excluded) > 0 {
		return &ValidationError{Op: op, Field: "excluded", Reason: "not supported by sendToUser"}
	}
	if err := checkSend(op, ct, o); err != nil {
		return err
	}
	return h.send(ctx, op, h.c.newURL(h.path).lit("/users/").seg(userID).lit("/:send"), body, ct, o)
}

// SendToConnection sends body to one connection (POST
// /api/hubs/{hub}/connections/{connectionId}/:send, 202). o may be nil; only
// o.TTL is supported.
func (h *HubClient) SendToConnection(ctx context.Context, connectionID string, body []byte, ct ContentType, o *SendOptions) error {
	const op = "sendToConnection"
	if err := checkSegment(op, "connectionId", connectionID); err != nil {
		return err
	}
	if o != nil && len(o.Excluded) > 0 {
		return &ValidationError{Op: op, Field: "excluded", Reason: "not supported by sendToConnection"}
	}
	if o != nil && o.Filter != "" {
		return &ValidationError{Op: op, Field: "filter", Reason: "not supported by sendToConnection"}
	}
	if err := checkSend(op, ct, o); err != nil {
		return err
	}
	return h.send(ctx, op, h.c.newURL(h.path).lit("/connections/").seg(connectionID).lit("/:send"), body, ct, o)
}

func (h *HubClient) closeConns(ctx context.Context, op string, u *urlBuf, o *CloseOptions) error {
	h.c.endPath(u)
	if o != nil {
		u.params("excluded", o.Excluded)
		if o.Reason != "" {
			u.param("reason", o.Reason)
		}
	}
	_, err := h.c.do(ctx, op, http.MethodPost, u, nil, "", nil, http.StatusNoContent, 0)
	return err
}

func checkClose(op string, o *CloseOptions) error {
	if o == nil {
		return nil
	}
	return checkExcluded(op, o.Excluded)
}

// CloseAllConnections closes every connection of the hub (POST
// /api/hubs/{hub}/:closeConnections, 204). o may be nil.
func (h *HubClient) CloseAllConnections(ctx context.Context, o *CloseOptions) error {
	const op = "closeAllConnections"
	if err := checkClose(op, o); err != nil {
		return err
	}
	return h.closeConns(ctx, op, h.c.newURL(h.path).lit("/:closeConnections"), o)
}

// CloseGroupConnections closes the connections in group (POST
// /api/hubs/{hub}/groups/{group}/:closeConnections, 204). o may be nil.
func (h *HubClient) CloseGroupConnections(ctx context.Context, group string, o *CloseOptions) error {
	const op = "closeGroupConnections"
	if err := checkGroup(op, "group", group); err != nil {
		return err
	}
	if err := checkClose(op, o); err != nil {
		return err
	}
	return h.closeConns(ctx, op, h.c.newURL(h.path).lit("/groups/").seg(group).lit("/:closeConnections"), o)
}

// CloseUserConnections closes the connections of userID (POST
// /api/hubs/{hub}/users/{userId}/:closeConnections, 204). o may be nil.
func (h *HubClient) CloseUserConnections(ctx context.Context, userID string, o *CloseOptions) error {
	const op = "closeUserConnections"
	if err := checkSegment(op, "userId", userID); err != nil {
		return err
	}
	if err := checkClose(op, o); err != nil {
		return err
	}
	return h.closeConns(ctx, op, h.c.newURL(h.path).lit("/users/").seg(userID).lit("/:closeConnections"), o)
}

// CloseConnection closes one connection (DELETE
// /api/hubs/{hub}/connections/{connectionId}, 204); reason may be "".
func (h *HubClient) CloseConnection(ctx context.Context, connectionID, reason string) error {
	const op = "closeConnection"
	if err := checkSegment(op, "connectionId", connectionID); err != nil {
		return err
	}
	u := h.c.endPath(h.c.newURL(h.path).lit("/connections/").seg(connectionID))
	if reason != "" {
		u.param("reason", reason)
	}
	_, err := h.c.do(ctx, op, http.MethodDelete, u, nil, "", nil, http.StatusNoContent, 0)
	return err
}

// exists runs a HEAD check: 200 is true, 404 false, anything else an error.
func (h *HubClient) exists(ctx context.Context, op string, u *urlBuf) (bool, error) {
	status, err := h.c.do(ctx, op, http.MethodHead, u, nil, "", nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	return status == http.StatusOK, nil
}

// ConnectionExists reports whether the connection is open (HEAD
// /api/hubs/{hub}/connections/{connectionId}: 200 true, 404 false).
func (h *HubClient) ConnectionExists(ctx context.Context, connectionID string) (bool, error) {
	const op = "connectionExists"
	if err := checkSegment(op, "connectionId", connectionID); err != nil {
		return false, err
	}
	return h.exists(ctx, op, h.c.newURL(h.path).lit("/connections/").seg(connectionID))
}

// GroupExists reports whether group has any connection (HEAD
// /api/hubs/{hub}/groups/{group}: 200 true, 404 false).
func (h *HubClient) GroupExists(ctx context.Context, group string) (bool, error) {
	const op = "groupExists"
	if err := checkGroup(op, "group", group); err != nil {
		return false, err
	}
	return h.exists(ctx, op, h.c.newURL(h.path).lit("/groups/").seg(group))
}

// UserExists reports whether userID has any connection (HEAD
// /api/hubs/{hub}/users/{userId}: 200 true, 404 false).
func (h *HubClient) UserExists(ctx context.Context, userID string) (bool, error) {
	const op = "userExists"
	if err := checkSegment(op, "userId", userID); err != nil {
		return false, err
	}
	return h.exists(ctx, op, h.c.newURL(h.path).lit("/users/").seg(userID))
}

// groupAndID validates a (group, id) pair.
func groupAndID(op, group, idField, id string) error {
	if err := checkGroup(op, "group", group); err != nil {
		return err
	}
	return checkSegment(op, idField, id)
}

// AddConnectionToGroup adds a connection to group (PUT
// /api/hubs/{hub}/groups/{group}/connections/{connectionId}, 200).
func (h *HubClient) AddConnectionToGroup(ctx context.Context, group, connectionID string) error {
	const op = "addConnectionToGroup"
	if err := groupAndID(op, group, "connectionId", connectionID); err != nil {
		return err
	}
	u := h.c.newURL(h.path).lit("/groups/").seg(group).lit("/connections/").seg(connectionID)
	_, err := h.c.do(ctx, op, http.MethodPut, u, nil, "", nil, http.StatusOK, 0)
	return err
}

// RemoveConnectionFromGroup removes a connection from group (DELETE
// /api/hubs/{hub}/groups/{group}/connections/{connectionId}, 204).
func (h *HubClient) RemoveConnectionFromGroup(ctx context.Context, group, connectionID string) error {
	const op = "removeConnectionFromGroup"
	if err := groupAndID(op, group, "connectionId", connectionID); err != nil {
		return err
	}
	u := h.c.newURL(h.path).lit("/groups/").seg(group).lit("/connections/").seg(connectionID)
	_, err := h.c.do(ctx, op, http.MethodDelete, u, nil, "", nil, http.StatusNoContent, 0)
	return err
}

// RemoveConnectionFromAllGroups removes a connection from every group
// (DELETE /api/hubs/{hub}/connections/{connectionId}/groups, 204).
func (h *HubClient) RemoveConnectionFromAllGroups(ctx context.Context, connectionID string) error {
	const op = "removeConnectionFromAllGroups"
	if err := checkSegment(op, "connectionId", connectionID); err != nil {
		return err
	}
	u := h.c.newURL(h.path).lit("/connections/").seg(connectionID).lit("/groups")
	_, err := h.c.do(ctx, op, http.MethodDelete, u, nil, "", nil, http.StatusNoContent, 0)
	return err
}

// AddUserToGroup adds every connection of userID to group (PUT
// /api/hubs/{hub}/users/{userId}/groups/{group}, 200).
func (h *HubClient) AddUserToGroup(ctx context.Context, group, userID string) error {
	const op = "addUserToGroup"
	if err := groupAndID(op, group, "userId", userID); err != nil {
		return err
	}
	u := h.c.newURL(h.path).lit("/users/").seg(userID).lit("/groups/").seg(group)
	_, err := h.c.do(ctx, op, http.MethodPut, u, nil, "", nil, http.StatusOK, 0)
	return err
}

// RemoveUserFromGroup removes userID from group (DELETE
// /api/hubs/{hub}/users/{userId}/groups/{group}, 204).
func (h *HubClient) RemoveUserFromGroup(ctx context.Context, group, userID string) error {
	const op = "removeUserFromGroup"
	if err := groupAndID(op, group, "userId", userID); err != nil {
		return err
	}
	u := h.c.newURL(h.path).lit("/users/").seg(userID).lit("/groups/").seg(group)
	_, err := h.c.do(ctx, op, http.MethodDelete, u, nil, "", nil, http.StatusNoContent, 0)
	return err
}

// RemoveUserFromAllGroups removes userID from every group (DELETE
// /api/hubs/{hub}/users/{userId}/groups, 204).
func (h *HubClient) RemoveUserFromAllGroups(ctx context.Context, userID string) error {
	const op = "removeUserFromAllGroups"
	if err := checkSegment(op, "userId", userID); err != nil {
		return err
	}
	u := h.c.newURL(h.path).lit("/users/").seg(userID).lit("/groups")
	_, err := h.c.do(ctx, op, http.MethodDelete, u, nil, "", nil, http.StatusNoContent, 0)
	return err
}

type groupsRequest struct {
	Groups []string `json:"groups"`
	Filter string   `json:"filter,omitempty"`
}

func (h *HubClient) groupsOp(ctx context.Context, op, action string, groups []string, filter string) error {
	if len(groups) == 0 {
		return &ValidationError{Op: op, Field: "groups", Reason: "must not be empty"}
	}
	for _, g := range groups {
		if r := wpsname.GroupReason(g); r != "" {
			return &ValidationError{Op: op, Field: "groups", Reason: "each group " + r}
		}
	}
	body, err := json.Marshal(groupsRequest{Groups: groups, Filter: filter})
	if err != nil {
		return fmt.Errorf("wps: %s: encode body: %w", op, err)
	}
	_, err = h.c.do(ctx, op, http.MethodPost, h.c.newURL(h.path).lit(action), body, ContentJSON, nil, http.StatusOK, 0)
	return err
}

// AddConnectionsToGroups adds the connections matching the OData filter to
// every group in groups (POST /api/hubs/{hub}/:addToGroups, 200). An empty
// filter matches every connection of the hub.
func (h *HubClient) AddConnectionsToGroups(ctx context.Context, groups []string, filter string) error {
	return h.groupsOp(ctx, "addConnectionsToGroups", "/:addToGroups", groups, filter)
}

// RemoveConnectionsFromGroups removes the connections matching the OData
// filter from every group in groups (POST /api/hubs/{hub}/:removeFromGroups,
// 200). An empty filter matches every connection of the hub.
func (h *HubClient) RemoveConnectionsFromGroups(ctx context.Context, groups []string, filter string) error {
	return h.groupsOp(ctx, "removeConnectionsFromGroups", "/:removeFromGroups", groups, filter)
}

func (h *HubClient) permissionURL(op string, p Permission, connectionID, targetName string) (*urlBuf, error) {
	if err := checkPermission(op, p); err != nil {
		return nil, err
	}
	if err := checkSegment(op, "connectionId", connectionID); err != nil {
		return nil, err
	}
	if targetName != "" {
		if r := wpsname.GroupReason(targetName); r != "" {
			return nil, &ValidationError{Op: op, Field: "targetName", Reason: r}
		}
	}
	u := h.c.endPath(h.c.newURL(h.path).lit("/permissions/").seg(string(p)).lit("/connections/").seg(connectionID))
	if targetName != "" {
		u.param("targetName", targetName)
	}
	return u, nil
}

// GrantPermission grants p on group targetName ("" = all groups) to a
// connection (PUT /api/hubs/{hub}/permissions/{permission}/connections/{connectionId}, 200).
func (h *HubClient) GrantPermission(ctx context.Context, p Permission, connectionID, targetName string) error {
	const op = "grantPermission"
	u, err := h.permissionURL(op, p, connectionID, targetName)
	if err != nil {
		return err
	}
	_, err = h.c.do(ctx, op, http.MethodPut, u, nil, "", nil, http.StatusOK, 0)
	return err
}

// RevokePermission revokes p on group targetName ("" = all groups) from a
// connection (DELETE, same path, 204).
func (h *HubClient) RevokePermission(ctx context.Context, p Permission, connectionID, targetName string) error {
	const op = "revokePermission"
	u, err := h.permissionURL(op, p, connectionID, targetName)
	if err != nil {
		return err
	}
	_, err = h.c.do(ctx, op, http.MethodDelete, u, nil, "", nil, http.StatusNoContent, 0)
	return err
}

// CheckPermission reports whether a connection has p on group targetName
// (HEAD, same path: 200 true, 404 false).
func (h *HubClient) CheckPermission(ctx context.Context, p Permission, connectionID, targetName string) (bool, error) {
	const op = "checkPermission"
	u, err := h.permissionURL(op, p, connectionID, targetName)
	if err != nil {
		return false, err
	}
	return h.exists(ctx, op, u)
}

// lifetimeMinutes validates a token lifetime and returns it in whole minutes.
func lifetimeMinutes(op string, d time.Duration) (int64, error) {
	if d == 0 {
		return 60, nil
	}
	if d < time.Minute {
		return 0, &ValidationError{Op: op, Field: "lifetime", Reason: "must be at least 1 minute"}
	}
	return int64(d / time.Minute), nil
}
