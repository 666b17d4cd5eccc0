package chaos

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/wps-bridge/bridge/internal/emulator"
	"github.com/wps-bridge/bridge/internal/wps"
	"github.com/wps-bridge/bridge/tests/testkit"
)

// debugLogs raises a generated bridge.yaml to debug logging, so that the log
// scan sees as much as the bridge can print.
func debugLogs(yaml string) string { return strings.Replace(yaml, "level: info", "level: debug", 1) }

// TestInsecureHTTPRefused: a plain http:// Web PubSub endpoint is refused
// unless it is loopback (client) or explicitly allowed, and the refusal never
// repeats the access key.
func TestInsecureHTTPRefused(t *testing.T) {
	t.Parallel()
	t.Run("client", func(t *testing.T) {
		cases := []struct {
			endpoint string
			insecure bool
			ok       bool
		}{
			{"http://10.1.2.3:8080", false, false},
			{"http://wps.example.com", false, false},
			{"http://127.0.0.1:8080", false, true},
			{"http://localhost:8080", false, true},
			{"http://[::1]:8080", false, true},
			{"http://10.1.2.3:8080", true, true},
			{"https://name.webpubsub.azure.com", false, true},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s insecure=%v", c.endpoint, c.insecure), func(t *testing.T) {
				_, err := wps.NewClient(c.endpoint, wps.WithAccessKey(accessKey), wps.WithInsecureHTTP(c.insecure))
				if c.ok && err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !c.ok && !errors.Is(err, wps.ErrInvalidOption) {
					t.Fatalf("err = %v, want ErrInvalidOption", err)
				}
				_, err = wps.NewClientFromConnectionString("Endpoint="+c.endpoint+";AccessKey="+accessKey+";Version=1.0;", wps.WithInsecureHTTP(c.insecure))
				if (err == nil) != c.ok {
					t.Fatalf("from connection string: err = %v, want ok=%v", err, c.ok)
				}
				if err != nil && strings.Contains(err.Error(), accessKey) {
					t.Fatal("the error repeats the access key")
				}
			})
		}
	})
	t.Run("bridge validate", func(t *testing.T) {
		cases := []struct {
			name, endpoint, allow string
			ok                    bool
		}{
			{"remote http refused", "http://10.1.2.3:8080", "", false},
			{"remote http allowed explicitly", "http://10.1.2.3:8080", "  allowInsecureHTTP: true\n", true},
			// bridge.yaml is stricter than the client: loopback needs the flag too.
			{"loopback http without the flag", "http://127.0.0.1:8080", "", false},
			{"https accepted", "https://name.webpubsub.azure.com", "", true},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				dir := t.TempDir()
				cfg := filepath.Join(dir, "bridge.yaml")
				yaml := fmt.Sprintf("webpubsub:\n  endpoint: %s\n  accessKey: ${CHAOS_KEY}\n  hub: %s\n%ssources:\n  - name: c\n    type: nats\n    url: nats://127.0.0.1:4222\n    subjects: [x]\n",
					c.endpoint, hub, c.allow)
				if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bridgeBin, "validate", "-c", cfg)
				cmd.Env = []string{"CHAOS_KEY=" + accessKey, "HOME=" + dir}
				out, err := cmd.CombinedOutput()
				if c.ok != (err == nil) {
					t.Fatalf("validate: err=%v, want ok=%v\n%s", err, c.ok, out)
				}
				if !c.ok && !strings.Contains(string(out), "allowInsecureHTTP") {
					t.Errorf("the refusal does not say how to allow it:\n%s", out)
				}
				if leaks := scanLog("validate", out); len(leaks) > 0 {
					t.Errorf("validate output leaks: %v", leaks)
				}
			})
		}
	})
}

// testPKI is a test CA and a server certificate for 127.0.0.1 and localhost.
type testPKI struct {
	caFile string
	server tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chaos test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testPKI{caFile: caFile, server: tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}
}

// authFlow publishes good commands and a few invalid ones through a secured
// broker and checks that all good ones reach Web PubSub and the invalid ones
// reach the (equally secured) dead letter.
const (
	authGood    = 300
	authInvalid = 5
)

func invalidEnvelope(i int) []byte {
	return fmt.Appendf(nil, `{"actionName":"sendToGroup","group":"bad\ngroup %d","data":1}`, i)
}

