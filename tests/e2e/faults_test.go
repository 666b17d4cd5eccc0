package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wps-bridge/bridge/tests/testkit"
)

const (
	outage          = 10 * time.Second
	outageCommands  = 2000
	outageTargets   = 100
	outageMaxPend   = 64  // router.maxPending
	outageAckPend   = 128 // JetStream maxAckPending
	outageRetryYAML = `retry:
  initial: 100ms
  max: 1s
  maxElapsed: 5m
`
)

func outageBodies() (keys []string, bodies [][]byte) {
	for i := range outageCommands {
		g := fmt.Sprintf("o%02d", i%outageTargets)
		keys = append(keys, g)
		bodies = append(bodies, fmt.Appendf(nil, `{"actionName":"sendToGroup","group":%q,"data":{"n":%d}}`, g, i))
	}
	return keys, bodies
}

// TestOutage503: Web PubSub answers 503 for 10 s. Nothing is dead-lettered,
// consumption pauses (the broker's backlog grows while the bridge holds at
// most router.maxPending messages) and every command arrives after recovery.
func TestOutage503(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, sourceYAML string, publish func(), lag func() int64, dlqCount func() int) {
		rec := newRecorder(t)
		var end atomic.Int64
		end.Store(time.Now().Add(time.Hour).UnixNano()) // set for real once the bridge is ready
		rec.setFault(func(int, *http.Request) (int, http.Header) {
			if time.Now().UnixNano() < end.Load() {
				return http.StatusServiceUnavailable, nil
			}
			return 0, nil
		})
		br := startBridge(t, yamlWPS("")+sourceYAML+outageRetryYAML+fmt.Sprintf("router:\n  maxPending: %d\n", outageMaxPend),
			envFor(rec, accessKey))
		br.waitReady(t)
		outageEnd := time.Now().Add(outage)
		end.Store(outageEnd.UnixNano())
		publish()

		// Observe the bridge and the broker until the outage ends.
		var maxPending float64
		var lastLag int64
		tick := time.NewTicker(200 * time.Millisecond)
		for time.Now().Before(outageEnd.Add(-300 * time.Millisecond)) {
			<-tick.C
			p := metric(t, br.b.Registry(), "wpsbridge_pending_messages", nil)
			maxPending = max(maxPending, p)
			lastLag = lag()
		}
		tick.Stop()
		reqs, _ := rec.snapshot()
		var n503 int
		for _, r := range reqs {
			if r.Status == http.StatusServiceUnavailable {
				n503++
			}
		}
		t.Logf("during the outage: %d answers 503, max bridge pending %v (bound %d), broker backlog at the end %d of %d",
			n503, maxPending, outageMaxPend, lastLag, outageCommands)
		if n503 == 0 {
			t.Fatal("no request reached the server during the outage")
		}
		if maxPending > outageMaxPend {
			t.Errorf("bridge pending reached %v, want ≤ maxPending %d", maxPending, outageMaxPend)
		}
		if lastLag < outageCommands-outageAckPend-outageMaxPend {
			t.Errorf("broker backlog %d at the end of the outage, want ≥ %d: consumption did not pause",
				lastLag, outageCommands-outageAckPend-outageMaxPend)
		}
		if n := dlqCount(); n != 0 {
			t.Fatalf("%d messages dead-lettered during the outage", n)
		}

		rec.wait(t, 2*time.Minute, "every command delivered after the outage", func(s recState) bool { return s.unique >= outageCommands })
		t.Logf("recovered: all %d commands delivered %v after the outage ended", outageCommands, time.Since(outageEnd).Round(time.Millisecond))
		testkit.Eventually(t, 30*time.Second, "broker backlog drained", func() (bool, string) {
			l := lag()
			return l == 0, fmt.Sprintf("backlog %d", l)
		})
		if n := dlqCount(); n != 0 {
			t.Errorf("%d messages dead-lettered", n)
		}
		if got := metric(t, br.b.Registry(), "wpsbridge_messages_dead_lettered_total", nil); got != 0 {
			t.Errorf("wpsbridge_messages_dead_lettered_total = %v, want 0", got)
		}
	}

	t.Run("jetstream", func(t *testing.T) {
		t.Parallel()
		natsURL := startNATS(t)
		_, js := connectNATS(t, natsURL)
		n := newJSNames(t, js)
		src := "sources:\n" + yamlJSSource("js", natsURL, n, fmt.Sprintf("    fetchBatch: 32\n    maxAckPending: %d\n", outageAckPend)) +
			yamlJSDLQ(natsURL, n)
		run(t, src, func() {
			_, bodies := outageBodies()
			msgs := make([]*nats.Msg, len(bodies))
			for i, b := range bodies {
				msgs[i] = &nats.Msg{Subject: n.subject + ".outage", Data: b}
			}
			jsPublish(t, js, msgs...)
		}, func() int64 {
			pending, _ := consumerPending(t, js, n.stream, n.durable)
			return int64(pending)
		}, func() int { return len(jsDLQ(t, js, n.dlqStream)) })
	})

	t.Run("kafka", func(t *testing.T) {
		t.Parallel()
		brokers := startKafka(t, kafkaCmds, kafkaDLQ)
		cl := kafkaClient(t, brokers)
		const group = "e2e-outage"
		src := "sources:\n" + yamlKafkaSource("kafka", brokers, kafkaCmds, group) + yamlKafkaDLQ(brokers)
		run(t, src, func() {
			keys, bodies := outageBodies()
			recs := make([]*kgo.Record, len(bodies))
			for i, b := range bodies {
				recs[i] = &kgo.Record{Topic: kafkaCmds, Key: []byte(keys[i]), Value: b}
			}
			kafkaProduce(t, cl, recs...)
		}, func() int64 {
			return kafkaEndOffsets(t, cl, kafkaCmds) - kafkaCommitted(t, cl, group, kafkaCmds)
		}, func() int { return int(kafkaEndOffsets(t, cl, kafkaDLQ)) })
	})
}

