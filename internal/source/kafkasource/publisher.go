package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wps-bridge/bridge/internal/source"
)

// DefaultBatchTimeout is the default WriterConfig.BatchTimeout.
const DefaultBatchTimeout = 5 * time.Millisecond

// WriterConfig configures a Kafka [Publisher].
type WriterConfig struct {
	// Brokers are the bootstrap brokers; at least one.
	Brokers []string
	// Topic is the default destination, used when a message has no Subject.
	Topic string
	// SASL and TLS are as for the Source.
	SASL SASL
	TLS  *TLSConfig
	// BatchTimeout is how long a record waits for more records to batch with
	// (default 5ms).
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request (default franz-go's 10s).
	WriteTimeout time.Duration
}

// Publisher produces to Kafka with acks=all (idempotent); Publish returns
// once every in-sync replica stored the record. Records with a key go to the
// key's partition (murmur2, as the Java client), others are spread. Safe for
// concurrent use; concurrent publishes are batched into one request.
type Publisher struct {
	cl    *kgo.Client
	topic string
}

var _ source.Publisher = (*Publisher)(nil)

// NewPublisher validates cfg and returns a Publisher; it does not dial yet.
func NewPublisher(cfg WriterConfig) (*Publisher, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka publisher: brokers: at least one required")
	}
	opts, err := clientOpts(cfg.Brokers, cfg.SASL, cfg.TLS, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = DefaultBatchTimeout
	}
	opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(cfg.BatchTimeout))
	if cfg.WriteTimeout > 0 {
		opts = append(opts, kgo.ProduceRequestTimeout(cfg.WriteTimeout))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	return &Publisher{cl: cl, topic: cfg.Topic}, nil
}

// Publish writes msg.Body, msg.Key and msg.Headers to msg.Subject, or to the
// configured topic when msg.Subject is empty, and waits for acks=all.
func (p *Publisher) Publish(ctx context.Context, msg *source.Message) error {
	topic := p.topic
	if msg.Subject != "" {
		topic = msg.Subject
	}
	if topic == "" {
		return errors.New("kafka publish: no topic")
	}
	rec := &kgo.Record{Topic: topic, Key: msg.Key, Value: msg.Body}
	if len(msg.Headers) > 0 {
		rec.Headers = make([]kgo.RecordHeader, len(msg.Headers))
		for i, h := range msg.Headers {
			rec.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)}
		}
	}
	if err := p.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("kafka publish %q: %w", topic, err)
	}
	return nil
}

// Close flushes pending writes (bounded by ctx) and closes the connections.
func (p *Publisher) Close(ctx context.Context) error {
	err := p.cl.Flush(ctx)
	p.cl.Close()
	if err != nil {
		return fmt.Errorf("kafka publisher close: %w", err)
	}
	return nil
}
