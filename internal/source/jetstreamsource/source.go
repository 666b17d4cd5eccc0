package jetstreamsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/natssource"
)

// Defaults of Config.
const (
	DefaultFetchBatch    = 256
	DefaultMaxAckPending = 2048
	DefaultAckWait       = 30 * time.Second
	DefaultHeartbeat     = 5 * time.Second
	// NakDelay is the redelivery delay asked for a message naked with an
	// error other than source.ErrShutdown.
	NakDelay = time.Second
)

// Config configures a JetStream [Source].
type Config struct {
	// Name is the source name copied into every Message.
	Name string
	// Conn says how to connect.
	Conn natssource.ConnConfig
	// Stream is the stream name; required.
	Stream string
	// Subjects are the stream's subjects, used only when CreateStream is set.
	Subjects []string
	// CreateStream creates (or updates) the stream with Subjects on Connect.
	CreateStream bool
	// Durable is the durable consumer name; required.
	Durable string
	// CreateConsumer creates (or updates) the durable consumer on Connect and
	// recreates it if it is deleted; otherwise it must exist.
	CreateConsumer bool
	// FilterSubjects restricts the consumer to these subjects (optional).
	FilterSubjects []string
	// FetchBatch is the number of messages a pull asks for (default 256).
	FetchBatch int
	// MaxAckPending bounds the delivered-but-unacked messages (default 2048).
	MaxAckPending int
	// AckWait is the server's redelivery timeout (default 30s).
	AckWait time.Duration
	// MaxDeliver is the maximum number of deliveries (default -1, unlimited).
	MaxDeliver int
	// Heartbeat is the pull requests' idle heartbeat (default 5s); missing two
	// makes the source recreate its iterator.
	Heartbeat time.Duration
}

func (c *Config) setDefaults() {
	if c.FetchBatch <= 0 {
		c.FetchBatch = DefaultFetchBatch
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = -1
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Conn.URL == "" {
		errs = append(errs, errors.New("conn.url: required"))
	}
	if c.Stream == "" {
		errs = append(errs, errors.New("stream: required"))
	}
	if c.Durable == "" {
		errs = append(errs, errors.New("durable: required"))
	}
	if c.CreateStream && len(c.Subjects) == 0 {
		errs = append(errs, errors.New("subjects: required to create the stream"))
	}
	return errors.Join(errs...)
}

func (c *Config) consumerConfig() jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:       c.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		MaxAckPending: c.MaxAckPending,
	}
	if len(c.FilterSubjects) == 1 {
		cc.FilterSubject = c.FilterSubjects[0]
	} else {
		cc.FilterSubjects = c.FilterSubjects
	}
	return cc
}

// Source reads a durable JetStream pull consumer (at-least-once).
type Source struct {
	cfg    Config
	logger *slog.Logger

	connMu sync.Mutex // guards nc, js, closed (held by Connect)
	nc     *nats.Conn
	js     jetstream.JetStream
	closed bool

	done      chan struct{} // closed at the start of Close
	closeOnce sync.Once
	keepAlive sync.WaitGroup // keepInFlightAlive, started by Connect

	readMu   sync.Mutex // held by Read and by Close's final drain
	consumer jetstream.Consumer

	iterMu sync.Mutex // guards iter; Read holds readMu too when it writes iter
	iter   jetstream.MessagesContext

	flightMu      sync.Mutex
	inFlight      map[uint64]flight // delivered and not acked, by stream sequence
	lastDelivered uint64            // stream sequence of the last message Read returned
}

var (
	_ source.Source    = (*Source)(nil)
	_ source.Connector = (*Source)(nil)
	_ source.Lagger    = (*Source)(nil)
)

