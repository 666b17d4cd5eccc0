package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childEnv, when set, makes the program (or the test binary) run as a child:
// one measured system driven over stdin/stdout.
const childEnv = "WPSBENCH_CHILD"

// Systems.
const (
	sysBridge    = "bridge"
	sysReference = "reference"
)

// Sources.
const (
	srcJetStream = "jetstream"
	srcKafka     = "kafka"
)

// childConfig is the first line a child reads on stdin.
type childConfig struct {
	System    string   `json:"system"`
	Source    string   `json:"source"`
	NATSURL   string   `json:"natsURL"`
	Stream    string   `json:"stream"`
	Subjects  []string `json:"subjects"` // JetStream filter subjects
	Durable   string   `json:"durable"`  // JetStream durable, Kafka group
	Brokers   []string `json:"brokers"`
	Topics    []string `json:"topics"`
	SinkURL   string   `json:"sinkURL"`
	AccessKey string   `json:"accessKey"`
	Hub       string   `json:"hub"`
	InFlight  int      `json:"inFlight"`
	Batch     int      `json:"batch"` // JetStream fetch batch, Kafka poll batch
	// Coalesce turns on a coalescing route (count 100, linger 5ms) for
	// CoalesceMatch (bridge only).
	Coalesce      bool   `json:"coalesce"`
	CoalesceMatch string `json:"coalesceMatch"`
	CPUProfile    string `json:"cpuProfile"`
	MemProfile    string `json:"memProfile"`
}

// snapshot is a child's resource counters at one instant.
type snapshot struct {
	CPU     time.Duration `json:"cpu"`     // user + system CPU time of the process
	SysCPU  time.Duration `json:"sysCpu"`  // system (kernel) CPU time of the process
	CtxSw   int64         `json:"ctxsw"`   // voluntary + involuntary context switches
	Mallocs uint64        `json:"mallocs"` // heap objects allocated since start
	Bytes   uint64        `json:"bytes"`   // heap bytes allocated since start
	GCs     uint32        `json:"gcs"`     // completed GC cycles since start
	HWM     int64         `json:"hwmKB"`   // peak RSS (VmHWM), KiB
	RSS     int64         `json:"rssKB"`   // current RSS (VmRSS), KiB
	Acked   int64         `json:"acked"`   // messages the system acked so far
}

// reply is one line a child writes on stdout.
type reply struct {
	Event string   `json:"event"` // ready, mark, final, error
	Snap  snapshot `json:"snap"`
	Error string   `json:"error,omitempty"`
}

// system is what a child runs.
type system interface {
	// run consumes until ctx is cancelled; nil after a clean stop.
	run(ctx context.Context) error
	// acked is how many messages the system acked so far.
	acked() int64
}

func takeSnapshot(sys system) snapshot {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru) // cannot fail with RUSAGE_SELF
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := snapshot{
		CPU:     time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		SysCPU:  time.Duration(ru.Stime.Nano()),
		CtxSw:   ru.Nvcsw + ru.Nivcsw,
		Mallocs: ms.Mallocs,
		Bytes:   ms.TotalAlloc,
		GCs:     ms.NumGC,
	}
	s.HWM, s.RSS = procStatus()
	if sys != nil {
		s.Acked = sys.acked()
	}
	return s
}

// procStatus reads VmHWM and VmRSS (KiB) from /proc/self/status; zeros where
// it is not available.
func procStatus() (hwm, rss int64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(data)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmHWM":
			hwm = kb
		case "VmRSS":
			rss = kb
		}
	}
	return hwm, rss
}

// childMain runs one system as a child process and returns the exit code.
func childMain() int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := runChild(os.Stdin, os.Stdout, logger); err != nil {
		logger.Error("bench child failed", "err", err)
		return 1
	}
	return 0
}

