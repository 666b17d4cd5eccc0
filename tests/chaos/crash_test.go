package chaos

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wps-bridge/bridge/tests/testkit"
)

const (
	cmdStream  = "CHAOS"
	cmdSubject = "chaos.cmds"
	dlqStream  = "CHAOS_DLQ"
	dlqSubject = "chaosdlq.wps"
	cmdTopic   = "chaos-cmds"
	groups     = 64
)

// envInt reads a positive integer from the environment, or returns def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// seeded returns a random source seeded from CHAOS_SEED or the clock, and logs
// the seed so that a failing run can be replayed.
func seeded(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", v, err)
		}
	}
	t.Logf("random seed %d (CHAOS_SEED=%d replays it)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// figure logs one measured figure for docs/reliability.md.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE "+format, args...)
}

// loadBoth publishes the JetStream messages and produces the Kafka records
// concurrently and waits for both.
func loadBoth(t *testing.T, ctx context.Context, pub func(context.Context) error, prod func(context.Context) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, f := range []func(context.Context) error{pub, prod} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// crashRig is the shared setup of the crash and scale-out tests: the sink, a
// JetStream stream and a Kafka topic preloaded with n commands each.
type crashRig struct {
	sink    *sink
	nats    *natsServer
	kafka   *kfake.Cluster
	admin   *kgo.Client
	jsIDs   []string
	kIDs    []string
	yaml    func(opsAddr string) string
	env     map[string]string
	loadDur time.Duration
}

func newCrashRig(t *testing.T, n int) *crashRig {
	t.Helper()
	r := &crashRig{sink: newSink(t), nats: startNATS(t, nil)}
	r.kafka = startKafka(t, kfake.SeedTopics(8, cmdTopic))
	brokers := r.kafka.ListenAddrs()
	r.admin = kafkaClient(t, brokers, kgo.DefaultProduceTopic(cmdTopic))
	_, js := connectJS(t, r.nats.url())
	createStream(t, js, cmdStream, "chaos.>")

	jsPayloads, jsIDs := payloads("js", n, groups)
	kPayloads, kIDs := payloads("kf", n, groups)
	r.jsIDs, r.kIDs = jsIDs, kIDs
	msgs := make([]*nats.Msg, n)
	for i, p := range jsPayloads {
		msgs[i] = envelopeMsg(cmdSubject, p)
	}
	recs := make([]*kgo.Record, n)
	for i, p := range kPayloads {
		recs[i] = kafkaRecord(cmdTopic, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	loadBoth(t, ctx,
		func(ctx context.Context) error { return jsPublish(ctx, js, msgs) },
		func(ctx context.Context) error { return kafkaProduce(ctx, r.admin, recs) })
	r.loadDur = time.Since(start)
	t.Logf("loaded %d JetStream messages and %d Kafka records in %v", n, n, r.loadDur.Round(time.Millisecond))

	r.env = map[string]string{envConn: r.sink.connString}
	r.yaml = func(opsAddr string) string {
		return bridgeYAML(
			jsSourceYAML("js", r.nats.url(), cmdStream, cmdSubject, "bridge", "")+
				kafkaSourceYAML("kafka", brokers, cmdTopic, "bridge", ""),
			jsDLQYAML(dlqStream, dlqSubject), opsAddr, "")
	}
	return r
}

// checkNothingLost fails the test if any id never reached Web PubSub or the
// dead letter holds anything, and returns the duplicates per broker.
func (r *crashRig) checkNothingLost(t *testing.T) (jsDup, kDup int) {
	t.Helper()
	if n, sample := r.sink.missing(r.jsIDs); n > 0 {
		t.Errorf("JetStream: %d commands never reached Web PubSub, e.g. %v", n, sample)
	}
	if n, sample := r.sink.missing(r.kIDs); n > 0 {
		t.Errorf("Kafka: %d commands never reached Web PubSub, e.g. %v", n, sample)
	}
	_, js := connectJS(t, r.nats.url())
	if dl := streamMsgs(t, js, dlqStream); len(dl) > 0 {
		t.Errorf("%d valid commands were dead-lettered, first: %s %q", len(dl), dl[0].Header.Get("wps-bridge-error"), dl[0].Data)
	}
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	for _, id := range r.jsIDs {
		jsDup += max(r.sink.count[id]-1, 0)
	}
	for _, id := range r.kIDs {
		kDup += max(r.sink.count[id]-1, 0)
	}
	return jsDup, kDup
}

// TestCrashRecovery drains n commands from JetStream and n from Kafka with one
// bridge process that is SIGKILLed at five random moments and restarted each
// time: every command id reaches Web PubSub at least once, none is
// dead-lettered, and the duplicates are counted.
func TestCrashRecovery(t *testing.T) {
	n := envInt(t, "CHAOS_MESSAGES", 100_000)
	if testing.Short() {
		n = min(n, 5_000)
	}
	const kills = 5
	rnd := seeded(t)
	r := newCrashRig(t, n)
	total := 2 * n

	// Kill points: distinct-delivery counts between 5 % and 85 % of the total,
	// at least 5 % apart.
	points := make([]int, 0, kills)
	for len(points) < kills {
		p := total/20 + rnd.IntN(total*80/100)
		if !slices.ContainsFunc(points, func(q int) bool { return abs(p-q) < total/20 }) {
			points = append(points, p)
		}
	}
	slices.Sort(points)

	start := time.Now()
	for i := 0; i <= kills; i++ {
		b := startBridge(t, fmt.Sprintf("bridge-%d", i), r.yaml(freeAddr(t)), r.env)
		if i == kills {
			// The last run drains the rest.
			if !r.sink.awaitDistinct(total, 6*time.Minute) {
				t.Fatalf("after %d kills: %d of %d distinct commands reached Web PubSub\n%s", kills, r.sink.distinct(), total, b.logTail())
			}
			if err := b.stop(30 * time.Second); err != nil {
				t.Errorf("final bridge stop: %v", err)
			}
			break
		}
		// Kill at the point, with a random extra delay so that kills land at any
		// stage (fetching, in flight, acking, committing).
		if !r.sink.awaitDistinct(points[i], 5*time.Minute) {
			t.Fatalf("kill %d: %d of %d distinct commands before the kill point %d\n%s", i+1, r.sink.distinct(), total, points[i], b.logTail())
		}
		time.Sleep(time.Duration(rnd.IntN(200)) * time.Millisecond) // a random moment, on purpose
		if b.exited() {
			t.Fatalf("bridge exited on its own: %v\n%s", b.waitErr, b.logTail())
		}
		b.kill()
		evicted := testkit.KafkaEvictMembers(t, r.admin, "bridge")
		t.Logf("kill %d at %d/%d distinct (%v), evicted %d Kafka member(s)", i+1, r.sink.distinct(), total, time.Since(start).Round(time.Millisecond), evicted)
	}
	elapsed := time.Since(start)
	jsDup, kDup := r.checkNothingLost(t)
	figure(t, "crash: kills=%d jetstream=%d kafka=%d lost=0 duplicates=%d (jetstream %d, kafka %d) drain=%v rate=%.0f/s",
		kills, n, n, jsDup+kDup, jsDup, kDup, elapsed.Round(time.Second), float64(total)/elapsed.Seconds())
}

// TestScaleOut runs two bridge processes on the same JetStream durable and
// the same Kafka group: both take work; one is SIGKILLed halfway and the
// other finishes the lot.
func TestScaleOut(t *testing.T) {
	n := envInt(t, "CHAOS_SCALE_MESSAGES", 15_000)
	r := newCrashRig(t, n)
	total := 2 * n
	a := startBridge(t, "bridge-a", r.yaml(freeAddr(t)), r.env)
	b := startBridge(t, "bridge-b", r.yaml(freeAddr(t)), r.env)

	// Both replicas must have acked work from both sources before the kill.
	var aAcked, bAcked map[string]float64
	testkit.Eventually(t, 3*time.Minute, "both replicas acking from both sources", func() (bool, string) {
		if a.exited() || b.exited() {
			t.Fatalf("a replica exited: a=%v b=%v", a.waitErr, b.waitErr)
		}
		aAcked, bAcked = a.acked(), b.acked()
		ok := aAcked["js"] > 0 && aAcked["kafka"] > 0 && bAcked["js"] > 0 && bAcked["kafka"] > 0
		return ok, fmt.Sprintf("a=%v b=%v distinct=%d", aAcked, bAcked, r.sink.distinct())
	})
	if d := r.sink.distinct(); d >= total {
		t.Fatalf("all %d delivered before the kill: raise CHAOS_SCALE_MESSAGES", d)
	}
	t.Logf("before the kill: a acked %v, b acked %v, %d/%d distinct", aAcked, bAcked, r.sink.distinct(), total)
	a.kill()
	testkit.KafkaEvictMembers(t, r.admin, "bridge")
	killedAt := time.Now()
	if !r.sink.awaitDistinct(total, 4*time.Minute) {
		t.Fatalf("the survivor delivered %d of %d\n%s", r.sink.distinct(), total, b.logTail())
	}
	takeover := time.Since(killedAt)
	final := b.acked()
	if final["js"] <= bAcked["js"] || final["kafka"] <= bAcked["kafka"] {
		t.Errorf("the survivor did not take over both sources: before %v, after %v", bAcked, final)
	}
	if err := b.stop(30 * time.Second); err != nil {
		t.Errorf("survivor stop: %v", err)
	}
	jsDup, kDup := r.checkNothingLost(t)
	figure(t, "scale-out: replicas=2 jetstream=%d kafka=%d killed=1 lost=0 duplicates=%d (jetstream %d, kafka %d) survivor-finished-in=%v",
		n, n, jsDup+kDup, jsDup, kDup, takeover.Round(time.Millisecond))
}

// acked returns wpsbridge_messages_acked_total by source from /metrics.
func (p *bridgeProc) acked() map[string]float64 {
	return p.metric("wpsbridge_messages_acked_total", "source")
}

// metric sums the samples of name from /metrics by the value of label.
func (p *bridgeProc) metric(name, label string) map[string]float64 {
	out := map[string]float64{}
	resp, err := opsClient.Get(p.opsURL + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		key := ""
		if _, rest, ok := strings.Cut(line, label+`="`); ok {
			key, _, _ = strings.Cut(rest, `"`)
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err == nil {
			out[key] += v
		}
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
