package config

import (
	"strings"
	"testing"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	env := envMap(map[string]string{"HOST": "nats.local", "EMPTY": "", "PORT": "4222"})
	tests := []struct {
		in, want   string
		referenced bool
		wantErr    string
	}{
		{in: "plain", want: "plain"},
		{in: "nats://${HOST}:${PORT}", want: "nats://nats.local:4222", referenced: true},
		{in: "${MISSING:-fallback}", want: "fallback", referenced: true},
		{in: "${EMPTY:-fallback}", want: "fallback", referenced: true},
		{in: "${EMPTY}", want: "", referenced: true},
		{in: "${MISSING:-}", want: "", referenced: true},
		{in: "${HOST:-fallback}", want: "nats.local", referenced: true},
		{in: "${MISSING:-${HOST}:${PORT}}", want: "nats.local:4222", referenced: true},
		{in: "${MISSING:-a;b=c}", want: "a;b=c", referenced: true},
		{in: "cost $$5", want: "cost $5"},
		{in: "$$${HOST}", want: "$nats.local", referenced: true},
		{in: "$JS.API.>", want: "$JS.API.>"},
		{in: "trailing $", want: "trailing $"},
		{in: "${MISSING}", wantErr: "environment variable MISSING is not set"},
		{in: "${HOST", wantErr: "unterminated ${"},
		{in: "${1BAD}", wantErr: "invalid variable reference"},
		{in: "${}", wantErr: "invalid variable reference"},
		{in: "${MISSING:-${ALSO_MISSING}}", wantErr: "ALSO_MISSING is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, referenced, err := expand(tt.in, env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("expand(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("expand(%q): %v", tt.in, err)
			}
			if got != tt.want || referenced != tt.referenced {
				t.Errorf("expand(%q) = %q, referenced %v; want %q, %v", tt.in, got, referenced, tt.want, tt.referenced)
			}
		})
	}
}

func TestSubjectMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"wps.>", "wps.dlq", true},
		{"wps.>", "wps", false},
		{"wps.*", "wps.dlq", true},
		{"wps.*", "wps.dlq.x", false},
		{"*.dlq", "wps.dlq", true},
		{"wps.dlq", "wps.dlq", true},
		{"wps.dlq", "wps.dlq2", false},
		{">", "anything.at.all", true},
		{"a.*.c", "a.b.d", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.subject, func(t *testing.T) {
			t.Parallel()
			if got := subjectMatches(tt.pattern, tt.subject); got != tt.want {
				t.Errorf("subjectMatches(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
			}
		})
	}
}
