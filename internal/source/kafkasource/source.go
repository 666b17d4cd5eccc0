package kafkasource

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/natssource"
)

// TLSConfig is the client TLS configuration shared with the NATS adapters.
type TLSConfig = natssource.TLSConfig

// Defaults of Config.
const (
	DefaultQueueCapacity  = 1024
	DefaultCommitInterval = time.Second
	DefaultMaxUnacked     = 10000
	DefaultMaxWait        = 500 * time.Millisecond
	DefaultSessionTimeout = 10 * time.Second
	// NakDelay is how long a record naked with an error other than
	// source.ErrShutdown waits before Read hands it out again.
	NakDelay = time.Second
)

// Config configures a Kafka [Source].
type Config struct {
	// Name is the source name copied into every Message.
	Name string
	// Brokers are the bootstrap brokers (host:port); at least one.
	Brokers []string
	// Topics are the topics consumed; at least one.
	Topics []string
	// Group is the consumer group id shared by the bridge replicas; required.
	Group string
	// SASL configures authentication (zero: none).
	SASL SASL
	// TLS enables client TLS when non-nil.
	TLS *TLSConfig
	// StartOffset is where a partition without a committed offset starts:
	// "first" (default) or "last".
	StartOffset string
	// MinBytes, MaxBytes and MaxWait tune the fetch requests (kafka-go
	// defaults 1 byte, 1 MB; MaxWait default 500ms).
	MinBytes, MaxBytes int
	MaxWait            time.Duration
	// CommitInterval is the period of offset commits (default 1s).
	CommitInterval time.Duration
	// SessionTimeout is how long the group waits for a silent member (a
	// crashed replica) before giving its partitions to the others (default
	// 10s; heartbeats go every SessionTimeout/10).
	SessionTimeout time.Duration
	// QueueCapacity bounds the records fetched and not yet Read (default
	// 1024); each partition reader also holds up to 100 records.
	QueueCapacity int
	// MaxUnacked bounds, per partition, the records Read and not yet passed
	// by the commit watermark (default 10000). At the bound the partition's
	// fetching pauses until the oldest record is acked.
	MaxUnacked int
}

func (c *Config) setDefaults() {
	if c.StartOffset == "" {
		c.StartOffset = "first"
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.QueueCapacity <= 0 {
		c.QueueCapacity = DefaultQueueCapacity
	}
	if c.MaxUnacked <= 0 {
		c.MaxUnacked = DefaultMaxUnacked
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one required"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("topics: at least one required"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("group: required"))
	}
	if _, err := c.startOffset(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.SASL.mechanism(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Config) startOffset() (int64, error) {
	switch strings.ToLower(c.StartOffset) {
	case "first", "earliest":
		return kafka.FirstOffset, nil
	case "last", "latest":
		return kafka.LastOffset, nil
	default:
		return 0, fmt.Errorf("startOffset: %q is not first or last", c.StartOffset)
	}
}

func (c *Config) dialer() (*kafka.Dialer, error) {
	mech, err := c.SASL.mechanism()
	if err != nil {
		return nil, err
	}
	d := &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, SASLMechanism: mech}
	if c.TLS != nil {
		tlsCfg, err := c.TLS.Build()
		if err != nil {
			return nil, err
		}
		if tlsCfg == nil { // TLS on, system roots
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		d.TLS = tlsCfg
	}
	return d, nil
}

// Source consumes Kafka topics as a member of a consumer group
// (at-least-once, contiguous commits; see the package doc).
type Source struct {
	cfg         Config
	logger      *slog.Logger
	startOffset int64
	dialer      *kafka.Dialer

	mu      sync.Mutex // guards cg, closed
	cg      *kafka.ConsumerGroup
	closed  bool
	runDone chan struct{} // closed when run returns; nil before Connect

	records   chan record
	done      chan struct{} // closed at the start of Close
	closeOnce sync.Once

	// naked holds records naked with a retriable error, in nak order, until
	// their NakDelay passed; nakSignal wakes a Read blocked without them.
	nakMu     sync.Mutex
	naked     []nakedRecord
	nakSignal chan struct{}

	current atomic.Pointer[generation] // the latest generation, for Lag
}

// record is a fetched Kafka message on its way to Read.
type record struct {
	msg kafka.Message
	gen *generation
	win *window
}

// nakedRecord is a record waiting to be handed out again.
type nakedRecord struct {
	rec record
	due time.Time
}

// generation is this member's view of one consumer-group generation.
type generation struct {
	gen     *kafka.Generation
	windows []*window
	ended   atomic.Bool // set before the generation's final commit
}

var (
	_ source.Source    = (*Source)(nil)
	_ source.Connector = (*Source)(nil)
	_ source.Lagger    = (*Source)(nil)
)

// New validates cfg, applies the defaults and returns an unconnected Source.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("kafkasource %q: %w", cfg.Name, err)
	}
	start, _ := cfg.startOffset()
	dialer, err := cfg.dialer()
	if err != nil {
		return nil, fmt.Errorf("kafkasource %q: %w", cfg.Name, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{
		cfg:         cfg,
		logger:      logger.With("source", cfg.Name, "group", cfg.Group),
		startOffset: start,
		dialer:      dialer,
		records:     make(chan record, cfg.QueueCapacity),
		done:        make(chan struct{}),
		nakSignal:   make(chan struct{}, 1),
	}, nil
}

// Connect checks that a broker answers (and accepts the credentials), then
// joins the consumer group in the background. It is idempotent; after Close
// it returns source.ErrEndOfInput.
func (s *Source) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return source.ErrEndOfInput
	}
	if s.cg != nil {
		return nil
	}
	if err := s.probe(ctx); err != nil {
		return fmt.Errorf("kafkasource %q: %w", s.cfg.Name, err)
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:          s.cfg.Group,
		Brokers:     s.cfg.Brokers,
		Dialer:      s.dialer,
		Topics:      s.cfg.Topics,
		StartOffset: s.startOffset,
		// A crashed replica's partitions move after SessionTimeout.
		SessionTimeout:    s.cfg.SessionTimeout,
		HeartbeatInterval: s.cfg.SessionTimeout / 10,
		Logger:            kafka.LoggerFunc(s.kafkaLog(slog.LevelDebug)),
		ErrorLogger:       kafka.LoggerFunc(s.kafkaLog(slog.LevelWarn)),
	})
	if err != nil {
		return fmt.Errorf("kafkasource %q: consumer group: %w", s.cfg.Name, err)
	}
	s.cg = cg
	s.runDone = make(chan struct{})
	go s.run(cg)
	return nil
}

