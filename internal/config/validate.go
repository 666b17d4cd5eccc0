package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/wps"
)

// Validate checks c (as Parse leaves it, defaults applied) and returns an
// errors.Join of one *FieldError per problem, or nil.
func (c *Config) Validate() error {
	return joinFieldErrors(c.validate())
}

// problems collects FieldErrors in order.
type problems []*FieldError

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) required(path string, ok bool) {
	if !ok {
		p.add(path, "required")
	}
}

// forbid reports a key that is set although it has no meaning here.
func (p *problems) forbid(path string, set bool, why string) {
	if set {
		p.add(path, "not allowed %s", why)
	}
}

func (p *problems) oneOf(path, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	p.add(path, "must be one of %s, got %q", strings.Join(allowed, ", "), value)
}

// maxGCHeapFloorMiB bounds runtime.gcHeapFloorMiB (a typo of a few orders of
// magnitude would otherwise let the heap grow by that much).
const maxGCHeapFloorMiB = 4096

func (c *Config) validate() []*FieldError {
	var p problems
	c.WebPubSub.validate(&p)
	c.validateSources(&p)
	c.validateRoutes(&p)
	c.Router.validate(&p)
	c.Retry.validate(&p)
	c.validateDeadLetter(&p)
	if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil || !validPort(port) {
		p.add("http.listen", "must be host:port, e.g. 127.0.0.1:9464 or :9464, got %q", c.HTTP.Listen)
	}
	p.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", c.Log.Format, "text", "json")
	if f := c.Runtime.GCHeapFloorMiB; f < 1 || f > maxGCHeapFloorMiB {
		p.add("runtime.gcHeapFloorMiB", "must be 1..%d (MiB; set GOGC in the environment to turn the tuning off), got %d", maxGCHeapFloorMiB, f)
	}
	return p
}

func (w *WebPubSub) validate(p *problems) {
	const at = "webpubsub"
	hasKey := w.AccessKey != "" || w.AccessKeyFile != ""
	modes := 0
	for _, on := range []bool{w.ConnectionString != "", hasKey, w.AAD} {
		if on {
			modes++
		}
	}
	switch {
	case modes == 0:
		p.add(at, "set one of connectionString, endpoint + accessKey (or accessKeyFile), endpoint + aad: true")
	case modes > 1:
		p.add(at, "connectionString, accessKey/accessKeyFile and aad are mutually exclusive")
	}
	if w.AccessKey != "" && w.AccessKeyFile != "" {
		p.add(at+".accessKeyFile", "set accessKey or accessKeyFile, not both")
	}
	if w.ConnectionString != "" {
		p.forbid(at+".endpoint", w.Endpoint != "", "with connectionString (it carries the endpoint)")
		// The message of ParseConnectionString never holds the key.
		if cs, err := wps.ParseConnectionString(w.ConnectionString); err != nil {
			p.add(at+".connectionString", "%v", err)
		} else {
			w.checkScheme(p, at+".connectionString", "endpoint", cs.Endpoint)
		}
	}
	if hasKey || w.AAD {
		if w.Endpoint == "" {
			p.add(at+".endpoint", "required with accessKey, accessKeyFile or aad")
		} else {
			w.checkURL(p, at+".endpoint", "endpoint", w.Endpoint)
		}
	}
	if w.Hub != "" {
		if err := codec.ValidateHub(w.Hub); err != nil {
			p.add(at+".hub", "%v", err)
		}
	}
	if w.ReverseProxy != "" {
		w.checkURL(p, at+".reverseProxy", "reverseProxy", w.ReverseProxy)
	}
	if w.Timeout <= 0 {
		p.add(at+".timeout", "must be positive")
	}
	if w.MaxInFlight < 1 {
		p.add(at+".maxInFlight", "must be at least 1")
	}
}

// checkURL applies the Web PubSub client's rules for a service URL (an
// http(s) URL with a host and no user info, query or fragment; plain http
// only when allowed), so that a file validate accepts is one run accepts.
func (w *WebPubSub) checkURL(p *problems, path, what, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		p.add(path, "must be an http(s) URL, got %q", withoutUserinfo(raw))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		p.add(path, "must not have user info, a query or a fragment")
	default:
		w.checkScheme(p, path, what, raw)
	}
}