// TestRetryAfter429: a 429 with Retry-After: 2 makes the bridge wait: no call
// reaches the server within 2 s of it, and nothing is dead-lettered.
func TestRetryAfter429(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	rec.setFault(func(n int, _ *http.Request) (int, http.Header) {
		if n == 1 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"2"}}
		}
		return 0, nil
	})
	natsURL := startNATS(t)
	_, js := connectNATS(t, natsURL)
	n := newJSNames(t, js)
	br := startBridge(t, yamlWPS("")+"sources:\n"+yamlJSSource("js", natsURL, n, "")+yamlJSDLQ(natsURL, n)+
		"retry:\n  initial: 50ms\n", envFor(rec, accessKey))
	br.waitReady(t)

	jsPublish(t, js, &nats.Msg{Subject: n.subject + ".first", Data: []byte(`{"actionName":"sendToGroup","group":"first","data":0}`)})
	rec.wait(t, 30*time.Second, "the 429", func(s recState) bool { return len(s.reqs) >= 1 })
	// Publish the rest once the router has taken the 429 in (it counts the retry).
	testkit.Eventually(t, 10*time.Second, "retry counted", func() (bool, string) {
		v := metric(t, br.b.Registry(), "wpsbridge_commands_retried_total", nil)
		return v >= 1, fmt.Sprint(v)
	})
	const more = 20
	msgs := make([]*nats.Msg, more)
	for i := range msgs {
		msgs[i] = &nats.Msg{Subject: n.subject + ".more", Data: fmt.Appendf(nil, `{"actionName":"sendToGroup","group":"h%02d","data":%d}`, i, i+1)}
	}
	jsPublish(t, js, msgs...)
	rec.wait(t, 30*time.Second, "every command delivered", func(s recState) bool { return s.unique >= more+1 })

	reqs, _ := rec.snapshot()
	if reqs[0].Status != http.StatusTooManyRequests {
		t.Fatalf("first request answered %d, want 429", reqs[0].Status)
	}
	t429 := reqs[0].At
	firstAfter := reqs[1].At.Sub(t429)
	t.Logf("first call after the 429 came %v later", firstAfter.Round(time.Millisecond))
	for _, r := range reqs[1:] {
		if gap := r.At.Sub(t429); gap < 1900*time.Millisecond {
			t.Errorf("call %s %s came %v after the 429 with Retry-After: 2", r.Method, r.Path, gap)
		}
	}
	if dl := jsDLQ(t, js, n.dlqStream); len(dl) != 0 {
		t.Errorf("%d messages dead-lettered", len(dl))
	}
}

// TestWrongAccessKey: with a key the service rejects (401) nothing is
// dead-lettered, Ready and GET /readyz say why, and once the service accepts
// the key every command is delivered.
func TestWrongAccessKey(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t) // accepts accessKey only
	natsURL := startNATS(t)
	_, js := connectNATS(t, natsURL)
	n := newJSNames(t, js)
	br := startBridge(t, yamlWPS("")+"sources:\n"+yamlJSSource("js", natsURL, n, "")+yamlJSDLQ(natsURL, n)+
		"retry:\n  systemicInterval: 500ms\n", envFor(rec, wrongKey))
	br.waitReady(t)

	const total = 50
	msgs := make([]*nats.Msg, total)
	for i := range msgs {
		msgs[i] = &nats.Msg{Subject: n.subject + ".key", Data: fmt.Appendf(nil, `{"actionName":"sendToUser","userId":"u%02d","data":%d}`, i%10, i)}
	}
	jsPublish(t, js, msgs...)

	rec.wait(t, 30*time.Second, "three rejected probes", func(s recState) bool { return s.rejected401 >= 3 })
	testkit.Eventually(t, 10*time.Second, "Ready reports the 401", func() (bool, string) {
		err := br.b.Ready()
		return err != nil && strings.Contains(err.Error(), "401"), fmt.Sprint(err)
	})
	status, body := get(t, br.opsURL+"/readyz")
	t.Logf("/readyz while the key is rejected: %d %s", status, strings.TrimSpace(body))
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "401") {
		t.Errorf("/readyz = %d %q, want 503 naming the 401", status, body)
	}
	if strings.Contains(body, wrongKey) || strings.Contains(body, accessKey) {
		t.Errorf("/readyz shows an access key: %q", body)
	}
	if dl := jsDLQ(t, js, n.dlqStream); len(dl) != 0 {
		t.Fatalf("%d messages dead-lettered while the key was rejected", len(dl))
	}
	if s, _ := rec.snapshot(); accepted(s) != 0 {
		t.Fatalf("%d calls accepted with the wrong key", accepted(s))
	}

	fixed := time.Now()
	rec.setKey(wrongKey) // the key was rotated on the service side: now it is right
	rec.wait(t, 60*time.Second, "every command delivered after the fix", func(s recState) bool { return s.unique >= total })
	t.Logf("delivered all %d commands %v after the key was accepted", total, time.Since(fixed).Round(time.Millisecond))
	br.waitReady(t)
	if status, body := get(t, br.opsURL+"/readyz"); status != http.StatusOK {
		t.Errorf("/readyz after the fix = %d %q, want 200", status, body)
	}
	if dl := jsDLQ(t, js, n.dlqStream); len(dl) != 0 {
		t.Errorf("%d messages dead-lettered", len(dl))
	}
}

func accepted(reqs []request) int {
	n := 0
	for _, r := range reqs {
		if r.Status < 300 {
			n++
		}
	}
	return n
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}
