package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wps-bridge/bridge/internal/source/sourcetest"
)

// jetStreamConfig writes a config with a JetStream source (stream WPS on
// wps.>) and a JetStream dead letter (WPS_DLQ on dlq.wps) on natsURL, and
// creates both streams so the test can inspect them.
func jetStreamConfig(t *testing.T, natsURL string) (path string, js jetstream.JetStream) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "bridge.yaml")
	cfg := fmt.Sprintf(`webpubsub:
  connectionString: ${TEST_UNSET_CS:-Endpoint=http://127.0.0.1:1;AccessKey=test-key;Version=1.0;}
  hub: chat
  allowInsecureHTTP: true
sources:
  - name: cmds
    type: jetstream
    url: %s
    stream: WPS
    subjects: ["wps.>"]
    durable: wps-bridge
deadLetter:
  type: jetstream
  stream: WPS_DLQ
  subject: dlq.wps
`, natsURL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for name, subj := range map[string]string{"WPS": "wps.>", "WPS_DLQ": "dlq.wps"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}}); err != nil {
			t.Fatal(err)
		}
	}
	return path, js
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		out = append(out, m)
	}
	return out
}

func TestPublish(t *testing.T) {
	ns := sourcetest.NATSServer(t, nil)
	cfg, js := jetStreamConfig(t, ns.ClientURL())
	good := `{"actionName":"sendToGroup","group":"demo","dataType":"text","data":"hello"}`

	code, stdout, stderr := runCLI(t, "publish", "-c", cfg, "--subject", "wps.demo", "-H", "x-app=1", good)
	if code != 0 {
		t.Fatalf("publish: exit %d, stderr %s", code, stderr)
	}
	if !strings.Contains(stdout, `published 1 message to jetstream wps.demo (source "cmds")`) {
		t.Errorf("stdout = %q", stdout)
	}

	// An invalid envelope is refused before it reaches the broker, naming the field.
	code, _, stderr = runCLI(t, "publish", "-c", cfg, "--subject", "wps.demo", `{"actionName":"sendToGroup","group":"demo","ttl":301,"data":1}`)
	if code != 1 || !strings.Contains(stderr, "ttl: must be 0..300") {
		t.Errorf("invalid envelope: exit %d, stderr %q; want 1 and the ttl problem", code, stderr)
	}
	// Header mode is a raw payload: no envelope check.
	code, _, stderr = runCLI(t, "publish", "-c", cfg, "--subject", "wps.raw", "-H", "wps-action=sendToGroup", "-H", "wps-group=demo", "not json")
	if code != 0 {
		t.Fatalf("header mode: exit %d, stderr %s", code, stderr)
	}
	// A wildcard subject cannot be published to.
	if code, _, stderr = runCLI(t, "publish", "-c", cfg, good); code != 1 || !strings.Contains(stderr, "--subject is required") {
		t.Errorf("no subject: exit %d, stderr %q", code, stderr)
	}

	msgs := streamMsgs(t, js, "WPS")
	if len(msgs) != 2 {
		t.Fatalf("stream WPS holds %d messages, want 2", len(msgs))
	}
	if msgs[0].Subject != "wps.demo" || string(msgs[0].Data) != good || msgs[0].Header.Get("x-app") != "1" {
		t.Errorf("first message = %s %q %v", msgs[0].Subject, msgs[0].Data, msgs[0].Header)
	}
	if msgs[1].Subject != "wps.raw" || string(msgs[1].Data) != "not json" || msgs[1].Header.Get("wps-action") != "sendToGroup" {
		t.Errorf("second message = %s %q %v", msgs[1].Subject, msgs[1].Data, msgs[1].Header)
	}
}

