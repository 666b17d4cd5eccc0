package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNATSServerRestart restarts the nats-server twice, on the same port and
// store, while the bridge drains a JetStream stream: the bridge reconnects
// by itself, nothing is lost and nothing valid is dead-lettered.
func TestNATSServerRestart(t *testing.T) {
	const n = 12_000
	s := newSink(t)
	ns := startNATS(t, nil)
	_, js := connectJS(t, ns.url())
	createStream(t, js, cmdStream, "chaos.>")
	ps, ids := payloads("js", n, groups)
	msgs := make([]*nats.Msg, n)
	for i, p := range ps {
		msgs[i] = envelopeMsg(cmdSubject, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The first half is there before the bridge starts; the second half is
	// published while the server restarts (the test client buffers and retries).
	if err := jsPublish(ctx, js, msgs[:n/2]); err != nil {
		t.Fatal(err)
	}
	b := startBridge(t, "bridge", bridgeYAML(jsSourceYAML("js", ns.url(), cmdStream, cmdSubject, "bridge", ""),
		jsDLQYAML(dlqStream, dlqSubject), freeAddr(t), ""), map[string]string{envConn: s.connString})
	b.waitReady(t, 30*time.Second)

	pubDone := make(chan error, 1)
	go func() { pubDone <- jsPublish(ctx, js, msgs[n/2:]) }()

	var recoveries []time.Duration
	for i, at := range []int{n / 5, n / 2} {
		if !s.awaitDistinct(at, 2*time.Minute) {
			t.Fatalf("restart %d: only %d of %d delivered before the restart point\n%s", i+1, s.distinct(), n, b.logTail())
		}
		ns.stop()
		// The outage lasts one second, long enough for the bridge's pulls and
		// acks to fail, on purpose.
		select {
		case <-time.After(time.Second):
		case <-t.Context().Done():
			t.Fatal("test cancelled")
		}
		ns.start()
		up := time.Now()
		before := s.distinct()
		if !s.awaitDistinct(before+1, time.Minute) {
			t.Fatalf("restart %d: nothing delivered within a minute of the server's return\n%s", i+1, b.logTail())
		}
		recoveries = append(recoveries, time.Since(up))
		t.Logf("restart %d: first delivery %v after the server came back", i+1, recoveries[i].Round(time.Millisecond))
	}
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	s.waitDistinct(t, n, 3*time.Minute)
	if b.exited() {
		t.Fatalf("bridge exited: %v", b.waitErr)
	}
	b.waitReady(t, 30*time.Second)
	if m, sample := s.missing(ids); m > 0 {
		t.Fatalf("%d commands lost, e.g. %v", m, sample)
	}
	if dl := streamMsgs(t, js, dlqStream); len(dl) > 0 {
		t.Errorf("%d valid commands dead-lettered, first: %s", len(dl), dl[0].Header.Get("wps-bridge-error"))
	}
	figure(t, "nats-restart: restarts=2 messages=%d lost=0 duplicates=%d first-delivery-after-restart=%v", n, s.duplicates(), recoveries)
}

// TestKafkaRequestFaults injects broker errors with kfake's request-control
// hooks and faults: dropped connections on Fetch, retriable error codes on
// OffsetCommit and on the Produce calls of the Kafka dead letter. Valid
// commands all arrive, invalid ones all reach the dead letter, and the
// duplicates stay a small fraction (no duplicate storm).
func TestKafkaRequestFaults(t *testing.T) {
	t.Run("fetch, commit and produce errors", func(t *testing.T) { kafkaFaults(t, false) })
	t.Run("dead-letter produce connection dropped", func(t *testing.T) {
		kafkaFaults(t, true)
	})
}

// kafkaFaults runs the Kafka fault scenario; dropProduce adds one dropped
// connection on a dead-letter produce.
func kafkaFaults(t *testing.T, dropProduce bool) {
	const (
		n       = 10_000
		invalid = 200
		dlTopic = "chaos-dlq"
	)
	s := newSink(t)
	kc := startKafka(t, kfake.SeedTopics(8, cmdTopic, dlTopic))
	brokers := kc.ListenAddrs()
	admin := kafkaClient(t, brokers)

	// Fetch: every 3rd fetch has its connection closed, 15 times.
	var fetches, fetchDrops atomic.Int64
	kc.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if fetches.Add(1)%3 != 0 || fetchDrops.Load() >= 15 {
			return nil, nil, false
		}
		fetchDrops.Add(1)
		return nil, errors.New("chaos: fetch connection dropped"), true
	})
	// OffsetCommit: 15 answered with a retriable coordinator error.
	commitFaults := kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Err: kerr.CoordinatorLoadInProgress, Count: 15})
	// Produce to the dead letter: 5 refused with NOT_ENOUGH_REPLICAS (within
	// the writer's attempts), and optionally one connection dropped.
	produceFaults := kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: dlTopic, Err: kerr.NotEnoughReplicas, Count: 5})
	var produceDrops atomic.Int64
	if dropProduce {
		kc.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
			pr := req.(*kmsg.ProduceRequest)
			if len(pr.Topics) == 0 || pr.Topics[0].Topic != dlTopic {
				kc.KeepControl()
				return nil, nil, false
			}
			// KeepControl is sticky: drop this control after its one drop.
			kc.DropControl()
			produceDrops.Add(1)
			return nil, errors.New("chaos: produce connection dropped"), true
		})
	}

	ps, ids := payloads("kf", n, groups)
	recs := make([]*kgo.Record, 0, n+invalid)
	for i, p := range ps {
		recs = append(recs, kafkaRecord(cmdTopic, p))
		if i%(n/invalid) == 0 {
			recs = append(recs, &kgo.Record{Topic: cmdTopic, Key: []byte("bad"),
				Value:   fmt.Appendf(nil, `{"actionName":"sendToGroup","group":"bad\ngroup %d","data":1}`, i),
				Headers: []kgo.RecordHeader{{Key: "Chaos-Id", Value: fmt.Appendf(nil, "bad-%d", i)}}})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkaProduce(ctx, admin, recs); err != nil {
		t.Fatal(err)
	}
	b := startBridge(t, "bridge", bridgeYAML(kafkaSourceYAML("kafka", brokers, cmdTopic, "bridge", ""),
		fmt.Sprintf("deadLetter:\n  type: kafka\n  topic: %s", dlTopic), freeAddr(t), ""),
		map[string]string{envConn: s.connString})
	if !s.awaitDistinct(n, 2*time.Minute) {
		t.Fatalf("Web PubSub received %d of %d distinct commands\n%s", s.distinct(), n, b.logTail())
	}
	if m, sample := s.missing(ids); m > 0 {
		t.Fatalf("%d commands lost, e.g. %v", m, sample)
	}
	dl := kafkaReadAll(t, brokers, dlTopic, invalid, time.Minute)
	parked := map[string]bool{}
	for _, r := range dl {
		for _, h := range r.Headers {
			if h.Key == "Chaos-Id" {
				parked[string(h.Value)] = true
			}
		}
		if reason := header(r, "wps-bridge-error"); !strings.Contains(reason, "group") {
			t.Errorf("dead letter without a reason naming the field: %q", reason)
		}
	}
	if len(parked) != invalid {
		t.Errorf("dead letter holds %d distinct invalid commands of %d (%d records)\n%s", len(parked), invalid, len(dl), b.logTail())
	}
	if err := b.stop(30 * time.Second); err != nil {
		t.Errorf("bridge stop: %v", err)
	}
	dups := s.duplicates()
	if dups > n/4 {
		t.Errorf("duplicate storm: %d duplicates for %d commands", dups, n)
	}
	if fetchDrops.Load() == 0 || commitFaults.Hits() == 0 || produceFaults.Hits() == 0 {
		t.Errorf("faults not exercised: fetch drops %d, commit errors %d, produce errors %d + drops %d",
			fetchDrops.Load(), commitFaults.Hits(), produceFaults.Hits(), produceDrops.Load())
	}
	figure(t, "kafka-faults: fetch-drops=%d commit-errors=%d produce-errors=%d produce-drops=%d messages=%d invalid=%d lost=0 duplicates=%d dead-letter-records=%d",
		fetchDrops.Load(), commitFaults.Hits(), produceFaults.Hits(), produceDrops.Load(), n, invalid, dups, len(dl))
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, key) {
			return string(h.Value)
		}
	}
	return ""
}