// Lag is the durable consumer's NumPending: messages in the stream (matching
// its filter) not yet delivered to any replica.
func (s *Source) Lag(ctx context.Context) (int64, error) {
	s.connMu.Lock()
	js := s.js
	s.connMu.Unlock()
	if js == nil {
		return 0, source.ErrNotConnected
	}
	// The lookup fetches the consumer's info: one request, no second Info.
	cons, err := js.Consumer(ctx, s.cfg.Stream, s.cfg.Durable)
	if err != nil {
		return 0, fmt.Errorf("jetstreamsource %q: lag: %w", s.cfg.Name, err)
	}
	return int64(cons.CachedInfo().NumPending), nil
}

// New validates cfg, applies the defaults and returns an unconnected Source.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("jetstreamsource %q: %w", cfg.Name, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{
		cfg:      cfg,
		logger:   logger.With("source", cfg.Name, "stream", cfg.Stream, "durable", cfg.Durable),
		done:     make(chan struct{}),
		inFlight: make(map[uint64]flight),
	}, nil
}

// Connect dials NATS, creates the stream and the consumer when configured to,
// and checks that the consumer exists. It is idempotent; after Close it
// returns source.ErrEndOfInput.
func (s *Source) Connect(ctx context.Context) error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed {
		return source.ErrEndOfInput
	}
	if s.nc != nil {
		return nil
	}
	// Close must be able to interrupt a Dial that waits for a server.
	ctx, cancel := source.UntilClosed(ctx, s.done)
	defer cancel()
	nc, err := natssource.Dial(ctx, s.cfg.Conn, s.logger)
	if err != nil {
		if s.isDone() {
			return source.ErrEndOfInput
		}
		return fmt.Errorf("jetstreamsource %q: %w", s.cfg.Name, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("jetstreamsource %q: %w", s.cfg.Name, err)
	}
	if s.cfg.CreateStream {
		if err := EnsureStream(ctx, js, s.cfg.Stream, s.cfg.Subjects); err != nil {
			nc.Close()
			return fmt.Errorf("jetstreamsource %q: %w", s.cfg.Name, err)
		}
	}
	cons, err := s.lookupConsumer(ctx, js, 0)
	if err != nil {
		nc.Close()
		return fmt.Errorf("jetstreamsource %q: %w", s.cfg.Name, err)
	}
	s.nc, s.js = nc, js
	s.readMu.Lock()
	s.consumer = cons
	s.readMu.Unlock()
	s.keepAlive.Go(s.keepInFlightAlive)
	return nil
}

// flight is a message delivered to the router and not yet acked, with when
// the server last heard about it (delivery or InProgress).
type flight struct {
	jm      jetstream.Msg
	touched time.Time
}

// keepInFlightAlive sends InProgress for every message held longer than half
// of AckWait, every third of AckWait, until Close: a message waiting in an
// ordering lane behind a slow or retrying one is never redelivered (which
// would duplicate it and break its key's order) just because it waited.
func (s *Source) keepInFlightAlive() {
	t := time.NewTicker(s.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.touchStale(now)
		}
	}
}

func (s *Source) touchStale(now time.Time) {
	limit := now.Add(-s.cfg.AckWait / 2)
	var stale []jetstream.Msg
	s.flightMu.Lock()
	for seq, f := range s.inFlight {
		if f.touched.Before(limit) {
			stale = append(stale, f.jm)
			s.inFlight[seq] = flight{jm: f.jm, touched: now}
		}
	}
	s.flightMu.Unlock()
	for _, jm := range stale {
		if err := jm.InProgress(); err != nil {
			s.logger.Debug("jetstream in-progress failed", "subject", jm.Subject(), "err", err)
		}
	}
}

