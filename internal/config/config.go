package config

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// BrokerType names a message system: the type of a source or of the dead letter.
type BrokerType string

// Broker types. BrokerNone is only valid for the dead letter.
const (
	BrokerNone      BrokerType = "none"
	BrokerNATS      BrokerType = "nats"
	BrokerJetStream BrokerType = "jetstream"
	BrokerKafka     BrokerType = "kafka"
)

// natsFamily reports whether t talks to a NATS server (core or JetStream).
func (t BrokerType) natsFamily() bool { return t == BrokerNATS || t == BrokerJetStream }

// Config is the whole of bridge.yaml. Parse and Load return it with defaults
// applied and validated.
type Config struct {
	WebPubSub  WebPubSub  `yaml:"webpubsub"`
	Sources    []Source   `yaml:"sources"`
	Routes     []Route    `yaml:"routes"`
	Router     Router     `yaml:"router"`
	Retry      Retry      `yaml:"retry"`
	DeadLetter DeadLetter `yaml:"deadLetter"`
	HTTP       HTTP       `yaml:"http"`
	Log        Log        `yaml:"log"`
	Runtime    Runtime    `yaml:"runtime"`
}

// WebPubSub is the service the bridge calls. Exactly one credential mode is
// set: ConnectionString; Endpoint with AccessKey or AccessKeyFile; or Endpoint
// with AAD (Microsoft Entra ID through azidentity's default credential chain).
type WebPubSub struct {
	// ConnectionString is "Endpoint=https://…;AccessKey=…;Version=1.0;". Secret.
	ConnectionString string `yaml:"connectionString" secret:"true"`
	// Endpoint is the service URL, e.g. https://name.webpubsub.azure.com.
	Endpoint string `yaml:"endpoint"`
	// AccessKey signs the REST calls. Secret.
	AccessKey string `yaml:"accessKey" secret:"true"`
	// AccessKeyFile holds the access key (a mounted Kubernetes Secret, say).
	AccessKeyFile string `yaml:"accessKeyFile"`
	// AAD authenticates with Microsoft Entra ID instead of a key.
	AAD bool `yaml:"aad"`
	// Hub is the default hub for commands that name none.
	Hub string `yaml:"hub"`
	// ReverseProxy is an optional API Management / proxy endpoint that the
	// requests go to (the JWT audience still names Endpoint).
	ReverseProxy string `yaml:"reverseProxy"`
	// Timeout bounds one REST call. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxInFlight is the upper bound of concurrent REST calls (the adaptive
	// limit moves below it). Default 64.
	MaxInFlight int `yaml:"maxInFlight"`
	// AllowInsecureHTTP permits an http:// endpoint (the emulator, tests).
	AllowInsecureHTTP bool `yaml:"allowInsecureHTTP"`
}

// Source is one broker input.
type Source struct {
	// Name identifies the source in routes, logs and metrics. Required, unique.
	Name string `yaml:"name"`
	// Type is nats, jetstream or kafka.
	Type BrokerType `yaml:"type"`

	// URL is the NATS server URL, or a comma-separated list (nats, jetstream).
	URL string `yaml:"url"`
	// Subjects are the subjects (patterns) to consume. nats: required.
	// jetstream: the consumer's filter subjects (all of the stream when empty),
	// and the stream's subjects when createStream is set (then required).
	Subjects []string `yaml:"subjects"`
	// Queue is the core NATS queue group shared by replicas (nats).
	Queue string `yaml:"queue"`
	// Stream is the JetStream stream to consume (jetstream, required).
	Stream string `yaml:"stream"`
	// CreateStream makes the bridge create the stream when it is missing.
	CreateStream bool `yaml:"createStream"`
	// Durable is the name of the durable pull consumer the replicas share
	// (jetstream, required).
	Durable string `yaml:"durable"`
	// CreateConsumer makes the bridge create the durable consumer when missing.
	CreateConsumer bool `yaml:"createConsumer"`
	// FetchBatch is how many messages one pull asks for (jetstream). Default 256.
	FetchBatch int `yaml:"fetchBatch"`
	// MaxAckPending bounds messages delivered but not acked (jetstream). Default 2048.
	MaxAckPending int `yaml:"maxAckPending"`
	// AckWait is the redelivery timeout of a created consumer (jetstream). Default 30s.
	AckWait time.Duration `yaml:"ackWait"`

	// Brokers are the Kafka seed brokers, host:port (kafka, required). An
	// entry may hold a comma-separated list: brokers: ["${KAFKA_BROKERS}"].
	Brokers []string `yaml:"brokers"`
	// Topics are the Kafka topics to consume (kafka, required).
	Topics []string `yaml:"topics"`
	// Group is the Kafka consumer group the replicas share (kafka, required).
	Group string `yaml:"group"`
	// StartOffset is where a group with no committed offset starts: first or
	// last (kafka). Default first.
	StartOffset string `yaml:"startOffset"`
	// SessionTimeout is how long the group waits for a silent member (a
	// crashed replica) before its partitions move to the others (kafka).
	// Default 10s.
	SessionTimeout time.Duration `yaml:"sessionTimeout"`

	// Auth is NATS authentication (nats, jetstream).
	Auth Auth `yaml:"auth"`
	// SASL is Kafka authentication (kafka).
	SASL SASL `yaml:"sasl"`
	// TLS configures the broker connection's TLS.
	TLS TLS `yaml:"tls"`
}

