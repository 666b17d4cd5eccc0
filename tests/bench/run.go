package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wps-bridge/bridge/internal/emulator"
)

// options are the program's flags.
type options struct {
	N          int           // -n: preloaded envelopes per source
	Rate       int           // -rate: publish rate of the latency phase (msg/s)
	Duration   time.Duration // -duration: length of the latency phase
	Sources    []string      // -sources
	Coalesce   bool          // -coalesce: run the coalescing comparison
	CoalesceN  int           // -coalesce-n: burst size
	MemTest    bool          // -memtest: 1M backlog RSS
	MemN       int           // -mem-n
	Quick      bool          // -quick: small figures for CI
	Sink       string        // -sink
	Groups     int           // -groups
	Payload    int           // -payload: data bytes
	InFlight   int           // -inflight: REST calls in flight, both systems
	Partitions int           // -partitions: Kafka partitions per topic
	Systems    []string      // -systems
	Repeat     int           // -repeat: measurements per system, alternating order; the table shows medians
	CPUProfile string        // -cpuprofile: prefix of per-child CPU profiles
	MemProfile string        // -memprofile: prefix of per-child allocation profiles
	Self       string        // the executable re-run as a child; "" = os.Executable
	ChildWrap  []string      // -child-wrap: command (and arguments) each child runs under, e.g. valgrind
}

func defaultOptions() options {
	return options{
		N: 200_000, Rate: 2000, Duration: 20 * time.Second,
		Sources:   []string{srcJetStream, srcKafka},
		CoalesceN: 20_000, MemN: 1_000_000,
		Sink: sinkMinimal, Groups: 1000, Payload: 200, InFlight: 64, Partitions: 4,
		Systems: []string{sysBridge, sysReference}, Repeat: 1,
	}
}

// quick shrinks the figures for a CI smoke run; explicit flags still win.
func (o *options) quick(set map[string]bool) {
	if !set["n"] {
		o.N = 3000
	}
	if !set["rate"] {
		o.Rate = 500
	}
	if !set["duration"] {
		o.Duration = 2 * time.Second
	}
	if !set["coalesce-n"] {
		o.CoalesceN = 2000
	}
	if !set["mem-n"] {
		o.MemN = 10_000
	}
	if !set["groups"] {
		o.Groups = 100
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := defaultOptions()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.N, "n", o.N, "envelopes preloaded per source for the drain")
	fs.IntVar(&o.Rate, "rate", o.Rate, "publish rate of the latency phase, msg/s (0: skip it)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "length of the latency phase")
	sources := fs.String("sources", strings.Join(o.Sources, ","), "sources to measure: jetstream,kafka")
	systems := fs.String("systems", strings.Join(o.Systems, ","), "systems to measure: bridge,reference")
	fs.BoolVar(&o.Coalesce, "coalesce", false, "also compare coalescing on and off for a burst to one group")
	fs.IntVar(&o.CoalesceN, "coalesce-n", o.CoalesceN, "burst size of the coalescing comparison")
	fs.BoolVar(&o.MemTest, "memtest", false, "also drain a large backlog with the bridge and record peak RSS at 10% and 100%")
	fs.IntVar(&o.MemN, "mem-n", o.MemN, "backlog of the memory test")
	fs.BoolVar(&o.Quick, "quick", false, "small figures for a CI smoke run")
	fs.StringVar(&o.Sink, "sink", o.Sink, "Web PubSub sink: minimal (counts, verifies nothing) or emulator (NoFanout)")
	fs.IntVar(&o.Groups, "groups", o.Groups, "distinct groups of the sendToGroup envelopes")
	fs.IntVar(&o.Payload, "payload", o.Payload, "bytes of each JSON payload")
	fs.IntVar(&o.InFlight, "inflight", o.InFlight, "REST calls in flight (bridge maxInFlight, reference workers)")
	fs.IntVar(&o.Partitions, "partitions", o.Partitions, "partitions of each Kafka topic")
	fs.IntVar(&o.Repeat, "repeat", o.Repeat, "measure each system this many times, alternating which goes first; the table shows medians")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write each child's CPU profile to `prefix`.<source>.<system>.pprof, and the parent's (brokers and sink) during each drain to `prefix`.<source>.<system>.parent.pprof")
	childWrap := fs.String("child-wrap", "", "run each child under this `command` (space-separated), e.g. \"valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p\" to count instructions")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write each child's allocation profile to `prefix`.<source>.<system>.pprof")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.Quick {
		o.quick(set)
	}
	o.Sources = splitList(*sources)
	o.Systems = splitList(*systems)
	o.ChildWrap = strings.Fields(*childWrap)
	return o, o.validate()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (o *options) validate() error {
	var errs []error
	for _, s := range o.Sources {
		if s != srcJetStream && s != srcKafka {
			errs = append(errs, fmt.Errorf("-sources: %q is not jetstream or kafka", s))
		}
	}
	if len(o.Sources) == 0 {
		errs = append(errs, errors.New("-sources: at least one"))
	}
	for _, s := range o.Systems {
		if s != sysBridge && s != sysReference {
			errs = append(errs, fmt.Errorf("-systems: %q is not bridge or reference", s))
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"n", o.N}, {"groups", o.Groups}, {"inflight", o.InFlight}, {"partitions", o.Partitions}, {"payload", o.Payload}, {"repeat", o.Repeat}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("-%s: must be at least 1", f.name))
		}
	}
	if o.Payload < 64 {
		errs = append(errs, errors.New("-payload: at least 64 bytes (the timestamp and sequence need room)"))
	}
	if o.Rate < 0 || o.Duration < 0 {
		errs = append(errs, errors.New("-rate and -duration: must not be negative"))
	}
	return errors.Join(errs...)
}

