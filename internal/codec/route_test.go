package codec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wps-bridge/bridge/internal/source"
)

func TestDecodeRouteMode(t *testing.T) {
	t.Parallel()
	coalesce := &Coalesce{Count: 10, Bytes: 1 << 16, Linger: 5 * time.Millisecond}
	d := mustNew(t, Config{DefaultHub: "chat", Routes: []Route{
		{Match: "chat.*.msg", Action: "sendToGroup", Group: "{subject.1}", DataType: "text", Coalesce: coalesce},
		{Match: "users.>", Source: "kafka", Action: "SendToUser", UserID: "{key}", Hub: "{header.Tenant}",
			Key: "p{partition}/{topic}", TTL: 30},
		{Match: "fixed.*", Action: "sendToConnection", ConnectionID: "conn-{subject.1}", Body: "envelope"},
		{Match: "hub.*", Hub: "{subject.1}", Group: "room-{subject.1}"},
		{Match: "raw.headers", Body: "raw", Action: "sendToGroup"},
		{Match: "explicit.envelope", Body: "envelope"},
		{Match: "keyed.*", Key: "{header.Order}"},
	}})
	tests := []struct {
		name string
		msg  source.Message
		want []Command
	}{
		{"design example", source.Message{Subject: "chat.room42.msg", Body: []byte(`hello {"x"}`)},
			[]Command{{Action: SendToGroup, Hub: "chat", Group: "room42", DataType: DataText, Data: []byte(`hello {"x"}`),
				Key: "chat/group:room42", Coalesce: coalesce}}},
		{"kafka templates", source.Message{Source: "kafka", Subject: "users.eu", Topic: "users.eu", Key: []byte("alice"), Partition: 3,
			Headers: hdrs("Tenant", "acme"), Body: []byte(`{"n":1}`)},
			[]Command{{Action: SendToUser, Hub: "acme", UserID: "alice", TTL: 30, DataType: DataJSON, Data: []byte(`{"n":1}`), Key: "p3/users.eu"}}},
		{"source filter falls through to envelope", source.Message{Source: "nats", Subject: "users.eu",
			Body: []byte(`{"actionName":"sendToAll","data":1}`)},
			[]Command{{Action: SendToAll, Hub: "chat", DataType: DataJSON, Data: []byte(`1`), Key: "chat/all"}}},
		{"route action wins over envelope action", source.Message{Subject: "fixed.c7",
			Body: []byte(`{"actionName":"closeAllConnections","data":"hi","ttl":5,"connectionId":"ignored"}`)},
			[]Command{{Action: SendToConnection, Hub: "chat", ConnectionID: "conn-c7", TTL: 5, DataType: DataText, Data: []byte(`hi`), Key: "chat/conn:conn-c7"}}},
		{"route fields override envelope; unused ones ignored", source.Message{Subject: "hub.sales",
			Body: []byte(`[{"actionName":"sendToGroup","hub":"other","group":"g","data":1},{"actionName":"closeAllConnections"}]`)},
			[]Command{
				{Action: SendToGroup, Hub: "sales", Group: "room-sales", DataType: DataJSON, Data: []byte(`1`), Key: "sales/group:room-sales"},
				{Action: CloseAllConnections, Hub: "sales", Key: "sales/all"},
			}},
		{"auto body with wps-action header is header mode", source.Message{Subject: "hub.ops",
			Headers: hdrs("wps-action", "closeGroupConnections"), Body: []byte(`{"actionName":"sendToAll"}`)},
			[]Command{{Action: CloseGroupConnections, Hub: "ops", Group: "room-ops", Key: "ops/group:room-ops"}}},
		{"raw route takes missing fields from headers", source.Message{Subject: "raw.headers",
			Headers: hdrs("wps-group", "from-header", "wps-action", "closeAllConnections"), Body: []byte(`x`)},
			[]Command{{Action: SendToGroup, Hub: "chat", Group: "from-header", DataType: DataText, Data: []byte(`x`), Key: "chat/group:from-header"}}},
		{"explicit envelope ignores wps-action", source.Message{Subject: "explicit.envelope",
			Headers: hdrs("wps-action", "sendToAll"), Body: []byte(`{"op":"closeAllConnections"}`)},
			[]Command{{Action: CloseAllConnections, Hub: "chat", Key: "chat/all"}}},
		{"key template", source.Message{Subject: "keyed.x", Headers: hdrs("Order", "o-1"),
			Body: []byte(`{"op":"sendToUser","userId":"u","data":1}`)},
			[]Command{{Action: SendToUser, Hub: "chat", UserID: "u", DataType: DataJSON, Data: []byte(`1`), Key: "o-1"}}},
		{"empty key template falls back to default key", source.Message{Subject: "keyed.x", Headers: hdrs("Order", ""),
			Body: []byte(`{"op":"sendToUser","userId":"u","data":1}`)},
			[]Command{{Action: SendToUser, Hub: "chat", UserID: "u", DataType: DataJSON, Data: []byte(`1`), Key: "chat/user:u"}}},
		{"no match is an envelope", source.Message{Subject: "chat.room42.other",
			Body: []byte(`{"op":"closeUserConnections","userId":"u"}`)},
			[]Command{{Action: CloseUserConnections, Hub: "chat", UserID: "u", Key: "chat/user:u"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := d.Decode(&tt.msg)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			for i := range got {
				if err := got[i].Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
			}
		})
	}
}

func TestDecodeRouteModeErrors(t *testing.T) {
	t.Parallel()
	d := mustNew(t, Config{DefaultHub: "chat", Routes: []Route{
		{Match: "a.*", Action: "sendToGroup", Group: "{subject.5}"},
		{Match: "b.*", Action: "sendToUser", UserID: "{header.User}"},
		{Match: "c.*", Action: "sendToGroup", Group: "{subject.1}"},
		{Match: "d.*", Action: "sendToAll", DataType: "json"},
		{Match: "e", Action: "sendToAll", Key: "{header.K}"},
		{Match: "f.*", Action: "closeConnection", ConnectionID: "{subject.1}", Hub: "{key}"},
		{Match: "g", Body: "raw"},
	}})
	tests := []struct {
		name   string
		msg    source.Message
		field  string
		reason string
	}{
		{"subject token out of range", source.Message{Subject: "a.b"}, "group", `route template "{subject.5}": subject "a.b" has no token 5`},
		{"missing header", source.Message{Subject: "b.x"}, "userId", `no header "User"`},
		{"template gives a bad group", source.Message{Subject: "c."}, "group", `route template "{subject.1}": must not be empty`},
		{"route data type and bad body", source.Message{Subject: "d.x", Body: []byte(`nope`)}, "body", "dataType json needs a JSON body"},
		{"key header missing", source.Message{Subject: "e", Body: []byte(`1`)}, "key", `no header "K"`},
		{"template gives a bad hub", source.Message{Subject: "f.c", Key: []byte("1x")}, "hub", "letter"},
		{"raw route without action", source.Message{Subject: "g", Body: []byte(`1`)}, "header wps-action", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := d.Decode(&tt.msg)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode = %v, want a *DecodeError", err)
			}
			if de.Field != tt.field || !strings.Contains(de.Reason, tt.reason) {
				t.Errorf("got Field=%q Reason=%q; want %q ~%q", de.Field, de.Reason, tt.field, tt.reason)
			}
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"bad default hub", Config{DefaultHub: "1"}, []string{"hub: must start with a letter"}},
		{"negative max body", Config{MaxBodyBytes: -1}, []string{"maxBodyBytes"}},
		{"bad pattern", Config{Routes: []Route{{Match: "a.>.b"}, {Match: "a..b"}, {Match: "a*"}}},
			[]string{"routes[0].match: '>' must be the last", "routes[1].match: empty token", "routes[2].match: wildcards"}},
		{"unknown action", Config{Routes: []Route{{Action: "sendToMoon"}}}, []string{`routes[0].action: unknown action "sendToMoon"`}},
		{"bad body", Config{Routes: []Route{{Body: "json"}}}, []string{`routes[0].body: must be raw or envelope`}},
		{"unknown placeholder", Config{Routes: []Route{{Match: "x", Group: "{subjct.1}"}}}, []string{`routes[0].group: unknown placeholder "{subjct.1}"`}},
		{"bad token index", Config{Routes: []Route{{Group: "{subject.-1}"}, {Group: "{subject.01}"}}},
			[]string{`routes[0].group: unknown placeholder`, `routes[1].group: unknown placeholder`}},
		{"unclosed brace", Config{Routes: []Route{{Key: "{key"}}}, []string{`routes[0].key: unclosed '{'`}},
		{"literal hub", Config{Routes: []Route{{Hub: "a-b"}}}, []string{"routes[0].hub: may contain only"}},
		{"literal group", Config{Routes: []Route{{Group: " "}}}, []string{"routes[0].group: must not be whitespace only"}},
		{"literal data type", Config{Routes: []Route{{DataType: "xml"}}}, []string{`routes[0].dataType: must be json, text or binary`}},
		{"field the action does not take", Config{Routes: []Route{{Action: "sendToAll", Group: "g", UserID: "{key}"}}},
			[]string{"routes[0].group: sendToAll does not take group", "routes[0].userId: sendToAll does not take userId"}},
		{"ttl range", Config{Routes: []Route{{TTL: 301}}}, []string{"routes[0].ttl: must be 0..300, got 301"}},
		{"ttl not taken", Config{Routes: []Route{{Action: "closeConnection", TTL: 5}}}, []string{"routes[0].ttl: closeConnection does not take ttl"}},
		{"coalesce on a non-send", Config{Routes: []Route{{Action: "closeConnection", Coalesce: &Coalesce{Count: 2}}}},
			[]string{"routes[0].coalesce: closeConnection is not a send"}},
		{"negative coalesce", Config{Routes: []Route{{Coalesce: &Coalesce{Count: -1}}}}, []string{"routes[0].coalesce: count, bytes and linger"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := New(tt.cfg)
			if err == nil {
				t.Fatalf("New = %v, want an error", d)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestMatchSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"a.b.c", "a.b.c", true},
		{"a.b.c", "a.b", false},
		{"a.b", "a.b.c", false},
		{"a.*.c", "a.x.c", true},
		{"a.*.c", "a.x.y.c", false},
		{"a.*", "a", false},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c.d", true},
		{"a.>", "a", false},
		{">", "anything.at.all", true},
		{"*", "one", true},
		{"*", "one.two", false},
		{"wps-commands", "wps-commands", true},
		{"wps-commands", "wps-commands2", false},
	}
	for _, tt := range tests {
		toks, reason := compilePattern(tt.pattern)
		if reason != "" {
			t.Fatalf("compilePattern(%q): %s", tt.pattern, reason)
		}
		if got := matchSubject(toks, tt.subject); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
		}
	}
}
