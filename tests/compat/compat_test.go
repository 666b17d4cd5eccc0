// Package compat runs the official Azure Web PubSub npm SDKs (@azure/web-pubsub for the service side,
// @azure/web-pubsub-client for the client side) against the in-process emulator. The test skips, with a message,
// when node or npm is missing or the npm registry cannot be reached.
package compat

import (
	"github.com/wps-bridge/bridge/tests/testkit"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/emulator"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Pinned SDK versions (webpubsub-api.md is written against these).
var sdkPackages = map[string]string{"@azure/web-pubsub": "1.2.0", "@azure/web-pubsub-client": "1.1.0"}

// installSDKs installs the pinned packages into a cache directory (reused across runs) and returns it.
func installSDKs(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm not found in PATH; skipping the SDK compatibility test")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "wps-bridge-compat")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create npm cache dir: %v", err)
	}
	if installed(dir) {
		return dir
	}
	pkgJSON := filepath.Join(dir, "package.json")
	if _, err := os.Stat(pkgJSON); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(pkgJSON, []byte(`{"name":"wps-bridge-compat","private":true}`+"\n"), 0o644); err != nil {
			t.Fatalf("write package.json: %v", err)
		}
	}
	args := []string{"install", "--no-audit", "--no-fund"}
	for name, version := range sdkPackages {
		args = append(args, name+"@"+version)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		text := string(out)
		for _, sign := range []string{"ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET", "network"} {
			if strings.Contains(text, sign) {
				t.Skipf("npm install failed for lack of network (%s); skipping:\n%s", sign, tail(text))
			}
		}
		t.Fatalf("npm install: %v\n%s", err, tail(text))
	}
	if !installed(dir) {
		t.Fatalf("npm install succeeded but the pinned packages are not in %s", dir)
	}
	return dir
}

