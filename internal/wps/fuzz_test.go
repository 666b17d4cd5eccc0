package wps

import (
	"github.com/wps-bridge/bridge/internal/wpsname"

	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseConnectionString(f *testing.F) {
	for _, s := range []string{
		"Endpoint=https://x.webpubsub.azure.com;AccessKey=abc;Version=1.0;",
		"endpoint=http://localhost:8080;accesskey=k;port=8081",
		"Endpoint=x;AccessKey=secretsecret;Port=99999",
		"Endpoint=https://[::1]:1;AccessKey=k;Port=2",
		";;=;Endpoint=;AccessKey=",
		"AccessKey=secretsecret;noequals",
		"Endpoint=https://a/b?c#d;AccessKey=k",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseConnectionString(s)
		if err != nil {
			// Whatever the input, the error names no key material.
			for seg := range strings.SplitSeq(s, ";") {
				k, v, _ := strings.Cut(seg, "=")
				if strings.EqualFold(k, "accesskey") && len(v) >= 8 && strings.Contains(err.Error(), v) {
					t.Fatalf("error %q contains the access key", err)
				}
			}
			return
		}
		if cs.AccessKey == "" || cs.Endpoint == "" {
			t.Fatalf("accepted %q without endpoint or key: %+v", s, cs)
		}
		u, err := url.Parse(cs.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("accepted endpoint %q is not an http(s) URL", cs.Endpoint)
		}
		if cs.Port != "" && u.Port() != strings.TrimLeft(cs.Port, "0") && u.Port() != cs.Port {
			t.Fatalf("Port %q not applied to %q", cs.Port, cs.Endpoint)
		}
	})
}

var hubPattern = regexp.MustCompile("^[A-Za-z][A-Za-z0-9_`,.\\[\\]]{0,127}$")

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"chat", "a/b c", ".", "..", " ", "\t\n", "g\u2028", "Hub_[1]", "1x", strings.Repeat("é", 1025), "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := wpsname.HubReason(s) == "", hubPattern.MatchString(s); got != want {
			t.Fatalf("HubReason(%q) accepts = %v, the service pattern says %v", s, got, want)
		}
		if wpsname.PathGroupReason(s) == "" {
			n := utf8.RuneCountInString(s)
			if n < 1 || n > 1024 || s == "." || s == ".." || strings.ContainsAny(s, "\n\r\u2028\u2029") || strings.TrimSpace(s) == "" {
				t.Fatalf("group %q accepted against the rules", s)
			}
		}
		enc := string(encodeURIComponent(nil, s))
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c != '%' && !uriUnreserved[c] {
				t.Fatalf("encodeURIComponent(%q) left %q unescaped", s, c)
			}
		}
		if dec, err := url.PathUnescape(enc); err != nil || dec != s {
			t.Fatalf("encodeURIComponent(%q) = %q does not round-trip (%q, %v)", s, enc, dec, err)
		}
	})
}
