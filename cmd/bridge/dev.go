package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	bridgeapp "github.com/wps-bridge/bridge/internal/app"
)

type devFlags struct {
	config, natsListen, emulatorListen, httpListen, storeDir string
}

func newDevCmd(a *app) *cobra.Command {
	var f devFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run NATS (JetStream), the Web PubSub emulator and the bridge in one process",
		Long: `dev starts an embedded nats-server with JetStream, the local Web PubSub
emulator, and a bridge wired to both with bridge.yaml (or a built-in
configuration when the file is missing). It prints where to publish, where to
watch, and a WebSocket client URL. Ctrl-C stops everything.

A preferred port that is busy falls back to a free one; the printed URLs are
the ones in use. Nothing is kept: JetStream lives in a temporary directory
unless --store-dir is given.`,
		Example: `  go run ./cmd/bridge dev
  bridge dev --nats-listen 127.0.0.1:4333 --emulator-listen 127.0.0.1:8081`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(f.config)
			switch {
			case errors.Is(err, fs.ErrNotExist) && !cmd.Flags().Changed("config"):
				data = nil // the built-in dev configuration
			case err != nil:
				return fmt.Errorf("--config: %w", err)
			}
			opts := bridgeapp.DevOptions{
				Config: data, NATSAddr: f.natsListen, EmulatorAddr: f.emulatorListen,
				HTTPAddr: f.httpListen, StoreDir: f.storeDir, Logger: a.logger,
			}
			// The printed commands read the same file (bridge.yaml by default).
			configArg := ""
			if cmd.Flags().Changed("config") {
				configArg = " -c " + f.config
			}
			var printErr error
			err = bridgeapp.RunDev(cmd.Context(), opts, func(info bridgeapp.DevInfo) {
				printErr = printDevBanner(a, info, configArg)
			})
			return errors.Join(err, printErr)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "bridge.yaml", "configuration file (built-in dev configuration when the default is missing)")
	fl.StringVar(&f.natsListen, "nats-listen", "127.0.0.1:4222", "embedded nats-server address")
	fl.StringVar(&f.emulatorListen, "emulator-listen", "127.0.0.1:8080", "Web PubSub emulator address")
	fl.StringVar(&f.httpListen, "http-listen", "127.0.0.1:9464", "metrics and health address")
	fl.StringVar(&f.storeDir, "store-dir", "", "JetStream storage directory (default: a temporary one)")
	return cmd
}

// printDevBanner prints where dev listens and commands to try; configArg
// (" -c path" or "") is passed on to the bridge commands it shows.
func printDevBanner(a *app, info bridgeapp.DevInfo, configArg string) error {
	envelope := `{"actionName":"sendToGroup","group":"demo","dataType":"text","data":"hello from NATS"}`
	_, err := fmt.Fprintf(a.stdout, `wps-bridge dev is running — Ctrl-C stops everything.

  NATS (JetStream):     %[1]s   (stream WPS: subjects wps.> and chat.>)
  Web PubSub emulator:  %[2]s   hub %[5]q
  inspector:            %[2]s/
  connection string:    %[3]s
  metrics and health:   %[4]s/metrics  %[4]s/healthz  %[4]s/readyz

Publish a command (in another terminal):
  go run ./cmd/bridge publish%[8]s --url %[1]s --subject wps.demo '%[6]s'
  nats --server %[1]s pub wps.demo '%[6]s'
  nats --server %[1]s pub chat.demo.msg 'plain text to group demo'

Watch it arrive: open the inspector, or connect a WebSocket client as user "demo"
in group "demo" (subprotocol json.webpubsub.azure.v1, or none for raw frames):
  %[7]s
  e.g.  npx wscat -s json.webpubsub.azure.v1 -c '%[7]s'

Dead letters go to JetStream stream WPS_DLQ (subject dlq.wps); replay them with
  NATS_URL=%[1]s go run ./cmd/bridge dlq replay%[8]s --dry-run
`, info.NATSURL, info.EmulatorURL, info.ConnectionString, info.OpsURL, info.Hub, envelope, bridgeapp.WebSocketURL(info.ClientURL), configArg)
	return err
}