func (w *WebPubSub) checkScheme(p *problems, path, what, endpoint string) {
	if strings.HasPrefix(strings.ToLower(endpoint), "http://") && !w.AllowInsecureHTTP {
		p.add(path, "%s is plain http: set webpubsub.allowInsecureHTTP: true to allow it (emulator, tests)", what)
	}
}

// withoutUserinfo hides anything before an '@' in a URL that is echoed in an
// error: it may hold a password.
func withoutUserinfo(u string) string {
	at := strings.LastIndex(u, "@")
	if at < 0 {
		return u
	}
	scheme, _, found := strings.Cut(u[:at], "://")
	if !found {
		return "…@" + u[at+1:]
	}
	return scheme + "://…@" + u[at+1:]
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}

var (
	sourceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	// Kafka's own rule for topic names.
	kafkaTopicRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)
	// JetStream stream and consumer names: no whitespace, '.', '*', '>', path separators.
	jsNameRE = regexp.MustCompile(`^[^\s.*>/\\]{1,255}$`)
)

func (c *Config) validateSources(p *problems) {
	if len(c.Sources) == 0 {
		p.add("sources", "at least one source is required")
	}
	seen := make(map[string]int, len(c.Sources))
	for i := range c.Sources {
		s := &c.Sources[i]
		at := fmt.Sprintf("sources[%d]", i)
		switch {
		case s.Name == "":
			p.add(at+".name", "required")
		case !sourceNameRE.MatchString(s.Name):
			p.add(at+".name", "must be 1-64 letters, digits, '.', '_' or '-', got %q", s.Name)
		default:
			if j, dup := seen[s.Name]; dup {
				p.add(at+".name", "duplicate: %q is also sources[%d]", s.Name, j)
			} else {
				seen[s.Name] = i
			}
		}
		switch s.Type {
		case BrokerNATS, BrokerJetStream:
			s.validateNATS(p, at)
		case BrokerKafka:
			s.validateKafka(p, at)
		case "":
			p.add(at+".type", "required: nats, jetstream or kafka")
		default:
			p.add(at+".type", "must be one of nats, jetstream, kafka, got %q", s.Type)
		}
		s.TLS.validate(p, at+".tls")
	}
}

func (s *Source) validateNATS(p *problems, at string) {
	why := "for type " + string(s.Type)
	validateNATSURL(p, at+".url", s.URL)
	for j, subj := range s.Subjects {
		if err := checkSubject(subj, true); err != nil {
			p.add(fmt.Sprintf("%s.subjects[%d]", at, j), "%v", err)
		}
	}
	if s.Type == BrokerNATS {
		p.required(at+".subjects", len(s.Subjects) > 0)
		p.forbid(at+".stream", s.Stream != "", why)
		p.forbid(at+".createStream", s.CreateStream, why)
		p.forbid(at+".durable", s.Durable != "", why)
		p.forbid(at+".createConsumer", s.CreateConsumer, why)
		p.forbid(at+".fetchBatch", s.FetchBatch != 0, why)
		p.forbid(at+".maxAckPending", s.MaxAckPending != 0, why)
		p.forbid(at+".ackWait", s.AckWait != 0, why)
	} else {
		p.forbid(at+".queue", s.Queue != "", why+" (replicas share the durable consumer)")
		validateJSName(p, at+".stream", s.Stream)
		validateJSName(p, at+".durable", s.Durable)
		if s.CreateStream && len(s.Subjects) == 0 {
			p.add(at+".subjects", "required with createStream (they become the stream's subjects)")
		}
		if s.FetchBatch < 1 {
			p.add(at+".fetchBatch", "must be at least 1")
		}
		if s.MaxAckPending < 1 {
			p.add(at+".maxAckPending", "must be at least 1")
		}
		if s.AckWait <= 0 {
			p.add(at+".ackWait", "must be positive")
		}
	}
	p.forbid(at+".brokers", len(s.Brokers) > 0, why)
	p.forbid(at+".topics", len(s.Topics) > 0, why)
	p.forbid(at+".group", s.Group != "", why)
	p.forbid(at+".startOffset", s.StartOffset != "", why)
	p.forbid(at+".sessionTimeout", s.SessionTimeout != 0, why)
	p.forbid(at+".sasl", !s.SASL.IsZero(), why+" (use auth)")
	s.Auth.validate(p, at+".auth")
}

