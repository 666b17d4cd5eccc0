package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	DefaultMaxBytes       = 1 << 20
	maxPartitionBytes     = 256 << 10
	DefaultSessionTimeout = 10 * time.Second
	// NakDelay is how long a record naked with an error other than
	// source.ErrShutdown waits before Read hands it out again.
	NakDelay = time.Second
	// finalCommitTimeout bounds the commit made when partitions are revoked
	// and on Close.
	finalCommitTimeout = 10 * time.Second
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
	// MinBytes, MaxBytes and MaxWait tune the fetch requests: a broker
	// answers once it has MinBytes (default 1) or MaxWait passed (default
	// 500ms), with at most MaxBytes (default 1 MiB; at most 256 KiB per
	// partition). Counted compressed: the records held decompressed can
	// take several times more.
	MinBytes, MaxBytes int
	MaxWait            time.Duration
	// CommitInterval is the period of offset commits (default 1s).
	CommitInterval time.Duration
	// SessionTimeout is how long the group waits for a silent member (a
	// crashed replica) before giving its partitions to the others (default
	// 10s; heartbeats go every SessionTimeout/10).
	SessionTimeout time.Duration
	// QueueCapacity is the most records one poll takes from the client's
	// fetch buffer for Read to hand out (default 1024).
	QueueCapacity int
	// MaxUnacked bounds, per partition, the records Read and not yet passed
	// by the commit watermark (default 10000). At the bound Read waits until
	// the partition's oldest record is acked.
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
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MinBytes <= 0 {
		c.MinBytes = 1
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

func (c *Config) startOffset() (kgo.Offset, error) {
	switch strings.ToLower(c.StartOffset) {
	case "first", "earliest":
		return kgo.NewOffset().AtStart(), nil
	case "last", "latest":
		return kgo.NewOffset().AtEnd(), nil
	default:
		return kgo.Offset{}, fmt.Errorf("startOffset: %q is not first or last", c.StartOffset)
	}
}

// Source consumes Kafka topics as a member of a consumer group
// (at-least-once, contiguous commits; see the package doc).
type Source struct {
	cfg    Config
	logger *slog.Logger
	opts   []kgo.Opt

	mu         sync.Mutex // guards cl, windows
	cl         *kgo.Client
	windows    map[topicPartition]*window // the partitions assigned now
	commitDone chan struct{}              // closed when commitLoop returns; nil before Connect

	done      chan struct{} // closed at the start of Close
	closeOnce sync.Once

	// Read's own state: the records of the last poll and the next one to
	// hand out (Read is called from one goroutine at a time).
	buf []record
	pos int

	// naked holds records naked with a retriable error, in nak order, until
	// their NakDelay passed; wakePoll interrupts a poll blocked in Read so
	// that it waits for them too.
	nakMu    sync.Mutex
	naked    []nakedRecord
	wakePoll context.CancelFunc
}

type topicPartition struct {
	topic     string
	partition int32
}

// record is a fetched Kafka record and the window of the assignment it was
// fetched in.
type record struct {
	r   *kgo.Record
	win *window
}

// nakedRecord is a record waiting to be handed out again.
type nakedRecord struct {
	rec record
	due time.Time
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
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("source", cfg.Name, "group", cfg.Group)
	s := &Source{
		cfg:     cfg,
		logger:  logger,
		windows: make(map[topicPartition]*window),
		done:    make(chan struct{}),
	}
	opts, err := clientOpts(cfg.Brokers, cfg.SASL, cfg.TLS, logger)
	if err != nil {
		return nil, fmt.Errorf("kafkasource %q: %w", cfg.Name, err)
	}
	start, _ := cfg.startOffset()
	s.opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumeStartOffset(start),
		kgo.DisableAutoCommit(),
		// A crashed replica's partitions move after SessionTimeout.
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.SessionTimeout/10),
		kgo.FetchMinBytes(int32(cfg.MinBytes)),
		kgo.FetchMaxBytes(int32(cfg.MaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(min(cfg.MaxBytes, maxPartitionBytes))),
		kgo.FetchMaxWait(cfg.MaxWait),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
	)
	return s, nil
}

// Connect checks that a broker answers (and accepts the credentials), then
// joins the consumer group in the background. It is idempotent; after Close
// it returns source.ErrEndOfInput.
func (s *Source) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done: // Close takes mu after closing done: it sees any client made here
		return source.ErrEndOfInput
	default:
	}
	if s.cl != nil {
		return nil
	}
	cl, err := kgo.NewClient(s.opts...)
	if err != nil {
		return fmt.Errorf("kafkasource %q: client: %w", s.cfg.Name, err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return fmt.Errorf("kafkasource %q: brokers %s: %w", s.cfg.Name, strings.Join(s.cfg.Brokers, ","), err)
	}
	s.cl = cl
	s.commitDone = make(chan struct{})
	go s.commitLoop(cl)
	return nil
}

