package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wps-bridge/bridge/tests/testkit"
)

// invalidCase is one class of invalid input and the field its dead letter
// must name.
type invalidCase struct {
	name  string
	body  string
	field string
}

func invalidCases() []invalidCase {
	return []invalidCase{
		{"bad-json", `{"actionName":"sendToAll","data":`, "body"},
		{"unknown-action", `{"actionName":"sendToMars","data":1}`, "actionName"},
		{"missing-target", `{"actionName":"sendToGroup","data":1}`, "group"},
		{"bad-hub", `{"actionName":"sendToAll","hub":"1hub","data":1}`, "hub"},
		{"bad-group", `{"actionName":"sendToGroup","group":"two\nlines","data":1}`, "group"},
		{"ttl-301", `{"actionName":"sendToAll","ttl":301,"data":1}`, "ttl"},
		{"bad-base64", `{"actionName":"sendToAll","dataType":"binary","data":"not*base64"}`, "data"},
	}
}

// expiredBody is dropped (counted), neither delivered nor dead-lettered.
func expiredBody() string {
	return fmt.Sprintf(`{"actionName":"sendToGroup","group":"good","data":{"expired":true},"expiresAt":%q}`,
		time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
}

// dlqInput is one published message of the dead-letter suite.
type dlqInput struct {
	name string // "" for good commands
	body []byte
}

// dlqInputs interleaves good commands with every invalid case and the expired one.
func dlqInputs() []dlqInput {
	var in []dlqInput
	good := 0
	addGood := func() {
		in = append(in, dlqInput{body: fmt.Appendf(nil, `{"actionName":"sendToGroup","group":"good","data":{"good":%d}}`, good)})
		good++
	}
	addGood()
	for _, c := range invalidCases() {
		in = append(in, dlqInput{name: c.name, body: []byte(c.body)})
		addGood()
	}
	in = append(in, dlqInput{name: "expired", body: []byte(expiredBody())})
	addGood()
	return in
}

const caseHeader = "X-E2e-Case"

// TestDeadLetter: each invalid input class lands on the dead letter (a
// JetStream stream, a Kafka topic) with its original body and headers and a
// wps-bridge-error naming the field; an expired command is dropped, not
// parked; the good commands around them are delivered.
func TestDeadLetter(t *testing.T) {
	t.Parallel()
	inputs := dlqInputs()
	goods := 0
	for _, in := range inputs {
		if in.name == "" {
			goods++
		}
	}

	run := func(t *testing.T, br *bridgeRun, rec *recorder, parked func() []dlqMessage) {
		rec.wait(t, 60*time.Second, "good commands delivered", func(s recState) bool { return s.unique >= goods })
		// Every message is finished (acked) only after its dead letter was
		// confirmed, so once all are acked the dead letter is complete.
		testkit.Eventually(t, 30*time.Second, "every message acked", func() (bool, string) {
			v := metric(t, br.b.Registry(), "wpsbridge_messages_acked_total", nil)
			return int(v) == len(inputs), fmt.Sprintf("%v of %d acked", v, len(inputs))
		})
		reqs, bodies := rec.snapshot()
		for _, r := range reqs {
			if bytes.Contains(r.Body, []byte("expired")) {
				t.Errorf("the expired command was sent: %s %s", r.Method, r.Path)
			}
		}
		if len(reqs) != goods || len(bodies) != goods {
			t.Errorf("%d requests (%d distinct), want the %d good commands once each", len(reqs), len(bodies), goods)
		}
		if v := metric(t, br.b.Registry(), "wpsbridge_commands_dropped_total", nil); v != 1 {
			t.Errorf("wpsbridge_commands_dropped_total = %v, want 1 (the expired command)", v)
		}

		got := map[string]dlqMessage{}
		for _, m := range parked() {
			name := m.Headers[strings.ToLower(caseHeader)]
			if _, dup := got[name]; dup {
				t.Errorf("case %q parked twice", name)
			}
			got[name] = m
		}
		if m, ok := got["expired"]; ok {
			t.Errorf("the expired command was dead-lettered: %q", m.Headers["wps-bridge-error"])
		}
		for _, c := range invalidCases() {
			t.Run(c.name, func(t *testing.T) {
				m, ok := got[c.name]
				if !ok {
					t.Fatalf("not on the dead letter")
				}
				reason := m.Headers["wps-bridge-error"]
				t.Logf("wps-bridge-error: %s", reason)
				if !strings.Contains(reason, c.field) {
					t.Errorf("wps-bridge-error %q does not name the field %q", reason, c.field)
				}
				if !bytes.Equal(m.Body, []byte(c.body)) {
					t.Errorf("body %q, want the original %q", m.Body, c.body)
				}
				if cls := m.Headers["wps-bridge-error-class"]; cls != "invalid" {
					t.Errorf("wps-bridge-error-class %q, want invalid", cls)
				}
				for _, h := range []string{"wps-bridge-source", "wps-bridge-origin", "wps-bridge-failed-at", "wps-bridge-attempts"} {
					if m.Headers[h] == "" {
						t.Errorf("header %s missing", h)
					}
				}
			})
		}
		if len(got) != len(invalidCases()) {
			t.Errorf("%d messages parked, want %d", len(got), len(invalidCases()))
		}
	}

	t.Run("jetstream", func(t *testing.T) {
		t.Parallel()
		forEachNATS(t, func(t *testing.T, natsURL string) {
			rec := newRecorder(t)
			_, js := connectNATS(t, natsURL)
			n := newJSNames(t, js)
			br := startBridge(t, yamlWPS("")+"sources:\n"+yamlJSSource("js", natsURL, n, "")+yamlJSDLQ(natsURL, n), envFor(rec, accessKey))
			br.waitReady(t)
			msgs := make([]*nats.Msg, len(inputs))
			for i, in := range inputs {
				msgs[i] = &nats.Msg{Subject: n.subject + ".dlq", Data: in.body, Header: nats.Header{}}
				msgs[i].Header.Set(caseHeader, in.name)
			}
			jsPublish(t, js, msgs...)
			run(t, br, rec, func() []dlqMessage { return jsDLQ(t, js, n.dlqStream) })
		})
	})

	t.Run("kafka", func(t *testing.T) {
		t.Parallel()
		rec := newRecorder(t)
		brokers := startKafka(t, kafkaCmds, kafkaDLQ)
		cl := kafkaClient(t, brokers)
		br := startBridge(t, yamlWPS("")+"sources:\n"+yamlKafkaSource("kafka", brokers, kafkaCmds, "e2e-dlq")+yamlKafkaDLQ(brokers),
			envFor(rec, accessKey))
		br.waitReady(t)
		recs := make([]*kgo.Record, len(inputs))
		for i, in := range inputs {
			// One key: the whole sequence stays in one partition, in order.
			recs[i] = &kgo.Record{Topic: kafkaCmds, Key: []byte("dlq"), Value: in.body,
				Headers: []kgo.RecordHeader{{Key: caseHeader, Value: []byte(in.name)}}}
		}
		kafkaProduce(t, cl, recs...)
		run(t, br, rec, func() []dlqMessage {
			if n := kafkaEndOffsets(t, cl, kafkaDLQ); n != int64(len(invalidCases())) {
				t.Errorf("dead-letter topic holds %d records, want %d", n, len(invalidCases()))
			}
			return kafkaDLQMessages(kafkaReadAll(t, brokers, kafkaDLQ, len(invalidCases()), 30*time.Second))
		})
	})
}
