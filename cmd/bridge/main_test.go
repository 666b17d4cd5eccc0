package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/emulator"
	"github.com/wps-bridge/bridge/internal/wps"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runCLI runs the command line in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// syncBuffers: NATS connections log their close from their own
	// callback goroutine, which may still run as the command returns.
	var out, errOut syncBuffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValidate(t *testing.T) {
	t.Parallel()
	broken := filepath.Join("..", "..", "internal", "config", "testdata", "broken.yaml")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string // lines, in order; nil: stdout must be empty
		wantStderr string   // substring
	}{
		{
			name:     "repo bridge.yaml",
			args:     []string{"validate", "-c", filepath.Join("..", "..", "bridge.yaml")},
			wantCode: 0, wantStdout: []string{"config OK"},
		},
		{
			name:     "broken file lists every problem",
			args:     []string{"validate", "--config", broken},
			wantCode: 1,
			wantStdout: []string{
				broken + `: webpubsub.hubb: unknown key (did you mean "hub"?)`,
				broken + `: webpubsub.timeout: duration "30" needs a unit, e.g. "30s" or "30ms"`,
				broken + ": webpubsub.accessKey: secrets may not be written in the file: use ${ENV_VAR} or the matching *File key",
				broken + ": sources[0].url: environment variable NATS_URL is not set (write ${NATS_URL:-} to allow empty)",
				broken + ": webpubsub.endpoint: required with accessKey, accessKeyFile or aad",
				broken + ": sources[0].durable: required",
				broken + `: sources[1].type: must be one of nats, jetstream, kafka, got "rabbitmq"`,
				broken + `: sources[2].name: duplicate: "orders" is also sources[0]`,
				broken + ": sources[2].group: required",
				broken + `: routes[0].source: no source is named "missing"`,
				broken + `: routes[0].action: unknown action "sendToEveryone"`,
				broken + ": routes[0].ttl: must be 0..300 seconds, got 600",
				broken + ": retry.max: must be at least retry.initial (1m0s), got 1s",
				broken + `: deadLetter.topic: loop: "orders" is consumed by orders (sources[2].topics[0])`,
				broken + `: log.level: must be one of debug, info, warn, error, got "loud"`,
			},
			wantStderr: "bridge: " + broken + ": 15 problems\n",
		},
		{
			name:       "missing file",
			args:       []string{"validate", "-c", filepath.Join(t.TempDir(), "nope.yaml")},
			wantCode:   1,
			wantStderr: "no such file or directory",
		},
		{
			name:       "unknown flag",
			args:       []string{"validate", "--conf", "x"},
			wantCode:   1,
			wantStderr: "unknown flag: --conf (see 'bridge validate --help')",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if strings.Contains(tt.name, "broken") {
				// The broken file relies on NATS_URL being unset.
				if _, set := os.LookupEnv("NATS_URL"); set {
					t.Skip("NATS_URL is set in the environment")
				}
			}
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr: %s)", code, tt.wantCode, stderr)
			}
			var lines []string
			if stdout != "" {
				lines = strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			}
			if !slices.Equal(lines, tt.wantStdout) {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, strings.Join(tt.wantStdout, "\n"))
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			}
			if tt.wantCode != 0 && strings.Count(stderr, "bridge: ") != 1 {
				t.Errorf("the error is not printed exactly once: %q", stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	// Not parallel: sets the ldflags variable.
	old := version
	t.Cleanup(func() { version = old })
	for _, tt := range []struct{ ldflags, want string }{
		{"", "bridge (devel) ("},
		{"v1.2.3", "bridge v1.2.3 ("},
	} {
		version = tt.ldflags
		for _, args := range [][]string{{"version"}, {"--version"}} {
			code, stdout, _ := runCLI(t, args...)
			if code != 0 || !strings.HasPrefix(stdout, tt.want) || !strings.Contains(stdout, runtime.Version()) {
				t.Errorf("%v with version=%q: exit %d, stdout %q; want prefix %q and the Go version", args, tt.ldflags, code, stdout, tt.want)
			}
		}
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	cs := emulator.ConnectionString("http://127.0.0.1:8080", emulator.DevAccessKey)
	tests := []struct {
		name      string
		args      []string
		wantBase  string
		wantSub   string
		wantRoles []string
		wantGroup []string
		wantLife  time.Duration
	}{
		{
			name: "connection string, groups, roles",
			args: []string{
				"token", "--connection-string", cs, "--hub", "chat", "--user", "alice",
				"--group", "room1", "--group", "room2",
				"--role", "webpubsub.joinLeaveGroup.room1", "--role", "webpubsub.sendToGroup.room1",
				"--lifetime", "2h",
			},
			wantBase:  "ws://127.0.0.1:8080/client/hubs/chat",
			wantSub:   "alice",
			wantRoles: []string{"webpubsub.joinLeaveGroup.room1", "webpubsub.sendToGroup.room1"},
			wantGroup: []string{"room1", "room2"},
			wantLife:  2 * time.Hour,
		},
		{
			name:     "config file gives credentials and hub; mqtt",
			args:     []string{"token", "-c", filepath.Join("..", "..", "bridge.yaml"), "--protocol", "MQTT"},
			wantBase: "ws://127.0.0.1:8080/clients/mqtt/hubs/chat",
			wantLife: time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if strings.Contains(tt.name, "config") {
				if _, set := os.LookupEnv("WEBPUBSUB_CONNECTION_STRING"); set {
					t.Skip("WEBPUBSUB_CONNECTION_STRING is set in the environment")
				}
			}
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit code %d: %s", code, stderr)
			}
			u, err := url.Parse(strings.TrimSpace(stdout))
			if err != nil {
				t.Fatalf("output %q is not a URL: %v", stdout, err)
			}
			if base := u.Scheme + "://" + u.Host + u.Path; base != tt.wantBase {
				t.Errorf("base URL = %q, want %q", base, tt.wantBase)
			}
			claims := jwt.MapClaims{}
			_, err = jwt.ParseWithClaims(u.Query().Get("access_token"), claims, func(*jwt.Token) (any, error) {
				return []byte(emulator.DevAccessKey), nil
			}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("http://127.0.0.1:8080/"+strings.SplitN(u.Path, "/", 2)[1]))
			if err != nil {
				t.Fatalf("token does not verify with the emulator key and audience: %v", err)
			}
			if sub, _ := claims.GetSubject(); sub != tt.wantSub {
				t.Errorf("sub = %q, want %q", sub, tt.wantSub)
			}
			if got := stringList(claims["role"]); !slices.Equal(got, tt.wantRoles) {
				t.Errorf("role = %v, want %v", got, tt.wantRoles)
			}
			if got := stringList(claims["webpubsub.group"]); !slices.Equal(got, tt.wantGroup) {
				t.Errorf("webpubsub.group = %v, want %v", got, tt.wantGroup)
			}
			iat, _ := claims.GetIssuedAt()
			exp, _ := claims.GetExpirationTime()
			if iat == nil || exp == nil || exp.Sub(iat.Time) != tt.wantLife {
				t.Errorf("exp - iat = %v, want %v", exp.Sub(iat.Time), tt.wantLife)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	cs := emulator.ConnectionString("http://127.0.0.1:8080", emulator.DevAccessKey)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no hub", []string{"token", "--connection-string", cs}, "--hub is required"},
		{"bad hub", []string{"token", "--connection-string", cs, "--hub", "9x"}, "--hub:"},
		{"bad protocol", []string{"token", "--connection-string", cs, "--hub", "chat", "--protocol", "stomp"}, `--protocol must be default, mqtt or socketio, got "stomp"`},
		{"bad connection string", []string{"token", "--connection-string", "Endpoint=http://x;", "--hub", "chat"}, "missing AccessKey"},
		{"both sources", []string{"token", "--connection-string", cs, "-c", "bridge.yaml"}, "none of the others can be"},
		{"no config", []string{"token", "-c", filepath.Join(t.TempDir(), "none.yaml")}, "pass --connection-string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != 1 || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, and %q", code, stdout, stderr, tt.want)
			}
			if strings.Contains(stderr, emulator.DevAccessKey) {
				t.Errorf("stderr leaks the access key")
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the command's and the test's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEmulatorCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	outR, outW := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"emulator", "--listen", "127.0.0.1:0", "--latency", "1ms"}, outW, &stderr)
		outW.Close()
		done <- code
	}()

	// The banner: listen URL, connection string, inspector URL.
	sc := bufio.NewScanner(outR)
	var banner []string
	for len(banner) < 3 && sc.Scan() {
		banner = append(banner, sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }() // drain the rest until the pipe closes
	if len(banner) < 3 {
		cancel()
		t.Fatalf("banner = %q (exit %d, stderr %s)", banner, <-done, stderr.String())
	}
	m := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)$`).FindStringSubmatch(banner[0])
	if m == nil {
		t.Fatalf("first line %q does not give the listen URL", banner[0])
	}
	base := m[1]
	wantCS := emulator.ConnectionString(base, emulator.DevAccessKey)
	if got := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(banner[1]), "connection string:")); got != wantCS {
		t.Errorf("connection string line %q, want %q", banner[1], wantCS)
	}
	if !strings.HasSuffix(banner[2], base+"/") {
		t.Errorf("inspector line %q, want %s/", banner[2], base)
	}

	// The inspector page answers, and the printed connection string signs
	// requests the emulator accepts.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("inspector: %s", resp.Status)
	}
	client, err := wps.NewClientFromConnectionString(wantCS, wps.WithInsecureHTTP(true), wps.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	h, err := client.Hub("chat")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SendToAll(ctx, []byte(`{"hello":1}`), wps.ContentJSON, nil); err != nil {
		t.Errorf("SendToAll with the printed connection string: %v", err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code after Ctrl-C = %d, want 0 (stderr: %s)", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("emulator command did not stop after its context was cancelled")
	}
}

func TestEmulatorCommandErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad fault rate", []string{"emulator", "--listen", "127.0.0.1:0", "--rate-429", "2"}, "emulator faults"},
		{"bad listen address", []string{"emulator", "--listen", "not-an-address"}, "emulator: listen tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runCLI(t, tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
		})
	}
}

func TestHelpEverywhere(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"", "run", "dev", "validate", "token", "emulator", "publish", "dlq replay", "version"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			args := append(strings.Fields(cmd), "--help")
			code, stdout, _ := runCLI(t, args...)
			if code != 0 || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "Usage:") {
				t.Errorf("%v: exit %d, output lacks usage or examples:\n%s", args, code, stdout)
			}
		})
	}
}

func stringList(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, s := range v {
			str, _ := s.(string)
			out = append(out, str)
		}
	}
	return out
}

func TestLoggerFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		app       app
		cfg       config.Log
		wantDebug bool
		wantJSON  bool
	}{
		{"config wins without flags", app{logLevel: "info", logFormat: "text"}, config.Log{Level: "debug", Format: "json"}, true, true},
		{"flags win when given", app{logLevel: "warn", levelSet: true, logFormat: "text", formatSet: true}, config.Log{Level: "debug", Format: "json"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tt.app.stderr = &buf
			logger, err := tt.app.loggerFor(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := logger.Enabled(t.Context(), slog.LevelDebug); got != tt.wantDebug {
				t.Errorf("debug enabled = %v, want %v", got, tt.wantDebug)
			}
			logger.Error("x")
			if got := strings.HasPrefix(buf.String(), "{"); got != tt.wantJSON {
				t.Errorf("JSON output = %v, want %v: %q", got, tt.wantJSON, buf.String())
			}
		})
	}
	if code, _, stderr := runCLI(t, "--log-level", "loud", "version"); code != 1 || !strings.Contains(stderr, `log level must be debug, info, warn or error, got "loud"`) {
		t.Errorf("bad --log-level: exit %d, stderr %q", code, stderr)
	}
}