// assigned opens a fresh window for each partition the group gave this
// member.
func (s *Source) assigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	var names []string
	s.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			s.windows[topicPartition{topic, p}] = newWindow(topic, p, s.cfg.MaxUnacked)
			names = append(names, fmt.Sprintf("%s/%d", topic, p))
		}
	}
	s.mu.Unlock()
	if len(names) > 0 {
		s.logger.Info("kafka partitions assigned", "partitions", names)
	}
}

// revoked ends the windows of the partitions taken away and commits their
// watermarks: the partitions' next owners start from there. franz-go holds
// the rebalance until this returns, so the commit is still accepted.
func (s *Source) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	ws := s.take(parts)
	if len(ws) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, finalCommitTimeout)
	defer cancel()
	if err := s.commit(ctx, cl, ws); err != nil {
		s.logger.Warn("kafka final commit of revoked partitions failed (their uncommitted records will be redelivered)", "err", err)
	}
	s.logger.Info("kafka partitions revoked", "partitions", len(ws))
}

// lost ends the windows of partitions this member lost without a chance to
// commit (its session expired): their next owner reads again from the last
// commit.
func (s *Source) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	if ws := s.take(parts); len(ws) > 0 {
		s.logger.Warn("kafka partitions lost (uncommitted records will be redelivered)", "partitions", len(ws))
	}
}

// take removes the windows of parts from the assignment and ends them:
// their records still waiting for Read are dropped, and acks of their
// records in flight no longer count.
func (s *Source) take(parts map[string][]int32) []*window {
	var ws []*window
	s.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if w := s.windows[tp]; w != nil {
				delete(s.windows, tp)
				ws = append(ws, w)
			}
		}
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.end()
	}
	return ws
}

// current returns the windows of the partitions assigned now.
func (s *Source) current() []*window {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.windows))
}

func (s *Source) window(topic string, partition int32) *window {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.windows[topicPartition{topic, partition}]
}

// commitLoop commits the watermarks that moved every CommitInterval until
// Close.
func (s *Source) commitLoop(cl *kgo.Client) {
	defer close(s.commitDone)
	ctx, cancel := source.UntilClosed(context.Background(), s.done)
	defer cancel()
	t := time.NewTicker(s.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.commit(ctx, cl, s.current()); err != nil && ctx.Err() == nil {
				s.logger.Warn("kafka commit failed; will retry", "err", err)
			}
		case <-ctx.Done():
			return
		}
	}
}

// commit sends the watermarks of ws that moved since their last commit and
// waits for the answer.
func (s *Source) commit(ctx context.Context, cl *kgo.Client, ws []*window) error {
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	moved := make(map[topicPartition]*window)
	for _, w := range ws {
		off, ok := w.toCommit()
		if !ok {
			continue
		}
		if offsets[w.topic] == nil {
			offsets[w.topic] = make(map[int32]kgo.EpochOffset)
		}
		offsets[w.topic][w.partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
		moved[topicPartition{w.topic, w.partition}] = w
	}
	if len(moved) == 0 {
		return nil
	}
	var errs []error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				tp := topicPartition{t.Topic, p.Partition}
				w := moved[tp]
				if w == nil {
					continue
				}
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err))
					continue
				}
				w.committedAt(offsets[t.Topic][p.Partition].Offset)
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("commit offsets: %w", errors.Join(errs...))
	}
	return nil
}

// Lag sums, over the partitions assigned now, the records between the
// committed offset and the last fetched high watermark (an estimate
// refreshed by every fetch).
func (s *Source) Lag(context.Context) (int64, error) {
	var n int64
	for _, w := range s.current() {
		n += w.lag()
	}
	return n, nil
}

// Read returns the next record. It blocks until one is fetched or a naked
// one is due again, ctx is done (ctx.Err()) or the source is closed
// (source.ErrEndOfInput). Records of a partition revoked while they waited
// are skipped: the partition's next owner reads them again from the
// committed offset.
//
// The AckFunc with a nil error lets the record's offset be committed once
// every earlier record of its partition is acked too. With an error the
// watermark stays below the record: with source.ErrShutdown nothing else
// happens (the next owner reads it again from the committed offset); with
// any other error Read hands the record out again after NakDelay, as long
// as the partition stays assigned (Kafka cannot redeliver one record, so the
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
		if rec, ok := s.dueNaked(time.Now()); ok {
			if rec.win.ended.Load() {
				continue
			}
			return s.deliver(rec)
		}
		if s.pos < len(s.buf) {
			rec := s.buf[s.pos]
			if err := s.track(ctx, rec); err != nil {
				return nil, nil, err // the record stays next in line
			}
			s.buf[s.pos] = record{}
			s.pos++
			if rec.win.ended.Load() {
				continue
			}
			return s.deliver(rec)
		}
		if err := s.poll(ctx); err != nil {
			return nil, nil, err
		}
	}
}