// Auth is NATS authentication: at most one of a token, user and password, a
// creds file, or an nkey seed file.
type Auth struct {
	Token        string `yaml:"token" secret:"true"`
	TokenFile    string `yaml:"tokenFile"`
	User         string `yaml:"user"`
	Password     string `yaml:"password" secret:"true"`
	PasswordFile string `yaml:"passwordFile"`
	// CredsFile is a NATS .creds file (user JWT and nkey seed).
	CredsFile string `yaml:"credsFile"`
	// NkeySeedFile is a file holding an nkey seed.
	NkeySeedFile string `yaml:"nkeySeedFile"`
}

// IsZero reports whether no authentication is configured.
func (a Auth) IsZero() bool { return a == Auth{} }

// ResolveToken returns Token, or the content of TokenFile.
func (a Auth) ResolveToken() (string, error) { return ReadSecret(a.Token, a.TokenFile) }

// ResolvePassword returns Password, or the content of PasswordFile.
func (a Auth) ResolvePassword() (string, error) { return ReadSecret(a.Password, a.PasswordFile) }

// SASL mechanisms for Kafka.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL is Kafka authentication.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism    string `yaml:"mechanism"`
	User         string `yaml:"user"`
	Password     string `yaml:"password" secret:"true"`
	PasswordFile string `yaml:"passwordFile"`
}

// IsZero reports whether SASL is off.
func (s SASL) IsZero() bool { return s == SASL{} }

// ResolvePassword returns Password, or the content of PasswordFile.
func (s SASL) ResolvePassword() (string, error) { return ReadSecret(s.Password, s.PasswordFile) }

