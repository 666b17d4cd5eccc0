package main

import (
	"context"
	"fmt"
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
