package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Sizes fixed by issue 4.
const (
	orderCommands = 50_000
	orderTargets  = 200
	orderLanes    = 64
)

// orderPayload is the data of an ordering command.
type orderPayload struct {
	T int `json:"t"` // target
	S int `json:"s"` // sequence within the target
}

// orderEnvelopes returns the commands in publish order: round-robin over the
// targets, each target's sequence counting up from 0.
func orderEnvelopes() (targets []string, bodies [][]byte) {
	perTarget := orderCommands / orderTargets
	for s := range perTarget {
		for tg := range orderTargets {
			targets = append(targets, fmt.Sprintf("t%03d", tg))
			bodies = append(bodies, fmt.Appendf(nil, `{"actionName":"sendToGroup","group":"t%03d","data":{"t":%d,"s":%d}}`, tg, tg, s))
		}
	}
	return targets, bodies
}

// checkOrder verifies that every target's commands arrived exactly once each,
// in sequence order.
func checkOrder(t *testing.T, reqs []request) {
	t.Helper()
	next := make([]int, orderTargets)
	violations := 0
	for _, r := range reqs {
		if r.Status >= 300 {
			t.Fatalf("request answered %d: %s", r.Status, r.Path)
		}
		var p orderPayload
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatalf("body %q: %v", r.Body, err)
		}
		if want := fmt.Sprintf("/groups/t%03d/:send", p.T); !strings.HasSuffix(r.Path, want) {
			t.Fatalf("payload of target %d sent to %s", p.T, r.Path)
		}
		if p.S != next[p.T] {
			if violations < 5 {
				t.Errorf("target t%03d: got sequence %d, want %d", p.T, p.S, next[p.T])
			}
			violations++
		}
		next[p.T] = p.S + 1
	}
	if violations > 0 {
		t.Fatalf("%d order violations", violations)
	}
	for tg, n := range next {
		if n != orderCommands/orderTargets {
			t.Errorf("target t%03d: last sequence %d, want %d", tg, n-1, orderCommands/orderTargets-1)
		}
	}
}

const orderRouter = `router:
  lanes: 64
`

// TestOrderingJetStream: 50,000 commands over 200 targets with 64 lanes reach
// Web PubSub in per-target order from JetStream.
func TestOrderingJetStream(t *testing.T) {
	t.Parallel()
	forEachNATS(t, func(t *testing.T, natsURL string) {
		rec := newRecorder(t)
		_, js := connectNATS(t, natsURL)
		n := newJSNames(t, js)
		br := startBridge(t, yamlWPS("")+"sources:\n"+yamlJSSource("js", natsURL, n, "")+orderRouter+yamlJSDLQ(natsURL, n),
			envFor(rec, accessKey))
		br.waitReady(t)

		_, bodies := orderEnvelopes()
		msgs := make([]*nats.Msg, len(bodies))
		for i, b := range bodies {
			msgs[i] = &nats.Msg{Subject: n.subject + ".order", Data: b}
		}
		start := time.Now()
		jsPublish(t, js, msgs...)
		rec.wait(t, 3*time.Minute, "all commands delivered", func(s recState) bool { return s.accepted >= orderCommands })
		elapsed := time.Since(start)
		reqs, _ := rec.snapshot()
		t.Logf("jetstream: %d commands over %d targets, %d lanes: %v (%.0f/s)", len(reqs), orderTargets, orderLanes,
			elapsed.Round(time.Millisecond), float64(len(reqs))/elapsed.Seconds())
		checkOrder(t, reqs)
	})
}

// TestOrderingKafka: the same from Kafka (8 partitions, record key = target).
func TestOrderingKafka(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	brokers := startKafka(t, kafkaCmds)
	br := startBridge(t, yamlWPS("")+"sources:\n"+yamlKafkaSource("kafka", brokers, kafkaCmds, "e2e-order")+orderRouter,
		envFor(rec, accessKey))
	br.waitReady(t)

	targets, bodies := orderEnvelopes()
	recs := make([]*kgo.Record, len(bodies))
	for i, b := range bodies {
		recs[i] = &kgo.Record{Topic: kafkaCmds, Key: []byte(targets[i]), Value: b}
	}
	start := time.Now()
	kafkaProduce(t, kafkaClient(t, brokers), recs...)
	rec.wait(t, 3*time.Minute, "all commands delivered", func(s recState) bool { return s.accepted >= orderCommands })
	elapsed := time.Since(start)
	reqs, _ := rec.snapshot()
	t.Logf("kafka: %d commands over %d targets, %d lanes: %v (%.0f/s)", len(reqs), orderTargets, orderLanes,
		elapsed.Round(time.Millisecond), float64(len(reqs))/elapsed.Seconds())
	checkOrder(t, reqs)
}
