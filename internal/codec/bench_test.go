package codec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wps-bridge/bridge/internal/source"
)

func BenchmarkDecode(b *testing.B) {
	d := mustNew(b, Config{DefaultHub: "chat", Routes: []Route{
		{Match: "chat.*.msg", Action: "sendToGroup", Group: "{subject.1}", DataType: "text"},
	}})
	var arr []string
	for i := range 10 {
		arr = append(arr, fmt.Sprintf(`{"actionName":"sendToGroup","group":"room%d","data":{"from":"alice","text":"hello"},"ttl":60}`, i))
	}
	cases := []struct {
		name string
		msg  source.Message
		n    int
	}{
		{"envelope", source.Message{Subject: "wps.cmd",
			Body: []byte(`{"actionName":"sendToGroup","group":"room42","data":{"from":"alice","text":"hello"},"ttl":60,"id":"m-1"}`)}, 1},
		{"array10", source.Message{Subject: "wps.cmd", Body: []byte("[" + strings.Join(arr, ",") + "]")}, 10},
		{"header", source.Message{Subject: "wps.cmd", Body: []byte(`{"from":"alice","text":"hello"}`),
			Headers: hdrs("wps-action", "sendToGroup", "wps-group", "room42", "content-type", "application/json", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}, 1},
		{"route", source.Message{Subject: "chat.room42.msg", Body: []byte(`hello from alice`)}, 1},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.msg.Body)))
			for b.Loop() {
				cmds, err := d.Decode(&c.msg)
				if err != nil || len(cmds) != c.n {
					b.Fatalf("Decode = %d commands, %v", len(cmds), err)
				}
			}
		})
	}
}
