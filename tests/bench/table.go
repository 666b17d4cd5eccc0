package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one row of the table: its name, how to read it from a result,
// and its format.
type figure struct {
	name   string
	value  func(result) float64
	format string
}

var figures = []figure{
	{"drain throughput (msg/s)", result.rate, "%.0f"},
	{"REST calls per message", result.callsPerMsg, "%.3f"},
	{"latency p50 (ms)", latency(func(r result) time.Duration { return r.P50 }), "%.2f"},
	{"latency p99 (ms)", latency(func(r result) time.Duration { return r.P99 }), "%.2f"},
	{"latency max (ms)", latency(func(r result) time.Duration { return r.Max }), "%.2f"},
	{"CPU seconds per 100k msgs", result.cpuPer100k, "%.2f"},
	{"brokers+sink CPU s per 100k (parent)", result.parentCPUPer100k, "%.2f"},
	{"allocations per message", result.allocsPerMsg, "%.1f"},
	{"peak RSS (MB)", func(r result) float64 { return float64(r.PeakRSSKB) / 1024 }, "%.1f"},
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// latency reads a latency figure in ms; NaN (shown as "-") when the latency
// phase did not run.
func latency(get func(result) time.Duration) func(result) float64 {
	return func(r result) float64 {
		if r.LatencySamples == 0 {
			return math.NaN()
		}
		return ms(get(r))
	}
}

// printReport writes the table, the coalescing and memory sections, and the
// targets of issue 6.
func printReport(w io.Writer, rep *report) {
	o := rep.Options
	fmt.Fprintf(w, "\nwps-bridge benchmark: %d envelopes (sendToGroup over %d groups, %d-byte JSON), latency at %d msg/s for %s,\n",
		o.N, o.Groups, o.Payload, o.Rate, o.Duration)
	fmt.Fprintf(w, "%d REST calls in flight, sink %s, %s, GOMAXPROCS %d, %d CPUs\n\n", o.InFlight, o.Sink, runtime.Version(),
		runtime.GOMAXPROCS(0), runtime.NumCPU())

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	header := []string{"figure"}
	for _, src := range o.Sources {
		for _, sys := range o.Systems {
			header = append(header, src+" "+sys)
		}
		if len(o.Systems) == 2 {
			header = append(header, src+" ratio")
		}
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, f := range figures {
		row := []string{f.name}
		for _, src := range o.Sources {
			var vals []float64
			for _, sys := range o.Systems {
				v, ok := rep.median(src, sys, f.value)
				if !ok || math.IsNaN(v) {
					row = append(row, "-")
					vals = append(vals, 0)
					continue
				}
				vals = append(vals, v)
				row = append(row, fmt.Sprintf(f.format, v))
			}
			if len(vals) == 2 {
				row = append(row, ratioText(vals[0], vals[1]))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "ratio = bridge / reference; throughput: higher is better, every other figure: lower is better.")
	if o.Repeat > 1 {
		fmt.Fprintf(w, "each figure is the median of %d measurements per system, run alternately.\n", o.Repeat)
	}

	if len(rep.Coalesce) > 0 {
		fmt.Fprintf(w, "\ncoalescing: a burst of %d envelopes to one group (route coalesce: count 100, linger 5ms)\n", o.CoalesceN)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
		fmt.Fprintln(tw, "source\tcoalescing\tmessages\tREST calls\tmsgs per call\tmsg/s\t")
		for _, c := range rep.Coalesce {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.0f\t\n", c.Source, onOff(c.On), c.Messages, c.Requests,
				ratio(float64(c.Messages), float64(c.Requests)), c.Rate)
		}
		_ = tw.Flush()
	}
	if len(rep.Mem) > 0 {
		fmt.Fprintln(w, "\nmemory: the bridge draining a large backlog (peak RSS, VmHWM)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
		fmt.Fprintln(tw, "source\tbacklog\tpeak RSS after 10% (MB)\tpeak RSS after 100% (MB)\tgrowth\tmsg/s\t")
		for _, m := range rep.Mem {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%s\t%.0f\t\n", m.Source, m.AllN, float64(m.AtTenth)/1024,
				float64(m.AtAll)/1024, ratioText(float64(m.AtAll), float64(m.AtTenth)), m.Rate)
		}
		_ = tw.Flush()
	}
	printTargets(w, rep)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func ratioText(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// printTargets checks the targets of issue 6 against the figures measured.
func printTargets(w io.Writer, rep *report) {
	fmt.Fprintln(w, "\ntargets (issue 6):")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	for _, src := range rep.Options.Sources {
		br, okB := rep.median(src, sysBridge, result.rate)
		ref, okR := rep.median(src, sysReference, result.rate)
		if okB && okR {
			q := ratio(br, ref)
			cb, _ := rep.median(src, sysBridge, result.cpuPer100k)
			cr, _ := rep.median(src, sysReference, result.cpuPer100k)
			fmt.Fprintf(w, "  %-9s drain >= 0.9x reference: %.2fx  %s (CPU per message: %.2fx the reference's)\n", src, q,
				verdict(q >= 0.9), ratio(cb, cr))
		}
		if p99, ok := rep.median(src, sysBridge, latency(func(r result) time.Duration { return r.P99 })); ok && !math.IsNaN(p99) {
			fmt.Fprintf(w, "  %-9s p99 <= 10 ms at %d msg/s: %.2f ms  %s\n", src, rep.Options.Rate, p99, verdict(p99 <= 10))
		}
	}
	for _, m := range rep.Mem {
		peak := float64(m.AtAll) / 1024
		flat := float64(m.AtAll) <= 1.1*float64(m.AtTenth)
		fmt.Fprintf(w, "  %-9s peak RSS <= 100 MB over %d: %.1f MB  %s; flat from %d to %d: %s\n", m.Source, m.AllN,
			peak, verdict(peak <= 100), m.TenthN, m.AllN, verdict(flat))
	}
	for i := 0; i+1 < len(rep.Coalesce); i += 2 {
		off, on := rep.Coalesce[i], rep.Coalesce[i+1]
		fewer := ratio(float64(off.Requests), float64(on.Requests))
		fmt.Fprintf(w, "  %-9s coalescing: %.1fx fewer calls (>= 10x: %s), %.2fx msg/s (> 1x: %s)\n", on.Source,
			fewer, verdict(fewer >= 10), ratio(on.Rate, off.Rate), verdict(on.Rate > off.Rate))
	}
}