func TestDLQReplay(t *testing.T) {
	ns := sourcetest.NATSServer(t, nil)
	cfg, js := jetStreamConfig(t, ns.ClientURL())
	park := func(body, class, action string) {
		t.Helper()
		m := nats.NewMsg("dlq.wps")
		m.Data = []byte(body)
		m.Header.Set("x-app", "kept")
		m.Header.Set("wps-bridge-error", "wps: sendToGroup: 503 Service Unavailable")
		m.Header.Set("wps-bridge-error-class", class)
		m.Header.Set("wps-bridge-action", action)
		m.Header.Set("wps-bridge-source", "cmds")
		m.Header.Set("wps-bridge-origin", "subject=wps.back")
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	park(`{"n":1}`, "transient", "sendToGroup")
	park(`{"n":2}`, "invalid", "sendToUser")
	park(`{"n":3}`, "transient", "sendToUser")

	// A dry run lists the matching messages and moves nothing.
	code, stdout, stderr := runCLI(t, "dlq", "replay", "--dry-run", "-c", cfg, "--class", "transient")
	if code != 0 {
		t.Fatalf("dry run: exit %d, stderr %s", code, stderr)
	}
	if !strings.Contains(stdout, "seq=1\ttransient\tsendToGroup\tcmds → wps.back") || !strings.Contains(stdout, "seq=3") ||
		strings.Contains(stdout, "seq=2") || !strings.Contains(stdout, "read 3, matched 2, would replay 2") {
		t.Errorf("dry-run listing:\n%s", stdout)
	}
	if n := len(streamMsgs(t, js, "WPS_DLQ")); n != 3 {
		t.Fatalf("after the dry run the dead letter holds %d, want 3", n)
	}

	// Replay the transient sendToUser one: it moves back to its origin without
	// the wps-bridge-* headers and leaves the dead letter.
	code, stdout, stderr = runCLI(t, "dlq", "replay", "-c", cfg, "--class", "transient", "--action", "sendToUser", "--rate", "0")
	if code != 0 {
		t.Fatalf("replay: exit %d, stderr %s", code, stderr)
	}
	if !strings.Contains(stdout, "read 3, matched 1, replayed 1") {
		t.Errorf("replay summary:\n%s", stdout)
	}
	back := streamMsgs(t, js, "WPS")
	if len(back) != 1 || back[0].Subject != "wps.back" || string(back[0].Data) != `{"n":3}` {
		t.Fatalf("replayed messages = %v", back)
	}
	if back[0].Header.Get("x-app") != "kept" {
		t.Errorf("the producer's header was lost: %v", back[0].Header)
	}
	for k := range back[0].Header {
		if strings.HasPrefix(strings.ToLower(k), "wps-bridge-") {
			t.Errorf("replayed message still carries %s", k)
		}
	}
	left := streamMsgs(t, js, "WPS_DLQ")
	if len(left) != 2 || string(left[0].Data) != `{"n":1}` || string(left[1].Data) != `{"n":2}` {
		t.Errorf("dead letter after replay = %d messages", len(left))
	}
}

// A dead letter whose origin names no configured source, or a source of the
// other broker family, stays parked: it is never sent to a guessed broker.
// Regression: a missing wps-bridge-source header used to pick the first source.
func TestDLQReplayRefusesAnOriginItCannotPlace(t *testing.T) {
	ns := sourcetest.NATSServer(t, nil)
	cfg, js := jetStreamConfig(t, ns.ClientURL())
	tests := []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"no source header", map[string]string{"wps-bridge-origin": "subject=wps.back"}, "no wps-bridge-source header"},
		{"unknown source", map[string]string{"wps-bridge-source": "gone", "wps-bridge-origin": "subject=wps.back"},
			`origin source "gone" is not in the configuration`},
		{"kafka origin on a NATS source", map[string]string{"wps-bridge-source": "cmds", "wps-bridge-origin": "topic=t partition=0 offset=1"},
			`origin "t" does not fit source "cmds" of type jetstream`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := nats.NewMsg("dlq.wps")
			m.Data = []byte(`{"n":1}`)
			for k, v := range tt.headers {
				m.Header.Set(k, v)
			}
			if _, err := js.PublishMsg(t.Context(), m); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLI(t, "dlq", "replay", "-c", cfg, "--rate", "0")
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
			if n := len(streamMsgs(t, js, "WPS")); n != 0 {
				t.Errorf("%d message(s) published to WPS, want none", n)
			}
			left := streamMsgs(t, js, "WPS_DLQ")
			if len(left) != 1 {
				t.Fatalf("dead letter holds %d messages, want the one parked", len(left))
			}
			dl, err := js.Stream(t.Context(), "WPS_DLQ")
			if err != nil {
				t.Fatal(err)
			}
			if err := dl.DeleteMsg(t.Context(), left[0].Sequence); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDLQReplayNeedsAStoredDeadLetter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	cfg := `webpubsub:
  connectionString: ${TEST_UNSET_CS:-Endpoint=http://127.0.0.1:1;AccessKey=test-key;Version=1.0;}
  hub: chat
  allowInsecureHTTP: true
sources:
  - {name: cmds, type: nats, url: "nats://127.0.0.1:1", subjects: ["wps.>"]}
deadLetter: {type: nats, subject: dlq.wps}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "dlq", "replay", "-c", path)
	if code != 1 || !strings.Contains(stderr, "core NATS keeps no messages") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestPublishRefusesFlagsItWouldIgnore(t *testing.T) {
	t.Parallel()
	// Nothing listens on these addresses: each case must fail before connecting.
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	writeConfig(t, path, `webpubsub:
  connectionString: ${TEST_UNSET_CS:-Endpoint=http://127.0.0.1:1;AccessKey=test-key;Version=1.0;}
  hub: chat
  allowInsecureHTTP: true
sources:
  - {name: js, type: jetstream, url: "nats://127.0.0.1:1", stream: WPS, subjects: ["wps.x"], durable: d}
  - {name: k, type: kafka, brokers: ["127.0.0.1:1"], topics: [t], group: g}
`)
	good := `{"actionName":"sendToAll","data":1}`
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"count 0", []string{"--count", "0", good}, "--count must be at least 1, got 0"},
		{"negative count", []string{"--count=-2", good}, "--count must be at least 1, got -2"},
		{"topic on a NATS source", []string{"--topic", "t", good}, `--topic and --key are for Kafka: source "js" is jetstream`},
		{"key on a NATS source", []string{"--key", "k1", good}, `--topic and --key are for Kafka: source "js" is jetstream`},
		{"subject on a Kafka source", []string{"--source", "k", "--subject", "wps.x", good}, `--subject is for NATS: source "k" is kafka`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, append([]string{"publish", "-c", path}, tt.args...)...)
			if code != 1 || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, and %q", code, stdout, stderr, tt.want)
			}
		})
	}
}

// An unreachable NATS server is an error after connectTimeout, not a hang
// until Ctrl-C (regression).
func TestPublishGivesUpOnAnUnreachableBroker(t *testing.T) {
	// Not parallel: sets connectTimeout.
	old := connectTimeout
	connectTimeout = 300 * time.Millisecond
	t.Cleanup(func() { connectTimeout = old })
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	writeConfig(t, path, fmt.Sprintf(`webpubsub:
  connectionString: ${TEST_UNSET_CS:-Endpoint=http://127.0.0.1:1;AccessKey=test-key;Version=1.0;}
  hub: chat
  allowInsecureHTTP: true
sources:
  - {name: n, type: nats, url: "nats://%s", subjects: ["wps.x"]}
`, closedAddr(t)))
	start := time.Now()
	code, _, stderr := runCLI(t, "publish", "-c", path, `{"actionName":"sendToAll","data":1}`)
	if code != 1 || !strings.Contains(stderr, `connect to source "n"`) || !strings.Contains(stderr, "deadline exceeded") {
		t.Errorf("exit %d, stderr %q; want 1 and a connect timeout", code, stderr)
	}
	// runCLI cancels after 30s: well before that means connectTimeout applied.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("publish took %v to give up", d)
	}
}

func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// closedAddr returns a loopback address that nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
