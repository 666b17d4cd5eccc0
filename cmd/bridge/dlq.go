package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	bridgeapp "github.com/wps-bridge/bridge/internal/app"
	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/dlq"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/kafkasource"
	"github.com/wps-bridge/bridge/internal/source/natssource"
)

func newDLQCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Work with the dead letter",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newDLQReplayCmd(a))
	return cmd
}

type replayFlags struct {
	configPath, group string
	actions, classes  []string
	dryRun            bool
	rate              float64
	limit             int
	idle              time.Duration
}

func newDLQReplayCmd(a *app) *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Move parked messages back to the subject or topic they came from",
		Long: `replay reads the dead letter named by deadLetter in the configuration, keeps
the messages that match --action and --class, and publishes each back to its
origin (the wps-bridge-origin subject or topic, on the broker of the
wps-bridge-source source) without the wps-bridge-* headers. Only once the broker
confirmed the publish is the message removed from the dead letter: deleted
from a JetStream stream, or committed for the --group consumer group on Kafka
(a Kafka log cannot delete one record; a new --group starts over).

Fix the cause first (a route, a key, a producer), then replay. --dry-run lists
what would move and changes nothing.`,
		Example: `  bridge dlq replay --dry-run -c bridge.yaml
  bridge dlq replay -c bridge.yaml --class transient --rate 50
  bridge dlq replay -c bridge.yaml --action sendToGroup,sendToUser --limit 100`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := config.Load(f.configPath)
			if err != nil {
				return err
			}
			reader, closeReader, err := openDeadLetter(ctx, cfg, f, a)
			if err != nil {
				return err
			}
			defer closeReader()
			pubs := map[string]source.Publisher{}
			defer func() {
				for _, p := range pubs {
					_ = p.Close(context.WithoutCancel(ctx))
				}
			}()
			publisherFor := func(ctx context.Context, o dlq.Origin) (source.Publisher, error) {
				src, err := originSource(cfg, o)
				if err != nil {
					return nil, err
				}
				if p, ok := pubs[src.Name]; ok {
					return p, nil
				}
				p, err := connectPublisher(ctx, bridgeapp.Destination{
					Type: src.Type, URL: src.URL, Brokers: src.Brokers, Auth: src.Auth, SASL: src.SASL, TLS: src.TLS,
				}, a)
				if err != nil {
					return nil, fmt.Errorf("connect to source %q: %w", src.Name, err)
				}
				pubs[src.Name] = p
				return p, nil
			}
			bar := progressbar.NewOptions64(reader.Total(),
				progressbar.OptionSetWriter(a.stderr), progressbar.OptionSetDescription("dead letters"),
				progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionSetVisibility(!f.dryRun))
			res, err := dlq.Replay(ctx, reader, publisherFor, dlq.Options{
				Filter: dlq.Filter{Actions: f.actions, Classes: f.classes},
				DryRun: f.dryRun, Rate: f.rate, Limit: f.limit,
				OnMessage: func(p *dlq.Parked, matched bool, o dlq.Origin) {
					_ = bar.Add(1)
					if f.dryRun && matched {
						listParked(a, p, o)
					}
				},
			})
			_ = bar.Finish()
			verb, moved := "replayed", res.Replayed
			if f.dryRun {
				verb, moved = "would replay", res.Matched
			}
			if _, perr := fmt.Fprintf(a.stdout, "\nread %d, matched %d, %s %d\n", res.Read, res.Matched, verb, moved); perr != nil {
				return errors.Join(err, perr)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.configPath, "config", "c", "bridge.yaml", "configuration file (its deadLetter and sources)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "list what would be replayed; publish and remove nothing")
	fl.Float64Var(&f.rate, "rate", 100, "most messages replayed per second (0: no limit)")
	fl.IntVar(&f.limit, "limit", 0, "stop after this many matching messages (0: all)")
	fl.StringSliceVar(&f.actions, "action", nil, "only these actions (wps-bridge-action), comma list")
	fl.StringSliceVar(&f.classes, "class", nil, "only these error classes: invalid, transient, systemic")
	fl.StringVar(&f.group, "group", "wps-bridge-dlq-replay", "Kafka consumer group that records replay progress")
	fl.DurationVar(&f.idle, "idle", 3*time.Second, "Kafka: the dead letter is done after this long with no message")
	return cmd
}

