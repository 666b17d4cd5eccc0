package dlq_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/dlq"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/kafkasource"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Publisher that records what it was given.
type recorder struct {
	mu   sync.Mutex
	msgs []*source.Message
	err  error
}

func (r *recorder) Publish(_ context.Context, m *source.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.msgs = append(r.msgs, m)
	return nil
}

func (r *recorder) Close(context.Context) error { return nil }

func parkedHeaders(class, action, origin string) source.Headers {
	return source.Headers{
		{Key: "x-app", Value: "kept"},
		{Key: "wps-bridge-error", Value: "wps: sendToGroup: 503 Service Unavailable"},
		{Key: "wps-bridge-error-class", Value: class},
		{Key: "wps-bridge-action", Value: action},
		{Key: "wps-bridge-source", Value: "kcmds"},
		{Key: "wps-bridge-origin", Value: origin},
	}
}

func TestParseOriginAndOriginal(t *testing.T) {
	tests := []struct {
		origin string
		want   dlq.Origin
		err    bool
	}{
		{"subject=wps.chat", dlq.Origin{Source: "kcmds", Subject: "wps.chat"}, false},
		{"topic=cmds partition=2 offset=17", dlq.Origin{Source: "kcmds", Topic: "cmds"}, false},
		{"partition=2", dlq.Origin{}, true},
	}
	for _, tt := range tests {
		m := &source.Message{Body: []byte("b"), Key: []byte("k"), Headers: parkedHeaders("invalid", "", tt.origin)}
		got, err := dlq.ParseOrigin(m)
		if (err != nil) != tt.err {
			t.Fatalf("%q: err = %v", tt.origin, err)
		}
		if tt.err {
			continue
		}
		if got != tt.want {
			t.Errorf("%q: origin = %+v, want %+v", tt.origin, got, tt.want)
		}
		orig := dlq.Original(m, got)
		if len(orig.Headers) != 1 || orig.Headers[0].Key != "x-app" || string(orig.Key) != "k" {
			t.Errorf("%q: original = %+v", tt.origin, orig)
		}
		if want := tt.want.Subject + tt.want.Topic; orig.Subject != want {
			t.Errorf("%q: original subject = %q, want %q", tt.origin, orig.Subject, want)
		}
	}
}

func TestFilter(t *testing.T) {
	m := &source.Message{Headers: parkedHeaders("Transient", "sendToGroup", "subject=x")}
	tests := []struct {
		f    dlq.Filter
		want bool
	}{
		{dlq.Filter{}, true},
		{dlq.Filter{Classes: []string{"transient"}}, true},
		{dlq.Filter{Classes: []string{"invalid"}}, false},
		{dlq.Filter{Actions: []string{"sendToUser", "SENDTOGROUP"}}, true},
		{dlq.Filter{Actions: []string{"sendToUser"}, Classes: []string{"transient"}}, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(m); got != tt.want {
			t.Errorf("%+v.Match = %v, want %v", tt.f, got, tt.want)
		}
	}
}

// kafkaDeadLetter starts kfake with a dead-letter topic holding n parked
// messages (even ones transient, odd ones invalid) and returns the brokers.
func kafkaDeadLetter(t *testing.T, n int) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "dlq", "cmds"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p, err := kafkasource.NewPublisher(kafkasource.WriterConfig{Brokers: c.ListenAddrs(), Topic: "dlq"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for i := range n {
		class := "transient"
		if i%2 == 1 {
			class = "invalid"
		}
		msg := &source.Message{Body: []byte(strconv.Itoa(i)), Key: []byte("room"), Headers: parkedHeaders(class, "sendToGroup", "topic=cmds partition=0 offset="+strconv.Itoa(i))}
		if err := p.Publish(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	return c.ListenAddrs()
}

func openKafka(t *testing.T, brokers []string, group string) *dlq.SourceReader {
	t.Helper()
	src, err := kafkasource.New(kafkasource.Config{Name: "dead-letter", Brokers: brokers, Topics: []string{"dlq"}, Group: group}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	r := dlq.NewSourceReader(src, 2*time.Second)
	r.FirstReadGrace = 3 * time.Second // kfake assigns partitions at once
	return r
}

func TestReplayKafka(t *testing.T) {
	brokers := kafkaDeadLetter(t, 6)
	pub := &recorder{}
	publisherFor := func(_ context.Context, o dlq.Origin) (source.Publisher, error) {
		if o.Source != "kcmds" || o.Topic != "cmds" {
			t.Errorf("origin = %+v", o)
		}
		return pub, nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// Dry run: everything read, nothing published, nothing committed.
	r := openKafka(t, brokers, "replay")
	res, err := dlq.Replay(ctx, r, publisherFor, dlq.Options{DryRun: true, Filter: dlq.Filter{Classes: []string{"transient"}}})
	if err := errors.Join(err, r.Close()); err != nil {
		t.Fatal(err)
	}
	if res != (dlq.Result{Read: 6, Matched: 3}) || len(pub.msgs) != 0 {
		t.Fatalf("dry run: %+v, published %d", res, len(pub.msgs))
	}

	// Replay the transient ones; the invalid ones are passed over for the group.
	r = openKafka(t, brokers, "replay")
	res, err = dlq.Replay(ctx, r, publisherFor, dlq.Options{Filter: dlq.Filter{Classes: []string{"transient"}}})
	if err := errors.Join(err, r.Close()); err != nil {
		t.Fatal(err)
	}
	if res != (dlq.Result{Read: 6, Matched: 3, Replayed: 3}) {
		t.Fatalf("replay: %+v", res)
	}
	for i, m := range pub.msgs {
		if want := strconv.Itoa(2 * i); string(m.Body) != want || m.Subject != "cmds" || string(m.Key) != "room" || len(m.Headers) != 1 {
			t.Errorf("replayed[%d] = body %q subject %q key %q headers %v", i, m.Body, m.Subject, m.Key, m.Headers)
		}
	}

	// The group committed its progress: a second pass finds nothing.
	r = openKafka(t, brokers, "replay")
	res, err = dlq.Replay(ctx, r, publisherFor, dlq.Options{})
	if err := errors.Join(err, r.Close()); err != nil {
		t.Fatal(err)
	}
	if res.Read != 0 {
		t.Errorf("second pass read %d, want 0", res.Read)
	}
}

func TestReplayStopsAtPublishFailureAndKeepsTheMessage(t *testing.T) {
	brokers := kafkaDeadLetter(t, 2)
	pub := &recorder{err: errors.New("broker down")}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	r := openKafka(t, brokers, "replay")
	res, err := dlq.Replay(ctx, r, func(context.Context, dlq.Origin) (source.Publisher, error) { return pub, nil }, dlq.Options{Limit: 1})
	if err := errors.Join(r.Close()); err != nil {
		t.Fatal(err)
	}
	if err == nil || res.Replayed != 0 {
		t.Fatalf("res %+v err %v: want the publish error", res, err)
	}
	// Nothing was committed: a retry sees both again.
	pub.err = nil
	r = openKafka(t, brokers, "replay")
	res, err = dlq.Replay(ctx, r, func(context.Context, dlq.Origin) (source.Publisher, error) { return pub, nil }, dlq.Options{})
	if err := errors.Join(err, r.Close()); err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 2 {
		t.Errorf("after the failure: %+v, want both replayed", res)
	}
}