// probe dials the brokers in turn until one completes a connection
// (including TLS and SASL).
func (s *Source) probe(ctx context.Context) error {
	var errs []error
	for _, b := range s.cfg.Brokers {
		conn, err := s.dialer.DialContext(ctx, "tcp", b)
		if err == nil {
			if err := conn.Close(); err != nil {
				s.logger.Debug("kafka probe close", "broker", b, "err", err)
			}
			return nil
		}
		errs = append(errs, fmt.Errorf("broker %s: %w", b, err))
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func (s *Source) kafkaLog(level slog.Level) func(string, ...any) {
	return func(format string, args ...any) {
		if s.logger.Enabled(context.Background(), level) {
			s.logger.Log(context.Background(), level, "kafka: "+strings.TrimSpace(fmt.Sprintf(format, args...)))
		}
	}
}

// run takes each generation of the group in turn until the group is closed.
func (s *Source) run(cg *kafka.ConsumerGroup) {
	defer close(s.runDone)
	ctx, cancel := source.UntilClosed(context.Background(), s.done)
	defer cancel()
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return
			}
			// kafka-go backs off and rejoins by itself.
			s.logger.Warn("kafka consumer group join failed; retrying", "err", err)
			continue
		}
		s.startGeneration(gen)
	}
}

// startGeneration starts one reader per assigned partition and the
// generation's committer; kafka-go waits for all of them to return before it
// rejoins, so the final commit happens while the generation is still valid.
func (s *Source) startGeneration(kg *kafka.Generation) {
	g := &generation{gen: kg}
	var assigned []string
	for topic, parts := range kg.Assignments {
		for _, p := range parts {
			w := newWindow(topic, p.ID, s.cfg.MaxUnacked)
			w.start = p.Offset
			g.windows = append(g.windows, w)
			assigned = append(assigned, fmt.Sprintf("%s/%d@%d", topic, p.ID, p.Offset))
			offset := p.Offset
			kg.Start(func(ctx context.Context) { s.readPartition(ctx, g, w, offset) })
		}
	}
	s.current.Store(g)
	s.logger.Info("kafka generation started", "generation", kg.ID, "member", kg.MemberID, "partitions", assigned)
	kg.Start(func(ctx context.Context) { s.commitLoop(ctx, g) })
}

