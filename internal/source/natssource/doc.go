// Package natssource is the core NATS adapter of internal/source: a queue-group
// subscription on one or more subjects, a publisher confirmed by a server
// round trip, and [Dial], the connection helper shared with jetstreamsource.
//
// Delivery is AT-MOST-ONCE. Core NATS has no acknowledgements and no
// redelivery: a message is gone once the server hands it to a subscriber. The
// AckFunc returned by Read is a no-op (a nak cannot give the message back), a
// message in the bounded buffer when the source closes or the process dies is
// lost, and when the buffer is full the NATS client drops messages and reports
// a slow consumer (logged). Use jetstreamsource or kafkasource when commands
// must survive a crash.
//
// Concurrency: Read must be called from one goroutine at a time; Close,
// AckFuncs and [Publisher.Publish] are safe for concurrent use.
package natssource
