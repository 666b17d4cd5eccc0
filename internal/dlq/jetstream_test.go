package dlq_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wps-bridge/bridge/internal/dlq"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/jetstreamsource"
	"github.com/wps-bridge/bridge/internal/source/sourcetest"
)

// jetStreamDeadLetter starts a nats-server with a DLQ stream holding one
// parked message on dlq.other, then n on dlq.wps (even ones transient, odd
// ones invalid).
func jetStreamDeadLetter(t *testing.T, n int) jetstream.JetStream {
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
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := jetstreamsource.EnsureStream(ctx, js, "DLQ", []string{"dlq.>"}); err != nil {
		t.Fatal(err)
	}
	pub := jetstreamsource.NewPublisher(js, "dlq.wps")
	other := &source.Message{Body: []byte("other"), Subject: "dlq.other", Headers: parkedHeaders("transient", "sendToAll", "subject=wps.all")}
	if err := pub.Publish(ctx, other); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		class := "transient"
		if i%2 == 1 {
			class = "invalid"
		}
		msg := &source.Message{Body: []byte(strconv.Itoa(i)), Headers: parkedHeaders(class, "sendToGroup", "subject=wps.chat")}
		if err := pub.Publish(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	return js
}

// TestReplayJetStream replays the transient dead letters of one subject,
// leaving the rest parked. The last parked message is transient, so the
// stream's last sequence is gone after the replay: the next pass must still
// end (regression: it failed with "nats: timeout").
func TestReplayJetStream(t *testing.T) {
	t.Parallel()
	js := jetStreamDeadLetter(t, 5)
	pub := &recorder{}
	publisherFor := func(_ context.Context, o dlq.Origin) (source.Publisher, error) {
		if o.Source != "kcmds" || o.Subject != "wps.chat" {
			t.Errorf("origin = %+v", o)
		}
		return pub, nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	replay := func(opts dlq.Options) dlq.Result {
		t.Helper()
		r, err := dlq.OpenJetStream(ctx, js, "DLQ", "dlq.wps")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Total() != 5-int64(len(pub.msgs)) {
			t.Errorf("Total = %d with %d of 5 replayed", r.Total(), len(pub.msgs))
		}
		res, err := dlq.Replay(ctx, r, publisherFor, opts)
		if err != nil {
			t.Fatalf("Replay: %v", err)
		}
		return res
	}
	transient := dlq.Filter{Classes: []string{"transient"}}

	if res := replay(dlq.Options{DryRun: true, Filter: transient}); res != (dlq.Result{Read: 5, Matched: 3}) || len(pub.msgs) != 0 {
		t.Fatalf("dry run: %+v, published %d", res, len(pub.msgs))
	}
	if res := replay(dlq.Options{Filter: transient}); res != (dlq.Result{Read: 5, Matched: 3, Replayed: 3}) {
		t.Fatalf("replay: %+v", res)
	}
	for i, m := range pub.msgs {
		if want := strconv.Itoa(2 * i); string(m.Body) != want || m.Subject != "wps.chat" || len(m.Headers) != 1 {
			t.Errorf("replayed[%d] = body %q subject %q headers %v", i, m.Body, m.Subject, m.Headers)
		}
	}
	// Replayed messages were deleted; the invalid ones and the other
	// subject's message stay parked.
	if res := replay(dlq.Options{Filter: transient}); res != (dlq.Result{Read: 2}) {
		t.Fatalf("second pass: %+v, want the 2 invalid ones read and none matched", res)
	}
	stream, err := js.Stream(ctx, "DLQ")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("DLQ holds %d messages, want 3 (2 invalid + dlq.other)", info.State.Msgs)
	}
}