// result is one measured system on one source.
type result struct {
	Source, System string
	Rep            int           // repetition, from 0
	Messages       int64         // drained
	Drain          time.Duration // first request to last message
	Requests       int64         // REST calls of the drain
	P50, P99, Max  time.Duration // latency phase
	LatencySamples int
	CPU            time.Duration // process CPU over the drain
	SysCPU         time.Duration // of which in the kernel
	CtxSw          int64         // context switches over the drain
	ParentCPU      time.Duration // CPU of this process (brokers and sink) over the drain
	Mallocs        uint64        // heap objects allocated over the drain
	Bytes          uint64        // heap bytes allocated over the drain
	GCs            uint32        // GC cycles over the drain
	PeakRSSKB      int64         // VmHWM at the end
}

func (r result) rate() float64 {
	if r.Drain <= 0 {
		return 0
	}
	return float64(r.Messages) / r.Drain.Seconds()
}
func (r result) callsPerMsg() float64 { return ratio(float64(r.Requests), float64(r.Messages)) }
func (r result) cpuPer100k() float64 {
	return ratio(r.CPU.Seconds()*100_000, float64(r.Messages))
}
func (r result) parentCPUPer100k() float64 {
	return ratio(r.ParentCPU.Seconds()*100_000, float64(r.Messages))
}
func (r result) allocsPerMsg() float64 { return ratio(float64(r.Mallocs), float64(r.Messages)) }

// memResult is the memory test of one source.
type memResult struct {
	Source         string
	AtTenth, AtAll int64 // VmHWM KiB after a tenth and after all of the backlog
	TenthN, AllN   int
	Rate           float64
}

// coalesceResult is one coalescing run.
type coalesceResult struct {
	Source   string
	On       bool
	Messages int64
	Requests int64
	Rate     float64
}

// report is everything one run measured.
type report struct {
	Options  options
	Results  []result
	Mem      []memResult
	Coalesce []coalesceResult
}

// bench holds the parent's infrastructure during a run.
type bench struct {
	o    options
	in   *infra
	sink *sink
	log  *slog.Logger
	err  io.Writer // progress lines
}