// readPartition fetches one partition into s.records until the generation
// ends, pausing while the records channel or the partition window is full.
func (s *Source) readPartition(ctx context.Context, g *generation, w *window, offset int64) {
	rc := kafka.ReaderConfig{
		Brokers:     s.cfg.Brokers,
		Topic:       w.topic,
		Partition:   w.partition,
		Dialer:      s.dialer,
		MinBytes:    s.cfg.MinBytes,
		MaxBytes:    s.cfg.MaxBytes,
		MaxWait:     s.cfg.MaxWait,
		ErrorLogger: kafka.LoggerFunc(s.kafkaLog(slog.LevelWarn)),
	}
	if err := rc.Validate(); err != nil {
		s.logger.Error("kafka partition reader config", "topic", w.topic, "partition", w.partition, "err", err)
		return
	}
	r := kafka.NewReader(rc)
	defer func() {
		if err := r.Close(); err != nil {
			s.logger.Debug("kafka partition reader close", "topic", w.topic, "partition", w.partition, "err", err)
		}
	}()
	if err := r.SetOffset(offset); err != nil {
		s.logger.Error("kafka set offset", "topic", w.topic, "partition", w.partition, "offset", offset, "err", err)
		return
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.logger.Warn("kafka fetch failed", "topic", w.topic, "partition", w.partition, "err", err)
			select { // kafka-go retries inside; this only bounds a hot error loop
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
				return
			}
		}
		w.hwm.Store(m.HighWaterMark)
		for !w.add(m.Offset) {
			select {
			case <-w.space:
			case <-ctx.Done():
				return
			}
		}
		select {
		case s.records <- record{msg: m, gen: g, win: w}:
		case <-ctx.Done():
			return
		}
	}
}

// commitLoop commits the generation's watermarks every CommitInterval and
// once more when the generation ends (rebalance or Close).
func (s *Source) commitLoop(ctx context.Context, g *generation) {
	t := time.NewTicker(s.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.commit(g); err != nil {
				s.logger.Warn("kafka commit failed; will retry", "generation", g.gen.ID, "err", err)
			}
		case <-ctx.Done():
			g.ended.Store(true)
			if err := s.commit(g); err != nil {
				s.logger.Warn("kafka final commit of generation failed (its uncommitted records will be redelivered)",
					"generation", g.gen.ID, "err", err)
			}
			s.logger.Info("kafka generation ended", "generation", g.gen.ID)
			return
		}
	}
}

// commit sends the watermarks that moved since the last commit.
func (s *Source) commit(g *generation) error {
	var offsets map[string]map[int]int64
	type done struct {
		w      *window
		offset int64
	}
	var committed []done
	for _, w := range g.windows {
		off, ok := w.toCommit()
		if !ok {
			continue
		}
		if offsets == nil {
			offsets = make(map[string]map[int]int64)
		}
		if offsets[w.topic] == nil {
			offsets[w.topic] = make(map[int]int64)
		}
		offsets[w.topic][w.partition] = off
		committed = append(committed, done{w, off})
	}
	if offsets == nil {
		return nil
	}
	if err := g.gen.CommitOffsets(offsets); err != nil {
		return fmt.Errorf("commit offsets: %w", err)
	}
	for _, c := range committed {
		c.w.committedAt(c.offset)
	}
	return nil
}

// Lag sums, over the partitions of the current generation, the records
// between the committed offset and the last fetched high watermark (an
// estimate refreshed by every fetch).
func (s *Source) Lag(context.Context) (int64, error) {
	g := s.current.Load()
	if g == nil {
		return 0, nil
	}
	var n int64
	for _, w := range g.windows {
		n += w.lag()
	}
	return n, nil
}

