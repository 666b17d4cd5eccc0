package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	bridgeapp "github.com/wps-bridge/bridge/internal/app"
	"github.com/wps-bridge/bridge/internal/config"
)

func newRunCmd(a *app) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the bridge in production mode",
		Long: `run loads the configuration, connects the sources (retrying while a broker is
unreachable), and delivers commands to Web PubSub until SIGINT or SIGTERM. On a
signal it stops reading, lets in-flight work finish for router.drainTimeout,
and gives the rest back to the brokers. /metrics, /healthz and /readyz are
served on http.listen.`,
		Example: `  bridge run -c bridge.yaml
  WEBPUBSUB_CONNECTION_STRING='Endpoint=https://…;AccessKey=…;Version=1.0;' bridge run -c /etc/bridge/bridge.yaml --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			logger, err := a.loggerFor(cfg.Log)
			if err != nil {
				return err
			}
			logger.Debug("configuration", "config", cfg.String())
			// Listen first: New connects the dead letter, which only Run
			// closes again.
			ln, err := net.Listen("tcp", cfg.HTTP.Listen)
			if err != nil {
				return fmt.Errorf("http.listen: %w", err)
			}
			b, err := bridgeapp.New(cmd.Context(), cfg, logger)
			if err != nil {
				_ = ln.Close() // the error of New is the one to report
				return err
			}
			return b.Run(cmd.Context(), ln)
		},
	}
	addConfigFlag(cmd, &path)
	return cmd
}
