package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/wps-bridge/bridge/internal/app"
	"github.com/wps-bridge/bridge/internal/config"
)

// bridgeSystem is the bridge built the production way: bridge.yaml text →
// config.Parse → app.New → Run, with the operations endpoint serving
// /metrics on a random port.
type bridgeSystem struct {
	b  *app.Bridge
	ln net.Listener
}

// bridgeYAML is the configuration of the measured bridge: defaults for the
// router (64 lanes) and retries, a dead letter on the same broker, and the
// same in-flight bound and fetch batch as the reference.
func bridgeYAML(cfg childConfig) string {
	var b strings.Builder
	q := strconv.Quote
	list := func(items []string) string {
		quoted := make([]string, len(items))
		for i, s := range items {
			quoted[i] = q(s)
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	}
	fmt.Fprintf(&b, "webpubsub:\n  connectionString: ${WPSBENCH_CONNECTION_STRING}\n  hub: %s\n", q(cfg.Hub))
	fmt.Fprintf(&b, "  maxInFlight: %d\n  timeout: 10s\n  allowInsecureHTTP: true\n", cfg.InFlight)
	b.WriteString("sources:\n")
	switch cfg.Source {
	case srcJetStream:
		fmt.Fprintf(&b, "  - name: js\n    type: jetstream\n    url: %s\n    stream: %s\n    subjects: %s\n",
			q(cfg.NATSURL), q(cfg.Stream), list(cfg.Subjects))
		fmt.Fprintf(&b, "    durable: %s\n    createConsumer: true\n    fetchBatch: %d\n    maxAckPending: 2048\n",
			q(cfg.Durable), cfg.Batch)
		b.WriteString("deadLetter:\n  type: jetstream\n  stream: BENCH_DLQ\n  createStream: true\n  subject: dlq.bench\n")
	case srcKafka:
		fmt.Fprintf(&b, "  - name: kafka\n    type: kafka\n    brokers: %s\n    topics: %s\n    group: %s\n    startOffset: first\n",
			list(cfg.Brokers), list(cfg.Topics), q(cfg.Durable))
		b.WriteString("deadLetter:\n  type: kafka\n  topic: dlq\n")
	}
	if cfg.Coalesce {
		fmt.Fprintf(&b, "routes:\n  - match: %s\n    body: envelope\n    coalesce: {count: 100, bytes: 1048576, linger: 5ms}\n",
			q(cfg.CoalesceMatch))
	}
	b.WriteString("retry: {initial: 100ms, max: 30s, maxElapsed: 10m}\n")
	b.WriteString("log: {level: warn}\n")
	return b.String()
}

func newBridgeSystem(ctx context.Context, cfg childConfig, logger *slog.Logger) (*bridgeSystem, error) {
	cs := fmt.Sprintf("Endpoint=%s;AccessKey=%s;Version=1.0;", cfg.SinkURL, cfg.AccessKey)
	env := func(name string) (string, bool) {
		if name == "WPSBENCH_CONNECTION_STRING" {
			return cs, true
		}
		return "", false
	}
	c, err := config.Parse([]byte(bridgeYAML(cfg)), env)
	if err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	b, err := app.New(ctx, c, logger)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bridge operations endpoint: %w", err)
	}
	return &bridgeSystem{b: b, ln: ln}, nil
}

func (s *bridgeSystem) run(ctx context.Context) error {
	if err := s.b.Run(ctx, s.ln); err != nil {
		return fmt.Errorf("bridge run: %w", err)
	}
	return nil
}

// acked reads wpsbridge_messages_acked_total from the bridge's registry.
func (s *bridgeSystem) acked() int64 {
	families, err := s.b.Registry().Gather()
	if err != nil {
		return -1
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "wpsbridge_messages_acked_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return int64(n)
}
