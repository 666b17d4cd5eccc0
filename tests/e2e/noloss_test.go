package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wps-bridge/bridge/internal/app"
	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/tests/testkit"
)

const (
	lossCommands = 3000
	lossTargets  = 100
	lossRestarts = 3
	// lossMaxPending is router.maxPending of the no-loss bridges: the bound
	// on messages read and not finished, hence on what a stop can redo.
	lossMaxPending = 256
)

// lossRouter sizes the router of the no-loss bridges.
var lossRouter = fmt.Sprintf(`router:
  maxPending: %d
`, lossMaxPending)

// lossBodies are envelopes whose payloads are all distinct, so the recorder
// counts distinct deliveries and duplicates.
func lossBodies() (keys []string, bodies [][]byte) {
	for i := range lossCommands {
		g := fmt.Sprintf("g%02d", i%lossTargets)
		keys = append(keys, g)
		bodies = append(bodies, fmt.Appendf(nil, `{"actionName":"sendToGroup","group":%q,"data":{"id":%d}}`, g, i))
	}
	return keys, bodies
}

// lossFeed is one broker under the no-loss suites.
type lossFeed struct {
	sourceYAML string        // sources: … and deadLetter: … sections
	publish    func()        // publishes lossBodies
	afterKill  func()        // called after a SIGKILL, before the restart
	checkEmpty func() string // "" when nothing was dead-lettered
}

func jsLossFeed(t *testing.T, natsURL, consumerExtra string) lossFeed {
	_, js := connectNATS(t, natsURL)
	n := newJSNames(t, js)
	return lossFeed{
		sourceYAML: "sources:\n" + yamlJSSource("js", natsURL, n, consumerExtra) + yamlJSDLQ(natsURL, n),
		publish: func() {
			_, bodies := lossBodies()
			msgs := make([]*nats.Msg, len(bodies))
			for i, b := range bodies {
				msgs[i] = &nats.Msg{Subject: n.subject + ".loss", Data: b}
			}
			jsPublish(t, js, msgs...)
		},
		afterKill: func() {},
		checkEmpty: func() string {
			if dl := jsDLQ(t, js, n.dlqStream); len(dl) > 0 {
				return fmt.Sprintf("%d dead-lettered: %q", len(dl), dl[0].Headers["wps-bridge-error"])
			}
			return ""
		},
	}
}

func kafkaLossFeed(t *testing.T) lossFeed {
	brokers := startKafka(t, kafkaCmds, kafkaDLQ)
	cl := kafkaClient(t, brokers)
	const group = "e2e-loss"
	return lossFeed{
		sourceYAML: "sources:\n" + yamlKafkaSource("kafka", brokers, kafkaCmds, group) + yamlKafkaDLQ(brokers),
		publish: func() {
			keys, bodies := lossBodies()
			recs := make([]*kgo.Record, len(bodies))
			for i, b := range bodies {
				recs[i] = &kgo.Record{Topic: kafkaCmds, Key: []byte(keys[i]), Value: b}
			}
			kafkaProduce(t, cl, recs...)
		},
		afterKill: func() {
			// The dead member never leaves: evict it as its session expiry
			// would, so the restart does not wait 30 s per kill.
			if n := testkit.KafkaEvictMembers(t, cl, group); n > 0 {
				t.Logf("evicted %d dead group member(s)", n)
			}
		},
		checkEmpty: func() string {
			if n := kafkaEndOffsets(t, cl, kafkaDLQ); n > 0 {
				return fmt.Sprintf("%d records dead-lettered", n)
			}
			return ""
		},
	}
}

// restartThresholds are the distinct-delivery counts at which the bridge is
// stopped: 20 %, 40 %, 60 % of the commands.
func restartThresholds() []int {
	out := make([]int, lossRestarts)
	for i := range out {
		out[i] = lossCommands * (i + 1) / 5
	}
	return out
}

