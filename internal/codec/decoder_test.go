package codec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/internal/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func decodeOne(t *testing.T, d *Decoder, msg *source.Message) Command {
	t.Helper()
	cmds, err := d.Decode(msg)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(cmds) != 1 {
		t.Fatalf("Decode: got %d commands, want 1", len(cmds))
	}
	return cmds[0]
}

func TestDecodeEnvelopeEveryAction(t *testing.T) {
	t.Parallel()
	d := mustNew(t, Config{DefaultHub: "chat"})
	tests := []struct {
		name string
		body string
		want Command
	}{
		{"sendToAll", `{"actionName":"sendToAll","data":{"a": 1},"excluded":["c1","c2"],"filter":"userId ne null","ttl":30,"id":"m1"}`,
			Command{Action: SendToAll, Hub: "chat", Excluded: []string{"c1", "c2"}, Filter: "userId ne null", TTL: 30, ID: "m1",
				DataType: DataJSON, Data: []byte(`{"a":1}`), Key: "chat/all"}},
		{"sendToGroup", `{"actionName":"sendToGroup","hub":"h2","group":"g 1","data":"hi","messageTtlSeconds":300}`,
			Command{Action: SendToGroup, Hub: "h2", Group: "g 1", TTL: 300, DataType: DataText, Data: []byte("hi"), Key: "h2/group:g 1"}},
		{"sendToUser", `{"actionName":"sendToUser","userId":"alice","data":"AQI=","dataType":"binary","filter":"'a' in groups"}`,
			Command{Action: SendToUser, Hub: "chat", UserID: "alice", Filter: "'a' in groups", DataType: DataBinary, Data: []byte{1, 2}, Key: "chat/user:alice"}},
		{"sendToConnection", `{"actionName":"sendToConnection","connectionId":"c1","data":"{\"x\":[1]}","dataType":"json"}`,
			Command{Action: SendToConnection, Hub: "chat", ConnectionID: "c1", DataType: DataJSON, Data: []byte(`{"x":[1]}`), Key: "chat/conn:c1"}},
		{"addConnectionToGroup", `{"actionName":"addConnectionToGroup","group":"g","connectionId":"c1"}`,
			Command{Action: AddConnectionToGroup, Hub: "chat", Group: "g", ConnectionID: "c1", Key: "chat/conn:c1"}},
		{"removeConnectionFromGroup", `{"actionName":"removeConnectionFromGroup","group":"g","connectionId":"c1"}`,
			Command{Action: RemoveConnectionFromGroup, Hub: "chat", Group: "g", ConnectionID: "c1", Key: "chat/conn:c1"}},
		{"removeConnectionFromAllGroups", `{"actionName":"removeConnectionFromAllGroups","connectionId":"c1"}`,
			Command{Action: RemoveConnectionFromAllGroups, Hub: "chat", ConnectionID: "c1", Key: "chat/conn:c1"}},
		{"addUserToGroup", `{"actionName":"addUserToGroup","group":"g","userId":"u"}`,
			Command{Action: AddUserToGroup, Hub: "chat", Group: "g", UserID: "u", Key: "chat/user:u"}},
		{"removeUserFromGroup", `{"actionName":"removeUserFromGroup","group":"g","userId":"u"}`,
			Command{Action: RemoveUserFromGroup, Hub: "chat", Group: "g", UserID: "u", Key: "chat/user:u"}},
		{"removeUserFromAllGroups", `{"actionName":"removeUserFromAllGroups","userId":"u"}`,
			Command{Action: RemoveUserFromAllGroups, Hub: "chat", UserID: "u", Key: "chat/user:u"}},
		{"addConnectionsToGroups", `{"actionName":"addConnectionsToGroups","groups":["a","b"],"filter":"userId eq 'x'"}`,
			Command{Action: AddConnectionsToGroups, Hub: "chat", Groups: []string{"a", "b"}, Filter: "userId eq 'x'", Key: "chat/all"}},
		{"removeConnectionsFromGroups", `{"actionName":"removeConnectionsFromGroups","groups":["a"]}`,
			Command{Action: RemoveConnectionsFromGroups, Hub: "chat", Groups: []string{"a"}, Key: "chat/all"}},
		{"closeConnection", `{"actionName":"closeConnection","connectionId":"c1","reason":"bye"}`,
			Command{Action: CloseConnection, Hub: "chat", ConnectionID: "c1", Reason: "bye", Key: "chat/conn:c1"}},
		{"closeAllConnections", `{"actionName":"closeAllConnections","excluded":["c1"]}`,
			Command{Action: CloseAllConnections, Hub: "chat", Excluded: []string{"c1"}, Key: "chat/all"}},
		{"closeGroupConnections", `{"actionName":"closeGroupConnections","group":"g","reason":"r"}`,
			Command{Action: CloseGroupConnections, Hub: "chat", Group: "g", Reason: "r", Key: "chat/group:g"}},
		{"closeUserConnections", `{"actionName":"closeUserConnections","userId":"u","excluded":["c2"]}`,
			Command{Action: CloseUserConnections, Hub: "chat", UserID: "u", Excluded: []string{"c2"}, Key: "chat/user:u"}},
		{"grantPermission", `{"actionName":"grantPermission","permission":"SENDTOGROUP","connectionId":"c1","targetName":"g"}`,
			Command{Action: GrantPermission, Hub: "chat", Permission: "sendToGroup", ConnectionID: "c1", TargetName: "g", Key: "chat/conn:c1"}},
		{"revokePermission", `{"actionName":"revokePermission","permission":"joinleavegroup","connectionId":"c1"}`,
			Command{Action: RevokePermission, Hub: "chat", Permission: "joinLeaveGroup", ConnectionID: "c1", Key: "chat/conn:c1"}},
		{"sendToGroups", `{"actionName":"sendToGroups","groups":["g1","g2"],"data":[true],"excluded":["c"],"filter":"true","ttl":1}`,
			Command{Action: SendToGroups, Hub: "chat", Groups: []string{"g1", "g2"}, Excluded: []string{"c"}, Filter: "true", TTL: 1,
				DataType: DataJSON, Data: []byte(`[true]`), Key: "chat/all"}},
		{"sendToUsers", `{"actionName":"sendToUsers","userIds":["u1","u2"],"data":null}`,
			Command{Action: SendToUsers, Hub: "chat", UserIDs: []string{"u1", "u2"}, DataType: DataJSON, Data: []byte(`null`), Key: "chat/all"}},
	}
	seen := map[Action]bool{}
	for _, tt := range tests {
		seen[tt.want.Action] = true
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := decodeOne(t, d, &source.Message{Body: []byte(tt.body)})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	for _, a := range Actions() {
		if !seen[a] {
			t.Errorf("action %v has no case", a)
		}
	}
}

func TestDecodeEnvelopeFields(t *testing.T) {
	t.Parallel()
	d := mustNew(t, Config{DefaultHub: "chat"})
	t.Run("array keeps order", func(t *testing.T) {
		t.Parallel()
		cmds, err := d.Decode(&source.Message{Body: []byte(` [{"op":"sendToGroup","group":"a","data":1},
			{"op":"sendToGroup","group":"b","data":2},{"op":"closeGroupConnections","group":"c"}]`)})
		if err != nil {
			t.Fatal(err)
		}
		var groups []string
		for _, c := range cmds {
			groups = append(groups, c.Group)
		}
		if strings.Join(groups, ",") != "a,b,c" {
			t.Errorf("groups in order %v, want a,b,c", groups)
		}
	})
	t.Run("empty array", func(t *testing.T) {
		t.Parallel()
		cmds, err := d.Decode(&source.Message{Body: []byte(`[]`)})
		if err != nil || len(cmds) != 0 {
			t.Errorf("got %v, %v; want no commands and no error", cmds, err)
		}
	})
	t.Run("expiresAt and traceparent", func(t *testing.T) {
		t.Parallel()
		c := decodeOne(t, d, &source.Message{
			Body:    []byte(`{"actionName":"sendToAll","data":1,"expiresAt":"2030-01-02T03:04:05.5+02:00"}`),
			Headers: source.Headers{{Key: "TraceParent", Value: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
		})
		want := time.Date(2030, 1, 2, 1, 4, 5, 5e8, time.UTC)
		if !c.ExpiresAt.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v", c.ExpiresAt, want)
		}
		if c.TraceParent != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
			t.Errorf("TraceParent = %q", c.TraceParent)
		}
	})
	t.Run("expiresAt spellings", func(t *testing.T) {
		t.Parallel()
		c := decodeOne(t, d, &source.Message{Body: []byte(`{"actionName":"sendToAll","data":1,"expiresAt":"2030-01-02t03:04:05z"}`)})
		if want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC); !c.ExpiresAt.Equal(want) {
			t.Errorf("lowercase t/z: ExpiresAt = %v, want %v", c.ExpiresAt, want)
		}
		// RFC 3339 (and the schema's date-time format) allow a leap second;
		// time.Time cannot hold one, so the decoder refuses it.
		_, err := d.Decode(&source.Message{Body: []byte(`{"actionName":"sendToAll","data":1,"expiresAt":"2016-12-31T23:59:60Z"}`)})
		var de *DecodeError
		if !errors.As(err, &de) || de.Field != "expiresAt" {
			t.Errorf("leap second: Decode = %v, want an expiresAt error", err)
		}
	})
	t.Run("expired commands are kept", func(t *testing.T) {
		t.Parallel()
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		dd := mustNew(t, Config{DefaultHub: "chat", Now: func() time.Time { return now }})
		c := decodeOne(t, dd, &source.Message{Body: []byte(`{"actionName":"sendToAll","data":1,"expiresAt":"2029-12-31T23:59:59Z"}`)})
		if !dd.Expired(&c) {
			t.Error("Expired = false for a past expiresAt")
		}
		c = decodeOne(t, dd, &source.Message{Body: []byte(`{"actionName":"sendToAll","data":1,"expiresAt":"2030-01-01T00:00:10Z","ttl":60}`)})
		if dd.Expired(&c) {
			t.Error("Expired = true for a future expiresAt")
		}
		if got := c.CappedTTL(now); got != 10 {
			t.Errorf("CappedTTL = %d, want 10 (time left)", got)
		}
		if got := c.CappedTTL(now.Add(9500 * time.Millisecond)); got != 1 {
			t.Errorf("CappedTTL half a second before expiry = %d, want 1", got)
		}
	})
	t.Run("json data kept as given, whitespace compacted", func(t *testing.T) {
		t.Parallel()
		c := decodeOne(t, d, &source.Message{Body: []byte(`{"actionName":"sendToAll","data":{"s":"\u00e9 x","n":1.50}}`)})
		if string(c.Data) != `{"s":"\u00e9 x","n":1.50}` {
			t.Errorf("Data = %s", c.Data)
		}
		c = decodeOne(t, d, &source.Message{Body: []byte("{\"actionName\":\"sendToAll\",\"data\":{ \"a\" :\n [1, 2] }}")})
		if string(c.Data) != `{"a":[1,2]}` {
			t.Errorf("Data = %s", c.Data)
		}
	})
	t.Run("text with escapes", func(t *testing.T) {
		t.Parallel()
		c := decodeOne(t, d, &source.Message{Body: []byte(`{"actionName":"sendToAll","data":"line\nnext \"q\" \u00e9"}`)})
		if string(c.Data) != "line\nnext \"q\" é" || c.DataType != DataText {
			t.Errorf("Data = %q (%v)", c.Data, c.DataType)
		}
	})
	t.Run("base64 with escaped slash", func(t *testing.T) {
		t.Parallel()
		c := decodeOne(t, d, &source.Message{Body: []byte(`{"actionName":"sendToAll","dataType":"binary","data":"\/w=="}`)})
		if string(c.Data) != "\xff" {
			t.Errorf("Data = %q", c.Data)
		}
	})
	t.Run("member names and values ignore case", func(t *testing.T) {
		t.Parallel()
		c := decodeOne(t, d, &source.Message{Body: []byte(`{"ActionName":"SEND_TO_GROUP","Group":"g","DataType":"TEXT","Data":"x"}`)})
		if c.Action != SendToGroup || c.Group != "g" || c.DataType != DataText {
			t.Errorf("got %+v", c)
		}
	})
	t.Run("unknown members ignored", func(t *testing.T) {
		t.Parallel()
		c := decodeOne(t, d, &source.Message{Body: []byte(`{"actionName":"closeAllConnections","extra":{"deep":[1]}}`)})
		if c.Action != CloseAllConnections {
			t.Errorf("got %+v", c)
		}
	})
}

