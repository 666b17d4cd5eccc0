package natssource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/wps-bridge/bridge/internal/source"
)

// DefaultBuffer is the default capacity of the buffer between the NATS client
// and Read.
const DefaultBuffer = 1024

// Config configures a core NATS [Source].
type Config struct {
	// Name is the source name copied into every Message.
	Name string
	// Conn says how to connect.
	Conn ConnConfig
	// Subjects are the subjects (wildcards allowed) to subscribe to; at least one.
	Subjects []string
	// Queue is the queue group shared by the bridge replicas; empty means
	// every replica receives every message.
	Queue string
	// Buffer is the capacity of the message buffer (default 1024). When it is
	// full the client drops messages (slow consumer).
	Buffer int
}

func (c *Config) setDefaults() {
	if c.Buffer <= 0 {
		c.Buffer = DefaultBuffer
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Conn.URL == "" {
		errs = append(errs, errors.New("conn.url: required"))
	}
	if len(c.Subjects) == 0 {
		errs = append(errs, errors.New("subjects: at least one required"))
	}
	for i, s := range c.Subjects {
		if s == "" {
			errs = append(errs, fmt.Errorf("subjects[%d]: empty", i))
		}
	}
	return errors.Join(errs...)
}

// Source reads core NATS messages (at-most-once, see the package doc).
type Source struct {
	cfg    Config
	logger *slog.Logger

	mu     sync.Mutex // guards nc, subs, closed
	nc     *nats.Conn
	subs   []*nats.Subscription
	closed bool

	msgs      chan *nats.Msg
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

var (
	_ source.Source    = (*Source)(nil)
	_ source.Connector = (*Source)(nil)
)

// New validates cfg and returns an unconnected Source; call Connect (or Read,
// which connects on first use) next.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("natssource %q: %w", cfg.Name, err)
	}
	return &Source{
		cfg:    cfg,
		logger: orDiscard(logger).With("source", cfg.Name),
		msgs:   make(chan *nats.Msg, cfg.Buffer),
		done:   make(chan struct{}),
	}, nil
}

// Connect dials NATS and subscribes to every subject in the queue group. It
// is idempotent; after Close it returns source.ErrEndOfInput.
func (s *Source) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return source.ErrEndOfInput
	}
	if s.nc != nil {
		return nil
	}
	// Close must be able to interrupt a Dial that waits for a server.
	ctx, cancel := source.UntilClosed(ctx, s.done)
	defer cancel()
	nc, err := Dial(ctx, s.cfg.Conn, s.logger)
	if err != nil {
		if s.isDone() {
			return source.ErrEndOfInput
		}
		return fmt.Errorf("natssource %q: %w", s.cfg.Name, err)
	}
	subs := make([]*nats.Subscription, 0, len(s.cfg.Subjects))
	for _, subj := range s.cfg.Subjects {
		sub, err := nc.ChanQueueSubscribe(subj, s.cfg.Queue, s.msgs)
		if err != nil {
			nc.Close()
			return fmt.Errorf("natssource %q: subscribe %q: %w", s.cfg.Name, subj, err)
		}
		// The channel is the bound: when it is full the client drops the
		// message and reports a slow consumer (logged by Dial's handler).
		subs = append(subs, sub)
	}
	// Make sure the server registered the interest before Connect returns,
	// so that a publish right after Connect is not missed.
	if err := Flush(ctx, nc); err != nil {
		nc.Close()
		return fmt.Errorf("natssource %q: flush subscriptions: %w", s.cfg.Name, err)
	}
	s.nc, s.subs = nc, subs
	s.logger.Info("nats subscribed", "subjects", s.cfg.Subjects, "queue", s.cfg.Queue)
	return nil
}

// Conn returns the connection (nil before Connect) so that a publisher can
// share it. The Source closes it in Close.
func (s *Source) Conn() *nats.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nc
}

