package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/emulator"
	"github.com/wps-bridge/bridge/internal/wps"
)

// DevOptions configures the dev environment. Zero values are usable.
type DevOptions struct {
	// Config is the bridge.yaml content; nil uses DefaultDevConfig. Its
	// ${NATS_URL} and ${WEBPUBSUB_CONNECTION_STRING} are set to the embedded
	// servers, whatever the environment says.
	Config []byte
	// NATSAddr, EmulatorAddr and HTTPAddr are the preferred listen addresses;
	// a busy one falls back to a random port on the same host. Defaults:
	// 127.0.0.1:4222, 127.0.0.1:8080, 127.0.0.1:9464.
	NATSAddr, EmulatorAddr, HTTPAddr string
	// StoreDir holds JetStream's files; "" uses a temporary directory that is
	// removed at exit.
	StoreDir string
	// Logger receives every component's logs; nil discards them.
	Logger *slog.Logger
}

// DevInfo tells where the dev environment listens.
type DevInfo struct {
	NATSURL          string // embedded nats-server (JetStream on)
	EmulatorURL      string // the emulator: REST, /client WebSocket, inspector at /
	ConnectionString string // for SDKs and `bridge token`
	OpsURL           string // /metrics, /healthz, /readyz
	Hub              string // the default hub of the config
	ClientURL        string // a WebSocket URL for user "demo" in group "demo"
	Bridge           *Bridge
}

// DefaultDevConfig is the configuration `bridge dev` uses when no bridge.yaml
// is found: a JetStream source with a dead letter, envelopes on wps.>.
var DefaultDevConfig = []byte(`webpubsub:
  connectionString: ${WEBPUBSUB_CONNECTION_STRING}
  hub: chat
  allowInsecureHTTP: true
sources:
  - name: cmds
    type: jetstream
    url: ${NATS_URL}
    stream: WPS
    createStream: true
    subjects: ["wps.>", "chat.>"]
    durable: wps-bridge
    createConsumer: true
routes:
  - match: "chat.*.msg"
    action: sendToGroup
    group: "{subject.1}"
    dataType: text
deadLetter:
  type: jetstream
  stream: WPS_DLQ
  createStream: true
  subject: dlq.wps
`)

// RunDev starts an embedded nats-server with JetStream, the Web PubSub
// emulator and a bridge wired to both, calls ready (if non-nil) once all of
// them accept work, and runs until ctx is cancelled. Everything it started is
// stopped before it returns; the error is nil after a clean stop.
func RunDev(ctx context.Context, opts DevOptions, ready func(DevInfo)) (err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	storeDir := opts.StoreDir
	if storeDir == "" {
		dir, err := os.MkdirTemp("", "wps-bridge-dev-")
		if err != nil {
			return fmt.Errorf("dev: store dir: %w", err)
		}
		defer os.RemoveAll(dir)
		storeDir = dir
	}

	ns, err := startNATS(or(opts.NATSAddr, "127.0.0.1:4222"), storeDir)
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	natsURL := ns.ClientURL()

	emu, err := emulator.New(emulator.Config{Logger: logger.With("component", "emulator")})
	if err != nil {
		return fmt.Errorf("dev: emulator: %w", err)
	}
	emuLn, err := listenPreferred(or(opts.EmulatorAddr, "127.0.0.1:8080"))
	if err != nil {
		return fmt.Errorf("dev: emulator: %w", err)
	}
	emuURL := "http://" + emuLn.Addr().String()
	connStr := emulator.ConnectionString(emuURL, emulator.DevAccessKey)

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	emuErr := make(chan error, 1)
	wg.Go(func() { emuErr <- emu.Serve(ctx, emuLn) })

	env := map[string]string{"NATS_URL": natsURL, "WEBPUBSUB_CONNECTION_STRING": connStr}
	cfg, err := config.Parse(or2(opts.Config, DefaultDevConfig), func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		return fmt.Errorf("dev: config: %w", err)
	}
	opsLn, err := listenPreferred(or(opts.HTTPAddr, "127.0.0.1:9464"))
	if err != nil {
		return fmt.Errorf("dev: operations endpoint: %w", err)
	}
	b, err := New(ctx, cfg, logger)
	if err != nil {
		opsLn.Close()
		return fmt.Errorf("dev: bridge: %w", err)
	}
	clientURL, err := demoClientURL(ctx, cfg.WebPubSub.Hub, connStr)
	if err != nil {
		opsLn.Close()
		return fmt.Errorf("dev: client url: %w", err)
	}
	bridgeErr := make(chan error, 1)
	wg.Go(func() { bridgeErr <- b.Run(ctx, opsLn) })

	if err := waitReady(ctx, b, bridgeErr); err != nil {
		return err
	}
	if ready != nil {
		ready(DevInfo{
			NATSURL: natsURL, EmulatorURL: emuURL, ConnectionString: connStr,
			OpsURL: "http://" + opsLn.Addr().String(), Hub: cfg.WebPubSub.Hub, ClientURL: clientURL, Bridge: b,
		})
	}
	select {
	case <-ctx.Done():
		cancel()
		wg.Wait()
		return errors.Join(ignoreClosed(<-bridgeErr), ignoreClosed(<-emuErr))
	case err := <-bridgeErr:
		return fmt.Errorf("dev: bridge stopped: %w", err)
	case err := <-emuErr:
		return fmt.Errorf("dev: emulator stopped: %w", err)
	}
}