// TestCappedTTL pins the expiresAt rule the router applies before every
// attempt (regression: this method rounded up, letting the service keep a
// message up to a second past expiresAt, and gave a TTL-less send expiring
// in an hour a TTL of 300 s instead of none).
func TestCappedTTL(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		action Action
		ttl    int
		left   time.Duration // 0: no expiresAt
		want   int
	}{
		{"no expiresAt", SendToAll, 7, 0, 7},
		{"ttl above time left", SendToGroup, 100, 30 * time.Second, 30},
		{"ttl below time left", SendToGroup, 10, 30 * time.Second, 10},
		{"rounded down", SendToUser, 0, 30500 * time.Millisecond, 30},
		{"at least 1", SendToUser, 60, 500 * time.Millisecond, 1},
		{"no ttl, 300 s left", SendToConnection, 0, 300 * time.Second, 300},
		{"no ttl, an hour left", SendToAll, 0, time.Hour, 0},
		{"ttl, an hour left", SendToAll, 20, time.Hour, 20},
		{"not a send", CloseConnection, 0, 10 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Command{Action: tt.action, TTL: tt.ttl}
			if tt.left != 0 {
				c.ExpiresAt = now.Add(tt.left)
			}
			if got := c.CappedTTL(now); got != tt.want {
				t.Errorf("CappedTTL = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	d := mustNew(t, Config{DefaultHub: "chat", MaxBodyBytes: 256})
	noHub := mustNew(t, Config{})
	tests := []struct {
		name   string
		dec    *Decoder
		body   string
		index  int
		field  string
		reason string // substring
	}{
		{"bad json", d, `{"actionName":`, -1, "body", "invalid JSON at offset 14"},
		{"empty body", d, ``, -1, "body", "empty"},
		{"not object", d, `true`, -1, "body", "must be a JSON object or array, got boolean"},
		{"too big", d, `{"actionName":"sendToAll","data":"` + strings.Repeat("x", 300) + `"}`, -1, "body", "limit of 256"},
		{"unknown action", d, `{"actionName":"sendToMoon"}`, -1, "actionName", `unknown action "sendToMoon"`},
		{"unknown op", d, `{"op":"sendToMoon"}`, -1, "op", `unknown action "sendToMoon"`},
		{"missing action", d, `{"group":"g"}`, -1, "actionName", "required"},
		{"missing group", d, `{"actionName":"sendToGroup","data":1}`, -1, "group", "required by sendToGroup"},
		{"missing user", d, `{"actionName":"addUserToGroup","group":"g"}`, -1, "userId", "required by addUserToGroup"},
		{"missing connection", d, `{"actionName":"grantPermission","permission":"sendToGroup"}`, -1, "connectionId", "required"},
		{"missing groups", d, `{"actionName":"sendToGroups","data":1}`, -1, "groups", "required"},
		{"missing userIds", d, `{"actionName":"sendToUsers","data":1,"userIds":[]}`, -1, "userIds", "required"},
		{"missing data", d, `{"actionName":"sendToUser","userId":"u"}`, -1, "data", "required by sendToUser"},
		{"missing hub", noHub, `{"actionName":"sendToAll","data":1}`, -1, "hub", "required"},
		{"bad hub", d, `{"actionName":"sendToAll","hub":"_x","data":1}`, -1, "hub", "must start with a letter"},
		{"bad group", d, `{"actionName":"sendToGroup","group":"a\rb","data":1}`, -1, "group", "line breaks"},
		{"blank group", d, `{"actionName":"sendToGroup","group":"\u3000","data":1}`, -1, "group", "whitespace only"},
		{"bad targetName", d, `{"actionName":"grantPermission","permission":"sendToGroup","connectionId":"c","targetName":" "}`, -1, "targetName", "whitespace"},
		{"bad groups entry", d, `{"actionName":"addConnectionsToGroups","groups":["a","",""]}`, -1, "groups[1]", "must not be empty"},
		{"bad userIds entry", d, `{"actionName":"sendToUsers","userIds":["..","u"],"data":1}`, -1, "userIds[0]", `"." or ".."`},
		{"bad connection id", d, `{"actionName":"closeConnection","connectionId":"."}`, -1, "connectionId", `"." or ".."`},
		{"ttl 301", d, `{"actionName":"sendToAll","data":1,"ttl":301}`, -1, "ttl", "must be 0..300, got 301"},
		{"messageTtlSeconds 301", d, `{"actionName":"sendToAll","data":1,"messageTtlSeconds":301}`, -1, "messageTtlSeconds", "must be 0..300, got 301"},
		{"ttl float", d, `{"actionName":"sendToAll","data":1,"ttl":2.5}`, -1, "ttl", "integer"},
		{"bad base64", d, `{"actionName":"sendToAll","dataType":"binary","data":"@@@@"}`, -1, "data", "invalid base64: illegal base64 data at input byte 0"},
		{"bad data type", d, `{"actionName":"sendToAll","dataType":"xml","data":"x"}`, -1, "dataType", `got "xml"`},
		{"text not string", d, `{"actionName":"sendToAll","dataType":"text","data":1}`, -1, "data", "needs a string, got number"},
		{"json string not json", d, `{"actionName":"sendToAll","dataType":"json","data":"nope"}`, -1, "data", "needs JSON text"},
		{"excluded on sendToUser", d, `{"actionName":"sendToUser","userId":"u","data":1,"excluded":["c"]}`, -1, "excluded", "sendToUser does not take excluded"},
		{"filter on closeConnection", d, `{"actionName":"closeConnection","connectionId":"c","filter":"x"}`, -1, "filter", "does not take filter"},
		{"dataType on addUserToGroup", d, `{"actionName":"addUserToGroup","userId":"u","group":"g","dataType":"text"}`, -1, "dataType", "does not take"},
		{"excluded entry empty", d, `{"actionName":"closeAllConnections","excluded":["a",""]}`, -1, "excluded[1]", "must not be empty"},
		{"bad permission", d, `{"actionName":"revokePermission","connectionId":"c","permission":"all"}`, -1, "permission", "sendToGroup or joinLeaveGroup"},
		{"bad expiresAt", d, `{"actionName":"sendToAll","data":1,"expiresAt":"2030-01-01"}`, -1, "expiresAt", "RFC 3339"},
		{"wrong type", d, `{"actionName":"sendToAll","data":1,"excluded":"c1"}`, -1, "excluded", "must be an array of strings, got string"},
		{"wrong entry type", d, `{"actionName":"sendToAll","data":1,"excluded":["c1",{}]}`, -1, "excluded[1]", "must be a string, got object"},
		{"both action spellings", d, `{"actionName":"sendToAll","op":"sendToAll","data":1}`, -1, "op", "not both"},
		{"array element error", d, `[{"actionName":"sendToAll","data":1},{"actionName":"sendToAll","data":1,"ttl":301}]`, 1, "ttl", "must be 0..300"},
		{"array element type error", d, `[{"actionName":"sendToAll","data":1},{"actionName":"sendToAll","data":1,"hub":1}]`, 1, "hub", "must be a string, got number"},
		{"array non-object", d, `[{"actionName":"sendToAll","data":1},[]]`, 1, "", "must be a JSON object, got array"},
		{"array bad json", d, `[{"actionName":"sendToAll","data":1},]`, -1, "body", "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmds, err := tt.dec.Decode(&source.Message{Body: []byte(tt.body)})
			if err == nil {
				t.Fatalf("no error; commands %+v", cmds)
			}
			if cmds != nil {
				t.Errorf("commands %+v returned with an error", cmds)
			}
			if !errors.Is(err, ErrDecode) {
				t.Errorf("error %v does not wrap ErrDecode", err)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			if de.Index != tt.index || de.Field != tt.field || !strings.Contains(de.Reason, tt.reason) {
				t.Errorf("got Index=%d Field=%q Reason=%q; want %d %q ~%q", de.Index, de.Field, de.Reason, tt.index, tt.field, tt.reason)
			}
		})
	}
}

func TestDecodeNilMessage(t *testing.T) {
	t.Parallel()
	d := mustNew(t, Config{DefaultHub: "chat"})
	if _, err := d.Decode(nil); !errors.Is(err, ErrDecode) {
		t.Errorf("Decode(nil) = %v, want ErrDecode", err)
	}
}

func TestParseAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Action
		ok   bool
	}{
		{"sendToAll", SendToAll, true},
		{"SendToAll", SendToAll, true},
		{"SENDTOALL", SendToAll, true},
		{"send_to_all", SendToAll, true},
		{"send-to-all", SendToAll, true},
		{"SendToAllAction", SendToAll, true},
		{"closeClientConnection", CloseConnection, true},
		{"CloseClientConnectionAction", CloseConnection, true},
		{"close_connection", CloseConnection, true},
		{"sendToGroups", SendToGroups, true},
		{"sendtousers", SendToUsers, true},
		{"grantPermission", GrantPermission, true},
		{"", ActionUnknown, false},
		{"action", ActionUnknown, false},
		{"unknown", ActionUnknown, false},
		{"sendToMoon", ActionUnknown, false},
		{strings.Repeat("a", 100), ActionUnknown, false},
	}
	for _, a := range Actions() {
		tests = append(tests, struct {
			in   string
			want Action
			ok   bool
		}{a.String(), a, true}, struct {
			in   string
			want Action
			ok   bool
		}{strings.ToUpper(a.String()), a, true})
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseAction(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseAction(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestValidateNames(t *testing.T) {
	t.Parallel()
	hubs := []struct {
		in string
		ok bool
	}{
		{"chat", true}, {"a", true}, {"A1_`,.[]", true}, {strings.Repeat("h", 128), true},
		{"", false}, {"1a", false}, {"_a", false}, {"a-b", false}, {"a/b", false}, {"a b", false},
		{strings.Repeat("h", 129), false}, {"é", false},
	}
	for _, tt := range hubs {
		if err := ValidateHub(tt.in); (err == nil) != tt.ok {
			t.Errorf("ValidateHub(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		} else if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateHub(%q) error does not wrap ErrInvalidName", tt.in)
		}
	}
	groups := []struct {
		in string
		ok bool
	}{
		{"g", true}, {"room 42", true}, {" a ", true}, {"a/b?c", true}, {"日本", true}, {strings.Repeat("é", 1024), true},
		{"", false}, {" ", false}, {"\t\u00a0\u3000", false}, {"a\nb", false}, {"a\rb", false}, {"a\u2028", false},
		{".", false}, {"..", false}, {strings.Repeat("g", 1025), false}, {"\xff", false},
	}
	for _, tt := range groups {
		if err := ValidateGroup(tt.in); (err == nil) != tt.ok {
			t.Errorf("ValidateGroup(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestDefaultKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    Command
		want string
	}{
		{Command{Action: SendToAll, Hub: "h"}, "h/all"},
		{Command{Action: CloseAllConnections, Hub: "h"}, "h/all"},
		{Command{Action: SendToGroups, Hub: "h", Groups: []string{"a"}}, "h/all"},
		{Command{Action: SendToUsers, Hub: "h", UserIDs: []string{"a"}}, "h/all"},
		{Command{Action: AddConnectionsToGroups, Hub: "h", Groups: []string{"a"}}, "h/all"},
		{Command{Action: RemoveConnectionsFromGroups, Hub: "h", Groups: []string{"a"}}, "h/all"},
		{Command{Action: SendToGroup, Hub: "h", Group: "g"}, "h/group:g"},
		{Command{Action: CloseGroupConnections, Hub: "h", Group: "g"}, "h/group:g"},
		{Command{Action: SendToUser, Hub: "h", UserID: "u"}, "h/user:u"},
		{Command{Action: AddUserToGroup, Hub: "h", UserID: "u", Group: "g"}, "h/user:u"},
		{Command{Action: RemoveUserFromGroup, Hub: "h", UserID: "u", Group: "g"}, "h/user:u"},
		{Command{Action: RemoveUserFromAllGroups, Hub: "h", UserID: "u"}, "h/user:u"},
		{Command{Action: CloseUserConnections, Hub: "h", UserID: "u"}, "h/user:u"},
		{Command{Action: SendToConnection, Hub: "h", ConnectionID: "c"}, "h/conn:c"},
		{Command{Action: AddConnectionToGroup, Hub: "h", ConnectionID: "c", Group: "g"}, "h/conn:c"},
		{Command{Action: RemoveConnectionFromGroup, Hub: "h", ConnectionID: "c", Group: "g"}, "h/conn:c"},
		{Command{Action: RemoveConnectionFromAllGroups, Hub: "h", ConnectionID: "c"}, "h/conn:c"},
		{Command{Action: CloseConnection, Hub: "h", ConnectionID: "c"}, "h/conn:c"},
		{Command{Action: GrantPermission, Hub: "h", ConnectionID: "c"}, "h/conn:c"},
		{Command{Action: RevokePermission, Hub: "h", ConnectionID: "c"}, "h/conn:c"},
	}
	seen := map[Action]bool{}
	for _, tt := range tests {
		seen[tt.c.Action] = true
		if got := DefaultKey(&tt.c); got != tt.want {
			t.Errorf("DefaultKey(%v) = %q, want %q", tt.c.Action, got, tt.want)
		}
	}
	if len(seen) != len(Actions()) {
		t.Errorf("cases cover %d actions, want %d", len(seen), len(Actions()))
	}
}

func TestCommandValidateRejects(t *testing.T) {
	t.Parallel()
	ok := Command{Action: SendToGroup, Hub: "h", Group: "g", Data: []byte(`1`)}
	tests := []struct {
		name  string
		mod   func(*Command)
		field string
	}{
		{"unknown action", func(c *Command) { c.Action = ActionUnknown }, "actionName"},
		{"bad hub", func(c *Command) { c.Hub = "" }, "hub"},
		{"missing group", func(c *Command) { c.Group = "" }, "group"},
		{"extra userId", func(c *Command) { c.UserID = "u" }, "userId"},
		{"ttl", func(c *Command) { c.TTL = 301 }, "ttl"},
		{"bad json", func(c *Command) { c.Data = []byte("{") }, "data"},
		{"bad text", func(c *Command) { c.DataType, c.Data = DataText, []byte("\xff") }, "data"},
		{"permission", func(c *Command) {
			*c = Command{Action: GrantPermission, Hub: "h", ConnectionID: "c", Permission: "sendtogroup"}
		}, "permission"},
		{"data on close", func(c *Command) {
			*c = Command{Action: CloseConnection, Hub: "h", ConnectionID: "c", Data: []byte("x")}
		}, "data"},
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid command: %v", err)
	}
	for _, tt := range tests {
		c := ok
		tt.mod(&c)
		var de *DecodeError
		if err := c.Validate(); !errors.As(err, &de) || de.Field != tt.field {
			t.Errorf("%s: Validate = %v, want a DecodeError on %q", tt.name, err, tt.field)
		}
	}
}
