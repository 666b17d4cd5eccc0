package codec

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/wpsname"
)

// Route maps the messages of one subject pattern (Kafka: topic) to commands.
// The string fields Hub, Group, UserID, ConnectionID, Filter, DataType and Key
// are templates: {subject}, {subject.N} (N-th dot-separated token, 0-based),
// {topic}, {key}, {partition} and {header.Name} are replaced from the
// message, with literal text allowed around them. A field the route sets wins
// over the same field in the envelope or the wps-* headers.
type Route struct {
	// Match is a NATS-style subject pattern (`*` one token, `>` the rest)
	// matched against msg.Subject (Kafka: the topic); "" matches any.
	Match string
	// Source restricts the route to messages of this source name; "" = any.
	Source string
	// Action fixes the action (any spelling ParseAction accepts); "" takes
	// it from the envelope or the wps-action header.
	Action string
	// Body is "raw" (the body is the payload) or "envelope". When empty it is
	// raw if Action is set or the message has a wps-action header, else
	// envelope.
	Body string
	// Templates of the command fields; "" leaves the field to the message.
	Hub, Group, UserID, ConnectionID, Filter, DataType, Key string
	// TTL fixes messageTtlSeconds (0..300) of sends; 0 leaves it to the message.
	TTL int
	// Coalesce is copied into every command of the route; nil = off.
	Coalesce *Coalesce
}

// Body modes of a Route.
const (
	BodyRaw      = "raw"
	BodyEnvelope = "envelope"
)

// Config configures a Decoder.
type Config struct {
	// DefaultHub is the hub of commands that name none (webpubsub.hub).
	DefaultHub string
	// Routes are tried in order, the first match wins; a message no route
	// matches is an envelope (or header mode, with a wps-action header).
	Routes []Route
	// MaxBodyBytes caps the message body; 0 means DefaultMaxBodyBytes.
	// A bigger body is a DecodeError on field "body".
	MaxBodyBytes int
	// Now is the clock of Expired; nil means time.Now.
	Now func() time.Time
}

// Decoder decodes source messages into commands. It is immutable after New
// and safe for concurrent use.
type Decoder struct {
	defaultHub string
	routes     []route
	maxBody    int
	now        func() time.Time
}

var _ Codec = (*Decoder)(nil)