func ignoreClosed(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// waitReady polls the bridge's readiness until it is ready, it fails, or ctx ends.
func waitReady(ctx context.Context, b *Bridge, runErr <-chan error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for b.Ready() != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-runErr:
			return fmt.Errorf("dev: bridge stopped before it was ready: %w", err)
		case <-deadline:
			return fmt.Errorf("dev: bridge not ready after 30s: %w", b.Ready())
		case <-tick.C:
		}
	}
	return nil
}

// demoClientURL signs a client URL for user "demo", joined to group "demo"
// and allowed to join, leave and send to any group.
func demoClientURL(ctx context.Context, hub, connStr string) (string, error) {
	c, err := wps.NewClientFromConnectionString(connStr)
	if err != nil {
		return "", err
	}
	h, err := c.Hub(hub)
	if err != nil {
		return "", err
	}
	access, err := h.GetClientAccessToken(ctx, &wps.TokenOptions{
		UserID: "demo", Groups: []string{"demo"}, Lifetime: 24 * time.Hour,
		Roles: []string{"webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"},
	})
	if err != nil {
		return "", err
	}
	return access.URL, nil
}

// startNATS runs an in-process nats-server with JetStream on addr, or on a
// random port of its host when addr is busy.
func startNATS(addr, storeDir string) (*server.Server, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dev: nats address %q: %w", addr, err)
	}
	if port == 0 {
		port = -1 // nats-server reads 0 as its default port, -1 as "pick one"
	} else if ln, err := net.Listen("tcp", addr); err != nil {
		port = -1 // busy: let the server pick
	} else {
		ln.Close()
	}
	ns, err := server.NewServer(&server.Options{
		Host: host, Port: port, JetStream: true, StoreDir: storeDir,
		NoSigs: true, NoLog: true, ServerName: "wps-bridge-dev",
	})
	if err != nil {
		return nil, fmt.Errorf("dev: nats-server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("dev: nats-server did not start within 10s")
	}
	return ns, nil
}

// listenPreferred listens on addr, or on a random port of its host when addr
// is busy.
func listenPreferred(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	host, _, splitErr := net.SplitHostPort(addr)
	if splitErr != nil {
		return nil, err
	}
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func or2(b, def []byte) []byte {
	if b == nil {
		return def
	}
	return b
}

// WebSocketURL turns an http(s) URL into ws(s).
func WebSocketURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	switch p.Scheme {
	case "http":
		p.Scheme = "ws"
	case "https":
		p.Scheme = "wss"
	}
	return p.String()
}