// lookupConsumer creates (CreateConsumer) or looks up the durable consumer.
// A non-zero resumeSeq recreates a deleted consumer from that stream
// sequence instead of from the start of the stream.
func (s *Source) lookupConsumer(ctx context.Context, js jetstream.JetStream, resumeSeq uint64) (jetstream.Consumer, error) {
	if !s.cfg.CreateConsumer {
		cons, err := js.Consumer(ctx, s.cfg.Stream, s.cfg.Durable)
		if err != nil {
			return nil, fmt.Errorf("consumer %s/%s: %w", s.cfg.Stream, s.cfg.Durable, err)
		}
		return cons, nil
	}
	cc := s.cfg.consumerConfig()
	if resumeSeq == 0 {
		// A consumer recreated at a start sequence (by this or another
		// replica) keeps that deliver policy: the server refuses to update
		// it, so carry it over instead of asking for DeliverAll.
		if existing, err := js.Consumer(ctx, s.cfg.Stream, s.cfg.Durable); err == nil {
			if info := existing.CachedInfo(); info != nil {
				cc.DeliverPolicy = info.Config.DeliverPolicy
				cc.OptStartSeq = info.Config.OptStartSeq
				cc.OptStartTime = info.Config.OptStartTime
			}
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("consumer %s/%s: %w", s.cfg.Stream, s.cfg.Durable, err)
		}
		cons, err := js.CreateOrUpdateConsumer(ctx, s.cfg.Stream, cc)
		if err != nil {
			return nil, fmt.Errorf("create consumer %s/%s: %w", s.cfg.Stream, s.cfg.Durable, err)
		}
		return cons, nil
	}
	cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
	cc.OptStartSeq = resumeSeq
	cons, err := js.CreateConsumer(ctx, s.cfg.Stream, cc)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Another replica recreated it first: share it as it is.
		cons, err = js.Consumer(ctx, s.cfg.Stream, s.cfg.Durable)
	}
	if err != nil {
		return nil, fmt.Errorf("recreate consumer %s/%s at sequence %d: %w", s.cfg.Stream, s.cfg.Durable, resumeSeq, err)
	}
	return cons, nil
}

// Conn returns the NATS connection (nil before Connect), for a dead-letter
// publisher sharing it. The Source closes it in Close.
func (s *Source) Conn() *nats.Conn {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return s.nc
}

// JetStream returns the JetStream context of the connection (nil before
// Connect).
func (s *Source) JetStream() jetstream.JetStream {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return s.js
}

// Read returns the next message and its AckFunc. It blocks until a message is
// delivered, ctx is done (ctx.Err()) or the source is closed
// (source.ErrEndOfInput). When the consumer is gone or heartbeats stop it
// recreates the iterator and goes on; if that fails, or fails twice in a row,
// it returns an error wrapping source.ErrNotConnected and the caller retries.
func (s *Source) Read(ctx context.Context) (*source.Message, source.AckFunc, error) {
	if err := s.Connect(ctx); err != nil {
		if errors.Is(err, source.ErrEndOfInput) || ctx.Err() != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %w", source.ErrNotConnected, err)
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	resets := 0
	for {
		if s.isDone() {
			return nil, nil, source.ErrEndOfInput
		}
		it := s.iterator()
		if it == nil {
			var err error
			if it, err = s.startIterator(ctx); err != nil {
				if errors.Is(err, source.ErrEndOfInput) || ctx.Err() != nil {
					return nil, nil, err
				}
				return nil, nil, fmt.Errorf("jetstreamsource %q: %w: %w", s.cfg.Name, source.ErrNotConnected, err)
			}
		}
		jm, err := it.Next(jetstream.NextContext(ctx))
		if err == nil {
			if s.isDone() {
				// Close is draining: give the message back at once.
				s.nak(jm)
				continue
			}
			return s.deliver(jm)
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if s.isDone() {
			return nil, nil, source.ErrEndOfInput
		}
		it.Stop()
		s.iterMu.Lock()
		s.iter = nil
		s.iterMu.Unlock()
		resets++
		s.logger.Warn("jetstream iterator failed; recreating it", "err", err)
		// Missed heartbeats may mean the consumer vanished while the
		// connection was down (no deleted status arrives then): look it up
		// (or recreate it) again rather than poll a consumer that is gone.
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
			errors.Is(err, jetstream.ErrNoHeartbeat) {
			s.consumer = nil
		}
		if resets > 1 || !s.Conn().IsConnected() {
			return nil, nil, fmt.Errorf("jetstreamsource %q: %w: %w", s.cfg.Name, source.ErrNotConnected, err)
		}
	}
}

func (s *Source) iterator() jetstream.MessagesContext {
	s.iterMu.Lock()
	defer s.iterMu.Unlock()
	return s.iter
}

// startIterator (re)creates the consumer if needed and opens the iterator.
// Called with readMu held.
func (s *Source) startIterator(ctx context.Context) (jetstream.MessagesContext, error) {
	if s.consumer == nil {
		cons, err := s.lookupConsumer(ctx, s.JetStream(), s.resumeSeq())
		if err != nil {
			return nil, err
		}
		s.logger.Info("jetstream consumer recreated")
		s.consumer = cons
	}
	it, err := s.consumer.Messages(
		jetstream.PullMaxMessages(s.cfg.FetchBatch),
		jetstream.PullHeartbeat(s.cfg.Heartbeat),
	)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.consumer = nil
		}
		return nil, fmt.Errorf("open iterator: %w", err)
	}
	s.iterMu.Lock()
	defer s.iterMu.Unlock()
	if s.isDone() { // Close ran meanwhile and saw no iterator to drain
		it.Stop()
		return nil, source.ErrEndOfInput
	}
	s.iter = it
	return it, nil
}