func (s *Source) validateKafka(p *problems, at string) {
	why := "for type kafka"
	validateBrokers(p, at+".brokers", s.Brokers)
	p.required(at+".topics", len(s.Topics) > 0)
	for j, t := range s.Topics {
		if !kafkaTopicRE.MatchString(t) {
			p.add(fmt.Sprintf("%s.topics[%d]", at, j), "invalid Kafka topic name %q", t)
		}
	}
	p.required(at+".group", s.Group != "")
	p.oneOf(at+".startOffset", s.StartOffset, "first", "last")
	if s.SessionTimeout < 6*time.Second || s.SessionTimeout > 5*time.Minute {
		p.add(at+".sessionTimeout", "must be 6s..5m (the brokers' default group session bounds), got %s", s.SessionTimeout)
	}
	p.forbid(at+".url", s.URL != "", why+" (use brokers)")
	p.forbid(at+".subjects", len(s.Subjects) > 0, why+" (use topics)")
	p.forbid(at+".queue", s.Queue != "", why+" (use group)")
	p.forbid(at+".stream", s.Stream != "", why)
	p.forbid(at+".createStream", s.CreateStream, why)
	p.forbid(at+".durable", s.Durable != "", why+" (use group)")
	p.forbid(at+".createConsumer", s.CreateConsumer, why)
	p.forbid(at+".fetchBatch", s.FetchBatch != 0, why)
	p.forbid(at+".maxAckPending", s.MaxAckPending != 0, why)
	p.forbid(at+".ackWait", s.AckWait != 0, why)
	p.forbid(at+".auth", !s.Auth.IsZero(), why+" (use sasl)")
	s.SASL.validate(p, at+".sasl")
}

func validateNATSURL(p *problems, path, list string) {
	if list == "" {
		p.add(path, "required")
		return
	}
	for u := range strings.SplitSeq(list, ",") {
		parsed, err := url.Parse(strings.TrimSpace(u))
		if err != nil || parsed.Host == "" {
			p.add(path, "invalid NATS URL %q: want nats://host:port", withoutUserinfo(strings.TrimSpace(u)))
			continue
		}
		if parsed.User != nil {
			p.add(path, "credentials in the URL are not allowed: use auth (secrets come from env or files)")
		}
		p.oneOf(path, parsed.Scheme, "nats", "tls", "ws", "wss")
	}
}

func validateBrokers(p *problems, path string, brokers []string) {
	p.required(path, len(brokers) > 0)
	for j, b := range brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || !validPort(port) || port == "0" {
			p.add(fmt.Sprintf("%s[%d]", path, j), "must be host:port, got %q", withoutUserinfo(b))
		}
	}
}

func validateJSName(p *problems, path, name string) {
	switch {
	case name == "":
		p.add(path, "required")
	case !jsNameRE.MatchString(name):
		p.add(path, "invalid JetStream name %q: no spaces, '.', '*', '>', '/' or '\\'", name)
	}
}

func (a *Auth) validate(p *problems, at string) {
	if a.Token != "" && a.TokenFile != "" {
		p.add(at+".tokenFile", "set token or tokenFile, not both")
	}
	if a.Password != "" && a.PasswordFile != "" {
		p.add(at+".passwordFile", "set password or passwordFile, not both")
	}
	hasPassword := a.Password != "" || a.PasswordFile != ""
	if a.User != "" && !hasPassword {
		p.add(at+".password", "required with user (or passwordFile)")
	}
	if hasPassword && a.User == "" {
		p.add(at+".user", "required with password")
	}
	methods := 0
	for _, on := range []bool{a.Token != "" || a.TokenFile != "", a.User != "" || hasPassword, a.CredsFile != "", a.NkeySeedFile != ""} {
		if on {
			methods++
		}
	}
	if methods > 1 {
		p.add(at, "choose one of token(File), user + password(File), credsFile, nkeySeedFile")
	}
}