func runChild(stdin io.Reader, stdout io.Writer, logger *slog.Logger) error {
	out := json.NewEncoder(stdout)
	lines := make(chan string)
	in := bufio.NewScanner(stdin)
	if !in.Scan() {
		return fmt.Errorf("read config: %w", errors.Join(in.Err(), io.ErrUnexpectedEOF))
	}
	var cfg childConfig
	if err := json.Unmarshal(in.Bytes(), &cfg); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	// The reader goroutine ends when the parent closes stdin.
	go func() {
		defer close(lines)
		for in.Scan() {
			lines <- in.Text()
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		sys system
		err error
	)
	switch cfg.System {
	case sysBridge:
		sys, err = newBridgeSystem(ctx, cfg, logger)
	case sysReference:
		sys, err = newReferenceSystem(ctx, cfg, logger)
	default:
		err = fmt.Errorf("unknown system %q", cfg.System)
	}
	if err != nil {
		_ = out.Encode(reply{Event: "error", Error: err.Error()})
		return err
	}
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		return err
	}
	runtime.GC() // start from a clean heap so HWM reflects the run
	if err := out.Encode(reply{Event: "ready", Snap: takeSnapshot(sys)}); err != nil {
		return fmt.Errorf("write ready: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- sys.run(ctx) }()

	for {
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("it returned before it was stopped")
			}
			err = fmt.Errorf("system stopped early: %w", err)
			_ = out.Encode(reply{Event: "error", Error: err.Error()})
			return err
		case line, ok := <-lines:
			if ok && line == "mark" {
				if err := out.Encode(reply{Event: "mark", Snap: takeSnapshot(sys)}); err != nil {
					return fmt.Errorf("write mark: %w", err)
				}
				continue
			}
			// "stop", or stdin closed: final figures, then a clean shutdown.
			final := takeSnapshot(sys)
			stopProfile()
			if err := writeHeapProfile(cfg.MemProfile); err != nil {
				logger.Warn("heap profile", "err", err)
			}
			cancel()
			var runErr error
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("shutdown took longer than 30s")
			}
			final.Acked = sys.acked()
			rep := reply{Event: "final", Snap: final}
			if runErr != nil {
				rep.Error = runErr.Error()
			}
			if err := out.Encode(rep); err != nil {
				return fmt.Errorf("write final: %w", err)
			}
			return runErr
		}
	}
}

func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

func writeHeapProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer f.Close()
	// allocs: every allocation since the start, which is what the hot path costs.
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// child is the parent's handle on a running child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	ready snapshot
}

// startChild starts self (the program or the test binary) as a child with cfg,
// under the wrap command when one is given, and waits for its ready line.
func startChild(ctx context.Context, self string, wrap []string, cfg childConfig) (*child, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode child config: %w", err)
	}
	cmd := exec.CommandContext(ctx, self)
	if len(wrap) > 0 {
		cmd = exec.CommandContext(ctx, wrap[0], append(wrap[1:], self)...)
	}
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("child stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("child stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	c.out.Buffer(make([]byte, 0, 64<<10), 1<<20)
	if _, err := stdin.Write(append(data, '\n')); err != nil {
		c.kill()
		return nil, fmt.Errorf("send child config: %w", err)
	}
	r, err := c.read("ready")
	if err != nil {
		c.kill()
		return nil, err
	}
	c.ready = r.Snap
	return c, nil
}

// read returns the child's next reply, which must be of event kind.
func (c *child) read(event string) (reply, error) {
	if !c.out.Scan() {
		return reply{}, fmt.Errorf("child (%s) ended before %q: %w", c.cmd.Path, event,
			errors.Join(c.out.Err(), io.ErrUnexpectedEOF))
	}
	var r reply
	if err := json.NewDecoder(bytes.NewReader(c.out.Bytes())).Decode(&r); err != nil {
		return reply{}, fmt.Errorf("child reply %q: %w", c.out.Text(), err)
	}
	if r.Event == "error" || r.Event != event {
		return r, fmt.Errorf("child: want %q, got %q: %s", event, r.Event, r.Error)
	}
	return r, nil
}

// mark asks for a snapshot.
func (c *child) mark() (snapshot, error) {
	if _, err := io.WriteString(c.stdin, "mark\n"); err != nil {
		return snapshot{}, fmt.Errorf("child mark: %w", err)
	}
	r, err := c.read("mark")
	return r.Snap, err
}

// stop asks for the final snapshot and waits for a clean exit.
func (c *child) stop() (snapshot, error) {
	if _, err := io.WriteString(c.stdin, "stop\n"); err != nil {
		c.kill()
		return snapshot{}, fmt.Errorf("child stop: %w", err)
	}
	r, err := c.read("final")
	_ = c.stdin.Close()
	werr := c.cmd.Wait()
	if err == nil && r.Error != "" {
		err = fmt.Errorf("child shutdown: %s", r.Error)
	}
	if err == nil && werr != nil {
		err = fmt.Errorf("child exit: %w", werr)
	}
	return r.Snap, err
}

// kill ends the child after a failure.
func (c *child) kill() {
	_ = c.stdin.Close()
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}