// TestNATSTLSAuth runs the bridge against a nats-server with TLS (a test CA)
// and token or nkey authentication: commands flow end to end, the dead letter
// (which inherits the source's TLS and auth) works, and a wrong token is
// refused with the broker's reason and nothing delivered.
func TestNATSTLSAuth(t *testing.T) {
	pki := newTestPKI(t)
	token := "chaos-nats-token-" + randomHex(t)
	addSecret(token, "NATS token")
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := user.Seed()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := user.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	addSecret(string(seed), "nkey seed")
	seedFile := filepath.Join(t.TempDir(), "bridge.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	nkeyOpt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsOpts := func(o *server.Options) {
		o.TLS = true
		o.TLSTimeout = 5
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}
	}
	cases := []struct {
		name       string
		server     func(*server.Options)
		client     nats.Option
		bridgeAuth string
		env        map[string]string
		wantReady  bool
	}{
		{
			name:       "TLS and token",
			server:     func(o *server.Options) { tlsOpts(o); o.Authorization = token },
			client:     nats.Token(token),
			bridgeAuth: "    auth:\n      token: ${CHAOS_NATS_TOKEN}\n",
			env:        map[string]string{"CHAOS_NATS_TOKEN": token},
			wantReady:  true,
		},
		{
			name:       "TLS and nkey",
			server:     func(o *server.Options) { tlsOpts(o); o.Nkeys = []*server.NkeyUser{{Nkey: pub}} },
			client:     nkeyOpt,
			bridgeAuth: "    auth:\n      nkeySeedFile: " + seedFile + "\n",
			wantReady:  true,
		},
		{
			name:       "TLS and a wrong token",
			server:     func(o *server.Options) { tlsOpts(o); o.Authorization = token },
			client:     nats.Token(token),
			bridgeAuth: "    auth:\n      token: ${CHAOS_NATS_TOKEN}\n",
			env:        map[string]string{"CHAOS_NATS_TOKEN": token + "-wrong"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSink(t)
			ns := startNATS(t, c.server)
			url := fmt.Sprintf("tls://127.0.0.1:%d", ns.opts.Port)
			_, js := connectJS(t, url, c.client, nats.RootCAs(pki.caFile))
			createStream(t, js, cmdStream, "chaos.>")
			env := map[string]string{envConn: s.connString}
			for k, v := range c.env {
				env[k] = v
			}
			extra := "    tls:\n      caFile: " + pki.caFile + "\n" + c.bridgeAuth
			b := startBridge(t, "bridge", debugLogs(bridgeYAML(jsSourceYAML("js", url, cmdStream, cmdSubject, "bridge", extra),
				jsDLQYAML(dlqStream, dlqSubject), freeAddr(t), "")), env)
			if !c.wantReady {
				// The dead letter connects at start, so a wrong credential stops the
				// process with the broker's reason (a restart loop an operator sees),
				// or a bridge without one stays not-ready; never a delivery.
				testkit.Eventually(t, 20*time.Second, "refused with a wrong token", func() (bool, string) {
					if b.exited() {
						return true, ""
					}
					code, body := b.readyz()
					return code == http.StatusServiceUnavailable && strings.Contains(body, "connect"), fmt.Sprintf("%d %s", code, body)
				})
				if b.exited() {
					if b.waitErr == nil {
						t.Fatal("the bridge exited 0 with a wrong token")
					}
					if log := b.logTail(); !strings.Contains(log, "Authorization Violation") {
						t.Errorf("the exit does not name the cause:\n%s", log)
					}
				}
				if s.distinct() != 0 {
					t.Fatalf("delivered %d commands without a valid token", s.distinct())
				}
				return
			}
			b.waitReady(t, 30*time.Second)
			ps, ids := payloads("tls", authGood, 8)
			msgs := make([]*nats.Msg, 0, authGood+authInvalid)
			for _, p := range ps {
				msgs = append(msgs, envelopeMsg(cmdSubject, p))
			}
			for i := range authInvalid {
				m := nats.NewMsg(cmdSubject)
				m.Header.Set("Chaos-Id", fmt.Sprintf("bad-%d", i))
				m.Data = invalidEnvelope(i)
				msgs = append(msgs, m)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := jsPublish(ctx, js, msgs); err != nil {
				t.Fatal(err)
			}
			s.waitDistinct(t, authGood, time.Minute)
			if m, sample := s.missing(ids); m > 0 {
				t.Fatalf("%d lost, e.g. %v", m, sample)
			}
			testkit.Eventually(t, 30*time.Second, "invalid commands dead-lettered over TLS", func() (bool, string) {
				n := len(streamMsgs(t, js, dlqStream))
				return n == authInvalid, fmt.Sprintf("%d of %d", n, authInvalid)
			})
			if err := b.stop(30 * time.Second); err != nil {
				t.Errorf("bridge stop: %v", err)
			}
		})
	}
}

