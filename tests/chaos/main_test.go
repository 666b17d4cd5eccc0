package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const (
	hub       = "chaos"
	accessKey = "chaos-access-key-0123456789abcdef-not-a-secret"
	otherKey  = "chaos-other-key-fedcba9876543210-not-a-secret"
	envConn   = "CHAOS_WPS_CONNECTION_STRING"
)

var (
	// bridgeBin is the binary built from ./cmd/bridge by TestMain.
	bridgeBin string
	// logDir holds one log file per process of the suite.
	logDir string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wps-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: temp dir:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	bridgeBin = filepath.Join(dir, "bridge")
	logDir = filepath.Join(dir, "logs")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: log dir:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bridgeBin, "github.com/wps-bridge/bridge/cmd/bridge")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: go build ./cmd/bridge: %v\n%s", err, out)
		return 2
	}
	code := m.Run()
	if keep := os.Getenv("CHAOS_KEEP_LOGS"); keep != "" {
		// For debugging: keep a copy of every process log.
		if err := os.CopyFS(keep, os.DirFS(logDir)); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: CHAOS_KEEP_LOGS:", err)
		}
	}
	// The final sweep: every log of every process, whatever test wrote it.
	if leaks := scanDir(logDir); len(leaks) > 0 {
		for _, l := range leaks {
			fmt.Fprintln(os.Stderr, "chaos: SECRET IN LOG:", l)
		}
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: goroutines survived the tests:", err)
			code = 1
		}
	}
	return code
}

// ---------------------------------------------------------------------------
// Secrets and log scanning

// jwtPattern matches any JWT (header and claims are base64url JSON objects).
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ`)

var (
	secretsMu sync.Mutex
	secrets   = map[string]string{ // value → what it is
		accessKey: "access key",
		otherKey:  "access key",
	}
)

// addSecret registers a value that must never appear in a log.
func addSecret(value, what string) {
	if len(value) < 8 {
		panic("addSecret: value too short to scan for: " + what)
	}
	secretsMu.Lock()
	secrets[value] = what
	secretsMu.Unlock()
}

// scanLog returns one line per secret found in data (never the secret itself).
func scanLog(name string, data []byte) []string {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		for v, what := range secrets {
			if bytes.Contains(b, []byte(v)) {
				found = append(found, fmt.Sprintf("%s:%d: %s", name, line, what))
			}
		}
		if jwtPattern.Match(b) {
			found = append(found, fmt.Sprintf("%s:%d: a JWT", name, line))
		}
	}
	return found
}

func scanDir(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []string{fmt.Sprintf("read %s: %v", dir, err)}
	}
	var found []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			found = append(found, fmt.Sprintf("read %s: %v", e.Name(), err))
			continue
		}
		found = append(found, scanLog(e.Name(), data)...)
	}
	return found
}

// logFile creates a file in logDir for one process (or in-process component)
// and registers a cleanup that scans it for secrets.
func logFile(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.CreateTemp(logDir, sanitize(t.Name()+"-"+name)+"-*.log")
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	t.Cleanup(func() {
		_ = f.Close()
		data, err := os.ReadFile(f.Name())
		if err != nil {
			t.Errorf("read log %s: %v", f.Name(), err)
			return
		}
		for _, leak := range scanLog(filepath.Base(f.Name()), data) {
			t.Errorf("secret in log: %s", leak)
		}
		if bytes.Contains(data, []byte("panic:")) || bytes.Contains(data, []byte("DATA RACE")) {
			t.Errorf("%s: the log shows a panic or a data race:\n%s", name, tail(data, 4000))
		}
	})
	return f
}

// fileLogger is a debug-level JSON slog.Logger writing to a scanned log file.
func fileLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(logFile(t, name), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// TestLogScanFindsSecrets proves the scanner that guards every other test
// can fail: planted secrets are reported, by kind, without the value.
func TestLogScanFindsSecrets(t *testing.T) {
	t.Parallel()
	conn := "Endpoint=http://127.0.0.1:1;AccessKey=" + accessKey + ";Version=1.0;"
	cases := []struct {
		name, line, want string
	}{
		{"access key", `level=INFO msg=x key=` + accessKey, "access key"},
		{"connection string", `msg=x conn="` + conn + `"`, "access key"},
		{"jwt", `msg=x auth="Bearer eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ4In0.sig"`, "a JWT"},
		{"clean", `level=INFO msg="bridge running" endpoint=http://127.0.0.1:1`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			found := scanLog("planted", []byte("first line\n"+c.line+"\n"))
			if c.want == "" {
				if len(found) != 0 {
					t.Fatalf("clean line reported: %v", found)
				}
				return
			}
			if len(found) == 0 || found[0] != "planted:2: "+c.want {
				t.Fatalf("scan = %v, want planted:2: %s", found, c.want)
			}
			for _, f := range found {
				if bytes.Contains([]byte(f), []byte(accessKey)) {
					t.Fatalf("the report repeats the secret: %s", f)
				}
			}
		})
	}
}