// New validates cfg and compiles its routes and templates. The error joins
// every problem found, each naming its place, e.g.
// `routes[2].group: unknown placeholder "{subjct.1}"`.
func New(cfg Config) (*Decoder, error) {
	d := &Decoder{defaultHub: cfg.DefaultHub, maxBody: cfg.MaxBodyBytes, now: cfg.Now}
	var errs []error
	if d.defaultHub != "" {
		if r := wpsname.HubReason(d.defaultHub); r != "" {
			errs = append(errs, fmt.Errorf("hub: %s", r))
		}
	}
	switch {
	case d.maxBody < 0:
		errs = append(errs, fmt.Errorf("maxBodyBytes: must not be negative, got %d", d.maxBody))
	case d.maxBody == 0:
		d.maxBody = DefaultMaxBodyBytes
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.routes = make([]route, 0, len(cfg.Routes))
	for i := range cfg.Routes {
		r, rerrs := compileRoute(i, &cfg.Routes[i])
		errs = append(errs, rerrs...)
		d.routes = append(d.routes, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("codec config: %w", err)
	}
	return d, nil
}

// Expired reports whether c has an expiresAt that is not in the future of the
// decoder's clock. The decoder keeps expired commands: the router drops them
// at dispatch, when it knows how long they waited.
func (d *Decoder) Expired(c *Command) bool {
	return !c.ExpiresAt.IsZero() && !d.now().Before(c.ExpiresAt)
}

// CappedTTL returns the messageTtlSeconds to send for c at now. A send with
// an ExpiresAt gets its TTL capped to the whole seconds left (rounded down,
// so the service never keeps it past ExpiresAt, but at least 1, since 0
// would mean "never expires"); a send without TTL gets the seconds left as
// its TTL only when they fit in MaxTTL, else it keeps none. Other commands,
// and commands without ExpiresAt, keep their TTL. The router applies this
// before every attempt.
func (c *Command) CappedTTL(now time.Time) int {
	if c.ExpiresAt.IsZero() || !c.Action.IsSend() {
		return c.TTL
	}
	left := c.ExpiresAt.Sub(now)
	secs := max(1, int(left/time.Second))
	switch {
	case c.TTL == 0 && left <= MaxTTL*time.Second:
		return secs
	case c.TTL > secs:
		return secs
	}
	return c.TTL
}

// Decode turns msg into its commands, in order. Invalid input yields a
// *DecodeError (wrapping ErrDecode) and no commands; an empty JSON array
// yields no commands and no error. Decode never panics and is safe for
// concurrent use.
func (d *Decoder) Decode(msg *source.Message) ([]Command, error) {
	if msg == nil {
		return nil, &DecodeError{Index: -1, Field: "body", Reason: "no message"}
	}
	if len(msg.Body) > d.maxBody {
		return nil, &DecodeError{Index: -1, Field: "body",
			Reason: "is " + strconv.Itoa(len(msg.Body)) + " bytes, more than the limit of " + strconv.Itoa(d.maxBody)}
	}
	var hv headerValues
	hv.scan(msg.Headers)
	r := d.match(msg)
	if rawMode(r, &hv) {
		var dr draft
		if err := dr.fromHeaders(&hv, msg.Body); err != nil {
			return nil, err
		}
		c, err := d.build(&dr, r, msg, &hv)
		if err != nil {
			return nil, err
		}
		return []Command{c}, nil
	}
	return d.decodeEnvelopes(msg, r, &hv)
}

func (d *Decoder) match(msg *source.Message) *route {
	for i := range d.routes {
		r := &d.routes[i]
		if r.source != "" && r.source != msg.Source {
			continue
		}
		if r.hasMatch && !matchSubject(r.match, msg.Subject) {
			continue
		}
		return r
	}
	return nil
}

// rawMode reports whether the body is the payload (header mode or a raw
// route) rather than an envelope.
func rawMode(r *route, hv *headerValues) bool {
	if r == nil {
		return hv.has[fAction]
	}
	switch r.body {
	case bodyRaw:
		return true
	case bodyEnvelope:
		return false
	}
	return r.action != ActionUnknown || hv.has[fAction]
}

// origin says where a draft field came from, to name it in errors.
type origin uint8

const (
	fromEnvelope origin = iota
	fromHeader
	fromRoute
)

// draft is a command being assembled from an envelope or headers, then a
// route, before validation.
type draft struct {
	actionName string
	action     Action
	hub        string
	group      string
	userID     string
	connID     string
	groups     []string
	userIDs    []string
	excluded   []string
	filter     string
	ttl        int
	ttlSet     bool
	reason     string
	permission string
	targetName string
	id         string
	expiresAt  time.Time
	dataType   string
	// raw is the envelope's data member (nil when absent).
	raw []byte
	// payload is the body in raw mode.
	payload []byte
	rawMode bool
	key     string
	keySet  bool
	origin  [fieldCount]origin
	// aliases: op instead of actionName, messageTtlSeconds instead of ttl.
	opAlias, ttlAlias bool
	route             *route
}

func (dr *draft) name(f field) string {
	switch dr.origin[f] {
	case fromHeader:
		if f == fData {
			return "body"
		}
		return "header " + headerNames[f]
	}
	switch {
	case f == fAction && dr.opAlias:
		return "op"
	case f == fTTL && dr.ttlAlias:
		return "messageTtlSeconds"
	}
	return jsonNames[f]
}

func (dr *draft) fail(f field, reason string) *DecodeError {
	if dr.origin[f] == fromRoute && dr.route != nil {
		if t := dr.route.tpl[f]; t != nil {
			reason = "from route template " + strconv.Quote(t.src) + ": " + reason
		} else {
			reason = "from the route: " + reason
		}
	}
	return &DecodeError{Index: -1, Field: dr.name(f), Reason: reason}
}

func (dr *draft) failAt(f field, i int, reason string) *DecodeError {
	e := dr.fail(f, reason)
	e.Field += "[" + strconv.Itoa(i) + "]"
	return e
}

func (dr *draft) present(f field) bool {
	switch f {
	case fGroup:
		return dr.group != ""
	case fUserID:
		return dr.userID != ""
	case fConnectionID:
		return dr.connID != ""
	case fGroups:
		return len(dr.groups) > 0
	case fUserIDs:
		return len(dr.userIDs) > 0
	case fExcluded:
		return len(dr.excluded) > 0
	case fFilter:
		return dr.filter != ""
	case fTTL:
		return dr.ttlSet && dr.ttl != 0
	case fReason:
		return dr.reason != ""
	case fPermission:
		return dr.permission != ""
	case fTargetName:
		return dr.targetName != ""
	case fDataType:
		if dr.rawMode && !dr.action.IsSend() {
			return false // header mode: Content-Type and wps-data-type are ignored
		}
		return dr.dataType != ""
	case fData:
		if dr.rawMode {
			return dr.action.IsSend() // the body of a non-send is ignored
		}
		return dr.raw != nil && (dr.action.IsSend() || string(dr.raw) != "null")
	}
	return false
}

// build resolves the action, applies the route, validates and returns the
// command.
func (d *Decoder) build(dr *draft, r *route, msg *source.Message, hv *headerValues) (Command, *DecodeError) {
	dr.route = r
	if r != nil && r.action != ActionUnknown {
		dr.action, dr.origin[fAction] = r.action, fromRoute
	} else {
		if dr.actionName == "" {
			return Command{}, dr.fail(fAction, "required")
		}
		a, ok := ParseAction(dr.actionName)
		if !ok {
			return Command{}, dr.fail(fAction, "unknown action "+strconv.Quote(dr.actionName))
		}
		dr.action = a
	}
	sp := specs[dr.action]
	if r != nil {
		if err := r.apply(dr, sp, msg); err != nil {
			return Command{}, err
		}
	}
	if dr.hub == "" {
		if d.defaultHub == "" {
			return Command{}, dr.fail(fHub, "required (no hub in the message, the route or the configuration)")
		}
		dr.hub = d.defaultHub
	} else if reason := wpsname.HubReason(dr.hub); reason != "" {
		return Command{}, dr.fail(fHub, reason)
	}
	for f := fGroup; f < fieldCount; f++ {
		p := dr.present(f)
		switch {
		case p && !sp.allowed.has(f):
			return Command{}, dr.fail(f, dr.action.String()+" does not take "+jsonNames[f])
		case !p && sp.required.has(f):
			return Command{}, dr.fail(f, "required by "+dr.action.String())
		}
	}
	c := Command{
		Action:       dr.action,
		Hub:          dr.hub,
		Group:        dr.group,
		UserID:       dr.userID,
		ConnectionID: dr.connID,
		Groups:       dr.groups,
		UserIDs:      dr.userIDs,
		Excluded:     dr.excluded,
		Filter:       dr.filter,
		TTL:          dr.ttl,
		Reason:       dr.reason,
		TargetName:   dr.targetName,
		ID:           dr.id,
		ExpiresAt:    dr.expiresAt,
		TraceParent:  hv.traceParent,
	}
	if err := dr.checkTargets(&c); err != nil {
		return Command{}, err
	}
	if dr.action.IsSend() {
		var err *DecodeError
		if dr.rawMode {
			c.DataType, c.Data, err = dr.rawData()
		} else {
			c.DataType, c.Data, err = dr.envelopeData()
		}
		if err != nil {
			return Command{}, err
		}
	}
	if r != nil {
		c.Coalesce = r.coalesce
	}
	if dr.keySet && dr.key != "" {
		c.Key = dr.key
	} else {
		c.Key = DefaultKey(&c)
	}
	return c, nil
}

func (dr *draft) checkTargets(c *Command) *DecodeError {
	if c.Group != "" {
		if reason := wpsname.PathGroupReason(c.Group); reason != "" {
			return dr.fail(fGroup, reason)
		}
	}
	if c.TargetName != "" {
		if reason := wpsname.PathGroupReason(c.TargetName); reason != "" {
			return dr.fail(fTargetName, reason)
		}
	}
	if c.UserID != "" {
		if reason := wpsname.SegmentReason(c.UserID); reason != "" {
			return dr.fail(fUserID, reason)
		}
	}
	if c.ConnectionID != "" {
		if reason := wpsname.SegmentReason(c.ConnectionID); reason != "" {
			return dr.fail(fConnectionID, reason)
		}
	}
	for i, g := range c.Groups {
		if reason := wpsname.PathGroupReason(g); reason != "" {
			return dr.failAt(fGroups, i, reason)
		}
	}
	for i, u := range c.UserIDs {
		if reason := wpsname.SegmentReason(u); reason != "" {
			return dr.failAt(fUserIDs, i, reason)
		}
	}
	for i, x := range c.Excluded {
		if x == "" {
			return dr.failAt(fExcluded, i, "must not be empty")
		}
	}
	if dr.permission != "" {
		p, ok := parsePermission(dr.permission)
		if !ok {
			return dr.fail(fPermission, "must be sendToGroup or joinLeaveGroup, got "+strconv.Quote(dr.permission))
		}
		c.Permission = p
	}
	return nil
}

// resolveDataType returns the explicit data type, if any.
func (dr *draft) resolveDataType() (DataType, bool, *DecodeError) {
	if dr.dataType == "" {
		return DataJSON, false, nil
	}
	dt, ok := parseDataType(dr.dataType)
	if !ok {
		return DataJSON, false, dr.fail(fDataType, "must be json, text or binary, got "+strconv.Quote(dr.dataType))
	}
	return dt, true, nil
}

// rawData checks the body of header or raw-route mode. Without an explicit
// type: json if it parses, else text if valid UTF-8, else binary.
func (dr *draft) rawData() (DataType, []byte, *DecodeError) {
	dt, explicit, err := dr.resolveDataType()
	if err != nil {
		return 0, nil, err
	}
	p := dr.payload
	if !explicit {
		switch {
		case jsonValid(p):
			return DataJSON, p, nil
		case utf8.Valid(p):
			return DataText, p, nil
		}
		return DataBinary, p, nil
	}
	switch dt {
	case DataJSON:
		if e := jsonError(p); e != "" {
			return 0, nil, dr.fail(fData, "dataType json needs a JSON body: "+e)
		}
	case DataText:
		if !utf8.Valid(p) {
			return 0, nil, dr.fail(fData, "dataType text needs a UTF-8 body")
		}
	}
	return dt, p, nil
}