// TLS configures a broker connection. TLS is on when Enabled is true or any
// file is set (for NATS, a tls:// URL also turns it on).
type TLS struct {
	// Enabled turns TLS on with the system roots when no file is given.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of roots to trust instead of the system's.
	CAFile string `yaml:"caFile"`
	// CertFile and KeyFile are the client certificate (mutual TLS); both or neither.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// InsecureSkipVerify disables server certificate checks (tests only).
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// On reports whether TLS is requested.
func (t TLS) On() bool { return t != TLS{} }

// Body modes of a route.
const (
	BodyRaw      = "raw"
	BodyEnvelope = "envelope"
)

// Route maps the messages of a subject pattern (or Kafka topic) to a command.
// The string fields hub, group, userId, connectionId, filter and key are
// templates: {subject}, {subject.N}, {topic}, {key}, {partition},
// {header.Name} are replaced from the message (design.md §2).
type Route struct {
	// Match is a NATS-style pattern (* one token, > the rest) matched against
	// the subject, or the topic for Kafka. Required.
	Match string `yaml:"match"`
	// Source restricts the route to one source by name; empty means any.
	Source string `yaml:"source"`
	// Action fixes the operation (case-insensitive, Functions aliases allowed).
	Action string `yaml:"action"`
	// Body is raw (the body is the payload) or envelope. Default raw when
	// Action is set, envelope otherwise.
	Body         string `yaml:"body"`
	Hub          string `yaml:"hub"`
	Group        string `yaml:"group"`
	UserID       string `yaml:"userId"`
	ConnectionID string `yaml:"connectionId"`
	Filter       string `yaml:"filter"`
	// DataType is json, text or binary; empty lets the codec decide.
	DataType string `yaml:"dataType"`
	// Key overrides the ordering key (default hub + target).
	Key string `yaml:"key"`
	// TTL is messageTtlSeconds, 0..300; 0 means none.
	TTL int `yaml:"ttl"`
	// Coalesce, when set, merges consecutive JSON sends to one target.
	Coalesce *Coalesce `yaml:"coalesce"`
}

// Coalesce is a route's opt-in batching of JSON sends into one JSON-array call.
type Coalesce struct {
	// Count is the most commands merged into one call. Default 100; ≥ 2.
	Count int `yaml:"count"`
	// Bytes caps the merged body. Default 1 MiB (the service's message limit).
	Bytes int `yaml:"bytes"`
	// Linger is how long the first command waits for followers. Default 5ms.
	Linger time.Duration `yaml:"linger"`
}

// Router sizes the router's lanes and queues.
type Router struct {
	// Lanes is the number of ordering lanes. Default 64.
	Lanes int `yaml:"lanes"`
	// LaneQueue is the queue length of each lane. Default 256.
	LaneQueue int `yaml:"laneQueue"`
	// MaxPending bounds messages read but not yet acked. Default 4096.
	MaxPending int `yaml:"maxPending"`
	// DrainTimeout is how long shutdown waits for in-flight work. Default 10s.
	DrainTimeout time.Duration `yaml:"drainTimeout"`
	// MulticastChunk is the most targets per filtered multicast call. Default 100.
	MulticastChunk int `yaml:"multicastChunk"`
}

// Retry is the policy for transient and systemic errors.
type Retry struct {
	// Initial is the first backoff. Default 100ms.
	Initial time.Duration `yaml:"initial"`
	// Max caps one backoff. Default 30s.
	Max time.Duration `yaml:"max"`
	// MaxElapsed is how long a transient failure is retried before the
	// message is dead-lettered. Default 10m.
	MaxElapsed time.Duration `yaml:"maxElapsed"`
	// SystemicInterval is the probe interval while a systemic error (401/403)
	// pauses consumption. Default 5s.
	SystemicInterval time.Duration `yaml:"systemicInterval"`
}

// DeadLetter is where invalid and undeliverable messages are parked.
//
// When URL (nats, jetstream) or Brokers (kafka) is empty, they are taken from
// the first source of the same broker family (nats and jetstream are one
// family), together with its auth, sasl and tls when those are empty too.
type DeadLetter struct {
	// Type is none (the default: failures are logged, counted and acked or
	// terminated), nats, jetstream or kafka.
	Type         BrokerType `yaml:"type"`
	URL          string     `yaml:"url"`
	Subject      string     `yaml:"subject"`
	Stream       string     `yaml:"stream"`
	CreateStream bool       `yaml:"createStream"`
	Brokers      []string   `yaml:"brokers"`
	Topic        string     `yaml:"topic"`
	Auth         Auth       `yaml:"auth"`
	SASL         SASL       `yaml:"sasl"`
	TLS          TLS        `yaml:"tls"`
}

// HTTP is the operations endpoint: /metrics, /healthz, /readyz.
type HTTP struct {
	// Listen is host:port. Default 127.0.0.1:9464.
	Listen string `yaml:"listen"`
}

// Log configures log/slog.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// Runtime tunes the Go runtime of the bridge process.
type Runtime struct {
	// GCHeapFloorMiB is the least growth of the heap, in MiB, between two
	// garbage collections: while the live heap is small, GOGC is raised (up
	// to 400) to leave this much room, which saves collections at the cost
	// of at most this much memory. Default 32. Setting the GOGC environment
	// variable turns the tuning off: the operator's GOGC applies as is.
	GCHeapFloorMiB int `yaml:"gcHeapFloorMiB"`
}

// Load reads the file at path, parses it with the process environment and
// checks that every *File path it names (accessKeyFile, credsFile, caFile…)
// is readable; relative paths are relative to the working directory. The
// error lists every problem, as Parse does.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, problems, err := parse(data, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	problems = append(problems, checkFiles(cfg)...)
	if len(problems) > 0 {
		return nil, joinFieldErrors(problems)
	}
	return cfg, nil
}

// Parse decodes bridge.yaml from data, expanding ${VAR} references with
// lookupEnv (nil: no variable is set), applies the defaults and validates the
// result. On failure it returns nil and one error listing every problem: an
// errors.Join of *FieldError, in document order for decoding problems and
// then in schema order (a YAML syntax error stops decoding and comes alone).
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	cfg, problems, err := parse(data, lookupEnv)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, joinFieldErrors(problems)
	}
	return cfg, nil
}

// parse returns the config even when it has problems, so that Load can add
// its own checks.
func parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, []*FieldError, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	cfg := &Config{}
	decodeErrs, err := decodeYAML(data, cfg, lookupEnv)
	if err != nil {
		return nil, nil, err
	}
	cfg.setDefaults()
	problems := decodeErrs
	// A value that failed to decode is left zero; do not report it twice.
	bad := make(map[string]bool, len(decodeErrs))
	for _, e := range decodeErrs {
		bad[e.Path] = true
	}
	for _, e := range cfg.validate() {
		if !bad[e.Path] {
			problems = append(problems, e)
		}
	}
	return cfg, problems, nil
}

// FieldError is one problem of a configuration, at a path such as
// sources[1].topics.
type FieldError struct {
	Path string
	Msg  string
}

// Error renders "path: msg".
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// FieldErrors returns every *FieldError in err's tree, in order.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *FieldError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

func joinFieldErrors(fes []*FieldError) error {
	if len(fes) == 0 {
		return nil
	}
	errs := make([]error, len(fes))
	for i, e := range fes {
		errs[i] = e
	}
	return errors.Join(errs...)
}
