package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wps-bridge/bridge/internal/source"
)

// Harness adapts one broker to the suite.
//
// For a given t, every call of New and Publish must use the same destination
// and consumer identity (queue group, durable, consumer group), and one that
// no other test uses: derive names from [Name](t). The destination must keep
// publish order (Kafka: one partition).
type Harness struct {
	// New opens a source on t's destination. The suite closes it.
	New func(t *testing.T) source.Source
	// Publish writes one message to t's destination, confirmed by the broker.
	Publish func(t *testing.T, body []byte, hdr source.Headers)
	// AtLeastOnce is true for brokers that redeliver unacked messages.
	AtLeastOnce bool
	// CommitsContiguously is true for brokers that commit an offset rather
	// than ack single messages (Kafka): a reopen after acking 2 and 3 but not
	// 1 redelivers 1, 2 and 3 instead of 1 alone.
	CommitsContiguously bool
	// Timeout bounds each wait for a message (default 20s; a Kafka group
	// join takes seconds).
	Timeout time.Duration
}

// Name returns a broker-safe name unique to t (letters, digits, '-' and '_').
func Name(t *testing.T) string {
	return "c_" + strings.Trim(unsafeChars.ReplaceAllString(t.Name(), "_"), "_")
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	if h.Timeout <= 0 {
		h.Timeout = 20 * time.Second
	}
	s := suite{h: h}
	tests := []struct {
		name        string
		atLeastOnce bool
		run         func(*testing.T)
	}{
		{"BodyAndHeaders", false, s.bodyAndHeaders},
		{"CancelDuringRead", false, s.cancelDuringRead},
		{"CloseWhileReading", false, s.closeWhileReading},
		{"ReadAfterClose", false, s.readAfterClose},
		{"AckRemoves", true, s.ackRemoves},
		{"NakRedelivers", true, s.nakRedelivers},
		{"InOrderAcks", true, s.inOrderAcks},
		{"OutOfOrderAcks", true, s.outOfOrderAcks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.atLeastOnce && !h.AtLeastOnce {
				t.Skip("broker is at-most-once")
			}
			tc.run(t)
		})
	}
}

type suite struct{ h Harness }

// open returns a connected source, closed at the end of the test unless the
// test closes it first (Close is idempotent).
func (s suite) open(t *testing.T) source.Source {
	t.Helper()
	src := s.h.New(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := src.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if c, ok := src.(source.Connector); ok {
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		defer cancel()
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("Connect: %v", err)
		}
	}
	return src
}

func (s suite) close(t *testing.T, src source.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := src.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

type delivered struct {
	msg *source.Message
	ack source.AckFunc
}

// read reads one message, retrying on source.ErrNotConnected, within the
// harness timeout.
func (s suite) read(t *testing.T, src source.Source) delivered {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	defer cancel()
	for {
		msg, ack, err := src.Read(ctx)
		switch {
		case err == nil:
			if msg == nil || ack == nil {
				t.Fatalf("Read returned a nil message or AckFunc without error")
			}
			return delivered{msg, ack}
		case errors.Is(err, source.ErrNotConnected) && ctx.Err() == nil:
			continue
		default:
			t.Fatalf("Read: %v", err)
		}
	}
}

func (s suite) readN(t *testing.T, src source.Source, n int) []delivered {
	t.Helper()
	out := make([]delivered, 0, n)
	for range n {
		out = append(out, s.read(t, src))
	}
	return out
}

func (s suite) publishN(t *testing.T, prefix string, n int) []string {
	t.Helper()
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("%s-%d", prefix, i+1)
		s.h.Publish(t, []byte(bodies[i]), nil)
	}
	return bodies
}

func ack(t *testing.T, d delivered, err error) {
	t.Helper()
	if aerr := d.ack(context.Background(), err); aerr != nil {
		t.Fatalf("ack %q (err=%v): %v", d.msg.Body, err, aerr)
	}
}

// drainUntilSentinel publishes a sentinel and returns the bodies read before
// it, acking everything. Since the destination keeps order, anything the
// source still had to deliver comes before the sentinel.
func (s suite) drainUntilSentinel(t *testing.T, src source.Source) []string {
	t.Helper()
	sentinel := "sentinel-" + Name(t)
	s.h.Publish(t, []byte(sentinel), nil)
	var before []string
	for {
		d := s.read(t, src)
		ack(t, d, nil)
		if string(d.msg.Body) == sentinel {
			return before
		}
		before = append(before, string(d.msg.Body))
	}
}

