package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wps-bridge/bridge/tests/testkit"
)

// ---------------------------------------------------------------------------
// NATS

// natsServer is an embedded nats-server with JetStream that can be stopped
// and started again (stop, then start) on the same port and store.
type natsServer struct {
	t    *testing.T
	opts server.Options
	mu   sync.Mutex
	srv  *server.Server
}

// startNATS starts a server on a random loopback port; tweak may change the
// options (auth, TLS, payload limit) before the first start.
func startNATS(t *testing.T, tweak func(*server.Options)) *natsServer {
	t.Helper()
	n := &natsServer{t: t, opts: server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		MaxPayload: 8 << 20,
	}}
	if tweak != nil {
		tweak(&n.opts)
	}
	n.start()
	// Pin the chosen port so that a restart listens where clients reconnect.
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	opts := n.opts
	s, err := server.NewServer(&opts)
	if err != nil {
		n.t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		s.Shutdown()
		n.t.Fatal("nats-server not ready within 20s")
	}
	n.mu.Lock()
	n.srv = s
	n.mu.Unlock()
}

func (n *natsServer) stop() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

func (n *natsServer) url() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port)
}

// connectJS connects a test client (reconnecting forever, buffering publishes
// while the server is down) and returns its JetStream context.
func connectJS(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.Name("chaos-test"), nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// createStream creates the command stream (file storage, so it survives a
// server restart).
func createStream(t *testing.T, js jetstream.JetStream, name string, subjects ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
}

// jsPublish publishes msgs with a window of async publishes and waits for
// every PubAck, retrying a publish whose ack failed (a server restart).
func jsPublish(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) error {
	const window = 1024
	for start := 0; start < len(msgs); start += window {
		batch := msgs[start:min(start+window, len(msgs))]
		for attempt := 0; len(batch) > 0; attempt++ {
			if attempt > 50 {
				return fmt.Errorf("publish: %d messages not acknowledged after %d attempts", len(batch), attempt)
			}
			futures := make([]jetstream.PubAckFuture, 0, len(batch))
			var failed []*nats.Msg
			for _, m := range batch {
				f, err := js.PublishMsgAsync(m, jetstream.WithMsgID(m.Header.Get("Chaos-Id")))
				if err != nil {
					failed = append(failed, m)
					continue
				}
				futures = append(futures, f)
			}
			for _, f := range futures {
				select {
				case <-f.Ok():
				case <-f.Err():
					failed = append(failed, f.Msg())
				case <-ctx.Done():
					return fmt.Errorf("publish: %w", ctx.Err())
				}
			}
			batch = failed
			if len(failed) > 0 {
				select {
				case <-time.After(100 * time.Millisecond): // the server is restarting: no signal to wait on
				case <-ctx.Done():
					return fmt.Errorf("publish: %w", ctx.Err())
				}
			}
		}
	}
	return nil
}

// envelopeMsg is a JetStream message carrying one sendToGroup envelope.
func envelopeMsg(subject string, p payload) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set("Chaos-Id", p.ID)
	m.Data = envelope(p)
	return m
}

// envelope is a sendToGroup command for group g<p.G> carrying p as data.
func envelope(p payload) []byte {
	return fmt.Appendf(nil, `{"actionName":"sendToGroup","group":"g%d","id":%q,"data":{"id":%q,"g":%d,"seq":%d}}`, p.G, p.ID, p.ID, p.G, p.Seq)
}

// payloads makes n payloads with ids prefix-0…, spread over groups groups.
func payloads(prefix string, n, groups int) ([]payload, []string) {
	ps := make([]payload, n)
	ids := make([]string, n)
	for i := range ps {
		ps[i] = payload{ID: fmt.Sprintf("%s-%d", prefix, i), G: i % groups, Seq: i / groups}
		ids[i] = ps[i].ID
	}
	return ps, ids
}

// consumerState returns the durable's pending and ack-pending counts.
func consumerState(ctx context.Context, js jetstream.JetStream, stream, durable string) (uint64, int, error) {
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return 0, 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	return info.NumPending, info.NumAckPending, nil
}

// streamMsgs returns the messages of stream (the dead letter), oldest first.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream %s message %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// ---------------------------------------------------------------------------
// Kafka

// startKafka starts a one-broker kfake cluster with 8-partition topics.
func startKafka(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func kafkaClient(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(4 << 20)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// kafkaRecord is one envelope keyed by its group, so a group stays in one
// partition and in order.
func kafkaRecord(topic string, p payload) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "g%d", p.G), Value: envelope(p)}
}

