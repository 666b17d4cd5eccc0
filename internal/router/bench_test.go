package router

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/source"
)

// BenchmarkRouterMetrics is BenchmarkRouter with Prometheus metrics on, as
// the bridge runs it: the router's own cost per message including its
// counters, gauges and latency histogram.
func BenchmarkRouterMetrics(b *testing.B) {
	cmds := make([][]codec.Command, 256)
	for i := range cmds {
		cmds[i] = []codec.Command{{Action: codec.SendToGroup, Hub: "hub", Group: fmt.Sprint(i), Key: fmt.Sprint(i), Data: []byte(`{}`)}}
	}
	var n atomic.Uint64
	dec := codec.CodecFunc(func(*source.Message) ([]codec.Command, error) {
		return cmds[n.Add(1)%uint64(len(cmds))], nil
	})
	exec := ExecutorFunc(func(context.Context, *codec.Command) error { return nil })
	src := &benchSource{msg: source.Message{Body: []byte(`{}`), Subject: "s"}}
	src.left.Store(int64(b.N))
	r, err := New(Config{Metrics: NewMetrics(prometheus.NewRegistry())}, dec, exec, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if err := r.Run(context.Background(), Input{Name: "bench", Source: src}); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got := src.acked.Load(); got != int64(b.N) {
		b.Fatalf("acked %d of %d", got, b.N)
	}
}

// BenchmarkLimiterContended: four times as many goroutines as slots (the
// adaptive limit halved twice under overload, say) acquire and release.
func BenchmarkLimiterContended(b *testing.B) {
	const slots = 16
	l := newLimiter(1, slots, nil)
	ctx := context.Background()
	b.SetParallelism(4 * slots / max(1, runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e, err := l.acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			runtime.Gosched() // hold the slot across a scheduling point, as a call does
			l.release(e, outcomeSuccess)
		}
	})
}