func (s *SASL) validate(p *problems, at string) {
	if s.IsZero() {
		return
	}
	p.oneOf(at+".mechanism", s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	p.required(at+".user", s.User != "")
	switch {
	case s.Password != "" && s.PasswordFile != "":
		p.add(at+".passwordFile", "set password or passwordFile, not both")
	case s.Password == "" && s.PasswordFile == "":
		p.add(at+".password", "required (or passwordFile)")
	}
}

func (t *TLS) validate(p *problems, at string) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.add(at, "certFile and keyFile go together")
	}
}

// templateRE finds {placeholders} in route templates.
var templateRE = regexp.MustCompile(`\{[^{}]*\}`)

func validateTemplate(p *problems, path, tmpl string) {
	for _, m := range templateRE.FindAllString(tmpl, -1) {
		name := m[1 : len(m)-1]
		switch {
		case name == "subject", name == "topic", name == "key", name == "partition":
		case strings.HasPrefix(name, "subject."):
			if n, err := strconv.Atoi(name[len("subject."):]); err != nil || n < 0 {
				p.add(path, "placeholder %s: want {subject.N} with N ≥ 0", m)
			}
		case strings.HasPrefix(name, "header.") && len(name) > len("header."):
		default:
			p.add(path, "unknown placeholder %s: use {subject}, {subject.N}, {topic}, {key}, {partition} or {header.Name}", m)
		}
	}
	if rest := templateRE.ReplaceAllString(tmpl, ""); strings.ContainsAny(rest, "{}") {
		p.add(path, "unbalanced { or } in %q", tmpl)
	}
}

func (c *Config) validateRoutes(p *problems) {
	names := make(map[string]bool, len(c.Sources))
	for _, s := range c.Sources {
		names[s.Name] = true
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		at := fmt.Sprintf("routes[%d]", i)
		if r.Match == "" {
			p.add(at+".match", "required")
		} else if err := checkSubject(r.Match, true); err != nil {
			p.add(at+".match", "%v", err)
		}
		if r.Source != "" && !names[r.Source] {
			p.add(at+".source", "no source is named %q", r.Source)
		}
		action := codec.ActionUnknown
		if r.Action != "" {
			a, ok := codec.ParseAction(r.Action)
			if !ok {
				p.add(at+".action", "unknown action %q", r.Action)
			}
			action = a
		}
		p.oneOf(at+".body", r.Body, BodyRaw, BodyEnvelope)
		if r.Body == BodyRaw && r.Action == "" {
			p.add(at+".action", "required with body: raw")
		}
		for _, f := range []struct{ key, val string }{
			{"hub", r.Hub}, {"group", r.Group}, {"userId", r.UserID},
			{"connectionId", r.ConnectionID}, {"filter", r.Filter}, {"key", r.Key},
		} {
			validateTemplate(p, at+"."+f.key, f.val)
		}
		if r.Hub != "" && !strings.Contains(r.Hub, "{") {
			if err := codec.ValidateHub(r.Hub); err != nil {
				p.add(at+".hub", "%v", err)
			}
		}
		if r.DataType != "" {
			p.oneOf(at+".dataType", r.DataType, "json", "text", "binary")
		}
		if r.TTL < 0 || r.TTL > codec.MaxTTL {
			p.add(at+".ttl", "must be 0..%d seconds, got %d", codec.MaxTTL, r.TTL)
		}
		if r.Coalesce != nil {
			r.Coalesce.validate(p, at+".coalesce")
			if action != codec.ActionUnknown && !action.IsSend() {
				p.add(at+".coalesce", "only send actions can be coalesced, not %s", action)
			}
			if r.DataType != "" && r.DataType != "json" {
				p.add(at+".coalesce", "only JSON sends can be coalesced (dataType is %s)", r.DataType)
			}
		}
	}
	c.compileRoutes(p)
}

