package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The reference loop is the simplest correct program doing the bridge's job
// for this workload: consume, decode the envelope, sign, POST with a plain
// http.Client, ack. It has the same in-flight bound, fetch batch and
// connection pool as the bridge, and a per-URL token cache like the bridge's
// (signing every call would make the yardstick needlessly slow). It has no
// ordering, no adaptive limit, no dead letter and no metrics.

// refAPIVersion is the api-version the reference sends (the wps client's default).
const refAPIVersion = "2024-12-01"

// poster decodes envelopes and POSTs them; safe for concurrent use.
type poster struct {
	http     *http.Client
	base     string // <endpoint>/api/hubs/<hub>/groups/
	key      []byte
	tokensMu sync.Mutex
	tokens   map[string]token
	acks     atomic.Int64
}

type token struct {
	header  string
	refresh time.Time
}

func newPoster(cfg childConfig) *poster {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = cfg.InFlight
	tr.MaxIdleConnsPerHost = cfg.InFlight
	return &poster{
		http:   &http.Client{Transport: tr, Timeout: 10 * time.Second},
		base:   cfg.SinkURL + "/api/hubs/" + url.PathEscape(cfg.Hub) + "/groups/",
		key:    []byte(cfg.AccessKey),
		tokens: make(map[string]token),
	}
}

// refEnvelope is the part of an envelope the reference understands.
type refEnvelope struct {
	ActionName string          `json:"actionName"`
	Group      string          `json:"group"`
	Data       json.RawMessage `json:"data"`
}

// errPermanent marks a message that can never succeed.
var errPermanent = errors.New("permanent failure")

// send delivers one envelope body.
func (p *poster) send(ctx context.Context, body []byte) error {
	var env refEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%w: decode envelope: %w", errPermanent, err)
	}
	if !strings.EqualFold(env.ActionName, "sendToGroup") || env.Group == "" || len(env.Data) == 0 {
		return fmt.Errorf("%w: only sendToGroup with a group and data is supported", errPermanent)
	}
	u := p.base + url.PathEscape(env.Group) + "/:send?api-version=" + refAPIVersion
	authz, err := p.authorization(u)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(env.Data))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("post: status %d", resp.StatusCode)
	}
	return nil
}

// authorization returns a cached "Bearer <jwt>" for u, signing when needed.
func (p *poster) authorization(u string) (string, error) {
	now := time.Now()
	p.tokensMu.Lock()
	t, ok := p.tokens[u]
	p.tokensMu.Unlock()
	if ok && now.Before(t.refresh) {
		return t.header, nil
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"aud": u, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString(p.key)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	t = token{header: "Bearer " + s, refresh: now.Add(55 * time.Minute)}
	p.tokensMu.Lock()
	p.tokens[u] = t
	p.tokensMu.Unlock()
	return t.header, nil
}

// sendRetrying retries transient failures every 100ms until ctx ends.
func (p *poster) sendRetrying(ctx context.Context, body []byte, log *slog.Logger) error {
	for {
		err := p.send(ctx, body)
		if err == nil || errors.Is(err, errPermanent) || ctx.Err() != nil {
			return err
		}
		log.Warn("reference: send failed, retrying", "err", err)
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *poster) acked() int64 { return p.acks.Load() }

func newReferenceSystem(_ context.Context, cfg childConfig, logger *slog.Logger) (system, error) {
	switch cfg.Source {
	case srcJetStream:
		return &jsReference{cfg: cfg, p: newPoster(cfg), log: logger}, nil
	case srcKafka:
		return &kafkaReference{cfg: cfg, p: newPoster(cfg), log: logger}, nil
	}
	return nil, fmt.Errorf("reference: unknown source %q", cfg.Source)
}

// jsReference: InFlight workers share one pull iterator; each takes a
// message, sends it and acks it (or naks it on failure).
type jsReference struct {
	cfg childConfig
	p   *poster
	log *slog.Logger
}

func (r *jsReference) acked() int64 { return r.p.acked() }

func (r *jsReference) run(ctx context.Context) error {
	nc, err := nats.Connect(r.cfg.NATSURL, nats.Name("wpsbench-reference"))
	if err != nil {
		return fmt.Errorf("nats connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, r.cfg.Stream, jetstream.ConsumerConfig{
		Durable: r.cfg.Durable, AckPolicy: jetstream.AckExplicitPolicy, FilterSubjects: r.cfg.Subjects,
		MaxAckPending: 2048, AckWait: 30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(r.cfg.Batch))
	if err != nil {
		return fmt.Errorf("messages: %w", err)
	}
	var wg sync.WaitGroup
	for range r.cfg.InFlight {
		wg.Go(func() {
			for {
				m, err := it.Next()
				if err != nil {
					return // iterator stopped
				}
				if err := r.p.sendRetrying(ctx, m.Data(), r.log); err != nil {
					if ctx.Err() != nil {
						_ = m.Nak()
						continue
					}
					r.log.Error("reference: dropping message", "err", err)
					_ = m.Term()
					continue
				}
				if err := m.Ack(); err != nil {
					r.log.Warn("reference: ack", "err", err)
					continue
				}
				r.p.acks.Add(1)
			}
		})
	}
	<-ctx.Done()
	it.Stop()
	wg.Wait()
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("flush acks: %w", err)
	}
	return nil
}

// kafkaReference polls a batch, sends it with InFlight workers, waits for the
// whole batch and commits it (franz-go, manual commits).
type kafkaReference struct {
	cfg childConfig
	p   *poster
	log *slog.Logger
}

func (r *kafkaReference) acked() int64 { return r.p.acked() }

func (r *kafkaReference) run(ctx context.Context) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ConsumerGroup(r.cfg.Durable),
		kgo.ConsumeTopics(r.cfg.Topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	jobs := make(chan *kgo.Record)
	var batch sync.WaitGroup
	var workers sync.WaitGroup
	for range r.cfg.InFlight {
		workers.Go(func() {
			for rec := range jobs {
				if err := r.p.sendRetrying(ctx, rec.Value, r.log); err != nil && ctx.Err() == nil {
					r.log.Error("reference: dropping record", "err", err)
				}
				batch.Done()
			}
		})
	}
	defer func() {
		close(jobs)
		workers.Wait()
	}()
	for {
		fetches := cl.PollRecords(ctx, r.cfg.Batch)
		if ctx.Err() != nil {
			cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			r.log.Warn("reference: fetch", "topic", topic, "partition", p, "err", err)
		})
		recs := fetches.Records()
		batch.Add(len(recs))
		for _, rec := range recs {
			jobs <- rec
		}
		batch.Wait()
		if ctx.Err() != nil { // interrupted sends: do not commit them
			cl.AllowRebalance()
			return nil
		}
		if err := cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
			cl.AllowRebalance()
			return fmt.Errorf("commit: %w", err)
		}
		r.p.acks.Add(int64(len(recs)))
		cl.AllowRebalance()
	}
}
