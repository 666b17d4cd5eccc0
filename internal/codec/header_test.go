package codec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wps-bridge/bridge/internal/source"
)

func hdrs(kv ...string) source.Headers {
	var h source.Headers
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, source.Header{Key: kv[i], Value: kv[i+1]})
	}
	return h
}

func TestDecodeHeaderMode(t *testing.T) {
	t.Parallel()
	d := mustNew(t, Config{DefaultHub: "chat"})
	tests := []struct {
		name    string
		headers source.Headers
		body    string
		want    Command
	}{
		{"json body sniffed", hdrs("wps-action", "sendToGroup", "wps-group", "g1"), `{"a": 1}`,
			Command{Action: SendToGroup, Hub: "chat", Group: "g1", DataType: DataJSON, Data: []byte(`{"a": 1}`), Key: "chat/group:g1"}},
		{"text sniffed", hdrs("WPS-ACTION", "sendToAll"), `hello`,
			Command{Action: SendToAll, Hub: "chat", DataType: DataText, Data: []byte(`hello`), Key: "chat/all"}},
		{"binary sniffed", hdrs("wps-action", "sendToAll"), "\xff\x00",
			Command{Action: SendToAll, Hub: "chat", DataType: DataBinary, Data: []byte("\xff\x00"), Key: "chat/all"}},
		{"body is never an envelope", hdrs("wps-action", "sendToAll"), `{"actionName":"closeAllConnections"}`,
			Command{Action: SendToAll, Hub: "chat", DataType: DataJSON, Data: []byte(`{"actionName":"closeAllConnections"}`), Key: "chat/all"}},
		{"content-type text with parameters", hdrs("wps-action", "sendToUser", "wps-user-id", "u", "Content-Type", "Text/Plain; charset=utf-8"), `{"looks":"json"}`,
			Command{Action: SendToUser, Hub: "chat", UserID: "u", DataType: DataText, Data: []byte(`{"looks":"json"}`), Key: "chat/user:u"}},
		{"content-type octet-stream", hdrs("wps-action", "sendToConnection", "wps-connection-id", "c", "content-type", "application/octet-stream"), `abc`,
			Command{Action: SendToConnection, Hub: "chat", ConnectionID: "c", DataType: DataBinary, Data: []byte(`abc`), Key: "chat/conn:c"}},
		{"content-type wins over wps-data-type", hdrs("wps-action", "sendToAll", "content-type", "application/json", "wps-data-type", "text"), `1`,
			Command{Action: SendToAll, Hub: "chat", DataType: DataJSON, Data: []byte(`1`), Key: "chat/all"}},
		{"unknown content-type ignored", hdrs("wps-action", "sendToAll", "content-type", "image/png", "wps-data-type", "binary"), `1`,
			Command{Action: SendToAll, Hub: "chat", DataType: DataBinary, Data: []byte(`1`), Key: "chat/all"}},
		{"all send options", hdrs("wps-action", "send_to_all", "wps-hub", "other", "wps-excluded", " c1 , c2", "wps-filter", "userId ne null",
			"wps-ttl", " 60 ", "wps-id", "m-1", "wps-expires-at", "2030-01-01T00:00:00Z", "traceparent", "00-a-b-01"), `"x"`,
			Command{Action: SendToAll, Hub: "other", Excluded: []string{"c1", "c2"}, Filter: "userId ne null", TTL: 60, ID: "m-1",
				ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), DataType: DataJSON, Data: []byte(`"x"`), Key: "other/all", TraceParent: "00-a-b-01"}},
		{"multicast lists", hdrs("wps-action", "sendToUsers", "wps-user-ids", "u1,u2"), `1`,
			Command{Action: SendToUsers, Hub: "chat", UserIDs: []string{"u1", "u2"}, DataType: DataJSON, Data: []byte(`1`), Key: "chat/all"}},
		{"groups list", hdrs("wps-action", "addConnectionsToGroups", "wps-groups", "a, b", "wps-filter", "true"), ``,
			Command{Action: AddConnectionsToGroups, Hub: "chat", Groups: []string{"a", "b"}, Filter: "true", Key: "chat/all"}},
		{"non-send ignores body and types", hdrs("wps-action", "closeConnection", "wps-connection-id", "c", "wps-reason", "bye",
			"content-type", "application/json", "wps-data-type", "text"), `ignored`,
			Command{Action: CloseConnection, Hub: "chat", ConnectionID: "c", Reason: "bye", Key: "chat/conn:c"}},
		{"permission", hdrs("wps-action", "grantPermission", "wps-permission", "joinleavegroup", "wps-connection-id", "c", "wps-target-name", "g"), ``,
			Command{Action: GrantPermission, Hub: "chat", Permission: "joinLeaveGroup", ConnectionID: "c", TargetName: "g", Key: "chat/conn:c"}},
		{"first header wins", hdrs("wps-action", "sendToGroup", "wps-group", "first", "Wps-Group", "second"), `1`,
			Command{Action: SendToGroup, Hub: "chat", Group: "first", DataType: DataJSON, Data: []byte(`1`), Key: "chat/group:first"}},
		{"empty text body", hdrs("wps-action", "sendToAll"), ``,
			Command{Action: SendToAll, Hub: "chat", DataType: DataText, Data: []byte{}, Key: "chat/all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := decodeOne(t, d, &source.Message{Body: []byte(tt.body), Headers: tt.headers})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestDecodeHeaderModeErrors(t *testing.T) {
	t.Parallel()
	d := mustNew(t, Config{DefaultHub: "chat"})
	tests := []struct {
		name    string
		headers source.Headers
		body    string
		field   string
		reason  string
	}{
		{"unknown action", hdrs("wps-action", "sendToMoon"), ``, "header wps-action", `unknown action "sendToMoon"`},
		{"empty action", hdrs("wps-action", ""), ``, "header wps-action", "must not be empty"},
		{"missing group", hdrs("wps-action", "sendToGroup"), `1`, "header wps-group", "required by sendToGroup"},
		{"ttl not a number", hdrs("wps-action", "sendToAll", "wps-ttl", "ten"), `1`, "header wps-ttl", `got "ten"`},
		{"ttl 301", hdrs("wps-action", "sendToAll", "wps-ttl", "301"), `1`, "header wps-ttl", "must be 0..300, got 301"},
		{"empty excluded entry", hdrs("wps-action", "sendToAll", "wps-excluded", "a,,b"), `1`, "header wps-excluded[1]", "must not be empty"},
		{"bad hub", hdrs("wps-action", "sendToAll", "wps-hub", "9"), `1`, "header wps-hub", "letter"},
		{"bad group", hdrs("wps-action", "closeGroupConnections", "wps-group", ".."), ``, "header wps-group", `"." or ".."`},
		{"bad data type", hdrs("wps-action", "sendToAll", "wps-data-type", "xml"), `1`, "header wps-data-type", `got "xml"`},
		{"json body invalid", hdrs("wps-action", "sendToAll", "content-type", "application/json"), `{`, "body", "JSON"},
		{"text body not utf-8", hdrs("wps-action", "sendToAll", "wps-data-type", "text"), "\xff", "body", "UTF-8"},
		{"option not taken", hdrs("wps-action", "sendToConnection", "wps-connection-id", "c", "wps-excluded", "x"), `1`, "header wps-excluded", "does not take"},
		{"bad expires-at", hdrs("wps-action", "sendToAll", "wps-expires-at", "soon"), `1`, "header wps-expires-at", "RFC 3339"},
		{"bad permission", hdrs("wps-action", "grantPermission", "wps-connection-id", "c", "wps-permission", "x"), ``, "header wps-permission", "sendToGroup or joinLeaveGroup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := d.Decode(&source.Message{Body: []byte(tt.body), Headers: tt.headers})
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode = %v, want a *DecodeError", err)
			}
			if de.Index != -1 || de.Field != tt.field || !strings.Contains(de.Reason, tt.reason) {
				t.Errorf("got Index=%d Field=%q Reason=%q; want -1 %q ~%q", de.Index, de.Field, de.Reason, tt.field, tt.reason)
			}
		})
	}
}
