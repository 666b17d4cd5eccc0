package chaos

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wps-bridge/bridge/internal/emulator"
	"github.com/wps-bridge/bridge/tests/testkit"
)

// soakPublisher sends envelopes at a fixed rate to JetStream or Kafka, one in
// every badEvery of them invalid (0: none), and remembers what it sent.
type soakPublisher struct {
	name     string
	rate     int
	badEvery int
	send     func(ctx context.Context, valid []payload, invalid []string) error
	quit     chan struct{} // closed by halt: stop between two batches
	once     sync.Once
	stop     context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	valid    []string
	bad      []string
	err      error
	maxLag   time.Duration
}

func startSoakPublisher(t *testing.T, name string, rate, badEvery int, send func(context.Context, []payload, []string) error) *soakPublisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	p := &soakPublisher{name: name, rate: rate, badEvery: badEvery, send: send, quit: make(chan struct{}), stop: cancel, done: make(chan struct{})}
	go p.run(ctx) // owner: p; ends on halt or the test's cleanup
	t.Cleanup(func() { p.halt() })
	return p
}

func (p *soakPublisher) run(ctx context.Context) {
	defer close(p.done)
	const tick = 50 * time.Millisecond
	perTick := max(p.rate*int(tick)/int(time.Second), 1)
	start := time.Now()
	for i, n := 0, 0; ; n++ {
		// Pace by the schedule, not by ticks: a publisher held up by a broker
		// restart catches up afterwards instead of silently sending less.
		due := start.Add(time.Duration(n) * tick)
		if lag := time.Since(due); lag > p.maxLag {
			p.maxLag = lag
		}
		select {
		case <-p.quit:
			return
		case <-ctx.Done():
			return
		case <-time.After(time.Until(due)):
		}
		var valid []payload
		var bad []string
		for range perTick {
			if p.badEvery > 0 && i%p.badEvery == p.badEvery-1 {
				bad = append(bad, fmt.Sprintf("%s-bad-%d", p.name, i))
			} else {
				valid = append(valid, payload{ID: fmt.Sprintf("%s-%d", p.name, i), G: i % groups, Seq: i / groups})
			}
			i++
		}
		if err := p.send(ctx, valid, bad); err != nil {
			if ctx.Err() == nil {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
			}
			return
		}
		p.mu.Lock()
		for _, v := range valid {
			p.valid = append(p.valid, v.ID)
		}
		p.bad = append(p.bad, bad...)
		p.mu.Unlock()
	}
}

// halt stops publishing after the batch in progress (so that everything sent
// is recorded) and returns what was sent.
func (p *soakPublisher) halt() (valid, bad []string, err error) {
	p.once.Do(func() { close(p.quit) })
	<-p.done
	p.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.valid, p.bad, p.err
}

