package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	bridgeapp "github.com/wps-bridge/bridge/internal/app"
	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/source"
)

type publishFlags struct {
	configPath, sourceName, url, subject, topic, key, file string
	headers                                                []string
	count                                                  int
	noCheck                                                bool
}

func newPublishCmd(a *app) *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish [ENVELOPE | -]",
		Short: "Publish a command envelope to a configured source, for trying things",
		Long: `publish sends one message to the broker of a configured source (the first one
unless --source names another) and returns once the broker confirmed it
(JetStream PubAck, Kafka acks=all, core NATS flush).

The body is the argument, standard input ("-"), or --file. Unless a wps-action
header is given (header mode, raw payload) or --no-check is set, the body is
decoded with the bridge's own codec first, so a mistake is reported here
rather than on the dead letter.`,
		Example: `  bridge publish --subject wps.demo '{"actionName":"sendToGroup","group":"demo","data":"hello"}'
  bridge publish --url nats://127.0.0.1:4222 --subject wps.demo - < envelope.json
  bridge publish -H wps-action=sendToGroup -H wps-group=demo -H content-type=text/plain --subject wps.demo 'raw text'
  bridge publish --source kcmds --key room42 '{"op":"sendToUser","userId":"alice","data":{"n":1}}'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.count < 1 {
				return fmt.Errorf("--count must be at least 1, got %d", f.count)
			}
			body, err := publishBody(cmd.InOrStdin(), args, f.file)
			if err != nil {
				return err
			}
			hdr, err := parseHeaders(f.headers)
			if err != nil {
				return err
			}
			cfg, err := config.Load(f.configPath)
			if err != nil {
				return err
			}
			src, err := pickSource(cfg, f.sourceName)
			if err != nil {
				return err
			}
			dest, err := f.destination(src)
			if err != nil {
				return err
			}
			msg := &source.Message{Body: body, Headers: hdr, Subject: dest.Subject, Topic: dest.Topic, Key: []byte(f.key)}
			if dest.Type == config.BrokerKafka {
				msg.Subject = dest.Topic
			}
			if _, isHeaderMode := hdr.Get("wps-action"); !isHeaderMode && !f.noCheck {
				if err := checkEnvelope(cfg, src.Name, msg); err != nil {
					return err
				}
			}
			p, err := connectPublisher(cmd.Context(), dest, a)
			if err != nil {
				return fmt.Errorf("connect to source %q: %w", src.Name, err)
			}
			defer p.Close(cmd.Context())
			for range f.count {
				if err := p.Publish(cmd.Context(), msg); err != nil {
					return fmt.Errorf("publish: %w", err)
				}
			}
			where := dest.Subject
			if dest.Type == config.BrokerKafka {
				where = dest.Topic
			}
			_, err = fmt.Fprintf(a.stdout, "published %d message%s to %s %s (source %q)\n", f.count, plural(f.count), dest.Type, where, src.Name)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.configPath, "config", "c", "bridge.yaml", "configuration file naming the sources")
	fl.StringVar(&f.sourceName, "source", "", "name of the configured source to publish to (default: the first)")
	fl.StringVar(&f.url, "url", "", "override the source's NATS URL (nats, jetstream) or brokers (kafka, comma list)")
	fl.StringVar(&f.subject, "subject", "", "NATS subject (default: the source's only literal subject)")
	fl.StringVar(&f.topic, "topic", "", "Kafka topic (default: the source's first topic)")
	fl.StringVar(&f.key, "key", "", "Kafka record key")
	fl.StringVar(&f.file, "file", "", "read the body from this file")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "header as name=value (repeatable), e.g. -H wps-action=sendToAll")
	fl.IntVar(&f.count, "count", 1, "publish the message this many times")
	fl.BoolVar(&f.noCheck, "no-check", false, "publish even if the body does not decode as an envelope")
	return cmd
}

// publishBody reads the body from the argument, stdin ("-") or a file.
func publishBody(stdin io.Reader, args []string, file string) ([]byte, error) {
	switch {
	case file != "" && len(args) > 0:
		return nil, errors.New("give the body as an argument or with --file, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		return b, nil
	case len(args) == 0:
		return nil, errors.New("no body: pass an envelope, - for standard input, or --file")
	case args[0] == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return b, nil
	}
	return []byte(args[0]), nil
}

func parseHeaders(in []string) (source.Headers, error) {
	var hdr source.Headers
	for _, h := range in {
		k, v, ok := strings.Cut(h, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--header %q: want name=value", h)
		}
		hdr = append(hdr, source.Header{Key: strings.TrimSpace(k), Value: v})
	}
	return hdr, nil
}

func pickSource(cfg *config.Config, name string) (config.Source, error) {
	if name == "" {
		return cfg.Sources[0], nil
	}
	names := make([]string, 0, len(cfg.Sources))
	for _, s := range cfg.Sources {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return config.Source{}, fmt.Errorf("--source %q: no such source (have %s)", name, strings.Join(names, ", "))
}

// connectTimeout bounds connecting to a broker in the one-shot commands
// (publish, dlq replay): the NATS client otherwise retries until Ctrl-C.
var connectTimeout = 15 * time.Second

// connectPublisher is bridgeapp.NewPublisher with connectTimeout; the
// publisher keeps no context from it.
func connectPublisher(ctx context.Context, d bridgeapp.Destination, a *app) (source.Publisher, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return bridgeapp.NewPublisher(ctx, d, a.logger)
}

// destination describes where to publish for src, with the flags' overrides.
func (f *publishFlags) destination(src config.Source) (bridgeapp.Destination, error) {
	d := bridgeapp.Destination{Type: src.Type, URL: src.URL, Brokers: src.Brokers, Auth: src.Auth, SASL: src.SASL, TLS: src.TLS}
	if src.Type == config.BrokerKafka {
		if f.subject != "" {
			return d, fmt.Errorf("--subject is for NATS: source %q is kafka (use --topic)", src.Name)
		}
		if f.url != "" {
			d.Brokers = config.SplitList([]string{f.url})
		}
		d.Topic = f.topic
		if d.Topic == "" {
			d.Topic = src.Topics[0]
		}
		return d, nil
	}
	if f.topic != "" || f.key != "" {
		return d, fmt.Errorf("--topic and --key are for Kafka: source %q is %s (use --subject)", src.Name, src.Type)
	}
	if f.url != "" {
		d.URL = f.url
	}
	d.Subject = f.subject
	if d.Subject == "" {
		if len(src.Subjects) != 1 || strings.ContainsAny(src.Subjects[0], "*>") {
			return d, fmt.Errorf("--subject is required: source %q consumes %v", src.Name, src.Subjects)
		}
		d.Subject = src.Subjects[0]
	}
	if strings.ContainsAny(d.Subject, "*> ") {
		return d, fmt.Errorf("--subject %q: a publish subject has no wildcards or spaces", d.Subject)
	}
	return d, nil
}

// checkEnvelope decodes msg as the bridge would, so that mistakes show here.
func checkEnvelope(cfg *config.Config, sourceName string, msg *source.Message) error {
	dec, err := bridgeapp.NewCodec(cfg)
	if err != nil {
		return err
	}
	m := *msg
	m.Source = sourceName
	if _, err := dec.Decode(&m); err != nil {
		return fmt.Errorf("%w (use --no-check to publish it anyway)", err)
	}
	return nil
}
