package kafkasource

import (
	"context"
	"crypto/tls"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// clientOpts are the options every franz-go client of this package shares:
// seed brokers, SASL and TLS, and logging through logger.
func clientOpts(brokers []string, s SASL, t *TLSConfig, logger *slog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.WithLogger(kgoLogger{logger})}
	mech, err := s.mechanism()
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	if t != nil {
		tlsCfg, err := t.Build()
		if err != nil {
			return nil, err
		}
		if tlsCfg == nil { // TLS on, system roots
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	return opts, nil
}

// kgoLogger writes franz-go's log lines to a slog.Logger. franz-go logs
// every group step at info; those go to debug here, so that an operator's
// info log shows the adapter's own summary lines only.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelInfo
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case k.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	default:
		return kgo.LogLevelNone
	}
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	}
	k.l.Log(context.Background(), l, "kafka: "+msg, keyvals...)
}
