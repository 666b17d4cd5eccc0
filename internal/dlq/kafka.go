package dlq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/wps-bridge/bridge/internal/source"
)

// SourceReader reads a dead letter through a consumer-group source (the
// Kafka adapter): removing or passing over a message acks it, which commits
// the replay group's offset; a dry run acks nothing. A Kafka log cannot
// delete one record, so progress is the group's: a new --group starts over.
type SourceReader struct {
	// FirstReadGrace is added to the idle time of the first read, which
	// also waits for the consumer group to assign the partitions. Default
	// DefaultFirstReadGrace.
	FirstReadGrace time.Duration

	src     source.Source
	idle    time.Duration
	started bool // the first read happened
}

// DefaultFirstReadGrace is SourceReader.FirstReadGrace unless changed.
const DefaultFirstReadGrace = 30 * time.Second

// NewSourceReader reads src (already connected) until no message arrives for
// idle (the end of the dead letter as far as a reader can tell); the first
// read waits FirstReadGrace longer, for the group join.
func NewSourceReader(src source.Source, idle time.Duration) *SourceReader {
	return &SourceReader{src: src, idle: idle, FirstReadGrace: DefaultFirstReadGrace}
}

// Total is unknown for a Kafka topic.
func (r *SourceReader) Total() int64 { return -1 }

// Next returns the next message, or io.EOF after idle with none.
func (r *SourceReader) Next(ctx context.Context) (*Parked, error) {
	wait := r.idle
	if !r.started {
		wait += r.FirstReadGrace
		r.started = true
	}
	readCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	msg, ack, err := r.src.Read(readCtx)
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil, errors.Is(err, source.ErrEndOfInput):
		return nil, io.EOF
	default:
		return nil, err
	}
	commit := func(ctx context.Context) error { return ack(ctx, nil) }
	return &Parked{
		Msg:    msg,
		ID:     "partition=" + strconv.Itoa(int(msg.Partition)) + " offset=" + strconv.FormatInt(msg.Offset, 10),
		remove: commit,
		pass:   commit,
	}, nil
}

// Close closes the source, committing what was acked.
func (r *SourceReader) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.src.Close(ctx); err != nil {
		return fmt.Errorf("close dead-letter reader: %w", err)
	}
	return nil
}
