// Package router owns the bridge's middle: it reads source messages, decodes
// them into commands, and delivers every command to Web PubSub through an
// Executor with the delivery semantics of design.md §3.
//
// What it owns:
//
//   - Ordering lanes: a fixed number of worker goroutines, each with a bounded
//     queue. A command goes to lane hash(Command.Key) % Lanes, and a lane sends
//     its commands strictly one after another (retries included), so commands
//     with equal keys reach the service in source order. There is no goroutine
//     per message.
//   - Backpressure: at most Config.MaxPending messages are read but not yet
//     finished (Read is not called while full), and lane queues are bounded, so
//     a slow service stops the reading instead of growing memory.
//   - A global adaptive in-flight limit around every REST call (AIMD between
//     MinInFlight and MaxInFlight: halved on 429/408/5xx/timeouts, +1 after a
//     window of successes) and a global Retry-After gate (a Retry-After is
//     honoured up to Retry.MaxElapsed).
//   - Error classification (wps.Classify; codec.ErrDecode is invalid):
//     transient errors are retried with exponential backoff and full jitter
//     (github.com/sethvargo/go-retry) up to Retry.MaxElapsed, then
//     dead-lettered; systemic errors (401/403) pause all reading, make Ready
//     report why, and are retried every SystemicInterval until they heal,
//     never dead-lettered; invalid commands are dead-lettered at once.
//   - Multicast compilation (sendToGroups/sendToUsers become filtered sendToAll
//     calls of at most MulticastChunk targets, in place and with the original
//     ordering key), expiresAt handling (checked before every attempt, retries
//     included: past it the command is dropped and counted, before it a send's
//     TTL is capped to the seconds left), and tracing spans "wps <action>"
//     continued from the message's traceparent.
//   - Opt-in coalescing (Command.Coalesce): a lane merges the JSON sends that
//     directly follow in its queue with the same key, action, hub, target and
//     options, waiting up to Linger, bounded by Count and Bytes, into one call
//     whose body is the JSON array of their data; all merged commands succeed
//     or fail together. A coalescing send is always sent as an array, even
//     alone, so that clients of such a route always receive arrays.
//   - Ack decisions: a message is acked once all its commands succeeded (or
//     were dropped as expired); a failed message is dead-lettered once and then
//     acked, or naked with the dead-letter error if the publish failed. On
//     shutdown every unfinished message is naked with source.ErrShutdown
//     exactly once.
//
// Concurrency: New returns a Router whose Run may be called once; Run blocks
// until shutdown. Ready is safe to call from any goroutine at any time. An
// Executor must be safe for concurrent use (the lanes call it in parallel);
// the one from NewWPSExecutor is. Metrics are safe for concurrent use.
package router
