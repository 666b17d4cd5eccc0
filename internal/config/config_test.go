package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	testKey = "s3cr3t-access-key"
	testCS  = "Endpoint=https://demo.webpubsub.azure.com;AccessKey=" + testKey + ";Version=1.0;"
)

var testEnv = envMap(map[string]string{
	"CS":          testCS,
	"KEY":         testKey,
	"NATS_PASS":   "nats-pa55",
	"KAFKA_PASS":  "kafka-pa55",
	"NATS_TOKEN":  "nats-t0ken",
	"MAX":         "32",
	"LOG_LEVEL":   "debug",
	"KAFKA_TOPIC": "wps-commands",
})

// wpsOK and jsSource are fragments of a valid file that cases build on.
const (
	wpsOK = `
webpubsub:
  connectionString: ${CS}
  hub: chat
`
	jsSource = `
sources:
  - name: cmds
    type: jetstream
    url: nats://127.0.0.1:4222
    stream: WPS
    subjects: ["wps.>"]
    durable: bridge
`
	kafkaSource = `
  - name: kcmds
    type: kafka
    brokers: ["127.0.0.1:9092"]
    topics: [wps-commands]
    group: wps-bridge
`
)

func mustParse(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(yaml), testEnv)
	if err != nil {
		t.Fatalf("Parse: %v\n--- input ---\n%s", err, yaml)
	}
	return cfg
}

// problemsOf parses yaml and returns its problems as "path: msg" lines.
func problemsOf(t *testing.T, yaml string) []string {
	t.Helper()
	cfg, err := Parse([]byte(yaml), testEnv)
	if err == nil {
		t.Fatalf("Parse succeeded, want an error\n--- input ---\n%s", yaml)
	}
	if cfg != nil {
		t.Errorf("Parse returned a config along with an error")
	}
	fes := FieldErrors(err)
	if len(fes) == 0 {
		t.Fatalf("error has no *FieldError: %v", err)
	}
	lines := make([]string, len(fes))
	for i, fe := range fes {
		lines[i] = fe.Error()
	}
	if got := strings.Join(lines, "\n"); got != err.Error() {
		t.Errorf("err.Error() is not one problem per line:\n%s\nwant\n%s", err.Error(), got)
	}
	for _, secret := range []string{testKey, "nats-pa55", "kafka-pa55", "nats-t0ken", "literal-secret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks secret %q:\n%v", secret, err)
		}
	}
	return lines
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, wpsOK+jsSource+kafkaSource+`
routes:
  - match: "chat.*.msg"
    action: sendToGroup
    group: "{subject.1}"
    coalesce: {}
  - match: "wps.>"
`)
	want := &Config{
		WebPubSub: WebPubSub{ConnectionString: testCS, Hub: "chat", Timeout: 10 * time.Second, MaxInFlight: 64},
		Sources: []Source{
			{
				Name: "cmds", Type: BrokerJetStream, URL: "nats://127.0.0.1:4222", Stream: "WPS",
				Subjects: []string{"wps.>"}, Durable: "bridge",
				FetchBatch: 256, MaxAckPending: 2048, AckWait: 30 * time.Second,
			},
			{
				Name: "kcmds", Type: BrokerKafka, Brokers: []string{"127.0.0.1:9092"},
				Topics: []string{"wps-commands"}, Group: "wps-bridge", StartOffset: "first", SessionTimeout: 10 * time.Second,
			},
		},
		Routes: []Route{
			{
				Match: "chat.*.msg", Action: "sendToGroup", Body: BodyRaw, Group: "{subject.1}",
				Coalesce: &Coalesce{Count: 100, Bytes: 1 << 20, Linger: 5 * time.Millisecond},
			},
			{Match: "wps.>", Body: BodyEnvelope},
		},
		Router: Router{Lanes: 64, LaneQueue: 256, MaxPending: 4096, DrainTimeout: 10 * time.Second, MulticastChunk: 100},
		Retry: Retry{
			Initial: 100 * time.Millisecond, Max: 30 * time.Second,
			MaxElapsed: 10 * time.Minute, SystemicInterval: 5 * time.Second,
		},
		DeadLetter: DeadLetter{Type: BrokerNone},
		HTTP:       HTTP{Listen: "127.0.0.1:9464"},
		Log:        Log{Level: "info", Format: "text"},
		Runtime:    Runtime{GCHeapFloorMiB: 32},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Parse =\n%#v\nwant\n%#v", cfg, want)
	}
}

func TestParseExplicitValuesOverrideDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, wpsOK+jsSource+`
    fetchBatch: 10
    ackWait: 1m30s
router: {lanes: 8, drainTimeout: 250ms}
retry: {initial: 1s, max: 2s, maxElapsed: 1h, systemicInterval: 30s}
http: {listen: ":8080"}
log: {level: warn, format: json}
`)
	if got := cfg.Sources[0].FetchBatch; got != 10 {
		t.Errorf("fetchBatch = %d, want 10", got)
	}
	if got := cfg.Sources[0].AckWait; got != 90*time.Second {
		t.Errorf("ackWait = %v, want 1m30s", got)
	}
	if cfg.Router.Lanes != 8 || cfg.Router.DrainTimeout != 250*time.Millisecond || cfg.Router.LaneQueue != 256 {
		t.Errorf("router = %+v", cfg.Router)
	}
	if cfg.Retry != (Retry{Initial: time.Second, Max: 2 * time.Second, MaxElapsed: time.Hour, SystemicInterval: 30 * time.Second}) {
		t.Errorf("retry = %+v", cfg.Retry)
	}
	if cfg.HTTP.Listen != ":8080" || cfg.Log != (Log{Level: "warn", Format: "json"}) {
		t.Errorf("http/log = %+v %+v", cfg.HTTP, cfg.Log)
	}
}

