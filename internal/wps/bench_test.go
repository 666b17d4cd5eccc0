package wps

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkSendToGroup measures a full sendToGroup round trip to a local
// server, with the per-URL JWT cache on and off.
func BenchmarkSendToGroup(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	body := []byte(`{"text":"hello","n":42}`)
	for _, bc := range []struct {
		name  string
		cache bool
	}{{"cache=on", true}, {"cache=off", false}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := NewClient(srv.URL, WithAccessKey(testKey), WithTokenCache(bc.cache))
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseIdleConnections()
			h, err := c.Hub("chat")
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := h.SendToGroup(ctx, "room42", body, ContentJSON, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