// run performs every measurement o asks for and returns the report.
func run(ctx context.Context, o options, progress io.Writer, log *slog.Logger) (*report, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Self == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
		o.Self = self
	}
	kafkaPartitions = int32(o.Partitions)
	in, err := startInfra(ctx, o.Sources, int32(o.Partitions), liveTopics(o))
	if err != nil {
		return nil, err
	}
	defer in.close()
	sk, err := startSink(o.Sink)
	if err != nil {
		return nil, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := sk.close(closeCtx); err != nil {
			log.Warn("sink", "err", err)
		}
	}()
	b := &bench{o: o, in: in, sink: sk, log: log, err: progress}
	rep := &report{Options: o}
	for _, src := range o.Sources {
		b.progress("%s: preloading %d envelopes (%d groups, %d-byte payloads)", src, o.N, o.Groups, o.Payload)
		start := time.Now()
		if err := in.preload(ctx, src, drainSubject(src), o.N, o.Groups, o.Payload); err != nil {
			return nil, fmt.Errorf("%s: preload: %w", src, err)
		}
		b.progress("%s: preloaded in %s", src, time.Since(start).Round(time.Millisecond))
		for i := range o.Repeat {
			systems := slices.Clone(o.Systems)
			if i%2 == 1 { // alternate who runs first: the machine's load drifts
				slices.Reverse(systems)
			}
			for _, sys := range systems {
				r, err := b.measure(ctx, src, sys, i)
				if err != nil {
					return nil, fmt.Errorf("%s/%s: %w", src, sys, err)
				}
				rep.Results = append(rep.Results, r)
			}
		}
		if o.Coalesce {
			for _, on := range []bool{false, true} {
				c, err := b.coalesce(ctx, src, on)
				if err != nil {
					return nil, fmt.Errorf("%s/coalesce=%v: %w", src, on, err)
				}
				rep.Coalesce = append(rep.Coalesce, c)
			}
		}
		if o.MemTest {
			m, err := b.memTest(ctx, src)
			if err != nil {
				return nil, fmt.Errorf("%s/memtest: %w", src, err)
			}
			rep.Mem = append(rep.Mem, m)
		}
	}
	return rep, nil
}

func (b *bench) progress(format string, args ...any) {
	if b.err != nil {
		fmt.Fprintf(b.err, "bench: "+format+"\n", args...)
	}
}

func drainSubject(src string) string {
	if src == srcKafka {
		return topicDrain
	}
	return subjDrain
}

// liveSubject is where the latency phase of one measurement publishes;
// durable names the measurement.
func liveSubject(src, durable string) string {
	if src == srcKafka {
		return topicLivePre + durable
	}
	return subjLivePre + durable
}

// measurementName is the durable (JetStream) or group (Kafka) of repetition
// rep of sys: every measurement starts from a fresh consumer.
func measurementName(sys string, rep int) string { return fmt.Sprintf("%s-%d", sys, rep) }

// liveTopics are the Kafka topics of every latency phase.
func liveTopics(o options) []string {
	var topics []string
	for _, sys := range o.Systems {
		for i := range o.Repeat {
			topics = append(topics, liveSubject(srcKafka, measurementName(sys, i)))
		}
	}
	return topics
}

// childConfig is the configuration shared by every child on src.
func (b *bench) childConfig(src, sys, durable string, subjects []string) childConfig {
	c := childConfig{
		System: sys, Source: src, NATSURL: b.in.natsURL(), Stream: benchStream, Durable: durable,
		Brokers: b.in.brokers, SinkURL: b.sink.url, AccessKey: emulator.DevAccessKey, Hub: benchHub,
		InFlight: b.o.InFlight, Batch: 256,
	}
	if src == srcKafka {
		c.Topics, c.Batch = subjects, 1024
	} else {
		c.Subjects = subjects
	}
	if b.o.CPUProfile != "" {
		c.CPUProfile = fmt.Sprintf("%s.%s.%s.pprof", b.o.CPUProfile, src, durable)
	}
	if b.o.MemProfile != "" {
		c.MemProfile = fmt.Sprintf("%s.%s.%s.pprof", b.o.MemProfile, src, durable)
	}
	return c
}

// stall is how long a run may make no progress before it fails.
const stall = 60 * time.Second

