package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain runs the test binary as a benchmark child when the parent (the
// smoke test) re-executes it, and checks for leaked goroutines otherwise.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m,
		// nats.go and kfake keep a few background goroutines that end
		// asynchronously after Close returns.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go.(*Conn).flusher"),
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kgo.(*Client).reapConnectionsLoop"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).Start.func1"),
	)
}

// TestQuickRun is the CI smoke test: the whole program with -quick figures,
// both sources, both systems, coalescing and the memory test. It checks
// counts (every message delivered and acknowledged, one REST call per message,
// coalescing merges calls) and that the table prints; it asserts no timing
// ratio, since the machine is shared and noisy.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers and child processes")
	}
	o, err := parseFlags([]string{"-quick", "-coalesce", "-memtest", "-duration", "1s"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := run(ctx, o, &progress, nil)
	if err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}

	live := int64(float64(o.Rate) * o.Duration.Seconds())
	for _, src := range o.Sources {
		for _, sys := range o.Systems {
			t.Run(src+"/"+sys, func(t *testing.T) {
				rs := rep.all(src, sys)
				if len(rs) != o.Repeat {
					t.Fatalf("%d results, want %d", len(rs), o.Repeat)
				}
				r := rs[0]
				if r.Messages != int64(o.N) {
					t.Errorf("drained %d messages, want %d", r.Messages, o.N)
				}
				if r.Requests != r.Messages {
					t.Errorf("%d REST calls for %d messages, want one each", r.Requests, r.Messages)
				}
				if r.LatencySamples != int(live) {
					t.Errorf("%d latency samples, want %d", r.LatencySamples, live)
				}
				if r.Drain <= 0 || r.CPU <= 0 || r.Mallocs == 0 || r.PeakRSSKB <= 0 {
					t.Errorf("missing figures: drain %s, CPU %s, mallocs %d, peak RSS %d KiB", r.Drain, r.CPU, r.Mallocs, r.PeakRSSKB)
				}
				if !(r.P50 > 0 && r.P50 <= r.P99 && r.P99 <= r.Max) {
					t.Errorf("latency quantiles out of order: p50 %s p99 %s max %s", r.P50, r.P99, r.Max)
				}
			})
		}
		t.Run(src+"/coalesce", func(t *testing.T) {
			var off, on *coalesceResult
			for i := range rep.Coalesce {
				if c := &rep.Coalesce[i]; c.Source == src {
					if c.On {
						on = c
					} else {
						off = c
					}
				}
			}
			if off == nil || on == nil {
				t.Fatalf("coalescing results missing: %+v", rep.Coalesce)
			}
			if off.Messages != int64(o.CoalesceN) || on.Messages != int64(o.CoalesceN) {
				t.Errorf("delivered %d (off) and %d (on) messages, want %d each", off.Messages, on.Messages, o.CoalesceN)
			}
			if off.Requests != off.Messages {
				t.Errorf("coalescing off: %d calls for %d messages", off.Requests, off.Messages)
			}
			if on.Requests*10 > on.Messages {
				t.Errorf("coalescing on: %d calls for %d messages, want at least 10 messages per call", on.Requests, on.Messages)
			}
		})
		t.Run(src+"/memtest", func(t *testing.T) {
			for _, m := range rep.Mem {
				if m.Source == src {
					if m.AtTenth <= 0 || m.AtAll < m.AtTenth {
						t.Errorf("peak RSS after 10%% %d KiB, after 100%% %d KiB", m.AtTenth, m.AtAll)
					}
					return
				}
			}
			t.Fatal("no memory result")
		})
	}

	var out bytes.Buffer
	printReport(&out, rep)
	table := out.String()
	for _, want := range append([]string{"drain throughput (msg/s)", "peak RSS (MB)", "jetstream ratio", "kafka ratio",
		"coalescing:", "memory:", "targets (issue 6):"}, figureNames()...) {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if t.Failed() {
		t.Logf("progress:\n%s\ntable:\n%s", progress.String(), table)
	}
}

func figureNames() []string {
	var names []string
	for _, f := range figures {
		names = append(names, f.name)
	}
	return names
}

// TestEnvelope checks the envelope layout the sink relies on: valid JSON, a
// data object of exactly the payload size, and a parsable timestamp.
func TestEnvelope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		groups, size  int
		wantGroupName string
	}{
		{"many groups", 1000, 200, "g7"},
		{"one group", 1, 200, burstGroup},
		{"large payload", 10, 4096, "g7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var e envelopeBuilder
			ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()
			body := e.build(7%tc.groups, tc.groups, 12345, ts, tc.size)
			var env struct {
				ActionName string          `json:"actionName"`
				Group      string          `json:"group"`
				Data       json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("not JSON: %v: %s", err, body)
			}
			if env.ActionName != "sendToGroup" || env.Group != tc.wantGroupName {
				t.Errorf("actionName %q group %q", env.ActionName, env.Group)
			}
			if len(env.Data) != tc.size {
				t.Errorf("data is %d bytes, want %d", len(env.Data), tc.size)
			}
			var data struct {
				TS  int64 `json:"ts"`
				Seq int   `json:"seq"`
			}
			if err := json.Unmarshal(env.Data, &data); err != nil || data.TS != ts || data.Seq != 12345 {
				t.Errorf("data = %+v, %v; want ts %d seq 12345", data, err, ts)
			}
			i := bytes.Index(env.Data, tsField)
			if got, ok := parseDigits(env.Data[i+len(tsField) : i+len(tsField)+tsDigits]); !ok || got != ts {
				t.Errorf("sink parses ts %d (%v), want %d", got, ok, ts)
			}
		})
	}
}
