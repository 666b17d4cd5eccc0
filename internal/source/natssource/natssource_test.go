package natssource_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/natssource"
	"github.com/wps-bridge/bridge/internal/source/sourcetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestConformance(t *testing.T) {
	srv := sourcetest.NATSServer(t, nil)
	pub := connect(t, srv.ClientURL())
	sourcetest.Run(t, sourcetest.Harness{
		New: func(t *testing.T) source.Source {
			src, err := natssource.New(natssource.Config{
				Name:     "core",
				Conn:     natssource.ConnConfig{URL: srv.ClientURL()},
				Subjects: []string{sourcetest.Name(t)},
				Queue:    "bridge",
			}, nil)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return src
		},
		Publish: func(t *testing.T, body []byte, hdr source.Headers) {
			m := &nats.Msg{Subject: sourcetest.Name(t), Data: body, Header: natssource.ToNATSHeaders(hdr)}
			if err := pub.PublishMsg(m); err != nil {
				t.Fatalf("publish: %v", err)
			}
			if err := pub.Flush(); err != nil {
				t.Fatalf("flush: %v", err)
			}
		},
		AtLeastOnce: false,
	})
}

func TestQueueGroupSharesMessages(t *testing.T) {
	t.Parallel()
	srv := sourcetest.NATSServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var srcs [2]*natssource.Source
	for i := range srcs {
		src, err := natssource.New(natssource.Config{
			Name: "core", Conn: natssource.ConnConfig{URL: srv.ClientURL()},
			Subjects: []string{"cmds.>"}, Queue: "bridge",
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		defer src.Close(ctx)
		srcs[i] = src
	}
	pub := natssource.NewPublisher(connect(t, srv.ClientURL()), "cmds.a")
	const n = 200
	for range n {
		if err := pub.Publish(ctx, &source.Message{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	// Each message goes to exactly one member: together they read n (each
	// reads until the total is reached), and then neither has more.
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for _, src := range srcs {
		wg.Go(func() {
			for {
				mu.Lock()
				reached := total >= n
				mu.Unlock()
				if reached {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, 100*time.Millisecond)
				_, _, err := src.Read(rctx)
				rcancel()
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					continue // the other member may be the one receiving
				}
				if err != nil {
					return
				}
				mu.Lock()
				total++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if total != n {
		t.Fatalf("queue group members read %d messages together, want %d", total, n)
	}
	for i, src := range srcs {
		rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		msg, _, err := src.Read(rctx)
		rcancel()
		if err == nil {
			t.Fatalf("member %d read %q after all %d were delivered: a message went to both", i, msg.Body, n)
		}
	}
}

func TestPublisherFlushesAndOverridesSubject(t *testing.T) {
	t.Parallel()
	srv := sourcetest.NATSServer(t, nil)
	sub := connect(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sDefault, err := sub.SubscribeSync("dlq.default")
	if err != nil {
		t.Fatal(err)
	}
	sOther, err := sub.SubscribeSync("dlq.other")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	pubConn := connect(t, srv.ClientURL())
	pub := natssource.NewPublisher(pubConn, "dlq.default")
	tests := []struct {
		name string
		msg  *source.Message
		sub  *nats.Subscription
	}{
		{"default subject", &source.Message{Body: []byte("a"), Headers: source.Headers{{Key: "wps-bridge-error", Value: "bad"}}}, sDefault},
		{"message subject", &source.Message{Body: []byte("b"), Subject: "dlq.other"}, sOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := pub.Publish(ctx, tc.msg); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			got, err := tc.sub.NextMsgWithContext(ctx)
			if err != nil {
				t.Fatalf("receive: %v", err)
			}
			if !bytes.Equal(got.Data, tc.msg.Body) {
				t.Fatalf("body %q, want %q", got.Data, tc.msg.Body)
			}
			for _, h := range tc.msg.Headers {
				if v := got.Header.Get(h.Key); v != h.Value {
					t.Fatalf("header %s = %q, want %q", h.Key, v, h.Value)
				}
			}
		})
	}
	pubConn.Close()
	if err := pub.Publish(ctx, &source.Message{Body: []byte("c")}); err == nil {
		t.Fatal("Publish on a closed connection succeeded")
	}
}

func TestFlattenHeadersSortedAndRoundTrips(t *testing.T) {
	t.Parallel()
	h := nats.Header{"b": {"2", "3"}, "A": {"1"}, "c": {"4"}}
	got := natssource.FlattenHeaders(h)
	want := source.Headers{{Key: "A", Value: "1"}, {Key: "b", Value: "2"}, {Key: "b", Value: "3"}, {Key: "c", Value: "4"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	back := natssource.ToNATSHeaders(got)
	if strings.Join(back["b"], ",") != "2,3" || back.Get("A") != "1" {
		t.Fatalf("round trip: %v", back)
	}
	if natssource.FlattenHeaders(nil) != nil || natssource.ToNATSHeaders(nil) != nil {
		t.Fatal("empty headers must map to nil")
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:s3cret@h:4222", "nats://[REDACTED]@h:4222"},
		{"nats://tok3n@a:1, tls://u:p@b:2", "nats://[REDACTED]@a:1,tls://[REDACTED]@b:2"},
		{"u:p@host:4222", "[REDACTED]@host:4222"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			if got := natssource.RedactURL(tc.in); got != tc.want {
				t.Fatalf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestDialAuth connects to servers that require each authentication method,
// with the right and the wrong secret, and checks that no secret leaks into
// errors or logs.
func TestDialAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	userPub, _ := user.PublicKey()
	userSeed, _ := user.Seed()
	seedFile := writeFile(t, dir, "user.nk", userSeed)
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	otherSeedFile := writeFile(t, dir, "other.nk", otherSeed)

	ca := newTestCA(t, dir)

	tests := []struct {
		name    string
		server  *server.Options
		conn    natssource.ConnConfig
		wantErr bool
		secret  string
	}{
		{"token", &server.Options{Authorization: "t0ken-secret"}, natssource.ConnConfig{Token: "t0ken-secret"}, false, "t0ken-secret"},
		{"wrong token", &server.Options{Authorization: "t0ken-secret"}, natssource.ConnConfig{Token: "wr0ng-secret"}, true, "wr0ng-secret"},
		{"user password", &server.Options{Username: "bridge", Password: "pa55-secret"}, natssource.ConnConfig{User: "bridge", Password: "pa55-secret"}, false, "pa55-secret"},
		{"wrong password", &server.Options{Username: "bridge", Password: "pa55-secret"}, natssource.ConnConfig{User: "bridge", Password: "bad-pa55"}, true, "bad-pa55"},
		{"nkey", &server.Options{Nkeys: []*server.NkeyUser{{Nkey: userPub}}}, natssource.ConnConfig{NKeySeedFile: seedFile}, false, string(userSeed)},
		{"wrong nkey", &server.Options{Nkeys: []*server.NkeyUser{{Nkey: userPub}}}, natssource.ConnConfig{NKeySeedFile: otherSeedFile}, true, string(otherSeed)},
		{"tls with test CA", ca.serverOptions(), natssource.ConnConfig{TLS: natssource.TLSConfig{CAFile: ca.caFile}}, false, ""},
		{"tls unknown CA", ca.serverOptions(), natssource.ConnConfig{TLS: natssource.TLSConfig{CAFile: newTestCA(t, t.TempDir()).caFile}}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := sourcetest.NATSServer(t, tc.server)
			cfg := tc.conn
			cfg.URL = srv.ClientURL()
			logs := &logBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			// A failing Dial may only end at the deadline (a TLS error is
			// retried); a succeeding one gets room for a loaded machine.
			timeout := 10 * time.Second
			if tc.wantErr {
				timeout = 3 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			nc, err := natssource.Dial(ctx, cfg, logger)
			if tc.wantErr {
				if err == nil {
					nc.Close()
					t.Fatal("Dial succeeded, want an error")
				}
				if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
					t.Fatalf("error leaks the secret: %v", err)
				}
			} else {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				if err := nc.FlushWithContext(ctx); err != nil {
					t.Fatalf("round trip: %v", err)
				}
				nc.Close()
			}
			if tc.secret != "" && strings.Contains(logs.String(), tc.secret) {
				t.Fatalf("logs leak the secret:\n%s", logs.String())
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := natssource.New(natssource.Config{Name: "x"}, nil)
	if err == nil || !strings.Contains(err.Error(), "conn.url") || !strings.Contains(err.Error(), "subjects") {
		t.Fatalf("New with an empty config: %v, want errors naming conn.url and subjects", err)
	}
}

// TestReadWithoutServerHonoursContext: Dial keeps retrying a server that is
// down until the caller's deadline.
func TestReadWithoutServerHonoursContext(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	src, err := natssource.New(natssource.Config{Conn: natssource.ConnConfig{URL: "nats://" + addr}, Subjects: []string{"x"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, _, err := src.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read without a server: %v, want context.DeadlineExceeded", err)
	}
}

// logBuffer collects log output written from the client's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testCA struct {
	caFile   string
	cert     tls.Certificate
	certPool *x509.CertPool
}

func (ca testCA) serverOptions() *server.Options {
	return &server.Options{
		TLS:       true,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.cert}, MinVersion: tls.VersionTLS12},
	}
}

// newTestCA makes a CA and a server certificate for 127.0.0.1 signed by it,
// writing the CA certificate to dir.
func newTestCA(t *testing.T, dir string) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wps-bridge test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testCA{
		caFile:   writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		cert:     tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey},
		certPool: pool,
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The bridge connects and publishes with contexts that have no deadline;
// nats.go's FlushWithContext refuses those, so the adapter must not pass
// them through.
func TestConnectAndPublishWithoutDeadline(t *testing.T) {
	t.Parallel()
	srv := sourcetest.NATSServer(t, nil)
	src, err := natssource.New(natssource.Config{Name: "n", Conn: natssource.ConnConfig{URL: srv.ClientURL()}, Subjects: []string{"wps.>"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	if err := src.Connect(context.Background()); err != nil {
		t.Fatalf("Connect without a deadline: %v", err)
	}
	pub := natssource.NewPublisher(src.Conn(), "wps.x")
	if err := pub.Publish(context.Background(), &source.Message{Body: []byte("hi")}); err != nil {
		t.Fatalf("Publish without a deadline: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, ack, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Body) != "hi" {
		t.Errorf("body %q", msg.Body)
	}
	if err := ack(ctx, nil); err != nil {
		t.Error(err)
	}
}
