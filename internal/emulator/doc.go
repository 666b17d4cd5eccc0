// Package emulator is a local Azure Web PubSub data plane for tests, `bridge dev` and demos.
//
// It owns the REST API of webpubsub-api.md §1 (every operation, exact success codes, api-version checks, HS256
// access-key tokens with a lenient audience check, name validation, OData filters via package filter, paging,
// permissions and :generateToken), the client WebSocket endpoint /client/hubs/{hub} with the simple,
// json.webpubsub.azure.v1 and json.reliable.webpubsub.azure.v1 protocols, fault injection (429, 503, latency),
// an inspector page at / with a Server-Sent-Events feed at /admin/events, and an unauthenticated admin API
// (/admin/state, /admin/stats, /admin/faults) meant for local use only.
//
// Every client socket has one writer goroutine fed by a bounded per-connection queue; a client whose queue
// overflows is disconnected (close code 1013) so it never slows down a REST send or another client. REST sends
// collect their targets under the hub's read lock and queue outside it.
//
// Reliable connections (json.reliable.webpubsub.azure.v1) number messages 1, 2, 3…, keep unacknowledged messages
// (closing with 1008 beyond max(1000, QueueLimit) of them) and survive a dropped socket for 30 seconds: a reconnect
// with awps_connection_id and awps_reconnection_token resumes the same connection and replays what was not
// acknowledged. A connection closed through REST gets a "disconnected" system message and close code 1008, which
// tells @azure/web-pubsub-client not to recover it.
//
// The package shares no code with internal/wps on purpose: it is the independent check of that client.
// An *Emulator is safe for concurrent use.
package emulator
