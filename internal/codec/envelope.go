package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wps-bridge/bridge/internal/source"
)

// envelope is one command of envelope v1 as JSON (design.md §2). Unknown
// members are ignored (Azure Functions compatibility); member names match
// case-insensitively, as encoding/json does. Data and the ttl members stay
// raw so that the decoder keeps the producer's bytes and can tell a missing
// member from null.
type envelope struct {
	ActionName        string          `json:"actionName"`
	Op                string          `json:"op"`
	Hub               string          `json:"hub"`
	Data              json.RawMessage `json:"data"`
	DataType          string          `json:"dataType"`
	Group             string          `json:"group"`
	UserID            string          `json:"userId"`
	ConnectionID      string          `json:"connectionId"`
	Groups            []string        `json:"groups"`
	UserIDs           []string        `json:"userIds"`
	Excluded          []string        `json:"excluded"`
	Filter            string          `json:"filter"`
	TTL               jsonTTL         `json:"ttl"`
	MessageTTLSeconds jsonTTL         `json:"messageTtlSeconds"`
	Reason            string          `json:"reason"`
	Permission        string          `json:"permission"`
	TargetName        string          `json:"targetName"`
	ID                string          `json:"id"`
	ExpiresAt         string          `json:"expiresAt"`
}

// envelopePool recycles the envelopes of single-envelope bodies: a Command
// copies what it needs out of its envelope. Envelopes go back cleared, so the
// pool holds no message's body (Data aliases it).
var envelopePool = sync.Pool{New: func() any { return new(envelope) }}

func putEnvelope(e *envelope) {
	*e = envelope{}
	envelopePool.Put(e)
}

// envelopeTypeProbe has the list members as raw values, to find which entry
// of a list has the wrong type.
type envelopeTypeProbe struct {
	Groups   []json.RawMessage `json:"groups"`
	UserIDs  []json.RawMessage `json:"userIds"`
	Excluded []json.RawMessage `json:"excluded"`
}

func (d *Decoder) decodeEnvelopes(msg *source.Message, r *route, hv *headerValues) ([]Command, error) {
	body := bytes.TrimLeft(msg.Body, " \t\r\n")
	if len(body) == 0 {
		return nil, &DecodeError{Index: -1, Field: "body", Reason: "is empty (want a JSON object or array)"}
	}
	switch body[0] {
	case '{':
		e := envelopePool.Get().(*envelope)
		defer putEnvelope(e)
		if !fastEnvelope(body, e) {
			*e = envelope{} // the fast path may have filled part of it
			if err := json.Unmarshal(body, e); err != nil {
				return nil, jsonDecodeError(err, body, -1)
			}
		}
		c, err := d.fromEnvelope(e, r, msg, hv)
		if err != nil {
			return nil, err
		}
		return []Command{c}, nil
	case '[':
		var es []envelope
		if err := json.Unmarshal(body, &es); err != nil {
			return nil, arrayDecodeError(err, body)
		}
		cmds := make([]Command, len(es))
		for i := range es {
			c, err := d.fromEnvelope(&es[i], r, msg, hv)
			if err != nil {
				err.Index = i
				return nil, err
			}
			cmds[i] = c
		}
		return cmds, nil
	}
	if !json.Valid(body) {
		return nil, jsonDecodeError(json.Unmarshal(body, new(json.RawMessage)), body, -1)
	}
	return nil, &DecodeError{Index: -1, Field: "body", Reason: "must be a JSON object or array, got " + jsonKind(body)}
}

func (d *Decoder) fromEnvelope(e *envelope, r *route, msg *source.Message, hv *headerValues) (Command, *DecodeError) {
	dr := draft{
		actionName: e.ActionName,
		hub:        e.Hub,
		group:      e.Group,
		userID:     e.UserID,
		connID:     e.ConnectionID,
		groups:     e.Groups,
		userIDs:    e.UserIDs,
		excluded:   e.Excluded,
		filter:     e.Filter,
		reason:     e.Reason,
		permission: e.Permission,
		targetName: e.TargetName,
		id:         e.ID,
		dataType:   e.DataType,
		raw:        e.Data,
	}
	switch {
	case e.ActionName != "" && e.Op != "":
		return Command{}, &DecodeError{Index: -1, Field: "op", Reason: "give actionName or op, not both"}
	case e.Op != "":
		dr.actionName, dr.opAlias = e.Op, true
	}
	ttl, alias := &e.TTL, false
	if !ttl.present {
		ttl, alias = &e.MessageTTLSeconds, true
	} else if e.MessageTTLSeconds.present {
		return Command{}, &DecodeError{Index: -1, Field: "messageTtlSeconds", Reason: "give ttl or messageTtlSeconds, not both"}
	}
	if ttl.present {
		dr.ttlAlias = alias
		if ttl.reason != "" {
			return Command{}, dr.fail(fTTL, ttl.reason)
		}
		dr.ttl, dr.ttlSet = ttl.value, true
	}
	if e.ExpiresAt != "" {
		t, err := parseTime(e.ExpiresAt)
		if err != nil {
			return Command{}, dr.fail(fExpiresAt, "must be an RFC 3339 time, got "+strconv.Quote(e.ExpiresAt))
		}
		dr.expiresAt = t
	}
	return d.build(&dr, r, msg, hv)
}