// Read returns the next message. It blocks until a message arrives, ctx is
// done (ctx.Err()), or the source is closed (source.ErrEndOfInput); it returns
// an error wrapping source.ErrNotConnected while the connection is down. The
// AckFunc is a no-op: core NATS cannot take a message back.
func (s *Source) Read(ctx context.Context) (*source.Message, source.AckFunc, error) {
	if err := s.Connect(ctx); err != nil {
		if errors.Is(err, source.ErrEndOfInput) || ctx.Err() != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %w", source.ErrNotConnected, err)
	}
	if s.isDone() {
		return nil, nil, source.ErrEndOfInput
	}
	select {
	case m := <-s.msgs:
		return s.message(m), noAck, nil
	default:
	}
	if nc := s.Conn(); nc != nil && !nc.IsConnected() {
		return nil, nil, fmt.Errorf("natssource %q: %w", s.cfg.Name, source.ErrNotConnected)
	}
	select {
	case m := <-s.msgs:
		return s.message(m), noAck, nil
	case <-s.done:
		return nil, nil, source.ErrEndOfInput
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

func (s *Source) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func noAck(context.Context, error) error { return nil }

func (s *Source) message(m *nats.Msg) *source.Message {
	return &source.Message{
		Source:  s.cfg.Name,
		Body:    m.Data,
		Headers: FlattenHeaders(m.Header),
		Subject: m.Subject,
	}
}

// Close unsubscribes, closes the connection and makes pending and future
// Reads return source.ErrEndOfInput. Messages still buffered are dropped
// (at-most-once). It is idempotent.
func (s *Source) Close(context.Context) error {
	s.closeOnce.Do(func() { close(s.done) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, sub := range s.subs {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("unsubscribe %q: %w", sub.Subject, err))
		}
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if dropped := len(s.msgs); dropped > 0 {
		s.logger.Warn("nats source closed with buffered messages (at-most-once: dropped)", "count", dropped)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("natssource %q: close: %w", s.cfg.Name, err)
	}
	return nil
}

// FlattenHeaders turns NATS headers into source.Headers, keys sorted so that
// the order is deterministic and values of one key kept in their order. It
// returns nil for no headers.
func FlattenHeaders(h nats.Header) source.Headers {
	if len(h) == 0 {
		return nil
	}
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	out := make(source.Headers, 0, n)
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, source.Header{Key: k, Value: v})
		}
	}
	// Stable on keys keeps each key's values in their original order.
	slices.SortStableFunc(out, func(a, b source.Header) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// ToNATSHeaders is the inverse of FlattenHeaders, used by the publishers.
// It returns nil for no headers.
func ToNATSHeaders(h source.Headers) nats.Header {
	if len(h) == 0 {
		return nil
	}
	out := make(nats.Header, len(h))
	for _, kv := range h {
		out[kv.Key] = append(out[kv.Key], kv.Value)
	}
	return out
}

// Publisher publishes to a core NATS subject; Publish returns once the server
// has processed the message (a flush round trip). It does not own the
// connection. Safe for concurrent use.
type Publisher struct {
	nc      *nats.Conn
	subject string
}

var _ source.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher writing to subject on nc.
func NewPublisher(nc *nats.Conn, subject string) *Publisher {
	return &Publisher{nc: nc, subject: subject}
}

// Publish sends msg.Body and msg.Headers to msg.Subject, or to the publisher's
// subject when msg.Subject is empty, then flushes: a nil error means the
// server received the message (it may still have had no subscriber).
func (p *Publisher) Publish(ctx context.Context, msg *source.Message) error {
	subject := p.subject
	if msg.Subject != "" {
		subject = msg.Subject
	}
	if subject == "" {
		return errors.New("nats publish: no subject")
	}
	m := &nats.Msg{Subject: subject, Data: msg.Body, Header: ToNATSHeaders(msg.Headers)}
	if err := p.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("nats publish %q: %w", subject, err)
	}
	if err := Flush(ctx, p.nc); err != nil {
		return fmt.Errorf("nats publish %q: flush: %w", subject, err)
	}
	return nil
}

// Close is a no-op: the connection belongs to the caller.
func (p *Publisher) Close(context.Context) error { return nil }
