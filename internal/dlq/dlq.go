package dlq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/time/rate"

	"github.com/wps-bridge/bridge/internal/source"
)

// Headers the router writes on a dead letter (see router.Header*).
const (
	headerPrefix     = "wps-bridge-"
	HeaderErrorClass = "wps-bridge-error-class"
	HeaderAction     = "wps-bridge-action"
	HeaderSource     = "wps-bridge-source"
	HeaderOrigin     = "wps-bridge-origin"
)

// Parked is one dead letter: the message as parked and how to remove it.
type Parked struct {
	Msg *source.Message
	// ID locates it in the dead letter: "seq=12" or "partition=0 offset=7".
	ID     string
	remove func(ctx context.Context) error
	// pass, when non-nil, is called for a message the filter passes over
	// (Kafka: it must be committed for the replay group to move on).
	pass func(ctx context.Context) error
}

// Reader yields parked messages in order; Next returns io.EOF after the last
// one that existed when the reader was opened.
type Reader interface {
	Next(ctx context.Context) (*Parked, error)
	// Total is the number of parked messages when opened, -1 if unknown.
	Total() int64
	Close() error
}

// Filter selects dead letters; empty lists match everything. Values compare
// case-insensitively.
type Filter struct {
	Actions []string // wps-bridge-action, e.g. sendToGroup ("" in the list matches decode errors)
	Classes []string // wps-bridge-error-class: invalid, transient, systemic
}

// Match reports whether m passes the filter.
func (f Filter) Match(m *source.Message) bool {
	action, _ := m.Headers.Get(HeaderAction)
	class, _ := m.Headers.Get(HeaderErrorClass)
	return anyFold(f.Actions, action) && anyFold(f.Classes, class)
}

func anyFold(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	for _, s := range list {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}

// Origin is where a dead letter came from.
type Origin struct {
	Source  string // the bridge source name (wps-bridge-source)
	Subject string // NATS subject, or "" for Kafka
	Topic   string // Kafka topic, or "" for NATS
}

// ParseOrigin reads the wps-bridge-source and wps-bridge-origin headers.
func ParseOrigin(m *source.Message) (Origin, error) {
	var o Origin
	o.Source, _ = m.Headers.Get(HeaderSource)
	raw, ok := m.Headers.Get(HeaderOrigin)
	if !ok {
		return o, fmt.Errorf("no %s header", HeaderOrigin)
	}
	for _, field := range strings.Fields(raw) {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "subject":
			o.Subject = v
		case "topic":
			o.Topic = v
		}
	}
	if o.Subject == "" && o.Topic == "" {
		return o, fmt.Errorf("%s %q names no subject or topic", HeaderOrigin, raw)
	}
	return o, nil
}

// Original returns the message to publish back: the parked body, key and
// headers without the wps-bridge-* ones, addressed to the origin.
func Original(m *source.Message, o Origin) *source.Message {
	hdr := make(source.Headers, 0, len(m.Headers))
	for _, h := range m.Headers {
		if len(h.Key) >= len(headerPrefix) && strings.EqualFold(h.Key[:len(headerPrefix)], headerPrefix) {
			continue
		}
		hdr = append(hdr, h)
	}
	subject := o.Subject
	if o.Topic != "" {
		subject = o.Topic
	}
	return &source.Message{Body: m.Body, Headers: hdr, Key: m.Key, Subject: subject, Topic: o.Topic}
}

// Options tune Replay.
type Options struct {
	Filter Filter
	// DryRun reads and reports but publishes and removes nothing.
	DryRun bool
	// Rate caps replays per second; 0 means no limit.
	Rate float64
	// Limit stops after this many matching messages; 0 means all.
	Limit int
	// OnMessage, if set, is called for each message read (matched or not),
	// after it was handled: for progress bars and listings.
	OnMessage func(p *Parked, matched bool, o Origin)
}

// Result counts what Replay did.
type Result struct {
	Read, Matched, Replayed int
}

// PublisherFor returns the publisher that reaches an origin (shared across
// calls; the caller closes them).
type PublisherFor func(ctx context.Context, o Origin) (source.Publisher, error)

// Replay moves matching dead letters back to their origin. It stops at the
// end of r, at opts.Limit, or at the first error (the message that failed
// stays parked). Each message is published (confirmed) before it is removed,
// so a crash in between duplicates it rather than losing it.
func Replay(ctx context.Context, r Reader, publisherFor PublisherFor, opts Options) (Result, error) {
	var res Result
	var limiter *rate.Limiter
	if opts.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(opts.Rate), 1)
	}
	for opts.Limit == 0 || res.Matched < opts.Limit {
		p, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("read dead letter: %w", err)
		}
		res.Read++
		matched := opts.Filter.Match(p.Msg)
		var o Origin
		if matched {
			res.Matched++
			if o, err = ParseOrigin(p.Msg); err != nil {
				return res, fmt.Errorf("dead letter %s: %w", p.ID, err)
			}
			if !opts.DryRun {
				if err := replayOne(ctx, p, o, publisherFor, limiter); err != nil {
					return res, err
				}
				res.Replayed++
			}
		}
		if !matched && !opts.DryRun && p.pass != nil {
			if err := p.pass(ctx); err != nil {
				return res, fmt.Errorf("dead letter %s: pass over: %w", p.ID, err)
			}
		}
		if opts.OnMessage != nil {
			opts.OnMessage(p, matched, o)
		}
	}
	return res, nil
}

func replayOne(ctx context.Context, p *Parked, o Origin, publisherFor PublisherFor, limiter *rate.Limiter) error {
	if limiter != nil {
		if err := limiter.Wait(ctx); err != nil {
			return fmt.Errorf("dead letter %s: rate limit: %w", p.ID, err)
		}
	}
	pub, err := publisherFor(ctx, o)
	if err != nil {
		return fmt.Errorf("dead letter %s: %w", p.ID, err)
	}
	if err := pub.Publish(ctx, Original(p.Msg, o)); err != nil {
		return fmt.Errorf("dead letter %s: republish: %w", p.ID, err)
	}
	if err := p.remove(ctx); err != nil {
		return fmt.Errorf("dead letter %s: republished, but not removed (it will be replayed again): %w", p.ID, err)
	}
	return nil
}