// track adds rec to its partition's window, waiting while the window is
// full; a record of a partition that ended (revoked, lost) is not added.
func (s *Source) track(ctx context.Context, rec record) error {
	for !rec.win.ended.Load() && !rec.win.add(rec.r.Offset) {
		select {
		case <-rec.win.space: // room, or the window ended
		case <-s.done:
			return source.ErrEndOfInput
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// poll refills s.buf from the client. It returns nil with an empty buffer
// when a naked record came due or was added meanwhile.
func (s *Source) poll(ctx context.Context) error {
	s.mu.Lock()
	cl := s.cl
	s.mu.Unlock()

	s.nakMu.Lock()
	var pollCtx context.Context
	var cancel context.CancelFunc
	if len(s.naked) > 0 {
		pollCtx, cancel = context.WithDeadline(ctx, s.naked[0].due)
	} else {
		pollCtx, cancel = context.WithCancel(ctx)
	}
	s.wakePoll = cancel
	s.nakMu.Unlock()

	fetches := cl.PollRecords(pollCtx, s.cfg.QueueCapacity)

	s.nakMu.Lock()
	s.wakePoll = nil
	s.nakMu.Unlock()
	cancel()

	if fetches.IsClientClosed() {
		return source.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	clear(s.buf)
	s.buf, s.pos = s.buf[:0], 0
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err != nil {
			if !errors.Is(p.Err, context.Canceled) && !errors.Is(p.Err, context.DeadlineExceeded) {
				s.logger.Warn("kafka fetch failed", "topic", p.Topic, "partition", p.Partition, "err", p.Err)
			}
			return
		}
		if len(p.Records) == 0 {
			return
		}
		w := s.window(p.Topic, p.Partition)
		if w == nil {
			s.logger.Warn("kafka records of a partition not assigned here dropped", "topic", p.Topic, "partition", p.Partition, "records", len(p.Records))
			return
		}
		w.hwm.Store(p.HighWatermark)
		for _, r := range p.Records {
			s.buf = append(s.buf, record{r: r, win: w})
		}
	})
	return nil
}

// dueNaked pops the oldest naked record if its delay passed.
func (s *Source) dueNaked(now time.Time) (record, bool) {
	s.nakMu.Lock()
	defer s.nakMu.Unlock()
	if len(s.naked) == 0 || s.naked[0].due.After(now) {
		return record{}, false
	}
	first := s.naked[0]
	s.naked[0] = nakedRecord{}
	s.naked = s.naked[1:]
	return first.rec, true
}

// nak queues rec to be handed out again after NakDelay, and wakes a poll
// blocked in Read so that it waits for the record too.
func (s *Source) nak(rec record) {
	s.nakMu.Lock()
	defer s.nakMu.Unlock()
	s.naked = append(s.naked, nakedRecord{rec: rec, due: time.Now().Add(NakDelay)})
	if s.wakePoll != nil {
		s.wakePoll()
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
		d.rec.win.ack(d.rec.r.Offset)
	case errors.Is(err, source.ErrShutdown), d.rec.win.ended.Load():
		// Left uncommitted: the partition's next owner reads it again.
	default:
		d.s.nak(d.rec)
	}
	return nil
}

func (s *Source) deliver(rec record) (*source.Message, source.AckFunc, error) {
	r := rec.r
	d := &delivery{s: s, rec: rec}
	d.msg = source.Message{
		Source:    s.cfg.Name,
		Body:      r.Value,
		Subject:   r.Topic,
		Topic:     r.Topic,
		Key:       r.Key,
		Partition: r.Partition,
		Offset:    r.Offset,
	}
	if len(r.Headers) > 0 {
		h := make(source.Headers, len(r.Headers))
		for i, kv := range r.Headers {
			h[i] = source.Header{Key: kv.Key, Value: string(kv.Value)}
		}
		d.msg.Headers = h
	}
	return &d.msg, d.ack, nil
}

// Close stops fetching, commits every partition's watermark, leaves the
// group and makes pending and future Reads return source.ErrEndOfInput.
// Records Read but not acked stay uncommitted and are redelivered to the
// group. The final commit is bounded by ctx and by 10s, leaving the group by
// 10s; a group that cannot be left in time learns of the member's end from
// its session timeout. Idempotent.
func (s *Source) Close(ctx context.Context) error {
	first := false
	s.closeOnce.Do(func() { first = true; close(s.done) })
	if !first {
		return nil
	}
	s.mu.Lock()
	cl, commitDone := s.cl, s.commitDone
	s.mu.Unlock()
	if cl == nil {
		return nil
	}
	<-commitDone
	ctx, cancel := context.WithTimeout(ctx, finalCommitTimeout)
	defer cancel()
	var errs []error
	if err := s.commit(ctx, cl, s.current()); err != nil {
		errs = append(errs, fmt.Errorf("final commit: %w", err))
	}
	// Leaving the group revokes every partition: revoked commits what was
	// acked since, and ends the windows. After it Close does not wait.
	leaveCtx, cancelLeave := context.WithTimeout(context.WithoutCancel(ctx), finalCommitTimeout)
	defer cancelLeave()
	if err := cl.LeaveGroupContext(leaveCtx); err != nil {
		errs = append(errs, fmt.Errorf("leave group: %w", err))
	}
	cl.Close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafkasource %q: %w", s.cfg.Name, err)
	}
	return nil
}
