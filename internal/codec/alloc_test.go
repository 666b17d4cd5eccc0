package codec

import (
	"testing"

	"github.com/wps-bridge/bridge/internal/source"
)

// TestNoAllocs pins the allocation-free paths (not parallel: AllocsPerRun).
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	hs := source.Headers{
		{Key: "Content-Type", Value: "application/json"},
		{Key: "WPS-Action", Value: "sendToGroup"},
		{Key: "wps-group", Value: "g"},
		{Key: "traceparent", Value: "00-x-y-01"},
	}
	pat, _ := compilePattern("chat.*.>")
	tpl, err := parseTemplate("{subject.1}")
	if err != nil {
		t.Fatal(err)
	}
	msg := &source.Message{Subject: "chat.room42.msg"}
	cases := map[string]func(){
		"ParseAction":  func() { ParseAction("Close_Client_Connection") },
		"header scan":  func() { var hv headerValues; hv.scan(hs) },
		"matchSubject": func() { matchSubject(pat, "chat.room42.msg.x") },
		"template":     func() { tpl.expand(msg) },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times per run", name, n)
		}
	}
}