// compileRoutes builds the routes with the codec, as the bridge does at
// start, and reports what it rejects beyond the checks above (a field the
// action does not take, a literal group or user id the service refuses), so
// that a file validate accepts is one run accepts. The codec names each
// problem "routes[i].field: reason"; a path already reported is skipped.
func (c *Config) compileRoutes(p *problems) {
	if len(c.Routes) == 0 {
		return
	}
	routes := make([]codec.Route, len(c.Routes))
	for i, r := range c.Routes {
		routes[i] = codec.Route{
			Match: r.Match, Source: r.Source, Action: r.Action, Body: r.Body,
			Hub: r.Hub, Group: r.Group, UserID: r.UserID, ConnectionID: r.ConnectionID,
			Filter: r.Filter, DataType: r.DataType, Key: r.Key, TTL: r.TTL,
		}
		if co := r.Coalesce; co != nil {
			routes[i].Coalesce = &codec.Coalesce{Count: co.Count, Bytes: co.Bytes, Linger: co.Linger}
		}
	}
	_, err := codec.New(codec.Config{Routes: routes})
	if err == nil {
		return
	}
	reported := make(map[string]bool, len(*p))
	for _, fe := range *p {
		reported[fe.Path] = true
	}
	for _, leaf := range leafErrors(err) {
		path, msg, ok := strings.Cut(leaf.Error(), ": ")
		if !ok || !strings.HasPrefix(path, "routes[") {
			path, msg = "routes", leaf.Error()
		}
		if !reported[path] {
			reported[path] = true
			p.add(path, "%s", msg)
		}
	}
}

// leafErrors flattens err's tree (the codec's "codec config: %w" around an
// errors.Join) to the problems it holds. An error whose text names a route
// is a leaf even if it wraps another, so that its path is kept.
func leafErrors(err error) []error {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, inner := range e.Unwrap() {
			out = append(out, leafErrors(inner)...)
		}
		return out
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil && !strings.HasPrefix(err.Error(), "routes[") {
			return leafErrors(inner)
		}
	}
	return []error{err}
}

func (c *Coalesce) validate(p *problems, at string) {
	if c.Count < 2 {
		p.add(at+".count", "must be at least 2, got %d", c.Count)
	}
	if c.Bytes < 1 {
		p.add(at+".bytes", "must be positive, got %d", c.Bytes)
	}
	if c.Linger <= 0 {
		p.add(at+".linger", "must be positive")
	}
}

func (r *Router) validate(p *problems) {
	for _, f := range []struct {
		key string
		val int
	}{{"lanes", r.Lanes}, {"laneQueue", r.LaneQueue}, {"maxPending", r.MaxPending}, {"multicastChunk", r.MulticastChunk}} {
		if f.val < 1 {
			p.add("router."+f.key, "must be at least 1, got %d", f.val)
		}
	}
	if r.DrainTimeout <= 0 {
		p.add("router.drainTimeout", "must be positive")
	}
}

func (r *Retry) validate(p *problems) {
	if r.Initial <= 0 {
		p.add("retry.initial", "must be positive")
	}
	if r.Max < r.Initial {
		p.add("retry.max", "must be at least retry.initial (%s), got %s", r.Initial, r.Max)
	}
	if r.MaxElapsed < r.Initial {
		p.add("retry.maxElapsed", "must be at least retry.initial (%s), got %s", r.Initial, r.MaxElapsed)
	}
	if r.SystemicInterval <= 0 {
		p.add("retry.systemicInterval", "must be positive")
	}
}

