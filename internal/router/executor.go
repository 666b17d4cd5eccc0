package router

import (
	"context"
	"fmt"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/wps"
)

// Executor performs one command against Web PubSub. Its errors are classified
// with wps.Classify, so an implementation should return wps errors (or wrap
// them). It must be safe for concurrent use and must not mutate cmd.
type Executor interface {
	Execute(ctx context.Context, cmd *codec.Command) error
}

// ExecutorFunc adapts a function to Executor.
type ExecutorFunc func(ctx context.Context, cmd *codec.Command) error

// Execute calls f(ctx, cmd).
func (f ExecutorFunc) Execute(ctx context.Context, cmd *codec.Command) error { return f(ctx, cmd) }

// wpsExecutor maps each codec.Action to one wps.HubClient call.
type wpsExecutor struct{ c *wps.Client }

// NewWPSExecutor returns an Executor that makes one REST call per command
// with c. Multicast actions (sendToGroups, sendToUsers) are compiled by the
// Router into filtered sendToAll commands before they reach an Executor; this
// one rejects them as invalid.
func NewWPSExecutor(c *wps.Client) Executor { return wpsExecutor{c: c} }

// Execute implements Executor.
func (e wpsExecutor) Execute(ctx context.Context, cmd *codec.Command) error {
	h, err := e.c.Hub(cmd.Hub)
	if err != nil {
		return err
	}
	ct := wps.ContentType(cmd.DataType.ContentType())
	switch cmd.Action {
	case codec.SendToAll:
		return h.SendToAll(ctx, cmd.Data, ct, sendOptions(cmd))
	case codec.SendToGroup:
		return h.SendToGroup(ctx, cmd.Group, cmd.Data, ct, sendOptions(cmd))
	case codec.SendToUser:
		return h.SendToUser(ctx, cmd.UserID, cmd.Data, ct, sendOptions(cmd))
	case codec.SendToConnection:
		return h.SendToConnection(ctx, cmd.ConnectionID, cmd.Data, ct, sendOptions(cmd))
	case codec.AddConnectionToGroup:
		return h.AddConnectionToGroup(ctx, cmd.Group, cmd.ConnectionID)
	case codec.RemoveConnectionFromGroup:
		return h.RemoveConnectionFromGroup(ctx, cmd.Group, cmd.ConnectionID)
	case codec.RemoveConnectionFromAllGroups:
		return h.RemoveConnectionFromAllGroups(ctx, cmd.ConnectionID)
	case codec.AddUserToGroup:
		return h.AddUserToGroup(ctx, cmd.Group, cmd.UserID)
	case codec.RemoveUserFromGroup:
		return h.RemoveUserFromGroup(ctx, cmd.Group, cmd.UserID)
	case codec.RemoveUserFromAllGroups:
		return h.RemoveUserFromAllGroups(ctx, cmd.UserID)
	case codec.AddConnectionsToGroups:
		return h.AddConnectionsToGroups(ctx, cmd.Groups, cmd.Filter)
	case codec.RemoveConnectionsFromGroups:
		return h.RemoveConnectionsFromGroups(ctx, cmd.Groups, cmd.Filter)
	case codec.CloseConnection:
		return h.CloseConnection(ctx, cmd.ConnectionID, cmd.Reason)
	case codec.CloseAllConnections:
		return h.CloseAllConnections(ctx, closeOptions(cmd))
	case codec.CloseGroupConnections:
		return h.CloseGroupConnections(ctx, cmd.Group, closeOptions(cmd))
	case codec.CloseUserConnections:
		return h.CloseUserConnections(ctx, cmd.UserID, closeOptions(cmd))
	case codec.GrantPermission:
		return h.GrantPermission(ctx, wps.Permission(cmd.Permission), cmd.ConnectionID, cmd.TargetName)
	case codec.RevokePermission:
		return h.RevokePermission(ctx, wps.Permission(cmd.Permission), cmd.ConnectionID, cmd.TargetName)
	default:
		return &wps.ValidationError{Op: cmd.Action.String(), Field: "actionName",
			Reason: fmt.Sprintf("action %q has no single REST call", cmd.Action.String())}
	}
}

// sendOptions passes every option the command carries; the client rejects
// those the operation does not take (a *wps.ValidationError, so invalid).
func sendOptions(cmd *codec.Command) *wps.SendOptions {
	if len(cmd.Excluded) == 0 && cmd.Filter == "" && cmd.TTL == 0 {
		return nil
	}
	return &wps.SendOptions{Excluded: cmd.Excluded, Filter: cmd.Filter, TTL: cmd.TTL}
}

func closeOptions(cmd *codec.Command) *wps.CloseOptions {
	if len(cmd.Excluded) == 0 && cmd.Reason == "" {
		return nil
	}
	return &wps.CloseOptions{Excluded: cmd.Excluded, Reason: cmd.Reason}
}
