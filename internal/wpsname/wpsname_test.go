package wpsname

import (
	"strings"
	"testing"
)

func TestReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		fn                func(string) string
		in                string
		wantReasonContain string // "" means valid
	}{
		{"hub ok", HubReason, "chat_1.[a]`,", ""},
		{"hub empty", HubReason, "", "must not be empty"},
		{"hub digit first", HubReason, "1chat", "must start with a letter"},
		{"hub slash", HubReason, "a/b", "may contain only"},
		{"hub too long", HubReason, "a" + strings.Repeat("b", 128), "at most 128"},
		{"group unicode ok", GroupReason, "räume 42/a b", ""},
		{"group 1024 runes ok", GroupReason, strings.Repeat("é", 1024), ""},
		{"group 1025 runes", GroupReason, strings.Repeat("é", 1025), "at most 1024"},
		{"group blank", GroupReason, " \t", "whitespace only"},
		{"group line break", GroupReason, "a\u2028b", "line breaks"},
		{"group bad utf8", GroupReason, "\xff", "UTF-8"},
		{"group dot as token group", GroupReason, ".", ""},
		{"group dot as path", PathGroupReason, ".", `"." or ".."`},
		{"segment dotdot", SegmentReason, "..", `"." or ".."`},
		{"segment ok", SegmentReason, "conn-1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.fn(tt.in)
			if tt.wantReasonContain == "" && got != "" || !strings.Contains(got, tt.wantReasonContain) {
				t.Errorf("reason(%q) = %q, want %q", tt.in, got, tt.wantReasonContain)
			}
		})
	}
}