func (c *Config) validateDeadLetter(p *problems) {
	const at = "deadLetter"
	dl := &c.DeadLetter
	why := "for type " + string(dl.Type)
	switch dl.Type {
	case BrokerNone:
		why := "when deadLetter.type is none (set type: nats, jetstream or kafka)"
		p.forbid(at+".url", dl.URL != "", why)
		p.forbid(at+".subject", dl.Subject != "", why)
		p.forbid(at+".stream", dl.Stream != "", why)
		p.forbid(at+".createStream", dl.CreateStream, why)
		p.forbid(at+".brokers", len(dl.Brokers) > 0, why)
		p.forbid(at+".topic", dl.Topic != "", why)
		p.forbid(at+".auth", !dl.Auth.IsZero(), why)
		p.forbid(at+".sasl", !dl.SASL.IsZero(), why)
		p.forbid(at+".tls", dl.TLS.On(), why)
		return
	case BrokerNATS, BrokerJetStream:
		if dl.URL == "" {
			p.add(at+".url", "required (no nats or jetstream source to take it from)")
		} else {
			validateNATSURL(p, at+".url", dl.URL)
		}
		if dl.Subject == "" {
			p.add(at+".subject", "required")
		} else if err := checkSubject(dl.Subject, false); err != nil {
			p.add(at+".subject", "%v", err)
		}
		if dl.Type == BrokerJetStream {
			validateJSName(p, at+".stream", dl.Stream)
		} else {
			p.forbid(at+".stream", dl.Stream != "", why)
			p.forbid(at+".createStream", dl.CreateStream, why)
		}
		p.forbid(at+".brokers", len(dl.Brokers) > 0, why)
		p.forbid(at+".topic", dl.Topic != "", why)
		p.forbid(at+".sasl", !dl.SASL.IsZero(), why+" (use auth)")
		dl.Auth.validate(p, at+".auth")
	case BrokerKafka:
		if len(dl.Brokers) == 0 {
			p.add(at+".brokers", "required (no kafka source to take them from)")
		} else {
			validateBrokers(p, at+".brokers", dl.Brokers)
		}
		if dl.Topic == "" {
			p.add(at+".topic", "required")
		} else if !kafkaTopicRE.MatchString(dl.Topic) {
			p.add(at+".topic", "invalid Kafka topic name %q", dl.Topic)
		}
		p.forbid(at+".url", dl.URL != "", why+" (use brokers)")
		p.forbid(at+".subject", dl.Subject != "", why+" (use topic)")
		p.forbid(at+".stream", dl.Stream != "", why)
		p.forbid(at+".createStream", dl.CreateStream, why)
		p.forbid(at+".auth", !dl.Auth.IsZero(), why+" (use sasl)")
		dl.SASL.validate(p, at+".sasl")
	default:
		p.add(at+".type", "must be one of none, nats, jetstream, kafka, got %q", dl.Type)
		return
	}
	dl.TLS.validate(p, at+".tls")
	c.checkLoop(p)
}

// checkLoop reports a dead-letter destination that a source consumes: parked
// messages would come straight back. URLs are not compared (two URLs may reach
// one cluster), so the same subject or topic name is a loop on any server.
func (c *Config) checkLoop(p *problems) {
	dl := &c.DeadLetter
	for i, s := range c.Sources {
		at := fmt.Sprintf("sources[%d]", i)
		switch {
		case dl.Type.natsFamily() && s.Type.natsFamily():
			for j, pattern := range s.Subjects {
				if dl.Subject != "" && subjectMatches(pattern, dl.Subject) {
					p.add("deadLetter.subject", "loop: %q is consumed by %s (%s.subjects[%d] = %q)", dl.Subject, s.Name, at, j, pattern)
				}
			}
			if s.Type == BrokerJetStream && dl.Type == BrokerJetStream && s.Stream != "" && s.Stream == dl.Stream {
				p.add("deadLetter.stream", "loop: stream %q is consumed by %s (%s.stream)", dl.Stream, s.Name, at)
			}
		case dl.Type == BrokerKafka && s.Type == BrokerKafka:
			for j, topic := range s.Topics {
				if topic == dl.Topic {
					p.add("deadLetter.topic", "loop: %q is consumed by %s (%s.topics[%d])", dl.Topic, s.Name, at, j)
				}
			}
		}
	}
}

// checkSubject validates a NATS subject; wildcards (* for one token, > for the
// rest) only when pattern is true.
func checkSubject(s string, pattern bool) error {
	if s == "" {
		return fmt.Errorf("empty subject")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("subject %q contains whitespace", s)
	}
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return fmt.Errorf("subject %q has an empty token", s)
		case tok == "*" || tok == ">":
			if !pattern {
				return fmt.Errorf("subject %q must not contain wildcards", s)
			}
			if tok == ">" && i != len(tokens)-1 {
				return fmt.Errorf("subject %q: > must be the last token", s)
			}
		case strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("subject %q: wildcards must be whole tokens", s)
		}
	}
	return nil
}

// subjectMatches reports whether the literal subject matches pattern
// (NATS rules: * is one token, a final > is one or more tokens).
func subjectMatches(pattern, subject string) bool {
	p := strings.Split(pattern, ".")
	s := strings.Split(subject, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}
