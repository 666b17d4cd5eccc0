package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	bridgeapp "github.com/wps-bridge/bridge/internal/app"
	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/wps"
)

type tokenFlags struct {
	connectionString string
	configPath       string
	hub              string
	user             string
	groups           []string
	roles            []string
	lifetime         time.Duration
	protocol         string
}

func newTokenCmd(a *app) *cobra.Command {
	var f tokenFlags
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a client access URL for a WebSocket client",
		Long: `token prints a Web PubSub client access URL (wss://…?access_token=…) for a
user, with groups to join at connect and roles. With an access key the token
is signed locally; with Entra ID (aad: true) the service issues it.

The credentials come from --connection-string, or else from the webpubsub
section of the configuration file (-c, default bridge.yaml). The hub defaults
to webpubsub.hub.`,
		Example: `  # against the emulator started by 'bridge dev' or 'bridge emulator'
  bridge token -c bridge.yaml --user alice --group room42 \
      --role webpubsub.joinLeaveGroup.room42 --role webpubsub.sendToGroup.room42

  # from a connection string, for two hours, MQTT client endpoint
  bridge token --connection-string "$WEBPUBSUB_CONNECTION_STRING" --hub chat \
      --user bob --lifetime 2h --protocol mqtt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hub, err := f.hubClient(a)
			if err != nil {
				return err
			}
			protocol, err := parseProtocol(f.protocol)
			if err != nil {
				return err
			}
			access, err := hub.GetClientAccessToken(cmd.Context(), &wps.TokenOptions{
				UserID:   f.user,
				Roles:    f.roles,
				Groups:   f.groups,
				Lifetime: f.lifetime,
				Protocol: protocol,
			})
			if err != nil {
				return fmt.Errorf("client access token: %w", err)
			}
			_, err = fmt.Fprintln(a.stdout, access.URL)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.connectionString, "connection-string", "", "Web PubSub connection string (default: from the config file)")
	addConfigFlag(cmd, &f.configPath)
	fl.StringVar(&f.hub, "hub", "", "hub (default: webpubsub.hub of the config file)")
	fl.StringVar(&f.user, "user", "", "user id (sub claim); empty for an anonymous client")
	fl.StringArrayVar(&f.groups, "group", nil, "group to join at connect (repeat for more)")
	fl.StringArrayVar(&f.roles, "role", nil, "role, e.g. webpubsub.joinLeaveGroup.room42 (repeat for more)")
	fl.DurationVar(&f.lifetime, "lifetime", time.Hour, "token lifetime (at least 1m)")
	fl.StringVar(&f.protocol, "protocol", "default", "client endpoint: default, mqtt or socketio")
	cmd.MarkFlagsMutuallyExclusive("connection-string", "config")
	return cmd
}

// hubClient builds the client from --connection-string or the config file.
func (f *tokenFlags) hubClient(a *app) (*wps.HubClient, error) {
	hub := f.hub
	var client *wps.Client
	if f.connectionString != "" {
		// Signing is local: no request is sent, so an http:// emulator
		// endpoint is fine.
		c, err := wps.NewClientFromConnectionString(f.connectionString, wps.WithInsecureHTTP(true))
		if err != nil {
			return nil, fmt.Errorf("--connection-string: %w", err)
		}
		client = c
	} else {
		cfg, err := config.Load(f.configPath)
		if err != nil {
			return nil, fmt.Errorf("%w\n(pass --connection-string, or -c with a valid config file)", err)
		}
		if client, err = bridgeapp.NewWPSClient(cfg.WebPubSub, a.logger); err != nil {
			return nil, err
		}
		if hub == "" {
			hub = cfg.WebPubSub.Hub
		}
	}
	if hub == "" {
		return nil, errors.New("--hub is required (the config file names no webpubsub.hub)")
	}
	h, err := client.Hub(hub)
	if err != nil {
		return nil, fmt.Errorf("--hub: %w", err)
	}
	return h, nil
}

func parseProtocol(s string) (wps.ClientProtocol, error) {
	switch strings.ToLower(s) {
	case "", "default":
		return wps.ProtocolDefault, nil
	case "mqtt":
		return wps.ProtocolMQTT, nil
	case "socketio":
		return wps.ProtocolSocketIO, nil
	}
	return "", fmt.Errorf("--protocol must be default, mqtt or socketio, got %q", s)
}