// TestSoak runs JetStream and Kafka traffic (half the rate each; 1 % of the
// JetStream commands invalid) through one bridge process for CHAOS_SOAK_DURATION (default 3m) at
// CHAOS_SOAK_RATE msg/s (default 2000) while random faults hit it every few
// seconds: Web PubSub 503 windows, 429 storms, slow answers, connection
// resets, a nats-server restart and a SIGKILL of the bridge. It prints one
// summary line; nothing may be lost.
func TestSoak(t *testing.T) {
	rate := envInt(t, "CHAOS_SOAK_RATE", 2000)
	dur := 3 * time.Minute
	if v := os.Getenv("CHAOS_SOAK_DURATION"); v != "" {
		var err error
		if dur, err = time.ParseDuration(v); err != nil || dur <= 0 {
			t.Fatalf("CHAOS_SOAK_DURATION=%q: want a positive duration", v)
		}
	}
	if testing.Short() {
		dur, rate = min(dur, 20*time.Second), min(rate, 500)
	}
	rnd := seeded(t)
	s := newSink(t)
	ns := startNATS(t, nil)
	_, js := connectJS(t, ns.url())
	createStream(t, js, cmdStream, "chaos.>")
	kc := startKafka(t, kfake.SeedTopics(8, cmdTopic))
	brokers := kc.ListenAddrs()
	admin := kafkaClient(t, brokers)
	yaml := func() string {
		return bridgeYAML(jsSourceYAML("js", ns.url(), cmdStream, cmdSubject, "bridge", "")+
			kafkaSourceYAML("kafka", brokers, cmdTopic, "bridge", ""),
			jsDLQYAML(dlqStream, dlqSubject), freeAddr(t), "")
	}
	env := map[string]string{envConn: s.connString}
	b := startBridge(t, "bridge-0", yaml(), env)
	b.waitReady(t, 30*time.Second)

	// Invalid commands go on JetStream only, as when the soak was measured;
	// a naked Kafka record is redelivered after kafkasource.NakDelay (see
	// TestKafkaRequestFaults), which the soak's figures do not include yet.
	jsPub := startSoakPublisher(t, "js", rate/2, 100, func(ctx context.Context, valid []payload, bad []string) error {
		msgs := make([]*nats.Msg, 0, len(valid)+len(bad))
		for _, p := range valid {
			msgs = append(msgs, envelopeMsg(cmdSubject, p))
		}
		for i, id := range bad {
			m := nats.NewMsg(cmdSubject)
			m.Header.Set("Chaos-Id", id)
			m.Data = invalidEnvelope(i)
			msgs = append(msgs, m)
		}
		return jsPublish(ctx, js, msgs)
	})
	kPub := startSoakPublisher(t, "kf", rate-rate/2, 0, func(ctx context.Context, valid []payload, bad []string) error {
		recs := make([]*kgo.Record, 0, len(valid)+len(bad))
		for _, p := range valid {
			recs = append(recs, kafkaRecord(cmdTopic, p))
		}
		for i, id := range bad {
			recs = append(recs, &kgo.Record{Topic: cmdTopic, Value: invalidEnvelope(i),
				Headers: []kgo.RecordHeader{{Key: "Chaos-Id", Value: []byte(id)}}})
		}
		return kafkaProduce(ctx, admin, recs)
	})

	type fault struct {
		name    string
		on, off func()
	}
	clearWPS := func() { s.setFaults(emulator.Faults{}) }
	kills := 0
	faults := []fault{
		{name: "503 window", on: func() { s.setFaults(emulator.Faults{Rate503: 1}) }, off: clearWPS},
		{name: "30% 503", on: func() { s.setFaults(emulator.Faults{Rate503: 0.3}) }, off: clearWPS},
		{name: "429 storm, Retry-After 1s", on: func() { s.setFaults(emulator.Faults{Rate429: 1, RetryAfter: time.Second}) }, off: clearWPS},
		{name: "answers past the timeout", on: func() { s.setFaults(emulator.Faults{Latency: 3 * time.Second}) }, off: clearWPS},
		{name: "50% connection resets", on: func() { s.setResetRate(0.5) }, off: func() { s.setResetRate(0) }},
		{name: "nats-server restart", on: func() { ns.stop() }, off: func() { ns.start() }},
		{name: "bridge SIGKILL", on: func() {
			b.kill()
			testkit.KafkaEvictMembers(t, admin, "bridge")
		}, off: func() {
			kills++
			b = startBridge(t, fmt.Sprintf("bridge-%d", kills), yaml(), env)
		}},
	}
	start := time.Now()
	var injected []string
	for time.Since(start) < dur-20*time.Second { // a fault-free tail lets the backlog shrink
		pause := time.Duration(3000+rnd.IntN(5000)) * time.Millisecond
		f := faults[rnd.IntN(len(faults))]
		hold := time.Duration(1000+rnd.IntN(3000)) * time.Millisecond
		select {
		case <-time.After(pause): // random spacing between faults, on purpose
		case <-t.Context().Done():
			t.Fatal("test cancelled")
		}
		if b.exited() {
			t.Fatalf("bridge exited on its own: %v\n%s", b.waitErr, b.logTail())
		}
		f.on()
		injected = append(injected, fmt.Sprintf("%s@%v/%v", f.name, time.Since(start).Round(time.Second), hold.Round(100*time.Millisecond)))
		select {
		case <-time.After(hold): // the fault lasts this long, on purpose
		case <-t.Context().Done():
			t.Fatal("test cancelled")
		}
		f.off()
	}
	if remaining := dur - time.Since(start); remaining > 0 {
		select {
		case <-time.After(remaining): // the fault-free tail of the soak window
		case <-t.Context().Done():
			t.Fatal("test cancelled")
		}
	}
	jsValid, jsBad, jsErr := jsPub.halt()
	kValid, kBad, kErr := kPub.halt()
	if jsErr != nil || kErr != nil {
		t.Fatalf("publishers: jetstream %v, kafka %v", jsErr, kErr)
	}
	elapsed := time.Since(start)
	valid := append(jsValid, kValid...)
	bad := append(jsBad, kBad...)
	t.Logf("faults injected (%d): %v", len(injected), injected)
	t.Logf("publishers: jetstream %d (max lag %v), kafka %d (max lag %v) in %v", len(jsValid)+len(jsBad), jsPub.maxLag.Round(time.Millisecond),
		len(kValid)+len(kBad), kPub.maxLag.Round(time.Millisecond), elapsed.Round(time.Second))

	drained := s.awaitAll(valid, 3*time.Minute)
	lostValid, sample := s.missing(valid)
	parked := map[string]bool{}
	var dl []*jetstream.RawStreamMsg
	testkit.Eventually(t, time.Minute, "invalid commands dead-lettered", func() (bool, string) {
		dl = streamMsgs(t, js, dlqStream)
		clear(parked)
		for _, m := range dl {
			parked[m.Header.Get("Chaos-Id")] = true
		}
		return len(parked) >= len(bad), fmt.Sprintf("%d of %d", len(parked), len(bad))
	})
	lostBad := 0
	for _, id := range bad {
		if !parked[id] {
			lostBad++
		}
	}
	wrongly := 0
	for _, m := range dl {
		if m.Header.Get("Chaos-Id") == "" {
			wrongly++ // a valid command (they carry no Chaos-Id header) was dead-lettered
		}
	}
	if err := b.stop(30 * time.Second); err != nil {
		t.Errorf("bridge stop: %v", err)
	}
	lost := lostValid + lostBad
	summary := fmt.Sprintf("soak: sent=%d delivered=%d duplicates=%d dead-lettered=%d lost=%d",
		len(valid)+len(bad), len(valid)-lostValid, s.duplicates(), len(parked), lost)
	fmt.Println(summary)
	t.Log(summary)
	figure(t, "soak: %v at %d msg/s target (%.0f msg/s sent), %d faults (%d bridge kills), %s, valid-dead-lettered=%d",
		elapsed.Round(time.Second), rate, float64(len(valid)+len(bad))/elapsed.Seconds(), len(injected), kills, summary, wrongly)
	if !drained || lost > 0 {
		t.Errorf("lost %d valid commands (e.g. %v) and %d invalid ones never dead-lettered", lostValid, sample, lostBad)
	}
	if wrongly > 0 {
		t.Errorf("%d valid commands were dead-lettered", wrongly)
	}
}