func installed(dir string) bool {
	for name, version := range sdkPackages {
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", filepath.FromSlash(name), "package.json"))
		if err != nil {
			return false
		}
		var pkg struct{ Version string }
		if json.Unmarshal(b, &pkg) != nil || pkg.Version != version {
			return false
		}
	}
	return true
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

type message struct {
	Kind       string `json:"kind"`
	Group      string `json:"group,omitempty"`
	FromUserID string `json:"fromUserId,omitempty"`
	DataType   string `json:"dataType"`
	Data       any    `json:"data"`
}

func TestOfficialSDKs(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found in PATH; skipping the SDK compatibility test")
	}
	dir := installSDKs(t)
	script, err := os.ReadFile("compat.mjs")
	if err != nil {
		t.Fatalf("read compat.mjs: %v", err)
	}
	// ES modules resolve packages relative to the script, so the script runs from the install directory.
	scriptPath := filepath.Join(dir, "compat.mjs")
	if err := os.WriteFile(scriptPath, script, 0o644); err != nil {
		t.Fatalf("copy compat.mjs: %v", err)
	}

	e, base := testkit.StartEmulator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, scriptPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WPS_CONNECTION_STRING="+emulator.ConnectionString(base, emulator.DevAccessKey), "WPS_HUB=compat")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	var res struct {
		Error                      string    `json:"error"`
		ClientURLPath              string    `json:"clientUrlPath"`
		Connected                  bool      `json:"connected"`
		ConnectedUserID            string    `json:"connectedUserId"`
		JoinedGroup                bool      `json:"joinedGroup"`
		AutoGroupExists            bool      `json:"autoGroupExists"`
		Received                   []message `json:"received"`
		RecoveredConnectionID      bool      `json:"recoveredConnectionId"`
		DisconnectedDuringRecovery bool      `json:"disconnectedDuringRecovery"`
		ConnectedEvents            int       `json:"connectedEvents"`
		GroupExists                bool      `json:"groupExists"`
		MissingGroupExists         bool      `json:"missingGroupExists"`
		UserExists                 bool      `json:"userExists"`
		MissingUserExists          bool      `json:"missingUserExists"`
		ConnectionExists           bool      `json:"connectionExists"`
		ExtraAfterAdd              bool      `json:"extraAfterAdd"`
		ExtraMembers               []any     `json:"extraMembers"`
		ExtraAfterRemove           bool      `json:"extraAfterRemove"`
		UserGroupAfterAdd          bool      `json:"userGroupAfterAdd"`
		UserGroupAfterRemove       bool      `json:"userGroupAfterRemove"`
		BulkAfterAdd               bool      `json:"bulkAfterAdd"`
		BulkAfterRemove            bool      `json:"bulkAfterRemove"`
		RoomAfterRemoveAll         bool      `json:"roomAfterRemoveAll"`
		HasPermissionAfterGrant    bool      `json:"hasPermissionAfterGrant"`
		HasJoinAfterRevoke         bool      `json:"hasJoinAfterRevoke"`
		ConnectionExistsAfterClose bool      `json:"connectionExistsAfterClose"`
		DisconnectedMessage        string    `json:"disconnectedMessage"`
		CloseOpsOK                 bool      `json:"closeOpsOk"`
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("node: %v; output is not JSON: %v\nstdout:\n%s\nstderr:\n%s", runErr, err, stdout.String(), tail(stderr.String()))
	}
	if runErr != nil || res.Error != "" {
		t.Fatalf("node: %v\nscript error: %s\nstderr:\n%s", runErr, res.Error, tail(stderr.String()))
	}

	checks := []struct {
		name      string
		got, want any
	}{
		{"client URL path", res.ClientURLPath, "/client/hubs/compat"},
		{"connected", res.Connected, true},
		{"connected userId", res.ConnectedUserID, "alice"},
		{"joined group", res.JoinedGroup, true},
		{"token group auto-joined", res.AutoGroupExists, true},
		{"same connection id after recovery", res.RecoveredConnectionID, true},
		{"disconnected event during recovery", res.DisconnectedDuringRecovery, false},
		{"connected events", res.ConnectedEvents, 1},
		{"groupExists(room)", res.GroupExists, true},
		{"groupExists(missing)", res.MissingGroupExists, false},
		{"userExists(alice)", res.UserExists, true},
		{"userExists(bob)", res.MissingUserExists, false},
		{"connectionExists", res.ConnectionExists, true},
		{"group after addConnection", res.ExtraAfterAdd, true},
		{"listConnections", res.ExtraMembers, []any{"alice"}},
		{"group after removeConnection", res.ExtraAfterRemove, false},
		{"group after addUser", res.UserGroupAfterAdd, true},
		{"group after removeUser", res.UserGroupAfterRemove, false},
		{"group after addConnectionsToGroups", res.BulkAfterAdd, true},
		{"group after removeConnectionsFromGroups", res.BulkAfterRemove, false},
		{"room after removeUserFromAllGroups", res.RoomAfterRemoveAll, false},
		{"hasPermission after grant", res.HasPermissionAfterGrant, true},
		{"hasPermission(joinLeaveGroup) after revoke", res.HasJoinAfterRevoke, false},
		{"connectionExists after close", res.ConnectionExistsAfterClose, false},
		{"disconnected message", res.DisconnectedMessage, "compat done"},
		{"close operations", res.CloseOpsOK, true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	wantMessages := []message{
		{Kind: "server", DataType: "json", Data: map[string]any{"hello": "all"}},
		{Kind: "server", DataType: "text", Data: "text to all"},
		{Kind: "server", DataType: "json", Data: map[string]any{"g": 1.0}},
		{Kind: "server", DataType: "text", Data: "group text"},
		{Kind: "server", DataType: "binary", Data: "AQID"},
		{Kind: "server", DataType: "json", Data: map[string]any{"u": 1.0}},
		{Kind: "server", DataType: "text", Data: "conn text"},
		{Kind: "group", Group: "room", FromUserID: "alice", DataType: "text", Data: "from client"},
		{Kind: "group", Group: "room", FromUserID: "alice", DataType: "json", Data: map[string]any{"c": 1.0}},
		{Kind: "group", Group: "room", FromUserID: "alice", DataType: "binary", Data: "CQg="},
		{Kind: "server", DataType: "text", Data: "after drop"},
	}
	if !reflect.DeepEqual(res.Received, wantMessages) {
		got, _ := json.MarshalIndent(res.Received, "", "  ")
		t.Errorf("received messages:\n%s\nwant %d messages in order: server json/text to all, group json/text/binary, user json, connection text, then the client's echoed group text/json/binary, then the message sent across a dropped socket", got, len(wantMessages))
	}

	st := e.Stats()
	if st.Requests["SendToAll"] == 0 || st.Requests["SendToGroup"] == 0 || st.Requests["ListConnectionsInGroup"] == 0 || st.Rejected401 != 0 {
		t.Errorf("emulator stats %+v", st)
	}
}
