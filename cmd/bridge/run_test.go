package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wps-bridge/bridge/internal/source/sourcetest"
)

// A busy http.listen is reported, and nothing stays connected: the dead
// letter connection New opens would otherwise leak (goleak in TestMain
// fails the package). Regression.
func TestRunReportsABusyListenAddress(t *testing.T) {
	t.Parallel()
	ns := sourcetest.NATSServer(t, nil)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	writeConfig(t, path, fmt.Sprintf(`webpubsub:
  connectionString: ${TEST_UNSET_CS:-Endpoint=http://127.0.0.1:1;AccessKey=test-key;Version=1.0;}
  allowInsecureHTTP: true
sources:
  - {name: cmds, type: jetstream, url: %q, stream: WPS, subjects: ["wps.>"], durable: d}
deadLetter: {type: jetstream, stream: WPS_DLQ, createStream: true, subject: dlq.wps}
http: {listen: %q}
`, ns.ClientURL(), busy.Addr().String()))

	code, _, stderr := runCLI(t, "run", "-c", path)
	if code != 1 || !strings.Contains(stderr, "bridge: http.listen: listen tcp "+busy.Addr().String()) {
		t.Errorf("exit %d, stderr %q; want 1 and the http.listen error", code, stderr)
	}
}
