package source

import (
	"context"
	"errors"
	"strings"
)

// Sentinel errors shared by every adapter.
var (
	// ErrNotConnected is returned by Read when the broker connection is down; the
	// caller should back off and call Read again (adapters reconnect on their own).
	ErrNotConnected = errors.New("source: not connected")
	// ErrEndOfInput is returned by Read when the source will never yield another
	// message (it was closed, or a bounded input is exhausted).
	ErrEndOfInput = errors.New("source: end of input")
	// ErrShutdown is passed to an AckFunc by the router for work it abandons on
	// shutdown: the adapter naks it so that another replica takes it at once.
	ErrShutdown = errors.New("source: shutting down")
)

// Header is one message header. Headers keep the broker's order and may repeat
// (Kafka record headers); NATS headers are flattened into this form.
type Header struct {
	Key   string
	Value string
}

// Headers is an ordered list of headers.
type Headers []Header

// Get returns the first value whose key matches name case-insensitively.
func (h Headers) Get(name string) (string, bool) {
	for _, kv := range h {
		if strings.EqualFold(kv.Key, name) {
			return kv.Value, true
		}
	}
	return "", false
}

// Message is one message read from a broker. Body and Headers are owned by the
// message: adapters do not reuse them after Read returns.
type Message struct {
	// Source is the configured name of the source that produced the message.
	Source string
	// Body is the raw payload.
	Body []byte
	// Headers are the NATS headers or Kafka record headers.
	Headers Headers
	// Subject is the NATS subject; for Kafka it is the topic (so that routes can
	// match one field whatever the broker).
	Subject string
	// Topic is the Kafka topic; empty for NATS.
	Topic string
	// Key is the Kafka record key; empty for NATS.
	Key []byte
	// Partition is the Kafka partition; 0 for NATS.
	Partition int32
	// Offset is the Kafka offset or the JetStream stream sequence; 0 for core NATS.
	Offset int64
	// Touch, when non-nil, tells the broker that the message is still being
	// worked on (JetStream InProgress). The router calls it while it retries.
	Touch func(ctx context.Context) error
}

// AckFunc finishes a message. A nil err acknowledges it (JetStream Ack, Kafka
// offset marked for commit); a non-nil err gives it back to the broker for
// redelivery (JetStream Nak; Kafka: the offset is never committed past it).
// It is safe to call from any goroutine, once per message.
type AckFunc func(ctx context.Context, err error) error

// Source reads messages from one broker. Read blocks until a message is
// available, ctx is done (returns ctx.Err()), the source is closed
// (ErrEndOfInput) or the connection is lost (ErrNotConnected). Read is called
// from one goroutine at a time; AckFuncs may be called from any goroutine.
type Source interface {
	Read(ctx context.Context) (*Message, AckFunc, error)
	// Close stops reading; in-flight messages not yet acked are naked or left
	// uncommitted so the broker redelivers them.
	Close(ctx context.Context) error
}

// Connector is implemented by sources that connect explicitly before the first
// Read (caddy-style optional interface).
type Connector interface {
	Connect(ctx context.Context) error
}

// Lagger is implemented by sources that can tell how many messages wait in
// the broker for this consumer (JetStream: pending for the durable; Kafka:
// high watermark minus committed offset, summed over owned partitions). The
// bridge exports it as wpsbridge_source_lag.
type Lagger interface {
	Lag(ctx context.Context) (int64, error)
}

// Publisher writes a message to a broker destination and returns only once the
// broker confirmed it (JetStream PubAck, Kafka acks=all, core NATS flush). It is
// used for dead letters, `bridge publish` and `bridge dlq replay`. Only Body
// and Headers of msg are used (and Key for Kafka); the destination subject or
// topic is the publisher's own unless msg.Subject is set.
type Publisher interface {
	Publish(ctx context.Context, msg *Message) error
	Close(ctx context.Context) error
}
