package dlq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/natssource"
)

// fetchWait bounds one fetch of the next parked message.
const fetchWait = 2 * time.Second

// JetStreamReader reads a JetStream dead-letter stream with an ordered
// consumer; removing a message deletes it from the stream by sequence.
type JetStreamReader struct {
	stream  jetstream.Stream
	cons    jetstream.Consumer
	lastSeq uint64
	total   int64
	done    bool
}

// OpenJetStream opens the dead-letter stream name, reading the messages of
// subject ("" = all) that exist now.
func OpenJetStream(ctx context.Context, js jetstream.JetStream, name, subject string) (*JetStreamReader, error) {
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", name, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", name, err)
	}
	total := int64(info.State.Msgs)
	if subject != "" {
		total = 0
		for _, n := range info.State.Subjects {
			total += int64(n)
		}
	}
	occ := jetstream.OrderedConsumerConfig{}
	if subject != "" {
		occ.FilterSubjects = []string{subject}
	}
	cons, err := stream.OrderedConsumer(ctx, occ)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: consumer: %w", name, err)
	}
	return &JetStreamReader{stream: stream, cons: cons, lastSeq: info.State.LastSeq, total: total, done: total == 0}, nil
}

// Total is the number of parked messages when opened.
func (r *JetStreamReader) Total() int64 { return r.total }

// Next returns the next parked message, or io.EOF past the last sequence that
// existed at open.
func (r *JetStreamReader) Next(ctx context.Context) (*Parked, error) {
	for !r.done {
		fetchCtx, cancel := context.WithTimeout(ctx, fetchWait)
		msg, err := r.cons.Next(jetstream.FetchContext(fetchCtx))
		cancel()
		if (errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() == nil {
			// Nothing came: lastSeq is gone (replayed, deleted) or holds
			// another subject. Done unless the server still has some for us.
			info, ierr := r.cons.Info(ctx)
			if ierr != nil {
				return nil, fmt.Errorf("consumer info: %w", ierr)
			}
			if info.NumPending == 0 {
				r.done = true
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq > r.lastSeq {
			r.done = true
			break
		}
		if seq == r.lastSeq {
			r.done = true
		}
		return &Parked{
			Msg: &source.Message{Body: msg.Data(), Headers: natssource.FlattenHeaders(msg.Headers()), Subject: msg.Subject(), Offset: int64(seq)},
			ID:  "seq=" + strconv.FormatUint(seq, 10),
			remove: func(ctx context.Context) error {
				return r.stream.DeleteMsg(ctx, seq)
			},
		}, nil
	}
	return nil, io.EOF
}

// Close releases nothing: the ordered consumer is ephemeral.
func (r *JetStreamReader) Close() error { return nil }
