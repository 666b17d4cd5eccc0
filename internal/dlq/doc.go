// Package dlq replays dead letters: it reads the messages the router parked
// (JetStream stream or Kafka topic), keeps those matching a filter on action
// and error class, strips the wps-bridge-* headers, publishes each back to the
// subject or topic it came from (confirmed by the broker), and only then
// removes it from the dead letter (JetStream: delete by sequence; Kafka:
// commit the replay group's offset). A dry run reads and reports, changing
// nothing.
//
// Replay is for one operator command at a time; nothing here is safe for
// concurrent use unless stated.
package dlq