// parseTime reads an RFC 3339 time. RFC 3339 allows lowercase 't' and 'z',
// which time.Parse does not. (A leap second, :60, is refused: time.Time cannot
// hold it.)
func parseTime(s string) (time.Time, error) {
	if strings.ContainsAny(s, "tz") {
		s = strings.ToUpper(s)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse expiresAt: %w", err)
	}
	return t, nil
}

// jsonTTL reads a ttl member in place (no copy): null is absent, anything
// else is present and either a value or the reason it is refused.
type jsonTTL struct {
	present bool
	value   int
	reason  string
}

// UnmarshalJSON implements json.Unmarshaler. It never fails: a bad value is
// reported by the decoder with the member's name.
func (t *jsonTTL) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = jsonTTL{}
		return nil
	}
	t.present = true
	t.value, t.reason = parseTTLJSON(b)
	return nil
}

// parseTTLJSON reads an integer 0..300 from a JSON number (1e2 and 100.0 are
// integers too, as in JSON Schema).
func parseTTLJSON(raw []byte) (int, string) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, "must be an integer 0..300, got " + jsonKind(raw)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != float64(int64(f)) {
		return 0, "must be an integer 0..300, got " + string(raw)
	}
	if f < 0 || f > MaxTTL {
		return 0, "must be 0..300, got " + string(raw)
	}
	return int(f), ""
}

// envelopeData turns the data member of a send into the REST body.
func (dr *draft) envelopeData() (DataType, []byte, *DecodeError) {
	dt, explicit, err := dr.resolveDataType()
	if err != nil {
		return 0, nil, err
	}
	raw := dr.raw
	isString := raw[0] == '"'
	if !explicit && isString {
		dt = DataText
	}
	switch dt {
	case DataJSON:
		if !isString {
			return DataJSON, compactJSON(raw), nil
		}
		s := unquote(raw)
		if e := jsonError(s); e != "" {
			return 0, nil, dr.fail(fData, "dataType json with a string needs JSON text: "+e)
		}
		return DataJSON, s, nil
	case DataText:
		if !isString {
			return 0, nil, dr.fail(fData, "dataType text needs a string, got "+jsonKind(raw))
		}
		return DataText, unquote(raw), nil
	default:
		if !isString {
			return 0, nil, dr.fail(fData, "dataType binary needs a base64 string, got "+jsonKind(raw))
		}
		s := unquote(raw)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(out, s)
		if err != nil {
			return 0, nil, dr.fail(fData, "invalid base64: "+err.Error())
		}
		return DataBinary, out[:n], nil
	}
}

// unquote returns the content of a JSON string. Without escapes it is a
// sub-slice of raw (which the decoder owns).
func unquote(raw []byte) []byte {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return inner
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return inner // unreachable: raw was validated by encoding/json
	}
	return []byte(s)
}

// compactJSON keeps raw as given unless it has insignificant whitespace.
func compactJSON(raw []byte) []byte {
	if bytes.IndexAny(raw, " \t\r\n") < 0 {
		return raw
	}
	var b bytes.Buffer
	b.Grow(len(raw))
	if err := json.Compact(&b, raw); err != nil {
		return raw // unreachable: raw was validated by encoding/json
	}
	return b.Bytes()
}

func jsonValid(b []byte) bool { return json.Valid(b) }

// jsonError explains why b is not JSON, or returns "".
func jsonError(b []byte) string {
	if json.Valid(b) {
		return ""
	}
	var v json.RawMessage
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "offset " + strconv.FormatInt(se.Offset, 10) + ": " + se.Error()
	}
	if err != nil {
		return err.Error()
	}
	return "invalid JSON"
}

// jsonKind names the JSON type of a value, for error reasons.
func jsonKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// jsonDecodeError turns an encoding/json error on one envelope into a
// DecodeError naming the member.
func jsonDecodeError(err error, obj []byte, index int) *DecodeError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &DecodeError{Index: -1, Field: "body",
			Reason: "invalid JSON at offset " + strconv.FormatInt(se.Offset, 10) + ": " + se.Error()}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return &DecodeError{Index: index, Reason: "must be a JSON object, got " + te.Value}
		}
		field, want := te.Field, "a string"
		switch te.Field {
		case "groups", "userIds", "excluded":
			want = "an array of strings"
			var p envelopeTypeProbe
			if json.Unmarshal(obj, &p) == nil {
				list := map[string][]json.RawMessage{"groups": p.Groups, "userIds": p.UserIDs, "excluded": p.Excluded}[te.Field]
				for i, v := range list {
					if k := jsonKind(v); k != "string" && k != "null" {
						field, want = te.Field+"["+strconv.Itoa(i)+"]", "a string"
						break
					}
				}
			}
		}
		return &DecodeError{Index: index, Field: field, Reason: "must be " + want + ", got " + te.Value}
	}
	return &DecodeError{Index: index, Field: "body", Reason: err.Error()}
}

// arrayDecodeError locates the element of an array body that failed.
func arrayDecodeError(err error, body []byte) *DecodeError {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return jsonDecodeError(err, body, -1)
	}
	var elems []json.RawMessage
	if json.Unmarshal(body, &elems) == nil {
		for i, el := range elems {
			if jsonKind(el) != "object" && jsonKind(el) != "null" {
				return &DecodeError{Index: i, Reason: "must be a JSON object, got " + jsonKind(el)}
			}
			var e envelope
			if err := json.Unmarshal(el, &e); err != nil {
				return jsonDecodeError(err, el, i)
			}
		}
	}
	return jsonDecodeError(err, body, -1)
}
