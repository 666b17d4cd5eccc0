package natssource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnConfig says how to reach and authenticate to a NATS server. At most one
// of Token, User/Password, CredsFile and NKeySeedFile is normally set.
type ConnConfig struct {
	// URL is one server URL or a comma-separated list (nats://host:4222).
	// Credentials embedded in it are never logged.
	URL string
	// Name is the client connection name shown by the server's monitoring.
	Name string
	// Token is a token for token authentication.
	Token string
	// User and Password are for user/password authentication.
	User     string
	Password string
	// CredsFile is a NATS .creds file (user JWT and nkey seed).
	CredsFile string
	// NKeySeedFile is a file holding an nkey user seed.
	NKeySeedFile string
	// TLS configures client TLS; the zero value adds no TLS configuration
	// (a tls:// URL still uses the system roots).
	TLS TLSConfig
}

// TLSConfig is a client TLS configuration loaded from PEM files. The zero
// value means "no client TLS configuration".
type TLSConfig struct {
	// CAFile holds the PEM certificates of the authorities that sign the
	// server certificate; empty uses the system roots.
	CAFile string
	// CertFile and KeyFile hold a client certificate and its key for mutual TLS.
	CertFile string
	KeyFile  string
	// InsecureSkipVerify disables server certificate verification (tests only).
	InsecureSkipVerify bool
}

// IsZero reports whether c configures nothing.
func (c TLSConfig) IsZero() bool { return c == TLSConfig{} }

// Build loads the files of c into a *tls.Config. It returns nil, nil for the
// zero value.
func (c TLSConfig) Build() (*tls.Config, error) {
	if c.IsZero() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in, documented as test only
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("tls: certFile and keyFile must be set together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Dial connects to NATS and returns once the connection is up, ctx is done,
// or the client gave up (for example after repeated authorization errors).
// The connection then reconnects forever on its own; connects, disconnects,
// reconnects, slow-consumer and async errors are logged at info/warn level.
// Secrets (token, password, credentials in the URL) are never logged nor put
// in returned errors.
func Dial(ctx context.Context, cfg ConnConfig, logger *slog.Logger) (*nats.Conn, error) {
	logger = orDiscard(logger)
	if cfg.URL == "" {
		return nil, errors.New("nats: url is required")
	}
	servers := RedactURL(cfg.URL)
	log := logger.With("servers", servers)
	opts, err := options(cfg, log)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: connect %s: %w", servers, redactErr(err, cfg))
	}
	status := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	defer nc.RemoveStatusListener(status)
	for !nc.IsConnected() {
		select {
		case st := <-status:
			if st == nats.CLOSED {
				return nil, fmt.Errorf("nats: connect %s: connection closed: %w", servers, redactErr(nc.LastError(), cfg))
			}
		case <-ctx.Done():
			last := nc.LastError()
			nc.Close()
			if last != nil {
				return nil, fmt.Errorf("nats: connect %s: %w (last error: %w)", servers, ctx.Err(), redactErr(last, cfg))
			}
			return nil, fmt.Errorf("nats: connect %s: %w", servers, ctx.Err())
		}
	}
	return nc, nil
}

func options(cfg ConnConfig, log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", redactErr(err, cfg))
				return
			}
			log.Info("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { log.Info("nats connection closed") }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("nats async error", "subject", sub.Subject, "err", redactErr(err, cfg))
				return
			}
			log.Warn("nats async error", "err", redactErr(err, cfg))
		}),
	}
	if cfg.Name != "" {
		opts = append(opts, nats.Name(cfg.Name))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.User != "" || cfg.Password != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			// The error may quote the file's content: keep only its class.
			return nil, fmt.Errorf("nats: nkey seed file %s: cannot load a user seed", cfg.NKeySeedFile)
		}
		opts = append(opts, opt)
	}
	tlsCfg, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if tlsCfg != nil {
		opts = append(opts, nats.Secure(tlsCfg))
	}
	return opts, nil
}

// RedactURL returns a server URL list with any user information removed, fit
// for logs.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok {
			scheme, rest = "", p
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = "[REDACTED]@" + rest[at+1:]
		}
		if scheme != "" {
			p = scheme + "://" + rest
		} else {
			p = rest
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// redactErr hides the configured secrets should a client error quote them.
func redactErr(err error, cfg ConnConfig) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	redacted := msg
	for _, secret := range []string{cfg.Token, cfg.Password} {
		if secret != "" {
			redacted = strings.ReplaceAll(redacted, secret, "[REDACTED]")
		}
	}
	if redacted != msg {
		return errors.New(redacted)
	}
	return err
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// FlushTimeout bounds a flush whose context has no deadline.
const FlushTimeout = 10 * time.Second

// Flush waits until the server processed everything sent on nc so far.
// nats.go refuses a context without a deadline; such a context gets
// FlushTimeout.
func Flush(ctx context.Context, nc *nats.Conn) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, FlushTimeout)
		defer cancel()
	}
	return nc.FlushWithContext(ctx)
}
