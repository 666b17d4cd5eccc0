package codec

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/wps-bridge/bridge/internal/source"
)

// fuzzMessage builds a message from fuzz input. An input starting with '#'
// has a first line of ';'-separated k=v headers (keys "@subject" and "@key"
// set the subject and the Kafka key) and the body after it; any other input
// is the body of a message on subject "wps.in".
func fuzzMessage(in []byte) *source.Message {
	msg := &source.Message{Subject: "wps.in", Body: in}
	if len(in) == 0 || in[0] != '#' {
		return msg
	}
	line, body, _ := bytes.Cut(in[1:], []byte("\n"))
	msg.Body = body
	for kv := range strings.SplitSeq(string(line), ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "@subject":
			msg.Subject, msg.Topic = v, v
		case "@key":
			msg.Key = []byte(v)
		default:
			msg.Headers = append(msg.Headers, source.Header{Key: k, Value: v})
		}
	}
	return msg
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"actionName":"sendToAll","data":{"a":1}}`,
		`[{"op":"sendToGroup","group":"g","data":"x","ttl":5},{"op":"closeConnection","connectionId":"c"}]`,
		`{"actionName":"sendToUser","userId":"u","dataType":"binary","data":"AAE="}`,
		"#wps-action=sendToGroup;wps-group=g;content-type=text/plain\nhello",
		"#@subject=chat.room1.msg\nraw text",
		"#@subject=users.eu;@key=alice;Tenant=acme\n{\"n\":1}",
	} {
		f.Add([]byte(s))
	}
	decoders := []*Decoder{
		mustNew(f, Config{DefaultHub: "chat", MaxBodyBytes: 4096}),
		mustNew(f, Config{DefaultHub: "chat", Routes: []Route{
			{Match: "chat.*.msg", Action: "sendToGroup", Group: "{subject.1}", DataType: "text"},
			{Match: "users.>", Action: "sendToUser", UserID: "{key}", Hub: "{header.Tenant}", Key: "{partition}-{topic}"},
			{Match: "wps.*", Hub: "h{subject.1}", Group: "{header.g}"},
		}}),
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		msg := fuzzMessage(in)
		for _, d := range decoders {
			cmds, err := d.Decode(msg)
			if err != nil {
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, ErrDecode) || de.Reason == "" {
					t.Fatalf("error %#v is not a DecodeError with a reason", err)
				}
				if cmds != nil {
					t.Fatalf("commands %+v returned with error %v", cmds, err)
				}
				continue
			}
			for i := range cmds {
				if verr := cmds[i].Validate(); verr != nil {
					t.Fatalf("command %d %+v fails validation: %v", i, cmds[i], verr)
				}
				if cmds[i].Key == "" {
					t.Fatalf("command %d has no key", i)
				}
			}
			again, err := d.Decode(msg)
			if err != nil || !reflect.DeepEqual(cmds, again) {
				t.Fatalf("decode is not deterministic: %+v then %+v, %v", cmds, again, err)
			}
		}
	})
}
