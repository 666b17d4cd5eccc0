package jetstreamsource_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/jetstreamsource"
	"github.com/wps-bridge/bridge/internal/source/natssource"
	"github.com/wps-bridge/bridge/internal/source/sourcetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	url string
	js  jetstream.JetStream
}

func newEnv(t *testing.T) env {
	t.Helper()
	srv := sourcetest.NATSServer(t, nil)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return env{url: srv.ClientURL(), js: js}
}

func (e env) config(t *testing.T) jetstreamsource.Config {
	name := sourcetest.Name(t)
	return jetstreamsource.Config{
		Name:           "js",
		Conn:           natssource.ConnConfig{URL: e.url},
		Stream:         name,
		Subjects:       []string{name + ".>"},
		CreateStream:   true,
		Durable:        "bridge",
		CreateConsumer: true,
	}
}

func (e env) open(t *testing.T, cfg jetstreamsource.Config) *jetstreamsource.Source {
	t.Helper()
	src, err := jetstreamsource.New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return src
}

func (e env) publish(t *testing.T, subject string, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.js.Publish(ctx, subject, []byte(body)); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// read reads one message within timeout, retrying on ErrNotConnected (the
// source returns it once while it recreates a consumer).
func read(t *testing.T, src source.Source, timeout time.Duration) (*source.Message, source.AckFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		msg, ack, err := src.Read(ctx)
		if err == nil {
			return msg, ack
		}
		if errors.Is(err, source.ErrNotConnected) && ctx.Err() == nil {
			continue
		}
		t.Fatalf("Read: %v", err)
	}
}

func TestConformance(t *testing.T) {
	e := newEnv(t)
	sourcetest.Run(t, sourcetest.Harness{
		New: func(t *testing.T) source.Source {
			src, err := jetstreamsource.New(e.config(t), nil)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return src
		},
		Publish: func(t *testing.T, body []byte, hdr source.Headers) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m := &nats.Msg{Subject: sourcetest.Name(t) + ".cmd", Data: body, Header: natssource.ToNATSHeaders(hdr)}
			if _, err := e.js.PublishMsg(ctx, m); err != nil {
				t.Fatalf("publish: %v", err)
			}
		},
		AtLeastOnce: true,
	})
}

