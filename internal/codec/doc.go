// Package codec turns a source message (body, headers, subject/topic, key)
// into the Commands it carries, following envelope v1 (design.md §2 and
// docs/envelope.md, the producer reference). It owns:
//
//   - the envelope: one JSON object or an array of them, with the Azure
//     Functions output-binding field names and aliases (op, messageTtlSeconds,
//     closeClientConnection, ...); unknown members are ignored;
//   - header mode: a wps-action header makes the body the raw payload and the
//     other wps-* headers the fields;
//   - route mode: a Route fixes fields, the action and the body mode, with
//     templates such as {subject.1} or {header.Tenant};
//   - validation with the Web PubSub rules (hub pattern, group names, ids
//     usable as URL path segments, ttl 0..300, per-action targets and
//     options); every failure is a *DecodeError naming the field, wrapping
//     ErrDecode, so the router dead-letters it without retries;
//   - the ordering key (DefaultKey) and the JSON Schema of envelope v1
//     (Schema), which a test checks against the decoder.
//
// The decoder is pure: no I/O, no goroutines, no logging. A Decoder is
// immutable after New and safe for concurrent use; the package functions are
// too. Commands may share memory with the message body (raw-mode payloads,
// escape-free envelope strings), so neither must be modified afterwards.
//
// # Ordering keys
//
// Commands with equal keys are sent in source order; different keys run
// concurrently. The default key is hub + "/" + target so that what one target
// sees stays ordered while unrelated targets do not wait on each other:
//
//   - conn:<id> for everything aimed at one connection (sendToConnection,
//     add/removeConnectionToGroup, removeConnectionFromAllGroups,
//     closeConnection, grant/revokePermission): a join, then a send, then a
//     close of one connection happen in that order;
//   - user:<id> for user operations (sendToUser, add/removeUserToGroup,
//     removeUserFromAllGroups, closeUserConnections);
//   - group:<name> for sendToGroup and closeGroupConnections;
//   - all for sendToAll, closeAllConnections, the multicasts sendToGroups and
//     sendToUsers, and the filtered add/removeConnectionsToGroups: their
//     audience is any connection of the hub, so they keep one order per hub.
//
// Order across kinds is not kept by default (an addConnectionToGroup keyed
// conn:c1 may overtake a sendToGroup keyed group:g). A producer that needs it
// sets a route Key template (for example "{key}") to put related commands in
// one lane.
package codec