// Read returns the next record. It blocks until one is fetched or a naked
// one is due again, ctx is done (ctx.Err()) or the source is closed
// (source.ErrEndOfInput). Records of a generation that ended while they
// waited are skipped: the partition's next owner reads them again from the
// committed offset.
//
// The AckFunc with a nil error lets the record's offset be committed once
// every earlier record of its partition is acked too. With an error the
// watermark stays below the record: with source.ErrShutdown nothing else
// happens (the next owner reads it again from the committed offset); with
// any other error Read hands the record out again after NakDelay, as long
// as its generation lasts (Kafka cannot redeliver one record, so the
// adapter does).
func (s *Source) Read(ctx context.Context) (*source.Message, source.AckFunc, error) {
	if err := s.Connect(ctx); err != nil {
		if errors.Is(err, source.ErrEndOfInput) || ctx.Err() != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %w", source.ErrNotConnected, err)
	}
	for {
		select {
		case <-s.done:
			return nil, nil, source.ErrEndOfInput
		default:
		}
		rec, ok, wait := s.dueNaked(time.Now())
		if ok {
			if rec.gen.ended.Load() {
				continue
			}
			return s.deliver(rec)
		}
		rec, err := s.next(ctx, wait)
		if err != nil {
			return nil, nil, err
		}
		if rec.gen == nil || rec.gen.ended.Load() {
			continue // woken for a naked record, or a stale one
		}
		return s.deliver(rec)
	}
}

// next waits for a fetched record, for wait to pass (when positive) or for a
// new naked record; the last two return the zero record.
func (s *Source) next(ctx context.Context, wait time.Duration) (record, error) {
	var due <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		due = t.C
	}
	select {
	case rec := <-s.records:
		return rec, nil
	case <-due:
	case <-s.nakSignal:
	case <-s.done:
		return record{}, source.ErrEndOfInput
	case <-ctx.Done():
		return record{}, ctx.Err()
	}
	return record{}, nil
}

// dueNaked pops the oldest naked record if its delay passed; otherwise it
// returns how long until it is due (0 when none waits).
func (s *Source) dueNaked(now time.Time) (record, bool, time.Duration) {
	s.nakMu.Lock()
	defer s.nakMu.Unlock()
	if len(s.naked) == 0 {
		return record{}, false, 0
	}
	first := s.naked[0]
	if wait := first.due.Sub(now); wait > 0 {
		return record{}, false, wait
	}
	s.naked[0] = nakedRecord{}
	s.naked = s.naked[1:]
	return first.rec, true, 0
}

// nak queues rec to be handed out again after NakDelay.
func (s *Source) nak(rec record) {
	s.nakMu.Lock()
	s.naked = append(s.naked, nakedRecord{rec: rec, due: time.Now().Add(NakDelay)})
	s.nakMu.Unlock()
	select {
	case s.nakSignal <- struct{}{}:
	default:
	}
}

type delivery struct {
	msg source.Message
	s   *Source
	rec record
}

func (d *delivery) ack(_ context.Context, err error) error {
	switch {
	case err == nil:
		d.rec.win.ack(d.rec.msg.Offset)
	case errors.Is(err, source.ErrShutdown), d.rec.gen.ended.Load():
		// Left uncommitted: the partition's next owner reads it again.
	default:
		d.s.nak(d.rec)
	}
	return nil
}

func (s *Source) deliver(rec record) (*source.Message, source.AckFunc, error) {
	m := rec.msg
	d := &delivery{s: s, rec: rec}
	d.msg = source.Message{
		Source:    s.cfg.Name,
		Body:      m.Value,
		Subject:   m.Topic,
		Topic:     m.Topic,
		Key:       m.Key,
		Partition: int32(m.Partition),
		Offset:    m.Offset,
	}
	if len(m.Headers) > 0 {
		h := make(source.Headers, len(m.Headers))
		for i, kv := range m.Headers {
			h[i] = source.Header{Key: kv.Key, Value: string(kv.Value)}
		}
		d.msg.Headers = h
	}
	return &d.msg, d.ack, nil
}

// Close stops fetching, commits every partition's watermark, leaves the
// group and makes pending and future Reads return source.ErrEndOfInput.
// Records Read but not acked stay uncommitted and are redelivered to the
// group. It waits for the group to be left (kafka-go offers no deadline for
// it; ctx is not used). Idempotent.
func (s *Source) Close(context.Context) error {
	first := false
	s.closeOnce.Do(func() { first = true; close(s.done) })
	if !first {
		return nil
	}
	s.mu.Lock()
	s.closed = true
	cg, runDone := s.cg, s.runDone
	s.mu.Unlock()
	if cg == nil {
		return nil
	}
	// Closing the group ends the generation: partition readers stop, the
	// committer commits, then the member leaves the group.
	if err := cg.Close(); err != nil {
		return fmt.Errorf("kafkasource %q: close group: %w", s.cfg.Name, err)
	}
	<-runDone
	return nil
}