// TestKafkaSASLSCRAM runs the bridge against a kfake cluster that requires
// SASL/SCRAM (SHA-256 and SHA-512): commands flow end to end and invalid ones
// reach the Kafka dead letter, which inherits the source's SASL settings.
func TestKafkaSASLSCRAM(t *testing.T) {
	password := "chaos-kafka-password-" + randomHex(t)
	addSecret(password, "Kafka password")
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			const dlTopic = "chaos-dlq"
			s := newSink(t)
			kc := startKafka(t, kfake.EnableSASL(), kfake.Superuser(mech, "bridge", password), kfake.SeedTopics(4, cmdTopic, dlTopic))
			brokers := kc.ListenAddrs()
			auth := scram.Auth{User: "bridge", Pass: password}
			m := auth.AsSha256Mechanism()
			if mech == "SCRAM-SHA-512" {
				m = auth.AsSha512Mechanism()
			}
			admin := kafkaClient(t, brokers, kgo.SASL(m))
			sasl := fmt.Sprintf("    sasl:\n      mechanism: %s\n      user: bridge\n      password: ${CHAOS_KAFKA_PASSWORD}\n", mech)
			b := startBridge(t, "bridge", debugLogs(bridgeYAML(kafkaSourceYAML("kafka", brokers, cmdTopic, "bridge", sasl),
				"deadLetter:\n  type: kafka\n  topic: "+dlTopic, freeAddr(t), "")),
				map[string]string{envConn: s.connString, "CHAOS_KAFKA_PASSWORD": password})
			b.waitReady(t, 30*time.Second)
			ps, ids := payloads("sasl", authGood, 8)
			recs := make([]*kgo.Record, 0, authGood+authInvalid)
			for _, p := range ps {
				recs = append(recs, kafkaRecord(cmdTopic, p))
			}
			for i := range authInvalid {
				recs = append(recs, &kgo.Record{Topic: cmdTopic, Value: invalidEnvelope(i)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := kafkaProduce(ctx, admin, recs); err != nil {
				t.Fatal(err)
			}
			s.waitDistinct(t, authGood, 2*time.Minute)
			if n, sample := s.missing(ids); n > 0 {
				t.Fatalf("%d lost, e.g. %v", n, sample)
			}
			if dl := kafkaReadAll(t, brokers, dlTopic, authInvalid, time.Minute, kgo.SASL(m)); len(dl) != authInvalid {
				t.Fatalf("dead letter holds %d records, want %d", len(dl), authInvalid)
			}
			if err := b.stop(30 * time.Second); err != nil {
				t.Errorf("bridge stop: %v", err)
			}
		})
	}
}

// TestEmulatorClientTokens: the emulator accepts a client token for its hub
// and refuses one for another hub, an expired one and one signed with
// another key.
func TestEmulatorClientTokens(t *testing.T) {
	t.Parallel()
	emu, err := emulator.New(emulator.Config{AccessKey: accessKey, Logger: fileLogger(t, "emulator")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() {
		_ = emu.Close()
		srv.Close()
	})
	token := func(aud string, exp time.Time, key string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"aud": aud, "sub": "alice", "iat": time.Now().Add(-time.Hour).Unix(), "exp": exp.Unix(),
		}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	aud := func(h string) string { return srv.URL + "/client/hubs/" + h }
	soon := time.Now().Add(time.Hour)
	cases := []struct {
		name, hub, token string
		ok               bool
	}{
		{"own hub", hub, token(aud(hub), soon, accessKey), true},
		{"token for another hub", hub, token(aud("otherhub"), soon, accessKey), false},
		{"own token on another hub", "otherhub", token(aud(hub), soon, accessKey), false},
		{"expired ten minutes ago", hub, token(aud(hub), time.Now().Add(-10*time.Minute), accessKey), false},
		{"signed with another key", hub, token(aud(hub), soon, otherKey), false},
		{"no token", hub, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/client/hubs/" + c.hub + "?access_token=" + c.token
			conn, resp, err := websocket.Dial(ctx, u, nil)
			if c.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				_ = conn.Close(websocket.StatusNormalClosure, "")
				return
			}
			if err == nil {
				_ = conn.Close(websocket.StatusNormalClosure, "")
				t.Fatal("connected, want refused")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				code := 0
				if resp != nil {
					code = resp.StatusCode
				}
				t.Fatalf("refused with status %d (%v), want 401", code, err)
			}
		})
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}
