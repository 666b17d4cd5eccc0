package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wps-bridge/bridge/internal/config"
)

// app is what every command shares: where output goes and the logger built
// from the global flags.
type app struct {
	stdout, stderr io.Writer
	logLevel       string
	logFormat      string
	// levelSet and formatSet record whether --log-level / --log-format were
	// given, so that they override log.level / log.format (see loggerFor).
	levelSet, formatSet bool
	logger              *slog.Logger
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr, logger: slog.New(slog.DiscardHandler)}
	root := &cobra.Command{
		Use:   "bridge",
		Short: "Bridge NATS, JetStream and Kafka commands to Azure Web PubSub",
		Long: `bridge consumes command envelopes from NATS subjects, JetStream streams and
Kafka topics and performs the matching Azure Web PubSub REST calls, acking
each message only once the service accepted it or it was dead-lettered.`,
		Example: `  # try it locally: embedded NATS, the Web PubSub emulator and the bridge
  bridge dev

  # check a configuration file, then run in production
  bridge validate -c bridge.yaml
  bridge run -c bridge.yaml`,
		Version:       versionString(),
		SilenceErrors: true, // run prints the error once
		SilenceUsage:  true, // a failing command is not a usage mistake
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			a.levelSet = flags.Changed("log-level")
			a.formatSet = flags.Changed("log-format")
			logger, err := newLogger(a.stderr, a.logLevel, a.logFormat)
			if err != nil {
				return err
			}
			a.logger = logger
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.logLevel, "log-level", config.DefaultLogLevel, "log level: debug, info, warn or error (overrides log.level)")
	pf.StringVar(&a.logFormat, "log-format", config.DefaultLogFormat, "log format: text or json (overrides log.format)")

	root.AddCommand(
		newVersionCmd(a),
		newValidateCmd(a),
		newTokenCmd(a),
		newEmulatorCmd(a),
		newRunCmd(a),
		newDevCmd(a),
		newPublishCmd(a),
		newDLQCmd(a),
	)
	return root
}

// loggerFor returns the logger for a loaded configuration: log.level and
// log.format from the file unless the global flags were given.
func (a *app) loggerFor(cfg config.Log) (*slog.Logger, error) {
	level, format := cfg.Level, cfg.Format
	if a.levelSet {
		level = a.logLevel
	}
	if a.formatSet {
		format = a.logFormat
	}
	return newLogger(a.stderr, level, format)
}

// newLogger builds a slog logger writing to w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("log level must be debug, info, warn or error, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format must be text or json, got %q", format)
	}
}

// addConfigFlag adds -c/--config to cmd.
func addConfigFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVarP(path, "config", "c", "bridge.yaml", "path of the configuration file")
}