// TestNoLossCancelRestart cancels the bridge mid-stream three times and
// restarts it: every command arrives at least once, and the duplicates stay
// within the in-flight bound (router.maxPending) per restart.
func TestNoLossCancelRestart(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, feed lossFeed) {
		rec := newRecorder(t)
		rec.setLatency(2 * time.Millisecond) // keep calls in flight when the stop comes
		yaml := yamlWPS("") + feed.sourceYAML + lossRouter
		env := envFor(rec, accessKey)

		br := startBridge(t, yaml, env)
		br.waitReady(t)
		feed.publish()
		start := time.Now()
		for i, at := range restartThresholds() {
			rec.wait(t, 2*time.Minute, fmt.Sprintf("%d distinct deliveries", at), func(s recState) bool { return s.unique >= at })
			stopAt := time.Now()
			if err := br.stop(); err != nil {
				t.Fatalf("stop %d: Run returned %v", i+1, err)
			}
			_, bodies := rec.snapshot()
			t.Logf("stop %d at %d distinct deliveries; Run returned after %v", i+1, len(bodies), time.Since(stopAt).Round(time.Millisecond))
			br = startBridge(t, yaml, env)
		}
		rec.wait(t, 2*time.Minute, "every command delivered", func(s recState) bool { return s.unique >= lossCommands })
		if err := br.stop(); err != nil {
			t.Fatalf("final stop: %v", err)
		}
		reqs, bodies := rec.snapshot()
		delivered := accepted(reqs)
		dups := delivered - len(bodies)
		bound := lossMaxPending * lossRestarts
		t.Logf("%d commands, %d restarts: %d deliveries, %d duplicates (bound %d), %v",
			lossCommands, lossRestarts, delivered, dups, bound, time.Since(start).Round(time.Millisecond))
		if len(bodies) != lossCommands {
			t.Errorf("%d distinct commands delivered, want %d", len(bodies), lossCommands)
		}
		if dups > bound {
			t.Errorf("%d duplicates, want ≤ %d (maxPending %d × %d restarts)", dups, bound, lossMaxPending, lossRestarts)
		}
		if msg := feed.checkEmpty(); msg != "" {
			t.Errorf("dead letter not empty: %s", msg)
		}
	}
	t.Run("jetstream", func(t *testing.T) {
		t.Parallel()
		forEachNATS(t, func(t *testing.T, natsURL string) { run(t, jsLossFeed(t, natsURL, "")) })
	})
	t.Run("kafka", func(t *testing.T) {
		t.Parallel()
		run(t, kafkaLossFeed(t))
	})
}

// TestNoLossSIGKILL runs the bridge as a child process (this test binary
// re-executed as TestHelperBridgeProcess with a bridge.yaml), SIGKILLs it
// mid-stream three times, restarts it, and checks that every command arrived.
func TestNoLossSIGKILL(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, feed lossFeed) {
		rec := newRecorder(t)
		rec.setLatency(2 * time.Millisecond)
		cfgPath := filepath.Join(t.TempDir(), "bridge.yaml")
		if err := os.WriteFile(cfgPath, []byte(yamlWPS("")+feed.sourceYAML+lossRouter), 0o600); err != nil {
			t.Fatal(err)
		}
		env := append(os.Environ(), envHelperConfig+"="+cfgPath, envConn+"="+rec.connectionString(accessKey))

		child := startChild(t, env)
		feed.publish()
		start := time.Now()
		for i, at := range restartThresholds() {
			rec.wait(t, 2*time.Minute, fmt.Sprintf("%d distinct deliveries", at), func(s recState) bool { return s.unique >= at })
			child.kill(t)
			_, bodies := rec.snapshot()
			t.Logf("SIGKILL %d at %d distinct deliveries", i+1, len(bodies))
			feed.afterKill()
			child = startChild(t, env)
		}
		rec.wait(t, 2*time.Minute, "every command delivered", func(s recState) bool { return s.unique >= lossCommands })
		child.kill(t)
		reqs, bodies := rec.snapshot()
		delivered := accepted(reqs)
		t.Logf("%d commands, %d SIGKILLs: %d deliveries, %d duplicates, %v",
			lossCommands, lossRestarts, delivered, delivered-len(bodies), time.Since(start).Round(time.Millisecond))
		if len(bodies) != lossCommands {
			t.Errorf("%d distinct commands delivered, want %d", len(bodies), lossCommands)
		}
		if msg := feed.checkEmpty(); msg != "" {
			t.Errorf("dead letter not empty: %s", msg)
		}
	}
	t.Run("jetstream", func(t *testing.T) {
		t.Parallel()
		// A short AckWait: the killed bridge's unacked messages come back
		// after 2 s instead of 30 s.
		run(t, jsLossFeed(t, startNATS(t), "    ackWait: 2s\n"))
	})
	t.Run("kafka", func(t *testing.T) {
		t.Parallel()
		run(t, kafkaLossFeed(t))
	})
}

// childBridge is a bridge process.
type childBridge struct {
	cmd  *exec.Cmd
	done chan error
}

// lockedBuilder collects a child's output from two pipes.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startChild(t *testing.T, env []string) *childBridge {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBridgeProcess$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = env
	out := &lockedBuilder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bridge process: %v", err)
	}
	c := &childBridge{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("bridge process output:\n%s", out.String())
		}
	})
	return c
}

// kill SIGKILLs the child and waits for it to die.
func (c *childBridge) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("SIGKILL: %v", err)
	}
	select {
	case err := <-c.done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("bridge process ended with %v, want killed", err)
		}
		c.done <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("bridge process still alive 30s after SIGKILL")
	}
}

// TestHelperBridgeProcess is the bridge of the SIGKILL suites: with
// E2E_BRIDGE_CONFIG set it loads that bridge.yaml (config.Load, environment
// expansion) and runs app.New + Bridge.Run until killed or SIGTERMed.
func TestHelperBridgeProcess(t *testing.T) {
	path := os.Getenv(envHelperConfig)
	if path == "" {
		t.Skip("helper process of TestNoLossSIGKILL: runs only when re-executed with " + envHelperConfig)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute) // a stray helper process stops by itself
	defer cancel()
	b, err := app.New(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if err := b.Run(ctx, nil); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