// resumeSeq is where a recreated consumer starts: the lowest sequence still
// in flight, else the one after the last delivered; 0 when nothing was read.
func (s *Source) resumeSeq() uint64 {
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	var lowest uint64
	for seq := range s.inFlight {
		if lowest == 0 || seq < lowest {
			lowest = seq
		}
	}
	if lowest != 0 {
		return lowest
	}
	if s.lastDelivered != 0 {
		return s.lastDelivered + 1
	}
	return 0
}

// deliver wraps jm into a Message and an AckFunc. Called with readMu held.
func (s *Source) deliver(jm jetstream.Msg) (*source.Message, source.AckFunc, error) {
	var seq uint64
	if md, err := jm.Metadata(); err == nil {
		seq = md.Sequence.Stream
	} else {
		s.logger.Warn("jetstream message without metadata", "subject", jm.Subject(), "err", err)
	}
	if seq != 0 {
		s.flightMu.Lock()
		s.inFlight[seq] = flight{jm: jm, touched: time.Now()}
		s.lastDelivered = seq
		s.flightMu.Unlock()
	}
	d := &delivery{s: s, jm: jm, seq: seq}
	d.msg = source.Message{
		Source:  s.cfg.Name,
		Body:    jm.Data(),
		Headers: natssource.FlattenHeaders(jm.Headers()),
		Subject: jm.Subject(),
		Offset:  int64(seq),
		Touch:   d.touch,
	}
	return &d.msg, d.ack, nil
}

// delivery is one message handed to the router: one allocation carries the
// Message and the state its AckFunc and Touch need.
type delivery struct {
	msg source.Message
	s   *Source
	jm  jetstream.Msg
	seq uint64
}

var errReleased = errors.New("message already finished (acked, or naked by Close)")

func (d *delivery) ack(_ context.Context, err error) error {
	if !d.s.release(d.seq) {
		return fmt.Errorf("jetstreamsource %q: ack sequence %d: %w", d.s.cfg.Name, d.seq, errReleased)
	}
	var aerr error
	switch {
	case err == nil:
		aerr = d.jm.Ack()
	case errors.Is(err, source.ErrShutdown):
		aerr = d.jm.Nak()
	default:
		aerr = d.jm.NakWithDelay(NakDelay)
	}
	if aerr != nil {
		return fmt.Errorf("jetstreamsource %q: ack sequence %d: %w", d.s.cfg.Name, d.seq, aerr)
	}
	return nil
}

