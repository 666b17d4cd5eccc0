package kafkasource_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/kafkasource"
	"github.com/wps-bridge/bridge/internal/source/sourcetest"
	"github.com/wps-bridge/bridge/tests/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const topic = "cmds"

// cluster starts a kfake cluster with topic (partitions given) and closes it
// at the end of the test.
func cluster(t *testing.T, partitions int32, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func publisher(t *testing.T, cfg kafkasource.WriterConfig) *kafkasource.Publisher {
	t.Helper()
	p, err := kafkasource.NewPublisher(cfg)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func publish(t *testing.T, p *kafkasource.Publisher, msg *source.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Publish(ctx, msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func open(t *testing.T, cfg kafkasource.Config) *kafkasource.Source {
	t.Helper()
	src, err := kafkasource.New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return src
}

func read(t *testing.T, src source.Source) (*source.Message, source.AckFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msg, ack, err := src.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return msg, ack
}

func TestConformance(t *testing.T) {
	var mu sync.Mutex
	brokers := map[string][]string{}
	pubs := map[string]*kafkasource.Publisher{}
	// One kfake cluster per subtest keeps topics and groups apart.
	env := func(t *testing.T) ([]string, *kafkasource.Publisher) {
		mu.Lock()
		defer mu.Unlock()
		name := sourcetest.Name(t)
		if b, ok := brokers[name]; ok {
			return b, pubs[name]
		}
		b := cluster(t, 1)
		p := publisher(t, kafkasource.WriterConfig{Brokers: b, Topic: topic})
		brokers[name], pubs[name] = b, p
		return b, p
	}
	sourcetest.Run(t, sourcetest.Harness{
		New: func(t *testing.T) source.Source {
			b, _ := env(t)
			src, err := kafkasource.New(kafkasource.Config{
				Name: "kafka", Brokers: b, Topics: []string{topic}, Group: "bridge",
				CommitInterval: 100 * time.Millisecond, MaxWait: 100 * time.Millisecond,
			}, nil)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return src
		},
		Publish: func(t *testing.T, body []byte, hdr source.Headers) {
			_, p := env(t)
			publish(t, p, &source.Message{Body: body, Headers: hdr})
		},
		AtLeastOnce:         true,
		CommitsContiguously: true,
	})
}

// adminClient is a client for reading group offsets, closed with the test.
func adminClient(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// committed is group's committed offset on partition of topic, -1 if none.
func committed(t *testing.T, cl *kgo.Client, group string, partition int32) int64 {
	t.Helper()
	if off, ok := testkit.KafkaCommitted(t, cl, group, topic, []int32{partition})[partition]; ok {
		return off
	}
	return -1
}

// waitCommitted polls the group's committed offset (the broker offers no
// notification) until it equals want or 10s pass.
func waitCommitted(t *testing.T, cl *kgo.Client, group string, partition int32, want int64) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, "committed offset", func() (bool, string) {
		got := committed(t, cl, group, partition)
		return got == want, fmt.Sprintf("committed %d, want %d", got, want)
	})
}

func TestContiguousCommit(t *testing.T) {
	t.Parallel()
	brokers := cluster(t, 1)
	p := publisher(t, kafkasource.WriterConfig{Brokers: brokers, Topic: topic})
	for i := range 5 {
		publish(t, p, &source.Message{Body: fmt.Appendf(nil, "%d", i)})
	}
	src := open(t, kafkasource.Config{Brokers: brokers, Topics: []string{topic}, Group: "g", CommitInterval: 50 * time.Millisecond})
	acks := make([]source.AckFunc, 5)
	for i := range acks {
		msg, ack := read(t, src)
		if msg.Offset != int64(i) || msg.Topic != topic || msg.Subject != topic || msg.Partition != 0 {
			t.Fatalf("message %d: topic %q subject %q partition %d offset %d", i, msg.Topic, msg.Subject, msg.Partition, msg.Offset)
		}
		acks[i] = ack
	}
	ackAll := func(idx ...int) {
		for _, i := range idx {
			if err := acks[i](context.Background(), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin := adminClient(t, brokers)
	ackAll(0)
	waitCommitted(t, admin, "g", 0, 1)
	ackAll(2, 3) // 1 still in flight: the watermark stays at 1
	if err := acks[4](context.Background(), errors.New("nak")); err != nil {
		t.Fatal(err)
	}
	ackAll(1) // 1,2,3 done, 4 naked: commit 4, never past the nak
	waitCommitted(t, admin, "g", 0, 4)
	if err := src.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, admin, "g", 0); got != 4 {
		t.Fatalf("after Close committed %d, want 4 (the naked record redelivered)", got)
	}
}

// TestNakRedeliversWithoutRestart: a record naked with a retriable error
// (the router could not park it) is read again after NakDelay, after the
// records behind it, and its ack then lets the commit pass it; a record
// naked with source.ErrShutdown is not handed out again by this member.
func TestNakRedeliversWithoutRestart(t *testing.T) {
	t.Parallel()
	brokers := cluster(t, 1)
	p := publisher(t, kafkasource.WriterConfig{Brokers: brokers, Topic: topic})
	for _, body := range []string{"failed", "next", "abandoned"} {
		publish(t, p, &source.Message{Body: []byte(body)})
	}
	src := open(t, kafkasource.Config{Brokers: brokers, Topics: []string{topic}, Group: "g", CommitInterval: 50 * time.Millisecond})
	failed, failedAck := read(t, src)
	start := time.Now()
	if err := failedAck(context.Background(), errors.New("dead letter down")); err != nil {
		t.Fatal(err)
	}
	next, nextAck := read(t, src)
	if string(failed.Body) != "failed" || string(next.Body) != "next" {
		t.Fatalf("read %q then %q, want failed then next", failed.Body, next.Body)
	}
	if err := nextAck(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	_, abandonedAck := read(t, src)
	if err := abandonedAck(context.Background(), source.ErrShutdown); err != nil {
		t.Fatal(err)
	}
	again, againAck := read(t, src)
	if string(again.Body) != "failed" || again.Offset != failed.Offset {
		t.Fatalf("redelivered %q at offset %d, want failed at %d", again.Body, again.Offset, failed.Offset)
	}
	if waited := time.Since(start); waited < kafkasource.NakDelay {
		t.Fatalf("naked record handed out again after %v, before NakDelay", waited)
	}
	if err := againAck(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, adminClient(t, brokers), "g", 0, 2) // up to the shutdown-naked record
	ctx, cancel := context.WithTimeout(context.Background(), 2*kafkasource.NakDelay)
	defer cancel()
	if msg, _, err := src.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after a shutdown nak Read = %v, %v; want nothing until the deadline", msg, err)
	}
}

// TestRebalanceCommitsRevokedPartitions: a member acks everything it read, a
// second member joins, and the final commit of the partition revoked from the
// first member means the newcomer starts after the acked records even though
// the periodic commit never ran.
func TestRebalanceCommitsRevokedPartitions(t *testing.T) {
	t.Parallel()
	brokers := cluster(t, 2)
	p := publisher(t, kafkasource.WriterConfig{Brokers: brokers, Topic: topic})
	for i := range 6 {
		publish(t, p, &source.Message{Body: fmt.Appendf(nil, "old-%d", i), Key: fmt.Appendf(nil, "k%d", i)})
	}
	cfg := kafkasource.Config{Brokers: brokers, Topics: []string{topic}, Group: "g", CommitInterval: time.Hour, MaxWait: 100 * time.Millisecond}
	a := open(t, cfg)
	for range 6 {
		_, ack := read(t, a)
		if err := ack(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	b := open(t, cfg)
	// Keep a reading so it rejoins; collect what both members get.
	got := make(chan string, 64)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, src := range []*kafkasource.Source{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msg, ack, err := src.Read(ctx)
				if err != nil {
					return
				}
				got <- string(msg.Body)
				_ = ack(ctx, nil)
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	// Wait until a partition has a committed offset (the final commit of the
	// partition the cooperative rebalance moved to b; a keeps the other),
	// then publish new records to both partitions.
	waitAnyCommitted(t, adminClient(t, brokers), "g", 0, 1)
	for i := range 4 {
		publish(t, p, &source.Message{Body: fmt.Appendf(nil, "new-%d", i), Key: fmt.Appendf(nil, "n%d", i)})
	}
	timeout := time.After(30 * time.Second)
	for seen := 0; seen < 4; {
		select {
		case body := <-got:
			if strings.HasPrefix(body, "old-") {
				t.Fatalf("record %q acked before the rebalance was redelivered", body)
			}
			seen++
		case <-timeout:
			t.Fatalf("only %d of 4 new records read after the rebalance", seen)
		}
	}
}

// waitAnyCommitted polls until one of partitions has a committed offset of
// at least 1.
func waitAnyCommitted(t *testing.T, cl *kgo.Client, group string, partitions ...int32) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, "a committed partition", func() (bool, string) {
		offsets := testkit.KafkaCommitted(t, cl, group, topic, partitions)
		for _, off := range offsets {
			if off >= 1 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("committed offsets %v of partitions %v", offsets, partitions)
	})
}

func TestPublisherAcksAllKeyHeadersAndTopic(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, topic, "other"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	p := publisher(t, kafkasource.WriterConfig{Brokers: brokers, Topic: topic})
	publish(t, p, &source.Message{Body: []byte("v1"), Key: []byte("k1"), Headers: source.Headers{{Key: "wps-bridge-error", Value: "bad"}, {Key: "a", Value: "1"}, {Key: "a", Value: "2"}}})
	publish(t, p, &source.Message{Body: []byte("v2"), Subject: "other"})
	tests := []struct {
		topic   string
		body    string
		key     string
		headers []kgo.RecordHeader
	}{
		{topic, "v1", "k1", []kgo.RecordHeader{{Key: "wps-bridge-error", Value: []byte("bad")}, {Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2")}}},
		{"other", "v2", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.topic, func(t *testing.T) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tc.topic: {0: kgo.NewOffset().AtStart()}}))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			fetches := cl.PollRecords(ctx, 1)
			if err := fetches.Err0(); err != nil {
				t.Fatal(err)
			}
			m := fetches.Records()[0]
			if string(m.Value) != tc.body || string(m.Key) != tc.key || len(m.Headers) != len(tc.headers) {
				t.Fatalf("got value %q key %q headers %v", m.Value, m.Key, m.Headers)
			}
			for i, h := range tc.headers {
				if m.Headers[i].Key != h.Key || string(m.Headers[i].Value) != string(h.Value) {
					t.Fatalf("header %d = %s:%s, want %s:%s (order kept)", i, m.Headers[i].Key, m.Headers[i].Value, h.Key, h.Value)
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.Publish(ctx, &source.Message{Body: []byte("x"), Subject: "missing-topic"}); err == nil {
		t.Fatal("publish to a topic that does not exist succeeded")
	}
}

func TestSASL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mechanism string
		password  string
		wantErr   bool
	}{
		{kafkasource.MechanismPlain, "s3cret", false},
		{kafkasource.MechanismSCRAMSHA256, "s3cret", false},
		{kafkasource.MechanismSCRAMSHA512, "s3cret", false},
		{kafkasource.MechanismSCRAMSHA256, "wrong", true},
		{kafkasource.MechanismPlain, "wrong", true},
	}
	for _, tc := range tests {
		t.Run(tc.mechanism+"/"+tc.password, func(t *testing.T) {
			t.Parallel()
			brokers := cluster(t, 1, kfake.EnableSASL(), kfake.Superuser(tc.mechanism, "bridge", "s3cret"))
			sasl := kafkasource.SASL{Mechanism: tc.mechanism, User: "bridge", Password: tc.password}
			src, err := kafkasource.New(kafkasource.Config{Brokers: brokers, Topics: []string{topic}, Group: "g", SASL: sasl, MaxWait: 100 * time.Millisecond}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = src.Connect(ctx)
			if tc.wantErr {
				if err == nil {
					t.Fatal("Connect with a wrong password succeeded")
				}
				if strings.Contains(err.Error(), tc.password) {
					t.Fatalf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			p := publisher(t, kafkasource.WriterConfig{Brokers: brokers, Topic: topic, SASL: sasl})
			publish(t, p, &source.Message{Body: []byte("authenticated")})
			msg, ack := read(t, src)
			if string(msg.Body) != "authenticated" {
				t.Fatalf("read %q", msg.Body)
			}
			if err := ack(ctx, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  kafkasource.Config
		want []string
	}{
		{"empty", kafkasource.Config{}, []string{"brokers", "topics", "group"}},
		{"bad start offset", kafkasource.Config{Brokers: []string{"b:9092"}, Topics: []string{"t"}, Group: "g", StartOffset: "middle"}, []string{"startOffset"}},
		{"bad mechanism", kafkasource.Config{Brokers: []string{"b:9092"}, Topics: []string{"t"}, Group: "g", SASL: kafkasource.SASL{Mechanism: "GSSAPI"}}, []string{"sasl.mechanism"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := kafkasource.New(tc.cfg, nil)
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}
