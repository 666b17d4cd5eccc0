// Package containers runs the bridge end to end against real nats and Kafka
// containers through testcontainers-go. Without a reachable Docker engine
// every test skips with a message (the in-process suites under tests/e2e
// cover the same paths with embedded servers).
package containers

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
	tcnats "github.com/testcontainers/testcontainers-go/modules/nats"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wps-bridge/bridge/internal/app"
	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/emulator"
)

const (
	natsImage  = "nats:2.11.7"
	kafkaImage = "confluentinc/confluent-local:7.5.0"
	perSource  = 500
)

func TestBridgeAgainstContainers(t *testing.T) {
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	natsC, err := tcnats.Run(ctx, natsImage)
	testcontainers.CleanupContainer(t, natsC)
	if err != nil {
		t.Fatalf("nats container: %v", err)
	}
	natsURL, err := natsC.ConnectionString(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kafkaC, err := tckafka.Run(ctx, kafkaImage, tckafka.WithClusterID("wps-bridge-test"))
	testcontainers.CleanupContainer(t, kafkaC)
	if err != nil {
		t.Fatalf("kafka container: %v", err)
	}
	brokers, err := kafkaC.Brokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("wps-commands"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "wps-commands", 3, 1
	create.Topics = append(create.Topics, ct)
	created, err := create.RequestWith(ctx, kc)
	if err == nil && created.Topics[0].ErrorCode != 0 {
		err = fmt.Errorf("error code %d", created.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}

	// The emulator records every send; the bridge calls it like Azure.
	emu, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	emu.OnRequest(func(r emulator.Request) {
		if r.Op == "SendToGroup" && r.Status == 202 {
			mu.Lock()
			seen[string(r.Body)]++
			mu.Unlock()
		}
	})
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { _ = emu.Close(); srv.Close() })

	yaml := fmt.Sprintf(`webpubsub:
  connectionString: ${CS}
  hub: chat
sources:
  - {name: js, type: jetstream, url: "%s", stream: WPS, createStream: true, subjects: ["wps.>"], durable: bridge, createConsumer: true}
  - {name: kafka, type: kafka, brokers: ["%s"], topics: [wps-commands], group: wps-bridge}
http: {listen: ""}
`, natsURL, strings.Join(brokers, ","))
	cs := emulator.ConnectionString(srv.URL, emulator.DevAccessKey)
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) {
		if k == "CS" {
			return cs, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx, (net.Listener)(nil)) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("bridge run: %v", err)
		}
	}()

	body := func(src string, i int) string {
		return fmt.Sprintf(`{"actionName":"sendToGroup","group":"g%d","data":{"src":%q,"i":%d}}`, i%10, src, i)
	}
	// The bridge creates the stream; publish once it exists.
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for b.Ready() != nil {
		select {
		case <-ctx.Done():
			t.Fatalf("bridge never ready: %v", b.Ready())
		case <-time.After(50 * time.Millisecond):
		}
	}
	for i := range perSource {
		if _, err := js.Publish(ctx, "wps.cmd", []byte(body("js", i))); err != nil {
			t.Fatal(err)
		}
		if err := kc.ProduceSync(ctx, &kgo.Record{Value: []byte(body("kafka", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	want := 2 * perSource
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == want {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("delivered %d distinct commands of %d", n, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
