// Package jetstreamsource is the JetStream adapter of internal/source: a
// durable pull consumer read through the nats.go jetstream iterator
// (Consumer.Messages with PullMaxMessages and idle heartbeats), with
// AT-LEAST-ONCE delivery.
//
// Ack model: the AckFunc acks on nil, naks at once on source.ErrShutdown (so
// another replica takes the message) and naks with a 1 s delay on any other
// error; Message.Touch sends InProgress, resetting the server's AckWait while
// the router retries. Besides, every message delivered and not yet acked for
// more than half of AckWait gets an InProgress (checked every third of
// AckWait), so a message that merely waits in an ordering lane is never
// redelivered behind later ones of its key. The consumer's MaxAckPending bounds the messages
// delivered and not yet acked, which is the end-to-end backpressure: when the
// router stops calling Read, the server stops delivering.
//
// The adapter optionally creates the stream and the durable consumer. When
// the consumer is deleted or heartbeats stop, it recreates the iterator (and
// the consumer, when CreateConsumer is set, resuming at the lowest sequence
// still in flight) and logs it. Close drains the iterator and naks every
// message delivered but not yet acked, plus the ones still buffered.
//
// Concurrency: Read must be called from one goroutine at a time; Close,
// AckFuncs, Touch and [Publisher.Publish] are safe for concurrent use.
package jetstreamsource