// originSource is the configured source a dead letter goes back to: the one
// its wps-bridge-source header names, on the broker its origin fits (a
// subject for nats and jetstream, a topic for kafka). Never a guess: the
// message would land on the wrong broker.
func originSource(cfg *config.Config, o dlq.Origin) (config.Source, error) {
	if o.Source == "" {
		return config.Source{}, fmt.Errorf("no %s header: cannot tell where it came from", dlq.HeaderSource)
	}
	for _, src := range cfg.Sources {
		if src.Name != o.Source {
			continue
		}
		if (o.Topic != "") != (src.Type == config.BrokerKafka) {
			return config.Source{}, fmt.Errorf("origin %q does not fit source %q of type %s", or(o.Topic, o.Subject), src.Name, src.Type)
		}
		return src, nil
	}
	return config.Source{}, fmt.Errorf("origin source %q is not in the configuration", o.Source)
}

func listParked(a *app, p *dlq.Parked, o dlq.Origin) {
	class, _ := p.Msg.Headers.Get(dlq.HeaderErrorClass)
	action, _ := p.Msg.Headers.Get(dlq.HeaderAction)
	reason, _ := p.Msg.Headers.Get("wps-bridge-error")
	where := o.Subject
	if o.Topic != "" {
		where = o.Topic
	}
	fmt.Fprintf(a.stdout, "%s\t%s\t%s\t%s → %s\t%s\n", p.ID, class, or(action, "-"), o.Source, where, reason)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// openDeadLetter opens a reader over cfg.DeadLetter, waiting at most
// connectTimeout for the broker.
func openDeadLetter(ctx context.Context, cfg *config.Config, f replayFlags, a *app) (dlq.Reader, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	d := cfg.DeadLetter
	switch d.Type {
	case config.BrokerJetStream:
		conn, err := bridgeapp.NATSConn("wps-bridge:dlq-replay", d.URL, d.Auth, d.TLS)
		if err != nil {
			return nil, nil, fmt.Errorf("deadLetter: %w", err)
		}
		nc, err := natssource.Dial(ctx, conn, a.logger)
		if err != nil {
			return nil, nil, fmt.Errorf("deadLetter: %w", err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("deadLetter: %w", err)
		}
		r, err := dlq.OpenJetStream(ctx, js, d.Stream, d.Subject)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return r, nc.Close, nil
	case config.BrokerKafka:
		sasl, tls, err := bridgeapp.KafkaAuth(d.SASL, d.TLS)
		if err != nil {
			return nil, nil, fmt.Errorf("deadLetter: %w", err)
		}
		src, err := kafkasource.New(kafkasource.Config{
			Name: "dead-letter", Brokers: d.Brokers, Topics: []string{d.Topic}, Group: f.group, SASL: sasl, TLS: tls,
		}, a.logger)
		if err != nil {
			return nil, nil, fmt.Errorf("deadLetter: %w", err)
		}
		if err := src.Connect(ctx); err != nil {
			return nil, nil, fmt.Errorf("deadLetter: %w", err)
		}
		r := dlq.NewSourceReader(src, f.idle)
		return r, func() { _ = r.Close() }, nil
	case config.BrokerNATS:
		return nil, nil, errors.New("deadLetter.type nats: core NATS keeps no messages, there is nothing to replay (use jetstream or kafka)")
	}
	return nil, nil, errors.New("deadLetter.type is none: there is no dead letter to replay")
}
