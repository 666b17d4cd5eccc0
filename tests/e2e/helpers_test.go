package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/app"
	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/tests/testkit"
)

// envHelperConfig names the bridge.yaml that TestHelperBridgeProcess runs; it
// is set only in the child processes of the SIGKILL suites.
const envHelperConfig = "E2E_BRIDGE_CONFIG"

// envConn is the variable the generated bridge.yaml files read the Web PubSub
// connection string from (secrets may not be literal in bridge.yaml).
const envConn = "E2E_WPS_CONNECTION_STRING"

const (
	accessKey = "e2e-access-key-0123456789abcdef-not-a-secret"
	wrongKey  = "e2e-wrong-key-fedcba9876543210-not-a-secret"
	apiVer    = "2024-12-01"
	defHub    = "e2e"
	kafkaCmds = "wps-commands"
	kafkaDLQ  = "wps-dlq"
)

func TestMain(m *testing.M) {
	if os.Getenv(envHelperConfig) != "" {
		// A child bridge process: it is SIGKILLed, there is nothing to verify.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}

// ---------------------------------------------------------------------------
// Waiting

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---------------------------------------------------------------------------
// Recording Web PubSub server

// request is one REST call as the recording server received it.
type request struct {
	Method      string
	Path        string // escaped path
	Query       string
	ContentType string
	Body        []byte
	Status      int // status answered
	At          time.Time
}

// fault decides the answer to the n-th request (1-based); status 0 means
// accept with the operation's success code.
type fault func(n int, r *http.Request) (status int, header http.Header)

// recorder is a Web PubSub data plane that verifies the HS256 access-key JWT
// (key = UTF-8 bytes of the access key, aud = the request URL), answers every
// operation with its exact success code and records what it received.
type recorder struct {
	t       *testing.T
	srv     *httptest.Server
	key     atomic.Pointer[string]
	fault   atomic.Pointer[fault]
	latency atomic.Int64 // nanoseconds added to every request

	verified sync.Map // key+"\x00"+token → struct{}: a token is checked once

	mu          sync.Mutex
	reqs        []request
	accepted    int
	rejected401 int
	bodies      map[string]int // accepted bodies → count
	changed     chan struct{}  // closed and replaced on every request
	n           int
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{t: t, bodies: map[string]int{}, changed: make(chan struct{})}
	k := accessKey
	r.key.Store(&k)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// connectionString returns the bridge's connection string for key.
func (r *recorder) connectionString(key string) string {
	return "Endpoint=" + r.srv.URL + ";AccessKey=" + key + ";Version=1.0;"
}

func (r *recorder) setKey(k string)            { r.key.Store(&k) }
func (r *recorder) setFault(f fault)           { r.fault.Store(&f) }
func (r *recorder) clearFault()                { r.fault.Store(nil) }
func (r *recorder) setLatency(d time.Duration) { r.latency.Store(int64(d)) }

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if d := time.Duration(r.latency.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-req.Context().Done():
			return
		}
	}
	rec := request{
		Method: req.Method, Path: req.URL.EscapedPath(), Query: req.URL.RawQuery,
		ContentType: req.Header.Get("Content-Type"), Body: body, At: time.Now(),
	}
	status, header := r.answer(req)
	for k, vs := range header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	rec.Status = status

	r.mu.Lock()
	r.n++
	r.reqs = append(r.reqs, rec)
	switch {
	case status < 300:
		r.accepted++
		r.bodies[string(body)]++
	case status == http.StatusUnauthorized:
		r.rejected401++
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()

	if status >= 400 {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-ms-error-code", http.StatusText(status))
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"code":%q,"message":"e2e recorder"}`, http.StatusText(status))
		return
	}
	w.WriteHeader(status)
}

// answer authenticates req and applies the fault script.
func (r *recorder) answer(req *http.Request) (int, http.Header) {
	if err := r.authenticate(req); err != nil {
		return http.StatusUnauthorized, nil
	}
	if f := r.fault.Load(); f != nil && *f != nil {
		r.mu.Lock()
		n := r.n + 1
		r.mu.Unlock()
		if status, h := (*f)(n, req); status != 0 {
			return status, h
		}
	}
	if !strings.HasPrefix(req.URL.EscapedPath(), "/api/hubs/") {
		return http.StatusNotFound, nil
	}
	if req.URL.Query().Get("api-version") != apiVer {
		return http.StatusBadRequest, nil
	}
	return successCode(req.Method, req.URL.EscapedPath()), nil
}

// successCode is the exact success status of an operation (webpubsub-api.md §1).
func successCode(method, path string) int {
	switch {
	case method == http.MethodPut:
		return http.StatusOK
	case method == http.MethodDelete:
		return http.StatusNoContent
	case strings.HasSuffix(path, "/:send"):
		return http.StatusAccepted
	case strings.HasSuffix(path, "/:closeConnections"):
		return http.StatusNoContent
	}
	return http.StatusOK // :addToGroups, :removeFromGroups
}

func (r *recorder) authenticate(req *http.Request) error {
	key := *r.key.Load()
	raw, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return errors.New("no bearer token")
	}
	cacheKey := key + "\x00" + raw
	if _, ok := r.verified.Load(cacheKey); ok {
		return nil
	}
	claims := jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return []byte(key), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithLeeway(time.Minute))
	if err != nil {
		return err
	}
	if len(claims.Audience) != 1 {
		return errors.New("aud must name one URL")
	}
	aud, err := url.Parse(claims.Audience[0])
	if err != nil {
		return err
	}
	if aud.EscapedPath() != req.URL.EscapedPath() || !strings.EqualFold(aud.Host, req.Host) {
		return fmt.Errorf("aud %s does not name %s", aud.Redacted(), req.URL.EscapedPath())
	}
	r.verified.Store(cacheKey, struct{}{})
	return nil
}

// recState is what wait conditions look at; it is only valid during the call.
type recState struct {
	reqs        []request
	accepted    int
	rejected401 int
	unique      int // distinct accepted bodies
}

// wait blocks until cond holds for the recorded requests or timeout passes.
func (r *recorder) wait(t *testing.T, timeout time.Duration, what string, cond func(s recState) bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		s := recState{reqs: r.reqs, accepted: r.accepted, rejected401: r.rejected401, unique: len(r.bodies)}
		ok := cond(s)
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("%s: not reached within %v (requests %d, accepted %d, distinct bodies %d, 401s %d)",
				what, timeout, len(s.reqs), s.accepted, s.unique, s.rejected401)
		}
	}
}

// snapshot returns a copy of the recorded requests and the accepted-body counts.
func (r *recorder) snapshot() ([]request, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bodies := make(map[string]int, len(r.bodies))
	for k, v := range r.bodies {
		bodies[k] = v
	}
	return append([]request(nil), r.reqs...), bodies
}

// ---------------------------------------------------------------------------
// NATS

// natsTarget is a NATS server a suite runs against.
type natsTarget struct {
	name string
	url  string
}

// startNATS runs an embedded nats-server with JetStream on a random port.
func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready within 10s")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

// forEachNATS runs fn against an embedded server and, when NATS_URL is set,
// against that server too (skipped with a message otherwise).
func forEachNATS(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		fn(t, startNATS(t))
	})
	t.Run("NATS_URL", func(t *testing.T) {
		u := os.Getenv("NATS_URL")
		if u == "" {
			t.Skip("NATS_URL is not set: the external nats-server variant runs in CI")
		}
		t.Parallel()
		fn(t, u)
	})
}

func connectNATS(t *testing.T, u string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(u, nats.Name("e2e-test"))
	if err != nil {
		t.Fatalf("nats connect %s: %v", u, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// jsNames are the unique JetStream names of one test.
type jsNames struct {
	id                    string
	stream, subject       string // subject prefix: commands go to subject + ".<anything>"
	durable               string
	dlqStream, dlqSubject string
	coreSubject           string // core NATS subject prefix
}

// newJSNames picks unique names and deletes the streams at the end of the test.
func newJSNames(t *testing.T, js jetstream.JetStream) jsNames {
	t.Helper()
	id := randomID()
	n := jsNames{
		id: id, stream: "E2E_" + id, subject: "e2e." + id, durable: "e2e-" + id,
		dlqStream: "E2E_DLQ_" + id, dlqSubject: "e2edlq." + id, coreSubject: "e2ecore." + id,
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range []string{n.stream, n.dlqStream} {
			if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("delete stream %s: %v", s, err)
			}
		}
	})
	return n
}

// jsPublish publishes bodies to subject and waits for every PubAck.
func jsPublish(t *testing.T, js jetstream.JetStream, msgs ...*nats.Msg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const window = 2000
	for start := 0; start < len(msgs); start += window {
		futures := make([]jetstream.PubAckFuture, 0, window)
		for _, m := range msgs[start:min(start+window, len(msgs))] {
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				t.Fatalf("publish async: %v", err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatalf("publish %s: %v", f.Msg().Subject, err)
			case <-ctx.Done():
				t.Fatalf("publish: no PubAck: %v", ctx.Err())
			}
		}
	}
}

// dlqMessage is one parked message.
type dlqMessage struct {
	Body    []byte
	Headers map[string]string
}

// jsDLQ returns every message of the dead-letter stream.
func jsDLQ(t *testing.T, js jetstream.JetStream, stream string) []dlqMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("dead-letter stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("dead-letter stream info: %v", err)
	}
	var out []dlqMessage
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("dead-letter message %d: %v", seq, err)
		}
		h := map[string]string{}
		for k, vs := range m.Header {
			h[strings.ToLower(k)] = strings.Join(vs, ",")
		}
		out = append(out, dlqMessage{Body: m.Data, Headers: h})
	}
	return out
}

// consumerPending returns the durable's NumPending (stored, not yet delivered)
// and NumAckPending (delivered, not yet acked).
func consumerPending(t *testing.T, js jetstream.JetStream, stream, durable string) (pending uint64, ackPending int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info.NumPending, info.NumAckPending
}

// ---------------------------------------------------------------------------
// Kafka

// startKafka runs a one-broker kfake cluster with 8-partition topics.
func startKafka(t *testing.T, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func kafkaClient(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// kafkaProduce produces recs (acks=all) and waits for every ack.
func kafkaProduce(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// kafkaEndOffsets sums the high watermarks of topic's partitions.
func kafkaEndOffsets(t *testing.T, cl *kgo.Client, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range int32(8) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	var sum int64
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("list offsets %s/%d: error code %d", topic, p.Partition, p.ErrorCode)
			}
			sum += p.Offset
		}
	}
	return sum
}

// kafkaCommitted sums group's committed offsets on topic (partitions 0–7).
func kafkaCommitted(t *testing.T, cl *kgo.Client, group, topic string) int64 {
	t.Helper()
	var sum int64
	for _, off := range testkit.KafkaCommitted(t, cl, group, topic, []int32{0, 1, 2, 3, 4, 5, 6, 7}) {
		sum += off
	}
	return sum
}

// kafkaReadAll reads topic from the start until it holds want records (it
// fails after timeout) and returns them.
func kafkaReadAll(t *testing.T, brokers []string, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl := kafkaClient(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: %d of %d records within %v", topic, len(out), want, timeout)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s: %v", topic, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func kafkaDLQMessages(recs []*kgo.Record) []dlqMessage {
	out := make([]dlqMessage, 0, len(recs))
	for _, r := range recs {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[strings.ToLower(kv.Key)] = string(kv.Value)
		}
		out = append(out, dlqMessage{Body: r.Value, Headers: h})
	}
	return out
}

// ---------------------------------------------------------------------------
// Bridge

// bridgeRun is one running bridge built from bridge.yaml text.
type bridgeRun struct {
	b      *app.Bridge
	opsURL string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// parseConfig parses bridge.yaml text with env as the whole environment.
func parseConfig(t *testing.T, yaml string, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	return cfg
}

// testLogger writes warnings and errors to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startBridge builds a bridge from yaml (via config.Parse and app.New) and
// runs it with an operations endpoint on a random port until stop or the end
// of the test.
func startBridge(t *testing.T, yaml string, env map[string]string) *bridgeRun {
	t.Helper()
	cfg := parseConfig(t, yaml, env)
	ctx, cancel := context.WithCancel(context.Background())
	b, err := app.New(ctx, cfg, testLogger(t))
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatalf("listen: %v", err)
	}
	r := &bridgeRun{b: b, opsURL: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- b.Run(ctx, ln) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("bridge Run: %v", err)
		}
	})
	return r
}

// stop cancels the bridge and waits for Run to return (at most 60 s).
func (r *bridgeRun) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(60 * time.Second):
			r.err = errors.New("Run did not return within 60s of cancel")
		}
	})
	return r.err
}

// waitReady waits until Bridge.Ready reports nil.
func (r *bridgeRun) waitReady(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, "bridge ready", func() (bool, string) {
		err := r.b.Ready()
		return err == nil, fmt.Sprint(err)
	})
}

// metric sums the samples of the named metric whose labels include labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	samples:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue samples
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// ---------------------------------------------------------------------------
// bridge.yaml builders

// yamlWPS is the webpubsub section; the connection string comes from envConn.
func yamlWPS(extra string) string {
	return fmt.Sprintf(`webpubsub:
  connectionString: ${%s}
  hub: %s
  allowInsecureHTTP: true
  timeout: 5s
%s`, envConn, defHub, extra)
}

// yamlJSSource is a JetStream source on n's stream.
func yamlJSSource(name, url string, n jsNames, extra string) string {
	return fmt.Sprintf(`  - name: %s
    type: jetstream
    url: %s
    stream: %s
    createStream: true
    subjects: ["%s.>"]
    durable: %s
    createConsumer: true
%s`, name, url, n.stream, n.subject, n.durable, extra)
}

func yamlKafkaSource(name string, brokers []string, topic, group string) string {
	return fmt.Sprintf(`  - name: %s
    type: kafka
    brokers: ["%s"]
    topics: [%s]
    group: %s
`, name, strings.Join(brokers, ","), topic, group)
}

func yamlJSDLQ(url string, n jsNames) string {
	return fmt.Sprintf(`deadLetter:
  type: jetstream
  url: %s
  stream: %s
  createStream: true
  subject: %s
`, url, n.dlqStream, n.dlqSubject)
}

func yamlKafkaDLQ(brokers []string) string {
	return fmt.Sprintf(`deadLetter:
  type: kafka
  brokers: ["%s"]
  topic: %s
`, strings.Join(brokers, ","), kafkaDLQ)
}

// envFor is the environment of a bridge talking to rec with key.
func envFor(rec *recorder, key string) map[string]string {
	return map[string]string{envConn: rec.connectionString(key)}
}
