package main

import (
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/wps-bridge/bridge/internal/emulator"
)

type emulatorFlags struct {
	listen     string
	accessKey  string
	rate429    float64
	rate503    float64
	retryAfter time.Duration
	latency    time.Duration
}

func newEmulatorCmd(a *app) *cobra.Command {
	var f emulatorFlags
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run a local Azure Web PubSub emulator (REST, WebSocket clients, inspector)",
		Long: `emulator serves the Web PubSub data-plane REST API, the client WebSocket
endpoint and an inspector page on one address, until Ctrl-C. It prints the
connection string to give the bridge and the inspector URL to watch.

Faults can be injected to see the bridge retry: a share of REST calls answer
429 or 503 (with Retry-After), and every call can be delayed.`,
		Example: `  bridge emulator
  bridge emulator --listen 0.0.0.0:8080 --access-key "$EMULATOR_KEY"
  bridge emulator --rate-429 0.2 --retry-after 1s --latency 50ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := f.accessKey
			if key == "" {
				key = emulator.DevAccessKey
			}
			emu, err := emulator.New(emulator.Config{
				AccessKey: key,
				Logger:    a.logger,
				Faults: emulator.Faults{
					Rate429:    f.rate429,
					Rate503:    f.rate503,
					RetryAfter: f.retryAfter,
					Latency:    f.latency,
				},
			})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", f.listen)
			if err != nil {
				return fmt.Errorf("emulator: %w", err)
			}
			base := baseURL(ln.Addr())
			_, err = fmt.Fprintf(a.stdout, `Web PubSub emulator listening on %s
  connection string: %s
  inspector:         %s/
  client URL:        bridge token --connection-string '%[2]s' --hub chat --user alice
Press Ctrl-C to stop.
`, base, emulator.ConnectionString(base, key), base)
			if err != nil {
				_ = ln.Close() // the write error is the one to report
				return err
			}
			return emu.Serve(cmd.Context(), ln)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	fl.StringVar(&f.accessKey, "access-key", "", "access key clients must sign with (default: the public development key)")
	fl.Float64Var(&f.rate429, "rate-429", 0, "share of REST calls answered 429 Too Many Requests (0..1)")
	fl.Float64Var(&f.rate503, "rate-503", 0, "share of REST calls answered 503 Service Unavailable (0..1)")
	fl.DurationVar(&f.retryAfter, "retry-after", 0, "Retry-After sent with injected 429/503 answers")
	fl.DurationVar(&f.latency, "latency", 0, "delay added to every REST call")
	return cmd
}

// baseURL is the http URL of a listener; an unspecified host (0.0.0.0, ::)
// is shown as 127.0.0.1, which reaches it from this machine.
func baseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