func (s suite) bodyAndHeaders(t *testing.T) {
	src := s.open(t)
	hdrs := []source.Headers{
		{{Key: "wps-action", Value: "sendToAll"}, {Key: "wps-hub", Value: "chat"}},
		nil,
		{{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
	}
	bodies := []string{`{"actionName":"sendToAll","data":"hi"}`, "plain text", "\x00\x01binary\xff"}
	for i := range bodies {
		s.h.Publish(t, []byte(bodies[i]), hdrs[i])
	}
	for i, d := range s.readN(t, src, len(bodies)) {
		if got := string(d.msg.Body); got != bodies[i] {
			t.Errorf("message %d: body %q, want %q", i, got, bodies[i])
		}
		for _, h := range hdrs[i] {
			if v, ok := d.msg.Headers.Get(h.Key); !ok || v != h.Value {
				t.Errorf("message %d: header %s = %q (present %v), want %q", i, h.Key, v, ok, h.Value)
			}
		}
		if len(d.msg.Headers) < len(hdrs[i]) {
			t.Errorf("message %d: %d headers, want at least %d", i, len(d.msg.Headers), len(hdrs[i]))
		}
		if d.msg.Subject == "" {
			t.Errorf("message %d: empty Subject", i)
		}
		ack(t, d, nil)
	}
}

func (s suite) cancelDuringRead(t *testing.T) {
	src := s.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	msg, _, err := src.Read(ctx)
	if msg != nil {
		t.Fatalf("Read on an empty destination returned %q", msg.Body)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read after the deadline: err %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("Read returned %v after its deadline", waited-200*time.Millisecond)
	}
}

func (s suite) closeWhileReading(t *testing.T) {
	src := s.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, _, err := src.Read(ctx)
		errc <- err
	}()
	s.close(t, src)
	select {
	case err := <-errc:
		if !errors.Is(err, source.ErrEndOfInput) {
			t.Fatalf("Read blocked during Close returned %v, want source.ErrEndOfInput", err)
		}
	case <-ctx.Done():
		t.Fatal("Read still blocked after Close")
	}
}

func (s suite) readAfterClose(t *testing.T) {
	src := s.open(t)
	s.close(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	defer cancel()
	if _, _, err := src.Read(ctx); !errors.Is(err, source.ErrEndOfInput) {
		t.Fatalf("Read after Close: %v, want source.ErrEndOfInput", err)
	}
}

func (s suite) ackRemoves(t *testing.T) {
	src := s.open(t)
	bodies := s.publishN(t, "ack", 3)
	for i, d := range s.readN(t, src, len(bodies)) {
		if string(d.msg.Body) != bodies[i] {
			t.Fatalf("read %q, want %q", d.msg.Body, bodies[i])
		}
		ack(t, d, nil)
	}
	s.close(t, src)
	src = s.open(t)
	if again := s.drainUntilSentinel(t, src); len(again) > 0 {
		t.Fatalf("acked messages redelivered after reopen: %q", again)
	}
}

func (s suite) nakRedelivers(t *testing.T) {
	src := s.open(t)
	bodies := s.publishN(t, "nak", 1)
	d := s.read(t, src)
	ack(t, d, errors.New("wps said 503"))
	// Without a reopen: a nak must not stall the message until a restart.
	again := s.read(t, src)
	if string(again.msg.Body) != bodies[0] {
		t.Fatalf("after nak read %q, want %q again", again.msg.Body, bodies[0])
	}
	ack(t, again, nil)
}

func (s suite) inOrderAcks(t *testing.T) {
	src := s.open(t)
	bodies := s.publishN(t, "inorder", 5)
	for i, d := range s.readN(t, src, len(bodies)) {
		if string(d.msg.Body) != bodies[i] {
			t.Fatalf("message %d: %q, want %q (publish order)", i, d.msg.Body, bodies[i])
		}
		ack(t, d, nil)
	}
	s.close(t, src)
	src = s.open(t)
	if again := s.drainUntilSentinel(t, src); len(again) > 0 {
		t.Fatalf("in-order acked messages redelivered: %q", again)
	}
}

func (s suite) outOfOrderAcks(t *testing.T) {
	src := s.open(t)
	bodies := s.publishN(t, "ooo", 3)
	got := s.readN(t, src, 3)
	ack(t, got[2], nil)
	ack(t, got[1], nil)
	s.close(t, src) // message 1 not acked

	src = s.open(t)
	want := bodies[:1]
	if s.h.CommitsContiguously {
		want = bodies // nothing past the unacked message 1 was committed
	}
	redelivered := s.readN(t, src, len(want))
	for i, d := range redelivered {
		if string(d.msg.Body) != want[i] {
			t.Fatalf("redelivery %d: %q, want %q (want all of %q)", i, d.msg.Body, want[i], want)
		}
	}
	ack(t, redelivered[0], nil) // now 1 is acked too
	for _, d := range redelivered[1:] {
		ack(t, d, nil)
	}
	s.close(t, src)

	src = s.open(t)
	if again := s.drainUntilSentinel(t, src); len(again) > 0 {
		t.Fatalf("after acking message 1, messages redelivered: %q", again)
	}
}