// measure runs one system on src: the drain of the preloaded backlog, then
// the latency phase at a fixed publish rate.
func (b *bench) measure(ctx context.Context, src, sys string, rep int) (result, error) {
	res := result{Source: src, System: sys, Rep: rep}
	name := measurementName(sys, rep)
	subjects := []string{drainSubject(src), liveSubject(src, name)}
	b.sink.reset(false)
	c, err := startChild(ctx, b.o.Self, b.o.ChildWrap, b.childConfig(src, sys, name, subjects))
	if err != nil {
		return res, err
	}
	defer func() {
		if c != nil {
			c.kill()
		}
	}()
	want := int64(b.o.N)
	// The parent's profile (brokers and sink) during the drain.
	parentProfile := ""
	if b.o.CPUProfile != "" {
		parentProfile = fmt.Sprintf("%s.%s.%s.parent.pprof", b.o.CPUProfile, src, name)
	}
	stopProfile, err := startCPUProfile(parentProfile)
	if err != nil {
		return res, fmt.Errorf("parent: %w", err)
	}
	parentStart := takeSnapshot(nil).CPU
	at, err := b.sink.waitFor(ctx, want, stall, nil)
	stopProfile()
	if err != nil {
		return res, fmt.Errorf("drain: %w", err)
	}
	res.ParentCPU = takeSnapshot(nil).CPU - parentStart
	res.Messages, res.Requests = b.sink.messages.Load(), b.sink.requests.Load()
	res.Drain = at.Sub(b.sink.first())
	if err := b.in.waitSettled(ctx, src, name, subjects[:1], want, 30*time.Second); err != nil {
		return res, fmt.Errorf("after drain: %w", err)
	}
	mark, err := c.mark()
	if err != nil {
		return res, err
	}
	res.CPU = mark.CPU - c.ready.CPU
	res.SysCPU = mark.SysCPU - c.ready.SysCPU
	res.CtxSw = mark.CtxSw - c.ready.CtxSw
	res.Mallocs = mark.Mallocs - c.ready.Mallocs
	res.Bytes = mark.Bytes - c.ready.Bytes
	res.GCs = mark.GCs - c.ready.GCs
	b.progress("%s/%s: drained %d in %s (%.0f msg/s, %.3f calls/msg, %.2f CPU s/100k of which %.2f kernel, %.2f context switches/msg, %.1f allocs and %.0f B/msg, %.1f GC cycles/100k; brokers+sink %.2f CPU s/100k)",
		src, name, res.Messages, res.Drain.Round(time.Millisecond), res.rate(), res.callsPerMsg(), res.cpuPer100k(),
		ratio(res.SysCPU.Seconds()*100_000, float64(res.Messages)), ratio(float64(res.CtxSw), float64(res.Messages)),
		res.allocsPerMsg(), ratio(float64(res.Bytes), float64(res.Messages)),
		ratio(float64(res.GCs)*100_000, float64(res.Messages)), res.parentCPUPer100k())

	live := int64(0)
	if b.o.Rate > 0 && b.o.Duration > 0 {
		b.sink.reset(true)
		n, err := b.publishAt(ctx, src, subjects[1])
		if err != nil {
			return res, fmt.Errorf("latency phase: %w", err)
		}
		live = int64(n)
		if _, err := b.sink.waitFor(ctx, live, stall, nil); err != nil {
			return res, fmt.Errorf("latency phase: %w", err)
		}
		res.P50, res.P99, res.Max, res.LatencySamples = b.sink.latencyStats()
		b.progress("%s/%s: latency at %d msg/s over %d messages: p50 %s p99 %s max %s", src, name, b.o.Rate, n,
			res.P50.Round(time.Microsecond), res.P99.Round(time.Microsecond), res.Max.Round(time.Microsecond))
	}
	if err := b.in.waitSettled(ctx, src, name, subjects, want+live, 30*time.Second); err != nil {
		return res, fmt.Errorf("after the latency phase: %w", err)
	}
	final, err := c.stop()
	c = nil
	if err != nil {
		return res, err
	}
	res.PeakRSSKB = final.HWM
	if final.Acked < want+live {
		return res, fmt.Errorf("the system acked %d messages, want %d", final.Acked, want+live)
	}
	return res, nil
}