func TestOffsetIsStreamSequence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config(t)
	src := e.open(t, cfg)
	for i := range 3 {
		e.publish(t, cfg.Stream+".x", fmt.Sprint(i))
	}
	for want := int64(1); want <= 3; want++ {
		msg, ack := read(t, src, 10*time.Second)
		if msg.Offset != want || msg.Subject != cfg.Stream+".x" || msg.Source != "js" {
			t.Fatalf("message %q: offset %d subject %q source %q, want offset %d", msg.Body, msg.Offset, msg.Subject, msg.Source, want)
		}
		if err := ack(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConsumerDeletedIsRecreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config(t)
	cfg.Heartbeat = 500 * time.Millisecond
	src := e.open(t, cfg)
	subject := cfg.Stream + ".cmd"
	for i := 1; i <= 3; i++ {
		e.publish(t, subject, fmt.Sprint(i))
	}
	for i := 1; i <= 3; i++ {
		msg, ack := read(t, src, 10*time.Second)
		if string(msg.Body) != fmt.Sprint(i) {
			t.Fatalf("read %q, want %d", msg.Body, i)
		}
		if err := ack(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.js.DeleteConsumer(ctx, cfg.Stream, cfg.Durable); err != nil {
		t.Fatalf("delete consumer: %v", err)
	}
	for i := 4; i <= 6; i++ {
		e.publish(t, subject, fmt.Sprint(i))
	}
	// The recreated consumer resumes after the last delivered sequence: the
	// acked 1..3 are not read again.
	for i := 4; i <= 6; i++ {
		msg, ack := read(t, src, 15*time.Second)
		if string(msg.Body) != fmt.Sprint(i) {
			t.Fatalf("after consumer deletion read %q, want %d", msg.Body, i)
		}
		if err := ack(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.js.Consumer(ctx, cfg.Stream, cfg.Durable); err != nil {
		t.Fatalf("durable consumer not recreated: %v", err)
	}

	// A replica (or this one, restarted) connecting afterwards shares the
	// recreated consumer, whose deliver policy the server will not update.
	if err := src.Close(ctx); err != nil {
		t.Fatal(err)
	}
	again := e.open(t, cfg)
	e.publish(t, subject, "7")
	msg, ack := read(t, again, 15*time.Second)
	if string(msg.Body) != "7" {
		t.Fatalf("after reconnecting read %q, want 7 (1..6 were acked)", msg.Body)
	}
	if err := ack(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// A message the router holds longer than AckWait is not redelivered: the
// router's Touch (while it retries) sends InProgress, and so does the
// source's own keep-alive for messages that merely wait in a lane. (Without
// the keep-alive the untouched case is redelivered.)
func TestHeldMessagesOutliveAckWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		touch          bool
		wantRedelivery bool
	}{
		{"touched by the router", true, false},
		{"held without touches", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cfg := e.config(t)
			cfg.AckWait = time.Second // touches every 333ms: slack for a loaded machine
			src := e.open(t, cfg)
			subject := cfg.Stream + ".cmd"
			e.publish(t, subject, "slow")
			msg, ack := read(t, src, 10*time.Second)
			if msg.Touch == nil {
				t.Fatal("JetStream message without Touch")
			}
			// Hold the message for 3×AckWait, as the router does while it
			// retries, touching it every AckWait/3 when asked to.
			hold := time.NewTimer(3 * cfg.AckWait)
			tick := time.NewTicker(cfg.AckWait / 3)
			defer tick.Stop()
		holding:
			for {
				select {
				case <-hold.C:
					break holding
				case <-tick.C:
					if tc.touch {
						if err := msg.Touch(context.Background()); err != nil {
							t.Fatalf("Touch: %v", err)
						}
					}
				}
			}
			if err := ack(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			e.publish(t, subject, "sentinel")
			next, nextAck := read(t, src, 10*time.Second)
			if err := nextAck(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			redelivered := string(next.Body) == "slow"
			if redelivered != tc.wantRedelivery {
				t.Fatalf("next message %q: redelivered=%v, want %v", next.Body, redelivered, tc.wantRedelivery)
			}
		})
	}
}

func TestMaxAckPendingBoundsDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config(t)
	cfg.MaxAckPending = 3
	cfg.FetchBatch = 3
	src := e.open(t, cfg)
	for i := range 5 {
		e.publish(t, cfg.Stream+".cmd", fmt.Sprint(i))
	}
	var acks []source.AckFunc
	for range 3 {
		_, ack := read(t, src, 10*time.Second)
		acks = append(acks, ack)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if msg, _, err := src.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("4th Read with 3 unacked and MaxAckPending 3: msg %v err %v, want a deadline", msg, err)
	}
	if err := acks[0](context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if msg, _ := read(t, src, 10*time.Second); string(msg.Body) != "3" {
		t.Fatalf("after one ack read %q, want 3", msg.Body)
	}
}

func TestShutdownNakRedeliversAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config(t)
	cfg.AckWait = time.Minute
	src := e.open(t, cfg)
	e.publish(t, cfg.Stream+".cmd", "abandoned")
	_, ack := read(t, src, 10*time.Second)
	start := time.Now()
	if err := ack(context.Background(), source.ErrShutdown); err != nil {
		t.Fatal(err)
	}
	msg, ack2 := read(t, src, 10*time.Second)
	if string(msg.Body) != "abandoned" {
		t.Fatalf("read %q, want the naked message", msg.Body)
	}
	if waited := time.Since(start); waited > NakDelayBound {
		t.Fatalf("shutdown nak redelivered after %v, want at once", waited)
	}
	if err := ack2(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := ack(context.Background(), nil); err == nil {
		t.Fatal("second ack of one delivery succeeded")
	}
}

// NakDelayBound is below jetstreamsource.NakDelay: a redelivery faster than
// it was not delayed.
const NakDelayBound = jetstreamsource.NakDelay * 8 / 10

func TestPublisher(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := jetstreamsource.EnsureStream(ctx, e.js, "DLQ", []string{"dlq.>"}); err != nil {
		t.Fatal(err)
	}
	pub := jetstreamsource.NewPublisher(e.js, "dlq.wps")
	tests := []struct {
		name    string
		msg     *source.Message
		wantErr error
	}{
		{"stored", &source.Message{Body: []byte("dead"), Headers: source.Headers{{Key: "wps-bridge-error", Value: "bad ttl"}}}, nil},
		{"subject override", &source.Message{Body: []byte("other"), Subject: "dlq.other"}, nil},
		{"no stream", &source.Message{Body: []byte("lost"), Subject: "nowhere.x"}, jetstream.ErrNoStreamResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := pub.Publish(ctx, tc.msg)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Publish: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			subject := "dlq.wps"
			if tc.msg.Subject != "" {
				subject = tc.msg.Subject
			}
			stream, err := e.js.Stream(ctx, "DLQ")
			if err != nil {
				t.Fatal(err)
			}
			got, err := stream.GetLastMsgForSubject(ctx, subject)
			if err != nil {
				t.Fatalf("stored message: %v", err)
			}
			if string(got.Data) != string(tc.msg.Body) {
				t.Fatalf("stored %q, want %q", got.Data, tc.msg.Body)
			}
			for _, h := range tc.msg.Headers {
				if v := got.Header.Get(h.Key); v != h.Value {
					t.Fatalf("stored header %s = %q, want %q", h.Key, v, h.Value)
				}
			}
		})
	}
}

func TestConnectWithoutConsumerFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config(t)
	cfg.CreateConsumer = false
	src, err := jetstreamsource.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Connect(ctx); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("Connect without a consumer: %v, want ErrConsumerNotFound", err)
	}
}

// Lag reports the messages waiting in the stream for the durable, the figure
// behind wpsbridge_source_lag.
func TestLagIsPendingForTheDurable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config(t)
	src := e.open(t, cfg) // creates the stream and the durable; no Read yet
	for i := range 5 {
		e.publish(t, cfg.Stream+".x", fmt.Sprint(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := src.Lag(ctx); err != nil || n != 5 {
		t.Fatalf("Lag before reading = %d, %v; want 5", n, err)
	}
	msg, ack := read(t, src, 10*time.Second)
	if err := ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_ = msg
	// The pull may have fetched more than one; none are pending any more
	// than those not yet delivered.
	if n, err := src.Lag(ctx); err != nil || n > 4 {
		t.Fatalf("Lag after one read = %d, %v; want at most 4", n, err)
	}
}