func (d *delivery) touch(context.Context) error {
	if err := d.jm.InProgress(); err != nil {
		return fmt.Errorf("jetstreamsource %q: in progress sequence %d: %w", d.s.cfg.Name, d.seq, err)
	}
	return nil
}

// release removes seq from the in-flight set; false means Close already naked
// it. Messages without a sequence are not tracked and always released.
func (s *Source) release(seq uint64) bool {
	if seq == 0 {
		return true
	}
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	if _, ok := s.inFlight[seq]; !ok {
		return false
	}
	delete(s.inFlight, seq)
	return true
}

func (s *Source) nak(jm jetstream.Msg) {
	if err := jm.Nak(); err != nil {
		s.logger.Warn("jetstream nak failed", "subject", jm.Subject(), "err", err)
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

// Close stops reading: a blocked Read returns source.ErrEndOfInput, the
// iterator is drained and its buffered messages naked, every message
// delivered but not yet acked is naked (so another replica takes it at once),
// and the connection is flushed and closed. ctx bounds the wait. Idempotent.
func (s *Source) Close(ctx context.Context) error {
	first := false
	s.closeOnce.Do(func() { first = true; close(s.done) })
	if !first {
		return nil
	}
	s.connMu.Lock()
	s.closed = true
	nc := s.nc
	s.connMu.Unlock()
	if nc == nil {
		return nil
	}
	var errs []error
	// Wake a blocked Read: Drain makes Next hand out the buffered messages
	// (Read naks them, seeing done) and then fail.
	if it := s.iterator(); it != nil {
		it.Drain()
	}
	s.readMu.Lock()
	if it := s.iterator(); it != nil {
		for {
			jm, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					errs = append(errs, fmt.Errorf("drain iterator: %w", err))
					it.Stop()
				}
				break
			}
			s.nak(jm)
		}
	}
	s.readMu.Unlock()

	s.keepAlive.Wait()
	s.flightMu.Lock()
	pending := s.inFlight
	s.inFlight = make(map[uint64]flight)
	s.flightMu.Unlock()
	for _, f := range pending {
		s.nak(f.jm)
	}
	if len(pending) > 0 {
		s.logger.Info("naked in-flight messages on close", "count", len(pending))
	}
	if err := natssource.Flush(ctx, nc); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("flush naks: %w", err))
	}
	nc.Close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("jetstreamsource %q: close: %w", s.cfg.Name, err)
	}
	return nil
}

// EnsureStream creates the stream name on subjects, or updates it to them if
// it exists (used for the source stream and dead-letter streams).
func EnsureStream(ctx context.Context, js jetstream.JetStream, name string, subjects []string) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", name, err)
	}
	return nil
}

// Publisher publishes to a JetStream subject; Publish returns once the stream
// stored the message (PubAck). It does not own the connection. Safe for
// concurrent use.
type Publisher struct {
	js      jetstream.JetStream
	subject string
}

var _ source.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher writing to subject through js.
func NewPublisher(js jetstream.JetStream, subject string) *Publisher {
	return &Publisher{js: js, subject: subject}
}

// Publish stores msg.Body and msg.Headers on msg.Subject, or on the
// publisher's subject when msg.Subject is empty. It fails (wrapping
// jetstream.ErrNoStreamResponse) when no stream captures the subject.
func (p *Publisher) Publish(ctx context.Context, msg *source.Message) error {
	subject := p.subject
	if msg.Subject != "" {
		subject = msg.Subject
	}
	if subject == "" {
		return errors.New("jetstream publish: no subject")
	}
	m := &nats.Msg{Subject: subject, Data: msg.Body, Header: natssource.ToNATSHeaders(msg.Headers)}
	if _, err := p.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("jetstream publish %q: %w", subject, err)
	}
	return nil
}

// Close is a no-op: the connection belongs to the caller.
func (p *Publisher) Close(context.Context) error { return nil }
