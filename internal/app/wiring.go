package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/router"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/jetstreamsource"
	"github.com/wps-bridge/bridge/internal/source/kafkasource"
	"github.com/wps-bridge/bridge/internal/source/natssource"
	"github.com/wps-bridge/bridge/internal/wps"
)

// UserAgent is sent on every REST call.
var UserAgent = "wps-bridge"

// NewWPSClient builds the Web PubSub client that webpubsub in bridge.yaml
// describes: a connection string, an endpoint with an access key (or key
// file), or an endpoint with Microsoft Entra ID (azidentity's default chain).
func NewWPSClient(w config.WebPubSub, logger *slog.Logger) (*wps.Client, error) {
	opts := []wps.Option{
		wps.WithTimeout(w.Timeout),
		wps.WithMaxConnsPerHost(max(w.MaxInFlight, 1)),
		wps.WithInsecureHTTP(w.AllowInsecureHTTP),
		wps.WithUserAgent(UserAgent),
		wps.WithLogger(logger),
	}
	if w.ReverseProxy != "" {
		opts = append(opts, wps.WithReverseProxy(w.ReverseProxy))
	}
	var (
		client *wps.Client
		err    error
	)
	switch {
	case w.ConnectionString != "":
		client, err = wps.NewClientFromConnectionString(w.ConnectionString, opts...)
	case w.AAD:
		cred, credErr := azidentity.NewDefaultAzureCredential(nil)
		if credErr != nil {
			return nil, fmt.Errorf("web pubsub credential: %w", credErr)
		}
		client, err = wps.NewClient(w.Endpoint, append(opts, wps.WithTokenCredential(cred))...)
	default:
		key, keyErr := w.ResolveAccessKey()
		if keyErr != nil {
			return nil, fmt.Errorf("web pubsub access key: %w", keyErr)
		}
		client, err = wps.NewClient(w.Endpoint, append(opts, wps.WithAccessKey(key))...)
	}
	if err != nil {
		return nil, fmt.Errorf("web pubsub client: %w", err)
	}
	return client, nil
}

// NewCodec builds the decoder from the routes and the default hub.
func NewCodec(cfg *config.Config) (*codec.Decoder, error) {
	routes := make([]codec.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = codec.Route{
			Match: r.Match, Source: r.Source, Action: r.Action, Body: r.Body,
			Hub: r.Hub, Group: r.Group, UserID: r.UserID, ConnectionID: r.ConnectionID,
			Filter: r.Filter, DataType: r.DataType, Key: r.Key, TTL: r.TTL,
		}
		if c := r.Coalesce; c != nil {
			routes[i].Coalesce = &codec.Coalesce{Count: c.Count, Bytes: c.Bytes, Linger: c.Linger}
		}
	}
	dec, err := codec.New(codec.Config{DefaultHub: cfg.WebPubSub.Hub, Routes: routes})
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	return dec, nil
}

// RouterConfig maps the router, retry and webpubsub sections to router.Config.
func RouterConfig(cfg *config.Config, logger *slog.Logger, m *router.Metrics) router.Config {
	return router.Config{
		Lanes:            cfg.Router.Lanes,
		LaneQueue:        cfg.Router.LaneQueue,
		MaxInFlight:      cfg.WebPubSub.MaxInFlight,
		MaxPending:       cfg.Router.MaxPending,
		Retry:            router.RetryPolicy{Initial: cfg.Retry.Initial, Max: cfg.Retry.Max, MaxElapsed: cfg.Retry.MaxElapsed},
		SystemicInterval: cfg.Retry.SystemicInterval,
		DrainTimeout:     cfg.Router.DrainTimeout,
		MulticastChunk:   cfg.Router.MulticastChunk,
		Logger:           logger,
		Metrics:          m,
	}
}

// NATSConn maps a source's (or the dead letter's) NATS settings.
func NATSConn(name, url string, auth config.Auth, tls config.TLS) (natssource.ConnConfig, error) {
	token, err := auth.ResolveToken()
	if err != nil {
		return natssource.ConnConfig{}, fmt.Errorf("auth.token: %w", err)
	}
	password, err := auth.ResolvePassword()
	if err != nil {
		return natssource.ConnConfig{}, fmt.Errorf("auth.password: %w", err)
	}
	return natssource.ConnConfig{
		URL: url, Name: name, Token: token, User: auth.User, Password: password,
		CredsFile: auth.CredsFile, NKeySeedFile: auth.NkeySeedFile,
		TLS: natsTLS(tls),
	}, nil
}

func natsTLS(t config.TLS) natssource.TLSConfig {
	return natssource.TLSConfig{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify}
}

func kafkaTLS(t config.TLS) *kafkasource.TLSConfig {
	if !t.On() {
		return nil
	}
	c := natsTLS(t)
	return &c
}

// KafkaAuth maps a sasl and tls section to the Kafka adapter's settings,
// reading a passwordFile if one is named.
func KafkaAuth(s config.SASL, t config.TLS) (kafkasource.SASL, *kafkasource.TLSConfig, error) {
	sasl, err := kafkaSASL(s)
	return sasl, kafkaTLS(t), err
}