// kafkaProduce produces recs in chunks and waits for every ack.
func kafkaProduce(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	const chunk = 5000
	for start := 0; start < len(recs); start += chunk {
		if err := cl.ProduceSync(ctx, recs[start:min(start+chunk, len(recs))]...).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	return nil
}

// kafkaReadAll reads topic from the start until want records arrived or the
// timeout passed, and returns what it read.
func kafkaReadAll(t *testing.T, brokers []string, topic string, want int, timeout time.Duration, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := kafkaClient(t, brokers, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// ---------------------------------------------------------------------------
// Bridge subprocesses

// bridgeProc is one `bridge run` subprocess; its stderr goes to a scanned log.
type bridgeProc struct {
	name    string
	cmd     *exec.Cmd
	opsURL  string
	logPath string
	done    chan struct{} // closed when the process exited and was reaped
	waitErr error
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// bridgeYAML is a bridge.yaml for the test hub with the given sources and
// dead letter (YAML fragments) and an operations endpoint on opsAddr.
func bridgeYAML(sources, deadLetter, opsAddr, extra string) string {
	return fmt.Sprintf(`webpubsub:
  connectionString: ${%s}
  hub: %s
  allowInsecureHTTP: true
  timeout: 2s
sources:
%s
%s
http:
  listen: %s
log:
  level: info
  format: json
%s`, envConn, hub, sources, deadLetter, opsAddr, extra)
}

// jsSourceYAML is a JetStream source on stream, created consumer durable.
func jsSourceYAML(name, url, stream, subject, durable, extra string) string {
	return fmt.Sprintf(`  - name: %s
    type: jetstream
    url: %s
    stream: %s
    subjects: [%q]
    durable: %s
    createConsumer: true
    ackWait: 3s
%s`, name, url, stream, subject, durable, extra)
}

func kafkaSourceYAML(name string, brokers []string, topic, group, extra string) string {
	return fmt.Sprintf(`  - name: %s
    type: kafka
    brokers: [%q]
    topics: [%s]
    group: %s
%s`, name, strings.Join(brokers, ","), topic, group, extra)
}

func jsDLQYAML(stream, subject string) string {
	return fmt.Sprintf(`deadLetter:
  type: jetstream
  stream: %s
  createStream: true
  subject: %s`, stream, subject)
}

// startBridge writes yaml to a file and starts `bridge run -c` on it with env
// (plus PATH and HOME); the process is SIGKILLed at the end of the test if it
// still runs.
func startBridge(t *testing.T, name, yaml string, env map[string]string) *bridgeProc {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatalf("write config: %v", err)
	}
	logf := logFile(t, name)
	cmd := exec.Command(bridgeBin, "run", "-c", cfgPath)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bridge %s: %v", name, err)
	}
	p := &bridgeProc{name: name, cmd: cmd, logPath: logf.Name(), done: make(chan struct{})}
	if addr := listenAddr(yaml); addr != "" {
		p.opsURL = "http://" + addr
	}
	go func() { // owner: p; ends when the process exits (kill at cleanup at the latest)
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// listenAddr extracts http.listen from generated yaml.
func listenAddr(yaml string) string {
	_, after, ok := strings.Cut(yaml, "\nhttp:\n  listen: ")
	if !ok {
		return ""
	}
	addr, _, _ := strings.Cut(after, "\n")
	return strings.TrimSpace(addr)
}

// kill SIGKILLs the process and waits until it is reaped.
func (p *bridgeProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to timeout for a clean exit (then kills).
func (p *bridgeProc) stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.waitErr
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("bridge %s did not exit within %v of SIGTERM", p.name, timeout)
	}
}

// exited reports whether the process ended (it never should on its own).
func (p *bridgeProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

var opsClient = &http.Client{Timeout: 2 * time.Second}

// readyz returns the /readyz status code and body (0 when unreachable).
func (p *bridgeProc) readyz() (int, string) {
	resp, err := opsClient.Get(p.opsURL + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// waitReady waits until /readyz answers 200; it fails if the process exits.
func (p *bridgeProc) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, "bridge "+p.name+" ready", func() (bool, string) {
		if p.exited() {
			t.Fatalf("bridge %s exited: %v\n%s", p.name, p.waitErr, p.logTail())
		}
		code, body := p.readyz()
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
}

func (p *bridgeProc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	return tail(b, 3000)
}

// peakRSS is the process's peak resident set (VmHWM), in bytes, from /proc.
func (p *bridgeProc) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}
