package sourcetest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServer starts an embedded nats-server on a random loopback port with
// JetStream stored under t.TempDir() (opts may add auth or TLS; nil is
// plain) and shuts it down when the test ends. Use s.ClientURL() to connect.
func NATSServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts == nil {
		opts = &server.Options{}
	}
	opts.Host = "127.0.0.1"
	opts.Port = -1
	opts.HTTPPort = 0
	opts.Cluster.Port = 0
	opts.NoLog = true
	opts.NoSigs = true
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats-server not ready after 10s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}