func TestParseEnvExpansion(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, wpsOK+`
  maxInFlight: ${MAX}
  timeout: ${TIMEOUT:-3s}
  allowInsecureHTTP: "${INSECURE:-false}"
sources:
  - name: ${SOURCE_NAME:-kcmds}
    type: kafka
    brokers: ["${KAFKA_HOST:-127.0.0.1}:${KAFKA_PORT:-9092}"]
    topics: ["${KAFKA_TOPIC}"]
    group: wps-bridge
    sasl: {mechanism: SCRAM-SHA-512, user: bridge, password: "${KAFKA_PASS}"}
log: {level: "${LOG_LEVEL}"}
routes:
  - match: "$$JS.EVENT.>"
`)
	if cfg.WebPubSub.ConnectionString != testCS {
		t.Errorf("connectionString not expanded")
	}
	if cfg.WebPubSub.MaxInFlight != 32 || cfg.WebPubSub.Timeout != 3*time.Second || cfg.WebPubSub.AllowInsecureHTTP {
		t.Errorf("webpubsub = maxInFlight %d timeout %v insecure %v", cfg.WebPubSub.MaxInFlight, cfg.WebPubSub.Timeout, cfg.WebPubSub.AllowInsecureHTTP)
	}
	s := cfg.Sources[0]
	if s.Name != "kcmds" || !slices.Equal(s.Brokers, []string{"127.0.0.1:9092"}) || !slices.Equal(s.Topics, []string{"wps-commands"}) {
		t.Errorf("source = %+v", s)
	}
	if s.SASL.Password != "kafka-pa55" {
		t.Errorf("sasl.password not expanded")
	}
	if cfg.Log.Level != "debug" {
		t.Errorf("log.level = %q, want debug", cfg.Log.Level)
	}
	if cfg.Routes[0].Match != "$JS.EVENT.>" {
		t.Errorf("routes[0].match = %q, want $JS.EVENT.>", cfg.Routes[0].Match)
	}
}

func TestKafkaBrokersFromOneVariable(t *testing.T) {
	t.Parallel()
	env := envMap(map[string]string{"CS": testCS, "KAFKA_BROKERS": "k1:9092, k2:9092,"})
	cfg, err := Parse([]byte(wpsOK+`
sources:
  - {name: k, type: kafka, brokers: ["${KAFKA_BROKERS}", "k3:9092"], topics: [t], group: g}
deadLetter: {type: kafka, topic: dlq, brokers: ["${KAFKA_BROKERS}"]}
`), env)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Sources[0].Brokers, []string{"k1:9092", "k2:9092", "k3:9092"}; !slices.Equal(got, want) {
		t.Errorf("sources[0].brokers = %q, want %q", got, want)
	}
	if got, want := cfg.DeadLetter.Brokers, []string{"k1:9092", "k2:9092"}; !slices.Equal(got, want) {
		t.Errorf("deadLetter.brokers = %q, want %q", got, want)
	}
}

func TestParseEnvExpansionCannotInjectYAML(t *testing.T) {
	t.Parallel()
	env := envMap(map[string]string{"CS": testCS, "HUB": "chat\nlog: {level: nope}"})
	_, err := Parse([]byte(`
webpubsub: {connectionString: "${CS}", hub: "${HUB}"}
`+jsSource), env)
	got := FieldErrors(err)
	if len(got) != 1 || got[0].Path != "webpubsub.hub" {
		t.Fatalf("problems = %v, want only webpubsub.hub (the value stays one scalar)", err)
	}
}

func TestParseDecodeProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{
			name: "missing variable",
			yaml: wpsOK + jsSource + "http: {listen: \"${LISTEN}\"}\n",
			want: []string{"http.listen: environment variable LISTEN is not set (write ${LISTEN:-} to allow empty)"},
		},
		{
			name: "unknown top-level key with hint",
			yaml: wpsOK + jsSource + "deadletter: {type: none}\n",
			want: []string{`deadletter: unknown key (did you mean "deadLetter"?)`},
		},
		{
			name: "unknown nested key in a list",
			yaml: wpsOK + jsSource + kafkaSource + "    topic: x\n",
			want: []string{`sources[1].topic: unknown key (did you mean "topics"?)`},
		},
		{
			name: "unknown key without hint",
			yaml: wpsOK + "  colour: blue\n" + jsSource,
			want: []string{"webpubsub.colour: unknown key"},
		},
		{
			name: "duplicate key",
			yaml: wpsOK + "  hub: other\n" + jsSource,
			want: []string{"webpubsub.hub: duplicate key"},
		},
		{
			name: "duration without unit",
			yaml: wpsOK + "  timeout: 10\n" + jsSource,
			want: []string{`webpubsub.timeout: duration "10" needs a unit, e.g. "10s" or "10ms"`},
		},
		{
			name: "bad duration",
			yaml: wpsOK + jsSource + "retry: {initial: soon}\n",
			want: []string{`retry.initial: invalid duration "soon": use a number with a unit, e.g. "100ms", "10s", "5m"`},
		},
		{
			name: "int expected",
			yaml: wpsOK + "  maxInFlight: many\n" + jsSource,
			want: []string{`webpubsub.maxInFlight: must be an integer, got "many"`},
		},
		{
			name: "bool expected",
			yaml: wpsOK + "  aad: yes please\n" + jsSource,
			want: []string{`webpubsub.aad: must be true or false, got "yes please"`},
		},
		{
			name: "scalar where a list is due",
			yaml: wpsOK + `
sources:
  - name: k
    type: kafka
    brokers: 127.0.0.1:9092
    topics: [t]
    group: g
`,
			want: []string{"sources[0].brokers: must be a list, got a scalar"},
		},
		{
			name: "mapping where a value is due",
			yaml: `webpubsub: {connectionString: "${CS}", hub: {name: chat}}` + "\n" + jsSource,
			want: []string{"webpubsub.hub: must be a single value, got a mapping"},
		},
		{
			name: "list where a mapping is due",
			yaml: wpsOK + jsSource + "router: [1, 2]\n",
			want: []string{"router: must be a mapping, got a list"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := problemsOf(t, tt.yaml); !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseYAMLSyntaxError(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("webpubsub: [unclosed\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "parse config") {
		t.Fatalf("err = %v, want a parse error", err)
	}
}

func TestParseMergeKeys(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, wpsOK+`
sources:
  - &js
    name: a
    type: jetstream
    url: nats://127.0.0.1:4222
    stream: WPS
    durable: bridge
  - <<: *js
    name: b
    durable: other
`)
	b := cfg.Sources[1]
	if b.Name != "b" || b.Durable != "other" || b.Stream != "WPS" || b.URL != "nats://127.0.0.1:4222" {
		t.Errorf("merged source = %+v, want a's keys with b's name and durable", b)
	}
}

func TestParseValidConfigs(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml string }{
		{"jetstream", wpsOK + jsSource},
		{"kafka with sasl file and tls", wpsOK + `
sources:
  - name: k
    type: kafka
    brokers: [a:9092, b:9093]
    topics: [t1, t.2]
    group: g
    startOffset: last
    sasl: {mechanism: PLAIN, user: u, passwordFile: /run/secrets/kafka}
    tls: {enabled: true, caFile: /ca.pem}
`},
		{"nats with queue, token from env, mTLS", wpsOK + `
sources:
  - name: n
    type: nats
    url: tls://a:4222,tls://b:4222
    subjects: [wps.cmd, "wps.*.x"]
    queue: bridge
    auth: {token: "${NATS_TOKEN}"}
    tls: {certFile: /c.pem, keyFile: /k.pem}
`},
		{"endpoint and access key from env", `
webpubsub: {endpoint: "https://x.webpubsub.azure.com", accessKey: "${KEY}"}
` + jsSource},
		{"endpoint and access key file", `
webpubsub: {endpoint: "https://x.webpubsub.azure.com", accessKeyFile: /run/secrets/wps}
` + jsSource},
		{"endpoint and aad with reverse proxy", `
webpubsub: {endpoint: "https://x.webpubsub.azure.com", aad: true, reverseProxy: "https://apim.example.com"}
` + jsSource},
		{"insecure http allowed", `
webpubsub: {connectionString: "Endpoint=http://127.0.0.1:8080;AccessKey=${KEY};Version=1.0;", allowInsecureHTTP: true}
` + jsSource},
		{"nats auth user password file", wpsOK + jsSource + "    auth: {user: bridge, passwordFile: /p}\n"},
		{"nats creds", wpsOK + jsSource + "    auth: {credsFile: /bridge.creds}\n"},
		{"jetstream dead letter on another subject", wpsOK + jsSource + `
deadLetter: {type: jetstream, stream: WPS_DLQ, subject: dlq.wps, createStream: true}
`},
		{"kafka dead letter", wpsOK + "sources:" + kafkaSource + "deadLetter: {type: kafka, topic: wps-dlq}\n"},
		{"routes", wpsOK + jsSource + `
routes:
  - {match: "wps.rooms.*", source: cmds, action: SendToGroupAction, group: "{subject.2}", dataType: text, ttl: 300}
  - {match: "wps.users.>", action: sendToUser, userId: "{header.X-User}", key: "{key}-{partition}", hub: "{topic}"}
  - {match: "wps.env.>", body: envelope, action: closeClientConnection}
  - {match: "wps.co", action: sendToAll, coalesce: {count: 10, bytes: 65536, linger: 20ms}}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mustParse(t, tt.yaml)
		})
	}
}

func TestParseValidationRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       string // one of the problems, exactly
	}{
		// webpubsub
		{"no credential", "webpubsub: {hub: chat}\n" + jsSource,
			"webpubsub: set one of connectionString, endpoint + accessKey (or accessKeyFile), endpoint + aad: true"},
		{"two credentials", `webpubsub: {connectionString: "${CS}", endpoint: "https://x", aad: true}` + "\n" + jsSource,
			"webpubsub: connectionString, accessKey/accessKeyFile and aad are mutually exclusive"},
		{"endpoint with connection string", `webpubsub: {connectionString: "${CS}", endpoint: "https://x"}` + "\n" + jsSource,
			"webpubsub.endpoint: not allowed with connectionString (it carries the endpoint)"},
		{"key and key file", `webpubsub: {endpoint: "https://x", accessKey: "${KEY}", accessKeyFile: /k}` + "\n" + jsSource,
			"webpubsub.accessKeyFile: set accessKey or accessKeyFile, not both"},
		{"aad without endpoint", "webpubsub: {aad: true}\n" + jsSource,
			"webpubsub.endpoint: required with accessKey, accessKeyFile or aad"},
		{"endpoint not a URL", "webpubsub: {aad: true, endpoint: x.webpubsub.azure.com}\n" + jsSource,
			`webpubsub.endpoint: must be an http(s) URL, got "x.webpubsub.azure.com"`},
		{"http endpoint", "webpubsub: {aad: true, endpoint: \"http://x\"}\n" + jsSource,
			"webpubsub.endpoint: endpoint is plain http: set webpubsub.allowInsecureHTTP: true to allow it (emulator, tests)"},
		{"http in connection string", `webpubsub: {connectionString: "Endpoint=http://e;AccessKey=${KEY};"}` + "\n" + jsSource,
			"webpubsub.connectionString: endpoint is plain http: set webpubsub.allowInsecureHTTP: true to allow it (emulator, tests)"},
		{"connection string without key", `webpubsub: {connectionString: "${NO_KEY:-Endpoint=https://e;}"}` + "\n" + jsSource,
			"webpubsub.connectionString: wps: invalid option: connection string: missing AccessKey"},
		{"bad hub", `webpubsub: {connectionString: "${CS}", hub: "9chat"}` + "\n" + jsSource,
			`webpubsub.hub: invalid name: must start with a letter, got "9chat"`},
		{"bad reverse proxy", wpsOK + "  reverseProxy: apim\n" + jsSource,
			`webpubsub.reverseProxy: must be an http(s) URL, got "apim"`},
		{"negative timeout", wpsOK + "  timeout: -1s\n" + jsSource, "webpubsub.timeout: must be positive"},
		{"negative maxInFlight", wpsOK + "  maxInFlight: -1\n" + jsSource, "webpubsub.maxInFlight: must be at least 1"},
		// The client refuses these at start: validate must too (regression).
		{"endpoint with a query", "webpubsub: {aad: true, endpoint: \"https://x?api-version=1\"}\n" + jsSource,
			"webpubsub.endpoint: must not have user info, a query or a fragment"},
		{"endpoint with user info", "webpubsub: {aad: true, endpoint: \"https://u:literal-secret@x\"}\n" + jsSource,
			"webpubsub.endpoint: must not have user info, a query or a fragment"},
		{"reverse proxy with a fragment", wpsOK + "  reverseProxy: \"https://apim#x\"\n" + jsSource,
			"webpubsub.reverseProxy: must not have user info, a query or a fragment"},
		{"http reverse proxy", wpsOK + "  reverseProxy: \"http://apim.internal\"\n" + jsSource,
			"webpubsub.reverseProxy: reverseProxy is plain http: set webpubsub.allowInsecureHTTP: true to allow it (emulator, tests)"},
		// sources
		{"no sources", wpsOK, "sources: at least one source is required"},
		{"unnamed source", wpsOK + "sources:\n  - {type: nats, url: \"nats://h:4222\", subjects: [a]}\n", "sources[0].name: required"},
		{"bad source name", wpsOK + "sources:\n  - {name: \"a b\", type: nats, url: \"nats://h:4222\", subjects: [a]}\n",
			`sources[0].name: must be 1-64 letters, digits, '.', '_' or '-', got "a b"`},
		{"duplicate source name", wpsOK + jsSource + "  - {name: cmds, type: nats, url: \"nats://h:4222\", subjects: [a]}\n",
			`sources[1].name: duplicate: "cmds" is also sources[0]`},
		{"missing type", wpsOK + "sources:\n  - {name: a}\n", "sources[0].type: required: nats, jetstream or kafka"},
		{"bad type", wpsOK + "sources:\n  - {name: a, type: rabbit}\n", `sources[0].type: must be one of nats, jetstream, kafka, got "rabbit"`},
		{"nats without url", wpsOK + "sources:\n  - {name: a, type: nats, subjects: [a]}\n", "sources[0].url: required"},
		{"nats url scheme", wpsOK + "sources:\n  - {name: a, type: nats, url: \"http://h:4222\", subjects: [a]}\n",
			`sources[0].url: must be one of nats, tls, ws, wss, got "http"`},
		{"nats url with password", wpsOK + "sources:\n  - {name: a, type: nats, url: \"nats://u:p@h:4222\", subjects: [a]}\n",
			"sources[0].url: credentials in the URL are not allowed: use auth (secrets come from env or files)"},
		{"unparsable nats url hides userinfo", wpsOK + "sources:\n  - {name: a, type: nats, url: \"nats://u:literal-secret@h:port\", subjects: [a]}\n",
			`sources[0].url: invalid NATS URL "nats://…@h:port": want nats://host:port`},
		{"nats without subjects", wpsOK + "sources:\n  - {name: a, type: nats, url: \"nats://h:4222\"}\n", "sources[0].subjects: required"},
		{"bad subject", wpsOK + "sources:\n  - {name: a, type: nats, url: \"nats://h:4222\", subjects: [\"a.>.b\"]}\n",
			`sources[0].subjects[0]: subject "a.>.b": > must be the last token`},
		{"nats with stream", wpsOK + "sources:\n  - {name: a, type: nats, url: \"nats://h:4222\", subjects: [a], stream: S}\n",
			"sources[0].stream: not allowed for type nats"},
		{"nats with fetchBatch", wpsOK + "sources:\n  - {name: a, type: nats, url: \"nats://h:4222\", subjects: [a], fetchBatch: 5}\n",
			"sources[0].fetchBatch: not allowed for type nats"},
		{"nats with sasl", wpsOK + "sources:\n  - {name: a, type: nats, url: \"nats://h:4222\", subjects: [a], sasl: {user: u}}\n",
			"sources[0].sasl: not allowed for type nats (use auth)"},
		{"jetstream without stream", wpsOK + "sources:\n  - {name: a, type: jetstream, url: \"nats://h:4222\", durable: d}\n",
			"sources[0].stream: required"},
		{"jetstream without durable", wpsOK + "sources:\n  - {name: a, type: jetstream, url: \"nats://h:4222\", stream: S}\n",
			"sources[0].durable: required"},
		{"jetstream bad stream name", wpsOK + "sources:\n  - {name: a, type: jetstream, url: \"nats://h:4222\", stream: a.b, durable: d}\n",
			`sources[0].stream: invalid JetStream name "a.b": no spaces, '.', '*', '>', '/' or '\'`},
		{"jetstream createStream without subjects", wpsOK + "sources:\n  - {name: a, type: jetstream, url: \"nats://h:4222\", stream: S, durable: d, createStream: true}\n",
			"sources[0].subjects: required with createStream (they become the stream's subjects)"},
		{"jetstream with queue", wpsOK + jsSource + "    queue: q\n",
			"sources[0].queue: not allowed for type jetstream (replicas share the durable consumer)"},
		{"jetstream with topics", wpsOK + jsSource + "    topics: [t]\n", "sources[0].topics: not allowed for type jetstream"},
		{"jetstream negative maxAckPending", wpsOK + jsSource + "    maxAckPending: -5\n", "sources[0].maxAckPending: must be at least 1"},
		{"kafka without brokers", wpsOK + "sources:\n  - {name: k, type: kafka, topics: [t], group: g}\n", "sources[0].brokers: required"},
		{"kafka bad broker", wpsOK + "sources:\n  - {name: k, type: kafka, brokers: [localhost], topics: [t], group: g}\n",
			`sources[0].brokers[0]: must be host:port, got "localhost"`},
		{"kafka bad broker hides user info", wpsOK + "sources:\n  - {name: k, type: kafka, brokers: [\"u:literal-secret@h:9092\"], topics: [t], group: g}\n",
			`sources[0].brokers[0]: must be host:port, got "…@h:9092"`},
		{"kafka without topics", wpsOK + "sources:\n  - {name: k, type: kafka, brokers: [\"h:9092\"], group: g}\n", "sources[0].topics: required"},
		{"kafka bad topic", wpsOK + "sources:\n  - {name: k, type: kafka, brokers: [\"h:9092\"], topics: [\"a/b\"], group: g}\n",
			`sources[0].topics[0]: invalid Kafka topic name "a/b"`},
		{"kafka without group", wpsOK + "sources:\n  - {name: k, type: kafka, brokers: [\"h:9092\"], topics: [t]}\n", "sources[0].group: required"},
		{"kafka bad startOffset", wpsOK + "sources:" + kafkaSource + "    startOffset: middle\n",
			`sources[0].startOffset: must be one of first, last, got "middle"`},
		{"kafka with url", wpsOK + "sources:" + kafkaSource + "    url: nats://h:4222\n", "sources[0].url: not allowed for type kafka (use brokers)"},
		{"kafka with durable", wpsOK + "sources:" + kafkaSource + "    durable: d\n", "sources[0].durable: not allowed for type kafka (use group)"},
		{"kafka with ackWait", wpsOK + "sources:" + kafkaSource + "    ackWait: 1s\n", "sources[0].ackWait: not allowed for type kafka"},
		{"kafka with auth", wpsOK + "sources:" + kafkaSource + "    auth: {credsFile: /c}\n", "sources[0].auth: not allowed for type kafka (use sasl)"},
		{"sasl bad mechanism", wpsOK + "sources:" + kafkaSource + "    sasl: {mechanism: GSSAPI, user: u, passwordFile: /p}\n",
			`sources[0].sasl.mechanism: must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got "GSSAPI"`},
		{"sasl without user", wpsOK + "sources:" + kafkaSource + "    sasl: {mechanism: PLAIN, passwordFile: /p}\n", "sources[0].sasl.user: required"},
		{"sasl without password", wpsOK + "sources:" + kafkaSource + "    sasl: {mechanism: PLAIN, user: u}\n",
			"sources[0].sasl.password: required (or passwordFile)"},
		{"sasl password twice", wpsOK + "sources:" + kafkaSource + "    sasl: {mechanism: PLAIN, user: u, password: \"${KAFKA_PASS}\", passwordFile: /p}\n",
			"sources[0].sasl.passwordFile: set password or passwordFile, not both"},
		{"auth user without password", wpsOK + jsSource + "    auth: {user: u}\n", "sources[0].auth.password: required with user (or passwordFile)"},
		{"auth password without user", wpsOK + jsSource + "    auth: {passwordFile: /p}\n", "sources[0].auth.user: required with password"},
		{"auth token twice", wpsOK + jsSource + "    auth: {token: \"${NATS_TOKEN}\", tokenFile: /t}\n", "sources[0].auth.tokenFile: set token or tokenFile, not both"},
		{"auth two methods", wpsOK + jsSource + "    auth: {tokenFile: /t, credsFile: /c}\n",
			"sources[0].auth: choose one of token(File), user + password(File), credsFile, nkeySeedFile"},
		{"tls cert without key", wpsOK + jsSource + "    tls: {certFile: /c}\n", "sources[0].tls: certFile and keyFile go together"},
		// routes
		{"route without match", wpsOK + jsSource + "routes:\n  - {action: sendToAll}\n", "routes[0].match: required"},
		{"route bad match", wpsOK + jsSource + "routes:\n  - {match: \"a..b\"}\n", `routes[0].match: subject "a..b" has an empty token`},
		{"route unknown source", wpsOK + jsSource + "routes:\n  - {match: a, source: nope}\n", `routes[0].source: no source is named "nope"`},
		{"route unknown action", wpsOK + jsSource + "routes:\n  - {match: a, action: shout}\n", `routes[0].action: unknown action "shout"`},
		{"route raw without action", wpsOK + jsSource + "routes:\n  - {match: a, body: raw}\n", "routes[0].action: required with body: raw"},
		{"route bad body", wpsOK + jsSource + "routes:\n  - {match: a, body: xml}\n", `routes[0].body: must be one of raw, envelope, got "xml"`},
		{"route unknown placeholder", wpsOK + jsSource + "routes:\n  - {match: a, action: sendToGroup, group: \"{subjects.1}\"}\n",
			"routes[0].group: unknown placeholder {subjects.1}: use {subject}, {subject.N}, {topic}, {key}, {partition} or {header.Name}"},
		{"route bad subject index", wpsOK + jsSource + "routes:\n  - {match: a, action: sendToUser, userId: \"{subject.x}\"}\n",
			"routes[0].userId: placeholder {subject.x}: want {subject.N} with N ≥ 0"},
		{"route unbalanced brace", wpsOK + jsSource + "routes:\n  - {match: a, action: sendToAll, key: \"{subject\"}\n",
			`routes[0].key: unbalanced { or } in "{subject"`},
		{"route bad hub", wpsOK + jsSource + "routes:\n  - {match: a, hub: \"9lives\"}\n",
			`routes[0].hub: invalid name: must start with a letter, got "9lives"`},
		{"route bad dataType", wpsOK + jsSource + "routes:\n  - {match: a, dataType: xml}\n",
			`routes[0].dataType: must be one of json, text, binary, got "xml"`},
		{"route ttl too big", wpsOK + jsSource + "routes:\n  - {match: a, ttl: 301}\n", "routes[0].ttl: must be 0..300 seconds, got 301"},
		{"route ttl negative", wpsOK + jsSource + "routes:\n  - {match: a, ttl: -1}\n", "routes[0].ttl: must be 0..300 seconds, got -1"},
		{"coalesce count 1", wpsOK + jsSource + "routes:\n  - {match: a, coalesce: {count: 1}}\n", "routes[0].coalesce.count: must be at least 2, got 1"},
		{"coalesce negative linger", wpsOK + jsSource + "routes:\n  - {match: a, coalesce: {linger: -1ms}}\n", "routes[0].coalesce.linger: must be positive"},
		{"coalesce on a non-send", wpsOK + jsSource + "routes:\n  - {match: a, action: closeConnection, coalesce: {}}\n",
			"routes[0].coalesce: only send actions can be coalesced, not closeConnection"},
		{"coalesce text", wpsOK + jsSource + "routes:\n  - {match: a, action: sendToAll, dataType: text, coalesce: {}}\n",
			"routes[0].coalesce: only JSON sends can be coalesced (dataType is text)"},
		// What the codec refuses when run builds the routes (regression).
		{"route field the action does not take", wpsOK + jsSource + "routes:\n  - {match: a, action: sendToAll, group: g}\n",
			"routes[0].group: sendToAll does not take group"},
		{"route ttl on a non-send", wpsOK + jsSource + "routes:\n  - {match: a, action: closeConnection, connectionId: \"{subject.1}\", ttl: 10}\n",
			"routes[0].ttl: closeConnection does not take ttl"},
		// router, retry, http, log
		{"runtime gcHeapFloorMiB", wpsOK + jsSource + "runtime: {gcHeapFloorMiB: -5}\n", "runtime.gcHeapFloorMiB: must be 1..4096 (MiB; set GOGC in the environment to turn the tuning off), got -5"},
		{"router lanes", wpsOK + jsSource + "router: {lanes: -1}\n", "router.lanes: must be at least 1, got -1"},
		{"router drain", wpsOK + jsSource + "router: {drainTimeout: -1s}\n", "router.drainTimeout: must be positive"},
		{"retry max below initial", wpsOK + jsSource + "retry: {initial: 2s, max: 1s}\n", "retry.max: must be at least retry.initial (2s), got 1s"},
		{"retry maxElapsed below initial", wpsOK + jsSource + "retry: {initial: 2s, maxElapsed: 1s}\n",
			"retry.maxElapsed: must be at least retry.initial (2s), got 1s"},
		{"retry systemic", wpsOK + jsSource + "retry: {systemicInterval: -1s}\n", "retry.systemicInterval: must be positive"},
		{"http listen", wpsOK + jsSource + "http: {listen: localhost}\n",
			`http.listen: must be host:port, e.g. 127.0.0.1:9464 or :9464, got "localhost"`},
		{"log level", wpsOK + jsSource + "log: {level: verbose}\n", `log.level: must be one of debug, info, warn, error, got "verbose"`},
		{"log format", wpsOK + jsSource + "log: {format: xml}\n", `log.format: must be one of text, json, got "xml"`},
		// dead letter
		{"dead letter bad type", wpsOK + jsSource + "deadLetter: {type: s3}\n", `deadLetter.type: must be one of none, nats, jetstream, kafka, got "s3"`},
		{"dead letter none with subject", wpsOK + jsSource + "deadLetter: {subject: dlq}\n",
			"deadLetter.subject: not allowed when deadLetter.type is none (set type: nats, jetstream or kafka)"},
		{"dead letter nats without subject", wpsOK + jsSource + "deadLetter: {type: nats}\n", "deadLetter.subject: required"},
		{"dead letter wildcard subject", wpsOK + jsSource + "deadLetter: {type: nats, subject: \"dlq.*\"}\n",
			`deadLetter.subject: subject "dlq.*" must not contain wildcards`},
		{"dead letter jetstream without stream", wpsOK + jsSource + "deadLetter: {type: jetstream, subject: dlq}\n", "deadLetter.stream: required"},
		{"dead letter nats without a nats source", wpsOK + "sources:" + kafkaSource + "deadLetter: {type: nats, subject: dlq}\n",
			"deadLetter.url: required (no nats or jetstream source to take it from)"},
		{"dead letter kafka without a kafka source", wpsOK + jsSource + "deadLetter: {type: kafka, topic: dlq}\n",
			"deadLetter.brokers: required (no kafka source to take them from)"},
		{"dead letter kafka without topic", wpsOK + "sources:" + kafkaSource + "deadLetter: {type: kafka}\n", "deadLetter.topic: required"},
		{"dead letter kafka with subject", wpsOK + "sources:" + kafkaSource + "deadLetter: {type: kafka, topic: dlq, subject: s}\n",
			"deadLetter.subject: not allowed for type kafka (use topic)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := problemsOf(t, tt.yaml)
			if !slices.Contains(got, tt.want) {
				t.Errorf("problems:\n%s\nwant among them:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

func TestParseLoopRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       string // "" when the config is valid
	}{
		{"jetstream dlq subject inside source pattern", wpsOK + jsSource + "deadLetter: {type: jetstream, stream: DLQ, subject: wps.dlq}\n",
			`deadLetter.subject: loop: "wps.dlq" is consumed by cmds (sources[0].subjects[0] = "wps.>")`},
		{"nats dlq subject matched by a jetstream source", wpsOK + jsSource + "deadLetter: {type: nats, subject: wps.dead}\n",
			`deadLetter.subject: loop: "wps.dead" is consumed by cmds (sources[0].subjects[0] = "wps.>")`},
		{"core nats source with * pattern", wpsOK + "sources:\n  - {name: n, type: nats, url: \"nats://h:4222\", subjects: [\"dlq.*\"]}\n" +
			"deadLetter: {type: nats, subject: dlq.wps}\n",
			`deadLetter.subject: loop: "dlq.wps" is consumed by n (sources[0].subjects[0] = "dlq.*")`},
		{"jetstream dlq in the consumed stream", wpsOK + jsSource + "deadLetter: {type: jetstream, stream: WPS, subject: other.dlq}\n",
			`deadLetter.stream: loop: stream "WPS" is consumed by cmds (sources[0].stream)`},
		{"kafka dlq topic consumed", wpsOK + "sources:" + kafkaSource + "deadLetter: {type: kafka, topic: wps-commands}\n",
			`deadLetter.topic: loop: "wps-commands" is consumed by kcmds (sources[0].topics[0])`},
		{"separate jetstream subject", wpsOK + jsSource + "deadLetter: {type: jetstream, stream: DLQ, subject: dlq.wps}\n", ""},
		{"kafka dlq with only a nats source elsewhere", wpsOK + jsSource + kafkaSource + "deadLetter: {type: kafka, topic: dlq.wps}\n", ""},
		{"nats dlq when only kafka consumes that name", wpsOK + jsSource + "  - {name: k, type: kafka, brokers: [\"h:9092\"], topics: [dlq], group: g}\n" +
			"deadLetter: {type: nats, subject: dlq}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.want == "" {
				mustParse(t, tt.yaml)
				return
			}
			if got := problemsOf(t, tt.yaml); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("problems:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

func TestDeadLetterDefaultsFromFirstSourceOfItsFamily(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, wpsOK+`
sources:
  - name: k
    type: kafka
    brokers: ["k1:9092", "k2:9092"]
    topics: [in]
    group: g
    sasl: {mechanism: PLAIN, user: u, password: "${KAFKA_PASS}"}
    tls: {enabled: true}
  - name: n
    type: nats
    url: nats://n1:4222
    subjects: [in]
    auth: {token: "${NATS_TOKEN}"}
deadLetter: {type: jetstream, stream: DLQ, subject: dlq}
`)
	dl := cfg.DeadLetter
	if dl.URL != "nats://n1:4222" || dl.Auth.Token != "nats-t0ken" || dl.TLS.On() {
		t.Errorf("jetstream dead letter = %+v, want the url and auth of source n", dl)
	}
	cfg = mustParse(t, wpsOK+`
sources:
  - {name: k, type: kafka, brokers: ["k1:9092"], topics: [in], group: g, tls: {enabled: true}}
deadLetter: {type: kafka, topic: dlq}
`)
	if dl := cfg.DeadLetter; !slices.Equal(dl.Brokers, []string{"k1:9092"}) || !dl.TLS.Enabled {
		t.Errorf("kafka dead letter = %+v, want the brokers and tls of source k", dl)
	}
	cfg = mustParse(t, wpsOK+jsSource+"deadLetter: {type: nats, url: \"nats://other:4222\", subject: dlq}\n")
	if cfg.DeadLetter.URL != "nats://other:4222" {
		t.Errorf("explicit url replaced: %q", cfg.DeadLetter.URL)
	}
}

func TestSecretsOnlyFromEnvOrFile(t *testing.T) {
	t.Parallel()
	tests := []struct{ path, yaml string }{
		{"webpubsub.connectionString", "webpubsub: {connectionString: \"Endpoint=https://x;AccessKey=literal-secret;\"}\n" + jsSource},
		{"webpubsub.accessKey", "webpubsub: {endpoint: \"https://x\", accessKey: literal-secret}\n" + jsSource},
		{"sources[0].auth.password", wpsOK + jsSource + "    auth: {user: u, password: literal-secret}\n"},
		{"sources[0].auth.token", wpsOK + jsSource + "    auth: {token: 'literal-secret'}\n"},
		{"sources[0].sasl.password", wpsOK + "sources:" + kafkaSource + "    sasl: {mechanism: PLAIN, user: u, password: literal-secret}\n"},
		{"deadLetter.auth.password", wpsOK + jsSource + "deadLetter: {type: nats, subject: dlq, auth: {user: u, password: literal-secret}}\n"},
		{"deadLetter.sasl.password", wpsOK + "sources:" + kafkaSource +
			"deadLetter: {type: kafka, topic: dlq, sasl: {mechanism: PLAIN, user: u, password: literal-secret}}\n"},
		{"sources[0].auth.token", wpsOK + jsSource + "    auth: {token: \"$${NOT_A_REFERENCE}\"}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			want := tt.path + ": secrets may not be written in the file: use ${ENV_VAR} or the matching *File key"
			if got := problemsOf(t, tt.yaml); !slices.Contains(got, want) {
				t.Errorf("problems:\n%s\nwant among them:\n%s", strings.Join(got, "\n"), want)
			}
		})
	}
}

// TestBrokenConfig is the acceptance check of issue 5: a file with many
// different mistakes yields every one of them in one error.
func TestBrokenConfig(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "broken.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, envMap(nil))
	var got []string
	for _, fe := range FieldErrors(err) {
		got = append(got, fe.Error())
	}
	want := []string{
		`webpubsub.hubb: unknown key (did you mean "hub"?)`,
		`webpubsub.timeout: duration "30" needs a unit, e.g. "30s" or "30ms"`,
		"webpubsub.accessKey: secrets may not be written in the file: use ${ENV_VAR} or the matching *File key",
		"sources[0].url: environment variable NATS_URL is not set (write ${NATS_URL:-} to allow empty)",
		"webpubsub.endpoint: required with accessKey, accessKeyFile or aad",
		"sources[0].durable: required",
		`sources[1].type: must be one of nats, jetstream, kafka, got "rabbitmq"`,
		`sources[2].name: duplicate: "orders" is also sources[0]`,
		"sources[2].group: required",
		`routes[0].source: no source is named "missing"`,
		`routes[0].action: unknown action "sendToEveryone"`,
		"routes[0].ttl: must be 0..300 seconds, got 600",
		"retry.max: must be at least retry.initial (1m0s), got 1s",
		`deadLetter.topic: loop: "orders" is consumed by orders (sources[2].topics[0])`,
		`log.level: must be one of debug, info, warn, error, got "loud"`,
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the literal secret")
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(want) < 8 {
		t.Fatal("the broken file must hold at least 8 different mistakes")
	}
}

func TestValidateAfterChange(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, wpsOK+jsSource)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate of a parsed config: %v", err)
	}
	cfg.Router.Lanes = 0
	cfg.Sources[0].Durable = ""
	err := cfg.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("Validate error %v is not a *FieldError join", err)
	}
	got := FieldErrors(err)
	if len(got) != 2 || got[0].Path != "sources[0].durable" || got[1].Path != "router.lanes" {
		t.Errorf("Validate = %v", err)
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, wpsOK+jsSource+"    auth: {user: u, password: \"${NATS_PASS}\"}\n"+kafkaSource+
		"    sasl: {mechanism: PLAIN, user: u, password: \"${KAFKA_PASS}\"}\n"+
		"deadLetter: {type: jetstream, stream: DLQ, subject: dlq}\n")
	red := cfg.Redacted()
	if red.WebPubSub.ConnectionString != RedactedText || red.Sources[0].Auth.Password != RedactedText ||
		red.Sources[1].SASL.Password != RedactedText || red.DeadLetter.Auth.Password != RedactedText {
		t.Errorf("Redacted left a secret: %+v", red)
	}
	if red.Sources[0].Auth.User != "u" || red.WebPubSub.Hub != "chat" {
		t.Errorf("Redacted changed a non-secret")
	}
	if cfg.WebPubSub.ConnectionString != testCS || cfg.Sources[0].Auth.Password != "nats-pa55" {
		t.Errorf("Redacted modified the original")
	}
	red.Sources[0].Subjects[0] = "changed"
	if cfg.Sources[0].Subjects[0] != "wps.>" {
		t.Errorf("Redacted shares slices with the original")
	}
	s := cfg.String()
	for _, secret := range []string{testKey, "nats-pa55", "kafka-pa55"} {
		if strings.Contains(s, secret) {
			t.Errorf("String() leaks %q:\n%s", secret, s)
		}
	}
	for _, want := range []string{"connectionString: REDACTED", "timeout: 10s", "maxAckPending: 2048", "hub: chat", "subject: dlq"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	// String is valid input again once secrets come from env.
	back := strings.ReplaceAll(s, RedactedText, "${REDACTED:-x}")
	back = strings.ReplaceAll(back, "connectionString: ${REDACTED:-x}", "connectionString: ${CS}")
	if _, err := Parse([]byte(back), testEnv); err != nil {
		t.Errorf("String() output does not parse back: %v\n%s", err, s)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "wps-key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, "webpubsub: {endpoint: \"https://x.webpubsub.azure.com\", accessKeyFile: "+keyFile+"}\n"+jsSource)
	cfg, err := Load(good)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if key, err := cfg.WebPubSub.ResolveAccessKey(); err != nil || key != testKey {
		t.Errorf("ResolveAccessKey = %q, %v; want the file content without the newline", key, err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "webpubsub: {endpoint: \"https://x\", accessKeyFile: "+filepath.Join(dir, "nope")+"}\n"+jsSource+
		"    tls: {caFile: "+filepath.Join(dir, "ca.pem")+"}\n    maxAckPending: -1\n")
	_, err = Load(bad)
	var paths []string
	for _, fe := range FieldErrors(err) {
		paths = append(paths, fe.Path)
	}
	if want := []string{"sources[0].maxAckPending", "webpubsub.accessKeyFile", "sources[0].tls.caFile"}; !slices.Equal(paths, want) {
		t.Errorf("Load problems at %v, want %v (err: %v)", paths, want, err)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want ErrNotExist", err)
	}
}

func TestReadSecret(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "s")
	writeFile(t, file, "from-file\r\n")
	tests := []struct{ value, file, want string }{
		{"inline", "", "inline"},
		{"", file, "from-file"},
		{"", "", ""},
	}
	for _, tt := range tests {
		got, err := ReadSecret(tt.value, tt.file)
		if err != nil || got != tt.want {
			t.Errorf("ReadSecret(%q, %q) = %q, %v; want %q", tt.value, tt.file, got, err, tt.want)
		}
	}
	if _, err := ReadSecret("", file+".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadSecret of a missing file: %v", err)
	}
}

// TestRepoBridgeYAML keeps the documented bridge.yaml at the repo root valid,
// with and without the environment it reads.
func TestRepoBridgeYAML(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "bridge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, nil)
	if err != nil {
		t.Fatalf("bridge.yaml with no environment: %v", err)
	}
	if cfg.WebPubSub.Hub != "chat" || cfg.Sources[0].Type != BrokerJetStream || cfg.DeadLetter.Type != BrokerJetStream {
		t.Errorf("bridge.yaml: unexpected shape:\n%s", cfg)
	}
	if len(cfg.Routes) == 0 {
		t.Errorf("bridge.yaml has no route example")
	}
	env := envMap(map[string]string{
		"NATS_URL":                    "nats://10.0.0.1:4222",
		"WEBPUBSUB_CONNECTION_STRING": testCS,
	})
	cfg, err = Parse(data, env)
	if err != nil {
		t.Fatalf("bridge.yaml with env: %v", err)
	}
	if cfg.Sources[0].URL != "nats://10.0.0.1:4222" || cfg.WebPubSub.ConnectionString != testCS {
		t.Errorf("bridge.yaml ignores NATS_URL / WEBPUBSUB_CONNECTION_STRING")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
