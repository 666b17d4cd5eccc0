package kafkasource

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

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
	// BatchTimeout is how long a write waits for more messages to batch with
	// (default 5ms; kafka-go's own default of 1s would delay every publish).
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request (default kafka-go's 10s).
	WriteTimeout time.Duration
}

// Publisher produces to Kafka with acks=all; Publish returns once every
// in-sync replica stored the record. Records with a key go to the key's
// partition (hash), others round-robin. Safe for concurrent use; concurrent
// publishes are batched into one request.
type Publisher struct {
	w         *kafka.Writer
	transport *kafka.Transport
	topic     string
}

var _ source.Publisher = (*Publisher)(nil)

// NewPublisher validates cfg and returns a Publisher; it does not dial yet.
func NewPublisher(cfg WriterConfig) (*Publisher, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka publisher: brokers: at least one required")
	}
	mech, err := cfg.SASL.mechanism()
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	var tlsCfg *tls.Config
	if cfg.TLS != nil {
		if tlsCfg, err = cfg.TLS.Build(); err != nil {
			return nil, fmt.Errorf("kafka publisher: %w", err)
		}
		if tlsCfg == nil {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = DefaultBatchTimeout
	}
	transport := &kafka.Transport{SASL: mech, TLS: tlsCfg}
	return &Publisher{
		topic:     cfg.Topic,
		transport: transport,
		w: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: cfg.BatchTimeout,
			WriteTimeout: cfg.WriteTimeout,
			Transport:    transport,
		},
	}, nil
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
	km := kafka.Message{Topic: topic, Key: msg.Key, Value: msg.Body}
	if len(msg.Headers) > 0 {
		km.Headers = make([]kafka.Header, len(msg.Headers))
		for i, h := range msg.Headers {
			km.Headers[i] = kafka.Header{Key: h.Key, Value: []byte(h.Value)}
		}
	}
	if err := p.w.WriteMessages(ctx, km); err != nil {
		return fmt.Errorf("kafka publish %q: %w", topic, err)
	}
	return nil
}

// Close flushes pending writes and closes the connections.
func (p *Publisher) Close(context.Context) error {
	err := p.w.Close()
	// kafka.Writer.Close leaves the transport's connection pools running.
	p.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("kafka publisher close: %w", err)
	}
	return nil
}