// publishAt publishes Rate envelopes per second for Duration, each stamped
// with its publish time, and returns how many it published.
func (b *bench) publishAt(ctx context.Context, src, subject string) (int, error) {
	p := b.in.publisher(src, subject)
	total := int(float64(b.o.Rate) * b.o.Duration.Seconds())
	interval := time.Second / time.Duration(b.o.Rate)
	var e envelopeBuilder
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	sent := 0
	for sent < total {
		due := min(total, int(time.Since(start)/interval)+1)
		for ; sent < due; sent++ {
			g := sent % b.o.Groups
			if err := p.publish(ctx, e.build(g, b.o.Groups, sent, time.Now().UnixNano(), b.o.Payload), groupName(g, b.o.Groups)); err != nil {
				return sent, err
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return sent, ctx.Err()
		}
	}
	return sent, p.flush(ctx)
}

// coalesce drains a burst of CoalesceN envelopes to one group with the
// bridge, coalescing on or off.
func (b *bench) coalesce(ctx context.Context, src string, on bool) (coalesceResult, error) {
	res := coalesceResult{Source: src, On: on}
	subject := subjBurst
	if src == srcKafka {
		subject = topicBurst
	}
	if !on { // both runs consume the same burst with their own durable or group
		if err := b.in.preload(ctx, src, subject, b.o.CoalesceN, 1, b.o.Payload); err != nil {
			return res, fmt.Errorf("preload: %w", err)
		}
	}
	durable := "burst-off"
	if on {
		durable = "burst-on"
	}
	cfg := b.childConfig(src, sysBridge, durable, []string{subject})
	cfg.Coalesce, cfg.CoalesceMatch = on, subject
	b.sink.reset(false)
	c, err := startChild(ctx, b.o.Self, b.o.ChildWrap, cfg)
	if err != nil {
		return res, err
	}
	defer func() {
		if c != nil {
			c.kill()
		}
	}()
	want := int64(b.o.CoalesceN)
	at, err := b.sink.waitFor(ctx, want, stall, nil)
	if err != nil {
		return res, err
	}
	res.Messages, res.Requests = b.sink.messages.Load(), b.sink.requests.Load()
	res.Rate = float64(res.Messages) / at.Sub(b.sink.first()).Seconds()
	if err := b.in.waitSettled(ctx, src, durable, []string{subject}, want, 30*time.Second); err != nil {
		return res, err
	}
	_, err = c.stop()
	c = nil
	if err != nil {
		return res, err
	}
	b.progress("%s/coalesce=%v: %d messages in %d calls, %.0f msg/s", src, on, res.Messages, res.Requests, res.Rate)
	return res, nil
}

// memTest drains MemN envelopes with the bridge and records its peak RSS
// after a tenth and after all of them.
func (b *bench) memTest(ctx context.Context, src string) (memResult, error) {
	res := memResult{Source: src, TenthN: b.o.MemN / 10, AllN: b.o.MemN}
	subject := subjMem
	if src == srcKafka {
		subject = topicMem
	}
	b.progress("%s: preloading %d envelopes for the memory test", src, b.o.MemN)
	if err := b.in.preload(ctx, src, subject, b.o.MemN, b.o.Groups, b.o.Payload); err != nil {
		return res, fmt.Errorf("preload: %w", err)
	}
	b.sink.reset(false)
	c, err := startChild(ctx, b.o.Self, b.o.ChildWrap, b.childConfig(src, sysBridge, "mem", []string{subject}))
	if err != nil {
		return res, err
	}
	defer func() {
		if c != nil {
			c.kill()
		}
	}()
	if _, err := b.sink.waitFor(ctx, int64(res.TenthN), stall, nil); err != nil {
		return res, err
	}
	s, err := c.mark()
	if err != nil {
		return res, err
	}
	res.AtTenth = s.HWM
	at, err := b.sink.waitFor(ctx, int64(res.AllN), stall, nil)
	if err != nil {
		return res, err
	}
	res.Rate = float64(res.AllN) / at.Sub(b.sink.first()).Seconds()
	s, err = c.mark()
	if err != nil {
		return res, err
	}
	res.AtAll = s.HWM
	if _, err := c.stop(); err != nil {
		c = nil
		return res, err
	}
	c = nil
	b.progress("%s/memtest: peak RSS %.1f MB after %d, %.1f MB after %d", src,
		float64(res.AtTenth)/1024, res.TenthN, float64(res.AtAll)/1024, res.AllN)
	return res, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// all returns every repetition of sys on src.
func (rep *report) all(src, sys string) []result {
	var out []result
	for _, r := range rep.Results {
		if r.Source == src && r.System == sys {
			out = append(out, r)
		}
	}
	return out
}

// median is the median over the repetitions of sys on src of the figure
// value; false when sys did not run on src.
func (rep *report) median(src, sys string, value func(result) float64) (float64, bool) {
	rs := rep.all(src, sys)
	if len(rs) == 0 {
		return 0, false
	}
	var vals []float64
	for _, r := range rs {
		if v := value(r); !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return math.NaN(), true
	}
	slices.Sort(vals)
	if n := len(vals); n%2 == 0 {
		return (vals[n/2-1] + vals[n/2]) / 2, true
	}
	return vals[len(vals)/2], true
}