func kafkaSASL(s config.SASL) (kafkasource.SASL, error) {
	password, err := s.ResolvePassword()
	if err != nil {
		return kafkasource.SASL{}, fmt.Errorf("sasl.password: %w", err)
	}
	return kafkasource.SASL{Mechanism: s.Mechanism, User: s.User, Password: password}, nil
}

// NewSource builds the adapter of one configured source. It does not connect.
func NewSource(s config.Source, logger *slog.Logger) (source.Source, error) {
	switch s.Type {
	case config.BrokerNATS:
		conn, err := NATSConn("wps-bridge:"+s.Name, s.URL, s.Auth, s.TLS)
		if err != nil {
			return nil, err
		}
		return natssource.New(natssource.Config{Name: s.Name, Conn: conn, Subjects: s.Subjects, Queue: s.Queue}, logger)
	case config.BrokerJetStream:
		conn, err := NATSConn("wps-bridge:"+s.Name, s.URL, s.Auth, s.TLS)
		if err != nil {
			return nil, err
		}
		return jetstreamsource.New(jetstreamsource.Config{
			Name: s.Name, Conn: conn, Stream: s.Stream, Subjects: s.Subjects, CreateStream: s.CreateStream,
			Durable: s.Durable, CreateConsumer: s.CreateConsumer, FilterSubjects: filterSubjects(s),
			FetchBatch: s.FetchBatch, MaxAckPending: s.MaxAckPending, AckWait: s.AckWait,
		}, logger)
	case config.BrokerKafka:
		sasl, err := kafkaSASL(s.SASL)
		if err != nil {
			return nil, err
		}
		return kafkasource.New(kafkasource.Config{
			Name: s.Name, Brokers: s.Brokers, Topics: s.Topics, Group: s.Group,
			SASL: sasl, TLS: kafkaTLS(s.TLS), StartOffset: s.StartOffset, SessionTimeout: s.SessionTimeout,
		}, logger)
	}
	return nil, fmt.Errorf("source %q: unknown type %q", s.Name, s.Type)
}

// filterSubjects: when the bridge creates the stream, the subjects describe
// the stream and the consumer takes all of it; otherwise they filter.
func filterSubjects(s config.Source) []string {
	if s.CreateStream {
		return nil
	}
	return s.Subjects
}

// publisher is a Publisher together with the connection it owns.
type publisher struct {
	source.Publisher
	nc *nats.Conn
}

// Destination is where NewPublisher writes: the deadLetter section's shape,
// also used by `bridge publish` and `bridge dlq replay`.
type Destination = config.DeadLetter

// NewPublisher connects a confirmed publisher to d: core NATS (flushed),
// JetStream (PubAck; the stream is created first when d.CreateStream) or Kafka
// (acks=all). It returns nil, nil when d.Type is none or empty. Closing the
// publisher closes its connection.
func NewPublisher(ctx context.Context, d Destination, logger *slog.Logger) (source.Publisher, error) {
	switch d.Type {
	case config.BrokerNone, "":
		return nil, nil
	case config.BrokerNATS, config.BrokerJetStream:
		conn, err := NATSConn("wps-bridge:publisher", d.URL, d.Auth, d.TLS)
		if err != nil {
			return nil, err
		}
		nc, err := natssource.Dial(ctx, conn, logger)
		if err != nil {
			return nil, err
		}
		if d.Type == config.BrokerNATS {
			return &publisher{Publisher: natssource.NewPublisher(nc, d.Subject), nc: nc}, nil
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("jetstream: %w", err)
		}
		if d.CreateStream {
			if err := jetstreamsource.EnsureStream(ctx, js, d.Stream, []string{d.Subject}); err != nil {
				nc.Close()
				return nil, fmt.Errorf("stream %s: %w", d.Stream, err)
			}
		}
		return &publisher{Publisher: jetstreamsource.NewPublisher(js, d.Subject), nc: nc}, nil
	case config.BrokerKafka:
		sasl, err := kafkaSASL(d.SASL)
		if err != nil {
			return nil, err
		}
		return kafkasource.NewPublisher(kafkasource.WriterConfig{
			Brokers: d.Brokers, Topic: d.Topic, SASL: sasl, TLS: kafkaTLS(d.TLS),
		})
	}
	return nil, fmt.Errorf("unknown destination type %q", d.Type)
}

// Close closes the publisher and then its connection, before it returns.
// Every Publish was confirmed (flush or PubAck) before it returned, so there
// is nothing to drain (nats.Conn.Drain would finish in the background, with
// no owner, after Close).
func (p *publisher) Close(ctx context.Context) error {
	err := p.Publisher.Close(ctx)
	p.nc.Close()
	return err
}

// joinClose calls closers in reverse order and joins their errors.
func joinClose(ctx context.Context, closers []func(context.Context) error) error {
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i](ctx))
	}
	return errors.Join(errs...)
}
