// Package source owns the broker side of the bridge: the Source interface every
// adapter implements (read a message, then ack or nak it), the Message type the
// codec decodes, and the Publisher interface used for dead letters and replay.
//
// Adapters live in sub-packages, one per broker, each hiding its ack model:
// natssource (core NATS, at-most-once), jetstreamsource (durable pull
// consumer, at-least-once) and kafkasource (consumer group, at-least-once,
// contiguous offset commits). sourcetest holds the conformance suite every
// adapter passes.
package source
